#include "query/pipeline.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "query/test_util.h"

namespace wtm::query {
namespace {

using testing::J;

// Runs `stages` (a JSON array) over the documents of `input` (a JSON array); returns the results as
// one JSON array string.
std::string RunP(const std::string& stages, const std::string& input, int* pulled = nullptr) {
  wtm::Doc s = J("{\"p\": " + stages + "}");
  bson_t arr;
  bson_iter_t it;
  bson_iter_init_find(&it, s.get(), "p");
  uint32_t len;
  const uint8_t* data;
  bson_iter_array(&it, &len, &data);
  bson_init_static(&arr, data, len);
  Pipeline p(&arr);

  wtm::Doc in = J("{\"d\": " + input + "}");
  std::vector<wtm::Doc> docs;
  bson_iter_t d, e;
  bson_iter_init_find(&d, in.get(), "d");
  bson_iter_recurse(&d, &e);
  while (bson_iter_next(&e)) {
    bson_iter_document(&e, &len, &data);
    docs.push_back(wtm::Doc::FromData(data, len));
  }
  size_t next = 0;
  if (pulled) *pulled = 0;
  auto out = p.Run([&](wtm::Doc* doc) {
    if (next == docs.size()) return false;
    if (pulled) ++*pulled;
    *doc = docs[next++];
    return true;
  });
  std::string json = "[";
  for (size_t i = 0; i < out.size(); ++i) json += (i ? ", " : "") + out[i].ToJson();
  return json + "]";
}

// Canonical form of a JSON array of documents.
std::string Docs(const std::string& json) {
  wtm::Doc in = J("{\"d\": " + json + "}");
  bson_iter_t d, e;
  bson_iter_init_find(&d, in.get(), "d");
  bson_iter_recurse(&d, &e);
  std::string out = "[";
  bool first = true;
  while (bson_iter_next(&e)) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&e, &len, &data);
    out += (first ? "" : ", ") + wtm::Doc::FromData(data, len).ToJson();
    first = false;
  }
  return out + "]";
}

int ErrorOf(const std::string& stages) {
  try {
    RunP(stages, "[]");
  } catch (const MongoError& e) {
    return e.numeric();
  }
  return 0;
}

const char* kInput = R"([{"_id": 1, "k": "a", "v": 5}, {"_id": 2, "k": "b", "v": 1},
                         {"_id": 3, "k": "a", "v": 2.5}, {"_id": 4, "k": "c"}])";

TEST(PipelineTest, MatchSortSkipLimit) {
  EXPECT_EQ(RunP(R"([{"$match": {"k": "a"}}])", kInput),
            Docs(R"([{"_id": 1, "k": "a", "v": 5}, {"_id": 3, "k": "a", "v": 2.5}])"));
  EXPECT_EQ(RunP(R"([{"$sort": {"v": 1}}, {"$project": {"_id": 1}}])", kInput),
            Docs(R"([{"_id": 4}, {"_id": 2}, {"_id": 3}, {"_id": 1}])"));
  EXPECT_EQ(RunP(R"([{"$sort": {"v": -1}}, {"$skip": 1}, {"$limit": 2}, {"$project": {"_id": 1}}])",
                 kInput),
            Docs(R"([{"_id": 3}, {"_id": 2}])"));
  EXPECT_EQ(RunP(R"([])", kInput), Docs(kInput));
}

TEST(PipelineTest, LeadingLimitStopsPulling) {
  int pulled = 0;
  EXPECT_EQ(RunP(R"([{"$match": {"k": "a"}}, {"$limit": 1}])", kInput, &pulled),
            Docs(R"([{"_id": 1, "k": "a", "v": 5}])"));
  EXPECT_EQ(pulled, 1);
  RunP(R"([{"$sort": {"v": 1}}, {"$limit": 1}])", kInput, &pulled);
  EXPECT_EQ(pulled, 4);
}

TEST(PipelineTest, LeadingMatch) {
  wtm::Doc s = J(R"({"0": {"$match": {"k": "a"}}, "1": {"$limit": 1}})");
  Pipeline p(s.get());
  ASSERT_NE(p.leading_match(), nullptr);
  EXPECT_EQ(wtm::ToJson(p.leading_match()), J(R"({"k": "a"})").ToJson());
  wtm::Doc t = J(R"({"0": {"$limit": 1}, "1": {"$match": {"k": "a"}}})");
  EXPECT_EQ(Pipeline(t.get()).leading_match(), nullptr);
}

TEST(PipelineTest, Count) {
  EXPECT_EQ(RunP(R"([{"$match": {"k": "a"}}, {"$count": "n"}])", kInput), Docs(R"([{"n": 2}])"));
  EXPECT_EQ(RunP(R"([{"$match": {"k": "z"}}, {"$count": "n"}])", kInput), "[]");
  EXPECT_EQ(ErrorOf(R"([{"$count": ""}])"), 40156);
}

TEST(PipelineTest, ProjectRenamesAndLiterals) {
  EXPECT_EQ(RunP(R"([{"$match": {"_id": 1}}, {"$project": {"_id": 0, "key": "$k",
                     "one": {"$literal": "$v"}, "nested": {"x": "$v"}}}])",
                 kInput),
            Docs(R"([{"key": "a", "one": "$v", "nested": {"x": 5}}])"));
  EXPECT_EQ(RunP(R"([{"$match": {"_id": 2}}, {"$project": {"v": 0, "k": 0}}])", kInput),
            Docs(R"([{"_id": 2}])"));
}

TEST(PipelineTest, AddFieldsAndUnset) {
  EXPECT_EQ(RunP(R"([{"$match": {"_id": 2}}, {"$addFields": {"w": "$v", "k": "z", "s.t": 1}},
                   {"$unset": ["v"]}])",
                 kInput),
            Docs(R"([{"_id": 2, "k": "z", "w": 1, "s": {"t": 1}}])"));
}

TEST(PipelineTest, Group) {
  EXPECT_EQ(RunP(R"([{"$group": {"_id": "$k", "total": {"$sum": "$v"}, "n": {"$sum": 1},
                   "avg": {"$avg": "$v"}, "min": {"$min": "$v"}, "max": {"$max": "$v"},
                   "first": {"$first": "$_id"}, "last": {"$last": "$_id"},
                   "ids": {"$push": "$_id"}}}, {"$sort": {"_id": 1}}])",
                 kInput),
            Docs(R"([
      {"_id": "a", "total": 7.5, "n": 2, "avg": 3.75, "min": 2.5, "max": 5, "first": 1,
       "last": 3, "ids": [1, 3]},
      {"_id": "b", "total": 1, "n": 1, "avg": 1.0, "min": 1, "max": 1, "first": 2, "last": 2,
       "ids": [2]},
      {"_id": "c", "total": 0, "n": 1, "avg": null, "min": null, "max": null, "first": 4,
       "last": 4, "ids": [4]}])"));
  EXPECT_EQ(
      RunP(R"([{"$group": {"_id": null, "n": {"$sum": 1}, "s": {"$addToSet": "$k"}}}])", kInput),
      Docs(R"([{"_id": null, "n": 4, "s": ["a", "b", "c"]}])"));
  // 1 and 1.0 group together; compound _id.
  EXPECT_EQ(RunP(R"([{"$group": {"_id": {"x": "$x"}, "c": {"$count": {}}}}])",
                 R"([{"x": 1}, {"x": 1.0}, {"y": 2}])"),
            Docs(R"([{"_id": {"x": 1}, "c": 2}, {"_id": {}, "c": 1}])"));
  // int32 overflow promotes to int64.
  EXPECT_EQ(
      RunP(R"([{"$group": {"_id": 0, "s": {"$sum": "$x"}}}])", R"([{"x": 2147483647}, {"x": 1}])"),
      Docs(R"([{"_id": 0, "s": {"$numberLong": "2147483648"}}])"));
  EXPECT_EQ(ErrorOf(R"([{"$group": {"n": {"$sum": 1}}}])"), 15955);
  EXPECT_EQ(ErrorOf(R"([{"$group": {"_id": 1, "n": {"$median": 1}}}])"), 15952);
}

TEST(PipelineTest, Unwind) {
  const char* in = R"([{"_id": 1, "a": [1, 2]}, {"_id": 2, "a": []}, {"_id": 3},
                       {"_id": 4, "a": null}, {"_id": 5, "a": 7}])";
  EXPECT_EQ(RunP(R"([{"$unwind": "$a"}])", in),
            Docs(R"([{"_id": 1, "a": 1}, {"_id": 1, "a": 2}, {"_id": 5, "a": 7}])"));
  EXPECT_EQ(RunP(R"([{"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": true,
                                 "includeArrayIndex": "i"}}])",
                 in),
            Docs(R"([{"_id": 1, "a": 1, "i": {"$numberLong": "0"}},
                     {"_id": 1, "a": 2, "i": {"$numberLong": "1"}}, {"_id": 2, "i": null},
                     {"_id": 3, "i": null}, {"_id": 4, "a": null, "i": null},
                     {"_id": 5, "a": 7, "i": null}])"));
  EXPECT_EQ(RunP(R"([{"$unwind": "$s.t"}])", R"([{"s": {"t": ["x", "y"], "u": 0}}])"),
            Docs(R"([{"s": {"t": "x", "u": 0}}, {"s": {"t": "y", "u": 0}}])"));
  EXPECT_EQ(ErrorOf(R"([{"$unwind": "a"}])"), 28818);
}

TEST(PipelineTest, Errors) {
  wtm::Doc s = J(R"({"0": {"$foo": {}}})");
  try {
    Pipeline p(s.get());
    FAIL();
  } catch (const MongoError& e) {
    EXPECT_EQ(e.numeric(), 40324);
    EXPECT_STREQ(e.what(), "Unrecognized pipeline stage name: '$foo'");
  }
  EXPECT_EQ(ErrorOf(R"([{"$limit": 0}])"), 15958);
  EXPECT_EQ(ErrorOf(R"([{"$limit": "x"}])"), 15957);
  EXPECT_EQ(ErrorOf(R"([{"$skip": -1}])"), 15956);
  EXPECT_EQ(ErrorOf(R"([{"$match": {"a": 1}, "$limit": 1}])"), 40323);
  EXPECT_EQ(ErrorOf(R"([{"$match": {"a": {"$bad": 1}}}])"), 2);
  EXPECT_EQ(ErrorOf(R"([{"$project": {"x": {"$concatX": []}}}])"), 168);
}

}  // namespace
}  // namespace wtm::query
