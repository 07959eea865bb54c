#include "storage/s3_xml.h"

#include <charconv>
#include <cstring>
#include <ctime>

#include "common/error.h"

namespace pbm::storage::s3 {

namespace {

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsNameEnd(char c) {
  return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

}  // namespace

std::optional<std::string> XmlUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos) return std::nullopt;
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() >= 2 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string_view digits = ent.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      auto [p, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() ||
          cp > 0x10FFFF || cp == 0) {
        return std::nullopt;
      }
      AppendUtf8(cp, &out);
    } else {
      return std::nullopt;
    }
    i = semi;
  }
  return out;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string_view> XmlElements(std::string_view doc, std::string_view tag) {
  std::vector<std::string_view> out;
  const std::string open = "<" + std::string(tag);
  const std::string close = "</" + std::string(tag) + ">";
  size_t pos = 0;
  for (;;) {
    size_t start = doc.find(open, pos);
    if (start == std::string_view::npos) break;
    size_t after = start + open.size();
    if (after >= doc.size() || !IsNameEnd(doc[after])) {  // <KeyCount> when looking for <Key>
      pos = after;
      continue;
    }
    size_t gt = doc.find('>', after);
    if (gt == std::string_view::npos) Fail(ErrorKind::kIo, "S3 response: <{}> is not closed", tag);
    if (doc[gt - 1] == '/') {  // <tag/>
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    size_t end = doc.find(close, gt + 1);
    if (end == std::string_view::npos) {
      Fail(ErrorKind::kIo, "S3 response: <{}> has no closing tag", tag);
    }
    out.push_back(doc.substr(gt + 1, end - gt - 1));
    pos = end + close.size();
  }
  return out;
}

std::optional<std::string> XmlText(std::string_view doc, std::string_view tag) {
  auto elems = XmlElements(doc, tag);
  if (elems.empty()) return std::nullopt;
  auto text = XmlUnescape(elems.front());
  if (!text) Fail(ErrorKind::kIo, "S3 response: <{}> has a malformed entity", tag);
  return text;
}

std::optional<int64_t> ParseIso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
      s.back() != 'Z') {
    return std::nullopt;
  }
  auto num = [&](size_t at, size_t len, int* v) {
    auto [p, ec] = std::from_chars(s.data() + at, s.data() + at + len, *v);
    return ec == std::errc() && p == s.data() + at + len;
  };
  std::tm tm{};
  if (!num(0, 4, &tm.tm_year) || !num(5, 2, &tm.tm_mon) || !num(8, 2, &tm.tm_mday) ||
      !num(11, 2, &tm.tm_hour) || !num(14, 2, &tm.tm_min) || !num(17, 2, &tm.tm_sec)) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<int64_t> ParseHttpDate(std::string_view s) {
  std::string str(s);
  std::tm tm{};
  const char* end = strptime(str.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

ListPage ParseListObjectsV2(std::string_view body) {
  if (XmlElements(body, "ListBucketResult").empty()) {
    Fail(ErrorKind::kIo, "S3 ListObjectsV2: the response has no <ListBucketResult>");
  }
  ListPage page;
  for (std::string_view contents : XmlElements(body, "Contents")) {
    ListedObject obj;
    auto key = XmlText(contents, "Key");
    auto size = XmlText(contents, "Size");
    if (!key || !size) Fail(ErrorKind::kIo, "S3 ListObjectsV2: <Contents> without <Key> or <Size>");
    obj.key = std::move(*key);
    auto [p, ec] = std::from_chars(size->data(), size->data() + size->size(), obj.size);
    if (ec != std::errc() || p != size->data() + size->size() || obj.size < 0) {
      Fail(ErrorKind::kIo, "S3 ListObjectsV2: bad <Size> \"{}\" for {}", *size, obj.key);
    }
    if (auto lm = XmlText(contents, "LastModified")) {
      auto t = ParseIso8601(*lm);
      if (!t) Fail(ErrorKind::kIo, "S3 ListObjectsV2: bad <LastModified> \"{}\"", *lm);
      obj.mtime_unix = *t;
    }
    page.objects.push_back(std::move(obj));
  }
  // <IsTruncated> and <NextContinuationToken> are outside <Contents>; a key named like them
  // is inside <Key> and cannot match a tag.
  auto truncated = XmlText(body, "IsTruncated");
  page.truncated = truncated && *truncated == "true";
  if (page.truncated) {
    auto token = XmlText(body, "NextContinuationToken");
    if (!token || token->empty()) {
      Fail(ErrorKind::kIo, "S3 ListObjectsV2: truncated result without <NextContinuationToken>");
    }
    page.next_token = std::move(*token);
  }
  return page;
}

}  // namespace pbm::storage::s3
