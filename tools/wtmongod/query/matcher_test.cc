#include "query/matcher.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "query/compare.h"
#include "query/test_util.h"

namespace wtm::query {
namespace {

using testing::J;

bool M(const std::string& filter, const std::string& doc) {
  wtm::Doc f = J(filter), d = J(doc);
  return Matcher(f.get()).Matches(d.get());
}

int ErrorCode(const std::string& filter) {
  wtm::Doc f = J(filter);
  try {
    Matcher m(f.get());
  } catch (const MongoError& e) {
    return e.numeric();
  }
  return 0;
}

TEST(MatcherTest, EmptyAndNullFilterMatchEverything) {
  EXPECT_TRUE(M("{}", R"({"a": 1})"));
  wtm::Doc d = J(R"({"a": 1})");
  EXPECT_TRUE(Matcher(nullptr).Matches(d.get()));
}

TEST(MatcherTest, Equality) {
  EXPECT_TRUE(M(R"({"a": 1})", R"({"a": 1.0})"));
  EXPECT_FALSE(M(R"({"a": 1})", R"({"a": "1"})"));
  EXPECT_TRUE(M(R"({"a": 1, "b": "x"})", R"({"a": 1, "b": "x"})"));
  EXPECT_FALSE(M(R"({"a": 1, "b": "x"})", R"({"a": 1, "b": "y"})"));
  EXPECT_TRUE(M(R"({"a": {"b": 1}})", R"({"a": {"b": 1}})"));
  EXPECT_FALSE(M(R"({"a": {"b": 1}})", R"({"a": {"b": 1, "c": 2}})"));
  EXPECT_FALSE(M(R"({"a": {"b": 1, "c": 2}})", R"({"a": {"c": 2, "b": 1}})"));  // order matters
}

TEST(MatcherTest, EqualityOnArrays) {
  EXPECT_TRUE(M(R"({"a": 2})", R"({"a": [1, 2, 3]})"));
  EXPECT_FALSE(M(R"({"a": 4})", R"({"a": [1, 2, 3]})"));
  EXPECT_TRUE(M(R"({"a": [1, 2]})", R"({"a": [1, 2]})"));
  EXPECT_FALSE(M(R"({"a": [1, 2]})", R"({"a": [2, 1]})"));
  EXPECT_TRUE(M(R"({"a": [1, 2]})", R"({"a": [[1, 2], 3]})"));  // element equals
}

TEST(MatcherTest, DottedPaths) {
  EXPECT_TRUE(M(R"({"a.b.c": 1})", R"({"a": {"b": {"c": 1}}})"));
  EXPECT_TRUE(M(R"({"a.b": 2})", R"({"a": [{"b": 1}, {"b": 2}]})"));
  EXPECT_TRUE(M(R"({"a.b": 3})", R"({"a": [{"b": [3, 4]}]})"));
  EXPECT_TRUE(M(R"({"a.1": 5})", R"({"a": [4, 5]})"));
  EXPECT_FALSE(M(R"({"a.0": 5})", R"({"a": [4, 5]})"));
  EXPECT_FALSE(M(R"({"a.b": 1})", R"({"a": 1})"));
}

TEST(MatcherTest, NullMatchesMissing) {
  EXPECT_TRUE(M(R"({"a": null})", R"({"b": 1})"));
  EXPECT_TRUE(M(R"({"a": null})", R"({"a": null})"));
  EXPECT_FALSE(M(R"({"a": null})", R"({"a": 0})"));
  EXPECT_TRUE(M(R"({"a.b": null})", R"({"a": [{"b": 1}, {"c": 1}]})"));
  EXPECT_FALSE(M(R"({"a.b": null})", R"({"a": [{"b": 1}]})"));
  EXPECT_TRUE(M(R"({"a": {"$ne": null}})", R"({"a": 0})"));
  EXPECT_FALSE(M(R"({"a": {"$ne": null}})", R"({"b": 0})"));
}

TEST(MatcherTest, Comparisons) {
  EXPECT_TRUE(M(R"({"a": {"$gt": 1}})", R"({"a": 2})"));
  EXPECT_FALSE(M(R"({"a": {"$gt": 2}})", R"({"a": 2})"));
  EXPECT_TRUE(M(R"({"a": {"$gte": 2}})", R"({"a": 2.0})"));
  EXPECT_TRUE(M(R"({"a": {"$lt": 2}})", R"({"a": {"$numberLong": "1"}})"));
  EXPECT_TRUE(M(R"({"a": {"$lte": 2, "$gte": 2}})", R"({"a": 2})"));
  EXPECT_FALSE(M(R"({"a": {"$lt": 2, "$gt": 0}})", R"({"a": 5})"));
  // Type bracketing: numbers never compare with strings.
  EXPECT_FALSE(M(R"({"a": {"$gt": 1}})", R"({"a": "zzz"})"));
  EXPECT_FALSE(M(R"({"a": {"$lt": "a"}})", R"({"a": 1})"));
  EXPECT_TRUE(M(R"({"a": {"$gt": "abc"}})", R"({"a": "abd"})"));
  // Arrays: any element.
  EXPECT_TRUE(M(R"({"a": {"$gt": 5}})", R"({"a": [1, 9]})"));
  EXPECT_FALSE(M(R"({"a": {"$gt": 9}})", R"({"a": [1, 9]})"));
  // Missing fields match no range.
  EXPECT_FALSE(M(R"({"a": {"$lt": 5}})", R"({"b": 1})"));
  // Timestamps (oplog ts).
  EXPECT_TRUE(M(R"({"ts": {"$gt": {"$timestamp": {"t": 5, "i": 1}}}})",
                R"({"ts": {"$timestamp": {"t": 5, "i": 2}}})"));
  // NaN only equals NaN.
  EXPECT_FALSE(M(R"({"a": {"$lt": 5}})", R"({"a": {"$numberDouble": "NaN"}})"));
  EXPECT_TRUE(
      M(R"({"a": {"$lte": {"$numberDouble": "NaN"}}})", R"({"a": {"$numberDouble": "NaN"}})"));
  // $gt MinKey crosses types.
  EXPECT_TRUE(M(R"({"a": {"$gt": {"$minKey": 1}}})", R"({"a": "s"})"));
}

TEST(MatcherTest, EqNe) {
  EXPECT_TRUE(M(R"({"a": {"$eq": 3}})", R"({"a": [3]})"));
  EXPECT_TRUE(M(R"({"a": {"$eq": {"$x": 1}}})", R"({"a": {"$x": 1}})"));
  EXPECT_TRUE(M(R"({"a": {"$ne": 3}})", R"({"a": 4})"));
  EXPECT_FALSE(M(R"({"a": {"$ne": 3}})", R"({"a": [4, 3]})"));
  EXPECT_TRUE(M(R"({"a": {"$ne": 3}})", "{}"));
}

TEST(MatcherTest, InNin) {
  EXPECT_TRUE(M(R"({"a": {"$in": [1, 2]}})", R"({"a": 2})"));
  EXPECT_FALSE(M(R"({"a": {"$in": [1, 2]}})", R"({"a": 3})"));
  EXPECT_TRUE(M(R"({"a": {"$in": [1, null]}})", "{}"));
  EXPECT_TRUE(M(R"({"a": {"$in": [{"$regularExpression": {"pattern": "^x", "options": ""}}]}})",
                R"({"a": "xyz"})"));
  EXPECT_TRUE(M(R"({"a": {"$in": [5]}})", R"({"a": [4, 5]})"));
  EXPECT_FALSE(M(R"({"a": {"$in": []}})", R"({"a": 1})"));
  EXPECT_TRUE(M(R"({"a": {"$nin": [1, 2]}})", R"({"a": 3})"));
  EXPECT_FALSE(M(R"({"a": {"$nin": [1, 2]}})", R"({"a": [3, 2]})"));
  EXPECT_EQ(ErrorCode(R"({"a": {"$in": 1}})"), 2);
}

TEST(MatcherTest, Exists) {
  EXPECT_TRUE(M(R"({"a": {"$exists": true}})", R"({"a": null})"));
  EXPECT_FALSE(M(R"({"a": {"$exists": true}})", R"({"b": 1})"));
  EXPECT_TRUE(M(R"({"a": {"$exists": false}})", R"({"b": 1})"));
  EXPECT_TRUE(M(R"({"a.b": {"$exists": 1}})", R"({"a": [{"c": 1}, {"b": 2}]})"));
  EXPECT_FALSE(M(R"({"a.b": {"$exists": 0}})", R"({"a": [{"c": 1}, {"b": 2}]})"));
}

TEST(MatcherTest, LogicalOperators) {
  EXPECT_TRUE(M(R"({"$and": [{"a": 1}, {"b": 2}]})", R"({"a": 1, "b": 2})"));
  EXPECT_FALSE(M(R"({"$and": [{"a": 1}, {"b": 2}]})", R"({"a": 1, "b": 3})"));
  EXPECT_TRUE(M(R"({"$or": [{"a": 1}, {"b": 2}]})", R"({"a": 0, "b": 2})"));
  EXPECT_FALSE(M(R"({"$or": [{"a": 1}, {"b": 2}]})", R"({"a": 0, "b": 0})"));
  EXPECT_TRUE(M(R"({"$nor": [{"a": 1}, {"b": 2}]})", R"({"a": 0, "b": 0})"));
  EXPECT_FALSE(M(R"({"$nor": [{"a": 1}, {"b": 2}]})", R"({"a": 1})"));
  EXPECT_TRUE(M(R"({"c": 1, "$or": [{"a": 1}, {"$and": [{"b": 2}, {"d": 3}]}]})",
                R"({"c": 1, "b": 2, "d": 3})"));
  EXPECT_EQ(ErrorCode(R"({"$or": []})"), 2);
  EXPECT_EQ(ErrorCode(R"({"$and": [1]})"), 2);
}

TEST(MatcherTest, Not) {
  EXPECT_TRUE(M(R"({"a": {"$not": {"$gt": 5}}})", R"({"a": 3})"));
  EXPECT_FALSE(M(R"({"a": {"$not": {"$gt": 5}}})", R"({"a": 7})"));
  EXPECT_TRUE(M(R"({"a": {"$not": {"$gt": 5}}})", "{}"));
  EXPECT_TRUE(M(R"({"a": {"$not": {"$regularExpression": {"pattern": "^x", "options": ""}}}})",
                R"({"a": "yx"})"));
  EXPECT_EQ(ErrorCode(R"({"a": {"$not": 5}})"), 2);
  EXPECT_EQ(ErrorCode(R"({"a": {"$not": {}}})"), 2);
}

// Extended JSON reads {"$type": ...} as legacy binary, so these filters are built with BCON.
bool T(bson_t* filter, const std::string& doc) {
  wtm::Doc f(filter), d = J(doc);
  return Matcher(f.get()).Matches(d.get());
}

TEST(MatcherTest, Type) {
  EXPECT_TRUE(T(BCON_NEW("a", "{", "$type", "string", "}"), R"({"a": "x"})"));
  EXPECT_FALSE(T(BCON_NEW("a", "{", "$type", "string", "}"), R"({"a": 1})"));
  EXPECT_TRUE(T(BCON_NEW("a", "{", "$type", "number", "}"), R"({"a": {"$numberLong": "1"}})"));
  EXPECT_TRUE(T(BCON_NEW("a", "{", "$type", BCON_INT32(16), "}"), R"({"a": 1})"));
  EXPECT_FALSE(T(BCON_NEW("a", "{", "$type", BCON_INT32(18), "}"), R"({"a": 1})"));
  EXPECT_TRUE(T(BCON_NEW("a", "{", "$type", "array", "}"), R"({"a": []})"));
  EXPECT_TRUE(T(BCON_NEW("a", "{", "$type", "int", "}"), R"({"a": ["x", 1]})"));
  EXPECT_TRUE(T(BCON_NEW("a", "{", "$type", "[", "bool", "null", "]", "}"), R"({"a": null})"));
  EXPECT_FALSE(T(BCON_NEW("a", "{", "$type", "[", "bool", "null", "]", "}"), R"({"a": 0})"));
  EXPECT_TRUE(T(BCON_NEW("a", "{", "$type", "timestamp", "}"),
                R"({"a": {"$timestamp": {"t": 1, "i": 1}}})"));
  EXPECT_THROW(T(BCON_NEW("a", "{", "$type", "nope", "}"), "{}"), MongoError);
  EXPECT_THROW(T(BCON_NEW("a", "{", "$type", BCON_INT32(99), "}"), "{}"), MongoError);
}

TEST(MatcherTest, Size) {
  EXPECT_TRUE(M(R"({"a": {"$size": 2}})", R"({"a": [1, [2, 3]]})"));
  EXPECT_FALSE(M(R"({"a": {"$size": 3}})", R"({"a": [1, [2, 3]]})"));
  EXPECT_TRUE(M(R"({"a": {"$size": 0}})", R"({"a": []})"));
  EXPECT_FALSE(M(R"({"a": {"$size": 1}})", R"({"a": 1})"));
  EXPECT_EQ(ErrorCode(R"({"a": {"$size": "x"}})"), 2);
}

TEST(MatcherTest, All) {
  EXPECT_TRUE(M(R"({"a": {"$all": [1, 3]}})", R"({"a": [3, 2, 1]})"));
  EXPECT_FALSE(M(R"({"a": {"$all": [1, 4]}})", R"({"a": [3, 2, 1]})"));
  EXPECT_FALSE(M(R"({"a": {"$all": []}})", R"({"a": [1]})"));
  EXPECT_TRUE(M(R"({"a": {"$all": [1]}})", R"({"a": 1})"));
  EXPECT_TRUE(M(R"({"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"b": 2}}]}})",
                R"({"a": [{"b": 2}, {"b": 1}]})"));
}

TEST(MatcherTest, ElemMatch) {
  EXPECT_TRUE(M(R"({"a": {"$elemMatch": {"b": 1, "c": 2}}})",
                R"({"a": [{"b": 1, "c": 1}, {"b": 1, "c": 2}]})"));
  // Without $elemMatch the conditions may hold on different elements.
  EXPECT_FALSE(M(R"({"a": {"$elemMatch": {"b": 1, "c": 2}}})",
                 R"({"a": [{"b": 1, "c": 1}, {"b": 2, "c": 2}]})"));
  EXPECT_TRUE(M(R"({"a.b": 1, "a.c": 2})", R"({"a": [{"b": 1, "c": 1}, {"b": 2, "c": 2}]})"));
  EXPECT_TRUE(M(R"({"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}})", R"({"a": [0, 2, 5]})"));
  EXPECT_FALSE(M(R"({"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}})", R"({"a": [0, 5]})"));
  EXPECT_FALSE(M(R"({"a": {"$elemMatch": {"$gt": 1}}})", R"({"a": 5})"));  // not an array
}

TEST(MatcherTest, Regex) {
  EXPECT_TRUE(M(R"({"a": {"$regex": "^ab"}})", R"({"a": "abc"})"));
  EXPECT_FALSE(M(R"({"a": {"$regex": "^ab"}})", R"({"a": "cab"})"));
  EXPECT_TRUE(M(R"({"a": {"$regex": "b"}})", R"({"a": "cab"})"));  // unanchored
  EXPECT_TRUE(M(R"({"a": {"$regex": "^AB", "$options": "i"}})", R"({"a": "abc"})"));
  wtm::Doc split(BCON_NEW("a", "{", "$regex", "^AB", "$options", "i", "}"));  // not legacy JSON
  wtm::Doc abc = J(R"({"a": "abc"})");
  EXPECT_TRUE(Matcher(split.get()).Matches(abc.get()));
  EXPECT_FALSE(M(R"({"a": {"$regex": "^AB"}})", R"({"a": "abc"})"));
  EXPECT_TRUE(
      M(R"({"a": {"$regularExpression": {"pattern": "^b", "options": "m"}}})", R"({"a": "a\nb"})"));
  EXPECT_FALSE(
      M(R"({"a": {"$regularExpression": {"pattern": "^b", "options": ""}}})", R"({"a": "a\nb"})"));
  EXPECT_TRUE(M(R"({"a": {"$regex": "a.b", "$options": "s"}})", R"({"a": "a\nb"})"));
  EXPECT_FALSE(M(R"({"a": {"$regex": "a.b"}})", R"({"a": "a\nb"})"));
  EXPECT_TRUE(M(R"({"a": {"$regex": "a b # comment", "$options": "x"}})", R"({"a": "ab"})"));
  EXPECT_TRUE(M(R"({"a": {"$regex": "^x"}})", R"({"a": [1, "xy"]})"));
  EXPECT_FALSE(M(R"({"a": {"$regex": "1"}})", R"({"a": 1})"));
  EXPECT_EQ(ErrorCode(R"({"a": {"$regex": "("}})"), 51091);
  wtm::Doc only_options(BCON_NEW("a", "{", "$options", "i", "}"));
  try {
    Matcher m(only_options.get());
    FAIL();
  } catch (const MongoError& e) {
    EXPECT_STREQ(e.what(), "$options needs a $regex");
  }
}

TEST(MatcherTest, Mod) {
  EXPECT_TRUE(M(R"({"a": {"$mod": [4, 1]}})", R"({"a": 9})"));
  EXPECT_FALSE(M(R"({"a": {"$mod": [4, 1]}})", R"({"a": 10})"));
  EXPECT_EQ(ErrorCode(R"({"a": {"$mod": [0, 1]}})"), 2);
}

TEST(MatcherTest, UnknownOperatorsUseMongodText) {
  wtm::Doc f = J(R"({"a": {"$foo": 1}})");
  try {
    Matcher m(f.get());
    FAIL() << "no error";
  } catch (const MongoError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadValue);
    EXPECT_STREQ(e.what(), "unknown operator: $foo");
  }
  wtm::Doc g = J(R"({"$bar": 1})");
  try {
    Matcher m(g.get());
    FAIL() << "no error";
  } catch (const MongoError& e) {
    EXPECT_STREQ(e.what(), "unknown top level operator: $bar");
  }
  EXPECT_EQ(ErrorCode(R"({"$comment": "hi", "a": 1})"), 0);
}

TEST(MatcherTest, EqualityOn) {
  wtm::Doc f = J(R"({"_id": 5, "b": {"$gt": 1}})");
  Matcher m(f.get());
  auto v = m.EqualityOn("_id");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->value.v_int32, 5);
  EXPECT_FALSE(m.EqualityOn("b").has_value());
  EXPECT_FALSE(m.EqualityOn("c").has_value());

  wtm::Doc g = J(R"({"$and": [{"x": 1}, {"_id": {"$eq": "k"}}]})");
  Matcher copy = Matcher(g.get());  // survives the original filter document
  g = J("{}");
  auto w = copy.EqualityOn("_id");
  ASSERT_TRUE(w.has_value());
  EXPECT_STREQ(w->value.v_utf8.str, "k");

  wtm::Doc h = J(R"({"$or": [{"_id": 1}, {"_id": 2}]})");
  EXPECT_FALSE(Matcher(h.get()).EqualityOn("_id").has_value());
  wtm::Doc r = J(R"({"_id": {"$regularExpression": {"pattern": "a", "options": ""}}})");
  EXPECT_FALSE(Matcher(r.get()).EqualityOn("_id").has_value());
}

TEST(MatcherTest, BoundsOn) {
  wtm::Doc f = J(R"({"ts": {"$gt": {"$timestamp": {"t": 1, "i": 0}},
                            "$lte": {"$timestamp": {"t": 9, "i": 0}}},
                     "$and": [{"ts": {"$gte": {"$timestamp": {"t": 3, "i": 0}}}}]})");
  Matcher m(f.get());
  Matcher::Bounds b = m.BoundsOn("ts");
  ASSERT_TRUE(b.lower.has_value());
  ASSERT_TRUE(b.upper.has_value());
  EXPECT_EQ(b.lower->value.v_timestamp.timestamp, 3u);  // tightest lower bound
  EXPECT_TRUE(b.lower_inclusive);
  EXPECT_EQ(b.upper->value.v_timestamp.timestamp, 9u);
  EXPECT_TRUE(b.upper_inclusive);

  wtm::Doc g = J(R"({"x": 4})");
  Matcher::Bounds e = Matcher(g.get()).BoundsOn("x");
  ASSERT_TRUE(e.lower && e.upper);
  EXPECT_TRUE(e.lower_inclusive && e.upper_inclusive);
  EXPECT_EQ(CompareValues(*e.lower, *e.upper), 0);
  Matcher::Bounds none = Matcher(g.get()).BoundsOn("y");
  EXPECT_FALSE(none.lower || none.upper);

  wtm::Doc h = J(R"({"x": {"$gt": 4, "$gte": 4}})");
  EXPECT_FALSE(Matcher(h.get()).BoundsOn("x").lower_inclusive);
}

}  // namespace
}  // namespace wtm::query
