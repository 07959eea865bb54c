#include "query/keystring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "query/compare.h"
#include "query/test_util.h"

namespace wtm::query {
namespace {

int Sign(int c) { return c < 0 ? -1 : (c > 0 ? 1 : 0); }

int MemSign(const std::string& a, const std::string& b) { return Sign(a.compare(b)); }

// Appends a random value of any BSON type; nests documents/arrays up to `depth`.
void AppendRandom(bson_t* out, const char* key, std::mt19937_64& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  static const int64_t kInts[] = {0,
                                  1,
                                  -1,
                                  2,
                                  1LL << 53,
                                  (1LL << 53) + 1,
                                  (1LL << 53) - 1,
                                  -(1LL << 53) - 1,
                                  std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::max() - 1,
                                  std::numeric_limits<int64_t>::max() - 1023,
                                  std::numeric_limits<int64_t>::max() - 1024,
                                  std::numeric_limits<int64_t>::max() - 1025,
                                  std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::min() + 1,
                                  std::numeric_limits<int64_t>::min() + 1025};
  static const double kDoubles[] = {0.0,
                                    -0.0,
                                    0.5,
                                    -0.5,
                                    1.0,
                                    9007199254740992.0,
                                    9223372036854775808.0,
                                    9223372036854774784.0,
                                    -9223372036854775808.0,
                                    1e300,
                                    -1e300,
                                    5e-324,
                                    std::numeric_limits<double>::infinity(),
                                    -std::numeric_limits<double>::infinity(),
                                    std::numeric_limits<double>::quiet_NaN()};
  switch (pick(depth > 0 ? 20 : 18)) {
    case 0:
      bson_append_int32(out, key, -1, static_cast<int32_t>(rng() % 21) - 10);
      break;
    case 1:
      // +-1 around the interesting values, wrapping at the ends.
      bson_append_int64(out, key, -1,
                        static_cast<int64_t>(static_cast<uint64_t>(kInts[pick(std::size(kInts))]) +
                                             static_cast<uint64_t>(pick(3) - 1)));
      break;
    case 2:
      bson_append_int64(out, key, -1, static_cast<int64_t>(rng()));
      break;
    case 3:
      bson_append_double(out, key, -1, kDoubles[pick(std::size(kDoubles))]);
      break;
    case 4: {
      double d = static_cast<double>(static_cast<int64_t>(rng() % 41) - 20) / 4;
      bson_append_double(out, key, -1, d);
      break;
    }
    case 5: {
      // doubles near int64 values, including the rounding of big ones
      bson_append_double(out, key, -1, static_cast<double>(kInts[pick(std::size(kInts))]));
      break;
    }
    case 6: {
      static const char* kDec[] = {"1",    "1.0",     "-2.5", "0", "NaN", "9007199254740993",
                                   "1E+2", "Infinity"};
      bson_decimal128_t dec;
      bson_decimal128_from_string(kDec[pick(std::size(kDec))], &dec);
      bson_append_decimal128(out, key, -1, &dec);
      break;
    }
    case 7: {
      std::string s;
      int n = pick(4);
      for (int i = 0; i < n; ++i)
        s.push_back(
            "\0\x01"
            "ab\xff"[pick(5)]);
      bson_append_utf8(out, key, -1, s.data(), static_cast<int>(s.size()));
      break;
    }
    case 8:
      bson_append_symbol(out, key, -1, pick(2) ? "ab" : "b", -1);
      break;
    case 9: {
      uint8_t bytes[3] = {static_cast<uint8_t>(pick(3)), static_cast<uint8_t>(pick(3)), 0};
      bson_append_binary(out, key, -1, static_cast<bson_subtype_t>(pick(2) * 4), bytes, pick(3));
      break;
    }
    case 10: {
      bson_oid_t oid;
      std::memset(oid.bytes, 0, 12);
      oid.bytes[pick(12)] = static_cast<uint8_t>(pick(3));
      bson_append_oid(out, key, -1, &oid);
      break;
    }
    case 11:
      bson_append_bool(out, key, -1, pick(2));
      break;
    case 12:
      bson_append_date_time(out, key, -1, static_cast<int64_t>(rng() % 5) - 2);
      break;
    case 13:
      bson_append_timestamp(out, key, -1, pick(2) ? 0xFFFFFFFFu : pick(3), pick(3));
      break;
    case 14:
      bson_append_regex(out, key, -1, pick(2) ? "a" : "ab", pick(2) ? "i" : "");
      break;
    case 15:
      switch (pick(4)) {
        case 0:
          bson_append_minkey(out, key, -1);
          break;
        case 1:
          bson_append_maxkey(out, key, -1);
          break;
        case 2:
          bson_append_null(out, key, -1);
          break;
        default:
          bson_append_undefined(out, key, -1);
      }
      break;
    case 16:
      bson_append_code(out, key, -1, pick(2) ? "f()" : "g()");
      break;
    case 17: {
      bson_t scope = BSON_INITIALIZER;
      if (pick(2)) bson_append_int32(&scope, "x", -1, pick(2));
      bson_append_code_with_scope(out, key, -1, "f", &scope);
      bson_destroy(&scope);
      break;
    }
    default: {  // 18, 19: nested
      bool array = pick(2);
      bson_t child;
      if (array) {
        bson_append_array_begin(out, key, -1, &child);
      } else {
        bson_append_document_begin(out, key, -1, &child);
      }
      int n = pick(3);
      for (int i = 0; i < n; ++i) {
        std::string k = array ? std::to_string(i) : std::string(1, "ab\0"[pick(2)]);
        AppendRandom(&child, k.c_str(), rng, depth - 1);
      }
      if (array) {
        bson_append_array_end(out, &child);
      } else {
        bson_append_document_end(out, &child);
      }
    }
  }
}

TEST(KeyStringTest, MemcmpOrderEqualsCompareValuesOnRandomValues) {
  std::mt19937_64 rng(20240611);
  bson_t arr = BSON_INITIALIZER;
  const int kCount = 4000;
  for (int i = 0; i < kCount; ++i) AppendRandom(&arr, std::to_string(i).c_str(), rng, 2);
  std::vector<bson_value_t> values;
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init(&it, &arr));
  while (bson_iter_next(&it)) values.push_back(*bson_iter_value(&it));
  ASSERT_EQ(values.size(), static_cast<size_t>(kCount));

  std::vector<std::string> asc, desc;
  for (const auto& v : values) {
    asc.push_back(EncodeIndexKey({v}, {1}));
    desc.push_back(EncodeIndexKey({v}, {-1}));
  }
  // Random pairs, both directions.
  for (int n = 0; n < 200000; ++n) {
    size_t i = rng() % values.size(), j = rng() % values.size();
    int c = Sign(CompareValues(values[i], values[j]));
    ASSERT_EQ(c, -Sign(CompareValues(values[j], values[i])));
    ASSERT_EQ(MemSign(asc[i], asc[j]), c) << i << " " << j;
    ASSERT_EQ(MemSign(desc[i], desc[j]), -c) << i << " " << j;
  }
  // Sorting by CompareValues leaves the encodings sorted (neighbours are the hardest pairs).
  std::vector<size_t> order(values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return CompareValues(values[a], values[b]) < 0; });
  for (size_t k = 1; k < order.size(); ++k) {
    int c = Sign(CompareValues(values[order[k - 1]], values[order[k]]));
    ASSERT_EQ(MemSign(asc[order[k - 1]], asc[order[k]]), c) << k;
  }
  // Compound keys: (a asc, b desc).
  for (int n = 0; n < 20000; ++n) {
    size_t a1 = rng() % values.size(), b1 = rng() % values.size();
    size_t a2 = rng() % 2 ? a1 : rng() % values.size(), b2 = rng() % values.size();
    int c = Sign(CompareValues(values[a1], values[a2]));
    if (c == 0) c = -Sign(CompareValues(values[b1], values[b2]));
    ASSERT_EQ(MemSign(EncodeIndexKey({values[a1], values[b1]}, {1, -1}),
                      EncodeIndexKey({values[a2], values[b2]}, {1, -1})),
              c);
  }
  bson_destroy(&arr);
}

TEST(KeyStringTest, EqualNumbersEncodeEqual) {
  wtm::Doc h;
  auto v = testing::Values(R"([1, {"$numberLong": "1"}, 1.0, {"$numberDecimal": "1"}])", &h);
  for (const auto& x : v) EXPECT_EQ(EncodeValue(x), EncodeValue(v[0]));
  auto z = testing::Values(R"([0.0, -0.0, {"$numberLong": "0"}])", &h);
  EXPECT_EQ(EncodeValue(z[0]), EncodeValue(z[1]));
  EXPECT_EQ(EncodeValue(z[0]), EncodeValue(z[2]));
}

TEST(KeyStringTest, BigInt64KeepsExactOrder) {
  wtm::Doc h;
  auto v = testing::Values(R"([{"$numberLong": "9223372036854775806"},
      {"$numberLong": "9223372036854775807"}, 9223372036854775808.0])",
                           &h);
  EXPECT_LT(EncodeValue(v[0]), EncodeValue(v[1]));
  EXPECT_LT(EncodeValue(v[1]), EncodeValue(v[2]));
}

TEST(KeyStringTest, EmbeddedNulIsEscaped) {
  bson_t b = BSON_INITIALIZER;
  bson_append_utf8(&b, "0", -1, "a", 1);
  bson_append_utf8(&b, "1", -1, "a\0", 2);
  bson_append_utf8(&b, "2", -1, "a\x01", 2);
  std::vector<bson_value_t> v;
  bson_iter_t it;
  bson_iter_init(&it, &b);
  while (bson_iter_next(&it)) v.push_back(*bson_iter_value(&it));
  EXPECT_LT(EncodeValue(v[0]), EncodeValue(v[1]));
  EXPECT_LT(EncodeValue(v[1]), EncodeValue(v[2]));
  // The second field of a compound key cannot bleed into the first.
  EXPECT_LT(EncodeIndexKey({v[0], v[2]}, {1, 1}), EncodeIndexKey({v[1], v[0]}, {1, 1}));
  bson_destroy(&b);
}

TEST(KeyStringTest, RecordIdRoundTripsAndOrders) {
  std::string key = EncodeIndexKey({}, {});
  for (int64_t id : {int64_t{0}, int64_t{1}, int64_t{-1}, std::numeric_limits<int64_t>::max(),
                     std::numeric_limits<int64_t>::min(), int64_t{1} << 40}) {
    EXPECT_EQ(DecodeRecordIdSuffix(AppendRecordId("prefix", id)), id);
  }
  EXPECT_LT(AppendRecordId(key, -5), AppendRecordId(key, 3));
  EXPECT_LT(AppendRecordId(key, 3), AppendRecordId(key, 300));
}

}  // namespace
}  // namespace wtm::query
