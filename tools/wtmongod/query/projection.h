// find projections and the shape part of $project.
#pragma once

#include <bson/bson.h>

#include <memory>

#include "common/doc.h"

namespace wtm::query {

// Inclusion ({a: 1, "b.c": true}; _id included unless _id: 0), exclusion ({a: 0}), and computed
// fields
// ({x: "$a.b"}, {y: {$literal: v}}, {z: "text"}) which count as inclusion. Dotted paths descend
// into sub-documents and into arrays of sub-documents. Throws MongoError(31254, "Cannot do
// exclusion on field X in inclusion projection"), MongoError(31253, "Cannot do inclusion on field X
// in exclusion projection"), MongoError(31250, "Path collision at X") and MongoError(168,
// "Unrecognized expression
// '$op'"). Cheap to copy.
class Projection {
 public:
  explicit Projection(const bson_t* spec);  // null or {} = no projection
  wtm::Doc Apply(const bson_t* doc) const;  // returns a copy of doc when empty()
  bool empty() const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
  bool exclusion_ = false;
};

}  // namespace wtm::query
