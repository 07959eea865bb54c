#include "query/update.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "query/compare.h"
#include "query/matcher.h"
#include "query/value.h"

namespace wtm::query {
namespace {

constexpr int kNotSingleValueField = 54;
constexpr int kEmptyFieldName = 56;
constexpr int kInvalidIdField = 53;
constexpr int kDocumentTooLarge = 17419;
constexpr size_t kMaxBsonSize = 16 * 1024 * 1024;
constexpr size_t kMaxPadding = 1500000;  // mongod's limit on array back-filling

// A mutable BSON value: documents and arrays hold their children in `kids` (field names in `name`);
// anything else is a scalar. BSON_TYPE_EOD marks a slot that was just created and holds no value.
struct Node {
  bson_type_t type = BSON_TYPE_EOD;
  std::string name;
  OwnedValue scalar;
  std::vector<Node> kids;

  bool is_doc() const { return type == BSON_TYPE_DOCUMENT; }
  bool is_array() const { return type == BSON_TYPE_ARRAY; }
  bool absent() const { return type == BSON_TYPE_EOD; }
};

Node FromValue(const bson_value_t& v, std::string name = {});

void ReadChildren(const bson_t* b, Node* n) {
  bson_iter_t it;
  if (!bson_iter_init(&it, b)) return;
  while (bson_iter_next(&it))
    n->kids.push_back(FromValue(*bson_iter_value(&it), bson_iter_key(&it)));
}

Node FromValue(const bson_value_t& v, std::string name) {
  Node n;
  n.type = v.value_type;
  n.name = std::move(name);
  if (n.is_doc() || n.is_array()) {
    bson_t view = ViewDoc(v);
    ReadChildren(&view, &n);
  } else {
    n.scalar = OwnedValue(v);
  }
  return n;
}

Node FromDoc(const bson_t* b) {
  Node n;
  n.type = BSON_TYPE_DOCUMENT;
  ReadChildren(b, &n);
  return n;
}

Node MakeScalar(const bson_value_t& v) { return FromValue(v); }

Node MakeContainer(bson_type_t type) {
  Node n;
  n.type = type;
  return n;
}

void AppendNode(bson_t* out, const char* key, const Node& n) {
  if (n.is_doc()) {
    bson_t child;
    bson_append_document_begin(out, key, -1, &child);
    for (const Node& k : n.kids) AppendNode(&child, k.name.c_str(), k);
    bson_append_document_end(out, &child);
  } else if (n.is_array()) {
    bson_t child;
    bson_append_array_begin(out, key, -1, &child);
    char buf[16];
    for (size_t i = 0; i < n.kids.size(); ++i) {
      const char* k = nullptr;
      bson_uint32_to_string(static_cast<uint32_t>(i), &k, buf, sizeof buf);
      AppendNode(&child, k, n.kids[i]);
    }
    bson_append_array_end(out, &child);
  } else if (!n.absent()) {
    bson_append_value(out, key, -1, &n.scalar.get());
  }
}

wtm::Doc ToDoc(const Node& doc) {
  bson_t* b = bson_new();
  for (const Node& k : doc.kids) AppendNode(b, k.name.c_str(), k);
  return wtm::Doc(b);
}

// The node as a self-contained value (containers serialized).
OwnedValue ToValue(const Node& n) {
  if (!n.is_doc() && !n.is_array()) return n.scalar;
  wtm::Doc d;
  if (n.is_doc()) {
    d = ToDoc(n);
  } else {
    Node as_doc = n;
    as_doc.type = BSON_TYPE_DOCUMENT;
    char buf[16];
    for (size_t i = 0; i < as_doc.kids.size(); ++i) {
      const char* k = nullptr;
      bson_uint32_to_string(static_cast<uint32_t>(i), &k, buf, sizeof buf);
      as_doc.kids[i].name = k;
    }
    d = ToDoc(as_doc);
  }
  bson_value_t v;
  v.value_type = n.type;
  v.value.v_doc.data = const_cast<uint8_t*>(d.data());
  v.value.v_doc.data_len = static_cast<uint32_t>(d.size());
  return OwnedValue(v);
}

int CompareNodes(const Node& a, const Node& b) {
  return CompareValues(ToValue(a).get(), ToValue(b).get());
}

const char* TypeName(bson_type_t t) {
  switch (t) {
    case BSON_TYPE_DOUBLE:
      return "double";
    case BSON_TYPE_UTF8:
      return "string";
    case BSON_TYPE_DOCUMENT:
      return "object";
    case BSON_TYPE_ARRAY:
      return "array";
    case BSON_TYPE_BINARY:
      return "binData";
    case BSON_TYPE_UNDEFINED:
      return "undefined";
    case BSON_TYPE_OID:
      return "objectId";
    case BSON_TYPE_BOOL:
      return "bool";
    case BSON_TYPE_DATE_TIME:
      return "date";
    case BSON_TYPE_NULL:
      return "null";
    case BSON_TYPE_REGEX:
      return "regex";
    case BSON_TYPE_DBPOINTER:
      return "dbPointer";
    case BSON_TYPE_CODE:
      return "javascript";
    case BSON_TYPE_SYMBOL:
      return "symbol";
    case BSON_TYPE_CODEWSCOPE:
      return "javascriptWithScope";
    case BSON_TYPE_INT32:
      return "int";
    case BSON_TYPE_TIMESTAMP:
      return "timestamp";
    case BSON_TYPE_INT64:
      return "long";
    case BSON_TYPE_DECIMAL128:
      return "decimal";
    case BSON_TYPE_MINKEY:
      return "minKey";
    case BSON_TYPE_MAXKEY:
      return "maxKey";
    default:
      return "missing";
  }
}

// mongod's BSONElement::toString value format ({ a: 1, b: "x" }, [ 1, 2 ], ObjectId('...')).
std::string Format(const Node& n) {
  std::ostringstream os;
  if (n.is_doc() || n.is_array()) {
    if (n.kids.empty()) return n.is_doc() ? "{}" : "[]";
    os << (n.is_doc() ? "{ " : "[ ");
    for (size_t i = 0; i < n.kids.size(); ++i) {
      if (i) os << ", ";
      if (n.is_doc()) os << n.kids[i].name << ": ";
      os << Format(n.kids[i]);
    }
    os << (n.is_doc() ? " }" : " ]");
    return os.str();
  }
  const bson_value_t& v = n.scalar.get();
  switch (v.value_type) {
    case BSON_TYPE_INT32:
      os << v.value.v_int32;
      break;
    case BSON_TYPE_INT64:
      os << v.value.v_int64;
      break;
    case BSON_TYPE_DOUBLE: {
      double d = v.value.v_double;
      os << std::setprecision(16) << d;
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e16) os << ".0";
      break;
    }
    case BSON_TYPE_UTF8:
      os << '"' << std::string(v.value.v_utf8.str, v.value.v_utf8.len) << '"';
      break;
    case BSON_TYPE_BOOL:
      os << (v.value.v_bool ? "true" : "false");
      break;
    case BSON_TYPE_NULL:
      os << "null";
      break;
    case BSON_TYPE_UNDEFINED:
      os << "undefined";
      break;
    case BSON_TYPE_MINKEY:
      os << "MinKey";
      break;
    case BSON_TYPE_MAXKEY:
      os << "MaxKey";
      break;
    case BSON_TYPE_OID: {
      char hex[25];
      bson_oid_to_string(&v.value.v_oid, hex);
      os << "ObjectId('" << hex << "')";
      break;
    }
    case BSON_TYPE_DATE_TIME:
      os << "new Date(" << v.value.v_datetime << ")";
      break;
    case BSON_TYPE_TIMESTAMP:
      os << "Timestamp(" << v.value.v_timestamp.timestamp << ", " << v.value.v_timestamp.increment
         << ")";
      break;
    case BSON_TYPE_DECIMAL128: {
      char buf[BSON_DECIMAL128_STRING];
      bson_decimal128_to_string(&v.value.v_decimal128, buf);
      os << "NumberDecimal(\"" << buf << "\")";
      break;
    }
    case BSON_TYPE_REGEX:
      os << '/' << v.value.v_regex.regex << '/' << v.value.v_regex.options;
      break;
    default: {
      bson_t* b = bson_new();
      bson_append_value(b, "v", 1, &v);
      std::string json = wtm::ToJson(b);
      bson_destroy(b);
      os << json;
    }
  }
  return os.str();
}

bool IsNumber(const Node& n) {
  return n.type == BSON_TYPE_INT32 || n.type == BSON_TYPE_INT64 || n.type == BSON_TYPE_DOUBLE ||
         n.type == BSON_TYPE_DECIMAL128;
}

std::optional<size_t> ArrayIndex(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  return static_cast<size_t>(std::stoul(std::string(s)));
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

// Splits and validates an update path.
std::vector<std::string> ParsePath(const std::string& path) {
  if (path.empty()) throw MongoError(kEmptyFieldName, "An empty update path is not valid.");
  std::vector<std::string> parts = SplitPath(path);
  for (const std::string& p : parts) {
    if (p.empty())
      throw MongoError(
          kEmptyFieldName,
          "The update path '" + path + "' contains an empty field name, which is not allowed.");
    if (p[0] != '$') continue;
    if (p == "$" || p.rfind("$[", 0) == 0)
      throw MongoError(ErrorCode::kBadValue,
                       "wtmongod does not support positional update paths: '" + path + "'");
    throw MongoError(
        ErrorCode::kDollarPrefixedFieldName,
        "The dollar ($) prefixed field '" + p + "' in '" + path + "' is not valid for storage.");
  }
  return parts;
}

// Field order for applying operators: component by component, numeric names numerically.
bool PathLess(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i] == b[i]) continue;
    auto na = ArrayIndex(a[i]), nb = ArrayIndex(b[i]);
    if (na && nb && *na != *nb) return *na < *nb;
    return a[i] < b[i];
  }
  return a.size() < b.size();
}

bool IsPrefix(const std::vector<std::string>& pre, const std::vector<std::string>& full) {
  if (pre.size() > full.size()) return false;
  return std::equal(pre.begin(), pre.end(), full.begin());
}

enum class OpKind {
  kSet,
  kUnset,
  kInc,
  kMul,
  kMin,
  kMax,
  kRename,
  kSetOnInsert,
  kPush,
  kAddToSet,
  kPull,
  kPullAll,
  kPop,
  kCurrentDate,
};

const std::map<std::string, OpKind>& Operators() {
  static const std::map<std::string, OpKind> ops = {
      {"$set", OpKind::kSet},       {"$unset", OpKind::kUnset},
      {"$inc", OpKind::kInc},       {"$mul", OpKind::kMul},
      {"$min", OpKind::kMin},       {"$max", OpKind::kMax},
      {"$rename", OpKind::kRename}, {"$setOnInsert", OpKind::kSetOnInsert},
      {"$push", OpKind::kPush},     {"$addToSet", OpKind::kAddToSet},
      {"$pull", OpKind::kPull},     {"$pullAll", OpKind::kPullAll},
      {"$pop", OpKind::kPop},       {"$currentDate", OpKind::kCurrentDate},
  };
  return ops;
}

enum class PullMode { kEquality, kObject, kWrapped };

struct Op {
  OpKind kind;
  std::string path;  // target (for $rename: the destination)
  std::vector<std::string> parts;
  std::string from;  // $rename source
  std::vector<std::string> from_parts;
  Node arg;  // the operand
  // $push / $addToSet
  std::vector<Node> each;
  std::optional<int64_t> position, slice;
  std::optional<Node> sort;  // a number (1/-1) or a document {path: 1/-1}
  // $pull
  PullMode pull_mode = PullMode::kEquality;
  std::optional<Matcher> matcher;
  bool timestamp = false;  // $currentDate {$type: "timestamp"}
};

std::string ElementString(const std::string& name, const Node& v) {
  return name + ": " + Format(v);
}

std::optional<int64_t> IntegralValue(const Node& n) {
  const bson_value_t& v = n.scalar.get();
  switch (n.type) {
    case BSON_TYPE_INT32:
      return v.value.v_int32;
    case BSON_TYPE_INT64:
      return v.value.v_int64;
    case BSON_TYPE_DOUBLE:
      if (std::isfinite(v.value.v_double) && v.value.v_double == std::floor(v.value.v_double) &&
          std::fabs(v.value.v_double) < 9e18)
        return static_cast<int64_t>(v.value.v_double);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

void ParsePushModifiers(Op* op, const std::string& field) {
  const Node& arg = op->arg;
  bool each_mode = arg.is_doc() && std::any_of(arg.kids.begin(), arg.kids.end(),
                                               [](const Node& k) { return k.name == "$each"; });
  if (!each_mode) {
    op->each.push_back(arg);
    return;
  }
  for (const Node& k : arg.kids) {
    if (k.name == "$each") {
      if (!k.is_array())
        throw MongoError(ErrorCode::kBadValue,
                         std::string("The argument to $each in $push must be an array but it was "
                                     "of type: ") +
                             TypeName(k.type));
      op->each = k.kids;
    } else if (k.name == "$slice") {
      auto v = IntegralValue(k);
      if (!v)
        throw MongoError(ErrorCode::kBadValue,
                         std::string("The value for $slice must be an integer value but was given "
                                     "type: ") +
                             TypeName(k.type));
      op->slice = *v;
    } else if (k.name == "$position") {
      auto v = IntegralValue(k);
      if (!v)
        throw MongoError(ErrorCode::kBadValue,
                         std::string("The value for $position must be an integer value, not of "
                                     "type: ") +
                             TypeName(k.type));
      op->position = *v;
    } else if (k.name == "$sort") {
      const std::string bad =
          "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort "
          "embedded fields";
      if (k.is_doc()) {
        if (k.kids.empty())
          throw MongoError(ErrorCode::kBadValue,
                           "The $sort pattern is empty when it should be a set of fields.");
        for (const Node& s : k.kids) {
          auto dir = IntegralValue(s);
          if (!dir || (*dir != 1 && *dir != -1) || s.name.empty() || s.name[0] == '$')
            throw MongoError(ErrorCode::kBadValue, bad);
        }
      } else {
        auto dir = IntegralValue(k);
        if (!dir || (*dir != 1 && *dir != -1)) throw MongoError(ErrorCode::kBadValue, bad);
      }
      op->sort = k;
    } else {
      throw MongoError(ErrorCode::kBadValue, "Unrecognized clause in $push: " + k.name);
    }
  }
}

bool IsTopLevelQueryOperator(const std::string& name) {
  return name == "$and" || name == "$or" || name == "$nor" || name == "$expr" || name == "$where" ||
         name == "$comment" || name == "$text" || name == "$jsonSchema";
}

// Parses one operand of an operator; `field` is its path as written.
Op ParseOp(OpKind kind, const std::string& field, const bson_value_t& v) {
  Op op;
  op.kind = kind;
  op.path = field;
  op.arg = FromValue(v, field);
  switch (kind) {
    case OpKind::kInc:
    case OpKind::kMul:
      if (!IsNumber(op.arg))
        throw MongoError(ErrorCode::kTypeMismatch,
                         std::string("Cannot ") +
                             (kind == OpKind::kInc ? "increment" : "multiply") +
                             " with non-numeric argument: {" + ElementString(field, op.arg) + "}");
      break;
    case OpKind::kPop: {
      if (!IsNumber(op.arg))
        throw MongoError(ErrorCode::kFailedToParse,
                         "Expected a number in: " + ElementString(field, op.arg));
      auto n = IntegralValue(op.arg);
      if (!n || (*n != 1 && *n != -1))
        throw MongoError(ErrorCode::kFailedToParse,
                         "$pop expects 1 or -1, found: " + Format(op.arg));
      break;
    }
    case OpKind::kRename: {
      if (op.arg.type != BSON_TYPE_UTF8)
        throw MongoError(ErrorCode::kBadValue, "The 'to' field for $rename must be a string: " +
                                                   ElementString(field, op.arg));
      const bson_value_t& s = op.arg.scalar.get();
      op.from = field;
      op.from_parts = ParsePath(field);
      op.path = std::string(s.value.v_utf8.str, s.value.v_utf8.len);
      if (op.path == op.from)
        throw MongoError(
            ErrorCode::kBadValue,
            "The source and target field for $rename must differ: " + ElementString(field, op.arg));
      std::vector<std::string> to = ParsePath(op.path);
      if (IsPrefix(op.from_parts, to) || IsPrefix(to, op.from_parts))
        throw MongoError(ErrorCode::kBadValue,
                         "The source and target field for $rename must not be on the same path: " +
                             ElementString(field, op.arg));
      break;
    }
    case OpKind::kPush:
      ParsePushModifiers(&op, field);
      break;
    case OpKind::kAddToSet: {
      if (op.arg.is_doc() && !op.arg.kids.empty() && op.arg.kids[0].name == "$each") {
        if (op.arg.kids.size() > 1)
          throw MongoError(ErrorCode::kBadValue,
                           "Found unexpected fields after $each in $addToSet: " + Format(op.arg));
        const Node& each = op.arg.kids[0];
        if (!each.is_array())
          throw MongoError(ErrorCode::kBadValue,
                           std::string("The argument to $each in $addToSet must be an array but it "
                                       "was of type ") +
                               TypeName(each.type));
        for (const Node& e : each.kids) {
          bool dup = std::any_of(op.each.begin(), op.each.end(),
                                 [&](const Node& x) { return CompareNodes(x, e) == 0; });
          if (!dup) op.each.push_back(e);
        }
      } else {
        op.each.push_back(op.arg);
      }
      break;
    }
    case OpKind::kPull: {
      bool first_dollar = op.arg.is_doc() && !op.arg.kids.empty() &&
                          op.arg.kids[0].name[0] == '$' &&
                          !IsTopLevelQueryOperator(op.arg.kids[0].name);
      if (op.arg.is_doc() && !first_dollar) {
        op.pull_mode = PullMode::kObject;
        wtm::Doc filter = ToDoc(op.arg);
        op.matcher.emplace(filter.get());
      } else if (op.arg.is_doc() || op.arg.type == BSON_TYPE_REGEX) {
        op.pull_mode = PullMode::kWrapped;
        Node wrap = MakeContainer(BSON_TYPE_DOCUMENT);
        Node inner = op.arg;
        inner.name = "v";
        wrap.kids.push_back(std::move(inner));
        wtm::Doc filter = ToDoc(wrap);
        op.matcher.emplace(filter.get());
      }
      break;
    }
    case OpKind::kPullAll:
      if (!op.arg.is_array())
        throw MongoError(ErrorCode::kBadValue,
                         std::string("$pullAll requires an array argument but was given a ") +
                             TypeName(op.arg.type));
      break;
    case OpKind::kCurrentDate: {
      if (op.arg.type == BSON_TYPE_BOOL) break;
      if (!op.arg.is_doc())
        throw MongoError(ErrorCode::kBadValue,
                         field +
                             " is not valid type for $currentDate. Please use a boolean "
                             "('true') or a $type expression ({$type: 'timestamp/date'}).");
      bool ok = false;
      for (const Node& k : op.arg.kids) {
        if (k.name != "$type")
          throw MongoError(ErrorCode::kBadValue, "Unrecognized $currentDate option: " + k.name);
        std::string t = k.type == BSON_TYPE_UTF8 ? k.scalar->value.v_utf8.str : "";
        if (t != "date" && t != "timestamp")
          throw MongoError(ErrorCode::kBadValue,
                           "The '$type' string field is required to be 'date' or 'timestamp': "
                           "{$currentDate: {field : {$type: 'date'}}}");
        op.timestamp = t == "timestamp";
        ok = true;
      }
      if (!ok)
        throw MongoError(ErrorCode::kBadValue,
                         "The '$type' string field is required to be 'date' or 'timestamp': "
                         "{$currentDate: {field : {$type: 'date'}}}");
      break;
    }
    default:
      break;
  }
  op.parts = ParsePath(op.path);
  return op;
}

// What one update applies against: the _id (for messages) and whether this is an upsert insert.
struct Context {
  std::string id;  // "_id: 1" or "" when the document has none
  bool inserting = false;
};

Node* Child(Node& n, const std::string& name) {
  if (n.is_doc()) {
    for (Node& k : n.kids)
      if (k.name == name) return &k;
  } else if (n.is_array()) {
    auto idx = ArrayIndex(name);
    if (idx && *idx < n.kids.size()) return &n.kids[*idx];
  }
  return nullptr;
}

// The node at parts[0..n), or nullptr when absent (a scalar in the way counts as absent).
Node* Find(Node& root, const std::vector<std::string>& parts, size_t n) {
  Node* cur = &root;
  for (size_t i = 0; i < n && cur; ++i) cur = Child(*cur, parts[i]);
  return cur;
}

// The node at `parts`, creating documents on the way and an absent slot at the end.
Node* FindOrCreate(Node& root, const std::vector<std::string>& parts) {
  Node* cur = &root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& name = parts[i];
    const bool last = i + 1 == parts.size();
    Node* next = nullptr;
    if (cur->is_doc()) {
      next = Child(*cur, name);
      if (!next) {
        Node slot = last ? Node{} : MakeContainer(BSON_TYPE_DOCUMENT);
        slot.name = name;
        cur->kids.push_back(std::move(slot));
        next = &cur->kids.back();
      }
    } else if (cur->is_array() && ArrayIndex(name)) {
      size_t idx = *ArrayIndex(name);
      if (idx >= cur->kids.size()) {
        if (idx - cur->kids.size() > kMaxPadding)
          throw MongoError(ErrorCode::kBadValue,
                           "can't backfill more than " + std::to_string(kMaxPadding) + " elements");
        bson_value_t null_value;
        null_value.value_type = BSON_TYPE_NULL;
        while (cur->kids.size() < idx) cur->kids.push_back(MakeScalar(null_value));
        cur->kids.push_back(last ? Node{} : MakeContainer(BSON_TYPE_DOCUMENT));
      }
      next = &cur->kids[idx];
    } else {
      std::string parent = i == 0 ? "" : parts[i - 1];
      throw MongoError(
          ErrorCode::kPathNotViable,
          "Cannot create field '" + name + "' in element {" + parent + ": " + Format(*cur) + "}");
    }
    cur = next;
  }
  return cur;
}

// Sets *slot to `value`, keeping the slot's field name.
void Assign(Node* slot, const Node& value) {
  std::string name = std::move(slot->name);
  *slot = value;
  slot->name = std::move(name);
}

Node Int32(int32_t x) {
  bson_value_t v;
  v.value_type = BSON_TYPE_INT32;
  v.value.v_int32 = x;
  return MakeScalar(v);
}
Node Int64(int64_t x) {
  bson_value_t v;
  v.value_type = BSON_TYPE_INT64;
  v.value.v_int64 = x;
  return MakeScalar(v);
}
Node Double(double x) {
  bson_value_t v;
  v.value_type = BSON_TYPE_DOUBLE;
  v.value.v_double = x;
  return MakeScalar(v);
}

double AsDouble(const Node& n) {
  const bson_value_t& v = n.scalar.get();
  switch (n.type) {
    case BSON_TYPE_INT32:
      return v.value.v_int32;
    case BSON_TYPE_INT64:
      return static_cast<double>(v.value.v_int64);
    default:
      return v.value.v_double;
  }
}

int64_t AsInt64(const Node& n) {
  const bson_value_t& v = n.scalar.get();
  return n.type == BSON_TYPE_INT32 ? v.value.v_int32 : v.value.v_int64;
}

// cur (+|*) arg with mongod's type promotion; nullopt when an int64 result overflows.
std::optional<Node> Arithmetic(bool mul, const Node& cur, const Node& arg) {
  if (cur.type == BSON_TYPE_DECIMAL128 || arg.type == BSON_TYPE_DECIMAL128)
    throw MongoError(ErrorCode::kBadValue, std::string("wtmongod does not support ") +
                                               (mul ? "$mul" : "$inc") + " with decimal128 values");
  if (cur.type == BSON_TYPE_DOUBLE || arg.type == BSON_TYPE_DOUBLE) {
    double a = AsDouble(cur), b = AsDouble(arg);
    return Double(mul ? a * b : a + b);
  }
  int64_t a = AsInt64(cur), b = AsInt64(arg), r = 0;
  bool overflow = mul ? __builtin_mul_overflow(a, b, &r) : __builtin_add_overflow(a, b, &r);
  if (cur.type == BSON_TYPE_INT32 && arg.type == BSON_TYPE_INT32) {
    // Both fit 32 bits, so the 64-bit result is exact.
    if (r >= INT32_MIN && r <= INT32_MAX) return Int32(static_cast<int32_t>(r));
    return Int64(r);
  }
  if (overflow) return std::nullopt;
  return Int64(r);
}

Node ZeroLike(const Node& arg) {
  switch (arg.type) {
    case BSON_TYPE_INT32:
      return Int32(0);
    case BSON_TYPE_INT64:
      return Int64(0);
    case BSON_TYPE_DOUBLE:
      return Double(0);
    default: {
      bson_value_t v;
      v.value_type = BSON_TYPE_DECIMAL128;
      bson_decimal128_from_string("0", &v.value.v_decimal128);
      return MakeScalar(v);
    }
  }
}

// The value at a dotted path inside a document node (null when missing), for $push's $sort.
Node SortKey(const Node& elem, const std::string& path) {
  const Node* cur = &elem;
  for (const std::string& p : SplitPath(path)) {
    const Node* next = nullptr;
    if (cur->is_doc())
      for (const Node& k : cur->kids)
        if (k.name == p) next = &k;
    if (!next) {
      bson_value_t null_value;
      null_value.value_type = BSON_TYPE_NULL;
      return MakeScalar(null_value);
    }
    cur = next;
  }
  return *cur;
}

void SortArray(std::vector<Node>* items, const Node& spec) {
  if (!spec.is_doc()) {
    int dir = static_cast<int>(*IntegralValue(spec));
    std::stable_sort(items->begin(), items->end(),
                     [dir](const Node& a, const Node& b) { return dir * CompareNodes(a, b) < 0; });
    return;
  }
  std::stable_sort(items->begin(), items->end(), [&spec](const Node& a, const Node& b) {
    for (const Node& s : spec.kids) {
      int c = CompareNodes(SortKey(a, s.name), SortKey(b, s.name));
      if (c != 0) return *IntegralValue(s) * c < 0;
    }
    return false;
  });
}

bool PullMatches(const Op& op, const Node& elem) {
  switch (op.pull_mode) {
    case PullMode::kEquality:
      return CompareNodes(elem, op.arg) == 0;
    case PullMode::kObject: {
      if (!elem.is_doc()) return false;
      wtm::Doc d = ToDoc(elem);
      return op.matcher->Matches(d.get());
    }
    case PullMode::kWrapped: {
      Node wrap = MakeContainer(BSON_TYPE_DOCUMENT);
      Node inner = elem;
      inner.name = "v";
      wrap.kids.push_back(std::move(inner));
      wtm::Doc d = ToDoc(wrap);
      return op.matcher->Matches(d.get());
    }
  }
  return false;
}

Node CurrentDate(bool timestamp) {
  static std::atomic<uint32_t> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  bson_value_t v;
  if (timestamp) {
    v.value_type = BSON_TYPE_TIMESTAMP;
    v.value.v_timestamp.timestamp =
        static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(now).count());
    v.value.v_timestamp.increment = ++counter;
  } else {
    v.value_type = BSON_TYPE_DATE_TIME;
    v.value.v_datetime = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  }
  return MakeScalar(v);
}

// Errors when a node on the way to parts (excluding the last) is an array ($rename refuses them).
void CheckNoArrayOnPath(Node& root, const std::vector<std::string>& parts, const std::string& path,
                        const char* which, const Context& ctx) {
  for (size_t n = 1; n < parts.size(); ++n) {
    Node* at = Find(root, parts, n);
    if (at && at->is_array())
      throw MongoError(ErrorCode::kBadValue,
                       std::string("The ") + which + " field cannot be an array element, '" + path +
                           "' in doc with " + (ctx.id.empty() ? "no _id" : ctx.id) +
                           " has an array field called '" + parts[n - 1] + "'");
  }
}

void ApplyOp(Node& root, const Op& op, const Context& ctx) {
  const std::string& field = op.parts.back();
  const std::string id_doc = "{" + ctx.id + "}";
  switch (op.kind) {
    case OpKind::kSetOnInsert:
      if (!ctx.inserting) return;
      [[fallthrough]];
    case OpKind::kSet:
      Assign(FindOrCreate(root, op.parts), op.arg);
      return;
    case OpKind::kUnset: {
      Node* parent = Find(root, op.parts, op.parts.size() - 1);
      if (!parent) return;
      if (parent->is_doc()) {
        auto& kids = parent->kids;
        kids.erase(std::remove_if(kids.begin(), kids.end(),
                                  [&](const Node& k) { return k.name == field; }),
                   kids.end());
      } else if (Node* elem = Child(*parent, field)) {
        bson_value_t null_value;
        null_value.value_type = BSON_TYPE_NULL;
        Assign(elem, MakeScalar(null_value));
      }
      return;
    }
    case OpKind::kInc:
    case OpKind::kMul: {
      const bool mul = op.kind == OpKind::kMul;
      Node* slot = FindOrCreate(root, op.parts);
      if (slot->absent()) {
        Assign(slot, mul ? ZeroLike(op.arg) : op.arg);
        return;
      }
      const char* name = mul ? "$mul" : "$inc";
      if (!IsNumber(*slot))
        throw MongoError(ErrorCode::kTypeMismatch,
                         std::string("Cannot apply ") + name + " to a value of non-numeric type. " +
                             id_doc + " has the field '" + field + "' of non-numeric type " +
                             TypeName(slot->type));
      auto result = Arithmetic(mul, *slot, op.arg);
      if (!result)
        throw MongoError(ErrorCode::kBadValue, std::string("Failed to apply ") + name +
                                                   " operations to current value (" +
                                                   Format(*slot) + ") for document " + id_doc);
      Assign(slot, *result);
      return;
    }
    case OpKind::kMin:
    case OpKind::kMax: {
      Node* slot = FindOrCreate(root, op.parts);
      int c = slot->absent() ? 0 : CompareNodes(op.arg, *slot);
      if (slot->absent() || (op.kind == OpKind::kMin ? c < 0 : c > 0)) Assign(slot, op.arg);
      return;
    }
    case OpKind::kCurrentDate:
      Assign(FindOrCreate(root, op.parts), CurrentDate(op.timestamp));
      return;
    case OpKind::kRename: {
      CheckNoArrayOnPath(root, op.from_parts, op.from, "source", ctx);
      Node* parent = Find(root, op.from_parts, op.from_parts.size() - 1);
      if (!parent || !parent->is_doc()) return;
      auto& kids = parent->kids;
      auto it = std::find_if(kids.begin(), kids.end(),
                             [&](const Node& k) { return k.name == op.from_parts.back(); });
      if (it == kids.end()) return;
      CheckNoArrayOnPath(root, op.parts, op.path, "destination", ctx);
      Node value = std::move(*it);
      kids.erase(it);
      Assign(FindOrCreate(root, op.parts), value);
      return;
    }
    case OpKind::kPush: {
      Node* slot = FindOrCreate(root, op.parts);
      if (slot->absent()) {
        Assign(slot, MakeContainer(BSON_TYPE_ARRAY));
      } else if (!slot->is_array()) {
        throw MongoError(ErrorCode::kBadValue, "The field '" + field +
                                                   "' must be an array but is of type " +
                                                   TypeName(slot->type) + " in document " + id_doc);
      }
      auto& items = slot->kids;
      const int64_t size = static_cast<int64_t>(items.size());
      int64_t pos = size;
      if (op.position)
        pos = *op.position >= 0 ? std::min(*op.position, size)
                                : std::max<int64_t>(0, size + *op.position);
      items.insert(items.begin() + pos, op.each.begin(), op.each.end());
      if (op.sort) SortArray(&items, *op.sort);
      if (op.slice) {
        const size_t keep = static_cast<size_t>(std::llabs(*op.slice));
        if (items.size() > keep) {
          if (*op.slice >= 0)
            items.erase(items.begin() + static_cast<int64_t>(keep), items.end());
          else
            items.erase(items.begin(), items.end() - static_cast<int64_t>(keep));
        }
      }
      return;
    }
    case OpKind::kAddToSet: {
      Node* slot = FindOrCreate(root, op.parts);
      if (slot->absent()) {
        Assign(slot, MakeContainer(BSON_TYPE_ARRAY));
      } else if (!slot->is_array()) {
        throw MongoError(ErrorCode::kBadValue,
                         "Cannot apply $addToSet to non-array field. Field named '" + field +
                             "' has non-array type " + TypeName(slot->type));
      }
      for (const Node& v : op.each) {
        bool present = std::any_of(slot->kids.begin(), slot->kids.end(),
                                   [&](const Node& x) { return CompareNodes(x, v) == 0; });
        if (!present) slot->kids.push_back(v);
      }
      return;
    }
    case OpKind::kPull:
    case OpKind::kPullAll: {
      Node* slot = Find(root, op.parts, op.parts.size());
      if (!slot) return;
      if (!slot->is_array())
        throw MongoError(ErrorCode::kBadValue, "Cannot apply $pull to a non-array value");
      auto& items = slot->kids;
      items.erase(std::remove_if(items.begin(), items.end(),
                                 [&](const Node& e) {
                                   if (op.kind == OpKind::kPull) return PullMatches(op, e);
                                   return std::any_of(
                                       op.arg.kids.begin(), op.arg.kids.end(),
                                       [&](const Node& v) { return CompareNodes(e, v) == 0; });
                                 }),
                  items.end());
      return;
    }
    case OpKind::kPop: {
      Node* slot = Find(root, op.parts, op.parts.size());
      if (!slot) return;
      if (!slot->is_array())
        throw MongoError(ErrorCode::kTypeMismatch, "Path '" + op.path +
                                                       "' contains an element of non-array type '" +
                                                       TypeName(slot->type) + "'");
      if (slot->kids.empty()) return;
      if (*IntegralValue(op.arg) == 1)
        slot->kids.pop_back();
      else
        slot->kids.erase(slot->kids.begin());
      return;
    }
  }
}

const Node* IdOf(const Node& doc) {
  for (const Node& k : doc.kids)
    if (k.name == "_id") return &k;
  return nullptr;
}

// Moves _id to the front (generating an ObjectId when missing) and checks its type.
void EnsureIdFirst(Node* doc) {
  auto& kids = doc->kids;
  auto it = std::find_if(kids.begin(), kids.end(), [](const Node& k) { return k.name == "_id"; });
  if (it == kids.end()) {
    bson_value_t v;
    v.value_type = BSON_TYPE_OID;
    bson_oid_init(&v.value.v_oid, nullptr);
    Node id = MakeScalar(v);
    id.name = "_id";
    kids.insert(kids.begin(), std::move(id));
  } else if (it != kids.begin()) {
    Node id = std::move(*it);
    kids.erase(it);
    kids.insert(kids.begin(), std::move(id));
  }
}

void CheckIdValue(const Node& doc) {
  const Node* id = IdOf(doc);
  if (id && id->is_array())
    throw MongoError(kInvalidIdField, "The '_id' value cannot be of type array");
}

wtm::Doc Finish(const Node& doc) {
  CheckIdValue(doc);
  wtm::Doc out = ToDoc(doc);
  if (out.size() > kMaxBsonSize)
    throw MongoError(kDocumentTooLarge, "Resulting document after update is larger than " +
                                            std::to_string(kMaxBsonSize));
  return out;
}

void CheckReplacementFields(const Node& repl) {
  for (const Node& k : repl.kids)
    if (!k.name.empty() && k.name[0] == '$')
      throw MongoError(ErrorCode::kDollarPrefixedFieldName, "The dollar ($) prefixed field '" +
                                                                k.name + "' in '" + k.name +
                                                                "' is not valid for storage.");
}

// Collects equality fields of an upsert's query (top level and inside $and).
void CollectEqualities(const Node& query,
                       std::vector<std::pair<std::vector<std::string>, Node>>* out,
                       std::vector<std::string>* paths) {
  for (const Node& k : query.kids) {
    if (k.name == "$and") {
      if (!k.is_array()) continue;
      for (const Node& clause : k.kids)
        if (clause.is_doc()) CollectEqualities(clause, out, paths);
      continue;
    }
    if (k.name.empty() || k.name[0] == '$') continue;
    const Node* value = &k;
    if (k.is_doc() && !k.kids.empty() && k.kids[0].name[0] == '$') {
      value = nullptr;
      for (const Node& c : k.kids) {
        if (c.name == "$eq") value = &c;
        if (c.name == "$in" && c.is_array() && c.kids.size() == 1) value = &c.kids[0];
      }
      if (!value) continue;
    }
    if (value->type == BSON_TYPE_REGEX) continue;
    out->emplace_back(SplitPath(k.name), *value);
    paths->push_back(k.name);
  }
}

}  // namespace

struct Update::Impl {
  bool replacement = false;
  Node replacement_doc;
  std::vector<Op> ops;  // sorted by target path

  void ApplyOps(Node& doc, const Context& ctx) const {
    const Node* id = IdOf(doc);
    std::optional<Node> id_before;
    if (id) id_before = *id;
    for (const Op& op : ops) {
      ApplyOp(doc, op, ctx);
      bool touches_id =
          op.parts[0] == "_id" || (!op.from_parts.empty() && op.from_parts[0] == "_id");
      if (touches_id && id_before) {
        const Node* after = IdOf(doc);
        if (!after || CompareNodes(*after, *id_before) != 0 || after->type != id_before->type)
          throw MongoError(ErrorCode::kImmutableField,
                           "Performing an update on the path '" +
                               (op.parts[0] == "_id" ? op.path : op.from) +
                               "' would modify the immutable field '_id'");
      }
    }
  }
};

Update::Update(const bson_t* spec) {
  auto impl = std::make_shared<Impl>();
  bson_iter_t it;
  if (!bson_iter_init(&it, spec))
    throw MongoError(ErrorCode::kFailedToParse, "update document is not valid BSON");
  bool first = true;
  impl->replacement = bson_empty(spec);
  std::vector<std::pair<std::vector<std::string>, std::string>> seen;  // parts, path
  while (bson_iter_next(&it)) {
    const std::string key = bson_iter_key(&it);
    if (first) impl->replacement = key.empty() || key[0] != '$';
    first = false;
    if (impl->replacement) break;
    auto op_it = Operators().find(key);
    if (op_it == Operators().end())
      throw MongoError(ErrorCode::kFailedToParse,
                       "Unknown modifier: " + key +
                           ". Expected a valid update modifier or pipeline-style update specified "
                           "as an array");
    if (!BSON_ITER_HOLDS_DOCUMENT(&it))
      throw MongoError(ErrorCode::kFailedToParse,
                       std::string("Modifiers operate on fields but we found type ") +
                           TypeName(bson_iter_type(&it)) +
                           " instead. For example: {$mod: {<field>: ...}} not {" + key + ": " +
                           Format(FromValue(*bson_iter_value(&it))) + "}");
    bson_iter_t fields;
    bson_iter_recurse(&it, &fields);
    bool any = false;
    while (bson_iter_next(&fields)) {
      any = true;
      Op op = ParseOp(op_it->second, bson_iter_key(&fields), *bson_iter_value(&fields));
      std::vector<std::pair<std::vector<std::string>, std::string>> targets = {{op.parts, op.path}};
      if (op.kind == OpKind::kRename) targets.insert(targets.begin(), {op.from_parts, op.from});
      for (const auto& [parts, path] : targets) {
        for (const auto& [other, other_path] : seen) {
          if (IsPrefix(other, parts))
            throw MongoError(
                ErrorCode::kConflictingUpdateOperators,
                "Updating the path '" + path + "' would create a conflict at '" + other_path + "'");
          if (IsPrefix(parts, other))
            throw MongoError(
                ErrorCode::kConflictingUpdateOperators,
                "Updating the path '" + path + "' would create a conflict at '" + path + "'");
        }
        seen.emplace_back(parts, path);
      }
      impl->ops.push_back(std::move(op));
    }
    if (!any)
      throw MongoError(ErrorCode::kFailedToParse, "'" + key +
                                                      "' is empty. You must specify a field like "
                                                      "so: {" +
                                                      key + ": {<field>: ...}}");
  }
  if (impl->replacement) {
    impl->replacement_doc = FromDoc(spec);
    CheckReplacementFields(impl->replacement_doc);
  }
  std::stable_sort(impl->ops.begin(), impl->ops.end(),
                   [](const Op& a, const Op& b) { return PathLess(a.parts, b.parts); });
  impl_ = std::move(impl);
}

bool Update::is_replacement() const { return impl_->replacement; }

wtm::Doc Update::Apply(const bson_t* doc, bool* changed) const {
  Node root = FromDoc(doc);
  const Node* id = IdOf(root);
  Context ctx;
  if (id) ctx.id = "_id: " + Format(*id);
  Node result;
  if (impl_->replacement) {
    result = impl_->replacement_doc;
    const Node* new_id = IdOf(result);
    if (id && new_id && (CompareNodes(*id, *new_id) != 0 || id->type != new_id->type))
      throw MongoError(ErrorCode::kImmutableField,
                       "After applying the update, the (immutable) field '_id' was found to have "
                       "been altered to _id: " +
                           Format(*new_id));
    if (id && !new_id) result.kids.insert(result.kids.begin(), *id);
  } else {
    impl_->ApplyOps(root, ctx);
    result = std::move(root);
  }
  wtm::Doc out = Finish(result);
  if (changed)
    *changed = out.size() != doc->len || std::memcmp(out.data(), bson_get_data(doc), doc->len) != 0;
  return out;
}

wtm::Doc Update::ApplyUpsert(const bson_t* query) const {
  Node q = query ? FromDoc(query) : MakeContainer(BSON_TYPE_DOCUMENT);
  std::vector<std::pair<std::vector<std::string>, Node>> eq;
  std::vector<std::string> paths;
  CollectEqualities(q, &eq, &paths);
  for (size_t i = 0; i < eq.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (eq[i].first == eq[j].first)
        throw MongoError(kNotSingleValueField, "cannot infer query fields to set, path '" +
                                                   paths[i] + "' is matched twice");
      if (IsPrefix(eq[i].first, eq[j].first) || IsPrefix(eq[j].first, eq[i].first))
        throw MongoError(kNotSingleValueField, "cannot infer query fields to set, both paths '" +
                                                   paths[j] + "' and '" + paths[i] +
                                                   "' are matched");
    }
  }
  Node doc = MakeContainer(BSON_TYPE_DOCUMENT);
  if (impl_->replacement) {
    doc = impl_->replacement_doc;
    const Node* new_id = IdOf(doc);
    for (auto& [parts, value] : eq) {
      if (parts.size() != 1 || parts[0] != "_id") continue;
      if (new_id && (CompareNodes(*new_id, value) != 0 || new_id->type != value.type))
        throw MongoError(ErrorCode::kImmutableField,
                         "After applying the update, the (immutable) field '_id' was found to "
                         "have been altered to _id: " +
                             Format(*new_id));
      if (!new_id) {
        Node id = value;
        id.name = "_id";
        doc.kids.insert(doc.kids.begin(), std::move(id));
      }
    }
  } else {
    std::vector<size_t> order(eq.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return PathLess(eq[a].first, eq[b].first); });
    for (size_t i : order) Assign(FindOrCreate(doc, eq[i].first), eq[i].second);
    Context ctx;
    ctx.inserting = true;
    if (const Node* id = IdOf(doc)) ctx.id = "_id: " + Format(*id);
    impl_->ApplyOps(doc, ctx);
  }
  EnsureIdFirst(&doc);
  return Finish(doc);
}

}  // namespace wtm::query
