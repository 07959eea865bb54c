// Aggregation expressions (the small subset wtmongod needs).
#pragma once

#include <bson/bson.h>

#include <optional>
#include <string_view>

#include "query/value.h"

namespace wtm::query {

// Supported: "$a.b" field paths (through arrays: the array of the elements' values), "$$ROOT" and
// "$$CURRENT" (and paths below them), {$literal: v}, documents of expressions (missing fields
// dropped), arrays of expressions (missing elements become null), and any other value as a literal.
// Throws MongoError(168, "Unrecognized expression '$op'") for other operators, MongoError(17276,
// "Use of undefined variable: x") for other variables, MongoError(16410, ...) for invalid field
// paths.
void ValidateExpression(const bson_value_t& expr);
// The value of `expr` for `doc`; nullopt when it evaluates to "missing".
std::optional<OwnedValue> EvaluateExpression(const bson_value_t& expr, const bson_t* doc);

// Appends `v` under `key`.
void AppendValue(bson_t* out, std::string_view key, const bson_value_t& v);
// An array or document value holding a copy of `b`.
OwnedValue ValueOfDoc(const bson_t* b, bool array);

}  // namespace wtm::query
