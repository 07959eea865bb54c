#include "query/update.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "common/error.h"

namespace wtm::query {
namespace {

Doc J(const std::string& json) { return Doc::FromJson(json); }

// Canonical extended JSON, so that int32 / int64 / double differ.
std::string Canon(const bson_t* b) {
  size_t n = 0;
  char* s = bson_as_canonical_extended_json(b, &n);
  std::string out(s, n);
  bson_free(s);
  return out;
}

std::string Canon(const std::string& json) { return Canon(J(json).get()); }

// Applies `update` to `doc`; returns the result as canonical JSON.
std::string Apply(const std::string& update, const std::string& doc, bool* changed = nullptr) {
  Doc u = J(update), d = J(doc);
  return Canon(Update(u.get()).Apply(d.get(), changed).get());
}

std::string Upsert(const std::string& update, const std::string& query) {
  Doc u = J(update), q = J(query);
  return Canon(Update(u.get()).ApplyUpsert(q.get()).get());
}

void ExpectError(const std::function<void()>& f, int code, const std::string& msg) {
  try {
    f();
    ADD_FAILURE() << "no error; expected " << code << " " << msg;
  } catch (const MongoError& e) {
    EXPECT_EQ(e.numeric(), code) << e.what();
    EXPECT_EQ(std::string(e.what()), msg);
  }
}

void ExpectParseError(const std::string& update, int code, const std::string& msg) {
  ExpectError([&] { Update u(J(update).get()); }, code, msg);
}

void ExpectApplyError(const std::string& update, const std::string& doc, int code,
                      const std::string& msg) {
  ExpectError([&] { Apply(update, doc); }, code, msg);
}

TEST(UpdateTest, SetKeepsOrderAndAppendsNewFieldsSorted) {
  EXPECT_EQ(Apply(R"({"$set": {"b": 5, "z": 1, "c": {"d": 1}}})", R"({"_id": 1, "b": 1, "a": 2})"),
            Canon(R"({"_id": 1, "b": 5, "a": 2, "c": {"d": 1}, "z": 1})"));
  // Operators together apply in field-name order.
  EXPECT_EQ(Apply(R"({"$set": {"z": 1}, "$inc": {"m": 2}, "$min": {"a": 0}})", R"({"_id": 1})"),
            Canon(R"({"_id": 1, "a": 0, "m": 2, "z": 1})"));
  // Numeric field names in numeric order.
  EXPECT_EQ(Apply(R"({"$set": {"x.10": 1, "x.9": 2}})", R"({"_id": 1, "x": {}})"),
            Canon(R"({"_id": 1, "x": {"9": 2, "10": 1}})"));
}

TEST(UpdateTest, SetDottedPaths) {
  EXPECT_EQ(Apply(R"({"$set": {"a.b.c": 1}})", R"({"_id": 1})"),
            Canon(R"({"_id": 1, "a": {"b": {"c": 1}}})"));
  EXPECT_EQ(Apply(R"({"$set": {"a.b": 2}})", R"({"_id": 1, "a": {"x": 1, "b": 1}})"),
            Canon(R"({"_id": 1, "a": {"x": 1, "b": 2}})"));
  EXPECT_EQ(Apply(R"({"$set": {"a.1": 9}})", R"({"_id": 1, "a": [1, 2, 3]})"),
            Canon(R"({"_id": 1, "a": [1, 9, 3]})"));
  EXPECT_EQ(Apply(R"({"$set": {"a.3": 9}})", R"({"_id": 1, "a": [1]})"),
            Canon(R"({"_id": 1, "a": [1, null, null, 9]})"));
  EXPECT_EQ(Apply(R"({"$set": {"a.0.b": 1}})", R"({"_id": 1, "a": [{"b": 0, "c": 1}]})"),
            Canon(R"({"_id": 1, "a": [{"b": 1, "c": 1}]})"));
  ExpectApplyError(R"({"$set": {"a.b": 1}})", R"({"_id": 1, "a": 5})", 28,
                   "Cannot create field 'b' in element {a: 5}");
  ExpectApplyError(R"({"$set": {"a.b": 1}})", R"({"_id": 1, "a": [1, 2]})", 28,
                   "Cannot create field 'b' in element {a: [ 1, 2 ]}");
}

TEST(UpdateTest, ChangedFlag) {
  bool changed = true;
  Apply(R"({"$set": {"a": 1}})", R"({"_id": 1, "a": 1})", &changed);
  EXPECT_FALSE(changed);
  Apply(R"({"$set": {"a": 2}})", R"({"_id": 1, "a": 1})", &changed);
  EXPECT_TRUE(changed);
  Apply(R"({"$set": {"a": 1.0}})", R"({"_id": 1, "a": 1})", &changed);
  EXPECT_TRUE(changed);  // type changes
  Apply(R"({"$unset": {"zz": ""}})", R"({"_id": 1, "a": 1})", &changed);
  EXPECT_FALSE(changed);
}

TEST(UpdateTest, Unset) {
  EXPECT_EQ(Apply(R"({"$unset": {"a": "", "c.d": 1}})",
                  R"({"_id": 1, "a": 1, "b": 2, "c": {"d": 1, "e": 2}})"),
            Canon(R"({"_id": 1, "b": 2, "c": {"e": 2}})"));
  EXPECT_EQ(Apply(R"({"$unset": {"a.1": ""}})", R"({"_id": 1, "a": [1, 2, 3]})"),
            Canon(R"({"_id": 1, "a": [1, null, 3]})"));
  EXPECT_EQ(Apply(R"({"$unset": {"x.y": ""}})", R"({"_id": 1, "x": 5})"),
            Canon(R"({"_id": 1, "x": 5})"));
}

TEST(UpdateTest, IncTypePromotion) {
  EXPECT_EQ(Apply(R"({"$inc": {"a": 1}})", R"({"_id": 1, "a": 1})"),
            Canon(R"({"_id": 1, "a": 2})"));
  // int32 + int32 overflowing gives int64.
  EXPECT_EQ(Apply(R"({"$inc": {"a": 1}})", R"({"_id": 1, "a": 2147483647})"),
            Canon(R"({"_id": 1, "a": {"$numberLong": "2147483648"}})"));
  EXPECT_EQ(Apply(R"({"$inc": {"a": {"$numberLong": "5"}}})", R"({"_id": 1, "a": 1})"),
            Canon(R"({"_id": 1, "a": {"$numberLong": "6"}})"));
  EXPECT_EQ(Apply(R"({"$inc": {"a": 0.5}})", R"({"_id": 1, "a": 1})"),
            Canon(R"({"_id": 1, "a": 1.5})"));
  EXPECT_EQ(Apply(R"({"$inc": {"a": 1}})", R"({"_id": 1, "a": 2.0})"),
            Canon(R"({"_id": 1, "a": {"$numberDouble": "3.0"}})"));
  EXPECT_EQ(Apply(R"({"$inc": {"n.c": {"$numberLong": "7"}}})", R"({"_id": 1})"),
            Canon(R"({"_id": 1, "n": {"c": {"$numberLong": "7"}}})"));
  ExpectApplyError(R"({"$inc": {"a": 1}})",
                   R"({"_id": 1, "a": {"$numberLong": "9223372036854775807"}})", 2,
                   "Failed to apply $inc operations to current value (9223372036854775807) for "
                   "document {_id: 1}");
  ExpectApplyError(R"({"$inc": {"a": 1}})", R"({"_id": 1, "a": "x"})", 14,
                   "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' "
                   "of non-numeric type string");
  ExpectApplyError(R"({"$inc": {"s.a": 1}})", R"({"_id": "k", "s": {"a": null}})", 14,
                   "Cannot apply $inc to a value of non-numeric type. {_id: \"k\"} has the field "
                   "'a' of non-numeric type null");
  ExpectParseError(R"({"$inc": {"a": "x"}})", 14,
                   "Cannot increment with non-numeric argument: {a: \"x\"}");
}

TEST(UpdateTest, Mul) {
  EXPECT_EQ(Apply(R"({"$mul": {"a": 3}})", R"({"_id": 1, "a": 4})"),
            Canon(R"({"_id": 1, "a": 12})"));
  EXPECT_EQ(Apply(R"({"$mul": {"a": 65536}})", R"({"_id": 1, "a": 65536})"),
            Canon(R"({"_id": 1, "a": {"$numberLong": "4294967296"}})"));
  EXPECT_EQ(Apply(R"({"$mul": {"a": 2.5, "b": {"$numberLong": "3"}}})", R"({"_id": 1})"),
            Canon(R"({"_id": 1, "a": {"$numberDouble": "0.0"}, "b": {"$numberLong": "0"}})"));
  ExpectParseError(R"({"$mul": {"a": true}})", 14,
                   "Cannot multiply with non-numeric argument: {a: true}");
  ExpectApplyError(R"({"$mul": {"a": 2}})", R"({"_id": 1, "a": [1]})", 14,
                   "Cannot apply $mul to a value of non-numeric type. {_id: 1} has the field 'a' "
                   "of non-numeric type array");
}

TEST(UpdateTest, MinMax) {
  EXPECT_EQ(Apply(R"({"$min": {"a": 3, "b": 3}, "$max": {"c": 3, "d": 3}})",
                  R"({"_id": 1, "a": 5, "b": 1, "c": 5, "d": 1})"),
            Canon(R"({"_id": 1, "a": 3, "b": 1, "c": 5, "d": 3})"));
  EXPECT_EQ(Apply(R"({"$max": {"a": "s"}})", R"({"_id": 1, "a": 100})"),
            Canon(R"({"_id": 1, "a": "s"})"));  // strings sort after numbers
  EXPECT_EQ(Apply(R"({"$min": {"a": 1.5}})", R"({"_id": 1, "a": 2})"),
            Canon(R"({"_id": 1, "a": 1.5})"));
  EXPECT_EQ(Apply(R"({"$min": {"new": 7}})", R"({"_id": 1})"), Canon(R"({"_id": 1, "new": 7})"));
}

TEST(UpdateTest, Rename) {
  EXPECT_EQ(Apply(R"({"$rename": {"a": "z"}})", R"({"_id": 1, "a": 1, "b": 2})"),
            Canon(R"({"_id": 1, "b": 2, "z": 1})"));
  EXPECT_EQ(Apply(R"({"$rename": {"a": "b"}})", R"({"_id": 1, "b": 2, "a": 1})"),
            Canon(R"({"_id": 1, "b": 1})"));
  EXPECT_EQ(Apply(R"({"$rename": {"s.x": "t.y"}})", R"({"_id": 1, "s": {"x": 1, "k": 0}})"),
            Canon(R"({"_id": 1, "s": {"k": 0}, "t": {"y": 1}})"));
  EXPECT_EQ(Apply(R"({"$rename": {"missing": "z"}})", R"({"_id": 1})"), Canon(R"({"_id": 1})"));
  ExpectParseError(R"({"$rename": {"a": 1}})", 2,
                   "The 'to' field for $rename must be a string: a: 1");
  ExpectParseError(R"({"$rename": {"a": "a"}})", 2,
                   "The source and target field for $rename must differ: a: \"a\"");
  ExpectParseError(R"({"$rename": {"a": "a.b"}})", 2,
                   "The source and target field for $rename must not be on the same path: a: "
                   "\"a.b\"");
  ExpectApplyError(R"({"$rename": {"a.0": "b"}})", R"({"_id": 1, "a": [1]})", 2,
                   "The source field cannot be an array element, 'a.0' in doc with _id: 1 has an "
                   "array field called 'a'");
  ExpectApplyError(R"({"$rename": {"a": "b.0"}})", R"({"_id": 1, "a": 1, "b": [1]})", 2,
                   "The destination field cannot be an array element, 'b.0' in doc with _id: 1 "
                   "has an array field called 'b'");
}

TEST(UpdateTest, SetOnInsertOnlyOnUpsert) {
  Update u(J(R"({"$set": {"a": 1}, "$setOnInsert": {"created": 5}})").get());
  EXPECT_FALSE(u.is_replacement());
  Doc d = J(R"({"_id": 1})");
  EXPECT_EQ(Canon(u.Apply(d.get(), nullptr).get()), Canon(R"({"_id": 1, "a": 1})"));
  Doc q = J(R"({"_id": 7})");
  EXPECT_EQ(Canon(u.ApplyUpsert(q.get()).get()), Canon(R"({"_id": 7, "a": 1, "created": 5})"));
}

TEST(UpdateTest, Push) {
  EXPECT_EQ(Apply(R"({"$push": {"a": 3}})", R"({"_id": 1, "a": [1, 2]})"),
            Canon(R"({"_id": 1, "a": [1, 2, 3]})"));
  EXPECT_EQ(Apply(R"({"$push": {"a": [1]}})", R"({"_id": 1})"), Canon(R"({"_id": 1, "a": [[1]]})"));
  EXPECT_EQ(Apply(R"({"$push": {"a": {"$each": [3, 4]}}})", R"({"_id": 1, "a": [1]})"),
            Canon(R"({"_id": 1, "a": [1, 3, 4]})"));
  EXPECT_EQ(
      Apply(R"({"$push": {"a": {"$each": [9], "$position": 0}}})", R"({"_id": 1, "a": [1, 2]})"),
      Canon(R"({"_id": 1, "a": [9, 1, 2]})"));
  EXPECT_EQ(
      Apply(R"({"$push": {"a": {"$each": [9], "$position": -1}}})", R"({"_id": 1, "a": [1, 2]})"),
      Canon(R"({"_id": 1, "a": [1, 9, 2]})"));
  EXPECT_EQ(Apply(R"({"$push": {"a": {"$each": [5, 0], "$sort": 1, "$slice": -3}}})",
                  R"({"_id": 1, "a": [3, 1]})"),
            Canon(R"({"_id": 1, "a": [1, 3, 5]})"));
  EXPECT_EQ(Apply(R"({"$push": {"a": {"$each": [{"s": 2}], "$sort": {"s": -1}, "$slice": 2}}})",
                  R"({"_id": 1, "a": [{"s": 1}, {"s": 3}]})"),
            Canon(R"({"_id": 1, "a": [{"s": 3}, {"s": 2}]})"));
  ExpectApplyError(R"({"$push": {"a": 1}})", R"({"_id": 1, "a": 5})", 2,
                   "The field 'a' must be an array but is of type int in document {_id: 1}");
  ExpectParseError(R"({"$push": {"a": {"$each": 1}}})", 2,
                   "The argument to $each in $push must be an array but it was of type: int");
  ExpectParseError(R"({"$push": {"a": {"$each": [], "$bogus": 1}}})", 2,
                   "Unrecognized clause in $push: $bogus");
  ExpectParseError(R"({"$push": {"a": {"$each": [], "$slice": "x"}}})", 2,
                   "The value for $slice must be an integer value but was given type: string");
}

TEST(UpdateTest, AddToSet) {
  EXPECT_EQ(Apply(R"({"$addToSet": {"a": 2}})", R"({"_id": 1, "a": [1, 2]})"),
            Canon(R"({"_id": 1, "a": [1, 2]})"));
  EXPECT_EQ(Apply(R"({"$addToSet": {"a": 2.0}})", R"({"_id": 1, "a": [1, 2]})"),
            Canon(R"({"_id": 1, "a": [1, 2]})"));  // numerically equal
  EXPECT_EQ(Apply(R"({"$addToSet": {"a": {"$each": [3, 1, 3, 4]}}})", R"({"_id": 1, "a": [1]})"),
            Canon(R"({"_id": 1, "a": [1, 3, 4]})"));
  EXPECT_EQ(Apply(R"({"$addToSet": {"a": {"x": 1}}})", R"({"_id": 1})"),
            Canon(R"({"_id": 1, "a": [{"x": 1}]})"));
  ExpectApplyError(R"({"$addToSet": {"a": 1}})", R"({"_id": 1, "a": "s"})", 2,
                   "Cannot apply $addToSet to non-array field. Field named 'a' has non-array type "
                   "string");
}

TEST(UpdateTest, PullAndPullAll) {
  EXPECT_EQ(Apply(R"({"$pull": {"a": 2}})", R"({"_id": 1, "a": [1, 2, 3, 2.0]})"),
            Canon(R"({"_id": 1, "a": [1, 3]})"));
  EXPECT_EQ(Apply(R"({"$pull": {"a": {"$in": [1, 3]}}})", R"({"_id": 1, "a": [1, 2, 3, 4]})"),
            Canon(R"({"_id": 1, "a": [2, 4]})"));
  EXPECT_EQ(Apply(R"({"$pull": {"a": {"$gte": 3}}})", R"({"_id": 1, "a": [1, 5, 3, 2]})"),
            Canon(R"({"_id": 1, "a": [1, 2]})"));
  EXPECT_EQ(
      Apply(R"({"$pull": {"a": {"k": 1}}})", R"({"_id": 1, "a": [{"k": 1, "v": 1}, {"k": 2}, 1]})"),
      Canon(R"({"_id": 1, "a": [{"k": 2}, 1]})"));
  EXPECT_EQ(Apply(R"({"$pull": {"missing": 1}})", R"({"_id": 1})"), Canon(R"({"_id": 1})"));
  EXPECT_EQ(Apply(R"({"$pullAll": {"a": [1, "x"]}})", R"({"_id": 1, "a": [1, "x", 2, 1]})"),
            Canon(R"({"_id": 1, "a": [2]})"));
  ExpectApplyError(R"({"$pull": {"a": 1}})", R"({"_id": 1, "a": 1})", 2,
                   "Cannot apply $pull to a non-array value");
  ExpectParseError(R"({"$pullAll": {"a": 1}})", 2,
                   "$pullAll requires an array argument but was given a int");
}

TEST(UpdateTest, Pop) {
  EXPECT_EQ(Apply(R"({"$pop": {"a": 1, "b": -1}})", R"({"_id": 1, "a": [1, 2], "b": [1, 2]})"),
            Canon(R"({"_id": 1, "a": [1], "b": [2]})"));
  EXPECT_EQ(Apply(R"({"$pop": {"a": 1}})", R"({"_id": 1, "a": []})"),
            Canon(R"({"_id": 1, "a": []})"));
  ExpectParseError(R"({"$pop": {"a": 2}})", 9, "$pop expects 1 or -1, found: 2");
  ExpectParseError(R"({"$pop": {"a": "x"}})", 9, "Expected a number in: a: \"x\"");
  ExpectApplyError(R"({"$pop": {"a": 1}})", R"({"_id": 1, "a": 1})", 14,
                   "Path 'a' contains an element of non-array type 'int'");
}

TEST(UpdateTest, CurrentDate) {
  // Built with BCON: the JSON parser reads {"$type": ...} as legacy binary.
  Doc u(BCON_NEW("$currentDate", "{", "d", BCON_BOOL(true), "t", "{", "$type", "timestamp", "}",
                 "e", "{", "$type", "date", "}", "}"));
  Doc d = J(R"({"_id": 1})");
  Doc out = Update(u.get()).Apply(d.get(), nullptr);
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_find(&it, out.get(), "d"));
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_DATE_TIME);
  EXPECT_GT(bson_iter_date_time(&it), 1600000000000);
  ASSERT_TRUE(bson_iter_init_find(&it, out.get(), "e"));
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_DATE_TIME);
  ASSERT_TRUE(bson_iter_init_find(&it, out.get(), "t"));
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_TIMESTAMP);
  ExpectError(
      [] { Update(Doc(BCON_NEW("$currentDate", "{", "d", "{", "$type", "int", "}", "}")).get()); },
      2,
      "The '$type' string field is required to be 'date' or 'timestamp': "
      "{$currentDate: {field : {$type: 'date'}}}");
  ExpectParseError(R"({"$currentDate": {"d": 1}})", 2,
                   "d is not valid type for $currentDate. Please use a boolean ('true') or a $type "
                   "expression ({$type: 'timestamp/date'}).");
}

TEST(UpdateTest, ParseErrors) {
  ExpectParseError(R"({"$foo": {"a": 1}})", 9,
                   "Unknown modifier: $foo. Expected a valid update modifier or pipeline-style "
                   "update specified as an array");
  ExpectParseError(R"({"$set": {"a": 1}, "b": 2})", 9,
                   "Unknown modifier: b. Expected a valid update modifier or pipeline-style update "
                   "specified as an array");
  ExpectParseError(R"({"b": 2, "$set": {"a": 1}})", 52,
                   "The dollar ($) prefixed field '$set' in '$set' is not valid for storage.");
  ExpectParseError(R"({"$set": {}})", 9,
                   "'$set' is empty. You must specify a field like so: {$set: {<field>: ...}}");
  ExpectParseError(R"({"$set": 5})", 9,
                   "Modifiers operate on fields but we found type int instead. For example: "
                   "{$mod: {<field>: ...}} not {$set: 5}");
  ExpectParseError(R"({"$set": {"a": 1}, "$inc": {"a": 1}})", 40,
                   "Updating the path 'a' would create a conflict at 'a'");
  ExpectParseError(R"({"$set": {"a": 1}, "$inc": {"a.b": 1}})", 40,
                   "Updating the path 'a.b' would create a conflict at 'a'");
  ExpectParseError(R"({"$set": {"a.b": 1}, "$unset": {"a": 1}})", 40,
                   "Updating the path 'a' would create a conflict at 'a'");
  ExpectParseError(R"({"$rename": {"x": "y"}, "$set": {"y": 1}})", 40,
                   "Updating the path 'y' would create a conflict at 'y'");
  // "a" is not a prefix of "ab": no conflict.
  EXPECT_EQ(Apply(R"({"$set": {"ab": 1, "a": 2}})", R"({"_id": 1})"),
            Canon(R"({"_id": 1, "a": 2, "ab": 1})"));
}

TEST(UpdateTest, PathErrors) {
  ExpectParseError(R"({"$set": {"": 1}})", 56, "An empty update path is not valid.");
  ExpectParseError(R"({"$set": {"a..b": 1}})", 56,
                   "The update path 'a..b' contains an empty field name, which is not allowed.");
  ExpectParseError(R"({"$set": {"a.$x": 1}})", 52,
                   "The dollar ($) prefixed field '$x' in 'a.$x' is not valid for storage.");
  ExpectParseError(R"({"$set": {"a.$": 1}})", 2,
                   "wtmongod does not support positional update paths: 'a.$'");
}

TEST(UpdateTest, IdIsImmutable) {
  ExpectApplyError(R"({"$set": {"_id": 2}})", R"({"_id": 1})", 66,
                   "Performing an update on the path '_id' would modify the immutable field '_id'");
  ExpectApplyError(R"({"$unset": {"_id": 1}})", R"({"_id": 1})", 66,
                   "Performing an update on the path '_id' would modify the immutable field '_id'");
  ExpectApplyError(R"({"$set": {"_id.a": 2}})", R"({"_id": {"a": 1}})", 66,
                   "Performing an update on the path '_id.a' would modify the immutable field "
                   "'_id'");
  ExpectApplyError(R"({"$rename": {"_id": "x"}})", R"({"_id": 1})", 66,
                   "Performing an update on the path '_id' would modify the immutable field '_id'");
  EXPECT_EQ(Apply(R"({"$set": {"_id": 1, "a": 1}})", R"({"_id": 1})"),
            Canon(R"({"_id": 1, "a": 1})"));
}

TEST(UpdateTest, Replacement) {
  Update u(J(R"({"b": 1, "a": {"c": 2}})").get());
  EXPECT_TRUE(u.is_replacement());
  bool changed = false;
  Doc d = J(R"({"_id": 5, "x": 1})");
  EXPECT_EQ(Canon(u.Apply(d.get(), &changed).get()), Canon(R"({"_id": 5, "b": 1, "a": {"c": 2}})"));
  EXPECT_TRUE(changed);
  EXPECT_EQ(Apply(R"({"_id": 5, "y": 1})", R"({"_id": 5, "x": 1})"),
            Canon(R"({"_id": 5, "y": 1})"));
  ExpectApplyError(R"({"_id": 6, "y": 1})", R"({"_id": 5})", 66,
                   "After applying the update, the (immutable) field '_id' was found to have been "
                   "altered to _id: 6");
  EXPECT_TRUE(Update(J("{}").get()).is_replacement());
  EXPECT_EQ(Apply("{}", R"({"_id": 5, "x": 1})"), Canon(R"({"_id": 5})"));
}

TEST(UpdateTest, UpsertFromQuery) {
  EXPECT_EQ(Upsert(R"({"$set": {"v": 1}})",
                   R"({"x": 3, "_id": 9, "a.b": 2, "n": {"$gt": 1}, "e": {"$eq": 4},
                       "i": {"$in": [7]}, "$and": [{"k": "s"}], "$or": [{"o": 1}]})"),
            Canon(R"({"_id": 9, "a": {"b": 2}, "e": 4, "i": 7, "k": "s", "x": 3, "v": 1})"));
  // Without _id in the query, a new ObjectId comes first.
  Doc u = J(R"({"$inc": {"c": 1}})"), q = J(R"({"name": "n"})");
  Doc out = Update(u.get()).ApplyUpsert(q.get());
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init(&it, out.get()));
  ASSERT_TRUE(bson_iter_next(&it));
  EXPECT_STREQ(bson_iter_key(&it), "_id");
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_OID);
  ASSERT_TRUE(bson_iter_next(&it));
  EXPECT_STREQ(bson_iter_key(&it), "name");  // query fields, then new fields from the update
  ASSERT_TRUE(bson_iter_next(&it));
  EXPECT_STREQ(bson_iter_key(&it), "c");
  // The update may set _id when the query has none.
  EXPECT_EQ(Upsert(R"({"$set": {"_id": 3}})", R"({"a": 1})"), Canon(R"({"_id": 3, "a": 1})"));
  ExpectError([] { Upsert(R"({"$set": {"_id": 3}})", R"({"_id": 1})"); }, 66,
              "Performing an update on the path '_id' would modify the immutable field '_id'");
  ExpectError([] { Upsert(R"({"$set": {"v": 1}})", R"({"a": 1, "$and": [{"a": 2}]})"); }, 54,
              "cannot infer query fields to set, path 'a' is matched twice");
  ExpectError([] { Upsert(R"({"$set": {"v": 1}})", R"({"a": 1, "a.b": 2})"); }, 54,
              "cannot infer query fields to set, both paths 'a' and 'a.b' are matched");
}

TEST(UpdateTest, UpsertReplacement) {
  EXPECT_EQ(Upsert(R"({"v": 1})", R"({"_id": 4, "other": 1})"), Canon(R"({"_id": 4, "v": 1})"));
  EXPECT_EQ(Upsert(R"({"v": 1, "_id": 4})", R"({"_id": 4})"), Canon(R"({"_id": 4, "v": 1})"));
  ExpectError([] { Upsert(R"({"_id": 5})", R"({"_id": 4})"); }, 66,
              "After applying the update, the (immutable) field '_id' was found to have been "
              "altered to _id: 5");
  Doc u = J(R"({"v": 1})"), q = J(R"({"w": 2})");
  Doc out = Update(u.get()).ApplyUpsert(q.get());
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init(&it, out.get()));
  ASSERT_TRUE(bson_iter_next(&it));
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_OID);
  EXPECT_FALSE(bson_iter_init_find(&it, out.get(), "w"));
}

}  // namespace
}  // namespace wtm::query
