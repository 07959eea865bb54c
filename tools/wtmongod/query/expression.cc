#include "query/expression.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"

namespace wtm::query {
namespace {

bool IsOperatorDoc(const bson_value_t& v, const char** op) {
  if (v.value_type != BSON_TYPE_DOCUMENT) return false;
  bson_t d = ViewDoc(v);
  bson_iter_t it;
  if (!bson_iter_init(&it, &d) || !bson_iter_next(&it)) return false;
  *op = bson_iter_key(&it);
  return (*op)[0] == '$';
}

// Splits "$a.b" / "$$ROOT.a" into path components below the root; validates.
std::vector<std::string> ParseFieldPath(std::string_view s) {
  std::vector<std::string> parts;
  std::string_view rest;
  if (s.size() >= 2 && s[1] == '$') {
    std::string_view var = s.substr(2);
    size_t dot = var.find('.');
    std::string_view name = var.substr(0, dot);
    if (name != "ROOT" && name != "CURRENT") {
      throw MongoError(17276, "Use of undefined variable: " + std::string(name));
    }
    if (dot == std::string_view::npos) return parts;
    rest = var.substr(dot + 1);
  } else {
    rest = s.substr(1);
  }
  size_t start = 0;
  while (true) {
    size_t dot = rest.find('.', start);
    std::string_view part = rest.substr(start, dot == rest.npos ? rest.npos : dot - start);
    if (part.empty()) throw MongoError(15998, "FieldPath field names may not be empty strings.");
    if (part[0] == '$') {
      throw MongoError(16410,
                       "FieldPath field names may not start with '$'. Consider using "
                       "$getField or $setField.");
    }
    parts.emplace_back(part);
    if (dot == rest.npos) break;
    start = dot + 1;
  }
  return parts;
}

std::optional<OwnedValue> Lookup(const bson_value_t& v, const std::vector<std::string>& parts,
                                 size_t i) {
  if (i == parts.size()) return OwnedValue(v);
  if (v.value_type == BSON_TYPE_DOCUMENT) {
    bson_t d = ViewDoc(v);
    bson_iter_t it;
    if (!bson_iter_init_find_w_len(&it, &d, parts[i].data(), static_cast<int>(parts[i].size()))) {
      return std::nullopt;
    }
    return Lookup(*bson_iter_value(&it), parts, i + 1);
  }
  if (v.value_type == BSON_TYPE_ARRAY) {
    bson_t d = ViewDoc(v);
    bson_t out;
    bson_init(&out);
    bson_iter_t it;
    uint32_t n = 0;
    if (bson_iter_init(&it, &d)) {
      while (bson_iter_next(&it)) {
        bson_value_t e = *bson_iter_value(&it);
        if (e.value_type != BSON_TYPE_DOCUMENT && e.value_type != BSON_TYPE_ARRAY) continue;
        auto r = Lookup(e, parts, i);
        if (!r) continue;
        AppendValue(&out, std::to_string(n++), r->get());
      }
    }
    OwnedValue arr = ValueOfDoc(&out, true);
    bson_destroy(&out);
    return arr;
  }
  return std::nullopt;
}

}  // namespace

void AppendValue(bson_t* out, std::string_view key, const bson_value_t& v) {
  bson_append_value(out, key.data(), static_cast<int>(key.size()), &v);
}

OwnedValue ValueOfDoc(const bson_t* b, bool array) {
  bson_value_t v;
  v.value_type = array ? BSON_TYPE_ARRAY : BSON_TYPE_DOCUMENT;
  v.value.v_doc.data = const_cast<uint8_t*>(bson_get_data(b));
  v.value.v_doc.data_len = b->len;
  return OwnedValue(v);
}

void ValidateExpression(const bson_value_t& expr) {
  const char* op;
  if (expr.value_type == BSON_TYPE_UTF8 && expr.value.v_utf8.str[0] == '$') {
    ParseFieldPath({expr.value.v_utf8.str, expr.value.v_utf8.len});
  } else if (IsOperatorDoc(expr, &op)) {
    if (std::strcmp(op, "$literal") != 0) {
      throw MongoError(168, std::string("Unrecognized expression '") + op + "'");
    }
    bson_t d = ViewDoc(expr);
    if (bson_count_keys(&d) != 1) {
      throw MongoError(15983, "An object representing an expression must have exactly one field");
    }
  } else if (expr.value_type == BSON_TYPE_DOCUMENT || expr.value_type == BSON_TYPE_ARRAY) {
    bson_t d = ViewDoc(expr);
    bson_iter_t it;
    if (bson_iter_init(&it, &d)) {
      while (bson_iter_next(&it)) {
        if (expr.value_type == BSON_TYPE_DOCUMENT && bson_iter_key(&it)[0] == '$') {
          throw MongoError(16410, std::string("FieldPath field names may not start with '$': ") +
                                      bson_iter_key(&it));
        }
        ValidateExpression(*bson_iter_value(&it));
      }
    }
  }
}

std::optional<OwnedValue> EvaluateExpression(const bson_value_t& expr, const bson_t* doc) {
  const char* op;
  if (expr.value_type == BSON_TYPE_UTF8 && expr.value.v_utf8.str[0] == '$') {
    std::vector<std::string> parts = ParseFieldPath({expr.value.v_utf8.str, expr.value.v_utf8.len});
    bson_value_t root;
    root.value_type = BSON_TYPE_DOCUMENT;
    root.value.v_doc.data = const_cast<uint8_t*>(bson_get_data(doc));
    root.value.v_doc.data_len = doc->len;
    if (parts.empty()) return OwnedValue(root);
    // A top-level array on the path maps over its elements; a path ending in an array returns it.
    return Lookup(root, parts, 0);
  }
  if (IsOperatorDoc(expr, &op)) {
    if (std::strcmp(op, "$literal") != 0) {
      throw MongoError(168, std::string("Unrecognized expression '") + op + "'");
    }
    bson_t d = ViewDoc(expr);
    bson_iter_t it;
    bson_iter_init(&it, &d);
    bson_iter_next(&it);
    return OwnedValue(*bson_iter_value(&it));
  }
  if (expr.value_type == BSON_TYPE_DOCUMENT || expr.value_type == BSON_TYPE_ARRAY) {
    bool array = expr.value_type == BSON_TYPE_ARRAY;
    bson_t d = ViewDoc(expr);
    bson_t out;
    bson_init(&out);
    bson_iter_t it;
    if (bson_iter_init(&it, &d)) {
      while (bson_iter_next(&it)) {
        auto r = EvaluateExpression(*bson_iter_value(&it), doc);
        if (r) {
          AppendValue(&out, {bson_iter_key(&it), bson_iter_key_len(&it)}, r->get());
        } else if (array) {
          bson_append_null(&out, bson_iter_key(&it), static_cast<int>(bson_iter_key_len(&it)));
        }
      }
    }
    OwnedValue v = ValueOfDoc(&out, array);
    bson_destroy(&out);
    return v;
  }
  return OwnedValue(expr);
}

}  // namespace wtm::query
