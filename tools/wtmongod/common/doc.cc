#include "common/doc.h"

#include <utility>

#include "common/error.h"

namespace wtm {

Doc::Doc() : b_(bson_new()) {}

Doc::Doc(bson_t* adopt) : b_(adopt ? adopt : bson_new()) {}

Doc Doc::FromData(const uint8_t* data, size_t len) {
  bson_t* b = bson_new_from_data(data, len);
  if (!b) throw MongoError(ErrorCode::kInvalidBSON, "invalid BSON document");
  size_t off = 0;
  if (!bson_validate(b, BSON_VALIDATE_NONE, &off)) {
    bson_destroy(b);
    throw MongoError(ErrorCode::kInvalidBSON, "invalid BSON document (corrupt at offset " +
                                                  std::to_string(off) + ")");
  }
  return Doc(b);
}

Doc Doc::Copy(const bson_t* src) { return Doc(bson_copy(src)); }

Doc Doc::FromJson(std::string_view json) {
  bson_error_t err;
  bson_t* b = bson_new_from_json(reinterpret_cast<const uint8_t*>(json.data()),
                                 static_cast<ssize_t>(json.size()), &err);
  if (!b) throw MongoError(ErrorCode::kFailedToParse, std::string("bad JSON: ") + err.message);
  return Doc(b);
}

Doc::Doc(const Doc& other) : b_(bson_copy(other.b_)) {}

Doc& Doc::operator=(const Doc& other) {
  if (this != &other) {
    bson_destroy(b_);
    b_ = bson_copy(other.b_);
  }
  return *this;
}

Doc::Doc(Doc&& other) noexcept : b_(std::exchange(other.b_, bson_new())) {}

Doc& Doc::operator=(Doc&& other) noexcept {
  std::swap(b_, other.b_);
  return *this;
}

Doc::~Doc() { bson_destroy(b_); }

std::string Doc::ToJson() const { return wtm::ToJson(b_); }

std::string ToJson(const bson_t* b) {
  size_t n = 0;
  char* s = bson_as_relaxed_extended_json(b, &n);
  if (!s) return "<invalid bson>";
  std::string out(s, n);
  bson_free(s);
  return out;
}

}  // namespace wtm
