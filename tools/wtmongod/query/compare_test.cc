#include "query/compare.h"

#include <gtest/gtest.h>

#include "query/test_util.h"

namespace wtm::query {
namespace {

using testing::J;
using testing::Values;

// Every value must compare below every later one and equal to itself.
void ExpectAscending(const std::vector<bson_value_t>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(CompareValues(v[i], v[i]), 0) << i;
    for (size_t j = i + 1; j < v.size(); ++j) {
      EXPECT_LT(CompareValues(v[i], v[j]), 0) << i << " vs " << j;
      EXPECT_GT(CompareValues(v[j], v[i]), 0) << j << " vs " << i;
    }
  }
}

TEST(CompareTest, CanonicalTypeOrder) {
  wtm::Doc h;
  auto v = Values(R"([{"$minKey": 1}, {"$undefined": true}, null, {"$numberDouble": "NaN"},
      -1, "", "abc", {}, {"a": 1}, [], [1], {"$binary": {"base64": "", "subType": "00"}},
      {"$oid": "000000000000000000000000"}, false, true, {"$date": {"$numberLong": "0"}},
      {"$timestamp": {"t": 1, "i": 1}}, {"$regularExpression": {"pattern": "a", "options": ""}},
      {"$maxKey": 1}])",
                  &h);
  ASSERT_EQ(v.size(), 19u);
  ExpectAscending(v);
}

TEST(CompareTest, NumbersAcrossTypes) {
  wtm::Doc h;
  auto v = Values(R"([{"$numberDouble": "NaN"}, {"$numberDouble": "-Infinity"},
      {"$numberLong": "-9223372036854775808"}, -2147483648, -1.5, -1, 0, 0.5, 1, 1.0000001,
      {"$numberLong": "9007199254740993"}, {"$numberLong": "9223372036854774784"},
      {"$numberLong": "9223372036854775806"}, {"$numberLong": "9223372036854775807"},
      9223372036854775808.0, {"$numberDouble": "Infinity"}])",
                  &h);
  ASSERT_EQ(v.size(), 16u);
  ExpectAscending(v);
}

TEST(CompareTest, EqualNumbersOfDifferentTypes) {
  wtm::Doc h;
  auto v = Values(R"([1, {"$numberLong": "1"}, 1.0, {"$numberDecimal": "1.0"}, -0.0, 0])", &h);
  EXPECT_EQ(CompareValues(v[0], v[1]), 0);
  EXPECT_EQ(CompareValues(v[1], v[2]), 0);
  EXPECT_EQ(CompareValues(v[2], v[3]), 0);
  EXPECT_EQ(CompareValues(v[4], v[5]), 0);
  EXPECT_TRUE(ValuesEqual(v[0], v[3]));
  EXPECT_FALSE(ValuesEqual(v[0], v[4]));
}

TEST(CompareTest, Int64BeyondDoublePrecision) {
  wtm::Doc h;
  // 2^53 + 1 is not a double: it is above the double 2^53 and below 2^53 + 2.
  auto v = Values(R"([{"$numberLong": "9007199254740993"}, 9007199254740992.0,
      9007199254740994.0, {"$numberLong": "9223372036854775807"}, 9223372036854775808.0])",
                  &h);
  EXPECT_GT(CompareValues(v[0], v[1]), 0);
  EXPECT_LT(CompareValues(v[0], v[2]), 0);
  EXPECT_LT(CompareValues(v[3], v[4]), 0);  // INT64_MAX < 2^63
}

TEST(CompareTest, NaNEqualsNaNAndIsLowest) {
  wtm::Doc h;
  auto v = Values(R"([{"$numberDouble": "NaN"}, {"$numberDouble": "NaN"},
      {"$numberDouble": "-Infinity"}, null, {"$numberDecimal": "NaN"}])",
                  &h);
  EXPECT_EQ(CompareValues(v[0], v[1]), 0);
  EXPECT_LT(CompareValues(v[0], v[2]), 0);
  EXPECT_GT(CompareValues(v[0], v[3]), 0);
  EXPECT_EQ(CompareValues(v[0], v[4]), 0);
}

TEST(CompareTest, StringsBytewiseThenLength) {
  wtm::Doc h;
  auto v = Values(R"(["", "A", "B", "a", "ab", "ab\u0000", "ab\u0001", "b"])", &h);
  ExpectAscending(v);
}

TEST(CompareTest, DocsCompareTypeThenNameThenValue) {
  wtm::Doc a = J(R"({"a": 1})"), b = J(R"({"a": "x"})"), c = J(R"({"b": 0})"),
           d = J(R"({"a": 1, "b": 1})"), e = J("{}");
  EXPECT_LT(CompareDocs(a.get(), b.get()), 0);  // number < string
  EXPECT_LT(CompareDocs(a.get(), c.get()), 0);  // name a < b
  EXPECT_GT(CompareDocs(b.get(), c.get()), 0);  // type before name
  EXPECT_LT(CompareDocs(a.get(), d.get()), 0);  // prefix first
  EXPECT_LT(CompareDocs(e.get(), a.get()), 0);
  EXPECT_EQ(CompareDocs(a.get(), J(R"({"a": 1.0})").get()), 0);
}

TEST(CompareTest, OtherTypes) {
  wtm::Doc h;
  auto v = Values(R"([{"$binary": {"base64": "AQ==", "subType": "05"}},
      {"$binary": {"base64": "AQI=", "subType": "00"}},
      {"$binary": {"base64": "AQM=", "subType": "00"}},
      {"$binary": {"base64": "AQM=", "subType": "04"}}])",
                  &h);
  ExpectAscending(v);  // length, then subtype, then bytes
  auto t = Values(R"([{"$timestamp": {"t": 1, "i": 5}}, {"$timestamp": {"t": 2, "i": 1}},
      {"$timestamp": {"t": 4294967295, "i": 0}}, {"$date": {"$numberLong": "-5"}}])",
                  &h);
  EXPECT_LT(CompareValues(t[0], t[1]), 0);
  EXPECT_LT(CompareValues(t[1], t[2]), 0);  // unsigned seconds
  EXPECT_LT(CompareValues(t[3], t[0]), 0);  // date < timestamp
}

TEST(CompareTest, GetPathValues) {
  wtm::Doc d = J(R"({"a": {"b": {"c": 5}}, "x": [{"y": 1}, {"y": [2, 3]}, {"z": 0}, 7],
                     "n": [[1], [2]], "e": []})");
  auto v = GetPathValues(d.get(), "a.b.c");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].value.v_int32, 5);

  bool missing = false;
  v = GetPathValues(d.get(), "x.y", &missing);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].value.v_int32, 1);
  EXPECT_EQ(v[1].value_type, BSON_TYPE_ARRAY);  // arrays at the end are not expanded
  EXPECT_TRUE(missing);                         // {z: 0} and 7 lack y

  v = GetPathValues(d.get(), "x.1.y", &missing);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].value_type, BSON_TYPE_ARRAY);
  EXPECT_FALSE(missing);

  v = GetPathValues(d.get(), "n.0");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].value_type, BSON_TYPE_ARRAY);

  v = GetPathValues(d.get(), "a.q", &missing);
  EXPECT_TRUE(v.empty());
  EXPECT_TRUE(missing);
  v = GetPathValues(d.get(), "e.f", &missing);
  EXPECT_TRUE(v.empty());
  EXPECT_TRUE(missing);
}

}  // namespace
}  // namespace wtm::query
