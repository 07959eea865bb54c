#include "query/keystring.h"

#include <cstring>

#include "query/compare.h"
#include "query/number.h"
#include "query/value.h"

namespace wtm::query {
namespace {

// Type bytes follow CanonicalType; NaN gets its own byte just below the other numbers.
uint8_t TypeByte(bson_type_t t) {
  switch (t) {
    case BSON_TYPE_MINKEY:
      return 0x0A;
    case BSON_TYPE_EOD:
    case BSON_TYPE_UNDEFINED:
      return 0x0F;
    case BSON_TYPE_NULL:
      return 0x14;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128:
      return 0x1E;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
      return 0x3C;
    case BSON_TYPE_DOCUMENT:
      return 0x46;
    case BSON_TYPE_ARRAY:
      return 0x50;
    case BSON_TYPE_BINARY:
      return 0x5A;
    case BSON_TYPE_OID:
      return 0x64;
    case BSON_TYPE_BOOL:
      return 0x6E;
    case BSON_TYPE_DATE_TIME:
      return 0x78;
    case BSON_TYPE_TIMESTAMP:
      return 0x82;
    case BSON_TYPE_REGEX:
      return 0x8C;
    case BSON_TYPE_DBPOINTER:
      return 0x96;
    case BSON_TYPE_CODE:
      return 0xA0;
    case BSON_TYPE_CODEWSCOPE:
      return 0xAA;
    case BSON_TYPE_MAXKEY:
      return 0xF0;
  }
  return 0x0F;
}
constexpr uint8_t kNaNByte = 0x1D;

void PutU64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(v >> (i * 8)));
}
void PutU32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>(v >> (i * 8)));
}
void PutI64(std::string* out, int64_t v) { PutU64(out, static_cast<uint64_t>(v) ^ (1ULL << 63)); }

// Bytes with 0x00 escaped as 00 FF, terminated by 00 00: self-delimiting and order-preserving.
void PutString(std::string* out, const char* s, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    out->push_back(s[i]);
    if (s[i] == '\0') out->push_back(static_cast<char>(0xFF));
  }
  out->push_back('\0');
  out->push_back('\0');
}

void PutValue(std::string* out, const bson_value_t& v);

// Elements as (canonical type + 1, name, value), ended by 00; arrays omit names (positional).
void PutDoc(std::string* out, const bson_t* doc, bool names) {
  bson_iter_t it;
  if (bson_iter_init(&it, doc)) {
    while (bson_iter_next(&it)) {
      out->push_back(static_cast<char>(CanonicalType(bson_iter_type(&it)) + 2));
      if (names) PutString(out, bson_iter_key(&it), bson_iter_key_len(&it));
      PutValue(out, *bson_iter_value(&it));
    }
  }
  out->push_back('\0');
}

void PutValue(std::string* out, const bson_value_t& v) {
  if (internal::IsNumber(v.value_type)) {
    internal::NumKey k = internal::ToNumKey(v);
    if (k.nan) {
      out->push_back(static_cast<char>(kNaNByte));
      return;
    }
    out->push_back(static_cast<char>(TypeByte(v.value_type)));
    uint64_t bits;
    std::memcpy(&bits, &k.d, 8);
    bits = (bits & (1ULL << 63)) ? ~bits : bits ^ (1ULL << 63);
    PutU64(out, bits);
    out->push_back(static_cast<char>(static_cast<uint8_t>(static_cast<int8_t>(k.rem >> 4)) ^ 0x80));
    out->push_back(static_cast<char>((k.rem & 0x0F)));
    return;
  }
  out->push_back(static_cast<char>(TypeByte(v.value_type)));
  switch (v.value_type) {
    case BSON_TYPE_UTF8:
      PutString(out, v.value.v_utf8.str, v.value.v_utf8.len);
      break;
    case BSON_TYPE_SYMBOL:
      PutString(out, v.value.v_symbol.symbol, v.value.v_symbol.len);
      break;
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
      bson_t d = ViewDoc(v);
      PutDoc(out, &d, v.value_type == BSON_TYPE_DOCUMENT);
      break;
    }
    case BSON_TYPE_BINARY:
      PutU32(out, v.value.v_binary.data_len);
      out->push_back(static_cast<char>(v.value.v_binary.subtype));
      out->append(reinterpret_cast<const char*>(v.value.v_binary.data), v.value.v_binary.data_len);
      break;
    case BSON_TYPE_OID:
      out->append(reinterpret_cast<const char*>(v.value.v_oid.bytes), 12);
      break;
    case BSON_TYPE_BOOL:
      out->push_back(v.value.v_bool ? 1 : 0);
      break;
    case BSON_TYPE_DATE_TIME:
      PutI64(out, v.value.v_datetime);
      break;
    case BSON_TYPE_TIMESTAMP:
      PutU32(out, v.value.v_timestamp.timestamp);
      PutU32(out, v.value.v_timestamp.increment);
      break;
    case BSON_TYPE_REGEX:
      PutString(out, v.value.v_regex.regex, std::strlen(v.value.v_regex.regex));
      PutString(out, v.value.v_regex.options, std::strlen(v.value.v_regex.options));
      break;
    case BSON_TYPE_DBPOINTER:
      PutU32(out, v.value.v_dbpointer.collection_len);
      out->append(v.value.v_dbpointer.collection, v.value.v_dbpointer.collection_len);
      out->append(reinterpret_cast<const char*>(v.value.v_dbpointer.oid.bytes), 12);
      break;
    case BSON_TYPE_CODE:
      PutString(out, v.value.v_code.code, v.value.v_code.code_len);
      break;
    case BSON_TYPE_CODEWSCOPE: {
      PutString(out, v.value.v_codewscope.code, v.value.v_codewscope.code_len);
      bson_t scope;
      if (!bson_init_static(&scope, v.value.v_codewscope.scope_data,
                            v.value.v_codewscope.scope_len)) {
        bson_init(&scope);
      }
      PutDoc(out, &scope, true);
      break;
    }
    default:  // MinKey, MaxKey, null, undefined: the type byte says it all
      break;
  }
}

}  // namespace

std::string EncodeValue(const bson_value_t& value) {
  std::string out;
  PutValue(&out, value);
  return out;
}

std::string EncodeIndexKey(const std::vector<bson_value_t>& values,
                           const std::vector<int>& directions) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    size_t start = out.size();
    PutValue(&out, values[i]);
    if (i < directions.size() && directions[i] < 0) {
      for (size_t j = start; j < out.size(); ++j) out[j] = static_cast<char>(~out[j]);
    }
  }
  return out;
}

std::string AppendRecordId(std::string key, int64_t record_id) {
  PutI64(&key, record_id);
  return key;
}

int64_t DecodeRecordIdSuffix(std::string_view key) {
  if (key.size() < 8) return 0;
  uint64_t v = 0;
  for (size_t i = key.size() - 8; i < key.size(); ++i) v = (v << 8) | static_cast<uint8_t>(key[i]);
  return static_cast<int64_t>(v ^ (1ULL << 63));
}

}  // namespace wtm::query
