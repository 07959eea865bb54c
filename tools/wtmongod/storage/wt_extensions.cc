#include "storage/wt_extensions.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <wiredtiger_ext.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <vector>

namespace wtm::storage {
namespace {

// ---- Encrypted block format ----------------------------------------------------------------
// magic(4) | version(1) | cipher id(1) | key check(4) | IV (16 CBC, 12 GCM) | ciphertext |
// tag (16, GCM only). The 10-byte header is GCM's additional authenticated data.
constexpr uint8_t kMagic[4] = {'W', 'T', 'M', 'E'};
constexpr uint8_t kVersion = 1;
constexpr uint8_t kCipherCbc = 1;
constexpr uint8_t kCipherGcm = 2;
constexpr size_t kHeaderLen = 10;
constexpr size_t kCbcIvLen = 16;
constexpr size_t kGcmIvLen = 12;
constexpr size_t kGcmTagLen = 16;
constexpr size_t kAesBlock = 16;
// Worst case over both ciphers: CBC adds an IV and up to one block of padding.
constexpr size_t kMaxExpansion = kHeaderLen + kCbcIvLen + kAesBlock;

uint8_t CipherId(CipherMode mode) { return mode == CipherMode::kCbc ? kCipherCbc : kCipherGcm; }

std::optional<CipherMode> CipherFromId(uint8_t id) {
  if (id == kCipherCbc) return CipherMode::kCbc;
  if (id == kCipherGcm) return CipherMode::kGcm;
  return std::nullopt;
}

std::string Hex(const uint8_t* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 0xf]);
  }
  return out;
}

// The process-wide settings; copied out under the lock by each call.
struct KeyState {
  bool set = false;
  EncryptionKey key{};
  CipherMode mode = CipherMode::kCbc;
  uint8_t check[4] = {};  // first 4 bytes of the key check value
  std::string check_hex;  // the full key check value
};

std::mutex g_mu;
KeyState g_state;
std::string g_last_error;

KeyState Snapshot() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_state;
}

void Wipe(KeyState* s) { OPENSSL_cleanse(s->key.data(), s->key.size()); }

void SetLastError(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_last_error = line;
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

// ---- The "percona" encryptor ---------------------------------------------------------------

struct PerconaEncryptor {
  WT_ENCRYPTOR base;  // must come first: WiredTiger passes &base
  WT_EXTENSION_API* api;
};

int Report(WT_ENCRYPTOR* enc, WT_SESSION* session, const std::string& line, int code) {
  SetLastError(line);
  WT_EXTENSION_API* api = reinterpret_cast<PerconaEncryptor*>(enc)->api;
  (void)api->err_printf(api, session, "percona encryptor: %s", line.c_str());
  return code;
}

int Encrypt(WT_ENCRYPTOR* enc, WT_SESSION* session, uint8_t* src, size_t src_len, uint8_t* dst,
            size_t dst_len, size_t* result_lenp) {
  KeyState st = Snapshot();
  if (!st.set) {
    return Report(enc, session,
                  "cannot write encrypted data: no encryption key is configured "
                  "(start with --enableEncryption and --encryptionKeyFile)",
                  EINVAL);
  }
  const bool gcm = st.mode == CipherMode::kGcm;
  const size_t iv_len = gcm ? kGcmIvLen : kCbcIvLen;
  const size_t need = kHeaderLen + iv_len + src_len + kAesBlock;  // bound for both modes
  if (dst_len < need || src_len > static_cast<size_t>(INT32_MAX)) {
    Wipe(&st);
    return Report(enc, session, "encryption buffer too small", EINVAL);
  }
  std::memcpy(dst, kMagic, 4);
  dst[4] = kVersion;
  dst[5] = CipherId(st.mode);
  std::memcpy(dst + 6, st.check, 4);
  uint8_t* iv = dst + kHeaderLen;
  uint8_t* out = iv + iv_len;
  int ok = RAND_bytes(iv, static_cast<int>(iv_len)) == 1;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int n1 = 0, n2 = 0, aad_len = 0;
  ok = ok && ctx != nullptr;
  ok = ok && EVP_EncryptInit_ex(ctx.get(), gcm ? EVP_aes_256_gcm() : EVP_aes_256_cbc(), nullptr,
                                st.key.data(), iv) == 1;
  Wipe(&st);
  if (gcm) ok = ok && EVP_EncryptUpdate(ctx.get(), nullptr, &aad_len, dst, kHeaderLen) == 1;
  ok = ok && EVP_EncryptUpdate(ctx.get(), out, &n1, src, static_cast<int>(src_len)) == 1;
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), out + n1, &n2) == 1;
  size_t total = kHeaderLen + iv_len + static_cast<size_t>(n1) + static_cast<size_t>(n2);
  if (ok && gcm) {
    ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagLen, dst + total) == 1;
    total += kGcmTagLen;
  }
  if (!ok) return Report(enc, session, "OpenSSL encryption failed", WT_ERROR);
  *result_lenp = total;
  return 0;
}

int Decrypt(WT_ENCRYPTOR* enc, WT_SESSION* session, uint8_t* src, size_t src_len, uint8_t* dst,
            size_t dst_len, size_t* result_lenp) {
  if (src_len < kHeaderLen || std::memcmp(src, kMagic, 4) != 0) {
    return Report(enc, session,
                  "a data block is not in the percona encryptor's format "
                  "(corrupt, or written by another encryptor)",
                  WT_ERROR);
  }
  if (src[4] != kVersion) {
    return Report(enc, session,
                  "a data block uses encryption format version " + std::to_string(src[4]) +
                      ", which this server does not support",
                  WT_ERROR);
  }
  std::optional<CipherMode> cipher = CipherFromId(src[5]);
  if (!cipher) return Report(enc, session, "a data block names an unknown cipher", WT_ERROR);
  KeyState st = Snapshot();
  if (!st.set) {
    return Report(enc, session,
                  "the data files are encrypted; start with --enableEncryption and the key file "
                  "they were encrypted with",
                  WT_ERROR);
  }
  if (*cipher != st.mode) {
    Wipe(&st);
    return Report(enc, session,
                  std::string("the data files were encrypted with ") + CipherModeName(*cipher) +
                      ", but encryptionCipherMode is " + CipherModeName(st.mode),
                  WT_ERROR);
  }
  if (std::memcmp(src + 6, st.check, 4) != 0) {
    Wipe(&st);
    return Report(enc, session,
                  "the data files were encrypted with a different key (key check value " +
                      Hex(src + 6, 4) + "), not the key in the configured key file (" +
                      st.check_hex + ")",
                  WT_ERROR);
  }
  const bool gcm = *cipher == CipherMode::kGcm;
  const size_t iv_len = gcm ? kGcmIvLen : kCbcIvLen;
  const size_t min_len = kHeaderLen + iv_len + (gcm ? kGcmTagLen : kAesBlock);
  if (src_len < min_len || src_len - kHeaderLen - iv_len > static_cast<size_t>(INT32_MAX)) {
    Wipe(&st);
    return Report(enc, session, "a data block is truncated (encrypted length too short)", WT_ERROR);
  }
  const uint8_t* iv = src + kHeaderLen;
  const uint8_t* in = iv + iv_len;
  size_t in_len = src_len - kHeaderLen - iv_len - (gcm ? kGcmTagLen : 0);
  // CBC output may momentarily exceed the plaintext by a block; decrypt into scratch space.
  std::vector<uint8_t> scratch(in_len + kAesBlock);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int n1 = 0, n2 = 0, aad_len = 0;
  int ok = ctx != nullptr;
  ok = ok && EVP_DecryptInit_ex(ctx.get(), gcm ? EVP_aes_256_gcm() : EVP_aes_256_cbc(), nullptr,
                                st.key.data(), iv) == 1;
  Wipe(&st);
  if (gcm) ok = ok && EVP_DecryptUpdate(ctx.get(), nullptr, &aad_len, src, kHeaderLen) == 1;
  ok = ok && EVP_DecryptUpdate(ctx.get(), scratch.data(), &n1, in, static_cast<int>(in_len)) == 1;
  if (ok && gcm) {
    ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagLen,
                             const_cast<uint8_t*>(in + in_len)) == 1;
  }
  ok = ok && EVP_DecryptFinal_ex(ctx.get(), scratch.data() + n1, &n2) == 1;
  size_t plain_len = static_cast<size_t>(n1) + static_cast<size_t>(n2);
  if (!ok) {
    OPENSSL_cleanse(scratch.data(), scratch.size());
    return Report(enc, session,
                  gcm ? "a data block failed AES256-GCM authentication (corrupt or tampered)"
                      : "a data block failed AES256-CBC decryption (corrupt: bad padding)",
                  WT_ERROR);
  }
  if (plain_len > dst_len) {
    OPENSSL_cleanse(scratch.data(), scratch.size());
    return Report(enc, session, "a decrypted data block is larger than its buffer", WT_ERROR);
  }
  std::memcpy(dst, scratch.data(), plain_len);
  OPENSSL_cleanse(scratch.data(), scratch.size());
  *result_lenp = plain_len;
  return 0;
}

int Sizing(WT_ENCRYPTOR*, WT_SESSION*, size_t* expansion_constantp) {
  *expansion_constantp = kMaxExpansion;
  return 0;
}

int TerminateEncryptor(WT_ENCRYPTOR* enc, WT_SESSION*) {
  delete reinterpret_cast<PerconaEncryptor*>(enc);
  return 0;
}

// ---- The "zstd" compressor -----------------------------------------------------------------
// Same layout as WiredTiger's own zstd extension (so MongoDB's zstd files read back): an
// 8-byte little-endian compressed length, then one zstd frame. The length is needed because
// WiredTiger may hand decompress a buffer padded with zeros.

constexpr size_t kLenPrefix = 8;

struct ZstdCompressor {
  WT_COMPRESSOR base;  // must come first
  WT_EXTENSION_API* api;
  int level;
};

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// One context per thread, reused: creating one per block costs more than compressing it.
ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

int ZstdError(WT_COMPRESSOR* comp, WT_SESSION* session, const char* call, size_t code) {
  WT_EXTENSION_API* api = reinterpret_cast<ZstdCompressor*>(comp)->api;
  (void)api->err_printf(api, session, "zstd error: %s: %s", call, ZSTD_getErrorName(code));
  return WT_ERROR;
}

void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

int ZstdCompress(WT_COMPRESSOR* comp, WT_SESSION* session, uint8_t* src, size_t src_len,
                 uint8_t* dst, size_t dst_len, size_t* result_lenp, int* compression_failed) {
  *compression_failed = 1;
  if (dst_len <= kLenPrefix) return 0;
  ZSTD_CCtx* cctx = ThreadCCtx();
  if (cctx == nullptr) return ENOMEM;
  size_t n = ZSTD_compressCCtx(cctx, dst + kLenPrefix, dst_len - kLenPrefix, src, src_len,
                               reinterpret_cast<ZstdCompressor*>(comp)->level);
  if (ZSTD_isError(n)) {
    // Output that does not fit is not an error: WiredTiger stores the block uncompressed.
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) return 0;
    return ZstdError(comp, session, "ZSTD_compressCCtx", n);
  }
  if (n + kLenPrefix >= src_len) return 0;  // no gain
  PutLe64(dst, n);
  *result_lenp = n + kLenPrefix;
  *compression_failed = 0;
  return 0;
}

int ZstdDecompress(WT_COMPRESSOR* comp, WT_SESSION* session, uint8_t* src, size_t src_len,
                   uint8_t* dst, size_t dst_len, size_t* result_lenp) {
  WT_EXTENSION_API* api = reinterpret_cast<ZstdCompressor*>(comp)->api;
  if (src_len < kLenPrefix) {
    (void)api->err_printf(api, session, "zstd error: compressed block shorter than its header");
    return WT_ERROR;
  }
  uint64_t n = GetLe64(src);
  if (n > src_len - kLenPrefix) {
    (void)api->err_printf(api, session,
                          "zstd error: compressed length %llu exceeds the block (%zu bytes)",
                          static_cast<unsigned long long>(n), src_len - kLenPrefix);
    return WT_ERROR;
  }
  ZSTD_DCtx* dctx = ThreadDCtx();
  if (dctx == nullptr) return ENOMEM;
  size_t r = ZSTD_decompressDCtx(dctx, dst, dst_len, src + kLenPrefix, n);
  if (ZSTD_isError(r)) return ZstdError(comp, session, "ZSTD_decompressDCtx", r);
  *result_lenp = r;
  return 0;
}

int ZstdPreSize(WT_COMPRESSOR*, WT_SESSION*, uint8_t*, size_t src_len, size_t* result_lenp) {
  *result_lenp = ZSTD_compressBound(src_len) + kLenPrefix;
  return 0;
}

int TerminateCompressor(WT_COMPRESSOR* comp, WT_SESSION*) {
  delete reinterpret_cast<ZstdCompressor*>(comp);
  return 0;
}

int CheckZstdLevel(WT_EXTENSION_API* api, const WT_CONFIG_ITEM& item, int* level) {
  if (item.type != WT_CONFIG_ITEM::WT_CONFIG_ITEM_NUM || item.val < ZSTD_minCLevel() ||
      item.val > ZSTD_maxCLevel()) {
    (void)api->err_printf(api, nullptr, "zstd_compression_level must be an integer in [%d, %d]",
                          ZSTD_minCLevel(), ZSTD_maxCLevel());
    return EINVAL;
  }
  *level = static_cast<int>(item.val);
  return 0;
}

// Reads zstd_compression_level from the extension's config=(...), if present. WiredTiger 3.2
// hands the load function that value itself; later releases hand it the whole extension
// entry, with the value under "config".
int ReadZstdLevel(WT_EXTENSION_API* api, WT_CONFIG_ARG* config, int* level) {
  if (config == nullptr) return 0;
  WT_CONFIG_ITEM item;
  int ret = api->config_get(api, nullptr, config, "zstd_compression_level", &item);
  if (ret == 0) return CheckZstdLevel(api, item, level);
  if (ret != WT_NOTFOUND) return ret;
  WT_CONFIG_ITEM v;
  ret = api->config_get(api, nullptr, config, "config", &v);
  if (ret == WT_NOTFOUND) return 0;
  if (ret != 0) return ret;
  WT_CONFIG_PARSER* parser = nullptr;
  if ((ret = api->config_parser_open(api, nullptr, v.str, v.len, &parser)) != 0) return ret;
  ret = parser->get(parser, "zstd_compression_level", &item);
  if (ret == 0) {
    ret = CheckZstdLevel(api, item, level);
  } else if (ret == WT_NOTFOUND) {
    ret = 0;
  }
  int cret = parser->close(parser);
  return ret != 0 ? ret : cret;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

uint32_t GetLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// On-disk block layout of WiredTiger 3.2 (btree.h / block.h): a 28-byte page header (type at
// 24, flags at 25), a 12-byte block header (disk_size at 28, flags at 36), then for an
// encrypted page a 4-byte encrypted length and the encryptor's output.
constexpr size_t kWtDescriptorLen = 4096;  // the file's first block, never a page
constexpr size_t kWtPageType = 24;
constexpr size_t kWtPageFlags = 25;
constexpr size_t kWtBlockDiskSize = 28;
constexpr size_t kWtBlockFlags = 36;
constexpr size_t kWtEncryptedData = 44;
constexpr uint8_t kWtPageEncrypted = 0x08;
constexpr int kMaxBlocksScanned = 64;

// What the blocks of a WiredTiger file say about encryption; `found` is false when the file
// holds no recognizable block (missing, empty, or never checkpointed).
struct BlockScan {
  bool found = false;
  bool encrypted = false;
  std::optional<CipherMode> cipher;
  std::string key_check;
};

// Walks the chain of blocks from the first one (free space keeps old blocks of the same file,
// so the chain stays walkable) and stops at the first header that does not look valid.
BlockScan ScanBlocks(const std::string& file) {
  BlockScan scan;
  std::ifstream in(file, std::ios::binary);
  if (!in) return scan;
  uint64_t off = kWtDescriptorLen;
  uint8_t h[kWtEncryptedData + kHeaderLen];
  for (int i = 0; i < kMaxBlocksScanned; ++i) {
    in.seekg(static_cast<std::streamoff>(off));
    if (!in.read(reinterpret_cast<char*>(h), sizeof(h))) break;
    uint32_t disk_size = GetLe32(h + kWtBlockDiskSize);
    bool valid = h[kWtPageType] >= 1 && h[kWtPageType] <= 7 && h[kWtPageType + 2] == 0 &&
                 disk_size >= 512 && disk_size % 512 == 0 && h[kWtBlockFlags] <= 1 &&
                 h[kWtBlockFlags + 1] == 0 && h[kWtBlockFlags + 2] == 0 &&
                 h[kWtBlockFlags + 3] == 0;
    if (!valid) break;
    scan.found = true;
    if (h[kWtPageFlags] & kWtPageEncrypted) {
      scan.encrypted = true;
      const uint8_t* blob = h + kWtEncryptedData;
      if (std::memcmp(blob, kMagic, 4) == 0 && blob[4] == kVersion) {
        scan.cipher = CipherFromId(blob[5]);
        scan.key_check = Hex(blob + 6, 4);
        return scan;
      }
    }
    off += disk_size;
  }
  return scan;
}

}  // namespace

const char* CipherModeName(CipherMode mode) {
  return mode == CipherMode::kCbc ? "AES256-CBC" : "AES256-GCM";
}

std::optional<CipherMode> ParseCipherMode(std::string_view name) {
  if (name == "AES256-CBC") return CipherMode::kCbc;
  if (name == "AES256-GCM") return CipherMode::kGcm;
  return std::nullopt;
}

void SetEncryption(const EncryptionKey& key, CipherMode mode) {
  std::string kcv = KeyCheckValue(key);
  std::lock_guard<std::mutex> lock(g_mu);
  g_state.set = true;
  g_state.key = key;
  g_state.mode = mode;
  for (int i = 0; i < 4; ++i) {
    g_state.check[i] = static_cast<uint8_t>(std::stoi(kcv.substr(2 * i, 2), nullptr, 16));
  }
  g_state.check_hex = kcv;
}

void ClearEncryption() {
  std::lock_guard<std::mutex> lock(g_mu);
  Wipe(&g_state);
  g_state = KeyState{};
}

std::string LastEncryptionError() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_last_error;
}

void ClearLastEncryptionError() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_last_error.clear();
}

std::string ExtensionsConfig(int zstd_level) {
  return "extensions=[/usr/lib/x86_64-linux-gnu/libwiredtiger_snappy.so,"
         "/usr/lib/x86_64-linux-gnu/libwiredtiger_zlib.so,"
         "local={entry=wtm_extensions_init,config=(zstd_compression_level=" +
         std::to_string(zstd_level) + ")}]";
}

std::optional<DbpathEncryption> DetectDbpathEncryption(const std::string& dbpath) {
  std::string turtle;
  if (!ReadFile(dbpath + "/WiredTiger.turtle", &turtle)) return std::nullopt;
  DbpathEncryption out;
  // The metadata file is encrypted exactly when the connection is (the turtle file's copy of
  // its configuration says encryption=(name=) either way).
  BlockScan scan = ScanBlocks(dbpath + "/WiredTiger.wt");
  if (scan.found) {
    out.encrypted = scan.encrypted;
    out.cipher = scan.cipher;
    out.key_check = scan.key_check;
    return out;
  }
  // No checkpointed metadata yet: WiredTiger.basecfg (absent with config_base=false) records
  // the connection's encryption=(keyid=...,name=...).
  std::string basecfg;
  if (ReadFile(dbpath + "/WiredTiger.basecfg", &basecfg)) {
    size_t p = basecfg.find("\nencryption=(");
    if (p != std::string::npos) {
      size_t e = basecfg.find('\n', p + 1);
      std::string line = basecfg.substr(p + 1, e == std::string::npos ? e : e - p - 1);
      out.encrypted = line.find("name=)") == std::string::npos &&
                      line.find("name=none") == std::string::npos &&
                      line.find("name=") != std::string::npos;
      return out;
    }
  }
  out.certain = false;
  return out;
}

std::string CheckDbpathEncryption(const std::string& dbpath, bool enabled) {
  std::optional<DbpathEncryption> found = DetectDbpathEncryption(dbpath);
  if (!found || !found->certain) return "";
  KeyState st = Snapshot();
  Wipe(&st);
  std::string problem;
  if (found->encrypted && !enabled) {
    problem = "the data files in " + dbpath +
              " are encrypted; start with --enableEncryption and the key file they were "
              "encrypted with";
  } else if (!found->encrypted && enabled) {
    problem = "the data files in " + dbpath +
              " are not encrypted, but --enableEncryption is set; encryption can only be "
              "enabled on an empty dbpath (resync or restore the node into an empty one)";
  } else if (found->encrypted && enabled) {
    if (!st.set) {
      problem = "encryption is enabled but no key is configured";
    } else if (found->cipher && *found->cipher != st.mode) {
      problem = std::string("the data files in ") + dbpath + " were encrypted with " +
                CipherModeName(*found->cipher) + ", but encryptionCipherMode is " +
                CipherModeName(st.mode);
    } else if (!found->key_check.empty() && st.check_hex.rfind(found->key_check, 0) != 0) {
      problem = "the data files in " + dbpath +
                " were encrypted with a different key (key check value " + found->key_check +
                "), not the key in the configured key file (" + st.check_hex + ")";
    } else if (!found->cipher) {
      problem = "the data files in " + dbpath +
                " were encrypted by another encryptor, which this server cannot read";
    }
  }
  if (!problem.empty()) SetLastError(problem);
  return problem;
}

std::string ConnectionEncryptionConfig(bool enabled) {
  return enabled ? "encryption=(name=percona,keyid=system)" : "";
}

std::string TableEncryptionConfig(bool enabled) {
  return enabled ? "encryption=(name=percona,keyid=system)" : "";
}

}  // namespace wtm::storage

extern "C" int wtm_extensions_init(WT_CONNECTION* conn, WT_CONFIG_ARG* config) {
  using namespace wtm::storage;
  WT_EXTENSION_API* api = conn->get_extension_api(conn);
  int level = 6;
  int ret = ReadZstdLevel(api, config, &level);
  if (ret != 0) return ret;

  auto* zstd = new (std::nothrow) ZstdCompressor{};
  if (zstd == nullptr) return ENOMEM;
  zstd->base.compress = ZstdCompress;
  zstd->base.decompress = ZstdDecompress;
  zstd->base.pre_size = ZstdPreSize;
  zstd->base.terminate = TerminateCompressor;
  zstd->api = api;
  zstd->level = level;
  if ((ret = conn->add_compressor(conn, "zstd", &zstd->base, nullptr)) != 0) {
    delete zstd;
    return ret;
  }

  auto* enc = new (std::nothrow) PerconaEncryptor{};
  if (enc == nullptr) return ENOMEM;
  enc->base.encrypt = Encrypt;
  enc->base.decrypt = Decrypt;
  enc->base.sizing = Sizing;
  enc->base.customize = nullptr;
  enc->base.terminate = TerminateEncryptor;
  enc->api = api;
  if ((ret = conn->add_encryptor(conn, "percona", &enc->base, nullptr)) != 0) {
    delete enc;
    return ret;
  }
  return 0;
}
