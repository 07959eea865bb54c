// Runs fn(0) .. fn(count - 1) on `workers` threads (at least 1, at most count), each index once.
// The first exception stops the hand-out of further indexes; once the running calls returned it
// is rethrown. Calls run concurrently: fn must be thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pbm {

template <typename Fn>
void ParallelFor(size_t count, int workers, Fn&& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  std::mutex mu;
  auto run = [&] {
    while (!failed) {
      size_t i = next++;
      if (i >= count) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> l(mu);
        if (!first) first = std::current_exception();
        failed = true;
      }
    }
  };
  size_t n = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(workers, 1)), count));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace pbm
