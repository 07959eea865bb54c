#include "wire/message.h"

#include <array>
#include <cstring>
#include <set>
#include <string_view>
#include <utility>

#include "common/error.h"

namespace wtm::wire {
namespace {

[[noreturn]] void Protocol(const std::string& msg) {
  throw MongoError(ErrorCode::kProtocolError, msg);
}

int32_t LoadI32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return static_cast<int32_t>(BSON_UINT32_FROM_LE(v));
}

void PutI32(std::string* out, int32_t v) {
  uint32_t le = BSON_UINT32_TO_LE(static_cast<uint32_t>(v));
  out->append(reinterpret_cast<const char*>(&le), 4);
}

void PutI64(std::string* out, int64_t v) {
  uint64_t le = BSON_UINT64_TO_LE(static_cast<uint64_t>(v));
  out->append(reinterpret_cast<const char*>(&le), 8);
}

void PutHeader(std::string* out, int32_t request_id, int32_t response_to, int32_t op_code) {
  PutI32(out, 0);  // length, patched by FinishLength
  PutI32(out, request_id);
  PutI32(out, response_to);
  PutI32(out, op_code);
}

void PutDoc(std::string* out, const bson_t* doc) {
  out->append(reinterpret_cast<const char*>(bson_get_data(doc)), doc->len);
}

void FinishLength(std::string* out) {
  uint32_t le = BSON_UINT32_TO_LE(static_cast<uint32_t>(out->size()));
  std::memcpy(out->data(), &le, 4);
}

// Reads one BSON document at p with `avail` bytes left; `what` names it in errors.
// Returns the document and sets *used to its length.
Doc ReadDoc(const uint8_t* p, size_t avail, const char* what, size_t* used) {
  if (avail < 5) Protocol(std::string(what) + ": truncated BSON document");
  int32_t len = LoadI32(p);
  if (len < 5) {
    throw MongoError(ErrorCode::kInvalidBSON,
                     std::string(what) + ": BSON length " + std::to_string(len) + " is too small");
  }
  if (static_cast<size_t>(len) > avail) {
    throw MongoError(ErrorCode::kInvalidBSON, std::string(what) + ": BSON length " +
                                                  std::to_string(len) + " overruns the message (" +
                                                  std::to_string(avail) + " bytes left)");
  }
  if (len > kMaxInternalBsonObjectSize) {
    throw MongoError(ErrorCode::kInvalidBSON, std::string(what) + ": BSON document of " +
                                                  std::to_string(len) + " bytes exceeds the " +
                                                  std::to_string(kMaxInternalBsonObjectSize) +
                                                  " byte limit");
  }
  try {
    Doc d = Doc::FromData(p, static_cast<size_t>(len));
    *used = static_cast<size_t>(len);
    return d;
  } catch (const MongoError& e) {
    throw MongoError(e.code(), std::string(what) + ": " + e.what());
  }
}

bool HasField(const bson_t* b, std::string_view name) {
  bson_iter_t it;
  if (!bson_iter_init(&it, b)) return false;
  while (bson_iter_next(&it)) {
    if (bson_iter_key_len(&it) == name.size() &&
        std::memcmp(bson_iter_key(&it), name.data(), name.size()) == 0) {
      return true;
    }
  }
  return false;
}

Request ParseOpMsg(const MsgHeader& h, const uint8_t* data, size_t len) {
  Request req;
  req.header = h;
  if (len < kHeaderSize + 4) Protocol("OP_MSG is too short to hold flagBits");
  uint32_t flags = static_cast<uint32_t>(LoadI32(data + kHeaderSize));
  // Bits 0-15 are required: unknown ones must be rejected; bits 16-31 are optional.
  uint32_t unknown_required = flags & 0xFFFFu & ~(kChecksumPresent | kMoreToCome);
  if (unknown_required != 0) {
    Protocol("Unrecognized required flags in OP_MSG: " + std::to_string(unknown_required));
  }
  req.flags = flags;
  size_t end = len;
  if (flags & kChecksumPresent) {
    if (len < kHeaderSize + 4 + 4) Protocol("OP_MSG with checksumPresent is too short");
    end = len - 4;
    uint32_t want = static_cast<uint32_t>(LoadI32(data + end));
    uint32_t got = Crc32c(data, end);
    if (want != got) Protocol("OP_MSG checksum mismatch: message CRC-32C does not match");
  }

  const uint8_t* body_data = nullptr;
  Doc body;
  std::vector<DocSequence> seqs;
  size_t pos = kHeaderSize + 4;
  while (pos < end) {
    uint8_t kind = data[pos++];
    if (kind == 0) {
      if (body_data) Protocol("OP_MSG has multiple body sections");
      size_t used = 0;
      body = ReadDoc(data + pos, end - pos, "OP_MSG body", &used);
      body_data = data + pos;
      pos += used;
    } else if (kind == 1) {
      if (end - pos < 4) Protocol("OP_MSG document sequence: truncated size");
      int32_t size = LoadI32(data + pos);
      if (size < 5 || static_cast<size_t>(size) > end - pos) {
        Protocol("OP_MSG document sequence: invalid size " + std::to_string(size));
      }
      size_t sec_end = pos + static_cast<size_t>(size);
      size_t p = pos + 4;
      const void* nul = std::memchr(data + p, 0, sec_end - p);
      if (!nul) Protocol("OP_MSG document sequence: identifier is not NUL-terminated");
      size_t id_len = static_cast<const uint8_t*>(nul) - (data + p);
      DocSequence seq;
      seq.identifier.assign(reinterpret_cast<const char*>(data + p), id_len);
      if (seq.identifier.empty()) Protocol("OP_MSG document sequence: empty identifier");
      p += id_len + 1;
      while (p < sec_end) {
        size_t used = 0;
        seq.docs.push_back(ReadDoc(data + p, sec_end - p, "OP_MSG document sequence", &used));
        p += used;
      }
      for (const DocSequence& s : seqs) {
        if (s.identifier == seq.identifier) {
          Protocol("OP_MSG has duplicate document sequence '" + seq.identifier + "'");
        }
      }
      seqs.push_back(std::move(seq));
      pos = sec_end;
    } else {
      Protocol("OP_MSG has unknown section kind " + std::to_string(kind));
    }
  }
  if (!body_data) Protocol("OP_MSG has no body section");

  bson_iter_t it;
  if (!bson_iter_init_find(&it, body.get(), "$db")) {
    Protocol("OP_MSG requests require a $db argument");
  }
  if (!BSON_ITER_HOLDS_UTF8(&it)) Protocol("OP_MSG $db must be a string");
  uint32_t db_len = 0;
  const char* db = bson_iter_utf8(&it, &db_len);
  if (db_len == 0 || std::memchr(db, 0, db_len))
    Protocol("OP_MSG $db is not a valid database name");
  req.db.assign(db, db_len);

  if (seqs.empty()) {
    req.body = std::move(body);
    return req;
  }
  for (const DocSequence& s : seqs) {
    if (HasField(body.get(), s.identifier)) {
      Protocol("OP_MSG field '" + s.identifier + "' is both in the body and a document sequence");
    }
  }
  Doc merged = Doc::Copy(body.get());
  for (const DocSequence& s : seqs) {
    bson_t arr;
    bool ok = bson_append_array_begin(merged.mut(), s.identifier.c_str(),
                                      static_cast<int>(s.identifier.size()), &arr);
    for (size_t i = 0; ok && i < s.docs.size(); ++i) {
      char buf[16];
      const char* key = nullptr;
      size_t key_len = bson_uint32_to_string(static_cast<uint32_t>(i), &key, buf, sizeof buf);
      ok = bson_append_document(&arr, key, static_cast<int>(key_len), s.docs[i].get());
    }
    if (ok) ok = bson_append_array_end(merged.mut(), &arr);
    if (!ok) Protocol("OP_MSG body with document sequences merged is too large");
  }
  req.body = std::move(merged);
  return req;
}

Request ParseOpQuery(const MsgHeader& h, const uint8_t* data, size_t len) {
  Request req;
  req.header = h;
  req.legacy = true;
  size_t pos = kHeaderSize;
  if (len - pos < 4) Protocol("OP_QUERY is too short to hold flags");
  int32_t query_flags = LoadI32(data + pos);
  pos += 4;
  const void* nul = std::memchr(data + pos, 0, len - pos);
  if (!nul) Protocol("OP_QUERY fullCollectionName is not NUL-terminated");
  std::string ns(reinterpret_cast<const char*>(data + pos),
                 static_cast<const uint8_t*>(nul) - (data + pos));
  pos += ns.size() + 1;
  if (len - pos < 8) Protocol("OP_QUERY is too short to hold numberToSkip/numberToReturn");
  pos += 8;
  size_t used = 0;
  Doc query = ReadDoc(data + pos, len - pos, "OP_QUERY query", &used);
  pos += used;
  if (pos < len) {
    ReadDoc(data + pos, len - pos, "OP_QUERY returnFieldsSelector", &used);
    pos += used;
  }
  if (pos != len) Protocol("OP_QUERY has " + std::to_string(len - pos) + " trailing bytes");

  size_t dot = ns.find('.');
  if (dot == std::string::npos || dot == 0 || ns.compare(dot + 1, std::string::npos, "$cmd") != 0) {
    Protocol("OP_QUERY is no longer supported except for commands on '<db>.$cmd' (namespace '" +
             ns + "')");
  }
  req.db = ns.substr(0, dot);

  // Legacy command up-conversion (mongod's rpc::upconvertRequest).
  const bson_t* cmd = query.get();
  Doc inner;
  Doc read_pref;  // fields to append: {$readPreference: ...}
  bson_iter_t it;
  if (bson_iter_init(&it, cmd) && bson_iter_next(&it) &&
      (std::strcmp(bson_iter_key(&it), "$query") == 0 ||
       std::strcmp(bson_iter_key(&it), "query") == 0)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
      Protocol(std::string("OP_QUERY '") + bson_iter_key(&it) + "' must be a document");
    }
    if (HasField(cmd, "$maxTimeMS")) {
      throw MongoError(ErrorCode::kInvalidOptions,
                       "cannot use $maxTimeMS query option with commands; use maxTimeMS command "
                       "option instead");
    }
    uint32_t dlen = 0;
    const uint8_t* d = nullptr;
    bson_iter_document(&it, &dlen, &d);
    inner = Doc::FromData(d, dlen);
    bson_iter_t rp;
    if (bson_iter_init_find(&rp, cmd, "$readPreference")) {
      bson_append_iter(read_pref.mut(), "$readPreference", -1, &rp);
    }
  } else if (bson_iter_init_find(&it, cmd, "$queryOptions")) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&it)) Protocol("OP_QUERY '$queryOptions' must be a document");
    uint32_t dlen = 0;
    const uint8_t* d = nullptr;
    bson_iter_document(&it, &dlen, &d);
    read_pref = Doc::FromData(d, dlen);
    bson_copy_to_excluding_noinit(cmd, inner.mut(), "$queryOptions", nullptr);
  } else {
    inner = std::move(query);
  }
  if (!read_pref.empty()) {
    bson_concat(inner.mut(), read_pref.get());
  } else if (!HasField(inner.get(), "$readPreference") && (query_flags & 4)) {  // SecondaryOk
    bson_t rp;
    BSON_APPEND_DOCUMENT_BEGIN(inner.mut(), "$readPreference", &rp);
    BSON_APPEND_UTF8(&rp, "mode", "secondaryPreferred");
    bson_append_document_end(inner.mut(), &rp);
  }
  if (!HasField(inner.get(), "$db")) BSON_APPEND_UTF8(inner.mut(), "$db", req.db.c_str());
  req.body = std::move(inner);
  return req;
}

constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();

}  // namespace

uint32_t Crc32c(const uint8_t* data, size_t len) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; ++i) c = kCrc32cTable[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

MsgHeader ParseHeader(const uint8_t* data16) {
  MsgHeader h;
  h.length = LoadI32(data16);
  h.request_id = LoadI32(data16 + 4);
  h.response_to = LoadI32(data16 + 8);
  h.op_code = LoadI32(data16 + 12);
  if (h.length < kHeaderSize || h.length > kMaxMessageSizeBytes) {
    Protocol("message length " + std::to_string(h.length) + " is outside [" +
             std::to_string(kHeaderSize) + ", " + std::to_string(kMaxMessageSizeBytes) + "]");
  }
  return h;
}

Request ParseRequest(const uint8_t* data, size_t len) {
  if (len < kHeaderSize) Protocol("message is shorter than its 16-byte header");
  MsgHeader h = ParseHeader(data);
  if (static_cast<size_t>(h.length) != len) {
    Protocol("message length " + std::to_string(h.length) + " does not match the " +
             std::to_string(len) + " bytes received");
  }
  switch (h.op_code) {
    case kOpMsg:
      return ParseOpMsg(h, data, len);
    case kOpQuery:
      return ParseOpQuery(h, data, len);
    case kOpCompressed:
      Protocol("OP_COMPRESSED is not supported: no compressors are enabled");
    case kOpGetMore:
    case kOpKillCursors:
    case kOpReply:
      Protocol("legacy opcode " + std::to_string(h.op_code) + " is no longer supported");
    default:
      Protocol("unknown opcode " + std::to_string(h.op_code));
  }
}

std::string EncodeReply(const Request& req, int32_t request_id, const bson_t* reply) {
  std::string out;
  out.reserve(kHeaderSize + 20 + reply->len);
  if (req.legacy) {
    PutHeader(&out, request_id, req.header.request_id, kOpReply);
    PutI32(&out, 8);  // responseFlags: AwaitCapable
    PutI64(&out, 0);  // cursorId
    PutI32(&out, 0);  // startingFrom
    PutI32(&out, 1);  // numberReturned
  } else {
    PutHeader(&out, request_id, req.header.request_id, kOpMsg);
    PutI32(&out, 0);  // flagBits
    out.push_back('\0');
  }
  PutDoc(&out, reply);
  FinishLength(&out);
  return out;
}

std::string EncodeOpMsg(int32_t request_id, const bson_t* body, uint32_t flags) {
  return EncodeOpMsg(request_id, body, {}, flags);
}

std::string EncodeOpMsg(int32_t request_id, const bson_t* body,
                        const std::vector<DocSequence>& sequences, uint32_t flags) {
  std::string out;
  PutHeader(&out, request_id, 0, kOpMsg);
  PutI32(&out, static_cast<int32_t>(flags));
  out.push_back('\0');
  PutDoc(&out, body);
  for (const DocSequence& s : sequences) {
    out.push_back('\1');
    size_t size_at = out.size();
    PutI32(&out, 0);
    out.append(s.identifier);
    out.push_back('\0');
    for (const Doc& d : s.docs) PutDoc(&out, d.get());
    uint32_t le = BSON_UINT32_TO_LE(static_cast<uint32_t>(out.size() - size_at));
    std::memcpy(out.data() + size_at, &le, 4);
  }
  if (flags & kChecksumPresent) {
    PutI32(&out, 0);
    FinishLength(&out);
    uint32_t crc = Crc32c(reinterpret_cast<const uint8_t*>(out.data()), out.size() - 4);
    uint32_t le = BSON_UINT32_TO_LE(crc);
    std::memcpy(out.data() + out.size() - 4, &le, 4);
  }
  FinishLength(&out);
  return out;
}

std::string EncodeOpQuery(int32_t request_id, const std::string& full_collection,
                          const bson_t* query) {
  std::string out;
  PutHeader(&out, request_id, 0, kOpQuery);
  PutI32(&out, 0);  // flags
  out.append(full_collection);
  out.push_back('\0');
  PutI32(&out, 0);   // numberToSkip
  PutI32(&out, -1);  // numberToReturn
  PutDoc(&out, query);
  FinishLength(&out);
  return out;
}

}  // namespace wtm::wire
