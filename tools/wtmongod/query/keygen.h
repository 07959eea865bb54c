// Index key generation (btree indexes) as mongod does it.
#pragma once

#include <bson/bson.h>

#include <vector>

#include "query/value.h"

namespace wtm::query {

// Index keys of `doc` for `key_pattern` ({a: 1, "b.c": -1}): one vector of values (in pattern
// order) per key. Missing fields → null. An array value at a path yields one key per element
// (multikey; keys that encode equal are deduplicated); a path through an array of documents yields
// each element's value (null for elements lacking it); numeric path components index arrays. An
// empty array indexes as null (mongod uses undefined; we choose null so that {a: null} lookups and
// the keystring stay simple). Arrays at two fields of a compound pattern →
// MongoError(kCannotIndexParallelArrays, "cannot index parallel arrays [a] [b]"). Pattern values
// are not interpreted (directions are the caller's business).
std::vector<std::vector<OwnedValue>> GetIndexKeys(const bson_t* key_pattern, const bson_t* doc);
// Whether `doc` produces a multikey entry for `key_pattern` (some indexed path crosses an array).
bool IsMultikey(const bson_t* key_pattern, const bson_t* doc);

}  // namespace wtm::query
