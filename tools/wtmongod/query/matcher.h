// find/$match filters over BSON documents.
#pragma once

#include <bson/bson.h>

#include <memory>
#include <optional>
#include <string_view>

#include "common/doc.h"

namespace wtm::query {

// A parsed query filter. Cheap to copy (the parsed form is shared and immutable); thread-safe to
// use.
class Matcher {
 public:
  // Supports: equality (incl. documents; an array field matches if any element equals, or the whole
  // array equals), $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $nor $not (operator doc or
  // regex) $type (alias, number, or array of them) $size $all $elemMatch $mod $regex (+$options
  // i/m/s/x), BSON regex values, $comment, and top-level implicit AND. Comparisons use type
  // bracketing like mongod. Throws MongoError(kBadValue, "unknown operator: $foo") / ("unknown top
  // level operator: $foo") and kBadValue for malformed operands. A null filter matches everything.
  explicit Matcher(const bson_t* filter);
  bool Matches(const bson_t* doc) const;

  // When the filter pins `field` to exactly one value by equality or {$eq: v} at the top level
  // (directly or inside a top-level $and), returns that value. It points into the Matcher's own
  // copy of the filter and stays valid while this Matcher (or a copy of it) lives. Never returns
  // regex values, or documents whose first key starts with '$'.
  std::optional<bson_value_t> EqualityOn(std::string_view field) const;

  // Lower/upper bounds on a top-level field from $gt/$gte/$lt/$lte/$eq/equality (also inside a
  // top-level $and); the tightest bound wins. Values point into the Matcher's filter copy as above.
  struct Bounds {
    std::optional<bson_value_t> lower;
    bool lower_inclusive = false;
    std::optional<bson_value_t> upper;
    bool upper_inclusive = false;
  };
  Bounds BoundsOn(std::string_view field) const;

  // The filter as given ({} when null).
  const bson_t* filter() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace wtm::query
