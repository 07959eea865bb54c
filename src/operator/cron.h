// Cron schedules of backup tasks: five fields (minute hour day-of-month month day-of-week), with
// *, lists, ranges, steps and month/day names, evaluated in UTC as the upstream operator does by
// default. Written here because no packaged C++ library parses cron.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>

namespace pbm::op {

class Cron {
 public:
  // Throws Error(kInvalidArgument) naming the bad field.
  static Cron Parse(const std::string& expr);
  // The latest firing time at or before `unix_secs` (minute precision), or -1 when none within
  // the last ~4 years (e.g. "0 0 30 2 *").
  int64_t Prev(int64_t unix_secs) const;
  bool Matches(int64_t unix_secs) const;

 private:
  std::bitset<60> minute_;
  std::bitset<24> hour_;
  std::bitset<32> dom_;
  std::bitset<13> month_;
  std::bitset<8> dow_;  // 0..6, Sunday = 0 (7 also Sunday)
  bool dom_any_ = true, dow_any_ = true;
};

}  // namespace pbm::op
