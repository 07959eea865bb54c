// Order-preserving binary keys for WiredTiger index tables: memcmp order == CompareValues order.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wtm::query {

// Encodes the values of one index key (one per key-pattern field) with per-field direction (1 or
// -1; for -1 the bytes of that field are inverted; each field's encoding is self-delimiting so this
// reverses its order). Same ordering as CompareValues across all types; numbers of different BSON
// types that are equal in value encode equal (1, 1LL and 1.0 collide in a unique index, as in
// MongoDB); int64 keeps exact order; strings escape embedded NULs; documents and arrays encode
// recursively. Missing directions = 1.
std::string EncodeIndexKey(const std::vector<bson_value_t>& values,
                           const std::vector<int>& directions);
// One value, ascending (e.g. for grouping values that compare equal).
std::string EncodeValue(const bson_value_t& value);
// Appends an int64 record id (8 bytes, big-endian with the sign bit flipped) so non-unique indexes
// keep duplicates apart, and reads it back from the last 8 bytes.
std::string AppendRecordId(std::string key, int64_t record_id);
int64_t DecodeRecordIdSuffix(std::string_view key);

}  // namespace wtm::query
