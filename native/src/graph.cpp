#include "graph.h"

#include <cstring>
#include <memory>
#include <mutex>
#include <typeinfo>
#include <unordered_map>

#include "mlx/primitives.h"

#include "records.h"
#include "timed.h"

namespace unimem {

namespace {

// Calls f(array) once per pending primitive behind `roots`, in post-order.
// "Pending" is MLX's Status::unscheduled with a primitive: eval and
// async_eval detach everything they schedule (mlx/transforms.cpp), so these
// are exactly the arrays the next eval will compute. An explicit stack (no
// recursion) walks chains of any length; each entry is an array and the index
// of its next input to visit. Siblings are marked seen together, so each
// primitive is visited once, through whichever output is reached first.
// A set of array ids (ArrayDesc addresses) with open addressing: one allocation
// per walk, where std::unordered_set allocates a node per insertion.
class IdSet {
 public:
  IdSet() : slots_(1024, 0) {}
  // True if `id` was not in the set (and now is).
  bool insert(uintptr_t id) {
    if (2 * (size_ + 1) > slots_.size())
      grow();
    return place(slots_, id);
  }

 private:
  bool place(std::vector<uintptr_t>& slots, uintptr_t id) {
    size_t mask = slots.size() - 1;
    // ids are heap addresses: drop the alignment bits, then mix
    size_t i = size_t((id >> 4) * 0x9E3779B97F4A7C15ull) & mask;
    while (slots[i]) {
      if (slots[i] == id)
        return false;
      i = (i + 1) & mask;
    }
    slots[i] = id;
    size_++;
    return true;
  }
  void grow() {
    std::vector<uintptr_t> bigger(slots_.size() * 2, 0);
    size_ = 0;
    for (auto id : slots_)
      if (id)
        place(bigger, id);
    slots_.swap(bigger);
  }
  std::vector<uintptr_t> slots_;
  size_t size_ = 0;
};

// Calls f(array) once per pending primitive behind `roots`, in post-order.
// "Pending" is MLX's Status::unscheduled with a primitive: eval and
// async_eval detach everything they schedule (mlx/transforms.cpp), so these
// are exactly the arrays the next eval will compute. An explicit stack (no
// recursion) walks chains of any length; each entry points at an array (the
// roots, or an element of its consumer's inputs, which nothing here changes)
// and holds the index of its next input to visit. Siblings are marked seen
// together, so each primitive is visited once, through whichever output is
// reached first.
template <class F>
void for_each_pending(const std::vector<mx::array>& roots, F&& f) {
  IdSet seen;
  std::vector<std::pair<const mx::array*, size_t>> stack;
  stack.reserve(256);
  auto push = [&](const mx::array& a) {
    if (a.status() != mx::array::Status::unscheduled || !a.has_primitive())
      return;
    if (!seen.insert(a.id()))
      return;
    for (auto& s : a.siblings())
      seen.insert(s.id());
    // the walk visits these next: start loading them
    for (auto& in : a.inputs())
      __builtin_prefetch(reinterpret_cast<const void*>(in.id()));
    stack.emplace_back(&a, 0);
  };
  for (auto& r : roots)
    push(r);
  while (!stack.empty()) {
    auto [a, next] = stack.back();
    if (next < a->inputs().size()) {
      stack.back().second++;
      push(a->inputs()[next]); // may reallocate `stack`: no refs kept
      continue;
    }
    stack.pop_back();
    f(const_cast<mx::array&>(*a));
  }
}

// Node ids. The id must stay unique after a graph is freed, so it cannot be
// an address (MLX's array::id() is the ArrayDesc address, reused by the
// allocator). Instead every primitive gets a serial from a process-wide
// counter the first time walk() or instrument() meets it, remembered in a
// map keyed by the primitive's address. Each entry holds a weak_ptr to its
// primitive: once that primitive is freed the entry is stale (expired), so a
// new primitive at the same address gets a new serial. A wrapped primitive
// carries its serial in Timed, so walk-then-instrument and
// instrument-then-walk agree on ids.
class Serials {
 public:
  // The serial of `p`, remembered for the next meeting.
  uint64_t of(const std::shared_ptr<mx::Primitive>& p) {
    if (typeid(*p) == typeid(Timed))
      return static_cast<Timed&>(*p).serial();
    auto [it, fresh] = map_.try_emplace(p.get());
    if (fresh || it->second.owner.expired()) {
      it->second = Entry{p, ++last_};
      if (fresh && map_.size() >= prune_at_)
        prune();
    }
    return it->second.serial;
  }
  // The serial of a primitive about to be wrapped: its wrapper carries it from
  // now on, so it is looked up (an earlier walk may have met it) but not added.
  uint64_t for_wrapping(const std::shared_ptr<mx::Primitive>& p) {
    auto it = map_.find(p.get());
    if (it != map_.end() && !it->second.owner.expired())
      return it->second.serial;
    return ++last_;
  }
  std::mutex& mutex() {
    return mtx_;
  }

 private:
  struct Entry {
    std::weak_ptr<mx::Primitive> owner;
    uint64_t serial = 0;
  };
  // Drop entries of freed primitives; amortised O(1) per insertion.
  void prune() {
    std::erase_if(map_, [](auto& kv) { return kv.second.owner.expired(); });
    prune_at_ = std::max<size_t>(4096, 2 * map_.size());
  }
  std::mutex mtx_;
  std::unordered_map<const mx::Primitive*, Entry> map_;
  uint64_t last_ = 0;
  size_t prune_at_ = 4096;
};

Serials& serials() {
  static Serials* s = new Serials(); // leaked: no teardown order at exit
  return *s;
}

bool is_wrapped(const mx::Primitive& p) {
  return typeid(p) == typeid(Timed);
}

// Primitives that MLX's transforms recognise by typeid: Copy (make_tracer)
// and StopGradient (vjp/jvp/vmap) in mlx/transforms.cpp. Behind a wrapper
// they would no longer be recognised. libmlx does not export their type_info,
// so they are matched by name.
bool recognised_by_typeid(const char* name) {
  return !std::strcmp(name, "Copy") || !std::strcmp(name, "StopGradient");
}

} // namespace

// Not wrapped, each for a reason:
//  - already wrapped: capturing twice must not double-stamp;
//  - not pending: evaluated or scheduled (async_eval) arrays are detached or
//    in flight, and swapping a primitive under a running eval is a race;
//  - tracers, and any call whose roots are tracers: a call inside
//    mx.compile/grad/vmap. A wrapped tracer defeats compile's fusion (its
//    typeid is no longer Sin, Add, ...; mlx/compile.cpp) and compile would
//    replay the same wrapper on every call. (MLX's in_tracing() is not
//    exported from libmlx; tracer roots are the visible sign.)
//  - Copy and StopGradient: see recognised_by_typeid;
//  - GPU streams, unless `gpu` and a GPU hook is compiled in (timed.cpp).
WalkTable capture(const std::vector<mx::array>& roots, bool wrap, bool gpu) {
  for (auto& r : roots)
    if (r.is_tracer())
      wrap = false;
  constexpr bool gpu_hook =
      UNIMEM_NATIVE_CUDA_MARKER || UNIMEM_NATIVE_METAL_TIMING;
  WalkTable t;
  // Names are interned by address: while the graph is held, a live
  // primitive's name() is stable (a literal, or Compiled's cached string).
  std::unordered_map<const char*, uint32_t> name_index;
  auto& ser = serials();
  std::lock_guard<std::mutex> lk(ser.mutex());
  for_each_pending(roots, [&](mx::array& a) {
    auto& p = a.primitive_ptr();
    const char* name = p->name();
    bool on_gpu = p->device() == mx::Device::gpu;
    bool wrapped = is_wrapped(*p);
    uint64_t serial;
    if (!wrapped && wrap && !a.is_tracer() && !recognised_by_typeid(name) &&
        (!on_gpu || (gpu && gpu_hook))) {
      serial = ser.for_wrapping(p);
      std::shared_ptr<Record> rec;
      if (!on_gpu)
        rec = store().add(serial, p->stream().index, Source::cpu_stream);
      else if (UNIMEM_NATIVE_METAL_TIMING)
        rec = store().add(
            serial, p->stream().index, Source::metal_command_buffer);
      auto wrapper = std::make_shared<Timed>(p, serial, std::move(rec));
      // Siblings share one primitive pointer: swap all of them together.
      for (auto& s : a.siblings())
        s.primitive_ptr() = wrapper;
      p = wrapper; // `p` is a reference: it now names the wrapper
      wrapped = true;
      t.wrapped_now++;
    } else {
      serial = ser.of(p);
    }
    auto [it, fresh] = name_index.try_emplace(name, uint32_t(t.names.size()));
    if (fresh)
      t.names.emplace_back(name);
    t.id.push_back(serial);
    t.name.push_back(it->second);
    t.gpu.push_back(on_gpu);
    t.stream.push_back(p->stream().index);
    t.wrapped.push_back(wrapped);
    t.out_start.push_back(uint32_t(t.nbytes.size()));
    auto add_output = [&t](const mx::array& o) {
      t.dim_start.push_back(uint32_t(t.dims.size()));
      t.dims.insert(t.dims.end(), o.shape().begin(), o.shape().end());
      t.dtype.push_back(o.dtype());
      t.nbytes.push_back(int64_t(o.nbytes()));
    };
    if (a.siblings().empty())
      add_output(a); // most primitives: skip outputs(), which builds a vector
    else
      for (auto& o : a.outputs())
        add_output(o);
    t.in_start.push_back(uint32_t(t.in_node.size()));
    for (auto& in : a.inputs()) {
      // Post-order: a pending input's producer was visited (and got its
      // serial, or its wrapper) before this node.
      bool pending = in.status() == mx::array::Status::unscheduled &&
          in.has_primitive();
      t.in_node.push_back(pending ? ser.of(in.primitive_ptr()) : 0);
      t.in_output.push_back(pending ? in.sibling_position() : -1);
    }
  });
  t.out_start.push_back(uint32_t(t.nbytes.size()));
  t.in_start.push_back(uint32_t(t.in_node.size()));
  t.dim_start.push_back(uint32_t(t.dims.size()));
  return t;
}

} // namespace unimem
