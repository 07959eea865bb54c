#include "query/pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "common/error.h"
#include "query/compare.h"
#include "query/expression.h"
#include "query/keystring.h"
#include "query/matcher.h"
#include "query/number.h"
#include "query/projection.h"
#include "query/sort.h"
#include "query/value.h"

namespace wtm::query {

struct Pipeline::Stage {
  enum Kind { kMatch, kSort, kLimit, kSkip, kCount, kProject, kAddFields, kGroup, kUnwind };
  enum Acc { kSum, kAvg, kMin, kMax, kFirst, kLast, kPush, kAddToSet, kCountAcc };
  struct Accumulator {
    std::string name;
    Acc op;
    bson_value_t expr;  // points into the pipeline's stages document
  };
  Kind kind;
  std::optional<Matcher> matcher;
  std::optional<SortSpec> sort;
  std::optional<Projection> projection;
  int64_t n = 0;                                             // $limit / $skip
  std::string name;                                          // $count field; $unwind index field
  std::vector<std::pair<std::string, bson_value_t>> fields;  // $addFields
  bson_value_t id_expr{};                                    // $group
  std::vector<Accumulator> accumulators;                     // $group
  std::string path;                                          // $unwind (without '$')
  bool preserve = false;                                     // $unwind
  const bson_t* match_filter = nullptr;                      // $match
};

namespace {

using Stage = Pipeline::Stage;

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == path.npos ? path.npos : dot - start));
    if (dot == path.npos) return parts;
    start = dot + 1;
  }
}

// Copies `doc` into `out` with the field at parts[i..] set to *value (or removed when value is
// null). Non-document values on the way are replaced by documents.
void SetPathInto(const bson_t* doc, const std::vector<std::string_view>& parts, size_t i,
                 const bson_value_t* value, bson_t* out) {
  std::string_view head = parts[i];
  bool last = i + 1 == parts.size();
  bool done = false;
  bson_iter_t it;
  if (doc && bson_iter_init(&it, doc)) {
    while (bson_iter_next(&it)) {
      std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
      if (key != head) {
        AppendValue(out, key, *bson_iter_value(&it));
        continue;
      }
      done = true;
      if (last) {
        if (value) AppendValue(out, key, *value);
        continue;
      }
      bson_t child;
      bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &child);
      if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_t sub = ViewDoc(*bson_iter_value(&it));
        SetPathInto(&sub, parts, i + 1, value, &child);
      } else {
        SetPathInto(nullptr, parts, i + 1, value, &child);
      }
      bson_append_document_end(out, &child);
    }
  }
  if (done || !value) return;
  if (last) {
    AppendValue(out, head, *value);
    return;
  }
  bson_t child;
  bson_append_document_begin(out, head.data(), static_cast<int>(head.size()), &child);
  SetPathInto(nullptr, parts, i + 1, value, &child);
  bson_append_document_end(out, &child);
}

wtm::Doc SetPath(const bson_t* doc, std::string_view path, const bson_value_t* value) {
  bson_t* out = bson_new();
  SetPathInto(doc, Split(path), 0, value, out);
  return wtm::Doc(out);
}

// The value at a dotted path through sub-documents only (arrays are not traversed).
std::optional<bson_value_t> GetField(const bson_t* doc, std::string_view path) {
  bson_iter_t it;
  std::string p(path);
  if (!bson_iter_init(&it, doc)) return std::nullopt;
  bson_iter_t child;
  if (!bson_iter_find_descendant(&it, p.c_str(), &child)) return std::nullopt;
  return *bson_iter_value(&child);
}

int64_t StageNumber(const bson_value_t& v, int code, const char* msg) {
  if (!internal::IsNumber(v.value_type)) throw MongoError(code, msg);
  internal::NumKey k = internal::ToNumKey(v);
  if (k.nan || k.d != std::trunc(k.d) || std::isinf(k.d)) throw MongoError(code, msg);
  if (v.value_type == BSON_TYPE_INT64) return v.value.v_int64;
  if (k.d >= 9.2233720368547758e18) return INT64_MAX;
  return static_cast<int64_t>(k.d);
}

std::shared_ptr<const Stage> ParseStage(const bson_value_t& sv) {
  if (sv.value_type != BSON_TYPE_DOCUMENT) {
    throw MongoError(ErrorCode::kTypeMismatch,
                     "Each element of the 'pipeline' array must be an object");
  }
  bson_t sd = ViewDoc(sv);
  if (bson_count_keys(&sd) != 1) {
    throw MongoError(40323,
                     "A pipeline stage specification object must contain exactly one field.");
  }
  bson_iter_t it;
  bson_iter_init(&it, &sd);
  bson_iter_next(&it);
  std::string name = bson_iter_key(&it);
  bson_value_t v = *bson_iter_value(&it);
  auto st = std::make_shared<Stage>();
  bson_t arg = ViewDoc(v);
  bool is_doc = v.value_type == BSON_TYPE_DOCUMENT;
  if (name == "$match") {
    if (!is_doc) throw MongoError(15959, "the match filter must be an expression in an object");
    st->kind = Stage::kMatch;
    st->matcher.emplace(&arg);
    st->match_filter = st->matcher->filter();
  } else if (name == "$sort") {
    if (!is_doc) throw MongoError(15973, "the $sort key specification must be an object");
    if (bson_count_keys(&arg) == 0) {
      throw MongoError(15976, "$sort stage must have at least one sort key");
    }
    st->kind = Stage::kSort;
    st->sort.emplace(&arg);
  } else if (name == "$limit") {
    st->kind = Stage::kLimit;
    st->n = StageNumber(v, 15957, "the limit must be specified as a number");
    if (st->n <= 0) throw MongoError(15958, "the limit must be positive");
  } else if (name == "$skip") {
    st->kind = Stage::kSkip;
    st->n = StageNumber(v, 15972, "Argument to $skip must be a number");
    if (st->n < 0) throw MongoError(15956, "Argument to $skip cannot be negative");
  } else if (name == "$count") {
    st->kind = Stage::kCount;
    if (v.value_type != BSON_TYPE_UTF8 || v.value.v_utf8.len == 0) {
      throw MongoError(40156, "the count field must be a non-empty string");
    }
    st->name = v.value.v_utf8.str;
    if (st->name[0] == '$') throw MongoError(40158, "the count field cannot be a $-prefixed path");
    if (st->name.find('.') != std::string::npos) {
      throw MongoError(40160, "the count field cannot contain '.'");
    }
  } else if (name == "$project") {
    if (!is_doc) throw MongoError(15969, "$project specification must be an object");
    if (bson_count_keys(&arg) == 0) {
      throw MongoError(51272, "projection specification must have at least one field");
    }
    st->kind = Stage::kProject;
    st->projection.emplace(&arg);
  } else if (name == "$unset") {
    st->kind = Stage::kProject;
    bson_t spec = BSON_INITIALIZER;
    if (v.value_type == BSON_TYPE_UTF8) {
      bson_append_int32(&spec, v.value.v_utf8.str, static_cast<int>(v.value.v_utf8.len), 0);
    } else if (v.value_type == BSON_TYPE_ARRAY) {
      bson_iter_t e;
      bson_iter_init(&e, &arg);
      while (bson_iter_next(&e)) {
        if (!BSON_ITER_HOLDS_UTF8(&e)) {
          bson_destroy(&spec);
          throw MongoError(31120,
                           "$unset specification must be a string or an array containing "
                           "only string values");
        }
        uint32_t len;
        const char* s = bson_iter_utf8(&e, &len);
        bson_append_int32(&spec, s, static_cast<int>(len), 0);
      }
    } else {
      throw MongoError(31002, "$unset specification must be a string or an array");
    }
    try {
      st->projection.emplace(&spec);
    } catch (...) {
      bson_destroy(&spec);
      throw;
    }
    bson_destroy(&spec);
  } else if (name == "$addFields" || name == "$set") {
    if (!is_doc) throw MongoError(40272, name + " specification stage must be an object");
    st->kind = Stage::kAddFields;
    bson_iter_t f;
    bson_iter_init(&f, &arg);
    while (bson_iter_next(&f)) {
      bson_value_t e = *bson_iter_value(&f);
      ValidateExpression(e);
      st->fields.emplace_back(std::string(bson_iter_key(&f), bson_iter_key_len(&f)), e);
    }
  } else if (name == "$group") {
    if (!is_doc) throw MongoError(15947, "a group's fields must be specified in an object");
    st->kind = Stage::kGroup;
    bool have_id = false;
    bson_iter_t f;
    bson_iter_init(&f, &arg);
    while (bson_iter_next(&f)) {
      std::string field(bson_iter_key(&f), bson_iter_key_len(&f));
      bson_value_t e = *bson_iter_value(&f);
      if (field == "_id") {
        ValidateExpression(e);
        st->id_expr = e;
        have_id = true;
        continue;
      }
      if (field.find('.') != std::string::npos) {
        throw MongoError(40235, "The field name '" + field + "' cannot contain '.'");
      }
      bson_t acc = ViewDoc(e);
      if (e.value_type != BSON_TYPE_DOCUMENT || bson_count_keys(&acc) != 1) {
        throw MongoError(40234, "The field '" + field + "' must be an accumulator object");
      }
      bson_iter_t a;
      bson_iter_init(&a, &acc);
      bson_iter_next(&a);
      std::string op = bson_iter_key(&a);
      static const std::map<std::string, Stage::Acc> kOps = {
          {"$sum", Stage::kSum},   {"$avg", Stage::kAvg},           {"$min", Stage::kMin},
          {"$max", Stage::kMax},   {"$first", Stage::kFirst},       {"$last", Stage::kLast},
          {"$push", Stage::kPush}, {"$addToSet", Stage::kAddToSet}, {"$count", Stage::kCountAcc}};
      auto found = kOps.find(op);
      if (found == kOps.end()) throw MongoError(15952, "unknown group operator '" + op + "'");
      bson_value_t expr = *bson_iter_value(&a);
      if (found->second != Stage::kCountAcc) ValidateExpression(expr);
      st->accumulators.push_back({field, found->second, expr});
    }
    if (!have_id) throw MongoError(15955, "a group specification must include an _id");
  } else if (name == "$unwind") {
    st->kind = Stage::kUnwind;
    bson_value_t p{};
    if (v.value_type == BSON_TYPE_UTF8) {
      p = v;
    } else if (is_doc) {
      bson_iter_t f;
      bson_iter_init(&f, &arg);
      while (bson_iter_next(&f)) {
        std::string key = bson_iter_key(&f);
        if (key == "path") {
          p = *bson_iter_value(&f);
        } else if (key == "preserveNullAndEmptyArrays") {
          if (!BSON_ITER_HOLDS_BOOL(&f)) {
            throw MongoError(28809,
                             "expected a boolean for the preserveNullAndEmptyArrays option "
                             "to $unwind stage");
          }
          st->preserve = bson_iter_bool(&f);
        } else if (key == "includeArrayIndex") {
          if (!BSON_ITER_HOLDS_UTF8(&f) || bson_iter_utf8(&f, nullptr)[0] == '$' ||
              bson_iter_utf8(&f, nullptr)[0] == '\0') {
            throw MongoError(28810,
                             "expected a non-empty string for the includeArrayIndex option "
                             "to $unwind stage");
          }
          st->name = bson_iter_utf8(&f, nullptr);
        } else {
          throw MongoError(28811, "unrecognized option to $unwind stage: " + key);
        }
      }
      if (p.value_type == 0) throw MongoError(28812, "no path specified to $unwind stage");
    } else {
      throw MongoError(15981,
                       "expected either a string or an object as specification for $unwind "
                       "stage");
    }
    if (p.value_type != BSON_TYPE_UTF8) {
      throw MongoError(28808, "expected a string as the path for $unwind stage");
    }
    if (p.value.v_utf8.str[0] != '$' || p.value.v_utf8.len < 2) {
      throw MongoError(28818, "path option to $unwind stage should be prefixed with a '$': " +
                                  std::string(p.value.v_utf8.str));
    }
    st->path = p.value.v_utf8.str + 1;
  } else {
    throw MongoError(40324, "Unrecognized pipeline stage name: '" + name + "'");
  }
  return st;
}

// Per-run state of the streaming stages.
struct RunState {
  std::vector<int64_t> counters;  // docs seen by each $skip / passed by each $limit
};

// Applies a streaming stage to one document, appending 0..n outputs.
void Stream(const Stage& st, size_t index, wtm::Doc doc, RunState* rs, std::vector<wtm::Doc>* out) {
  switch (st.kind) {
    case Stage::kMatch:
      if (st.matcher->Matches(doc.get())) out->push_back(std::move(doc));
      return;
    case Stage::kSkip:
      if (rs->counters[index]++ >= st.n) out->push_back(std::move(doc));
      return;
    case Stage::kLimit:
      if (rs->counters[index] < st.n) {
        rs->counters[index]++;
        out->push_back(std::move(doc));
      }
      return;
    case Stage::kProject:
      out->push_back(st.projection->Apply(doc.get()));
      return;
    case Stage::kAddFields: {
      // Expressions see the input document, as in mongod.
      wtm::Doc result = doc;
      for (const auto& [path, expr] : st.fields) {
        auto v = EvaluateExpression(expr, doc.get());
        result = SetPath(result.get(), path, v ? &v->get() : nullptr);
      }
      out->push_back(std::move(result));
      return;
    }
    case Stage::kUnwind: {
      std::optional<bson_value_t> v = GetField(doc.get(), st.path);
      auto with_index = [&](const wtm::Doc& d, const bson_value_t* index) {
        if (st.name.empty()) return d;
        bson_value_t null_value;
        null_value.value_type = BSON_TYPE_NULL;
        return SetPath(d.get(), st.name, index ? index : &null_value);
      };
      if (v && v->value_type == BSON_TYPE_ARRAY) {
        bson_t arr = ViewDoc(*v);
        bson_iter_t it;
        int64_t i = 0;
        if (bson_iter_init(&it, &arr)) {
          while (bson_iter_next(&it)) {
            wtm::Doc d = SetPath(doc.get(), st.path, bson_iter_value(&it));
            bson_value_t index;
            index.value_type = BSON_TYPE_INT64;
            index.value.v_int64 = i++;
            out->push_back(with_index(d, &index));
          }
        }
        if (i == 0 && st.preserve)
          out->push_back(with_index(SetPath(doc.get(), st.path, nullptr), nullptr));
        return;
      }
      if (v && v->value_type != BSON_TYPE_NULL && v->value_type != BSON_TYPE_UNDEFINED) {
        out->push_back(with_index(doc, nullptr));  // a scalar unwinds to itself
        return;
      }
      if (st.preserve) out->push_back(with_index(doc, nullptr));
      return;
    }
    default:
      return;
  }
}

bool IsStreaming(Stage::Kind k) {
  return k != Stage::kSort && k != Stage::kGroup && k != Stage::kCount;
}

struct GroupState {
  OwnedValue id;
  struct Acc {
    int64_t isum = 0;
    double dsum = 0;
    bool any_double = false, any_long = false, overflow = false;
    int64_t count = 0;
    std::optional<OwnedValue> value;
    std::vector<OwnedValue> list;
    std::set<std::string> seen;
  };
  std::vector<Acc> accs;
};

void Accumulate(const Stage::Accumulator& a, GroupState::Acc* s, const bson_t* doc) {
  if (a.op == Stage::kCountAcc) {
    s->count++;
    return;
  }
  std::optional<OwnedValue> v = EvaluateExpression(a.expr, doc);
  bool nullish = !v || v->type() == BSON_TYPE_NULL || v->type() == BSON_TYPE_UNDEFINED;
  switch (a.op) {
    case Stage::kSum:
    case Stage::kAvg: {
      if (!v || !internal::IsNumber(v->type())) return;
      s->count++;
      const bson_value_t& n = v->get();
      if (n.value_type == BSON_TYPE_INT32 || n.value_type == BSON_TYPE_INT64) {
        int64_t x = n.value_type == BSON_TYPE_INT32 ? n.value.v_int32 : n.value.v_int64;
        if (n.value_type == BSON_TYPE_INT64) s->any_long = true;
        if (s->overflow || __builtin_add_overflow(s->isum, x, &s->isum)) {
          if (!s->overflow) s->dsum += static_cast<double>(s->isum);
          s->overflow = true;
          s->dsum += static_cast<double>(x);
        }
      } else {
        s->any_double = true;
        s->dsum += internal::ToNumKey(n).d;
      }
      return;
    }
    case Stage::kMin:
    case Stage::kMax:
      if (nullish) return;
      if (!s->value || (a.op == Stage::kMin ? CompareValues(v->get(), s->value->get()) < 0
                                            : CompareValues(v->get(), s->value->get()) > 0)) {
        s->value = std::move(v);
      }
      return;
    case Stage::kFirst:
      if (s->count++ == 0) s->value = v ? std::move(v) : OwnedValue();
      return;
    case Stage::kLast:
      s->value = v ? std::move(v) : OwnedValue();
      return;
    case Stage::kPush:
      if (v) s->list.push_back(std::move(*v));
      return;
    case Stage::kAddToSet:
      if (v && s->seen.insert(EncodeValue(v->get())).second) s->list.push_back(std::move(*v));
      return;
    default:
      return;
  }
}

void AppendResult(const Stage::Accumulator& a, const GroupState::Acc& s, bson_t* out) {
  const char* k = a.name.c_str();
  int len = static_cast<int>(a.name.size());
  switch (a.op) {
    case Stage::kSum:
      if (s.any_double || s.overflow) {
        bson_append_double(out, k, len, s.dsum + (s.overflow ? 0 : static_cast<double>(s.isum)));
      } else if (s.any_long || s.isum > INT32_MAX || s.isum < INT32_MIN) {
        bson_append_int64(out, k, len, s.isum);
      } else {
        bson_append_int32(out, k, len, static_cast<int32_t>(s.isum));
      }
      return;
    case Stage::kAvg:
      if (s.count == 0) {
        bson_append_null(out, k, len);
      } else {
        double total = s.dsum + (s.overflow ? 0 : static_cast<double>(s.isum));
        bson_append_double(out, k, len, total / static_cast<double>(s.count));
      }
      return;
    case Stage::kCountAcc:
      if (s.count > INT32_MAX) {
        bson_append_int64(out, k, len, s.count);
      } else {
        bson_append_int32(out, k, len, static_cast<int32_t>(s.count));
      }
      return;
    case Stage::kMin:
    case Stage::kMax:
    case Stage::kFirst:
    case Stage::kLast:
      if (s.value) {
        AppendValue(out, a.name, s.value->get());
      } else {
        bson_append_null(out, k, len);
      }
      return;
    case Stage::kPush:
    case Stage::kAddToSet: {
      bson_t arr;
      bson_append_array_begin(out, k, len, &arr);
      for (size_t i = 0; i < s.list.size(); ++i)
        AppendValue(&arr, std::to_string(i), s.list[i].get());
      bson_append_array_end(out, &arr);
      return;
    }
  }
}

std::vector<wtm::Doc> Group(const Stage& st, const std::vector<wtm::Doc>& in) {
  std::map<std::string, size_t> index;
  std::vector<GroupState> groups;
  for (const auto& doc : in) {
    std::optional<OwnedValue> id = EvaluateExpression(st.id_expr, doc.get());
    OwnedValue key = id ? std::move(*id) : OwnedValue();
    std::string enc = EncodeValue(key.get());
    auto [pos, inserted] = index.emplace(enc, groups.size());
    if (inserted) {
      groups.emplace_back();
      groups.back().id = std::move(key);
      groups.back().accs.resize(st.accumulators.size());
    }
    GroupState& g = groups[pos->second];
    for (size_t i = 0; i < st.accumulators.size(); ++i) {
      Accumulate(st.accumulators[i], &g.accs[i], doc.get());
    }
  }
  std::vector<wtm::Doc> out;
  out.reserve(groups.size());
  for (const auto& g : groups) {
    bson_t* d = bson_new();
    AppendValue(d, "_id", g.id.get());
    for (size_t i = 0; i < st.accumulators.size(); ++i)
      AppendResult(st.accumulators[i], g.accs[i], d);
    out.emplace_back(d);
  }
  return out;
}

}  // namespace

Pipeline::Pipeline(const bson_t* stages_array) {
  stages_ =
      std::make_shared<const wtm::Doc>(stages_array ? wtm::Doc::Copy(stages_array) : wtm::Doc());
  bson_iter_t it;
  if (!bson_iter_init(&it, stages_->get())) return;
  while (bson_iter_next(&it)) parsed_.push_back(ParseStage(*bson_iter_value(&it)));
}

Pipeline::Pipeline(const Pipeline&) = default;
Pipeline& Pipeline::operator=(const Pipeline&) = default;
Pipeline::~Pipeline() = default;

const bson_t* Pipeline::leading_match() const {
  if (parsed_.empty() || parsed_[0]->kind != Stage::kMatch) return nullptr;
  return parsed_[0]->match_filter;
}

std::vector<wtm::Doc> Pipeline::Run(const std::function<bool(wtm::Doc*)>& source) const {
  RunState rs;
  rs.counters.assign(parsed_.size(), 0);
  size_t prefix = 0;
  while (prefix < parsed_.size() && IsStreaming(parsed_[prefix]->kind)) ++prefix;

  // Pull documents through the streaming prefix.
  std::vector<wtm::Doc> docs;
  auto prefix_exhausted = [&] {
    for (size_t i = 0; i < prefix; ++i) {
      if (parsed_[i]->kind == Stage::kLimit && rs.counters[i] >= parsed_[i]->n) return true;
    }
    return false;
  };
  std::vector<wtm::Doc> cur, next;
  while (!prefix_exhausted()) {
    wtm::Doc d;
    if (!source(&d)) break;
    cur.clear();
    cur.push_back(std::move(d));
    for (size_t i = 0; i < prefix && !cur.empty(); ++i) {
      next.clear();
      for (auto& c : cur) Stream(*parsed_[i], i, std::move(c), &rs, &next);
      std::swap(cur, next);
    }
    for (auto& c : cur) docs.push_back(std::move(c));
  }

  // The rest, stage by stage.
  for (size_t i = prefix; i < parsed_.size(); ++i) {
    const Stage& st = *parsed_[i];
    switch (st.kind) {
      case Stage::kSort:
        std::stable_sort(docs.begin(), docs.end(), [&](const wtm::Doc& a, const wtm::Doc& b) {
          return st.sort->Compare(a.get(), b.get()) < 0;
        });
        break;
      case Stage::kGroup:
        docs = Group(st, docs);
        break;
      case Stage::kCount: {
        size_t n = docs.size();
        docs.clear();
        if (n > 0) {
          bson_t* d = bson_new();
          if (n > INT32_MAX) {
            bson_append_int64(d, st.name.c_str(), -1, static_cast<int64_t>(n));
          } else {
            bson_append_int32(d, st.name.c_str(), -1, static_cast<int32_t>(n));
          }
          docs.emplace_back(d);
        }
        break;
      }
      default: {
        std::vector<wtm::Doc> out;
        for (auto& d : docs) Stream(st, i, std::move(d), &rs, &out);
        docs = std::move(out);
      }
    }
  }
  return docs;
}

}  // namespace wtm::query
