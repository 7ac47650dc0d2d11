#include "timed.h"

#include <typeinfo>

#include "mlx/scheduler.h"

#if UNIMEM_NATIVE_METAL_TIMING
#include "mlx/backend/metal/device.h"
#endif

namespace unimem {

namespace {
thread_local uint64_t t_encoding = 0;
}

uint64_t encoding_primitive() {
  return t_encoding;
}

Timed::Timed(std::shared_ptr<mx::Primitive> inner, uint64_t serial,
             std::shared_ptr<Record> record)
    : mx::Primitive(inner->stream()),
      inner_(std::move(inner)),
      serial_(serial),
      record_(std::move(record)) {}

Timed::~Timed() {
  // Freed without ever being evaluated (the graph was dropped): nothing will
  // stamp the record, so stop counting it as pending.
  if (record_)
    record_->abandon();
}

// Runs on the thread that called mx.eval. MLX's cpu::eval calls eval_cpu
// there; the primitive allocates its outputs and enqueues its kernels on the
// stream's worker thread (mlx/backend/cpu/eval.cpp). Enqueuing a START task
// before and an END task after the inner eval_cpu brackets those kernels in
// the stream's FIFO queue, so both stamps are taken on the worker, in order.
//
// scheduler::enqueue rather than cpu::CommandEncoder::dispatch: both feed the
// same queue, but dispatch also counts tasks (every 10th dispatch notifies
// the scheduler, mlx/backend/cpu/encoder.h), and eval_impl throttles at
// MAX_ACTIVE_TASKS (mlx/transforms.cpp). Two extra dispatches per primitive
// would throttle earlier than an uninstrumented run; plain enqueue does not.
void Timed::eval_cpu(const std::vector<mx::array>& inputs,
                     std::vector<mx::array>& outputs) {
  if (!record_ || !record_->begin()) {
    inner_->eval_cpu(inputs, outputs);
    return;
  }
  auto rec = record_;
  rec->host_tid = thread_id();
  rec->host_begin = now_ns();
  auto s = stream();
  // START captures a plain pointer: a std::function stores that in place,
  // where a shared_ptr would cost a heap allocation and two atomic counts per
  // primitive. The END task, queued after it on the same FIFO thread, holds
  // the shared_ptr, so the record outlives START.
  Record* raw = rec.get();
  try {
    mx::scheduler::enqueue(s, [raw] {
      raw->worker_tid = thread_id();
      raw->start = now_ns();
    });
    inner_->eval_cpu(inputs, outputs);
    mx::scheduler::enqueue(s, [rec] {
      rec->end = now_ns();
      rec->mark();
    });
  } catch (...) {
    // No END will ever be stamped: drop the record and let MLX's exception
    // through unchanged. The START task may still be queued: a task holding
    // the record, queued behind it, keeps the record alive until it has run.
    rec->fail();
    try {
      mx::scheduler::enqueue(s, [rec] {});
    } catch (...) {
      // The stream is stopped, so START will never run either.
    }
    throw;
  }
  rec->host_end = now_ns();
  rec->mark();
}

void Timed::eval_gpu(const std::vector<mx::array>& inputs,
                     std::vector<mx::array>& outputs) {
#if UNIMEM_NATIVE_CUDA_MARKER
  // CUDA: MLX records kernels into a CUDA graph while eval_gpu runs on this
  // thread (mlx/backend/cuda/). A CUPTI tracer's graph-node-created callback
  // runs on this same thread and can read encoding_primitive() to attribute
  // the node to this primitive. Kernel times then come from CUPTI, not here.
  uint64_t outer = t_encoding;
  t_encoding = serial_;
  try {
    inner_->eval_gpu(inputs, outputs);
  } catch (...) {
    t_encoding = outer;
    throw;
  }
  t_encoding = outer;
#elif UNIMEM_NATIVE_METAL_TIMING
  // Metal (compiled only with -DUNIMEM_NATIVE_METAL_TIMING=ON; never run so
  // far): the primitive's kernels are encoded into the stream's open command
  // buffer (mlx/backend/metal/device.h). Its completion handler receives the
  // buffer's GPU start/end, in the host clock (mach time, seconds): one
  // measured interval per command buffer (MLX puts 20-50 ops in one), shared
  // by every primitive in it. If the inner primitive commits mid-way, the
  // handler lands on the next buffer.
  if (!record_ || !record_->begin()) {
    inner_->eval_gpu(inputs, outputs);
    return;
  }
  auto rec = record_;
  rec->host_tid = thread_id();
  rec->host_begin = now_ns();
  try {
    inner_->eval_gpu(inputs, outputs);
    auto& enc = mx::metal::get_command_encoder(stream());
    enc.get_command_buffer()->addCompletedHandler(
        [rec](MTL::CommandBuffer* cb) {
          rec->start = int64_t(cb->GPUStartTime() * 1e9);
          rec->end = int64_t(cb->GPUEndTime() * 1e9);
          rec->worker_tid = thread_id();
          rec->mark();
        });
  } catch (...) {
    rec->fail();
    throw;
  }
  rec->host_end = now_ns();
  rec->mark();
#else
  inner_->eval_gpu(inputs, outputs);
#endif
}

bool Timed::is_equivalent(const mx::Primitive& other) const {
  // Only another wrapper around an equivalent primitive of the same type.
  auto* o = dynamic_cast<const Timed*>(&other);
  return o && typeid(*inner_) == typeid(*o->inner_) &&
      inner_->is_equivalent(*o->inner_);
}

} // namespace unimem
