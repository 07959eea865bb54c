#include "query/sort.h"

#include "common/error.h"
#include "query/compare.h"
#include "query/number.h"
#include "query/value.h"

namespace wtm::query {
namespace {

// The value a document sorts by for one field (see SortSpec).
bson_value_t SortKey(const bson_t* doc, const std::string& path, int direction) {
  bool missing = false;
  std::vector<bson_value_t> vals = GetPathValues(doc, path, &missing);
  bson_value_t null_value;
  null_value.value_type = BSON_TYPE_NULL;
  bson_value_t best;
  bool have = false;
  auto consider = [&](const bson_value_t& v) {
    if (!have || (direction > 0 ? CompareValues(v, best) < 0 : CompareValues(v, best) > 0)) {
      best = v;
      have = true;
    }
  };
  for (const auto& v : vals) {
    if (v.value_type != BSON_TYPE_ARRAY) {
      consider(v);
      continue;
    }
    bson_t arr = ViewDoc(v);
    bson_iter_t it;
    bool any = false;
    if (bson_iter_init(&it, &arr)) {
      while (bson_iter_next(&it)) {
        any = true;
        consider(*bson_iter_value(&it));
      }
    }
    if (!any) {
      bson_value_t undef;
      undef.value_type = BSON_TYPE_UNDEFINED;
      consider(undef);
    }
  }
  if (missing) consider(null_value);
  return have ? best : null_value;
}

}  // namespace

SortSpec::SortSpec(const bson_t* spec) {
  bson_iter_t it;
  if (!spec || !bson_iter_init(&it, spec)) return;
  while (bson_iter_next(&it)) {
    std::string path(bson_iter_key(&it), bson_iter_key_len(&it));
    bson_value_t v = *bson_iter_value(&it);
    if (v.value_type == BSON_TYPE_DOCUMENT) {
      throw MongoError(ErrorCode::kBadValue, "wtmongod does not support $meta sort on " + path);
    }
    int dir = 0;
    if (internal::IsNumber(v.value_type)) {
      internal::NumKey k = internal::ToNumKey(v);
      if (!k.nan && k.rem == 0 && (k.d == 1 || k.d == -1)) dir = static_cast<int>(k.d);
    }
    if (dir == 0) {
      throw MongoError(ErrorCode::kBadValue,
                       "$sort key ordering must be 1 (for ascending) or -1 (for descending)");
    }
    if (path.empty()) throw MongoError(ErrorCode::kBadValue, "$sort field names may not be empty");
    fields_.push_back({std::move(path), dir});
  }
}

int SortSpec::Compare(const bson_t* a, const bson_t* b) const {
  for (const auto& f : fields_) {
    int c = CompareValues(SortKey(a, f.path, f.direction), SortKey(b, f.path, f.direction));
    if (c != 0) return f.direction > 0 ? c : -c;
  }
  return 0;
}

}  // namespace wtm::query
