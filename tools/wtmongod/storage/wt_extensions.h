// WiredTiger extensions for wtmongod: the "zstd" block/log compressor and the "percona"
// data-at-rest encryptor (AES-256-CBC or AES-256-GCM, as Percona Server for MongoDB offers).
//
// Both are registered by wtm_extensions_init, which WiredTiger finds in the running executable
// through ExtensionsConfig()'s "local" entry (the executable must export its symbols:
// ENABLE_EXPORTS / -rdynamic).
#pragma once

#include <wiredtiger.h>

#include <optional>
#include <string>
#include <string_view>

#include "storage/key_file.h"

namespace wtm::storage {

enum class CipherMode { kCbc, kGcm };

// "AES256-CBC" or "AES256-GCM", as in --encryptionCipherMode.
const char* CipherModeName(CipherMode mode);
// Parses "AES256-CBC" / "AES256-GCM"; nullopt for anything else.
std::optional<CipherMode> ParseCipherMode(std::string_view name);

// Process-wide key and cipher used by the "percona" encryptor of every connection. Call before
// wiredtiger_open when encryption is enabled, and ClearEncryption() (which wipes the key) when
// it is not. Thread-safe; blocks in flight keep the settings they started with.
void SetEncryption(const EncryptionKey& key, CipherMode mode);
void ClearEncryption();

// The last encryption or decryption failure as one line, or "" if none since the last
// ClearLastEncryptionError(), e.g.
//   "the data files were encrypted with a different key (key check value 1a2b3c4d), not the
//    key in the configured key file (0011223344556677)"
//   "the data files were encrypted with AES256-GCM, but encryptionCipherMode is AES256-CBC"
//   "the data files are encrypted; start with --enableEncryption and the key file they were
//    encrypted with"
std::string LastEncryptionError();
void ClearLastEncryptionError();

// The wiredtiger_open fragment that loads Debian's snappy and zlib compressors and our own
// extensions, with zstd at `zstd_level` (MongoDB's default is 6):
//   extensions=[/usr/lib/x86_64-linux-gnu/libwiredtiger_snappy.so,
//               /usr/lib/x86_64-linux-gnu/libwiredtiger_zlib.so,
//               local={entry=wtm_extensions_init,config=(zstd_compression_level=6)}]
std::string ExtensionsConfig(int zstd_level = 6);

// wiredtiger_open fragment: "encryption=(name=percona,keyid=system)" when enabled, else "".
// It encrypts the metadata (WiredTiger.wt), the lookaside file, every table and the journal.
// The turtle file stays plaintext, and its copy of WiredTiger.wt's config says
// encryption=(name=) even then, so it cannot tell; see DetectDbpathEncryption.
std::string ConnectionEncryptionConfig(bool enabled);
// WT_SESSION::create fragment for tables and indexes: "encryption=(name=percona,keyid=system)"
// when enabled, else "". Optional in WiredTiger 3.2.1: a table created without it on an
// encrypted connection inherits the connection's encryptor (tested); passing it records the
// encryptor in the table's own metadata.
std::string TableEncryptionConfig(bool enabled);

// What an existing dbpath says about its encryption, read without opening it: the page
// headers of WiredTiger.wt are plaintext and flag encrypted pages, and each of our encrypted
// blocks carries the cipher and a key check prefix. WiredTiger.basecfg (only written without
// config_base=false) is the fallback for metadata that was never checkpointed.
struct DbpathEncryption {
  bool encrypted = false;
  // For an encrypted dbpath, from the first encrypted block of WiredTiger.wt (if readable).
  std::optional<CipherMode> cipher;
  std::string key_check;  // first 8 hex digits of the key check value, or ""
  // False when nothing on disk tells (no checkpointed metadata and no WiredTiger.basecfg);
  // `encrypted` is then false.
  bool certain = true;
};
// nullopt if `dbpath` is not a WiredTiger dbpath (no WiredTiger.turtle).
std::optional<DbpathEncryption> DetectDbpathEncryption(const std::string& dbpath);

// Checks, before wiredtiger_open touches anything, that `dbpath` can be opened with encryption
// `enabled` and the key/cipher set by SetEncryption. Returns "" when it can (or when the dbpath
// is new), else one line saying why not (also stored as LastEncryptionError()), e.g.
//   "the data files in /data/db are not encrypted, but --enableEncryption is set; ..."
std::string CheckDbpathEncryption(const std::string& dbpath, bool enabled);

}  // namespace wtm::storage

// Registers the "zstd" compressor and the "percona" encryptor on `conn`. Called by WiredTiger
// while loading extensions; `config` may carry config=(zstd_compression_level=N).
extern "C" int wtm_extensions_init(WT_CONNECTION* conn, WT_CONFIG_ARG* config);
