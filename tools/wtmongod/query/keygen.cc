#include "query/keygen.h"

#include <set>
#include <string>
#include <string_view>

#include "common/error.h"
#include "query/keystring.h"

namespace wtm::query {
namespace {

bool IsIndex(std::string_view s) {
  if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bson_value_t Null() {
  bson_value_t v;
  v.value_type = BSON_TYPE_NULL;
  return v;
}

void KeyWalk(const bson_value_t& v, const std::vector<std::string_view>& parts, size_t i,
             std::vector<bson_value_t>* out, bool* multikey) {
  if (v.value_type == BSON_TYPE_ARRAY) {
    bson_t arr = ViewDoc(v);
    bson_iter_t it;
    if (i < parts.size() && IsIndex(parts[i]) &&
        bson_iter_init_find_w_len(&it, &arr, parts[i].data(), static_cast<int>(parts[i].size()))) {
      KeyWalk(*bson_iter_value(&it), parts, i + 1, out, multikey);
      return;
    }
    *multikey = true;
    bool any = false;
    if (bson_iter_init(&it, &arr)) {
      while (bson_iter_next(&it)) {
        any = true;
        bson_value_t e = *bson_iter_value(&it);
        if (i == parts.size()) {
          out->push_back(e);
        } else if (e.value_type == BSON_TYPE_DOCUMENT) {
          KeyWalk(e, parts, i, out, multikey);
        } else {
          out->push_back(Null());
        }
      }
    }
    if (!any) out->push_back(Null());
    return;
  }
  if (i == parts.size()) {
    out->push_back(v);
    return;
  }
  if (v.value_type == BSON_TYPE_DOCUMENT) {
    bson_t d = ViewDoc(v);
    bson_iter_t it;
    if (bson_iter_init_find_w_len(&it, &d, parts[i].data(), static_cast<int>(parts[i].size()))) {
      KeyWalk(*bson_iter_value(&it), parts, i + 1, out, multikey);
      return;
    }
  }
  out->push_back(Null());
}

struct FieldKeys {
  std::string path;
  std::vector<bson_value_t> values;  // deduplicated
  bool multikey = false;
};

std::vector<FieldKeys> Collect(const bson_t* key_pattern, const bson_t* doc) {
  std::vector<FieldKeys> fields;
  bson_value_t root;
  root.value_type = BSON_TYPE_DOCUMENT;
  root.value.v_doc.data = const_cast<uint8_t*>(bson_get_data(doc));
  root.value.v_doc.data_len = doc->len;
  bson_iter_t it;
  if (!bson_iter_init(&it, key_pattern)) return fields;
  while (bson_iter_next(&it)) {
    FieldKeys f;
    f.path.assign(bson_iter_key(&it), bson_iter_key_len(&it));
    std::vector<std::string_view> parts;
    std::string_view p = f.path;
    size_t start = 0;
    while (true) {
      size_t dot = p.find('.', start);
      parts.push_back(p.substr(start, dot == p.npos ? p.npos : dot - start));
      if (dot == p.npos) break;
      start = dot + 1;
    }
    std::vector<bson_value_t> raw;
    KeyWalk(root, parts, 0, &raw, &f.multikey);
    std::set<std::string> seen;
    for (const auto& v : raw) {
      if (seen.insert(EncodeValue(v)).second) f.values.push_back(v);
    }
    fields.push_back(std::move(f));
  }
  return fields;
}

}  // namespace

std::vector<std::vector<OwnedValue>> GetIndexKeys(const bson_t* key_pattern, const bson_t* doc) {
  std::vector<FieldKeys> fields = Collect(key_pattern, doc);
  const FieldKeys* first_array = nullptr;
  for (const auto& f : fields) {
    if (!f.multikey) continue;
    if (first_array) {
      throw MongoError(ErrorCode::kCannotIndexParallelArrays,
                       "cannot index parallel arrays [" + first_array->path + "] [" + f.path + "]");
    }
    first_array = &f;
  }
  // With at most one multikey field, the cross product is one key per value of that field.
  std::vector<std::vector<OwnedValue>> keys(1);
  for (const auto& f : fields) {
    std::vector<std::vector<OwnedValue>> next;
    for (const auto& prefix : keys) {
      for (const auto& v : f.values) {
        next.push_back(prefix);
        next.back().emplace_back(v);
      }
    }
    keys = std::move(next);
  }
  if (fields.empty()) keys.clear();
  return keys;
}

bool IsMultikey(const bson_t* key_pattern, const bson_t* doc) {
  for (const auto& f : Collect(key_pattern, doc)) {
    if (f.multikey) return true;
  }
  return false;
}

}  // namespace wtm::query
