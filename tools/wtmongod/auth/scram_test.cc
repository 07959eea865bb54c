#include "auth/scram.h"

#include <gtest/gtest.h>

#include <map>

namespace wtm::auth {
namespace {

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string B64(const std::string& text) {
  std::string out;
  EXPECT_TRUE(Base64Decode(text, &out)) << text;
  return out;
}

// One published conversation: the stored credential is derived from the password, the server's
// nonce is fixed, and the server must accept the published proof and answer the published
// signature.
struct Vector {
  Mechanism mech;
  std::string scram_password;  // what SCRAM hashes (already digested for SCRAM-SHA-1)
  std::string salt_b64;
  int iterations;
  std::string client_nonce;
  std::string server_nonce;
  std::string proof;
  std::string server_signature;
};

void RunVector(const Vector& v) {
  Credential cred = MakeCredential(v.mech, v.scram_password, B64(v.salt_b64), v.iterations);
  EXPECT_EQ(cred.salt, v.salt_b64);
  EXPECT_EQ(cred.iteration_count, v.iterations);
  ScramServer s(
      v.mech,
      [&](const std::string& user) -> std::optional<Credential> {
        if (user == "user") return cred;
        return std::nullopt;
      },
      [&] { return v.server_nonce; });
  s.set_skip_empty_exchange(true);
  std::string nonce = v.client_nonce + v.server_nonce;
  EXPECT_EQ(s.Step("n,,n=user,r=" + v.client_nonce),
            "r=" + nonce + ",s=" + v.salt_b64 + ",i=" + std::to_string(v.iterations));
  EXPECT_FALSE(s.done());
  EXPECT_EQ(s.Step("c=biws,r=" + nonce + ",p=" + v.proof), "v=" + v.server_signature);
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.user(), "user");
}

const Vector kRfc5802{Mechanism::kScramSha1,
                      "pencil",
                      "QSXCR+Q6sek8bf92",
                      4096,
                      "fyko+d2lbbFgONRv9qkxdawL",
                      "3rfcNHYJY1ZVvWVs7j",
                      "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                      "rmF9pqV8S7suAoZWja4dJRkFsKQ="};

const Vector kRfc7677{Mechanism::kScramSha256,
                      "pencil",
                      "W22ZaJ0SNY7soEsUEjb6gQ==",
                      4096,
                      "rOprNGfwEbeRWgbNEkqO",
                      "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                      "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                      "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="};

// The drivers' auth specification: user "user", password "pencil", MongoDB's MD5 digest.
const Vector kMongoSha1{Mechanism::kScramSha1,          MongoPasswordDigest("user", "pencil"),
                        "rQ9ZY3MntBeuP3E1TDVC4w==",     10000,
                        "fyko+d2lbbFgONRv9qkxdawL",     "Ho+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE",
                        "MC2T8BvbmWRckDw8oWl5IVghwCY=", "UMWeI25JD1yNYZRMpZ4VHvhZ9e0="};

TEST(ScramTest, Rfc5802Sha1Vector) { RunVector(kRfc5802); }
TEST(ScramTest, Rfc7677Sha256Vector) { RunVector(kRfc7677); }
TEST(ScramTest, MongoDbSpecSha1Vector) { RunVector(kMongoSha1); }

TEST(ScramTest, MongoDbSpecSha256VectorIsTheRfcOne) {
  // The drivers' spec uses RFC 7677's conversation; SASLprep leaves "pencil" as it is.
  Vector v = kRfc7677;
  v.scram_password = ScramPassword(Mechanism::kScramSha256, "user", "pencil");
  RunVector(v);
}

TEST(ScramTest, MongoPasswordDigest) {
  EXPECT_EQ(MongoPasswordDigest("user", "pencil"), "1c33006ec1ffd90f9cadcbcc0e118200");
  EXPECT_EQ(ScramPassword(Mechanism::kScramSha1, "user", "pencil"),
            "1c33006ec1ffd90f9cadcbcc0e118200");
}

TEST(ScramTest, Pbkdf2Vectors) {
  // RFC 6070 (HMAC-SHA1) and RFC 7914 section 11 (HMAC-SHA256), first block.
  EXPECT_EQ(HexEncode(SaltedPassword(Mechanism::kScramSha1, "password", "salt", 1)),
            "0c60c80f961f0e71f3a9b524af6012062fe037a6");
  EXPECT_EQ(HexEncode(SaltedPassword(Mechanism::kScramSha1, "password", "salt", 4096)),
            "4b007901b765489abead49d926f721d065a429c1");
  EXPECT_EQ(HexEncode(SaltedPassword(Mechanism::kScramSha256, "passwd", "salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
}

TEST(ScramTest, HashAndHmacVectors) {
  EXPECT_EQ(HexEncode(Hash(Mechanism::kScramSha1, "abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(HexEncode(Hash(Mechanism::kScramSha256, "abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(Hmac(Mechanism::kScramSha256, "Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(ScramTest, Base64) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  std::string out;
  EXPECT_TRUE(Base64Decode("Zg==", &out));
  EXPECT_EQ(out, "f");
  EXPECT_TRUE(Base64Decode("Zm8=", &out));
  EXPECT_EQ(out, "fo");
  EXPECT_TRUE(Base64Decode("", &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(Base64Decode("Zg=", &out));
  EXPECT_FALSE(Base64Decode("Z=g=", &out));
  EXPECT_FALSE(Base64Decode("Zm9*", &out));
  std::string bin = Unhex("00ff10fe7f80");
  ASSERT_TRUE(Base64Decode(Base64Encode(bin), &out));
  EXPECT_EQ(out, bin);
}

TEST(ScramTest, SaslPrepAsciiOnly) {
  EXPECT_EQ(SaslPrep("pencil"), "pencil");
  EXPECT_EQ(SaslPrep("p a$$ w0rd!~"), "p a$$ w0rd!~");
  EXPECT_THROW(SaslPrep(""), std::invalid_argument);
  EXPECT_THROW(SaslPrep("tab\tbed"), std::invalid_argument);
  EXPECT_THROW(SaslPrep("I\xC2\xADX"), std::invalid_argument);  // soft hyphen: needs mapping
  EXPECT_THROW(ScramPassword(Mechanism::kScramSha256, "u", "caf\xC3\xA9"), std::invalid_argument);
  // SCRAM-SHA-1 hashes the digest, so any password goes.
  EXPECT_EQ(ScramPassword(Mechanism::kScramSha1, "u", "caf\xC3\xA9").size(), 32u);
}

TEST(ScramTest, NewCredentialHasMongodShape) {
  Credential c1 = NewCredential(Mechanism::kScramSha1, "u", "pw");
  Credential c256 = NewCredential(Mechanism::kScramSha256, "u", "pw");
  EXPECT_EQ(c1.iteration_count, 10000);
  EXPECT_EQ(c256.iteration_count, 15000);
  EXPECT_EQ(B64(c1.salt).size(), 16u);
  EXPECT_EQ(B64(c256.salt).size(), 28u);
  EXPECT_EQ(B64(c1.stored_key).size(), 20u);
  EXPECT_EQ(B64(c256.server_key).size(), 32u);
  EXPECT_NE(NewCredential(Mechanism::kScramSha256, "u", "pw").salt, c256.salt);
  // Deterministic given the salt.
  Credential again = MakeCredential(Mechanism::kScramSha256, "pw", B64(c256.salt), 15000);
  EXPECT_EQ(again.stored_key, c256.stored_key);
  EXPECT_EQ(again.server_key, c256.server_key);
}

// A conversation against kMongoSha1's credential, for the failure cases.
ScramServer MongoServer() {
  Credential cred = MakeCredential(Mechanism::kScramSha1, kMongoSha1.scram_password,
                                   B64(kMongoSha1.salt_b64), kMongoSha1.iterations);
  return ScramServer(
      Mechanism::kScramSha1,
      [cred](const std::string& user) -> std::optional<Credential> {
        if (user == "user") return cred;
        return std::nullopt;
      },
      [] { return kMongoSha1.server_nonce; });
}

const std::string kNonce = kMongoSha1.client_nonce + kMongoSha1.server_nonce;

TEST(ScramTest, WrongProofFails) {
  ScramServer s = MongoServer();
  s.Step("n,,n=user,r=" + kMongoSha1.client_nonce);
  try {
    s.Step("c=biws,r=" + kNonce + ",p=AC2T8BvbmWRckDw8oWl5IVghwCY=");
    FAIL() << "accepted a wrong proof";
  } catch (const ScramError& e) {
    EXPECT_STREQ(e.what(), "SCRAM authentication failed, storedKey mismatch");
  }
  EXPECT_FALSE(s.done());
  // A failed conversation stays failed.
  EXPECT_THROW(s.Step(""), ScramError);
}

TEST(ScramTest, UnknownUserFails) {
  ScramServer s = MongoServer();
  EXPECT_THROW(s.Step("n,,n=nobody,r=" + kMongoSha1.client_nonce), ScramError);
}

TEST(ScramTest, NonceMustMatch) {
  ScramServer s = MongoServer();
  s.Step("n,,n=user,r=" + kMongoSha1.client_nonce);
  EXPECT_THROW(s.Step("c=biws,r=" + kMongoSha1.client_nonce + "XXXX,p=" + kMongoSha1.proof),
               ScramError);
}

TEST(ScramTest, MalformedFirstMessages) {
  for (std::string bad :
       {"", "n", "n,", "p=tls-unique,,n=user,r=abcdefgh", "x,,n=user,r=abcdefgh",
        "n,,m=ext,n=user,r=abcdefgh", "n,,n=user", "n,,user,r=abcdefgh", "n,,n=user,r=abc",
        "n,,n=us=er,r=abcdefgh", "n,b,n=user,r=abcdefgh", "n,a=other,n=user,r=abcdefgh"}) {
    ScramServer s = MongoServer();
    EXPECT_THROW(s.Step(bad), ScramError) << bad;
  }
}

TEST(ScramTest, UserNameEscapesAndAuthzid) {
  std::string seen;
  ScramServer s(Mechanism::kScramSha256, [&](const std::string& user) -> std::optional<Credential> {
    seen = user;
    return MakeCredential(Mechanism::kScramSha256, "pw", "saltsalt", 4096);
  });
  s.Step("y,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=abcdefgh");
  EXPECT_EQ(seen, "a,b=c");
}

TEST(ScramTest, EmptyExchangeWithoutSkip) {
  // Without skipEmptyExchange mongod wants one more, empty, round after the signature.
  ScramServer s = MongoServer();
  s.Step("n,,n=user,r=" + kMongoSha1.client_nonce);
  EXPECT_EQ(s.Step("c=biws,r=" + kNonce + ",p=" + kMongoSha1.proof),
            "v=" + kMongoSha1.server_signature);
  EXPECT_FALSE(s.done());
  EXPECT_EQ(s.Step(""), "");
  EXPECT_TRUE(s.done());
}

TEST(ScramTest, EmptyRoundBeforeProofFails) {
  ScramServer s = MongoServer();
  s.Step("n,,n=user,r=" + kMongoSha1.client_nonce);
  EXPECT_THROW(s.Step(""), ScramError);
}

TEST(ScramTest, DefaultServerNonceIs32Base64Chars) {
  ScramServer s(Mechanism::kScramSha256, [](const std::string&) -> std::optional<Credential> {
    return MakeCredential(Mechanism::kScramSha256, "pw", "saltsalt", 4096);
  });
  std::string first = s.Step("n,,n=u,r=clientnonce");
  ASSERT_EQ(first.rfind("r=clientnonce", 0), 0u);
  std::string server_part = first.substr(13, first.find(',') - 13);
  EXPECT_EQ(server_part.size(), 32u);
  EXPECT_EQ(B64(server_part).size(), 24u);
}

}  // namespace
}  // namespace wtm::auth
