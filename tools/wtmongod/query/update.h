// Update documents ({$set: ...} operators or a replacement document) applied like mongod 6.0.
#pragma once

#include <bson/bson.h>

#include <memory>

#include "common/doc.h"

namespace wtm::query {

// A parsed update. Immutable after construction; cheap to copy; thread-safe to use.
class Update {
 public:
  // `spec` is either an operator document ({$set: ..., $inc: ...}) or a replacement document (no
  // $-keys). Operators: $set $unset $inc $mul $min $max $rename $setOnInsert $push ($each $position
  // $slice $sort) $addToSet ($each) $pull (equality, a query on document elements, or a condition
  // such as {$in: [...]} / {$gt: 5} on each element) $pullAll $pop $currentDate. Dotted paths
  // create intermediate documents; numeric components index arrays. Positional paths ($, $[],
  // $[id]) are not supported. Throws MongoError with mongod's code and text for: mixed $/non-$ keys
  // and unknown operators (9 FailedToParse "Unknown modifier: $foo. ..."), two operators on the
  // same or overlapping paths (40 ConflictingUpdateOperators "Updating the path 'a.b' would create
  // a conflict at 'a'"), an empty operator document (9 "'$set' is empty. ..."), bad operands (2, 9,
  // 14), bad paths (56 EmptyFieldName, 52 DollarPrefixedFieldName), and $-prefixed top-level fields
  // in a replacement (52).
  explicit Update(const bson_t* spec);

  bool is_replacement() const;

  // Returns the updated document; sets *changed (when not null) when its bytes differ from `doc`.
  // Operators apply in field-name order (numeric names numerically), as mongod 5.0+ does: existing
  // fields stay in place, new fields are appended. $setOnInsert is ignored. A replacement keeps
  // `doc`'s _id (first) when it has none. Throws MongoError: 66 ImmutableField when _id would
  // change
  // ("Performing an update on the path '_id' would modify the immutable field '_id'"), 14
  // TypeMismatch for arithmetic on non-numbers ("Cannot apply $inc to a value of non-numeric type.
  // {_id: 1} has the field 'a' of non-numeric type string"), 28 PathNotViable ("Cannot create field
  // 'b' in element {a: 1}"), 2 BadValue for array operators on non-arrays and int64 overflow.
  // Arithmetic keeps mongod's promotion: int32 op int32 overflowing gives int64, any double gives
  // double; decimal128 operands are refused (BadValue).
  wtm::Doc Apply(const bson_t* doc, bool* changed) const;

  // The document an upsert inserts: the query's equality fields (top-level `a: v`, `a: {$eq: v}`,
  // `a: {$in: [v]}`, also inside $and; dotted paths create sub-documents; fields in path order),
  // then the operators applied with $setOnInsert active. For a replacement: the replacement plus
  // the query's _id equality. _id comes first; a new ObjectId is generated when neither gives one.
  // Throws as Apply, plus 54 NotSingleValueField when the query pins one path twice or overlapping
  // paths, and 66 when the update changes the query's _id.
  wtm::Doc ApplyUpsert(const bson_t* query) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace wtm::query
