// CUDA graph nodes and the MLX primitive that made each one (CUDA builds only).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace unimem {

// One CUPTI resource callback: a graph node created, or cloned (when MLX adds
// a library's captured graph, e.g. cuBLAS's GEMM, as a child of its own).
// Node ids are CUPTI's: the graph's id in the high 32 bits, the node's index
// in its graph in the low 32 (what kernel records report as graph_node_id).
struct NodeEvent {
  uint64_t node = 0;
  uint64_t original = 0; // cloned from; 0 for a created node
  uint64_t primitive = 0; // serial of the primitive being encoded, or 0
  bool cloned = false;
};

// Subscribes to CUPTI's graph-node callbacks through the libcupti at `path`
// (the one cupti-python loaded; it is opened with RTLD_NOLOAD, never loaded a
// second time). Returns "" on success, else why not (no CUPTI headers at build
// time, the library not loaded, another CUPTI subscriber such as Nsight).
std::string start_node_capture(const std::string& path);
void stop_node_capture();
std::vector<NodeEvent> node_events(bool drain);
bool node_capture_built();

} // namespace unimem
