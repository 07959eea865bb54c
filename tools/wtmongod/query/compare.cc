#include "query/compare.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "query/number.h"
#include "query/value.h"

namespace wtm::query {
namespace internal {

bool IsNumber(bson_type_t t) {
  return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_DOUBLE ||
         t == BSON_TYPE_DECIMAL128;
}

static NumKey FromInt64(int64_t x) {
  NumKey k;
  k.d = static_cast<double>(x);
  k.rem = static_cast<int64_t>(static_cast<__int128>(x) - static_cast<__int128>(k.d));
  return k;
}

static NumKey FromDouble(double d) {
  NumKey k;
  if (std::isnan(d)) {
    k.nan = true;
  } else {
    k.d = d == 0 ? 0.0 : d;
  }
  return k;
}

NumKey ToNumKey(const bson_value_t& v) {
  switch (v.value_type) {
    case BSON_TYPE_INT32:
      return FromDouble(v.value.v_int32);
    case BSON_TYPE_INT64:
      return FromInt64(v.value.v_int64);
    case BSON_TYPE_DOUBLE:
      return FromDouble(v.value.v_double);
    case BSON_TYPE_DECIMAL128: {
      char buf[BSON_DECIMAL128_STRING];
      bson_decimal128_to_string(&v.value.v_decimal128, buf);
      long double ld = std::strtold(buf, nullptr);  // understands NaN / Infinity
      if (std::isnan(ld)) return FromDouble(NAN);
      if (std::isfinite(ld) && ld == std::floor(ld) && ld >= -9223372036854775808.0L &&
          ld < 9223372036854775808.0L) {
        return FromInt64(static_cast<int64_t>(ld));
      }
      return FromDouble(static_cast<double>(ld));
    }
    default:
      return NumKey{};
  }
}

int CompareNumKeys(const NumKey& a, const NumKey& b) {
  if (a.nan || b.nan) return a.nan == b.nan ? 0 : (a.nan ? -1 : 1);
  if (a.d != b.d) return a.d < b.d ? -1 : 1;
  if (a.rem != b.rem) return a.rem < b.rem ? -1 : 1;
  return 0;
}

}  // namespace internal

using internal::IsNumber;

int CanonicalType(bson_type_t t) {
  switch (t) {
    case BSON_TYPE_MINKEY:
      return -1;
    case BSON_TYPE_EOD:
    case BSON_TYPE_UNDEFINED:
      return 0;
    case BSON_TYPE_NULL:
      return 5;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128:
      return 10;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
      return 15;
    case BSON_TYPE_DOCUMENT:
      return 20;
    case BSON_TYPE_ARRAY:
      return 25;
    case BSON_TYPE_BINARY:
      return 30;
    case BSON_TYPE_OID:
      return 35;
    case BSON_TYPE_BOOL:
      return 40;
    case BSON_TYPE_DATE_TIME:
      return 45;
    case BSON_TYPE_TIMESTAMP:
      return 47;
    case BSON_TYPE_REGEX:
      return 50;
    case BSON_TYPE_DBPOINTER:
      return 55;
    case BSON_TYPE_CODE:
      return 60;
    case BSON_TYPE_CODEWSCOPE:
      return 65;
    case BSON_TYPE_MAXKEY:
      return 100;
  }
  return 0;
}

namespace {

int Sign(int c) { return c < 0 ? -1 : (c > 0 ? 1 : 0); }

template <typename T>
int Cmp3(T a, T b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

// Byte-wise comparison, then length (mongod's string order without collation).
int CompareBytes(const char* a, size_t alen, const char* b, size_t blen) {
  int c = std::memcmp(a, b, std::min(alen, blen));
  if (c != 0) return Sign(c);
  return Cmp3(alen, blen);
}

void StringOf(const bson_value_t& v, const char** s, size_t* len) {
  if (v.value_type == BSON_TYPE_SYMBOL) {
    *s = v.value.v_symbol.symbol;
    *len = v.value.v_symbol.len;
  } else {
    *s = v.value.v_utf8.str;
    *len = v.value.v_utf8.len;
  }
}

bson_t StaticDoc(const uint8_t* data, uint32_t len) {
  bson_t b;
  if (!bson_init_static(&b, data, len)) bson_init(&b);
  return b;
}

}  // namespace

int CompareValues(const bson_value_t& a, const bson_value_t& b) {
  int ta = CanonicalType(a.value_type), tb = CanonicalType(b.value_type);
  if (ta != tb) return ta < tb ? -1 : 1;
  switch (a.value_type) {
    case BSON_TYPE_MINKEY:
    case BSON_TYPE_MAXKEY:
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_EOD:
      return 0;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128:
      return internal::CompareNumKeys(internal::ToNumKey(a), internal::ToNumKey(b));
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL: {
      const char *sa, *sb;
      size_t la, lb;
      StringOf(a, &sa, &la);
      StringOf(b, &sb, &lb);
      return CompareBytes(sa, la, sb, lb);
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
      bson_t da = ViewDoc(a), db = ViewDoc(b);
      return CompareDocs(&da, &db);
    }
    case BSON_TYPE_BINARY: {
      const auto &ba = a.value.v_binary, &bb = b.value.v_binary;
      if (ba.data_len != bb.data_len) return ba.data_len < bb.data_len ? -1 : 1;
      if (ba.subtype != bb.subtype) return ba.subtype < bb.subtype ? -1 : 1;
      return ba.data_len == 0 ? 0 : Sign(std::memcmp(ba.data, bb.data, ba.data_len));
    }
    case BSON_TYPE_OID:
      return Sign(std::memcmp(a.value.v_oid.bytes, b.value.v_oid.bytes, 12));
    case BSON_TYPE_BOOL:
      return Cmp3(a.value.v_bool, b.value.v_bool);
    case BSON_TYPE_DATE_TIME:
      return Cmp3(a.value.v_datetime, b.value.v_datetime);
    case BSON_TYPE_TIMESTAMP: {
      int c = Cmp3(a.value.v_timestamp.timestamp, b.value.v_timestamp.timestamp);
      return c != 0 ? c : Cmp3(a.value.v_timestamp.increment, b.value.v_timestamp.increment);
    }
    case BSON_TYPE_REGEX: {
      int c = Sign(std::strcmp(a.value.v_regex.regex, b.value.v_regex.regex));
      return c != 0 ? c : Sign(std::strcmp(a.value.v_regex.options, b.value.v_regex.options));
    }
    case BSON_TYPE_DBPOINTER: {
      const auto &pa = a.value.v_dbpointer, &pb = b.value.v_dbpointer;
      if (pa.collection_len != pb.collection_len) return Cmp3(pa.collection_len, pb.collection_len);
      int c = Sign(std::memcmp(pa.collection, pb.collection, pa.collection_len));
      return c != 0 ? c : Sign(std::memcmp(pa.oid.bytes, pb.oid.bytes, 12));
    }
    case BSON_TYPE_CODE:
      return CompareBytes(a.value.v_code.code, a.value.v_code.code_len, b.value.v_code.code,
                          b.value.v_code.code_len);
    case BSON_TYPE_CODEWSCOPE: {
      const auto &ca = a.value.v_codewscope, &cb = b.value.v_codewscope;
      int c = CompareBytes(ca.code, ca.code_len, cb.code, cb.code_len);
      if (c != 0) return c;
      bson_t sa = StaticDoc(ca.scope_data, ca.scope_len),
             sb = StaticDoc(cb.scope_data, cb.scope_len);
      return CompareDocs(&sa, &sb);
    }
  }
  return 0;
}

int CompareDocs(const bson_t* a, const bson_t* b) {
  bson_iter_t ia, ib;
  bool ha = bson_iter_init(&ia, a), hb = bson_iter_init(&ib, b);
  while (true) {
    bool na = ha && bson_iter_next(&ia);
    bool nb = hb && bson_iter_next(&ib);
    if (!na || !nb) return na == nb ? 0 : (na ? 1 : -1);
    int ta = CanonicalType(bson_iter_type(&ia)), tb = CanonicalType(bson_iter_type(&ib));
    if (ta != tb) return ta < tb ? -1 : 1;
    int c = CompareBytes(bson_iter_key(&ia), bson_iter_key_len(&ia), bson_iter_key(&ib),
                         bson_iter_key_len(&ib));
    if (c != 0) return c;
    bson_value_t va = *bson_iter_value(&ia);
    c = CompareValues(va, *bson_iter_value(&ib));
    if (c != 0) return c;
  }
}

bool ValuesEqual(const bson_value_t& a, const bson_value_t& b) { return CompareValues(a, b) == 0; }

namespace {

bool IsIndex(std::string_view s, uint32_t* out) {
  if (s.empty() || s.size() > 9) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  uint32_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  *out = n;
  return true;
}

void Walk(const bson_value_t& v, const std::vector<std::string_view>& parts, size_t i,
          std::vector<bson_value_t>* out, bool* missing) {
  if (i == parts.size()) {
    out->push_back(v);
    return;
  }
  if (v.value_type == BSON_TYPE_DOCUMENT) {
    bson_t d = ViewDoc(v);
    bson_iter_t it;
    if (bson_iter_init_find_w_len(&it, &d, parts[i].data(), static_cast<int>(parts[i].size()))) {
      Walk(*bson_iter_value(&it), parts, i + 1, out, missing);
    } else {
      *missing = true;
    }
    return;
  }
  if (v.value_type == BSON_TYPE_ARRAY) {
    bson_t d = ViewDoc(v);
    bson_iter_t it;
    uint32_t index;
    if (IsIndex(parts[i], &index)) {
      if (bson_iter_init_find_w_len(&it, &d, parts[i].data(), static_cast<int>(parts[i].size()))) {
        Walk(*bson_iter_value(&it), parts, i + 1, out, missing);
      } else {
        *missing = true;
      }
      return;
    }
    bool any = false;
    if (bson_iter_init(&it, &d)) {
      while (bson_iter_next(&it)) {
        any = true;
        if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
          Walk(*bson_iter_value(&it), parts, i, out, missing);
        } else {
          *missing = true;
        }
      }
    }
    if (!any) *missing = true;
    return;
  }
  *missing = true;
}

}  // namespace

std::vector<bson_value_t> GetPathValues(const bson_t* doc, std::string_view path,
                                        bool* some_missing) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string_view::npos ? path.npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  bson_value_t root;
  root.value_type = BSON_TYPE_DOCUMENT;
  root.value.v_doc.data = const_cast<uint8_t*>(bson_get_data(doc));
  root.value.v_doc.data_len = doc->len;
  std::vector<bson_value_t> out;
  bool missing = false;
  Walk(root, parts, 0, &out, &missing);
  if (out.empty()) missing = true;
  if (some_missing) *some_missing = missing;
  return out;
}

std::vector<bson_value_t> GetPathValues(const bson_t* doc, std::string_view path) {
  return GetPathValues(doc, path, nullptr);
}

}  // namespace wtm::query
