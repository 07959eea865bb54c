// Test data for the codec tests and benchmark: reproducible random bytes and BSON-like text that
// compresses about as well as real collection files.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <random>
#include <string>

namespace pbm::codec::testing {

inline std::string RandomBytes(size_t n, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    for (int k = 0; k < 8; ++k) s[i + k] = static_cast<char>(v >> (8 * k));
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

// Documents as a database stores them: repeated field names, small integers, short strings from
// a vocabulary, some random ids.
inline std::string DocumentLike(size_t n, uint64_t seed = 2) {
  static const char* kWords[] = {"alpha", "bravo", "charlie", "delta",  "echo", "foxtrot",
                                 "golf",  "hotel", "india",   "juliet", "kilo", "lima"};
  std::mt19937_64 rng(seed);
  std::string s;
  s.reserve(n + 256);
  for (uint64_t id = 0; s.size() < n; ++id) {
    s += fmt::format(
        "{{\"_id\":{{\"$oid\":\"{:016x}{:08x}\"}},\"n\":{},\"name\":\"{} {}\",\"qty\":{},"
        "\"tags\":[\"{}\",\"{}\"],\"price\":{}.{:02d}}}\n",
        rng(), static_cast<uint32_t>(rng()), id, kWords[rng() % 12], kWords[rng() % 12],
        rng() % 1000, kWords[rng() % 12], kWords[rng() % 12], rng() % 500, rng() % 100);
  }
  s.resize(n);
  return s;
}

}  // namespace pbm::codec::testing
