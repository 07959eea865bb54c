#include "wire/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"

namespace wtm::wire {
namespace {

using Clock = std::chrono::steady_clock;

// A blocking client socket with a 10 s receive timeout.
class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error(std::string("connect: ") + strerror(errno));
    }
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Client() { close(fd_); }

  void Send(const std::string& m) {
    ASSERT_EQ(send(fd_, m.data(), m.size(), MSG_NOSIGNAL), static_cast<ssize_t>(m.size()));
  }
  // One whole message, or nullopt on EOF / timeout.
  std::optional<std::string> Recv() {
    std::string m(16, '\0');
    if (!ReadFull(m.data(), 16)) return std::nullopt;
    int32_t len;
    std::memcpy(&len, m.data(), 4);
    if (len < 16 || len > kMaxMessageSizeBytes) return std::nullopt;
    m.resize(static_cast<size_t>(len));
    if (!ReadFull(m.data() + 16, m.size() - 16)) return std::nullopt;
    return m;
  }
  // True when the server closed the connection rather than replying or timing out.
  bool ClosedByPeer() {
    char c;
    ssize_t r = recv(fd_, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);  // RST when our bytes were left unread
  }

 private:
  bool ReadFull(char* p, size_t n) {
    while (n > 0) {
      ssize_t r = recv(fd_, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  int fd_;
};

int32_t I32At(const std::string& m, size_t off) {
  int32_t v;
  std::memcpy(&v, m.data() + off, 4);
  return v;
}

// The document of an OP_MSG or OP_REPLY reply.
Doc ReplyDoc(const std::string& m) {
  size_t off = I32At(m, 12) == kOpMsg ? 21 : 36;
  return Doc::FromData(reinterpret_cast<const uint8_t*>(m.data()) + off, m.size() - off);
}

std::string Field(const Doc& d, const char* key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, d.get(), key)) return "<missing>";
  if (BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, nullptr);
  if (BSON_ITER_HOLDS_INT32(&it)) return std::to_string(bson_iter_int32(&it));
  if (BSON_ITER_HOLDS_INT64(&it)) return std::to_string(bson_iter_int64(&it));
  if (BSON_ITER_HOLDS_DOUBLE(&it)) return std::to_string(static_cast<int>(bson_iter_double(&it)));
  return "<other>";
}

// Echoes {ok: 1, db, conn, remote, body}; {fail: 1} throws MongoError, {crash: 1} a
// std::exception, {sleepMs: n} sleeps first.
Doc Echo(const Request& r, const Connection& c) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, r.body.get(), "fail")) {
    throw MongoError(ErrorCode::kBadValue, "asked to fail");
  }
  if (bson_iter_init_find(&it, r.body.get(), "crash")) throw std::out_of_range("boom");
  if (bson_iter_init_find(&it, r.body.get(), "sleepMs")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(bson_iter_as_int64(&it)));
  }
  Doc d;
  BSON_APPEND_DOUBLE(d.mut(), "ok", 1.0);
  BSON_APPEND_UTF8(d.mut(), "db", r.db.c_str());
  BSON_APPEND_INT64(d.mut(), "conn", c.id);
  BSON_APPEND_UTF8(d.mut(), "remote", c.remote.c_str());
  BSON_APPEND_DOCUMENT(d.mut(), "body", r.body.get());
  return d;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>("127.0.0.1", 0, Echo);
    server_->Start();
    ASSERT_GT(server_->port(), 0);
  }
  std::string Ping(Client& c, int32_t id) {
    c.Send(EncodeOpMsg(id, Doc::FromJson(R"({"ping": 1, "$db": "admin"})").get()));
    auto r = c.Recv();
    if (!r) return "<no reply>";
    EXPECT_EQ(I32At(*r, 8), id);
    return Field(ReplyDoc(*r), "ok");
  }
  bool WaitForConnections(size_t n) {
    for (auto end = Clock::now() + std::chrono::seconds(5); Clock::now() < end;) {
      if (server_->open_connections() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, OpMsgEcho) {
  Client c(server_->port());
  Doc body = Doc::FromJson(R"({"insert": "c", "$db": "test"})");
  std::vector<DocSequence> seqs(1);
  seqs[0].identifier = "documents";
  seqs[0].docs.push_back(Doc::FromJson(R"({"a": 1})"));
  c.Send(EncodeOpMsg(11, body.get(), seqs));
  auto r = c.Recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(I32At(*r, 8), 11);
  EXPECT_EQ(I32At(*r, 12), kOpMsg);
  Doc d = ReplyDoc(*r);
  EXPECT_EQ(Field(d, "ok"), "1");
  EXPECT_EQ(Field(d, "db"), "test");
  EXPECT_EQ(Field(d, "conn"), "1");
  EXPECT_EQ(Field(d, "remote").rfind("127.0.0.1:", 0), 0u) << Field(d, "remote");
  EXPECT_NE(d.ToJson().find(R"("documents" : [ { "a" : 1 } ])"), std::string::npos) << d.ToJson();
  EXPECT_EQ(server_->open_connections(), 1u);
}

TEST_F(ServerTest, OpQueryGetsOpReply) {
  Client c(server_->port());
  c.Send(EncodeOpQuery(12, "admin.$cmd", Doc::FromJson(R"({"isMaster": 1})").get()));
  auto r = c.Recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(I32At(*r, 8), 12);
  EXPECT_EQ(I32At(*r, 12), kOpReply);
  EXPECT_EQ(I32At(*r, 16), 8);
  EXPECT_EQ(I32At(*r, 32), 1);
  Doc d = ReplyDoc(*r);
  EXPECT_EQ(Field(d, "db"), "admin");
  EXPECT_EQ(Ping(c, 13), "1");  // then OP_MSG on the same connection
}

TEST_F(ServerTest, HandlerErrors) {
  Client c(server_->port());
  c.Send(EncodeOpMsg(1, Doc::FromJson(R"({"fail": 1, "$db": "a"})").get()));
  auto r = c.Recv();
  ASSERT_TRUE(r);
  Doc d = ReplyDoc(*r);
  EXPECT_EQ(Field(d, "ok"), "0");
  EXPECT_EQ(Field(d, "code"), "2");
  EXPECT_EQ(Field(d, "codeName"), "BadValue");
  EXPECT_EQ(Field(d, "errmsg"), "asked to fail");
  c.Send(EncodeOpQuery(2, "a.$cmd", Doc::FromJson(R"({"crash": 1})").get()));
  r = c.Recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(I32At(*r, 12), kOpReply);
  d = ReplyDoc(*r);
  EXPECT_EQ(Field(d, "code"), "1");
  EXPECT_EQ(Field(d, "codeName"), "InternalError");
  EXPECT_EQ(Field(d, "errmsg"), "boom");
  EXPECT_EQ(Ping(c, 3), "1");
}

TEST_F(ServerTest, MoreToComeGetsNoReply) {
  Client c(server_->port());
  c.Send(EncodeOpMsg(1, Doc::FromJson(R"({"ping": 1, "$db": "a"})").get(), kMoreToCome));
  c.Send(EncodeOpMsg(2, Doc::FromJson(R"({"fail": 1, "$db": "a"})").get(), kMoreToCome));
  EXPECT_EQ(Ping(c, 3), "1");  // the first reply read answers request 3
}

TEST_F(ServerTest, ParseErrorIsAnsweredAndConnectionKept) {
  Client c(server_->port());
  c.Send(EncodeOpMsg(5, Doc::FromJson(R"({"ping": 1})").get()));  // no $db
  auto r = c.Recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(I32At(*r, 8), 5);
  Doc d = ReplyDoc(*r);
  EXPECT_EQ(Field(d, "ok"), "0");
  EXPECT_EQ(Field(d, "code"), "17");
  EXPECT_EQ(Field(d, "codeName"), "ProtocolError");
  // OP_COMPRESSED is refused with an error reply too.
  std::string comp(25, '\0');
  int32_t h[4] = {25, 6, 0, kOpCompressed};
  std::memcpy(comp.data(), h, 16);
  c.Send(comp);
  r = c.Recv();
  ASSERT_TRUE(r);
  EXPECT_NE(Field(ReplyDoc(*r), "errmsg").find("OP_COMPRESSED"), std::string::npos);
  EXPECT_EQ(Ping(c, 7), "1");
}

TEST_F(ServerTest, GarbageClosesOnlyThatConnection) {
  Client good(server_->port());
  EXPECT_EQ(Ping(good, 1), "1");
  {
    Client bad(server_->port());
    bad.Send(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));  // length "GET " is > 48 MB
    EXPECT_TRUE(bad.ClosedByPeer());
  }
  {
    Client bad(server_->port());
    std::string tiny(16, '\0');
    int32_t h[4] = {5, 1, 0, kOpMsg};
    std::memcpy(tiny.data(), h, 16);
    bad.Send(tiny);
    EXPECT_TRUE(bad.ClosedByPeer());
  }
  {
    // Truncated message, then the client goes away.
    Client bad(server_->port());
    std::string m = EncodeOpMsg(1, Doc::FromJson(R"({"ping": 1, "$db": "a"})").get());
    bad.Send(m.substr(0, m.size() - 3));
  }
  {
    // moreToCome with a malformed body: no reply possible, so the connection is closed.
    Client bad(server_->port());
    bad.Send(EncodeOpMsg(1, Doc::FromJson(R"({"ping": 1})").get(), kMoreToCome));
    EXPECT_TRUE(bad.ClosedByPeer());
  }
  EXPECT_EQ(Ping(good, 2), "1");
  Client fresh(server_->port());
  EXPECT_EQ(Ping(fresh, 3), "1");
  EXPECT_TRUE(WaitForConnections(2));
}

TEST_F(ServerTest, SlowHandlerBlocksOnlyItsConnection) {
  Client slow(server_->port());
  Client fast(server_->port());
  auto t0 = Clock::now();
  slow.Send(EncodeOpMsg(1, Doc::FromJson(R"({"sleepMs": 1000, "$db": "a"})").get()));
  EXPECT_EQ(Ping(fast, 2), "1");
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(800));
  auto r = slow.Recv();
  ASSERT_TRUE(r);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(1000));
}

TEST_F(ServerTest, ManyConcurrentClients) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client c(server_->port());
      for (int i = 0; i < 50; ++i) {
        if (Ping(c, t * 1000 + i) == "1") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
  EXPECT_TRUE(WaitForConnections(0));
}

TEST_F(ServerTest, StopWithOpenConnectionsIsPrompt) {
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<Client>(server_->port()));
    EXPECT_EQ(Ping(*clients.back(), i), "1");
  }
  Client partial(server_->port());  // mid-message when the server stops
  partial.Send(std::string("\x40\0\0\0", 4));
  EXPECT_TRUE(WaitForConnections(6));
  auto t0 = Clock::now();
  server_->Stop();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(1));
  EXPECT_EQ(server_->open_connections(), 0u);
  for (auto& c : clients) EXPECT_TRUE(c->ClosedByPeer());
  server_->Stop();                                            // idempotent
  EXPECT_THROW(Client(server_->port()), std::runtime_error);  // no longer listening
}

TEST(ServerSetupTest, AddressInUse) {
  Server a("127.0.0.1", 0, Echo);
  a.Start();
  Server b("127.0.0.1", a.port(), Echo);
  try {
    b.Start();
    ADD_FAILURE() << "second bind succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "Failed to set up listener: 127.0.0.1:" +
                                         std::to_string(a.port()) + ": Address already in use");
  }
  EXPECT_THROW(a.Start(), std::logic_error);
}

TEST(ServerSetupTest, BindListAndHostNames) {
  Server s(" localhost , 127.0.0.1,", 0, Echo);  // localhost resolves to 127.0.0.1: bound once
  s.Start();
  Client c(s.port());
  c.Send(EncodeOpMsg(1, Doc::FromJson(R"({"ping": 1, "$db": "a"})").get()));
  EXPECT_TRUE(c.Recv());
  EXPECT_THROW(Server("no-such-host.invalid", 0, Echo).Start(), std::runtime_error);
  EXPECT_THROW(Server(" , ", 0, Echo).Start(), std::runtime_error);
}

TEST(ServerSetupTest, StopWithoutStart) {
  Server s("127.0.0.1", 0, Echo);
  s.Stop();
  s.Stop();
}

}  // namespace
}  // namespace wtm::wire
