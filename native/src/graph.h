// Walking MLX's pending graph, and wrapping its primitives in Timed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlx/array.h"

namespace unimem {

namespace mx = mlx::core;

// The pending graph behind some arrays, one node per primitive (a
// multi-output primitive's sibling outputs are folded into one node), in
// post-order: every node comes after the nodes that produce its inputs.
// Columnar, so that Python converts it with a few list constructions. It
// holds no arrays or primitives, so it can outlive the eval that follows the
// walk without keeping any buffer alive (and without blocking donation).
struct WalkTable {
  // Node columns.
  std::vector<uint64_t> id; // process-wide serial, never reused
  std::vector<uint32_t> name; // index into `names`
  std::vector<std::string> names; // each distinct primitive name once
  std::vector<uint8_t> gpu; // 0: cpu, 1: gpu
  std::vector<int32_t> stream; // mlx Stream::index (global, creation order)
  std::vector<uint8_t> wrapped; // already replaced by Timed
  std::vector<uint32_t> out_start; // node i's outputs: [out_start[i], out_start[i+1])
  std::vector<uint32_t> in_start; // node i's inputs: [in_start[i], in_start[i+1])
  // Output columns (one row per output array, in the primitive's order).
  std::vector<uint32_t> dim_start; // output j's shape: dims[dim_start[j]..dim_start[j+1])
  std::vector<int32_t> dims;
  std::vector<mx::Dtype> dtype;
  std::vector<int64_t> nbytes;
  // Input columns: the producing node's id and which of its outputs, or
  // (0, -1) for an input that is not pending (evaluated, or a constant).
  std::vector<uint64_t> in_node;
  std::vector<int32_t> in_output;
  // How many primitives this pass wrapped in Timed (0 without `wrap`).
  int wrapped_now = 0;
};

// One pass over the pending graph behind `roots`: with `wrap`, every pending
// CPU primitive (and, with `gpu`, every GPU primitive where a GPU hook is
// compiled in) is wrapped in Timed, and every primitive is recorded in the
// table, wrapped or not. Walking and wrapping together visits each node
// once, which matters on long chains of cheap ops, where the walk is paid for
// in the instrumented run's wall time. See graph.cpp for what is not wrapped
// and why.
WalkTable capture(const std::vector<mx::array>& roots, bool wrap, bool gpu);

} // namespace unimem
