#include "storage/wt_extensions.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wiredtiger_ext.h>

#include <algorithm>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace wtm::storage {
namespace {

namespace fs = std::filesystem;

constexpr char kMarker[] = "PLAINTEXT-MARKER-7f3a9c";

EncryptionKey MakeKey(uint8_t seed) {
  EncryptionKey k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed * 31 + i);
  return k;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// SHA-256 of every regular file under `dir`, by relative path.
std::map<std::string, std::string> Checksums(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string data = ReadAll(e.path());
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    out[fs::relative(e.path(), dir).string()] = std::string(reinterpret_cast<char*>(md), len);
  }
  return out;
}

// Relative paths of the files under `dir` that contain `needle`.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && ReadAll(e.path()).find(needle) != std::string::npos) {
      out.push_back(fs::relative(e.path(), dir).string());
    }
  }
  return out;
}

std::string Value(int i) {
  // Compressible: a repeated pattern plus the record number.
  return std::string(kMarker) + " record " + std::to_string(i) + " " +
         std::string(200, 'a' + i % 3);
}

class WtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearEncryption();
    ClearLastEncryptionError();
    std::string tmpl = (fs::temp_directory_path() / "wtm_ext_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (conn_ != nullptr) conn_->close(conn_, nullptr);
    ClearEncryption();
    fs::remove_all(dir_);
  }

  // mongod's way: no WiredTiger.basecfg, journal in journal/; small log files for speed.
  std::string Config(bool encrypt, const std::string& log_compressor = "snappy") const {
    std::string c = "create,config_base=false,cache_size=64MB," + ExtensionsConfig() +
                    ",log=(enabled=true,path=journal,file_max=1MB,compressor=" + log_compressor +
                    ")";
    if (encrypt) c += "," + ConnectionEncryptionConfig(true);
    return c;
  }

  int Open(const std::string& config) {
    fs::create_directories(dir_ + "/journal");
    return wiredtiger_open(dir_.c_str(), nullptr, config.c_str(), &conn_);
  }
  void Close() {
    ASSERT_EQ(conn_->close(conn_, nullptr), 0);
    conn_ = nullptr;
  }

  WT_SESSION* Session() {
    WT_SESSION* s = nullptr;
    EXPECT_EQ(conn_->open_session(conn_, nullptr, nullptr, &s), 0);
    return s;
  }

  // Inserts records [from, to) into `uri` in one transaction per 1000 records.
  void Insert(WT_SESSION* s, const std::string& uri, int from, int to) {
    WT_CURSOR* c = nullptr;
    ASSERT_EQ(s->open_cursor(s, uri.c_str(), nullptr, nullptr, &c), 0);
    for (int i = from; i < to; ++i) {
      if ((i - from) % 1000 == 0) {
        ASSERT_EQ(s->begin_transaction(s, nullptr), 0);
      }
      c->set_key(c, static_cast<int64_t>(i));
      std::string v = Value(i);
      c->set_value(c, v.c_str());
      ASSERT_EQ(c->insert(c), 0);
      if ((i - from) % 1000 == 999 || i == to - 1) {
        ASSERT_EQ(s->commit_transaction(s, nullptr), 0);
      }
    }
    c->close(c);
  }

  // Checks that `uri` holds exactly records [0, n).
  void ExpectRecords(const std::string& uri, int n) {
    WT_SESSION* s = Session();
    WT_CURSOR* c = nullptr;
    ASSERT_EQ(s->open_cursor(s, uri.c_str(), nullptr, nullptr, &c), 0);
    int i = 0;
    int ret;
    while ((ret = c->next(c)) == 0) {
      int64_t k;
      const char* v;
      ASSERT_EQ(c->get_key(c, &k), 0);
      ASSERT_EQ(c->get_value(c, &v), 0);
      ASSERT_EQ(k, i);
      ASSERT_EQ(v, Value(i));
      ++i;
    }
    EXPECT_EQ(ret, WT_NOTFOUND);
    EXPECT_EQ(i, n);
    s->close(s, nullptr);
  }

  // In a child process: opens with `config`, inserts [from, to) into `uri`, flushes the log
  // and exits without closing, so the records exist only in the journal until recovery.
  void InsertAndCrash(const std::string& config, const std::string& uri, int from, int to) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      WT_CONNECTION* c = nullptr;
      if (wiredtiger_open(dir_.c_str(), nullptr, config.c_str(), &c) != 0) _exit(2);
      WT_SESSION* s = nullptr;
      c->open_session(c, nullptr, nullptr, &s);
      WT_CURSOR* cur = nullptr;
      if (s->open_cursor(s, uri.c_str(), nullptr, nullptr, &cur) != 0) _exit(3);
      for (int i = from; i < to; ++i) {
        cur->set_key(cur, static_cast<int64_t>(i));
        std::string v = Value(i);
        cur->set_value(cur, v.c_str());
        if (cur->insert(cur) != 0) _exit(4);
      }
      if (s->log_flush(s, "sync=on") != 0) _exit(5);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
  }

  // The journal's log files (not the preallocated ones).
  std::vector<std::string> JournalFiles() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_ + "/journal")) {
      if (e.path().filename().string().rfind("WiredTigerLog.", 0) == 0) out.push_back(e.path());
    }
    return out;
  }

  std::string dir_;
  WT_CONNECTION* conn_ = nullptr;
};

// ---- Configuration strings -------------------------------------------------------------------

TEST(ConfigTest, Fragments) {
  EXPECT_EQ(ExtensionsConfig(),
            "extensions=[/usr/lib/x86_64-linux-gnu/libwiredtiger_snappy.so,"
            "/usr/lib/x86_64-linux-gnu/libwiredtiger_zlib.so,"
            "local={entry=wtm_extensions_init,config=(zstd_compression_level=6)}]");
  EXPECT_NE(ExtensionsConfig(19).find("zstd_compression_level=19"), std::string::npos);
  EXPECT_EQ(ConnectionEncryptionConfig(true), "encryption=(name=percona,keyid=system)");
  EXPECT_EQ(ConnectionEncryptionConfig(false), "");
  EXPECT_EQ(TableEncryptionConfig(true), "encryption=(name=percona,keyid=system)");
  EXPECT_EQ(TableEncryptionConfig(false), "");
  EXPECT_EQ(ParseCipherMode("AES256-GCM"), CipherMode::kGcm);
  EXPECT_EQ(ParseCipherMode("AES256-CBC"), CipherMode::kCbc);
  EXPECT_EQ(ParseCipherMode("aes256-cbc"), std::nullopt);
  EXPECT_STREQ(CipherModeName(CipherMode::kGcm), "AES256-GCM");
}

// ---- The callbacks, called directly through a stand-in connection ---------------------------

struct Registered {
  WT_COMPRESSOR* zstd = nullptr;
  WT_ENCRYPTOR* percona = nullptr;
};
Registered* g_registered = nullptr;
WT_EXTENSION_API g_fake_api{};
int FakeErrPrintf(WT_EXTENSION_API*, WT_SESSION*, const char*, ...) { return 0; }

class CallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearEncryption();
    ClearLastEncryptionError();
    g_fake_api.err_printf = FakeErrPrintf;
    conn_.get_extension_api = [](WT_CONNECTION*) { return &g_fake_api; };
    conn_.add_compressor = [](WT_CONNECTION*, const char* name, WT_COMPRESSOR* c, const char*) {
      EXPECT_STREQ(name, "zstd");
      g_registered->zstd = c;
      return 0;
    };
    conn_.add_encryptor = [](WT_CONNECTION*, const char* name, WT_ENCRYPTOR* e, const char*) {
      EXPECT_STREQ(name, "percona");
      g_registered->percona = e;
      return 0;
    };
    g_registered = &reg_;
    ASSERT_EQ(wtm_extensions_init(&conn_, nullptr), 0);
    ASSERT_NE(reg_.zstd, nullptr);
    ASSERT_NE(reg_.percona, nullptr);
  }
  void TearDown() override {
    reg_.zstd->terminate(reg_.zstd, nullptr);
    reg_.percona->terminate(reg_.percona, nullptr);
    ClearEncryption();
  }

  std::vector<uint8_t> Encrypt(std::vector<uint8_t> plain) {
    size_t extra = 0;
    EXPECT_EQ(reg_.percona->sizing(reg_.percona, nullptr, &extra), 0);
    std::vector<uint8_t> out(plain.size() + extra);
    size_t len = 0;
    EXPECT_EQ(reg_.percona->encrypt(reg_.percona, nullptr, plain.data(), plain.size(), out.data(),
                                    out.size(), &len),
              0);
    out.resize(len);
    return out;
  }
  // Returns the decrypt callback's result; the plaintext goes to *plain.
  int Decrypt(std::vector<uint8_t> blob, size_t plain_len, std::vector<uint8_t>* plain) {
    plain->assign(plain_len, 0);
    size_t len = 0;
    int ret = reg_.percona->decrypt(reg_.percona, nullptr, blob.data(), blob.size(), plain->data(),
                                    plain->size(), &len);
    if (ret == 0) plain->resize(len);
    return ret;
  }

  WT_CONNECTION conn_{};
  Registered reg_;
};

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

TEST_F(CallbackTest, ZstdRoundTripWithZeroPaddedSource) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "document " + std::to_string(i % 50) + ";";
  std::vector<uint8_t> src = Bytes(text);
  size_t bound = 0;
  ASSERT_EQ(reg_.zstd->pre_size(reg_.zstd, nullptr, src.data(), src.size(), &bound), 0);
  std::vector<uint8_t> dst(bound);
  size_t clen = 0;
  int failed = -1;
  ASSERT_EQ(reg_.zstd->compress(reg_.zstd, nullptr, src.data(), src.size(), dst.data(), dst.size(),
                                &clen, &failed),
            0);
  ASSERT_EQ(failed, 0);
  EXPECT_LT(clen, src.size() / 5);
  // WiredTiger may pass the compressed block rounded up with zeros.
  dst.resize(clen + 1000, 0);
  std::fill(dst.begin() + clen, dst.end(), 0);
  std::vector<uint8_t> back(src.size());
  size_t dlen = 0;
  ASSERT_EQ(reg_.zstd->decompress(reg_.zstd, nullptr, dst.data(), dst.size(), back.data(),
                                  back.size(), &dlen),
            0);
  EXPECT_EQ(dlen, src.size());
  EXPECT_EQ(back, src);
}

TEST_F(CallbackTest, ZstdReportsFailureWhenOutputDoesNotFit) {
  std::string text(10000, 'x');
  std::vector<uint8_t> src = Bytes(text);
  std::vector<uint8_t> dst(12);  // far too small for any frame
  size_t clen = 0;
  int failed = 0;
  EXPECT_EQ(reg_.zstd->compress(reg_.zstd, nullptr, src.data(), src.size(), dst.data(), dst.size(),
                                &clen, &failed),
            0);
  EXPECT_EQ(failed, 1);
  // Incompressible input: no gain, so failed too.
  std::vector<uint8_t> noise(4096);
  uint32_t x = 12345;
  for (auto& b : noise) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
  std::vector<uint8_t> out(noise.size());
  failed = 0;
  EXPECT_EQ(reg_.zstd->compress(reg_.zstd, nullptr, noise.data(), noise.size(), out.data(),
                                out.size(), &clen, &failed),
            0);
  EXPECT_EQ(failed, 1);
}

TEST_F(CallbackTest, ZstdRejectsCorruptBlock) {
  std::vector<uint8_t> src(64, 0xff);  // length prefix far beyond the block
  std::vector<uint8_t> dst(100);
  size_t dlen = 0;
  EXPECT_NE(reg_.zstd->decompress(reg_.zstd, nullptr, src.data(), src.size(), dst.data(),
                                  dst.size(), &dlen),
            0);
}

TEST_F(CallbackTest, EncryptRoundTripBothCiphers) {
  for (CipherMode mode : {CipherMode::kCbc, CipherMode::kGcm}) {
    SCOPED_TRACE(CipherModeName(mode));
    SetEncryption(MakeKey(1), mode);
    for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{4096}}) {
      std::vector<uint8_t> plain(n);
      for (size_t i = 0; i < n; ++i) plain[i] = static_cast<uint8_t>(i * 7);
      std::vector<uint8_t> a = Encrypt(plain);
      std::vector<uint8_t> b = Encrypt(plain);
      EXPECT_NE(a, b);  // a fresh IV per block
      std::vector<uint8_t> back;
      ASSERT_EQ(Decrypt(a, n, &back), 0);
      EXPECT_EQ(back, plain);
    }
    std::vector<uint8_t> blob = Encrypt(Bytes(kMarker));
    EXPECT_EQ(std::string(blob.begin(), blob.end()).find(kMarker), std::string::npos);
    EXPECT_EQ(std::string(blob.begin(), blob.begin() + 4), "WTME");
  }
}

TEST_F(CallbackTest, DecryptRefusesWrongKeyCipherAndMissingKey) {
  SetEncryption(MakeKey(1), CipherMode::kGcm);
  std::vector<uint8_t> blob = Encrypt(Bytes(kMarker));
  std::string kcv1 = KeyCheckValue(MakeKey(1));
  std::vector<uint8_t> out;

  SetEncryption(MakeKey(2), CipherMode::kGcm);
  EXPECT_NE(Decrypt(blob, 100, &out), 0);
  EXPECT_EQ(LastEncryptionError(),
            "the data files were encrypted with a different key (key check value " +
                kcv1.substr(0, 8) + "), not the key in the configured key file (" +
                KeyCheckValue(MakeKey(2)) + ")");

  SetEncryption(MakeKey(1), CipherMode::kCbc);
  EXPECT_NE(Decrypt(blob, 100, &out), 0);
  EXPECT_EQ(LastEncryptionError(),
            "the data files were encrypted with AES256-GCM, but encryptionCipherMode is "
            "AES256-CBC");

  ClearEncryption();
  EXPECT_NE(Decrypt(blob, 100, &out), 0);
  EXPECT_EQ(LastEncryptionError(),
            "the data files are encrypted; start with --enableEncryption and the key file they "
            "were encrypted with");
  ClearLastEncryptionError();
  EXPECT_EQ(LastEncryptionError(), "");

  SetEncryption(MakeKey(1), CipherMode::kGcm);
  ASSERT_EQ(Decrypt(blob, 100, &out), 0);
  EXPECT_EQ(std::string(out.begin(), out.end()), kMarker);
}

TEST_F(CallbackTest, DecryptDetectsTampering) {
  SetEncryption(MakeKey(1), CipherMode::kGcm);
  std::vector<uint8_t> blob = Encrypt(Bytes(kMarker));
  std::vector<uint8_t> out;
  std::vector<uint8_t> bad = blob;
  bad[30] ^= 1;  // ciphertext
  EXPECT_NE(Decrypt(bad, 100, &out), 0);
  EXPECT_NE(LastEncryptionError().find("AES256-GCM authentication"), std::string::npos);
  bad = blob;
  bad.back() ^= 1;  // tag
  EXPECT_NE(Decrypt(bad, 100, &out), 0);
  bad = blob;
  bad[0] = 'X';  // magic
  EXPECT_NE(Decrypt(bad, 100, &out), 0);
  EXPECT_NE(LastEncryptionError().find("not in the percona encryptor's format"), std::string::npos);
  bad = blob;
  bad.resize(12);  // truncated
  EXPECT_NE(Decrypt(bad, 100, &out), 0);
}

TEST_F(CallbackTest, EncryptWithoutKeyFails) {
  std::vector<uint8_t> plain = Bytes(kMarker);
  std::vector<uint8_t> out(plain.size() + 64);
  size_t len = 0;
  EXPECT_NE(reg_.percona->encrypt(reg_.percona, nullptr, plain.data(), plain.size(), out.data(),
                                  out.size(), &len),
            0);
  EXPECT_NE(LastEncryptionError().find("no encryption key is configured"), std::string::npos);
}

// ---- Compressors through WiredTiger ------------------------------------------------------------

TEST_F(WtTest, BlockAndLogCompressorsRoundTrip) {
  std::map<std::string, uintmax_t> sizes;
  const std::string base = dir_;
  for (const char* comp : {"none", "snappy", "zlib", "zstd"}) {
    SCOPED_TRACE(comp);
    dir_ = base + "/" + comp;
    fs::create_directories(dir_);
    const std::string config = Config(false, comp);
    ASSERT_EQ(Open(config), 0);
    WT_SESSION* s = Session();
    ASSERT_EQ(
        s->create(s, "table:t",
                  (std::string("key_format=q,value_format=S,block_compressor=") + comp).c_str()),
        0);
    Insert(s, "table:t", 0, 10000);
    ASSERT_EQ(s->checkpoint(s, nullptr), 0);
    Close();
    // Records only in the (compressed) journal: recovery must decompress them.
    InsertAndCrash(config, "table:t", 10000, 11000);
    ASSERT_EQ(Open(config), 0);
    ExpectRecords("table:t", 11000);
    Close();
    sizes[comp] = fs::file_size(dir_ + "/t.wt");
  }
  dir_ = base;
  EXPECT_LT(sizes["zstd"] * 4, sizes["none"]);
  EXPECT_LT(sizes["snappy"], sizes["none"]);
  EXPECT_LT(sizes["zlib"], sizes["none"]);
}

TEST_F(WtTest, ZstdLevelIsConfigurable) {
  fs::create_directories(dir_ + "/journal");
  std::string bad = "create,config_base=false," + ExtensionsConfig(99);
  EXPECT_NE(wiredtiger_open(dir_.c_str(), nullptr, bad.c_str(), &conn_), 0);
  conn_ = nullptr;
  std::string good = "create,config_base=false," + ExtensionsConfig(1);
  ASSERT_EQ(wiredtiger_open(dir_.c_str(), nullptr, good.c_str(), &conn_), 0);
  WT_SESSION* s = Session();
  ASSERT_EQ(s->create(s, "table:t", "key_format=q,value_format=S,block_compressor=zstd"), 0);
  Insert(s, "table:t", 0, 100);
  Close();
}

// Many threads compressing and encrypting at once, with a small cache to force eviction.
TEST_F(WtTest, ConcurrentWritersCompressAndEncrypt) {
  SetEncryption(MakeKey(3), CipherMode::kGcm);
  ASSERT_EQ(Open(Config(true, "zstd") + ",cache_size=2MB,eviction=(threads_max=4)"), 0);
  WT_SESSION* s = Session();
  ASSERT_EQ(
      s->create(s, "table:t",
                ("key_format=q,value_format=S,block_compressor=zstd," + TableEncryptionConfig(true))
                    .c_str()),
      0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      WT_SESSION* ts = Session();
      Insert(ts, "table:t", t * 5000, (t + 1) * 5000);
      ts->close(ts, nullptr);
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(s->checkpoint(s, nullptr), 0);
  Close();
  EXPECT_EQ(LastEncryptionError(), "");
  ASSERT_EQ(Open(Config(true, "zstd")), 0);
  ExpectRecords("table:t", 20000);
}

// ---- Encryption through WiredTiger ------------------------------------------------------------

TEST_F(WtTest, MarkerVisibleWithoutEncryption) {
  // The control for the tests below: without encryption the marker is found on disk.
  const std::string config = Config(false, "none");
  ASSERT_EQ(Open(config), 0);
  WT_SESSION* s = Session();
  ASSERT_EQ(s->create(s, "table:t", "key_format=q,value_format=S,block_compressor=none"), 0);
  Insert(s, "table:t", 0, 100);
  Close();
  InsertAndCrash(config, "table:t", 100, 200);
  std::vector<std::string> found = FilesContaining(dir_, kMarker);
  EXPECT_NE(std::find(found.begin(), found.end(), "t.wt"), found.end());
  // Records 100..199 are only in the journal.
  bool in_journal = false;
  for (const std::string& f : JournalFiles()) {
    in_journal = in_journal || ReadAll(f).find(Value(150)) != std::string::npos;
  }
  EXPECT_TRUE(in_journal);
  std::optional<DbpathEncryption> det = DetectDbpathEncryption(dir_);
  ASSERT_TRUE(det.has_value());
  EXPECT_FALSE(det->encrypted);
  EXPECT_TRUE(det->certain);
  EXPECT_EQ(DetectDbpathEncryption(dir_ + "/journal"), std::nullopt);
}

class EncryptionTest : public WtTest, public ::testing::WithParamInterface<CipherMode> {};

TEST_P(EncryptionTest, EncryptsEverythingAndRefusesWrongSettings) {
  const CipherMode mode = GetParam();
  const CipherMode other = mode == CipherMode::kCbc ? CipherMode::kGcm : CipherMode::kCbc;
  const EncryptionKey key = MakeKey(1);
  SetEncryption(key, mode);
  const std::string config = Config(true, "none");
  ASSERT_EQ(CheckDbpathEncryption(dir_, true), "");  // a new dbpath
  ASSERT_EQ(Open(config), 0);
  WT_SESSION* s = Session();
  // "explicit" names the encryptor; "inherited" relies on the connection's.
  std::string table_cfg =
      "key_format=q,value_format=S,block_compressor=none,app_metadata=(m=" + std::string(kMarker) +
      ")";
  ASSERT_EQ(s->create(s, "table:explicit", (table_cfg + "," + TableEncryptionConfig(true)).c_str()),
            0);
  ASSERT_EQ(s->create(s, "table:inherited", table_cfg.c_str()), 0);
  Insert(s, "table:explicit", 0, 1000);
  Insert(s, "table:inherited", 0, 1000);
  ASSERT_EQ(s->checkpoint(s, nullptr), 0);
  Close();
  InsertAndCrash(config, "table:explicit", 1000, 2000);
  InsertAndCrash(config, "table:inherited", 1000, 2000);

  // No file (tables, metadata, journal) holds the marker.
  EXPECT_EQ(FilesContaining(dir_, kMarker), std::vector<std::string>{});
  EXPECT_FALSE(JournalFiles().empty());

  // What the dbpath says about itself, without opening it.
  std::optional<DbpathEncryption> det = DetectDbpathEncryption(dir_);
  ASSERT_TRUE(det.has_value());
  EXPECT_TRUE(det->encrypted);
  EXPECT_EQ(det->cipher, mode);
  EXPECT_EQ(det->key_check, KeyCheckValue(key).substr(0, 8));

  // Same key and cipher: recovery replays the encrypted journal.
  ASSERT_EQ(CheckDbpathEncryption(dir_, true), "");
  ASSERT_EQ(Open(config), 0);
  ExpectRecords("table:explicit", 2000);
  ExpectRecords("table:inherited", 2000);
  Close();
  EXPECT_EQ(FilesContaining(dir_, kMarker), std::vector<std::string>{});
  EXPECT_EQ(LastEncryptionError(), "");

  const auto before = Checksums(dir_);

  // Another key.
  SetEncryption(MakeKey(2), mode);
  const std::string wrong_key =
      "were encrypted with a different key (key check value " + KeyCheckValue(key).substr(0, 8) +
      "), not the key in the configured key file (" + KeyCheckValue(MakeKey(2)) + ")";
  EXPECT_NE(CheckDbpathEncryption(dir_, true).find(wrong_key), std::string::npos);
  ClearLastEncryptionError();
  EXPECT_NE(Open(config), 0);
  EXPECT_EQ(LastEncryptionError(), "the data files " + wrong_key);
  EXPECT_EQ(Checksums(dir_), before);

  // The other cipher mode.
  SetEncryption(key, other);
  const std::string wrong_cipher = std::string("were encrypted with ") + CipherModeName(mode) +
                                   ", but encryptionCipherMode is " + CipherModeName(other);
  EXPECT_NE(CheckDbpathEncryption(dir_, true).find(wrong_cipher), std::string::npos);
  ClearLastEncryptionError();
  EXPECT_NE(Open(config), 0);
  EXPECT_EQ(LastEncryptionError(), "the data files " + wrong_cipher);
  EXPECT_EQ(Checksums(dir_), before);

  // Encryption configured but the key never set.
  ClearEncryption();
  ClearLastEncryptionError();
  EXPECT_NE(Open(config), 0);
  EXPECT_EQ(LastEncryptionError(),
            "the data files are encrypted; start with --enableEncryption and the key file they "
            "were encrypted with");
  EXPECT_EQ(Checksums(dir_), before);

  // No encryption at all: WiredTiger cannot read the metadata; the pre-open check says why.
  EXPECT_EQ(CheckDbpathEncryption(dir_, false),
            "the data files in " + dir_ +
                " are encrypted; start with --enableEncryption and the key file they were "
                "encrypted with");
  EXPECT_NE(Open(Config(false, "none")), 0);
  EXPECT_EQ(Checksums(dir_), before);

  // And the right settings still work after all that.
  SetEncryption(key, mode);
  ASSERT_EQ(Open(config), 0);
  ExpectRecords("table:explicit", 2000);
  Close();
}

INSTANTIATE_TEST_SUITE_P(Ciphers, EncryptionTest,
                         ::testing::Values(CipherMode::kCbc, CipherMode::kGcm),
                         [](const auto& info) {
                           return info.param == CipherMode::kCbc ? "Cbc" : "Gcm";
                         });

TEST_F(WtTest, UnencryptedDbpathWithEncryptionEnabled) {
  ASSERT_EQ(Open(Config(false, "none")), 0);
  WT_SESSION* s = Session();
  ASSERT_EQ(s->create(s, "table:t", "key_format=q,value_format=S,block_compressor=none"), 0);
  Insert(s, "table:t", 0, 100);
  Close();

  SetEncryption(MakeKey(1), CipherMode::kCbc);
  EXPECT_EQ(CheckDbpathEncryption(dir_, true),
            "the data files in " + dir_ +
                " are not encrypted, but --enableEncryption is set; encryption can only be "
                "enabled on an empty dbpath (resync or restore the node into an empty one)");
  EXPECT_EQ(LastEncryptionError(), CheckDbpathEncryption(dir_, true));
  EXPECT_EQ(CheckDbpathEncryption(dir_, false), "");

  // WiredTiger itself refuses too (it finds unencrypted metadata pages where it expects
  // encrypted ones) but only says "unable to read root page"; the files stay untouched.
  const auto before = Checksums(dir_);
  EXPECT_EQ(Open(Config(true, "none")), WT_TRY_SALVAGE);
  EXPECT_EQ(Checksums(dir_), before);
  SetEncryption(MakeKey(1), CipherMode::kCbc);
  EXPECT_EQ(Open(Config(false, "none")), 0);
  ExpectRecords("table:t", 100);
}

}  // namespace
}  // namespace wtm::storage
