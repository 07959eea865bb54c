#include "backoff.h"

#include <fmt/format.h>

#include <algorithm>

namespace devcluster {

Millis BackOff::Next(Millis ran) {
  if (ran >= policy_.reset_after) current_ = Millis{0};
  if (current_.count() == 0) {
    current_ = std::min(policy_.initial, policy_.max);
  } else {
    current_ = std::min(current_ * 2, policy_.max);
  }
  return current_;
}

std::string FormatDuration(Millis d) {
  int64_t ms = d.count();
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  std::string s = fmt::format("{:.3f}", static_cast<double>(ms) / 1000.0);
  while (s.back() == '0') s.pop_back();
  return s + "s";
}

}  // namespace devcluster
