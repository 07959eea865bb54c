// Owning BSON document over libbson, shared by every part of wtmongod.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace wtm {

// A BSON document that owns its bytes. Copyable and movable; never null.
class Doc {
 public:
  Doc();  // the empty document {}
  // Adopts a heap bson_t created by bson_new()/bson_new_from_data(); takes ownership.
  explicit Doc(bson_t* adopt);
  // Copies `len` bytes; throws MongoError(InvalidBSON) when they are not one valid document.
  static Doc FromData(const uint8_t* data, size_t len);
  // Copies a document held elsewhere (no validation beyond libbson's length check).
  static Doc Copy(const bson_t* src);
  // Parses (relaxed or canonical) extended JSON; throws MongoError(FailedToParse).
  static Doc FromJson(std::string_view json);

  Doc(const Doc& other);
  Doc& operator=(const Doc& other);
  Doc(Doc&& other) noexcept;
  Doc& operator=(Doc&& other) noexcept;
  ~Doc();

  const bson_t* get() const { return b_; }
  bson_t* mut() { return b_; }
  const uint8_t* data() const { return bson_get_data(b_); }
  size_t size() const { return b_->len; }
  bool empty() const { return bson_count_keys(b_) == 0; }
  // Relaxed extended JSON, for logs and tests.
  std::string ToJson() const;

 private:
  bson_t* b_;
};

// Relaxed extended JSON of any bson_t, for log lines.
std::string ToJson(const bson_t* b);

}  // namespace wtm
