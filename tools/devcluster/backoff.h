// Kubelet-like restart back-off for devcluster containers (CrashLoopBackOff).
#pragma once

#include <chrono>
#include <string>

namespace devcluster {

using Millis = std::chrono::milliseconds;

// How long to wait before restarting a container that exited or could not start.
// The kubelet uses initial 10s, max 5m, reset after the container ran 10 min; devcluster defaults
// are shorter so tests finish quickly.
struct BackOffPolicy {
  Millis initial{1000};       // delay after the first failure
  Millis max{10000};          // the delay doubles per failure up to this
  Millis reset_after{10000};  // a container that ran this long without exiting starts over
};

// The back-off state of one container. Not thread-safe (owned by the supervisor loop).
class BackOff {
 public:
  explicit BackOff(BackOffPolicy policy) : policy_(policy) {}

  // Records that the container stopped (or failed to start: `ran` = 0) after running for `ran`
  // and returns the delay before the next start: `initial` for the first failure (or the first
  // after a run of at least `reset_after`), then twice the previous delay, capped at `max`.
  Millis Next(Millis ran);

  // The delay Next() returned last; 0 before any failure or after a reset.
  Millis current() const { return current_; }

 private:
  BackOffPolicy policy_;
  Millis current_{0};
};

// "250ms", "2s", "1.5s": how back-off delays and run times appear in the supervisor log.
std::string FormatDuration(Millis d);

}  // namespace devcluster
