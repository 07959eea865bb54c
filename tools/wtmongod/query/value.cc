#include "query/value.h"

#include <utility>

namespace wtm::query {

OwnedValue::OwnedValue() { v_.value_type = BSON_TYPE_NULL; }

OwnedValue::OwnedValue(const bson_value_t& v) { bson_value_copy(&v, &v_); }

OwnedValue OwnedValue::Adopt(bson_value_t v) {
  OwnedValue out;
  out.v_ = v;
  return out;
}

OwnedValue::OwnedValue(const OwnedValue& other) { bson_value_copy(&other.v_, &v_); }

OwnedValue& OwnedValue::operator=(const OwnedValue& other) {
  if (this != &other) {
    bson_value_t copy;
    bson_value_copy(&other.v_, &copy);
    bson_value_destroy(&v_);
    v_ = copy;
  }
  return *this;
}

OwnedValue::OwnedValue(OwnedValue&& other) noexcept : v_(other.v_) {
  other.v_.value_type = BSON_TYPE_NULL;
}

OwnedValue& OwnedValue::operator=(OwnedValue&& other) noexcept {
  if (this != &other) {
    bson_value_destroy(&v_);
    v_ = other.v_;
    other.v_.value_type = BSON_TYPE_NULL;
  }
  return *this;
}

OwnedValue::~OwnedValue() { bson_value_destroy(&v_); }

bson_t ViewDoc(const bson_value_t& v) {
  bson_t b;
  if ((v.value_type != BSON_TYPE_DOCUMENT && v.value_type != BSON_TYPE_ARRAY) ||
      !bson_init_static(&b, v.value.v_doc.data, v.value.v_doc.data_len))
    bson_init(&b);
  return b;
}

}  // namespace wtm::query
