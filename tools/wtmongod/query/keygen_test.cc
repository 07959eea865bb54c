#include "query/keygen.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "query/compare.h"
#include "query/expression.h"
#include "query/test_util.h"

namespace wtm::query {
namespace {

using testing::J;

// Keys as a JSON array of arrays, for readable comparisons.
std::string Keys(const std::string& pattern, const std::string& doc) {
  wtm::Doc p = J(pattern), d = J(doc);
  auto keys = GetIndexKeys(p.get(), d.get());
  bson_t out = BSON_INITIALIZER;
  for (size_t i = 0; i < keys.size(); ++i) {
    bson_t k;
    std::string idx = std::to_string(i);
    bson_append_array_begin(&out, idx.c_str(), -1, &k);
    for (size_t j = 0; j < keys[i].size(); ++j)
      AppendValue(&k, std::to_string(j), keys[i][j].get());
    bson_append_array_end(&out, &k);
  }
  bson_t wrapper = BSON_INITIALIZER;
  bson_append_array(&wrapper, "k", -1, &out);
  std::string json = wtm::ToJson(&wrapper);
  bson_destroy(&out);
  bson_destroy(&wrapper);
  return json;
}

std::string Expect(const std::string& keys) { return J("{\"k\": " + keys + "}").ToJson(); }

TEST(KeygenTest, SimpleAndCompound) {
  EXPECT_EQ(Keys(R"({"a": 1})", R"({"a": 5})"), Expect("[[5]]"));
  EXPECT_EQ(Keys(R"({"a": 1, "b": -1})", R"({"b": "x", "a": 5})"), Expect(R"([[5, "x"]])"));
  EXPECT_EQ(Keys(R"({"a.b": 1})", R"({"a": {"b": {"c": 1}}})"), Expect(R"([[{"c": 1}]])"));
}

TEST(KeygenTest, MissingIsNull) {
  EXPECT_EQ(Keys(R"({"a": 1, "z": 1})", R"({"a": 5})"), Expect("[[5, null]]"));
  EXPECT_EQ(Keys(R"({"a.b": 1})", R"({"a": 5})"), Expect("[[null]]"));
}

TEST(KeygenTest, MultikeyDeduplicates) {
  EXPECT_EQ(Keys(R"({"a": 1})", R"({"a": [3, 1, 3, 1.0]})"), Expect("[[3], [1]]"));
  EXPECT_EQ(Keys(R"({"a": 1, "b": 1})", R"({"a": [1, 2], "b": "x"})"),
            Expect(R"([[1, "x"], [2, "x"]])"));
  EXPECT_EQ(Keys(R"({"a.b": 1})", R"({"a": [{"b": 1}, {"c": 2}, {"b": [2, 3]}]})"),
            Expect("[[1], [null], [2], [3]]"));
  EXPECT_EQ(Keys(R"({"a": 1})", R"({"a": []})"), Expect("[[null]]"));
  EXPECT_EQ(Keys(R"({"a": 1})", R"({"a": [[1, 2]]})"), Expect("[[[1, 2]]]"));
  EXPECT_EQ(Keys(R"({"a.1": 1})", R"({"a": [4, 5]})"), Expect("[[5]]"));
  wtm::Doc p = J(R"({"a": 1})"), d = J(R"({"a": [1]})"), s = J(R"({"a": 1})");
  EXPECT_TRUE(IsMultikey(p.get(), d.get()));
  EXPECT_FALSE(IsMultikey(p.get(), s.get()));
}

TEST(KeygenTest, ParallelArraysFail) {
  wtm::Doc p = J(R"({"a": 1, "b": 1})"), d = J(R"({"a": [1, 2], "b": [3]})");
  try {
    GetIndexKeys(p.get(), d.get());
    FAIL();
  } catch (const MongoError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCannotIndexParallelArrays);
    EXPECT_STREQ(e.what(), "cannot index parallel arrays [a] [b]");
  }
}

TEST(KeygenTest, KeysOutliveDocument) {
  wtm::Doc p = J(R"({"s": 1})");
  std::vector<std::vector<OwnedValue>> keys;
  {
    wtm::Doc d = J(R"({"s": "a long string value that must be copied"})");
    keys = GetIndexKeys(p.get(), d.get());
  }
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_STREQ(keys[0][0]->value.v_utf8.str, "a long string value that must be copied");
  OwnedValue copy = keys[0][0];
  OwnedValue moved = std::move(keys[0][0]);
  EXPECT_TRUE(ValuesEqual(copy.get(), moved.get()));
}

}  // namespace
}  // namespace wtm::query
