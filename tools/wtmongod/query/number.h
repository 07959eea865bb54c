// Internal: exact cross-type numeric ordering shared by compare.cc and keystring.cc.
#pragma once

#include <bson/bson.h>

#include <cstdint>

namespace wtm::query::internal {

// A number as (nearest double, exact remainder): for int64 beyond 2^53 `rem` holds x - (double)x,
// which keeps exact order; doubles and small integers have rem 0. Decimal128 goes through long
// double: exact for integers that fit int64, otherwise rounded to the nearest double. -0 is
// normalized to 0.
struct NumKey {
  bool nan = false;
  double d = 0;
  int64_t rem = 0;  // |rem| <= 1024
};

NumKey ToNumKey(const bson_value_t& v);  // v must be int32/int64/double/decimal128
int CompareNumKeys(const NumKey& a, const NumKey& b);
bool IsNumber(bson_type_t t);

}  // namespace wtm::query::internal
