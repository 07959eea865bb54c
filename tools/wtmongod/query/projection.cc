#include "query/projection.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "query/expression.h"
#include "query/number.h"
#include "query/value.h"

namespace wtm::query {

struct Projection::Node {
  enum Kind { kInclude, kExclude, kComputed, kSub };
  struct Child {
    std::string name;
    Kind kind;
    bson_value_t expr{};        // kComputed; points into spec_
    std::shared_ptr<Node> sub;  // kSub
  };
  std::vector<Child> children;
  wtm::Doc spec;  // root only: owns the bytes the expressions point into

  const Child* Find(std::string_view name) const {
    for (const auto& c : children) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }
  bool HasComputed() const {
    for (const auto& c : children) {
      if (c.kind == kComputed || (c.kind == kSub && c.sub->HasComputed())) return true;
    }
    return false;
  }
};

namespace {

using Node = Projection::Node;

// 1 include, 0 exclude, -1 expression.
int Classify(const bson_value_t& v) {
  switch (v.value_type) {
    case BSON_TYPE_BOOL:
      return v.value.v_bool ? 1 : 0;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128: {
      internal::NumKey k = internal::ToNumKey(v);
      return (!k.nan && k.d == 0) ? 0 : 1;
    }
    default:
      return -1;
  }
}

struct Builder {
  int mode = 0;  // 1 inclusion, 0 undecided, -1 exclusion

  void SetMode(int want, const std::string& path) {
    if (mode == 0) mode = want;
    if (mode == want) return;
    if (want < 0) {
      throw MongoError(31254, "Cannot do exclusion on field " + path + " in inclusion projection");
    }
    throw MongoError(31253, "Cannot do inclusion on field " + path + " in exclusion projection");
  }

  void Add(Node* node, std::string_view path, const std::string& full, const bson_value_t& v) {
    size_t dot = path.find('.');
    std::string head(path.substr(0, dot));
    if (head.empty()) throw MongoError(31249, "Path collision at " + full);  // "a..b"
    Node::Child* c = nullptr;
    for (auto& ch : node->children) {
      if (ch.name == head) c = &ch;
    }
    if (dot != std::string_view::npos) {
      if (c && c->kind != Node::kSub) throw MongoError(31250, "Path collision at " + full);
      if (!c) {
        node->children.push_back({head, Node::kSub, {}, std::make_shared<Node>()});
        c = &node->children.back();
      }
      Add(c->sub.get(), path.substr(dot + 1), full, v);
      return;
    }
    const char* op = nullptr;
    bool nested = v.value_type == BSON_TYPE_DOCUMENT;
    if (nested) {
      bson_t d = ViewDoc(v);
      bson_iter_t it;
      if (bson_iter_init(&it, &d) && bson_iter_next(&it)) op = bson_iter_key(&it);
      if (op && op[0] == '$') {
        nested = false;
        if (std::strcmp(op, "$slice") == 0 || std::strcmp(op, "$elemMatch") == 0 ||
            std::strcmp(op, "$meta") == 0) {
          throw MongoError(ErrorCode::kBadValue,
                           std::string("wtmongod does not support ") + op + " in projections");
        }
      } else if (!op) {
        throw MongoError(51270,
                         "An empty sub-projection is not a valid value. Found empty "
                         "object at path");
      }
    }
    if (nested) {  // {a: {b: 1}} is {"a.b": 1}
      if (c && c->kind != Node::kSub) throw MongoError(31250, "Path collision at " + full);
      if (!c) {
        node->children.push_back({head, Node::kSub, {}, std::make_shared<Node>()});
        c = &node->children.back();
      }
      bson_t d = ViewDoc(v);
      bson_iter_t it;
      bson_iter_init(&it, &d);
      while (bson_iter_next(&it)) {
        std::string key(bson_iter_key(&it), bson_iter_key_len(&it));
        Add(c->sub.get(), key, full + "." + key, *bson_iter_value(&it));
      }
      return;
    }
    if (c) throw MongoError(31250, "Path collision at " + full);
    int cls = Classify(v);
    bool is_id = full == "_id";
    Node::Kind kind = cls == 1 ? Node::kInclude : cls == 0 ? Node::kExclude : Node::kComputed;
    if (kind == Node::kComputed) ValidateExpression(v);
    if (!is_id) SetMode(kind == Node::kExclude ? -1 : 1, full);
    node->children.push_back({head, kind, v, nullptr});
  }
};

void IncludeInto(const Node& node, const bson_t* doc, const bson_t* root, bson_t* out, bool top);

// Projects one element of an array under an inclusion sub-node; returns false to drop it.
bool IncludeValue(const Node& node, const bson_value_t& v, const bson_t* root, bson_t* out,
                  std::string_view key) {
  if (v.value_type == BSON_TYPE_DOCUMENT) {
    bson_t in = ViewDoc(v), child;
    bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &child);
    IncludeInto(node, &in, root, &child, false);
    bson_append_document_end(out, &child);
    return true;
  }
  if (v.value_type == BSON_TYPE_ARRAY) {
    bson_t in = ViewDoc(v), child;
    bson_append_array_begin(out, key.data(), static_cast<int>(key.size()), &child);
    bson_iter_t it;
    uint32_t n = 0;
    if (bson_iter_init(&it, &in)) {
      while (bson_iter_next(&it)) {
        std::string k = std::to_string(n);
        if (IncludeValue(node, *bson_iter_value(&it), root, &child, k)) ++n;
      }
    }
    bson_append_array_end(out, &child);
    return true;
  }
  if (node.HasComputed()) {  // a scalar is replaced by the computed sub-document
    bson_t empty = BSON_INITIALIZER, child;
    bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &child);
    IncludeInto(node, &empty, root, &child, false);
    bson_append_document_end(out, &child);
    return true;
  }
  return false;
}

void AppendComputed(const Node::Child& c, const bson_t* root, bson_t* out) {
  auto v = EvaluateExpression(c.expr, root);
  if (v) AppendValue(out, c.name, v->get());
}

void IncludeInto(const Node& node, const bson_t* doc, const bson_t* root, bson_t* out, bool top) {
  const Node::Child* id = top ? node.Find("_id") : nullptr;
  if (id && id->kind == Node::kComputed) AppendComputed(*id, root, out);
  std::vector<bool> seen(node.children.size());
  bson_iter_t it;
  if (bson_iter_init(&it, doc)) {
    while (bson_iter_next(&it)) {
      std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
      for (size_t i = 0; i < node.children.size(); ++i) {
        const auto& c = node.children[i];
        if (c.name != key) continue;
        seen[i] = true;
        if (c.kind == Node::kInclude) {
          AppendValue(out, key, *bson_iter_value(&it));
        } else if (c.kind == Node::kSub) {
          IncludeValue(*c.sub, *bson_iter_value(&it), root, out, key);
        }
        break;
      }
    }
  }
  for (size_t i = 0; i < node.children.size(); ++i) {
    const auto& c = node.children[i];
    if (c.kind == Node::kComputed && &c != id) AppendComputed(c, root, out);
    if (c.kind == Node::kSub && !seen[i] && c.sub->HasComputed()) {
      bson_t empty = BSON_INITIALIZER, child;
      bson_append_document_begin(out, c.name.data(), static_cast<int>(c.name.size()), &child);
      IncludeInto(*c.sub, &empty, root, &child, false);
      bson_append_document_end(out, &child);
    }
  }
}

void ExcludeInto(const Node& node, const bson_t* doc, bson_t* out);

void ExcludeValue(const Node& node, const bson_value_t& v, bson_t* out, std::string_view key) {
  if (v.value_type != BSON_TYPE_DOCUMENT && v.value_type != BSON_TYPE_ARRAY) {
    AppendValue(out, key, v);
    return;
  }
  bson_t in = ViewDoc(v), child;
  if (v.value_type == BSON_TYPE_DOCUMENT) {
    bson_append_document_begin(out, key.data(), static_cast<int>(key.size()), &child);
    ExcludeInto(node, &in, &child);
    bson_append_document_end(out, &child);
  } else if (v.value_type == BSON_TYPE_ARRAY) {
    bson_append_array_begin(out, key.data(), static_cast<int>(key.size()), &child);
    bson_iter_t it;
    if (bson_iter_init(&it, &in)) {
      while (bson_iter_next(&it)) {
        ExcludeValue(node, *bson_iter_value(&it), &child,
                     {bson_iter_key(&it), bson_iter_key_len(&it)});
      }
    }
    bson_append_array_end(out, &child);
  }
}

void ExcludeInto(const Node& node, const bson_t* doc, bson_t* out) {
  bson_iter_t it;
  if (!bson_iter_init(&it, doc)) return;
  while (bson_iter_next(&it)) {
    std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    const Node::Child* c = node.Find(key);
    if (!c || c->kind == Node::kInclude) {
      AppendValue(out, key, *bson_iter_value(&it));
    } else if (c->kind == Node::kSub) {
      ExcludeValue(*c->sub, *bson_iter_value(&it), out, key);
    }
  }
}

}  // namespace

Projection::Projection(const bson_t* spec) {
  if (!spec || bson_count_keys(spec) == 0) return;
  auto root = std::make_shared<Node>();
  root->spec = wtm::Doc::Copy(spec);
  Builder b;
  bson_iter_t it;
  bson_iter_init(&it, root->spec.get());
  while (bson_iter_next(&it)) {
    std::string key(bson_iter_key(&it), bson_iter_key_len(&it));
    b.Add(root.get(), key, key, *bson_iter_value(&it));
  }
  if (b.mode == 0) {  // only _id was given
    const Node::Child* id = root->Find("_id");
    b.mode = (id && id->kind == Node::kExclude) ? -1 : 1;
  }
  exclusion_ = b.mode < 0;
  if (!exclusion_ && !root->Find("_id")) {
    root->children.insert(root->children.begin(), {"_id", Node::kInclude, {}, nullptr});
  }
  root_ = std::move(root);
}

bool Projection::empty() const { return root_ == nullptr; }

wtm::Doc Projection::Apply(const bson_t* doc) const {
  if (!root_) return wtm::Doc::Copy(doc);
  bson_t* out = bson_new();
  if (exclusion_) {
    ExcludeInto(*root_, doc, out);
  } else {
    IncludeInto(*root_, doc, doc, out, true);
  }
  return wtm::Doc(out);
}

}  // namespace wtm::query
