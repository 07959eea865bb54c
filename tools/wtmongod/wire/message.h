// MongoDB wire protocol messages (OP_MSG, legacy OP_QUERY / OP_REPLY), server side, no compression.
#pragma once

#include <bson/bson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/doc.h"

namespace wtm::wire {

constexpr int32_t kMaxMessageSizeBytes = 48000000;  // as mongod's maxMessageSizeBytes
constexpr int32_t kMaxBsonObjectSize = 16 * 1024 * 1024;
// Largest single document accepted inside a message (mongod's BSONObjMaxInternalSize).
constexpr int32_t kMaxInternalBsonObjectSize = kMaxBsonObjectSize + 16 * 1024;
constexpr int32_t kHeaderSize = 16;

enum OpCode : int32_t {
  kOpReply = 1,
  kOpQuery = 2004,
  kOpGetMore = 2005,
  kOpKillCursors = 2007,
  kOpCompressed = 2012,
  kOpMsg = 2013,
};

// OP_MSG flagBits.
constexpr uint32_t kChecksumPresent = 1u << 0;
constexpr uint32_t kMoreToCome = 1u << 1;
constexpr uint32_t kExhaustAllowed = 1u << 16;

struct MsgHeader {
  int32_t length, request_id, response_to, op_code;
};

struct Request {
  MsgHeader header{};
  bool legacy = false;  // came as OP_QUERY on "<db>.$cmd"
  // OP_MSG: the body's "$db"; OP_QUERY: the part of the namespace before ".$cmd".
  std::string db;
  // The command document. OP_MSG document sequences are appended as array fields named by their
  // identifiers. OP_QUERY bodies wrapped as {$query: {...}, $readPreference: ...} are unwrapped
  // (keeping $readPreference), the slaveOk flag becomes $readPreference secondaryPreferred, and
  // "$db" is appended, as mongod's legacy up-conversion does.
  wtm::Doc body;
  uint32_t flags = 0;  // OP_MSG flagBits (0 for OP_QUERY)
  // Flag bit 1: the client wants no reply.
  bool more_to_come() const { return (flags & kMoreToCome) != 0; }
};

// A kind-1 OP_MSG section, for EncodeOpMsg.
struct DocSequence {
  std::string identifier;
  std::vector<wtm::Doc> docs;
};

// Parses one whole message (16-byte header included, len == header.length). Throws
// wtm::MongoError(kProtocolError or kInvalidBSON) on anything malformed; never reads outside
// [data, data + len).
Request ParseRequest(const uint8_t* data, size_t len);

// Reads the 16-byte header only; throws MongoError(kProtocolError) unless
// 16 <= length <= kMaxMessageSizeBytes.
MsgHeader ParseHeader(const uint8_t* data16);

// Encodes the reply to `req`: OP_MSG (flagBits 0, one kind-0 section) for OP_MSG requests,
// OP_REPLY (responseFlags AwaitCapable, cursorId 0, startingFrom 0, numberReturned 1) for
// legacy OP_QUERY ones. responseTo is req.header.request_id.
std::string EncodeReply(const Request& req, int32_t request_id, const bson_t* reply);

// Builds an OP_MSG request with one kind-0 section; appends a CRC-32C checksum when
// `flags` has kChecksumPresent.
std::string EncodeOpMsg(int32_t request_id, const bson_t* body, uint32_t flags = 0);
// As above, followed by one kind-1 section per sequence.
std::string EncodeOpMsg(int32_t request_id, const bson_t* body,
                        const std::vector<DocSequence>& sequences, uint32_t flags = 0);

// Builds an OP_QUERY request (flags 0, numberToSkip 0, numberToReturn -1) on `full_collection`.
std::string EncodeOpQuery(int32_t request_id, const std::string& full_collection,
                          const bson_t* query);

// CRC-32C (Castagnoli), as used by OP_MSG checksums.
uint32_t Crc32c(const uint8_t* data, size_t len);

}  // namespace wtm::wire
