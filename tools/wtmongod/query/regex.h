// MongoDB regular expressions ($regex / BSON regex) on std::regex.
#pragma once

#include <regex>
#include <string>
#include <string_view>

namespace wtm::query {

// A compiled pattern with mongod's options: i (case-insensitive), m (^/$ at line breaks), s (dot
// matches newlines; done by rewriting '.'), x (extended: unescaped whitespace and #-comments
// outside classes are dropped). ECMAScript syntax, so PCRE-only constructs are rejected: throws
// MongoError(51091, "Regular expression is invalid: ...") for those and for unknown options
// (MongoError(51108, "invalid flag in regex options: c")).
class Regex {
 public:
  Regex(std::string_view pattern, std::string_view options);
  // Unanchored search, as mongod does.
  bool Search(std::string_view s) const;
  const std::string& pattern() const { return pattern_; }
  const std::string& options() const { return options_; }

 private:
  std::string pattern_;
  std::string options_;
  std::regex re_;
};

}  // namespace wtm::query
