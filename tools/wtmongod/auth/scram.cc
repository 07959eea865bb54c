#include "auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <vector>

namespace wtm::auth {
namespace {

const EVP_MD* Md(Mechanism m) { return m == Mechanism::kScramSha1 ? EVP_sha1() : EVP_sha256(); }

// The comma-separated attributes of a SCRAM message, empty ones skipped (as mongod does).
std::vector<std::string_view> SplitAttributes(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// RFC 5802 saslname: "=2C" stands for ',' and "=3D" for '='; any other '=' is invalid.
std::string DecodeSaslName(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '=') {
      out += s[i];
      continue;
    }
    std::string_view esc = s.substr(i, 3);
    if (esc == "=2C") {
      out += ',';
    } else if (esc == "=3D") {
      out += '=';
    } else {
      throw ScramError("Invalid SCRAM user name encoding: " + std::string(s));
    }
    i += 2;
  }
  return out;
}

std::string Xor(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (size_t i = 0; i < a.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i]);
  return out;
}

}  // namespace

const char* MechanismName(Mechanism m) {
  return m == Mechanism::kScramSha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

std::optional<Mechanism> ParseMechanism(std::string_view name) {
  if (name == "SCRAM-SHA-1") return Mechanism::kScramSha1;
  if (name == "SCRAM-SHA-256") return Mechanism::kScramSha256;
  return std::nullopt;
}

int SaltLength(Mechanism m) { return m == Mechanism::kScramSha1 ? 16 : 28; }

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  if (text.size() % 4 != 0) return false;
  size_t pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/';
    if (c == '=') {
      // Padding: at most two, only at the end.
      if (i + 2 < text.size()) return false;
      ++pad;
    } else if (!alpha || pad > 0) {
      return false;
    }
  }
  std::string buf(text.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return false;
  buf.resize(static_cast<size_t>(n) - pad);
  *out = std::move(buf);
  return true;
}

std::string HexEncode(std::string_view data) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Hash(Mechanism m, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, Md(m), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Hmac(Mechanism m, std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(Md(m), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len)) {
    throw std::runtime_error("HMAC failed");
  }
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string SaltedPassword(Mechanism m, std::string_view password, std::string_view salt,
                           int iterations) {
  std::string out(static_cast<size_t>(EVP_MD_get_size(Md(m))), '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, Md(m),
                        static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
  }
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

std::string MongoPasswordDigest(std::string_view user, std::string_view password) {
  std::string text = std::string(user) + ":mongo:" + std::string(password);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_md5(), nullptr) != 1) {
    throw std::runtime_error("MD5 failed");
  }
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), len));
}

std::string SaslPrep(std::string_view password) {
  for (unsigned char c : password) {
    if (c >= 0x80) {
      throw std::invalid_argument(
          "wtmongod implements SASLprep for ASCII passwords only; this password has non-ASCII "
          "characters (use SCRAM-SHA-1 or an ASCII password)");
    }
    if (c < 0x20 || c == 0x7f) {
      throw std::invalid_argument("SASLprep: the password contains prohibited control characters");
    }
  }
  if (password.empty()) throw std::invalid_argument("SASLprep: the password is empty");
  return std::string(password);
}

std::string ScramPassword(Mechanism m, std::string_view user, std::string_view password) {
  if (m == Mechanism::kScramSha1) return MongoPasswordDigest(user, password);
  return SaslPrep(password);
}

Credential MakeCredential(Mechanism m, std::string_view scram_password, std::string_view salt,
                          int iterations) {
  std::string salted = SaltedPassword(m, scram_password, salt, iterations);
  Credential c;
  c.iteration_count = iterations;
  c.salt = Base64Encode(salt);
  c.stored_key = Base64Encode(Hash(m, Hmac(m, salted, "Client Key")));
  c.server_key = Base64Encode(Hmac(m, salted, "Server Key"));
  return c;
}

Credential NewCredential(Mechanism m, std::string_view user, std::string_view password) {
  std::string pw = ScramPassword(m, user, password);
  return MakeCredential(
      m, pw, RandomBytes(static_cast<size_t>(SaltLength(m))),
      m == Mechanism::kScramSha1 ? kDefaultIterationsSha1 : kDefaultIterationsSha256);
}

ScramServer::ScramServer(Mechanism m, Lookup lookup, std::function<std::string()> nonce_source)
    : mech_(m), lookup_(std::move(lookup)), nonce_source_(std::move(nonce_source)) {
  if (!nonce_source_) nonce_source_ = [] { return Base64Encode(RandomBytes(24)); };
}

std::string ScramServer::Step(std::string_view input) {
  if (failed_ || done_) throw ScramError("SCRAM conversation is already finished");
  ++step_;
  try {
    if (step_ == 1) return FirstStep(input);
    if (step_ == 2) return SecondStep(input);
    if (step_ == 3 && proved_ && !skip_empty_exchange_) {
      // mongod's extra round: the client acknowledges the server signature with an empty
      // message.
      done_ = true;
      return "";
    }
    throw ScramError("Invalid SCRAM authentication step: " + std::to_string(step_));
  } catch (...) {
    failed_ = true;
    throw;
  }
}

std::string ScramServer::FirstStep(std::string_view input) {
  auto bad_count = [](size_t got) {
    return ScramError("Incorrect number of arguments for first SCRAM client message, got " +
                      std::to_string(got) + " expected at least 3");
  };
  // gs2-header := gs2-cbind-flag "," [authzid] ","
  size_t c1 = input.find(',');
  if (c1 == std::string_view::npos) throw bad_count(1);
  std::string_view flag = input.substr(0, c1);
  if (flag.substr(0, 2) == "p=") throw ScramError("Server does not support channel binding");
  if (flag != "n" && flag != "y") {
    throw ScramError("Incorrect SCRAM client message prefix: " + std::string(flag));
  }
  size_t c2 = input.find(',', c1 + 1);
  if (c2 == std::string_view::npos) throw bad_count(2);
  std::string_view authzid = input.substr(c1 + 1, c2 - c1 - 1);
  if (!authzid.empty()) {
    if (authzid.substr(0, 2) != "a=") {
      throw ScramError("Incorrect SCRAM authzid: " + std::string(authzid));
    }
    authzid.remove_prefix(2);
  }
  std::string_view bare = input.substr(c2 + 1);
  if (bare.substr(0, 2) == "m=") throw ScramError("SCRAM mandatory extensions are not supported");
  std::vector<std::string_view> attrs = SplitAttributes(bare);
  if (attrs.size() < 2) throw bad_count(attrs.size() + 2);
  if (attrs[0].substr(0, 2) != "n=" || attrs[0].size() < 3) {
    throw ScramError("Invalid SCRAM user name: " + std::string(attrs[0]));
  }
  user_ = DecodeSaslName(attrs[0].substr(2));
  if (!authzid.empty() && DecodeSaslName(authzid) != user_) {
    throw ScramError("SCRAM user name " + user_ + " does not match authzid " +
                     std::string(authzid));
  }
  if (attrs[1].substr(0, 2) != "r=" || attrs[1].size() < 6) {
    throw ScramError("Invalid SCRAM client nonce: " + std::string(attrs[1]));
  }
  std::string_view client_nonce = attrs[1].substr(2);

  std::optional<Credential> cred = lookup_(user_);
  if (!cred) throw ScramError("Could not find user \"" + user_ + "\" with " + MechanismName(mech_));
  std::string raw;
  if (cred->iteration_count < 1 || !Base64Decode(cred->salt, &raw) ||
      !Base64Decode(cred->stored_key, &raw) || !Base64Decode(cred->server_key, &raw)) {
    throw ScramError(std::string("Unable to validate ") + MechanismName(mech_) +
                     " authentication due to corrupted stored credentials");
  }
  cred_ = std::move(*cred);

  nonce_ = std::string(client_nonce) + nonce_source_();
  std::string out =
      "r=" + nonce_ + ",s=" + cred_.salt + ",i=" + std::to_string(cred_.iteration_count);
  auth_message_ = std::string(bare) + "," + out;
  return out;
}

std::string ScramServer::SecondStep(std::string_view input) {
  auto bad_count = [](size_t got) {
    return ScramError("Incorrect number of arguments for second SCRAM client message, got " +
                      std::to_string(got) + " expected at least 3");
  };
  size_t last = input.rfind(',');
  if (last == std::string_view::npos) throw bad_count(1);
  std::string_view without_proof = input.substr(0, last);
  std::string_view proof_attr = input.substr(last + 1);
  if (proof_attr.size() < 3 || proof_attr.substr(0, 2) != "p=") {
    throw ScramError("Incorrect SCRAM ClientProof: " + std::string(proof_attr));
  }
  std::vector<std::string_view> attrs = SplitAttributes(without_proof);
  if (attrs.size() < 2) throw bad_count(attrs.size() + 1);
  if (attrs[0].substr(0, 2) != "c=" || attrs[0].size() < 3) {
    throw ScramError("Incorrect SCRAM channel binding: " + std::string(attrs[0]));
  }
  // As mongod, the channel-binding value itself is not checked (none is supported).
  if (attrs[1].substr(0, 2) != "r=" || attrs[1].size() < 6) {
    throw ScramError("Incorrect SCRAM client|server nonce: " + std::string(attrs[1]));
  }
  std::string_view nonce = attrs[1].substr(2);
  if (nonce != nonce_) {
    throw ScramError("Unmatched SCRAM nonce received from client in second step, expected " +
                     nonce_ + " but received " + std::string(nonce));
  }
  auth_message_ += ",";
  auth_message_ += without_proof;

  std::string proof, stored_key, server_key;
  Base64Decode(cred_.stored_key, &stored_key);
  Base64Decode(cred_.server_key, &server_key);
  if (!Base64Decode(proof_attr.substr(2), &proof) || proof.size() != stored_key.size()) {
    throw ScramError("SCRAM authentication failed, storedKey mismatch");
  }
  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof holds when
  // H(ClientKey) == StoredKey.
  std::string client_key = Xor(proof, Hmac(mech_, stored_key, auth_message_));
  std::string computed = Hash(mech_, client_key);
  if (CRYPTO_memcmp(computed.data(), stored_key.data(), stored_key.size()) != 0) {
    throw ScramError("SCRAM authentication failed, storedKey mismatch");
  }
  proved_ = true;
  done_ = skip_empty_exchange_;
  return "v=" + Base64Encode(Hmac(mech_, server_key, auth_message_));
}

}  // namespace wtm::auth
