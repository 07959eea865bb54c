// An owning BSON value (deep copy of a bson_value_t), for keys and results that outlive their
// document.
#pragma once

#include <bson/bson.h>

namespace wtm::query {

class OwnedValue {
 public:
  OwnedValue();  // BSON null
  // Deep-copies `v` (strings, documents and binary data included).
  explicit OwnedValue(const bson_value_t& v);
  // Takes ownership of a value whose heap parts were allocated by libbson (e.g. by
  // bson_value_copy).
  static OwnedValue Adopt(bson_value_t v);

  OwnedValue(const OwnedValue& other);
  OwnedValue& operator=(const OwnedValue& other);
  OwnedValue(OwnedValue&& other) noexcept;
  OwnedValue& operator=(OwnedValue&& other) noexcept;
  ~OwnedValue();

  const bson_value_t& get() const { return v_; }
  const bson_value_t* operator->() const { return &v_; }
  bson_type_t type() const { return v_.value_type; }

 private:
  bson_value_t v_;
};

// Views a document or array value as a bson_t without copying; `v`'s bytes must outlive the result.
// Any other type (or corrupt data) yields an empty document.
bson_t ViewDoc(const bson_value_t& v);

}  // namespace wtm::query
