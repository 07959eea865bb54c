// Client-side encryption of backup objects: AES-256-GCM over fixed-size chunks, so that objects
// stream through with bounded memory and a stolen storage bucket yields no data. Applied after
// compression on the way to storage and before decompression on the way back.
//
// Object layout (all integers little-endian):
//   header  "PBMENC1\n" (8) | chunk size u32 (4) | salt (16) | nonce prefix (7)      = 35 bytes
//   chunks  ciphertext of `chunk size` plaintext bytes (the last chunk: 0..chunk size) | tag (16)
// The object key is HKDF-SHA256(master key, salt, "pbm backup object v1"), fresh per object, and
// chunk i is sealed with the nonce prefix | i (u32 big-endian) | last (1 byte: 1 on the final
// chunk, else 0) and the header as additional data: the online authenticated encryption scheme
// "STREAM" (Hoang, Reyhanitabar, Rogaway, Vizár, 2015), the layout Tink's streaming AEAD uses. So
// a changed, reordered, truncated or extended object, or one read with another key, fails to
// decrypt (kCorrupt), and no chunk's plaintext is returned before its tag checked.
//
// Written here with OpenSSL's AES-GCM and HKDF because no packaged library offers a streaming
// AEAD file format (libsodium's secretstream is XChaCha20 only, Tink is not in Debian).
//
// Keys are 32 bytes, kept in files (or environment variables) as base64, like mongod's
// encryption key file. A key check value identifies a key without revealing it: the first 8
// bytes of HMAC-SHA256(key, "psmdb key check value"), in hex; backups record it, restores
// compare it before reading anything.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "codec/stream.h"

namespace pbm::codec {

using EncryptionKey = std::array<unsigned char, 32>;

inline constexpr const char* kEncryptionAlgorithm = "AES256-GCM";
inline constexpr size_t kEncryptHeaderSize = 35;
inline constexpr size_t kEncryptTagSize = 16;
inline constexpr uint32_t kDefaultEncryptChunk = 1 << 20;

// Decodes a base64 key (whitespace ignored). `what` names its origin for messages ("key file
// /etc/pbm/key"). Throws kInvalidArgument unless it is base64 of exactly 32 bytes.
EncryptionKey ParseKey(std::string_view base64, const std::string& what);
// Reads and parses a key file. Throws kIo when it cannot be read, kInvalidArgument as ParseKey.
EncryptionKey ReadKeyFile(const std::string& path);
// The key check value (16 hex characters).
std::string KeyCheckValue(const EncryptionKey& key);

// A Sink that encrypts what is written to it into `out` (not owned). Close() writes the final
// chunk and closes `out`.
std::unique_ptr<Sink> NewEncryptor(const EncryptionKey& key, Sink* out,
                                   uint32_t chunk_size = kDefaultEncryptChunk);
// A Source that reads an encrypted object from `in` (not owned) and returns the plaintext.
// Throws kCorrupt on a bad header or when a chunk fails to authenticate.
std::unique_ptr<Source> NewDecryptor(const EncryptionKey& key, Source* in);

}  // namespace pbm::codec
