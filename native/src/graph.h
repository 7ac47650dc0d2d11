// Walking MLX's pending graph, and wrapping its primitives in Timed.
#pragma once

#include <cstdint>
#include <vector>

#include "mlx/array.h"

namespace unimem {

namespace mx = mlx::core;

// The pending graph behind some arrays, one node per primitive (a
// multi-output primitive's sibling outputs are folded into one node), in
// post-order: every node comes after the nodes that produce its inputs.
// Columnar, so that Python converts it with a few list constructions.
struct WalkTable {
  // Node columns.
  std::vector<uint64_t> id; // process-wide serial, never reused
  std::vector<const char*> name;
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
  // Keeps the walked arrays (and so the name strings) alive until converted.
  std::vector<mx::array> held;
};

WalkTable walk(const std::vector<mx::array>& roots);

// Wraps every pending CPU primitive behind `roots` in Timed (and, with `gpu`,
// GPU primitives where a GPU hook is compiled in). Returns how many were
// wrapped. See graph.cpp for what is skipped and why.
int instrument(const std::vector<mx::array>& roots, bool gpu);

} // namespace unimem
