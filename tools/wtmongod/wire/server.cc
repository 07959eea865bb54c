#include "wire/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "common/error.h"

namespace wtm::wire {
namespace {

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// "ip:port", with IPv6 addresses in brackets.
std::string AddrToString(const sockaddr* sa) {
  char ip[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unknown";
}

// Reads exactly n bytes; false on EOF or error.
bool ReadFull(int fd, uint8_t* buf, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, buf, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool SendAll(int fd, const std::string& data) {
  const char* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

Doc ErrorReply(int code, const std::string& errmsg) {
  std::string name = CodeName(static_cast<ErrorCode>(code));
  if (name == "Location") name += std::to_string(code);
  Doc d;
  BSON_APPEND_DOUBLE(d.mut(), "ok", 0.0);
  BSON_APPEND_UTF8(d.mut(), "errmsg", errmsg.c_str());
  BSON_APPEND_INT32(d.mut(), "code", code);
  BSON_APPEND_UTF8(d.mut(), "codeName", name.c_str());
  return d;
}

}  // namespace

Server::Server(std::string bind_ips, int port, Handler handler)
    : bind_ips_(std::move(bind_ips)), port_(port), handler_(std::move(handler)) {}

Server::~Server() { Stop(); }

void Server::Start() {
  if (started_) throw std::logic_error("wire::Server::Start called twice");
  std::vector<std::string> hosts;
  size_t start = 0;
  while (start <= bind_ips_.size()) {
    size_t comma = bind_ips_.find(',', start);
    if (comma == std::string::npos) comma = bind_ips_.size();
    std::string h = Trim(bind_ips_.substr(start, comma - start));
    if (!h.empty()) hosts.push_back(h);
    start = comma + 1;
  }
  if (hosts.empty()) throw std::runtime_error("Failed to set up listener: no bind_ip given");

  auto fail = [&](const std::string& what) {
    for (int fd : listen_fds_) close(fd);
    listen_fds_.clear();
    throw std::runtime_error("Failed to set up listener: " + what);
  };
  std::vector<std::string> bound;  // addresses already listening, to skip duplicates
  for (const std::string& host : hosts) {
    addrinfo hints{};
    hints.ai_family = host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port_);
    int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) fail(host + ":" + service + ": " + gai_strerror(rc));
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      std::string addr = AddrToString(ai->ai_addr);
      bool dup = false;
      for (const std::string& b : bound) dup = dup || b == addr;
      if (dup) continue;
      int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      int one = 1;
      bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0;
      if (ok && ai->ai_family == AF_INET6) {
        ok = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0;
      }
      ok = ok && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0;
      if (!ok) {
        int err = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        fail(addr + ": " + std::strerror(err));
      }
      listen_fds_.push_back(fd);
      sockaddr_storage ss{};
      socklen_t sl = sizeof ss;
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
      bound.push_back(AddrToString(reinterpret_cast<sockaddr*>(&ss)));
      if (port_ == 0) {  // later addresses share the port chosen for the first
        port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
        service = std::to_string(port_);
        for (addrinfo* a = ai->ai_next; a; a = a->ai_next) {
          if (a->ai_family == AF_INET6) {
            reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_port = htons(port_);
          } else if (a->ai_family == AF_INET) {
            reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_port = htons(port_);
          }
        }
      }
    }
    freeaddrinfo(res);
  }
  if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) fail(std::string("pipe: ") + strerror(errno));
  started_ = true;
  accept_thread_ = std::thread(&Server::AcceptLoop, this);
}

void Server::AcceptLoop() {
  std::vector<pollfd> pfds;
  for (int fd : listen_fds_) pfds.push_back({fd, POLLIN, 0});
  pfds.push_back({wake_pipe_[0], POLLIN, 0});
  while (!stopping_.load()) {
    int n = poll(pfds.data(), pfds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (pfds.back().revents != 0) return;  // Stop()
    ReapFinished();
    for (size_t i = 0; i + 1 < pfds.size(); ++i) {
      if ((pfds[i].revents & POLLIN) == 0) continue;
      sockaddr_storage ss{};
      socklen_t sl = sizeof ss;
      int fd = accept4(pfds[i].fd, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_CLOEXEC);
      if (fd < 0) {
        // EMFILE and the like: back off instead of spinning.
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_.load()) {
        close(fd);
        return;
      }
      auto conn = std::make_unique<Conn>();
      conn->info.id = next_conn_id_++;
      conn->info.remote = AddrToString(reinterpret_cast<sockaddr*>(&ss));
      conn->fd = fd;
      Conn* raw = conn.get();
      conns_.push_back(std::move(conn));
      raw->thread = std::thread(&Server::Serve, this, raw);
    }
  }
}

void Server::Serve(Conn* conn) {
  const int fd = conn->fd;  // stays open until this thread closes it below
  std::vector<uint8_t> buf;
  while (!stopping_.load()) {
    uint8_t head[kHeaderSize];
    if (!ReadFull(fd, head, sizeof head)) break;
    MsgHeader h;
    try {
      h = ParseHeader(head);
    } catch (const MongoError&) {
      break;  // cannot tell where the message ends: drop the connection
    }
    buf.resize(static_cast<size_t>(h.length));
    std::memcpy(buf.data(), head, kHeaderSize);
    if (!ReadFull(fd, buf.data() + kHeaderSize, buf.size() - kHeaderSize)) break;

    Request req;
    Doc reply;
    bool parsed = false;
    try {
      req = ParseRequest(buf.data(), buf.size());
      parsed = true;
    } catch (const MongoError& e) {
      // A client that sent moreToCome will not read a reply: close instead.
      if (h.op_code == kOpMsg && buf.size() >= kHeaderSize + 4 &&
          (buf[kHeaderSize] & kMoreToCome)) {
        break;
      }
      req.header = h;
      req.legacy = h.op_code == kOpQuery;
      reply = ErrorReply(e.numeric(), e.what());
    }
    if (parsed) {
      try {
        reply = handler_(req, conn->info);
      } catch (const MongoError& e) {
        reply = ErrorReply(e.numeric(), e.what());
      } catch (const std::exception& e) {
        reply = ErrorReply(static_cast<int>(ErrorCode::kInternalError), e.what());
      } catch (...) {
        reply = ErrorReply(static_cast<int>(ErrorCode::kInternalError), "unknown exception");
      }
      if (req.more_to_come()) continue;
    }
    if (!SendAll(fd, EncodeReply(req, next_request_id_.fetch_add(1), reply.get()))) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  close(conn->fd);
  conn->fd = -1;
  conn->done = true;
}

void Server::ReapFinished() {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      auto next = std::next(it);
      if ((*it)->done) finished.splice(finished.end(), conns_, it);
      it = next;
    }
  }
  for (auto& c : finished) c->thread.join();
}

void Server::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  if (stopping_.exchange(true) || !started_) return;
  if (write(wake_pipe_[1], "x", 1) < 0) {
    // The pipe is empty and non-blocking, so this cannot fail; poll also sees stopping_.
  }
  accept_thread_.join();
  for (int fd : listen_fds_) close(fd);
  listen_fds_.clear();
  std::list<std::unique_ptr<Conn>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_) {
      if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    }
    all.swap(conns_);
  }
  for (auto& c : all) c->thread.join();
  close(wake_pipe_[0]);
  close(wake_pipe_[1]);
  wake_pipe_[0] = wake_pipe_[1] = -1;
}

size_t Server::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& c : conns_) n += c->done ? 0 : 1;
  return n;
}

}  // namespace wtm::wire
