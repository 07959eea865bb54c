#include "query/regex.h"

#include "common/error.h"

namespace wtm::query {
namespace {

// Rewrites the pattern for the s and x options, leaving escapes and character classes alone.
std::string Rewrite(std::string_view p, bool dotall, bool extended) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      out.push_back(c);
      out.push_back(p[++i]);
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      // A leading ']' (or '^]') is literal inside a class.
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);
      continue;
    }
    if (extended && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')) {
      continue;
    }
    if (extended && c == '#') {
      while (i < p.size() && p[i] != '\n') ++i;
      continue;
    }
    if (dotall && c == '.') {
      out += "[\\s\\S]";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

Regex::Regex(std::string_view pattern, std::string_view options)
    : pattern_(pattern), options_(options) {
  auto flags = std::regex::ECMAScript;
  bool dotall = false, extended = false;
  for (char c : options) {
    switch (c) {
      case 'i':
        flags |= std::regex::icase;
        break;
      case 'm':
        flags |= std::regex::multiline;
        break;
      case 's':
        dotall = true;
        break;
      case 'x':
        extended = true;
        break;
      case 'u':  // UTF-8 is the default for mongod too
        break;
      default:
        throw MongoError(51108, std::string("invalid flag in regex options: ") + c);
    }
  }
  try {
    re_ = std::regex(Rewrite(pattern, dotall, extended), flags);
  } catch (const std::regex_error& e) {
    throw MongoError(51091, "Regular expression is invalid: " + std::string(e.what()));
  }
}

bool Regex::Search(std::string_view s) const { return std::regex_search(s.begin(), s.end(), re_); }

}  // namespace wtm::query
