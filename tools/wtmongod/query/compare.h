// MongoDB's BSON comparison order and dotted-path lookup.
#pragma once

#include <bson/bson.h>

#include <string_view>
#include <vector>

namespace wtm::query {

// Canonical type order: MinKey < undefined < null < numbers (int32, int64, double, decimal128 by
// value; NaN lowest) < string/symbol < object < array < binData < ObjectId < bool < date <
// timestamp < regex < dbPointer < code < codeWScope < maxKey. Int64 and double compare exactly;
// decimal128 compares exactly when it is an integer that fits int64, otherwise through its nearest
// double.
int CompareValues(const bson_value_t& a, const bson_value_t& b);  // <0, 0, >0
// Field by field: canonical type, then name, then value; a prefix sorts first.
int CompareDocs(const bson_t* a, const bson_t* b);
bool ValuesEqual(const bson_value_t& a, const bson_value_t& b);
// The canonical type rank used above (mongod's canonicalizeBSONType: MinKey -1, undefined 0, null
// 5, numbers 10, strings 15, ... maxKey 100).
int CanonicalType(bson_type_t t);

// Dotted-path lookup ("a.b.c"); descends into sub-documents; for arrays, numeric components index,
// otherwise the path applies to each element (collect all values, as MongoDB does for matching).
// An array found at the end of the path is returned as one value (not expanded). Values point into
// doc.
std::vector<bson_value_t> GetPathValues(const bson_t* doc, std::string_view path);
// Same; also sets *some_missing when some branch of the walk lacked the path (so {"a.b": null} can
// match {a: [{b: 1}, {}]}), including when nothing was found.
std::vector<bson_value_t> GetPathValues(const bson_t* doc, std::string_view path,
                                        bool* some_missing);

}  // namespace wtm::query
