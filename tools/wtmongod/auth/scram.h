// SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) as MongoDB uses them: the credentials stored
// in admin.system.users and the server side of one SASL conversation. The hash functions come
// from OpenSSL; only the protocol is written here.
//
// MongoDB's conventions on top of the RFCs:
// - SCRAM-SHA-1 hashes not the password but hex(MD5("<user>:mongo:<password>")).
// - SCRAM-SHA-256 hashes the SASLprep'd password (here: printable ASCII only, see SaslPrep).
// - The server nonce is the client's followed by base64 of 24 random bytes.
// - Channel binding is not supported (gs2 flag "n" or "y"); an authzid must equal the user.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace wtm::auth {

enum class Mechanism { kScramSha1, kScramSha256 };

// "SCRAM-SHA-1" / "SCRAM-SHA-256".
const char* MechanismName(Mechanism m);
// The mechanism of that name; nullopt for any other.
std::optional<Mechanism> ParseMechanism(std::string_view name);

// Default iteration counts of mongod 6.0 (scramIterationCount, scramSHA256IterationCount).
constexpr int kDefaultIterationsSha1 = 10000;
constexpr int kDefaultIterationsSha256 = 15000;
// Salt lengths mongod generates: the hash length minus 4 bytes (16 and 28).
int SaltLength(Mechanism m);

// ---- primitives (binary strings in, binary strings out) ----

std::string Base64Encode(std::string_view data);
// False when `text` is not valid padded base64.
bool Base64Decode(std::string_view text, std::string* out);
std::string HexEncode(std::string_view data);  // lowercase

std::string Hash(Mechanism m, std::string_view data);  // SHA-1 or SHA-256
std::string Hmac(Mechanism m, std::string_view key, std::string_view data);
// Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC and one block of output.
std::string SaltedPassword(Mechanism m, std::string_view password, std::string_view salt,
                           int iterations);
std::string RandomBytes(size_t n);  // from OpenSSL's CSPRNG

// MongoDB's legacy digest: hex(MD5("<user>:mongo:<password>")), SCRAM-SHA-1's password.
std::string MongoPasswordDigest(std::string_view user, std::string_view password);

// SASLprep (RFC 4013) restricted to what wtmongod implements: printable ASCII (0x20..0x7E) comes
// back unchanged. Throws std::invalid_argument for an empty result, control characters (which
// SASLprep prohibits) and any non-ASCII byte (mapping and normalisation are not implemented).
std::string SaslPrep(std::string_view password);

// The string SCRAM actually hashes for `user`'s cleartext `password` (see above). Throws
// std::invalid_argument when SaslPrep refuses the password (SCRAM-SHA-256 only).
std::string ScramPassword(Mechanism m, std::string_view user, std::string_view password);

// ---- stored credentials ----

// One mechanism's entry in a user document's `credentials` (all fields base64 as mongod stores
// them): {iterationCount, salt, storedKey, serverKey}.
struct Credential {
  int iteration_count = 0;
  std::string salt;        // base64
  std::string stored_key;  // base64 of H(HMAC(SaltedPassword, "Client Key"))
  std::string server_key;  // base64 of HMAC(SaltedPassword, "Server Key")
};

// The credential for `scram_password` (already digested / SASLprep'd) with a given raw salt.
Credential MakeCredential(Mechanism m, std::string_view scram_password, std::string_view salt,
                          int iterations);
// The credential for `user`'s cleartext `password` with a fresh random salt and the default
// iteration count. Throws std::invalid_argument as ScramPassword does.
Credential NewCredential(Mechanism m, std::string_view user, std::string_view password);

// ---- the server side of one conversation ----

// A failed step. `what()` is the reason for the server log; clients are only told
// "Authentication failed." (mongod hides every reason from them).
class ScramError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ScramServer {
 public:
  // Finds the stored credential of a user of this mechanism; nullopt when the user does not
  // exist or has no credential for it.
  using Lookup = std::function<std::optional<Credential>(const std::string& user)>;
  // `nonce_source` makes the server's part of the nonce (tests pass a fixed one); by default
  // base64 of 24 random bytes, as mongod.
  ScramServer(Mechanism m, Lookup lookup, std::function<std::string()> nonce_source = nullptr);

  // Runs the next step on the client's message and returns the server's. Step 1 takes the
  // client-first-message and returns the server-first-message; step 2 takes the
  // client-final-message, checks the proof and returns "v=<ServerSignature>". With
  // skip_empty_exchange off, a third step takes an empty message and returns "" (mongod's
  // extra round). Throws ScramError on any failure; the conversation is then finished.
  std::string Step(std::string_view input);

  // Whether the client proved its password (and, without skipEmptyExchange, finished).
  bool done() const { return done_; }
  void set_skip_empty_exchange(bool v) { skip_empty_exchange_ = v; }
  // The user name from the client-first-message ("" before step 1).
  const std::string& user() const { return user_; }
  Mechanism mechanism() const { return mech_; }

 private:
  std::string FirstStep(std::string_view input);
  std::string SecondStep(std::string_view input);

  Mechanism mech_;
  Lookup lookup_;
  std::function<std::string()> nonce_source_;
  bool skip_empty_exchange_ = false;
  int step_ = 0;
  bool failed_ = false;
  bool proved_ = false;
  bool done_ = false;
  std::string user_;
  std::string nonce_;  // client nonce + server nonce
  std::string
      auth_message_;  // client-first-bare "," server-first (then "," client-final w/o proof)
  Credential cred_;
};

}  // namespace wtm::auth
