#include "records.h"

#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#elif defined(__APPLE__)
#include <pthread.h>
#endif

namespace unimem {

int64_t now_ns() {
  timespec ts;
#if defined(__APPLE__)
  // mach_absolute_time's clock: what perf_counter() and Metal's
  // MTLCommandBuffer.GPUStartTime use on macOS.
  clock_gettime(CLOCK_UPTIME_RAW, &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

int32_t thread_id() {
#if defined(__linux__)
  static thread_local int32_t tid = int32_t(syscall(SYS_gettid));
#elif defined(__APPLE__)
  static thread_local int32_t tid = [] {
    uint64_t t = 0;
    pthread_threadid_np(nullptr, &t);
    return int32_t(t);
  }();
#endif
  return tid;
}

Record::Record(uint64_t serial, int32_t stream, Source source,
               std::shared_ptr<std::atomic<int64_t>> pending)
    : serial(serial), stream(stream), source(source),
      pending_(std::move(pending)) {
  pending_->fetch_add(1, std::memory_order_relaxed);
}

bool Record::begin() {
  int expected = armed;
  return state_.compare_exchange_strong(
      expected, running, std::memory_order_acq_rel);
}

void Record::mark() {
  if (marks_left_.fetch_sub(1, std::memory_order_acq_rel) == 1)
    finish(done);
}

void Record::fail() {
  int expected = running;
  if (state_.compare_exchange_strong(expected, failed))
    pending_->fetch_sub(1, std::memory_order_release);
}

void Record::abandon() {
  int expected = armed;
  if (state_.compare_exchange_strong(expected, abandoned))
    pending_->fetch_sub(1, std::memory_order_release);
}

void Record::finish(State s) {
  state_.store(s, std::memory_order_release);
  pending_->fetch_sub(1, std::memory_order_release);
}

std::shared_ptr<Record> Store::add(
    uint64_t serial, int32_t stream, Source source) {
  std::lock_guard<std::mutex> lk(mtx_);
  auto rec = std::make_shared<Record>(serial, stream, source, pending_);
  records_.push_back(rec);
  return rec;
}

std::vector<std::shared_ptr<Record>> Store::completed(bool drain) {
  std::lock_guard<std::mutex> lk(mtx_);
  std::vector<std::shared_ptr<Record>> out;
  std::vector<std::shared_ptr<Record>> kept;
  for (auto& r : records_) {
    auto s = r->load_state();
    if (s == Record::done)
      out.push_back(r);
    if (drain && (s == Record::armed || s == Record::running))
      kept.push_back(r);
  }
  if (drain) {
    // Keep the capacity: the next run wraps about as many primitives again.
    records_.clear();
    records_.insert(records_.end(), kept.begin(), kept.end());
  }
  return out;
}

void Store::clear() {
  std::lock_guard<std::mutex> lk(mtx_);
  records_.clear();
  pending_ = std::make_shared<std::atomic<int64_t>>(0);
}

Store& store() {
  // Leaked on purpose: worker threads may still stamp records during
  // interpreter shutdown, after static destructors would have run.
  static Store* s = new Store();
  return *s;
}

} // namespace unimem
