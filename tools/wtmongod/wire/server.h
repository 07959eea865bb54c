// TCP server speaking the MongoDB wire protocol: one thread per connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/doc.h"
#include "wire/message.h"

namespace wtm::wire {

struct Connection {
  int64_t id;          // 1, 2, ... per server
  std::string remote;  // "127.0.0.1:5555" or "[::1]:5555"
  // State the handler keeps for this connection (who authenticated, a SASL conversation); only
  // the connection's own thread touches it, and it goes when the connection closes.
  mutable std::shared_ptr<void> session;
};

// Handles one request; returns the reply document (ignored when the request has more_to_come).
// May throw MongoError (replied as {ok: 0, errmsg, code, codeName}) or any std::exception
// (replied with code 1 InternalError). Called concurrently from connection threads.
using Handler = std::function<wtm::Doc(const Request&, const Connection&)>;

class Server {
 public:
  // bind_ips: comma-separated as mongod's --bind_ip ("localhost", "127.0.0.1", "0.0.0.0", "::1",
  // host names). Literal IPv6 addresses listen on IPv6; everything else resolves to IPv4, as
  // mongod does without --ipv6. Port 0 picks a free port (shared by all bind addresses).
  Server(std::string bind_ips, int port, Handler handler);
  ~Server();  // Stop()

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens (SO_REUSEADDR) on every address, then accepts on a background thread.
  // Throws std::runtime_error("Failed to set up listener: <addr>:<port>: <reason>"); throws
  // std::logic_error when called twice.
  void Start();
  // Stops accepting, shuts down every connection and joins all threads; a handler that is
  // running is waited for. Idempotent.
  void Stop();
  // The bound port (the chosen one when constructed with port 0); valid after Start().
  int port() const { return port_; }
  // Connections accepted and not yet closed.
  size_t open_connections() const;

 private:
  struct Conn {
    Connection info;
    int fd = -1;  // guarded by mu_; closed and set to -1 by the connection thread
    std::thread thread;
    bool done = false;  // guarded by mu_
  };

  void AcceptLoop();
  void Serve(Conn* conn);
  // Joins the threads of closed connections; requires mu_ not held.
  void ReapFinished();

  std::string bind_ips_;
  int port_;
  Handler handler_;

  std::vector<int> listen_fds_;
  int wake_pipe_[2] = {-1, -1};
  std::thread accept_thread_;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<int32_t> next_request_id_{1};
  int64_t next_conn_id_ = 1;

  mutable std::mutex mu_;
  std::mutex stop_mu_;                      // serialises Stop()
  std::list<std::unique_ptr<Conn>> conns_;  // guarded by mu_
};

}  // namespace wtm::wire
