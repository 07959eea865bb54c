#include "query/matcher.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "query/compare.h"
#include "query/number.h"
#include "query/regex.h"
#include "query/value.h"

namespace wtm::query {
namespace {

[[noreturn]] void Bad(const std::string& msg) { throw MongoError(ErrorCode::kBadValue, msg); }

// The values a path yields in one document.
struct ValueSet {
  std::vector<bson_value_t> vals;  // as found (arrays not expanded)
  bool missing = false;            // some branch lacked the path
};

class Node;

// One operator applied to the values of a path.
struct Pred {
  enum Op {
    kEq,
    kNe,
    kGt,
    kGte,
    kLt,
    kLte,
    kIn,
    kNin,
    kExists,
    kType,
    kSize,
    kAll,
    kElemMatchObj,
    kElemMatchVal,
    kNot,
    kRegex,
    kMod
  };
  Op op = kEq;
  bson_value_t operand{};
  std::shared_ptr<const Regex> regex;  // kRegex, kEq with a regex operand
  std::vector<Pred> children;          // kIn/kNin/kAll elements, kNot, kElemMatchVal operators
  std::shared_ptr<const Node> sub;     // kElemMatchObj
  std::vector<int> types;              // kType; 0 stands for "number"
  bool exists = true;
  int64_t n = 0, rem = 0;  // kSize, kMod
};

class Node {
 public:
  virtual ~Node() = default;
  virtual bool Matches(const bson_t* doc) const = 0;
};

class LogicalNode : public Node {
 public:
  enum Kind { kAnd, kOr, kNor };
  LogicalNode(Kind kind) : kind_(kind) {}
  bool Matches(const bson_t* doc) const override {
    for (const auto& c : children_) {
      bool m = c->Matches(doc);
      if (kind_ == kAnd && !m) return false;
      if (kind_ == kOr && m) return true;
      if (kind_ == kNor && m) return false;
    }
    return kind_ != kOr;
  }
  Kind kind_;
  std::vector<std::shared_ptr<const Node>> children_;
};

bool EvalPred(const Pred& p, const ValueSet& vs);

class PathNode : public Node {
 public:
  bool Matches(const bson_t* doc) const override {
    ValueSet vs;
    vs.vals = GetPathValues(doc, path_, &vs.missing);
    for (const auto& p : preds_) {
      if (!EvalPred(p, vs)) return false;
    }
    return true;
  }
  std::string path_;
  std::vector<Pred> preds_;
};

// Each value, and the elements of array values (mongod tries both).
template <typename F>
bool AnyCandidate(const ValueSet& vs, F f) {
  for (const auto& v : vs.vals) {
    if (v.value_type == BSON_TYPE_ARRAY) {
      bson_t arr = ViewDoc(v);
      bson_iter_t it;
      if (bson_iter_init(&it, &arr)) {
        while (bson_iter_next(&it)) {
          bson_value_t e = *bson_iter_value(&it);
          if (f(e)) return true;
        }
      }
    }
    if (f(v)) return true;
  }
  return false;
}

bool RegexMatchesValue(const Regex& re, const bson_value_t& v) {
  switch (v.value_type) {
    case BSON_TYPE_UTF8:
      return re.Search({v.value.v_utf8.str, v.value.v_utf8.len});
    case BSON_TYPE_SYMBOL:
      return re.Search({v.value.v_symbol.symbol, v.value.v_symbol.len});
    case BSON_TYPE_REGEX:
      return re.pattern() == v.value.v_regex.regex && re.options() == v.value.v_regex.options;
    default:
      return false;
  }
}

bool IsNaN(const bson_value_t& v) {
  return internal::IsNumber(v.value_type) && internal::ToNumKey(v).nan;
}

bool CompareOk(Pred::Op op, const bson_value_t& c, const bson_value_t& x) {
  int tc = CanonicalType(c.value_type), tx = CanonicalType(x.value_type);
  bool bracket_free = x.value_type == BSON_TYPE_MINKEY || x.value_type == BSON_TYPE_MAXKEY;
  if (tc != tx && !bracket_free) return false;
  if (tc == tx && tc == 10 && (IsNaN(c) || IsNaN(x))) {
    bool both = IsNaN(c) && IsNaN(x);
    return (op == Pred::kGte || op == Pred::kLte) && both;
  }
  int r = CompareValues(c, x);
  switch (op) {
    case Pred::kGt:
      return r > 0;
    case Pred::kGte:
      return r >= 0;
    case Pred::kLt:
      return r < 0;
    case Pred::kLte:
      return r <= 0;
    default:
      return false;
  }
}

bool TypeMatches(const std::vector<int>& types, const bson_value_t& v) {
  for (int t : types) {
    if (t == 0 ? internal::IsNumber(v.value_type) : static_cast<int>(v.value_type) == t)
      return true;
    if (t == -1 && v.value_type == BSON_TYPE_MINKEY) return true;
  }
  return false;
}

bool EvalEq(const Pred& p, const ValueSet& vs) {
  if (p.regex)
    return AnyCandidate(vs, [&](const bson_value_t& c) { return RegexMatchesValue(*p.regex, c); });
  if (p.operand.value_type == BSON_TYPE_NULL) {
    if (vs.missing) return true;
    return AnyCandidate(vs, [](const bson_value_t& c) { return c.value_type == BSON_TYPE_NULL; });
  }
  return AnyCandidate(vs, [&](const bson_value_t& c) { return ValuesEqual(c, p.operand); });
}

bool EvalPred(const Pred& p, const ValueSet& vs) {
  switch (p.op) {
    case Pred::kEq:
      return EvalEq(p, vs);
    case Pred::kNe:
      return !EvalEq(p, vs);
    case Pred::kGt:
    case Pred::kLt:
      if (p.operand.value_type == BSON_TYPE_NULL) return false;
      return AnyCandidate(vs, [&](const bson_value_t& c) { return CompareOk(p.op, c, p.operand); });
    case Pred::kGte:
    case Pred::kLte:
      if (p.operand.value_type == BSON_TYPE_NULL) return EvalEq(p, vs);
      return AnyCandidate(vs, [&](const bson_value_t& c) { return CompareOk(p.op, c, p.operand); });
    case Pred::kIn:
    case Pred::kNin: {
      bool any = false;
      for (const auto& c : p.children) {
        if (EvalEq(c, vs)) {
          any = true;
          break;
        }
      }
      return p.op == Pred::kIn ? any : !any;
    }
    case Pred::kExists:
      return p.exists == !vs.vals.empty();
    case Pred::kType:
      return AnyCandidate(vs, [&](const bson_value_t& c) { return TypeMatches(p.types, c); });
    case Pred::kSize:
      for (const auto& v : vs.vals) {
        if (v.value_type != BSON_TYPE_ARRAY) continue;
        bson_t arr = ViewDoc(v);
        if (static_cast<int64_t>(bson_count_keys(&arr)) == p.n) return true;
      }
      return false;
    case Pred::kAll:
      if (p.children.empty()) return false;
      for (const auto& c : p.children) {
        if (!EvalPred(c, vs)) return false;
      }
      return true;
    case Pred::kElemMatchObj:
    case Pred::kElemMatchVal:
      for (const auto& v : vs.vals) {
        if (v.value_type != BSON_TYPE_ARRAY) continue;
        bson_t arr = ViewDoc(v);
        bson_iter_t it;
        if (!bson_iter_init(&it, &arr)) continue;
        while (bson_iter_next(&it)) {
          bson_value_t e = *bson_iter_value(&it);
          bool m;
          if (p.op == Pred::kElemMatchObj) {
            if (e.value_type != BSON_TYPE_DOCUMENT && e.value_type != BSON_TYPE_ARRAY) continue;
            bson_t sub = ViewDoc(e);
            m = p.sub->Matches(&sub);
          } else {
            ValueSet one;
            one.vals.push_back(e);
            m = true;
            for (const auto& c : p.children) {
              if (!EvalPred(c, one)) {
                m = false;
                break;
              }
            }
          }
          if (m) return true;
        }
      }
      return false;
    case Pred::kNot:
      for (const auto& c : p.children) {
        if (!EvalPred(c, vs)) return true;
      }
      return false;
    case Pred::kRegex:
      return AnyCandidate(vs,
                          [&](const bson_value_t& c) { return RegexMatchesValue(*p.regex, c); });
    case Pred::kMod:
      return AnyCandidate(vs, [&](const bson_value_t& c) {
        if (!internal::IsNumber(c.value_type)) return false;
        internal::NumKey k = internal::ToNumKey(c);
        if (k.nan || std::isinf(k.d)) return false;
        double t = std::trunc(k.d);
        if (t >= 9.2233720368547758e18 || t < -9.2233720368547758e18) return false;
        int64_t x = c.value_type == BSON_TYPE_INT64 ? c.value.v_int64 : static_cast<int64_t>(t);
        if (p.n == -1) return p.rem == 0;
        return x % p.n == p.rem;
      });
  }
  return false;
}

// ---- parsing ----

struct Parser {
  std::shared_ptr<const Node> ParseFilter(const bson_t* filter, int depth);
  std::vector<Pred> ParseOperators(const bson_t* ops, const std::string& path, int depth);
  Pred ParseOne(const char* name, const bson_value_t& v, const std::string& path, int depth);
  Pred EqPred(const bson_value_t& v, Pred::Op op);
};

constexpr int kMaxDepth = 100;

bool IsOperatorDoc(const bson_value_t& v) {
  if (v.value_type != BSON_TYPE_DOCUMENT) return false;
  bson_t d = ViewDoc(v);
  bson_iter_t it;
  return bson_iter_init(&it, &d) && bson_iter_next(&it) && bson_iter_key(&it)[0] == '$';
}

int64_t NumberToInt64(const bson_value_t& v, const char* what) {
  if (!internal::IsNumber(v.value_type)) Bad(std::string(what) + " needs a number");
  internal::NumKey k = internal::ToNumKey(v);
  if (k.nan || std::isinf(k.d)) Bad(std::string(what) + " needs a finite number");
  if (v.value_type == BSON_TYPE_INT64) return v.value.v_int64;
  if (k.d >= 9.2233720368547758e18 || k.d < -9.2233720368547758e18) {
    Bad(std::string(what) + " is out of range");
  }
  return static_cast<int64_t>(k.d);
}

int TypeCodeOf(const bson_value_t& v) {
  static const struct {
    const char* name;
    int code;
  } kAliases[] = {{"double", 1},      {"string", 2},     {"object", 3},
                  {"array", 4},       {"binData", 5},    {"undefined", 6},
                  {"objectId", 7},    {"bool", 8},       {"date", 9},
                  {"null", 10},       {"regex", 11},     {"dbPointer", 12},
                  {"javascript", 13}, {"symbol", 14},    {"javascriptWithScope", 15},
                  {"int", 16},        {"timestamp", 17}, {"long", 18},
                  {"decimal", 19},    {"minKey", -1},    {"maxKey", 127},
                  {"number", 0}};
  if (v.value_type == BSON_TYPE_UTF8) {
    for (const auto& a : kAliases) {
      if (std::strcmp(a.name, v.value.v_utf8.str) == 0) return a.code;
    }
    Bad(std::string("Unknown type name alias: ") + v.value.v_utf8.str);
  }
  if (!internal::IsNumber(v.value_type)) Bad("type must be represented as a number or a string");
  internal::NumKey k = internal::ToNumKey(v);
  int code = static_cast<int>(k.d);
  if (k.nan || k.d != code || !((code >= 1 && code <= 19) || code == -1 || code == 127)) {
    Bad("Invalid numerical type code: " + std::to_string(k.d));
  }
  return code;
}

Pred Parser::EqPred(const bson_value_t& v, Pred::Op op) {
  Pred p;
  p.op = op;
  p.operand = v;
  if (v.value_type == BSON_TYPE_REGEX) {
    p.regex = std::make_shared<Regex>(v.value.v_regex.regex, v.value.v_regex.options);
  }
  return p;
}

Pred Parser::ParseOne(const char* name, const bson_value_t& v, const std::string& path, int depth) {
  std::string op(name);
  if (op == "$eq") return EqPred(v, Pred::kEq);
  if (op == "$ne") {
    if (v.value_type == BSON_TYPE_REGEX) Bad("Can't have regex as arg to $ne.");
    return EqPred(v, Pred::kNe);
  }
  Pred p;
  p.operand = v;
  if (op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte") {
    p.op = op == "$gt"    ? Pred::kGt
           : op == "$gte" ? Pred::kGte
           : op == "$lt"  ? Pred::kLt
                          : Pred::kLte;
    if (v.value_type == BSON_TYPE_REGEX)
      Bad("Can't have RegEx as arg to predicate over field '" + path + "'.");
    return p;
  }
  if (op == "$in" || op == "$nin" || op == "$all") {
    p.op = op == "$in" ? Pred::kIn : op == "$nin" ? Pred::kNin : Pred::kAll;
    if (v.value_type != BSON_TYPE_ARRAY) Bad(op + " needs an array");
    bson_t arr = ViewDoc(v);
    bson_iter_t it;
    if (bson_iter_init(&it, &arr)) {
      while (bson_iter_next(&it)) {
        bson_value_t e = *bson_iter_value(&it);
        if (p.op == Pred::kAll && IsOperatorDoc(e)) {
          bson_t d = ViewDoc(e);
          bson_iter_t f;
          if (!bson_iter_init_find(&f, &d, "$elemMatch")) Bad("no $ expressions in $all");
          p.children.push_back(ParseOne("$elemMatch", *bson_iter_value(&f), path, depth + 1));
          continue;
        }
        if (p.op != Pred::kAll && IsOperatorDoc(e)) Bad("cannot nest $ under " + op);
        p.children.push_back(EqPred(e, Pred::kEq));
      }
    }
    return p;
  }
  if (op == "$exists") {
    p.op = Pred::kExists;
    switch (v.value_type) {
      case BSON_TYPE_BOOL:
        p.exists = v.value.v_bool;
        break;
      case BSON_TYPE_NULL:
      case BSON_TYPE_UNDEFINED:
        p.exists = false;
        break;
      case BSON_TYPE_INT32:
      case BSON_TYPE_INT64:
      case BSON_TYPE_DOUBLE:
      case BSON_TYPE_DECIMAL128:
        p.exists = internal::ToNumKey(v).d != 0;
        break;
      default:
        p.exists = true;
    }
    return p;
  }
  if (op == "$type") {
    p.op = Pred::kType;
    if (v.value_type == BSON_TYPE_ARRAY) {
      bson_t arr = ViewDoc(v);
      bson_iter_t it;
      if (bson_iter_init(&it, &arr)) {
        while (bson_iter_next(&it)) p.types.push_back(TypeCodeOf(*bson_iter_value(&it)));
      }
    } else {
      p.types.push_back(TypeCodeOf(v));
    }
    return p;
  }
  if (op == "$size") {
    p.op = Pred::kSize;
    if (!internal::IsNumber(v.value_type)) Bad("$size needs a number");
    internal::NumKey k = internal::ToNumKey(v);
    if (k.nan || k.d != std::trunc(k.d)) Bad("$size must be a whole number");
    if (k.d < 0) Bad("$size may not be negative");
    p.n = v.value_type == BSON_TYPE_INT64 ? v.value.v_int64 : static_cast<int64_t>(k.d);
    return p;
  }
  if (op == "$elemMatch") {
    if (v.value_type != BSON_TYPE_DOCUMENT) Bad("$elemMatch needs an Object");
    bson_t d = ViewDoc(v);
    bson_iter_t it;
    bool value_form = false;
    if (bson_iter_init(&it, &d) && bson_iter_next(&it)) {
      const char* k = bson_iter_key(&it);
      value_form = k[0] == '$' && std::strcmp(k, "$and") != 0 && std::strcmp(k, "$or") != 0 &&
                   std::strcmp(k, "$nor") != 0 && std::strcmp(k, "$comment") != 0;
    }
    if (value_form) {
      p.op = Pred::kElemMatchVal;
      p.children = ParseOperators(&d, path, depth + 1);
    } else {
      p.op = Pred::kElemMatchObj;
      p.sub = ParseFilter(&d, depth + 1);
    }
    return p;
  }
  if (op == "$not") {
    p.op = Pred::kNot;
    if (v.value_type == BSON_TYPE_REGEX) {
      p.children.push_back(EqPred(v, Pred::kEq));
    } else if (v.value_type == BSON_TYPE_DOCUMENT) {
      bson_t d = ViewDoc(v);
      if (bson_count_keys(&d) == 0) Bad("$not cannot be empty");
      if (!IsOperatorDoc(v)) Bad("$not needs a regex or a document");
      p.children = ParseOperators(&d, path, depth + 1);
    } else {
      Bad("$not needs a regex or a document");
    }
    return p;
  }
  if (op == "$mod") {
    p.op = Pred::kMod;
    if (v.value_type != BSON_TYPE_ARRAY) Bad("malformed mod, needs to be an array");
    bson_t arr = ViewDoc(v);
    std::vector<bson_value_t> parts;
    bson_iter_t it;
    if (bson_iter_init(&it, &arr)) {
      while (bson_iter_next(&it)) parts.push_back(*bson_iter_value(&it));
    }
    if (parts.size() < 2) Bad("malformed mod, not enough elements");
    if (parts.size() > 2) Bad("malformed mod, too many elements");
    p.n = NumberToInt64(parts[0], "malformed mod, divisor");
    p.rem = NumberToInt64(parts[1], "malformed mod, remainder");
    if (p.n == 0) Bad("divisor cannot be 0");
    return p;
  }
  if (op == "$expr" || op == "$where" || op == "$text" || op == "$geoWithin" || op == "$near" ||
      op == "$geoIntersects" || op == "$nearSphere" || op == "$jsonSchema" || op == "$bitsAllSet" ||
      op == "$bitsAnySet" || op == "$bitsAllClear" || op == "$bitsAnyClear") {
    Bad("wtmongod does not support " + op);
  }
  Bad("unknown operator: " + op);
}

std::vector<Pred> Parser::ParseOperators(const bson_t* ops, const std::string& path, int depth) {
  if (depth > kMaxDepth) Bad("exceeded maximum query tree depth of 100");
  std::vector<Pred> preds;
  bson_iter_t it;
  const bson_value_t* regex_value = nullptr;
  bson_value_t regex_copy{}, options_copy{};
  bool has_options = false;
  if (bson_iter_init(&it, ops)) {
    while (bson_iter_next(&it)) {
      const char* key = bson_iter_key(&it);
      bson_value_t v = *bson_iter_value(&it);
      if (std::strcmp(key, "$regex") == 0) {
        regex_copy = v;
        regex_value = &regex_copy;
        continue;
      }
      if (std::strcmp(key, "$options") == 0) {
        options_copy = v;
        has_options = true;
        continue;
      }
      if (key[0] != '$') Bad(std::string("unknown operator: ") + key);
      preds.push_back(ParseOne(key, v, path, depth));
    }
  }
  if (has_options && !regex_value) Bad("$options needs a $regex");
  if (regex_value) {
    std::string pattern, options;
    if (regex_value->value_type == BSON_TYPE_UTF8) {
      pattern = regex_value->value.v_utf8.str;
    } else if (regex_value->value_type == BSON_TYPE_REGEX) {
      pattern = regex_value->value.v_regex.regex;
      options = regex_value->value.v_regex.options;
    } else {
      Bad("$regex has to be a string");
    }
    if (has_options) {
      if (options_copy.value_type != BSON_TYPE_UTF8) Bad("$options has to be a string");
      if (!options.empty() && options_copy.value.v_utf8.len > 0) {
        Bad("options set in both $regex and $options");
      }
      if (options_copy.value.v_utf8.len > 0) options = options_copy.value.v_utf8.str;
    }
    Pred p;
    p.op = Pred::kRegex;
    p.operand = *regex_value;
    p.regex = std::make_shared<Regex>(pattern, options);
    preds.push_back(std::move(p));
  }
  return preds;
}

std::shared_ptr<const Node> Parser::ParseFilter(const bson_t* filter, int depth) {
  if (depth > kMaxDepth) Bad("exceeded maximum query tree depth of 100");
  auto root = std::make_shared<LogicalNode>(LogicalNode::kAnd);
  bson_iter_t it;
  if (!filter || !bson_iter_init(&it, filter)) return root;
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    bson_value_t v = *bson_iter_value(&it);
    if (key[0] == '$') {
      std::string op(key);
      if (op == "$comment") continue;
      LogicalNode::Kind kind;
      if (op == "$and") {
        kind = LogicalNode::kAnd;
      } else if (op == "$or") {
        kind = LogicalNode::kOr;
      } else if (op == "$nor") {
        kind = LogicalNode::kNor;
      } else if (op == "$expr" || op == "$where" || op == "$text" || op == "$jsonSchema") {
        Bad("wtmongod does not support " + op);
      } else {
        Bad("unknown top level operator: " + op);
      }
      if (v.value_type != BSON_TYPE_ARRAY) Bad(op + " must be an array");
      auto node = std::make_shared<LogicalNode>(kind);
      bson_t arr = ViewDoc(v);
      bson_iter_t e;
      if (bson_iter_init(&e, &arr)) {
        while (bson_iter_next(&e)) {
          if (!BSON_ITER_HOLDS_DOCUMENT(&e)) Bad("$or/$and/$nor entries need to be full objects");
          bson_value_t ev = *bson_iter_value(&e);
          bson_t sub = ViewDoc(ev);
          node->children_.push_back(ParseFilter(&sub, depth + 1));
        }
      }
      if (node->children_.empty()) Bad("$and/$or/$nor must be a nonempty array");
      root->children_.push_back(node);
      continue;
    }
    auto pn = std::make_shared<PathNode>();
    pn->path_ = std::string(key, bson_iter_key_len(&it));
    if (IsOperatorDoc(v)) {
      bson_t ops = ViewDoc(v);
      pn->preds_ = ParseOperators(&ops, pn->path_, depth + 1);
    } else {
      pn->preds_.push_back(EqPred(v, Pred::kEq));
    }
    root->children_.push_back(pn);
  }
  return root;
}

// Visits the PathNodes of the top level and of nested top-level $ands.
template <typename F>
void ForEachTopPath(const Node* n, F f) {
  auto* ln = dynamic_cast<const LogicalNode*>(n);
  if (ln) {
    if (ln->kind_ != LogicalNode::kAnd) return;
    for (const auto& c : ln->children_) ForEachTopPath(c.get(), f);
    return;
  }
  if (auto* pn = dynamic_cast<const PathNode*>(n)) f(*pn);
}

}  // namespace

struct Matcher::Impl {
  wtm::Doc filter;
  std::shared_ptr<const Node> root;
};

Matcher::Matcher(const bson_t* filter) {
  auto impl = std::make_shared<Impl>();
  if (filter) impl->filter = wtm::Doc::Copy(filter);
  Parser parser;
  impl->root = parser.ParseFilter(impl->filter.get(), 0);
  impl_ = std::move(impl);
}

bool Matcher::Matches(const bson_t* doc) const { return impl_->root->Matches(doc); }

const bson_t* Matcher::filter() const { return impl_->filter.get(); }

std::optional<bson_value_t> Matcher::EqualityOn(std::string_view field) const {
  std::optional<bson_value_t> out;
  ForEachTopPath(impl_->root.get(), [&](const PathNode& pn) {
    if (out || pn.path_ != field) return;
    for (const auto& p : pn.preds_) {
      if (p.op == Pred::kEq && !p.regex && !IsOperatorDoc(p.operand)) {
        out = p.operand;
        return;
      }
    }
  });
  return out;
}

Matcher::Bounds Matcher::BoundsOn(std::string_view field) const {
  Bounds b;
  auto lower = [&](const bson_value_t& v, bool inclusive) {
    if (b.lower) {
      int c = CompareValues(v, *b.lower);
      if (c < 0 || (c == 0 && (inclusive || !b.lower_inclusive))) return;
    }
    b.lower = v;
    b.lower_inclusive = inclusive;
  };
  auto upper = [&](const bson_value_t& v, bool inclusive) {
    if (b.upper) {
      int c = CompareValues(v, *b.upper);
      if (c > 0 || (c == 0 && (inclusive || !b.upper_inclusive))) return;
    }
    b.upper = v;
    b.upper_inclusive = inclusive;
  };
  ForEachTopPath(impl_->root.get(), [&](const PathNode& pn) {
    if (pn.path_ != field) return;
    for (const auto& p : pn.preds_) {
      switch (p.op) {
        case Pred::kEq:
          if (p.regex) break;
          lower(p.operand, true);
          upper(p.operand, true);
          break;
        case Pred::kGt:
          lower(p.operand, false);
          break;
        case Pred::kGte:
          lower(p.operand, true);
          break;
        case Pred::kLt:
          upper(p.operand, false);
          break;
        case Pred::kLte:
          upper(p.operand, true);
          break;
        default:
          break;
      }
    }
  });
  return b;
}

}  // namespace wtm::query
