// Graph-node callbacks from CUPTI, in C++: a Python callback per node costs
// about 1.5 us with the GIL (measured on an H200: all-GPU `fun`, 500 nodes,
// 1.23x -> 1.89x of the plain run), this costs a lock and a push.
//
// CUPTI calls the GRAPHNODE_CREATED callback synchronously, on the thread that
// adds the node, inside the CUDA call (https://docs.nvidia.com/cupti/api/
// group__CUPTI__CALLBACK__API.html). MLX adds a primitive's nodes while its
// eval_gpu runs on that thread, where Timed publishes the primitive's serial
// (encoding_primitive(), timed.cpp): so each node is tied to its primitive.
#include "cuda_nodes.h"

#include <mutex>

#include "timed.h"

#if UNIMEM_NATIVE_CUPTI_NODES
#include <dlfcn.h>

#include <cupti_callbacks.h>
#include <cupti_result.h>
#endif

namespace unimem {

namespace {
std::mutex g_mtx;
std::vector<NodeEvent> g_events;
} // namespace

#if UNIMEM_NATIVE_CUPTI_NODES

namespace {

using SubscribeFn = CUptiResult (*)(CUpti_SubscriberHandle*,
                                    CUpti_CallbackFunc, void*);
using UnsubscribeFn = CUptiResult (*)(CUpti_SubscriberHandle);
using EnableCallbackFn = CUptiResult (*)(uint32_t, CUpti_SubscriberHandle,
                                         CUpti_CallbackDomain, CUpti_CallbackId);
using NodeIdFn = CUptiResult (*)(CUgraphNode, uint64_t*);
using ResultStringFn = CUptiResult (*)(CUptiResult, const char**);

struct Api {
  void* lib = nullptr;
  SubscribeFn subscribe = nullptr;
  UnsubscribeFn unsubscribe = nullptr;
  EnableCallbackFn enable = nullptr;
  NodeIdFn node_id = nullptr;
  ResultStringFn result_string = nullptr;
};
Api g_api;
CUpti_SubscriberHandle g_sub = nullptr;

void CUPTIAPI on_resource(void*, CUpti_CallbackDomain domain,
                          CUpti_CallbackId cbid, const void* data) {
  if (domain != CUPTI_CB_DOMAIN_RESOURCE || !data)
    return;
  bool cloned = cbid == CUPTI_CBID_RESOURCE_GRAPHNODE_CLONED;
  if (!cloned && cbid != CUPTI_CBID_RESOURCE_GRAPHNODE_CREATED)
    return;
  auto* rd = static_cast<const CUpti_ResourceData*>(data);
  auto* gd = static_cast<const CUpti_GraphData*>(rd->resourceDescriptor);
  if (!gd)
    return;
  NodeEvent e;
  e.cloned = cloned;
  e.primitive = encoding_primitive();
  if (g_api.node_id(gd->node, &e.node) != CUPTI_SUCCESS)
    return;
  if (cloned && gd->originalNode)
    g_api.node_id(gd->originalNode, &e.original);
  std::lock_guard<std::mutex> lk(g_mtx);
  g_events.push_back(e);
}

std::string why(const char* what, CUptiResult r) {
  const char* text = nullptr;
  if (g_api.result_string)
    g_api.result_string(r, &text);
  return std::string(what) + ": " + (text ? text : "CUPTI error " + std::to_string(int(r)));
}

} // namespace

bool node_capture_built() {
  return true;
}

std::string start_node_capture(const std::string& path) {
  if (g_sub)
    return "";
  if (!g_api.lib) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (!lib)
      return "libcupti is not loaded in this process (" + path + ")";
    Api api;
    api.lib = lib;
    api.subscribe = reinterpret_cast<SubscribeFn>(dlsym(lib, "cuptiSubscribe"));
    api.unsubscribe = reinterpret_cast<UnsubscribeFn>(dlsym(lib, "cuptiUnsubscribe"));
    api.enable = reinterpret_cast<EnableCallbackFn>(dlsym(lib, "cuptiEnableCallback"));
    api.node_id = reinterpret_cast<NodeIdFn>(dlsym(lib, "cuptiGetGraphNodeId"));
    api.result_string = reinterpret_cast<ResultStringFn>(dlsym(lib, "cuptiGetResultString"));
    if (!api.subscribe || !api.unsubscribe || !api.enable || !api.node_id)
      return "libcupti lacks cuptiSubscribe/cuptiEnableCallback/cuptiGetGraphNodeId";
    g_api = api;
  }
  CUpti_SubscriberHandle sub = nullptr;
  CUptiResult r = g_api.subscribe(&sub, on_resource, nullptr);
  if (r != CUPTI_SUCCESS)
    return why("cuptiSubscribe", r); // e.g. another tool already subscribed
  for (CUpti_CallbackId id : {CUPTI_CBID_RESOURCE_GRAPHNODE_CREATED,
                              CUPTI_CBID_RESOURCE_GRAPHNODE_CLONED}) {
    r = g_api.enable(1, sub, CUPTI_CB_DOMAIN_RESOURCE, id);
    if (r != CUPTI_SUCCESS) {
      g_api.unsubscribe(sub);
      return why("cuptiEnableCallback", r);
    }
  }
  g_sub = sub;
  return "";
}

void stop_node_capture() {
  if (g_sub) {
    g_api.unsubscribe(g_sub);
    g_sub = nullptr;
  }
}

#else

bool node_capture_built() {
  return false;
}

std::string start_node_capture(const std::string&) {
  return "unimem_native was built without CUPTI's headers (a CUDA build of MLX and "
         "nvidia-cuda-cupti are needed at build time)";
}

void stop_node_capture() {}

#endif

std::vector<NodeEvent> node_events(bool drain) {
  std::lock_guard<std::mutex> lk(g_mtx);
  if (!drain)
    return g_events;
  std::vector<NodeEvent> out;
  out.swap(g_events);
  return out;
}

} // namespace unimem
