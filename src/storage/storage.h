// The backup storage: a flat namespace of immutable objects addressed by '/'-separated names
// relative to a root ("2026-01-02T03:04:05Z/rs0/collection-7.wt.zst"). Modelled on pgBackRest's
// storage interface (a small required set every driver implements) and PBM's storage layout.
//
// Drivers: filesystem (NewFilesystemStorage), s3 (s3_storage.h). FaultyStorage (faulty_storage.h)
// wraps any driver to inject failures in tests.
//
// Errors: every operation throws pbm::Error; the message names the operation, the storage, the
// object and the cause. Kinds: kNotFound (object missing where one is required), kInvalidArgument
// (a bad name or config), kIo (the medium failed; "storage is full" when it ran out of space).
//
// Thread safety: a Storage may be used from many threads at once. A Reader or Writer belongs to
// one thread at a time. Readers and Writers must not outlive the Storage that made them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pbm::storage {

struct ObjectInfo {
  std::string name;        // relative to the storage root, '/' separated
  int64_t size = 0;        // bytes
  int64_t mtime_unix = 0;  // last modification, seconds since the epoch
};

// A sequential read of one object (or of a range of it).
class Reader {
 public:
  virtual ~Reader() = default;
  // Reads up to n bytes into buf; returns how many were read, 0 only at the end of the object
  // (or range). Throws kIo on a failed read.
  virtual size_t Read(void* buf, size_t n) = 0;
};

// A write of one whole object. Nothing is visible under the object's name until Commit.
class Writer {
 public:
  virtual ~Writer() = default;
  // Appends n bytes. Throws kIo (e.g. "storage is full"); after a throw the Writer is failed:
  // further Write/Commit calls throw, and destroying it removes what was written.
  virtual void Write(const void* data, size_t n) = 0;
  // Makes the object visible under its name atomically, replacing any previous object of that
  // name (fs: fsync file, rename from a temp name, fsync dir). Until Commit, nothing is visible
  // under the name; a Writer destroyed without Commit leaves nothing behind. Call at most once.
  // Throws kIo; then the object was not published, except (fs) when only the final directory
  // fsync failed: the complete object is then visible but may not survive a crash.
  virtual void Commit() = 0;
};

// Object names may not contain this; drivers use it to name the data of uncommitted writes,
// which List never shows.
inline constexpr std::string_view kTempMarker = "~pbmtmp";

class Storage {
 public:
  virtual ~Storage() = default;

  // Where the storage is, for messages and logs: "filesystem:/backups". Never credentials.
  virtual std::string Describe() const = 0;

  // Objects whose name starts with `prefix` (a plain string prefix, not only whole directories:
  // "2026-01-02T" matches "2026-01-02T03:04:05Z.pbm.json" and "2026-01-02T03:04:05Z/rs0/a.wt"),
  // recursively, sorted by name (bytewise). "" lists everything. Uncommitted writes are excluded.
  // Throws kInvalidArgument for a prefix with ".." or "." components or a leading '/'.
  virtual std::vector<ObjectInfo> List(const std::string& prefix) const = 0;

  // The object's info, or nullopt if there is no such object.
  virtual std::optional<ObjectInfo> Stat(const std::string& name) const = 0;

  // Reads the whole object. Throws kNotFound if it does not exist.
  virtual std::unique_ptr<Reader> Open(const std::string& name) const = 0;

  // Reads bytes [offset, offset + length) of the object, fewer if it ends sooner.
  // Throws kNotFound if it does not exist, kInvalidArgument if offset < 0, length < 0 or
  // offset > size.
  virtual std::unique_ptr<Reader> OpenRange(const std::string& name, int64_t offset,
                                            int64_t length) const = 0;

  // Starts writing an object; it replaces any object of that name on Commit.
  virtual std::unique_ptr<Writer> Create(const std::string& name) = 0;

  // Removes the object; a missing object is no error.
  virtual void Remove(const std::string& name) = 0;

  // Removes every object whose name starts with `prefix` (same matching as List), and the
  // leftovers of uncommitted writes under it. A concurrent Writer under the prefix may then fail
  // its Commit. RemovePrefix("") empties the storage.
  virtual void RemovePrefix(const std::string& prefix) = 0;

  // Convenience for whole small objects (metadata, status files).
  // ReadAll throws like Open; WriteAll like Create/Write/Commit.
  std::string ReadAll(const std::string& name) const;
  void WriteAll(const std::string& name, std::string_view data);
};

// Throws kInvalidArgument unless `name` is a valid object name: non-empty, relative (no leading
// '/'), no empty, "." or ".." components, no NUL byte, no kTempMarker. `what` names the operation
// for the message ("create", "open").
void ValidateObjectName(std::string_view what, std::string_view name);

// Throws kInvalidArgument unless `prefix` is a valid List/RemovePrefix prefix: like an object
// name, except that it may be empty and its last component may be empty (a trailing '/').
void ValidatePrefix(std::string_view what, std::string_view prefix);

// The filesystem driver. Objects are regular files under `root` (files 0600, directories 0700,
// subject to the process umask only in that it can remove bits), written to a temp name in the
// object's directory, fsynced, renamed into place and the directory fsynced. `root` must exist or
// is created (0700, with missing parents). Directories left empty by Remove/RemovePrefix are
// removed (never the root). Symlinks and other non-regular files under the root are not objects
// and are never followed by List. Throws kIo if the root cannot be created or is not a
// directory, kInvalidArgument if it is empty.
std::unique_ptr<Storage> NewFilesystemStorage(const std::string& root);

// A storage from the config's `storage:` section, in PBM's layout:
//   {"type": "filesystem", "filesystem": {"path": "/backups"}}
// The config is YAML on the CLI and BSON in the cluster; both convert to JSON, so this takes
// JSON. {"type": "s3", "s3": {...}} is described in s3_storage.h. Throws kInvalidArgument for a
// missing or unknown type or a missing path, and "storage type azure is not supported yet" for
// the PBM types we do not implement yet.
std::unique_ptr<Storage> NewStorageFromConfig(const nlohmann::json& storage_section);
// The same for documents read from the cluster (ordered JSON keeps BSON field order).
std::unique_ptr<Storage> NewStorageFromConfig(const nlohmann::ordered_json& storage_section);

// A copy of a whole config document (with a "storage" section) for display, with the storage
// secrets (s3.credentials.*, s3.serverSideEncryption.sseCustomerKey) replaced by "***", as
// `pbm config` shows them in PBM.
nlohmann::ordered_json MaskStorageSecrets(const nlohmann::ordered_json& config);

}  // namespace pbm::storage
