// Helpers for the query tests (header only; not part of wtm_query).
#pragma once

#include <bson/bson.h>

#include <string>
#include <vector>

#include "common/doc.h"

namespace wtm::query::testing {

// The elements of a JSON array, as values pointing into `holder`.
inline std::vector<bson_value_t> Values(const std::string& json_array, wtm::Doc* holder) {
  *holder = wtm::Doc::FromJson("{\"a\": " + json_array + "}");
  std::vector<bson_value_t> out;
  bson_iter_t it, child;
  bson_iter_init_find(&it, holder->get(), "a");
  bson_iter_recurse(&it, &child);
  while (bson_iter_next(&child)) out.push_back(*bson_iter_value(&child));
  return out;
}

inline wtm::Doc J(const std::string& json) { return wtm::Doc::FromJson(json); }

}  // namespace wtm::query::testing
