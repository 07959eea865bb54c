#include "wire/message.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"

namespace wtm::wire {
namespace {

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

Request Parse(const std::string& m) { return ParseRequest(U8(m), m.size()); }

int32_t I32At(const std::string& m, size_t off) {
  int32_t v;
  std::memcpy(&v, m.data() + off, 4);
  return v;
}

void SetI32(std::string* m, size_t off, int32_t v) { std::memcpy(m->data() + off, &v, 4); }

std::string I32(int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

std::string Bytes(const Doc& d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

// A raw message: header with the right length + payload.
std::string Raw(int32_t op, const std::string& payload) {
  std::string m = I32(16 + static_cast<int32_t>(payload.size())) + I32(7) + I32(0) + I32(op);
  return m + payload;
}

// OP_MSG from raw flagBits + sections bytes.
std::string RawMsg(uint32_t flags, const std::string& sections) {
  return Raw(kOpMsg, I32(static_cast<int32_t>(flags)) + sections);
}

// Asserts that parsing fails with `code` and the message mentions `needle`.
void ExpectError(const std::string& m, ErrorCode code, const std::string& needle) {
  try {
    Parse(m);
    ADD_FAILURE() << "parsed without error; expected: " << needle;
  } catch (const MongoError& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

const Doc kPing = Doc::FromJson(R"({"ping": 1, "$db": "admin"})");

TEST(Crc32cTest, KnownVector) {
  std::string s = "123456789";
  EXPECT_EQ(Crc32c(U8(s), s.size()), 0xE3069283u);
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
}

TEST(HeaderTest, Bounds) {
  std::string h = I32(16) + I32(1) + I32(2) + I32(kOpMsg);
  MsgHeader mh = ParseHeader(U8(h));
  EXPECT_EQ(mh.length, 16);
  EXPECT_EQ(mh.request_id, 1);
  EXPECT_EQ(mh.response_to, 2);
  EXPECT_EQ(mh.op_code, kOpMsg);
  for (int32_t bad : {-1, 0, 15, kMaxMessageSizeBytes + 1, INT32_MAX}) {
    std::string b = I32(bad) + I32(1) + I32(2) + I32(kOpMsg);
    EXPECT_THROW(ParseHeader(U8(b)), MongoError) << bad;
  }
  std::string max = I32(kMaxMessageSizeBytes) + I32(1) + I32(2) + I32(kOpMsg);
  EXPECT_EQ(ParseHeader(U8(max)).length, kMaxMessageSizeBytes);
}

TEST(OpMsgTest, RoundTrip) {
  std::string m = EncodeOpMsg(42, kPing.get());
  EXPECT_EQ(I32At(m, 0), static_cast<int32_t>(m.size()));
  Request r = Parse(m);
  EXPECT_FALSE(r.legacy);
  EXPECT_EQ(r.header.request_id, 42);
  EXPECT_EQ(r.header.op_code, kOpMsg);
  EXPECT_EQ(r.db, "admin");
  EXPECT_EQ(r.flags, 0u);
  EXPECT_FALSE(r.more_to_come());
  EXPECT_EQ(Bytes(r.body), Bytes(kPing));
}

TEST(OpMsgTest, FlagBits) {
  EXPECT_TRUE(Parse(EncodeOpMsg(1, kPing.get(), kMoreToCome)).more_to_come());
  EXPECT_EQ(Parse(EncodeOpMsg(1, kPing.get(), kExhaustAllowed)).flags, kExhaustAllowed);
  EXPECT_EQ(Parse(EncodeOpMsg(1, kPing.get(), 1u << 31)).flags, 1u << 31);  // optional bit
  for (int bit = 2; bit < 16; ++bit) {
    ExpectError(EncodeOpMsg(1, kPing.get(), 1u << bit), ErrorCode::kProtocolError,
                "Unrecognized required flags");
  }
}

TEST(OpMsgTest, Checksum) {
  std::string m = EncodeOpMsg(5, kPing.get(), kChecksumPresent);
  Request r = Parse(m);
  EXPECT_EQ(Bytes(r.body), Bytes(kPing));
  EXPECT_EQ(static_cast<uint32_t>(I32At(m, m.size() - 4)), Crc32c(U8(m), m.size() - 4));
  std::string bad = m;
  bad[bad.size() - 6] ^= 1;  // inside the body: "admin"
  ExpectError(bad, ErrorCode::kProtocolError, "checksum");
  bad = m;
  bad[bad.size() - 1] ^= 0x80;  // the checksum itself
  ExpectError(bad, ErrorCode::kProtocolError, "checksum");
  // checksumPresent with no room for a checksum.
  ExpectError(RawMsg(kChecksumPresent, ""), ErrorCode::kProtocolError, "too short");
}

TEST(OpMsgTest, DocumentSequencesMerged) {
  Doc body = Doc::FromJson(R"({"insert": "c", "$db": "test"})");
  std::vector<DocSequence> seqs(2);
  seqs[0].identifier = "documents";
  seqs[0].docs.push_back(Doc::FromJson(R"({"a": 1})"));
  seqs[0].docs.push_back(Doc::FromJson(R"({"a": 2, "s": "x"})"));
  seqs[1].identifier = "empty";
  Request r = Parse(EncodeOpMsg(3, body.get(), seqs));
  EXPECT_EQ(r.db, "test");
  EXPECT_EQ(r.body.ToJson(), Doc::FromJson(R"({"insert": "c", "$db": "test",
                              "documents": [{"a": 1}, {"a": 2, "s": "x"}], "empty": []})")
                                 .ToJson());
  // Sequence before the body is accepted too.
  std::string seq = "documents" + std::string(1, '\0') + Bytes(seqs[0].docs[0]);
  std::string sections = std::string(1, '\1') + I32(4 + static_cast<int32_t>(seq.size())) + seq +
                         std::string(1, '\0') + Bytes(body);
  Request r2 = Parse(RawMsg(0, sections));
  EXPECT_EQ(r2.body.ToJson(),
            Doc::FromJson(R"({"insert": "c", "$db": "test", "documents": [{"a": 1}]})").ToJson());
}

TEST(OpMsgTest, DocumentSequenceConflicts) {
  Doc body = Doc::FromJson(R"({"insert": "c", "documents": [], "$db": "test"})");
  std::vector<DocSequence> seqs(1);
  seqs[0].identifier = "documents";
  seqs[0].docs.push_back(Doc::FromJson(R"({"a": 1})"));
  ExpectError(EncodeOpMsg(1, body.get(), seqs), ErrorCode::kProtocolError, "documents");
  Doc body2 = Doc::FromJson(R"({"insert": "c", "$db": "test"})");
  seqs.push_back(seqs[0]);
  ExpectError(EncodeOpMsg(1, body2.get(), seqs), ErrorCode::kProtocolError, "duplicate");
}

TEST(OpMsgTest, MalformedSections) {
  std::string ping = Bytes(kPing);
  std::string k0 = std::string(1, '\0') + ping;
  ExpectError(RawMsg(0, ""), ErrorCode::kProtocolError, "no body");
  ExpectError(Raw(kOpMsg, "\0\0"), ErrorCode::kProtocolError, "flagBits");
  ExpectError(RawMsg(0, k0 + k0), ErrorCode::kProtocolError, "multiple body");
  ExpectError(RawMsg(0, std::string(1, '\2') + ping), ErrorCode::kProtocolError,
              "unknown section kind 2");
  ExpectError(RawMsg(0, k0 + std::string(1, '\x7f')), ErrorCode::kProtocolError,
              "unknown section kind 127");
  // Body whose declared length overruns the message / is too small / is truncated.
  std::string over = ping;
  SetI32(&over, 0, static_cast<int32_t>(ping.size()) + 1);
  ExpectError(RawMsg(0, std::string(1, '\0') + over), ErrorCode::kInvalidBSON, "overruns");
  std::string small = ping;
  SetI32(&small, 0, 4);
  ExpectError(RawMsg(0, std::string(1, '\0') + small), ErrorCode::kInvalidBSON, "too small");
  SetI32(&small, 0, INT32_MIN);
  ExpectError(RawMsg(0, std::string(1, '\0') + small), ErrorCode::kInvalidBSON, "too small");
  ExpectError(RawMsg(0, std::string(1, '\0') + "\5\0"), ErrorCode::kProtocolError, "truncated");
  // Invalid BSON inside: an unknown element type, a missing terminator.
  std::string corrupt = ping;
  corrupt[4] = '\x55';
  ExpectError(RawMsg(0, std::string(1, '\0') + corrupt), ErrorCode::kInvalidBSON, "invalid BSON");
  std::string noterm = ping;
  noterm.back() = 'x';
  ExpectError(RawMsg(0, std::string(1, '\0') + noterm), ErrorCode::kInvalidBSON, "invalid BSON");
}

TEST(OpMsgTest, MalformedDocumentSequences) {
  std::string k0 = std::string(1, '\0') + Bytes(kPing);
  std::string doc = Bytes(Doc::FromJson(R"({"a": 1})"));
  auto seq = [](int32_t size, const std::string& rest) {
    return std::string(1, '\1') + I32(size) + rest;
  };
  std::string ok_payload = std::string("ids") + '\0' + doc;
  int32_t ok_size = 4 + static_cast<int32_t>(ok_payload.size());
  EXPECT_NO_THROW(Parse(RawMsg(0, k0 + seq(ok_size, ok_payload))));
  // Size overruns the message, is below the minimum, is negative.
  ExpectError(RawMsg(0, k0 + seq(ok_size + 1, ok_payload)), ErrorCode::kProtocolError,
              "invalid size");
  ExpectError(RawMsg(0, k0 + seq(4, "")), ErrorCode::kProtocolError, "invalid size");
  ExpectError(RawMsg(0, k0 + seq(-1, ok_payload)), ErrorCode::kProtocolError, "invalid size");
  ExpectError(RawMsg(0, k0 + "\1\0\0"), ErrorCode::kProtocolError, "truncated size");
  // Identifier without NUL inside the section.
  ExpectError(RawMsg(0, k0 + seq(7, "ids")), ErrorCode::kProtocolError, "NUL");
  ExpectError(RawMsg(0, k0 + seq(5, std::string(1, '\0'))), ErrorCode::kProtocolError,
              "empty identifier");
  // Trailing garbage after the last document, inside the declared size.
  std::string trailing = ok_payload + "xyz";
  ExpectError(RawMsg(0, k0 + seq(4 + static_cast<int32_t>(trailing.size()), trailing)),
              ErrorCode::kProtocolError, "truncated");
  // A document in the sequence that overruns the section (but not the message).
  std::string payload = std::string("ids") + '\0' + doc;
  std::string msg = RawMsg(0, k0 + seq(4 + static_cast<int32_t>(payload.size()) - 1, payload));
  ExpectError(msg, ErrorCode::kInvalidBSON, "overruns");
}

TEST(OpMsgTest, DbArgument) {
  ExpectError(EncodeOpMsg(1, Doc::FromJson(R"({"ping": 1})").get()), ErrorCode::kProtocolError,
              "$db");
  ExpectError(EncodeOpMsg(1, Doc::FromJson(R"({"ping": 1, "$db": 1})").get()),
              ErrorCode::kProtocolError, "$db must be a string");
  ExpectError(EncodeOpMsg(1, Doc::FromJson(R"({"ping": 1, "$db": ""})").get()),
              ErrorCode::kProtocolError, "$db");
}

TEST(MessageTest, LengthAndOpcode) {
  std::string m = EncodeOpMsg(1, kPing.get());
  ExpectError(m.substr(0, 10), ErrorCode::kProtocolError, "shorter than");
  std::string longer = m + "x";
  ExpectError(longer, ErrorCode::kProtocolError, "does not match");
  std::string big = m;
  SetI32(&big, 0, kMaxMessageSizeBytes + 1);
  ExpectError(big, ErrorCode::kProtocolError, "outside");
  ExpectError(Raw(9999, "abcd"), ErrorCode::kProtocolError, "unknown opcode 9999");
  ExpectError(Raw(kOpCompressed, std::string(9, '\0')), ErrorCode::kProtocolError, "OP_COMPRESSED");
  ExpectError(Raw(kOpGetMore, std::string(20, '\0')), ErrorCode::kProtocolError, "legacy opcode");
  ExpectError(Raw(kOpKillCursors, std::string(20, '\0')), ErrorCode::kProtocolError, "legacy");
  ExpectError(Raw(kOpReply, std::string(20, '\0')), ErrorCode::kProtocolError, "legacy");
}

TEST(MessageTest, EveryTruncationFails) {
  Doc body = Doc::FromJson(R"({"insert": "c", "$db": "test"})");
  std::vector<DocSequence> seqs(1);
  seqs[0].identifier = "documents";
  seqs[0].docs.push_back(Doc::FromJson(R"({"a": 1})"));
  // A cut right after the body section of the plain OP_MSG drops the sequence: still valid.
  const size_t body_end = 16 + 4 + 1 + body.size();
  const std::vector<std::string> msgs = {EncodeOpMsg(1, body.get(), seqs),
                                         EncodeOpMsg(1, body.get(), seqs, kChecksumPresent),
                                         EncodeOpQuery(1, "admin.$cmd", kPing.get())};
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string& m = msgs[i];
    ASSERT_NO_THROW(Parse(m));
    for (size_t n = 0; n < m.size(); ++n) {
      std::string cut = m.substr(0, n);
      EXPECT_THROW(Parse(cut), MongoError) << n;  // length mismatch
      if (n < 16) continue;
      SetI32(&cut, 0, static_cast<int32_t>(n));
      if (i == 0 && n == body_end) {
        EXPECT_EQ(Parse(cut).body.ToJson(), body.ToJson());
      } else {
        EXPECT_THROW(Parse(cut), MongoError) << n;  // consistent length, truncated content
      }
    }
  }
}

TEST(MessageTest, ByteFlipsNeverCrash) {
  Doc body = Doc::FromJson(R"({"insert": "c", "n": {"x": [1, "s"]}, "$db": "test"})");
  std::vector<DocSequence> seqs(1);
  seqs[0].identifier = "documents";
  seqs[0].docs.push_back(Doc::FromJson(R"({"a": 1.5})"));
  std::string m = EncodeOpMsg(1, body.get(), seqs);
  int parsed = 0, rejected = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    for (uint8_t v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string x = m;
      x[i] = static_cast<char>(v);
      try {
        Parse(x);
        ++parsed;
      } catch (const MongoError&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, 0);
}

TEST(OpQueryTest, Command) {
  std::string m = EncodeOpQuery(9, "admin.$cmd", Doc::FromJson(R"({"isMaster": 1})").get());
  Request r = Parse(m);
  EXPECT_TRUE(r.legacy);
  EXPECT_EQ(r.header.op_code, kOpQuery);
  EXPECT_EQ(r.header.request_id, 9);
  EXPECT_EQ(r.db, "admin");
  EXPECT_EQ(r.flags, 0u);
  EXPECT_EQ(r.body.ToJson(), Doc::FromJson(R"({"isMaster": 1, "$db": "admin"})").ToJson());
}

TEST(OpQueryTest, UnwrapsQueryAndReadPreference) {
  Doc wrapped = Doc::FromJson(
      R"({"$query": {"hello": 1}, "$readPreference": {"mode": "secondaryPreferred"}})");
  Request r = Parse(EncodeOpQuery(1, "test.$cmd", wrapped.get()));
  EXPECT_EQ(r.db, "test");
  EXPECT_EQ(r.body.ToJson(), Doc::FromJson(R"({"hello": 1,
      "$readPreference": {"mode": "secondaryPreferred"}, "$db": "test"})")
                                 .ToJson());
  Doc plain_query = Doc::FromJson(R"({"query": {"count": "c"}})");
  EXPECT_EQ(Parse(EncodeOpQuery(1, "db.$cmd", plain_query.get())).body.ToJson(),
            Doc::FromJson(R"({"count": "c", "$db": "db"})").ToJson());
  Doc query_options =
      Doc::FromJson(R"({"find": "c", "$queryOptions": {"$readPreference": {"mode": "nearest"}}})");
  EXPECT_EQ(Parse(EncodeOpQuery(1, "db.$cmd", query_options.get())).body.ToJson(),
            Doc::FromJson(R"({"find": "c", "$readPreference": {"mode": "nearest"}, "$db": "db"})")
                .ToJson());
  try {
    Parse(EncodeOpQuery(1, "db.$cmd",
                        Doc::FromJson(R"({"$query": {"ping": 1}, "$maxTimeMS": 5})").get()));
    ADD_FAILURE();
  } catch (const MongoError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidOptions);
  }
  ExpectError(EncodeOpQuery(1, "db.$cmd", Doc::FromJson(R"({"$query": 1})").get()),
              ErrorCode::kProtocolError, "must be a document");
}

TEST(OpQueryTest, SecondaryOkFlag) {
  std::string m = EncodeOpQuery(1, "admin.$cmd", Doc::FromJson(R"({"isMaster": 1})").get());
  SetI32(&m, 16, 4);
  EXPECT_EQ(Parse(m).body.ToJson(), Doc::FromJson(R"({"isMaster": 1,
      "$readPreference": {"mode": "secondaryPreferred"}, "$db": "admin"})")
                                        .ToJson());
}

TEST(OpQueryTest, Malformed) {
  ExpectError(EncodeOpQuery(1, "test.coll", kPing.get()), ErrorCode::kProtocolError, "test.coll");
  ExpectError(EncodeOpQuery(1, ".$cmd", kPing.get()), ErrorCode::kProtocolError, "$cmd");
  ExpectError(EncodeOpQuery(1, "admin", kPing.get()), ErrorCode::kProtocolError, "$cmd");
  ExpectError(EncodeOpQuery(1, "admin.$cmdx", kPing.get()), ErrorCode::kProtocolError, "$cmd");
  std::string m = EncodeOpQuery(1, "admin.$cmd", kPing.get());
  // With a valid returnFieldsSelector: accepted. With garbage after it: rejected.
  std::string with_fields = m + Bytes(Doc::FromJson(R"({"x": 1})"));
  SetI32(&with_fields, 0, static_cast<int32_t>(with_fields.size()));
  EXPECT_NO_THROW(Parse(with_fields));
  std::string trailing = with_fields + "z";
  SetI32(&trailing, 0, static_cast<int32_t>(trailing.size()));
  ExpectError(trailing, ErrorCode::kProtocolError, "trailing");
  // Namespace without NUL.
  ExpectError(Raw(kOpQuery, I32(0) + "admin.$cmd"), ErrorCode::kProtocolError,
              "not NUL-terminated");
  ExpectError(Raw(kOpQuery, "\0\0"), ErrorCode::kProtocolError, "too short");
  ExpectError(Raw(kOpQuery, I32(0) + std::string("a.$cmd") + '\0' + I32(0)),
              ErrorCode::kProtocolError, "numberToReturn");
}

TEST(ReplyTest, OpMsgReply) {
  Request req = Parse(EncodeOpMsg(77, kPing.get()));
  Doc reply = Doc::FromJson(R"({"ok": 1.0})");
  std::string m = EncodeReply(req, 500, reply.get());
  EXPECT_EQ(I32At(m, 0), static_cast<int32_t>(m.size()));
  EXPECT_EQ(I32At(m, 4), 500);
  EXPECT_EQ(I32At(m, 8), 77);
  EXPECT_EQ(I32At(m, 12), kOpMsg);
  EXPECT_EQ(I32At(m, 16), 0);
  EXPECT_EQ(m[20], '\0');
  EXPECT_EQ(m.substr(21), Bytes(reply));
}

TEST(ReplyTest, OpReplyForLegacy) {
  Request req = Parse(EncodeOpQuery(78, "admin.$cmd", kPing.get()));
  Doc reply = Doc::FromJson(R"({"ismaster": true, "ok": 1.0})");
  std::string m = EncodeReply(req, 501, reply.get());
  EXPECT_EQ(I32At(m, 0), static_cast<int32_t>(m.size()));
  EXPECT_EQ(I32At(m, 4), 501);
  EXPECT_EQ(I32At(m, 8), 78);
  EXPECT_EQ(I32At(m, 12), kOpReply);
  EXPECT_EQ(I32At(m, 16), 8);                        // AwaitCapable
  EXPECT_EQ(m.substr(20, 8), std::string(8, '\0'));  // cursorId
  EXPECT_EQ(I32At(m, 28), 0);                        // startingFrom
  EXPECT_EQ(I32At(m, 32), 1);                        // numberReturned
  EXPECT_EQ(m.substr(36), Bytes(reply));
}

}  // namespace
}  // namespace wtm::wire
