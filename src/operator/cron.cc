#include "operator/cron.h"

#include <ctime>
#include <map>
#include <sstream>
#include <vector>

#include "common/error.h"

namespace pbm::op {

namespace {

const std::map<std::string, int> kMonths = {{"jan", 1}, {"feb", 2},  {"mar", 3},  {"apr", 4},
                                            {"may", 5}, {"jun", 6},  {"jul", 7},  {"aug", 8},
                                            {"sep", 9}, {"oct", 10}, {"nov", 11}, {"dec", 12}};
const std::map<std::string, int> kDays = {{"sun", 0}, {"mon", 1}, {"tue", 2}, {"wed", 3},
                                          {"thu", 4}, {"fri", 5}, {"sat", 6}};

int Value(std::string s, int lo, int hi, const std::map<std::string, int>* names,
          const std::string& field, const std::string& expr) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (names) {
    auto it = names->find(s);
    if (it != names->end()) return it->second;
  }
  size_t pos = 0;
  int v = -1;
  try {
    v = std::stoi(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != s.size() || v < lo || v > hi) {
    Fail(ErrorKind::kInvalidArgument, "schedule '{}': {} '{}' is not a value from {} to {}", expr,
         field, s, lo, hi);
  }
  return v;
}

// One field: "*", "*/n", "a", "a-b", "a-b/n", "a/n", comma-separated.
template <size_t N>
bool ParseField(const std::string& text, int lo, int hi, const std::map<std::string, int>* names,
                const std::string& field, const std::string& expr, std::bitset<N>* out) {
  bool any = text == "*" || text == "?";
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty()) {
      Fail(ErrorKind::kInvalidArgument, "schedule '{}': empty item in {} '{}'", expr, field, text);
    }
    int step = 1;
    size_t slash = part.find('/');
    std::string range = part.substr(0, slash);
    if (slash != std::string::npos) {
      step = Value(part.substr(slash + 1), 1, hi, nullptr, field + " step", expr);
    }
    int a, b;
    if (range == "*" || range == "?") {
      a = lo;
      b = hi;
    } else if (size_t dash = range.find('-'); dash != std::string::npos) {
      a = Value(range.substr(0, dash), lo, hi, names, field, expr);
      b = Value(range.substr(dash + 1), lo, hi, names, field, expr);
      if (a > b) {
        Fail(ErrorKind::kInvalidArgument, "schedule '{}': {} range '{}' runs backwards", expr,
             field, range);
      }
    } else {
      a = Value(range, lo, hi, names, field, expr);
      b = slash == std::string::npos ? a : hi;
    }
    for (int v = a; v <= b; v += step) out->set(static_cast<size_t>(v));
  }
  return any;
}

}  // namespace

Cron Cron::Parse(const std::string& expr) {
  std::stringstream ss(expr);
  std::vector<std::string> f;
  std::string x;
  while (ss >> x) f.push_back(x);
  if (f.size() != 5) {
    Fail(ErrorKind::kInvalidArgument,
         "schedule '{}': want five fields (minute hour day-of-month month day-of-week), got {}",
         expr, f.size());
  }
  Cron c;
  ParseField(f[0], 0, 59, nullptr, "minute", expr, &c.minute_);
  ParseField(f[1], 0, 23, nullptr, "hour", expr, &c.hour_);
  c.dom_any_ = ParseField(f[2], 1, 31, nullptr, "day of month", expr, &c.dom_);
  ParseField(f[3], 1, 12, &kMonths, "month", expr, &c.month_);
  c.dow_any_ = ParseField(f[4], 0, 7, &kDays, "day of week", expr, &c.dow_);
  if (c.dow_.test(7)) c.dow_.set(0);
  return c;
}

bool Cron::Matches(int64_t unix_secs) const {
  std::time_t t = static_cast<std::time_t>(unix_secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  if (!minute_.test(tm.tm_min) || !hour_.test(tm.tm_hour) || !month_.test(tm.tm_mon + 1)) {
    return false;
  }
  // As cron: when both day fields are restricted, either may match.
  bool dom = dom_.test(tm.tm_mday), dow = dow_.test(tm.tm_wday);
  if (dom_any_ && dow_any_) return true;
  if (dom_any_) return dow;
  if (dow_any_) return dom;
  return dom || dow;
}

int64_t Cron::Prev(int64_t unix_secs) const {
  int64_t t = unix_secs - unix_secs % 60;
  const int64_t floor = unix_secs - int64_t{4} * 366 * 86400;
  while (t >= floor) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    // Skip whole months, days and hours that cannot match.
    if (!month_.test(tm.tm_mon + 1)) {
      t -= (static_cast<int64_t>(tm.tm_mday - 1) * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60) + 60;
      continue;
    }
    bool dom = dom_.test(tm.tm_mday), dow = dow_.test(tm.tm_wday);
    bool day = dom_any_ && dow_any_ ? true : dom_any_ ? dow : dow_any_ ? dom : (dom || dow);
    if (!day) {
      t -= (tm.tm_hour * 3600 + tm.tm_min * 60) + 60;
      continue;
    }
    if (!hour_.test(tm.tm_hour)) {
      t -= tm.tm_min * 60 + 60;
      continue;
    }
    if (minute_.test(tm.tm_min)) return t;
    t -= 60;
  }
  return -1;
}

}  // namespace pbm::op
