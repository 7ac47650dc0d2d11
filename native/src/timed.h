// Timed: a Primitive that wraps another one and stamps when it runs.
#pragma once

#include <memory>

#include "mlx/array.h"
#include "mlx/primitives.h"

#include "records.h"

namespace unimem {

namespace mx = mlx::core;

// Wraps `inner` and forwards every virtual of MLX 0.32.4's Primitive to it
// (eval_cpu, eval_gpu, jvp, vjp, vmap, name, is_equivalent, output_shapes:
// the complete list in mlx/primitives.h, class Primitive,
// https://github.com/ml-explore/mlx/blob/main/mlx/primitives.h). A new virtual
// in a later MLX would not be forwarded, which is one reason the module is
// built for one exact MLX version.
//
// The wrapper holds no arrays, only the inner primitive and a Record, so it
// changes neither reference counts nor buffer donation.
class Timed : public mx::Primitive {
 public:
  // `record` is null for a GPU primitive wrapped only to publish the
  // encoding marker (CUDA builds).
  Timed(std::shared_ptr<mx::Primitive> inner, uint64_t serial,
        std::shared_ptr<Record> record);
  ~Timed() override;

  void eval_cpu(const std::vector<mx::array>& inputs,
                std::vector<mx::array>& outputs) override;
  void eval_gpu(const std::vector<mx::array>& inputs,
                std::vector<mx::array>& outputs) override;

  std::vector<mx::array> jvp(const std::vector<mx::array>& primals,
                             const std::vector<mx::array>& tangents,
                             const std::vector<int>& argnums) override {
    return inner_->jvp(primals, tangents, argnums);
  }
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals,
                             const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums,
                             const std::vector<mx::array>& outputs) override {
    return inner_->vjp(primals, cotangents, argnums, outputs);
  }
  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array>& inputs,
      const std::vector<int>& axes) override {
    return inner_->vmap(inputs, axes);
  }
  const char* name() const override {
    return inner_->name();
  }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(
      const std::vector<mx::array>& inputs) override {
    return inner_->output_shapes(inputs);
  }

  uint64_t serial() const {
    return serial_;
  }

 private:
  std::shared_ptr<mx::Primitive> inner_;
  uint64_t serial_;
  std::shared_ptr<Record> record_;
};

// The serial of the GPU primitive whose eval_gpu is running on the calling
// thread, or 0. Only ever set in CUDA builds (UNIMEM_NATIVE_CUDA_MARKER).
uint64_t encoding_primitive();

} // namespace unimem
