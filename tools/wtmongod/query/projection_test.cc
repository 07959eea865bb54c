#include "query/projection.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "query/sort.h"
#include "query/test_util.h"

namespace wtm::query {
namespace {

using testing::J;

std::string P(const std::string& spec, const std::string& doc) {
  wtm::Doc s = J(spec), d = J(doc);
  return Projection(s.get()).Apply(d.get()).ToJson();
}

std::string Canon(const std::string& json) { return J(json).ToJson(); }

int ErrorOf(const std::string& spec) {
  wtm::Doc s = J(spec);
  try {
    Projection p(s.get());
  } catch (const MongoError& e) {
    return e.numeric();
  }
  return 0;
}

TEST(ProjectionTest, EmptyKeepsDocument) {
  wtm::Doc d = J(R"({"a": 1})");
  Projection p(nullptr);
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.Apply(d.get()).ToJson(), d.ToJson());
  wtm::Doc e = J("{}");
  EXPECT_TRUE(Projection(e.get()).empty());
}

TEST(ProjectionTest, Inclusion) {
  EXPECT_EQ(P(R"({"a": 1})", R"({"_id": 7, "a": 1, "b": 2})"), Canon(R"({"_id": 7, "a": 1})"));
  EXPECT_EQ(P(R"({"a": true, "_id": 0})", R"({"_id": 7, "a": 1, "b": 2})"), Canon(R"({"a": 1})"));
  EXPECT_EQ(P(R"({"b": 1, "a": 1})", R"({"a": 1, "b": 2, "c": 3})"), Canon(R"({"a": 1, "b": 2})"));
  EXPECT_EQ(P(R"({"_id": 1})", R"({"_id": 7, "a": 1})"), Canon(R"({"_id": 7})"));
  EXPECT_EQ(P(R"({"x": 1})", R"({"a": 1})"), Canon("{}"));
}

TEST(ProjectionTest, InclusionDottedPaths) {
  EXPECT_EQ(P(R"({"a.b": 1})", R"({"a": {"b": 1, "c": 2}, "d": 3})"), Canon(R"({"a": {"b": 1}})"));
  EXPECT_EQ(P(R"({"a": {"b": 1}})", R"({"a": {"b": 1, "c": 2}})"), Canon(R"({"a": {"b": 1}})"));
  EXPECT_EQ(P(R"({"a.b": 1})", R"({"a": [{"b": 1, "c": 2}, {"c": 3}, 5]})"),
            Canon(R"({"a": [{"b": 1}, {}]})"));
  EXPECT_EQ(P(R"({"a.b": 1})", R"({"a": 5})"), Canon("{}"));
}

TEST(ProjectionTest, Exclusion) {
  EXPECT_EQ(P(R"({"b": 0})", R"({"_id": 1, "a": 1, "b": 2})"), Canon(R"({"_id": 1, "a": 1})"));
  EXPECT_EQ(P(R"({"_id": 0})", R"({"_id": 1, "a": 1})"), Canon(R"({"a": 1})"));
  EXPECT_EQ(P(R"({"a.b": 0})", R"({"a": {"b": 1, "c": 2}, "d": 3})"),
            Canon(R"({"a": {"c": 2}, "d": 3})"));
  EXPECT_EQ(P(R"({"a.b": false})", R"({"a": [{"b": 1, "c": 2}, 5]})"),
            Canon(R"({"a": [{"c": 2}, 5]})"));
}

TEST(ProjectionTest, ComputedFields) {
  EXPECT_EQ(
      P(R"({"x": "$a.b", "y": {"$literal": 1}, "z": "text"})", R"({"_id": 1, "a": {"b": 9}})"),
      Canon(R"({"_id": 1, "x": 9, "y": 1, "z": "text"})"));
  EXPECT_EQ(P(R"({"x": "$missing", "_id": 0})", R"({"a": 1})"), Canon("{}"));
  EXPECT_EQ(P(R"({"x": "$a.b", "_id": 0})", R"({"a": [{"b": 1}, {"b": 2}, {}]})"),
            Canon(R"({"x": [1, 2]})"));
  EXPECT_EQ(P(R"({"n.m": "$a", "_id": 0})", R"({"a": 3})"), Canon(R"({"n": {"m": 3}})"));
}

TEST(ProjectionTest, Errors) {
  wtm::Doc s = J(R"({"a": 1, "b": 0})");
  try {
    Projection p(s.get());
    FAIL();
  } catch (const MongoError& e) {
    EXPECT_EQ(e.numeric(), 31254);
    EXPECT_STREQ(e.what(), "Cannot do exclusion on field b in inclusion projection");
  }
  EXPECT_EQ(ErrorOf(R"({"a": 0, "b": 1})"), 31253);
  EXPECT_EQ(ErrorOf(R"({"a": 1, "a.b": 1})"), 31250);
  EXPECT_EQ(ErrorOf(R"({"a": {"$foo": 1}})"), 168);
  EXPECT_EQ(ErrorOf(R"({"_id": 0, "a": 1})"), 0);
  EXPECT_EQ(ErrorOf(R"({"_id": 1, "a": 0})"), 0);
}

// ---- sort ----

int S(const std::string& spec, const std::string& a, const std::string& b) {
  wtm::Doc s = J(spec), x = J(a), y = J(b);
  int c = SortSpec(s.get()).Compare(x.get(), y.get());
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

TEST(SortTest, Fields) {
  EXPECT_EQ(S(R"({"a": 1})", R"({"a": 1})", R"({"a": 2})"), -1);
  EXPECT_EQ(S(R"({"a": -1})", R"({"a": 1})", R"({"a": 2})"), 1);
  EXPECT_EQ(S(R"({"a": 1, "b": -1})", R"({"a": 1, "b": 1})", R"({"a": 1, "b": 2})"), 1);
  EXPECT_EQ(S(R"({"a": 1, "b": -1})", R"({"a": 1, "b": 1})", R"({"a": 1.0, "b": 1})"), 0);
  EXPECT_EQ(S(R"({"a.b": 1})", R"({"a": {"b": "x"}})", R"({"a": {"b": 5}})"), 1);
  EXPECT_EQ(S(R"({"a": 1})", R"({})", R"({"a": null})"), 0);  // missing sorts as null
  EXPECT_EQ(S(R"({"a": 1})", R"({})", R"({"a": 0})"), -1);
}

TEST(SortTest, ArraysUseMinAscendingMaxDescending) {
  EXPECT_EQ(S(R"({"a": 1})", R"({"a": [5, 1]})", R"({"a": 2})"), -1);   // key 1 < 2
  EXPECT_EQ(S(R"({"a": -1})", R"({"a": [5, 1]})", R"({"a": 2})"), -1);  // key 5 > 2 first
  EXPECT_EQ(S(R"({"a": 1})", R"({"a": []})", R"({"a": null})"), -1);
  EXPECT_EQ(S(R"({"a.b": 1})", R"({"a": [{"b": 3}, {"b": 0}]})", R"({"a": {"b": 1}})"), -1);
}

TEST(SortTest, BadSpec) {
  wtm::Doc s = J(R"({"a": 2})");
  try {
    SortSpec spec(s.get());
    FAIL();
  } catch (const MongoError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadValue);
  }
  wtm::Doc t = J(R"({"a": "x"})");
  EXPECT_THROW(SortSpec spec(t.get()), MongoError);
  wtm::Doc ok = J(R"({"a": -1.0, "b": {"$numberLong": "1"}})");
  EXPECT_FALSE(SortSpec(ok.get()).empty());
  EXPECT_TRUE(SortSpec(nullptr).empty());
}

}  // namespace
}  // namespace wtm::query
