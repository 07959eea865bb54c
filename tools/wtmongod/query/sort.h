// Sort specifications ({a: 1, "b.c": -1}).
#pragma once

#include <bson/bson.h>

#include <string>
#include <vector>

namespace wtm::query {

// Compares documents by the spec: dotted paths; an array sorts by its smallest element ascending
// and its largest descending; missing fields sort as null, empty arrays as undefined (below null).
// Bad values (not 1/-1) throw MongoError(kBadValue); {$meta: ...} throws kBadValue too
// (unsupported).
class SortSpec {
 public:
  explicit SortSpec(const bson_t* spec);                // null or {} = no sort
  int Compare(const bson_t* a, const bson_t* b) const;  // <0, 0, >0
  bool empty() const { return fields_.empty(); }

 private:
  struct Field {
    std::string path;
    int direction;
  };
  std::vector<Field> fields_;
};

}  // namespace wtm::query
