// Timing records: one per wrapped primitive, filled in by the eval thread and
// by the stream's worker thread, published only once complete.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace unimem {

// CLOCK_MONOTONIC in nanoseconds: the clock behind Python's time.perf_counter()
// and time.monotonic() on Linux. (On macOS perf_counter() reads
// mach_absolute_time, which is CLOCK_UPTIME_RAW; see records.cpp.)
int64_t now_ns();

// The kernel's id for the calling thread (gettid), cached per thread.
int32_t thread_id();

// Where a record's start/end come from.
enum class Source : uint8_t {
  // START/END are tasks on the CPU stream's own FIFO worker thread.
  cpu_stream = 0,
  // GPU start/end of the Metal command buffer that holds the primitive.
  metal_command_buffer = 1,
};

// One record per wrapped primitive.
//
// Life cycle: armed (wrapped, not evaluated) -> running (eval began) -> done or
// failed; or armed -> abandoned (the wrapper was freed without ever running).
// A record is published (returned by Store::completed) only when done, that
// is after BOTH the worker's END stamp and the eval thread's HOST_END stamp:
// each of the two marks_left decrements; the one reaching zero publishes.
// The fields are plain: the release/acquire on `state` orders them for readers.
struct Record {
  enum State : int { armed, running, done, failed, abandoned };

  Record(uint64_t serial, int32_t stream, Source source,
         std::shared_ptr<std::atomic<int64_t>> pending);

  uint64_t serial;
  int32_t stream;
  Source source;
  int64_t start = 0, end = 0; // worker (or GPU) clock
  int32_t worker_tid = 0;
  int64_t host_begin = 0, host_end = 0; // around the inner eval on the eval thread
  int32_t host_tid = 0;

  // armed -> running; false if the primitive was evaluated before (a retry
  // after a failure, or a replay): such runs are not stamped.
  bool begin();
  // One of the two completion marks (END stamp, HOST_END stamp).
  void mark();
  // running -> failed (the inner eval threw) or armed -> abandoned.
  void fail();
  void abandon();
  State load_state() const {
    return State(state_.load(std::memory_order_acquire));
  }

 private:
  void finish(State s);
  std::atomic<int> state_{armed};
  std::atomic<int> marks_left_{2};
  // Not-yet-finished records of the store generation this record belongs to.
  std::shared_ptr<std::atomic<int64_t>> pending_;
};

// The process-wide list of records. clear() starts a new generation: records
// still in flight keep their own generation's pending counter, so they cannot
// disturb the new one.
class Store {
 public:
  std::shared_ptr<Record> add(uint64_t serial, int32_t stream, Source source);
  // Completed records in wrapping order; with drain, finished ones (done,
  // failed or abandoned) are removed from the store.
  std::vector<std::shared_ptr<Record>> completed(bool drain);
  int64_t pending() const {
    std::lock_guard<std::mutex> lk(mtx_);
    return pending_->load(std::memory_order_acquire);
  }
  void clear();

 private:
  mutable std::mutex mtx_;
  std::vector<std::shared_ptr<Record>> records_;
  std::shared_ptr<std::atomic<int64_t>> pending_ =
      std::make_shared<std::atomic<int64_t>>(0);
};

Store& store();

} // namespace unimem
