// Percona Server-style encryption key files (--encryptionKeyFile) and key check values.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace wtm::storage {

// A 256-bit data-at-rest master key.
using EncryptionKey = std::array<uint8_t, 32>;

// Reads a Percona-style key file: a regular file with mode 0600 or 0400 (any group/other
// permission bit set is refused, as mongod does) holding the base64 encoding of exactly 32
// bytes, optionally surrounded by whitespace. Throws std::runtime_error with one line naming
// the file and the problem, e.g.
//   "encryption key file /x/key: permissions are too open (0644); it must be readable by the
//    owner only (chmod 600)"
//   "encryption key file /x/key: cannot open: No such file or directory"
//   "encryption key file /x/key: not a base64-encoded 32-byte key (decoded 20 bytes)"
EncryptionKey LoadKeyFile(const std::string& path);

// Identifies a key without revealing it: lowercase hex of the first 8 bytes of
// HMAC-SHA256(key, "psmdb key check value") (16 hex digits). Stable across runs.
std::string KeyCheckValue(const EncryptionKey& key);

}  // namespace wtm::storage
