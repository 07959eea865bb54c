// Client cursors: results handed out in batches through getMore, killed by killCursors or after
// cursorTimeoutMillis of idleness (10 minutes by default, as mongod).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <condition_variable>

#include "common/doc.h"

namespace wtm {

class Node;

// Produces the next document; returns false when there is none right now.
using DocSource = std::function<bool(Doc*)>;

struct ClientCursor {
  int64_t id = 0;
  std::string ns;
  DocSource source;
  std::deque<Doc> pending;       // documents read but not yet returned
  bool tailable = false;
  bool await_data = false;
  bool exhausted = false;
  std::function<void()> on_close;  // release what the cursor pins (the backup cursor)
  std::chrono::steady_clock::time_point last_used;
  bool in_use = false;
};

class CursorManager {
 public:
  explicit CursorManager(Node& node);
  ~CursorManager();

  // Fills up to `batch_size` documents (0 = default: 101 for the first batch) and at most ~16 MiB
  // from the cursor into `batch`; registers it when more may come. Returns the cursor id (0 when
  // exhausted).
  int64_t FirstBatch(std::unique_ptr<ClientCursor> cursor, int64_t batch_size, bson_t* batch);
  // getMore: throws CursorNotFound (43). `max_time_ms` bounds the wait of awaitData cursors.
  int64_t NextBatch(int64_t id, const std::string& ns, int64_t batch_size, int64_t max_time_ms,
                    bson_t* batch);
  // Returns whether the cursor existed.
  bool Kill(int64_t id);
  void KillAll();
  size_t open_count() const;

 private:
  void Fill(ClientCursor& c, int64_t batch_size, bson_t* batch, bool first);
  void ReapLoop();

  Node& node_;
  mutable std::mutex mu_;
  std::map<int64_t, std::unique_ptr<ClientCursor>> cursors_;
  int64_t next_id_;
  std::thread reaper_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace wtm
