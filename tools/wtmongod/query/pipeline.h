// Aggregation pipelines over an in-memory stream of documents.
#pragma once

#include <bson/bson.h>

#include <functional>
#include <memory>
#include <vector>

#include "common/doc.h"

namespace wtm::query {

class Pipeline {
 public:
  // Stages: $match, $sort, $limit, $skip, $count, $project (see Projection), $addFields/$set,
  // $unset, $group (_id expression; $sum $avg $min $max $first $last $push $addToSet $count),
  // $unwind (string or {path, includeArrayIndex, preserveNullAndEmptyArrays}). Expressions:
  // "$path", {$literal: v}, literal values, and documents/arrays of expressions. Unknown stage →
  // MongoError(40324, "Unrecognized pipeline stage name: '$foo'"); malformed stages → the codes
  // mongod uses (e.g. 15955 for $limit).
  explicit Pipeline(const bson_t* stages_array);  // the array (or array-like document) of stages
  Pipeline(const Pipeline&);
  Pipeline& operator=(const Pipeline&);
  ~Pipeline();
  // Runs over `source` (called repeatedly; it fills *doc and returns true, or returns false at the
  // end) and returns the results. Stops pulling early when a leading $limit is satisfied.
  std::vector<wtm::Doc> Run(const std::function<bool(wtm::Doc*)>& source) const;
  // The leading $match filter, if the pipeline starts with $match (lets the caller push it into a
  // scan); nullptr otherwise. Owned by the Pipeline.
  const bson_t* leading_match() const;

  struct Stage;

 private:
  std::shared_ptr<const wtm::Doc> stages_;  // parsed stages point into it
  std::vector<std::shared_ptr<const Stage>> parsed_;
};

}  // namespace wtm::query
