#include "server/cursors.h"

#include <random>

#include "common/error.h"
#include "common/log.h"
#include "server/node.h"

namespace wtm {
namespace {
constexpr size_t kMaxBatchBytes = 16 * 1024 * 1024;
}

CursorManager::CursorManager(Node& node) : node_(node) {
  std::random_device rd;
  next_id_ = (static_cast<int64_t>(rd()) << 24 | rd()) & 0x3fffffffffffffLL;
  if (next_id_ < 1000) next_id_ += 1000;
  reaper_ = std::thread([this] { ReapLoop(); });
}

CursorManager::~CursorManager() {
  KillAll();
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
}

void CursorManager::Fill(ClientCursor& c, int64_t batch_size, bson_t* batch, bool first) {
  if (batch_size <= 0) batch_size = first ? 101 : INT64_MAX;
  size_t bytes = 0;
  int64_t n = 0;
  char key[24];
  while (n < batch_size) {
    Doc d;
    if (!c.pending.empty()) {
      d = std::move(c.pending.front());
      c.pending.pop_front();
    } else if (c.exhausted || !c.source(&d)) {
      if (!c.tailable) c.exhausted = true;
      break;
    }
    if (n > 0 && bytes + d.size() > kMaxBatchBytes) {
      c.pending.push_front(std::move(d));
      break;
    }
    bytes += d.size();
    const char* k;
    bson_uint32_to_string(static_cast<uint32_t>(n), &k, key, sizeof key);
    bson_append_document(batch, k, -1, d.get());
    ++n;
  }
  if (c.pending.empty() && !c.tailable && !c.exhausted) {
    // Look ahead so a drained cursor reports id 0 at once.
    Doc d;
    if (c.source(&d)) {
      c.pending.push_back(std::move(d));
    } else {
      c.exhausted = true;
    }
  }
}

int64_t CursorManager::FirstBatch(std::unique_ptr<ClientCursor> cursor, int64_t batch_size,
                                  bson_t* batch) {
  Fill(*cursor, batch_size, batch, true);
  if (cursor->exhausted && cursor->pending.empty()) {
    if (cursor->on_close) cursor->on_close();
    return 0;
  }
  std::lock_guard<std::mutex> l(mu_);
  cursor->id = next_id_++;
  cursor->last_used = std::chrono::steady_clock::now();
  int64_t id = cursor->id;
  cursors_[id] = std::move(cursor);
  return id;
}

int64_t CursorManager::NextBatch(int64_t id, const std::string& ns, int64_t batch_size,
                                 int64_t max_time_ms, bson_t* batch) {
  ClientCursor* c;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = cursors_.find(id);
    if (it == cursors_.end()) {
      throw MongoError(ErrorCode::kCursorNotFound, "cursor id " + std::to_string(id) + " not found");
    }
    c = it->second.get();
    if (c->ns != ns) {
      throw MongoError(ErrorCode::kUnauthorized,
                       "Requested getMore on namespace '" + ns + "', but cursor belongs to a different namespace " + c->ns);
    }
    if (c->in_use) {
      throw MongoError(ErrorCode::kCursorNotFound, "cursor id " + std::to_string(id) + " is in use");
    }
    c->in_use = true;
  }
  uint64_t gen = node_.OplogGeneration();
  Fill(*c, batch_size, batch, false);
  if (c->tailable && c->await_data && bson_count_keys(batch) == 0) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(max_time_ms > 0 ? max_time_ms : 1000);
    while (bson_count_keys(batch) == 0 && std::chrono::steady_clock::now() < deadline) {
      // Wake on the next oplog change; re-check now and then for other capped collections.
      node_.WaitForOplogGeneration(gen, std::min(deadline, std::chrono::steady_clock::now() +
                                                               std::chrono::milliseconds(200)));
      gen = node_.OplogGeneration();
      Fill(*c, batch_size, batch, false);
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  c->in_use = false;
  c->last_used = std::chrono::steady_clock::now();
  if (c->exhausted && c->pending.empty()) {
    if (c->on_close) c->on_close();
    cursors_.erase(id);
    return 0;
  }
  return id;
}

bool CursorManager::Kill(int64_t id) {
  std::unique_ptr<ClientCursor> c;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = cursors_.find(id);
    if (it == cursors_.end()) return false;
    c = std::move(it->second);
    cursors_.erase(it);
  }
  if (c->on_close) c->on_close();
  return true;
}

void CursorManager::KillAll() {
  std::map<int64_t, std::unique_ptr<ClientCursor>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    all.swap(cursors_);
  }
  for (auto& [id, c] : all) {
    if (c->on_close) c->on_close();
  }
}

size_t CursorManager::open_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return cursors_.size();
}

void CursorManager::ReapLoop() {
  SetThreadName("clientcursormon");
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    cv_.wait_for(l, std::chrono::seconds(1));
    if (stopping_) break;
    auto timeout = std::chrono::milliseconds(ParameterInt(node_.options(), "cursorTimeoutMillis", 600000));
    auto now = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<ClientCursor>> dead;
    for (auto it = cursors_.begin(); it != cursors_.end();) {
      if (!it->second->in_use && now - it->second->last_used > timeout) {
        Log(Severity::kInfo, "QUERY", "Cursor timed out",
            "{\"cursorId\":" + std::to_string(it->first) + ",\"ns\":" + JsonQuote(it->second->ns) + "}");
        dead.push_back(std::move(it->second));
        it = cursors_.erase(it);
      } else {
        ++it;
      }
    }
    l.unlock();
    for (auto& c : dead) {
      if (c->on_close) c->on_close();
    }
    l.lock();
  }
}

}  // namespace wtm
