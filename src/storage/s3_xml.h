// The few pieces of S3's XML responses the driver reads (ListObjectsV2, errors, multipart upload
// ids, DeleteObjects results), by a minimal hand-written scanner: S3 responses are flat,
// machine-written documents without DTDs, CDATA or namespaces prefixes on the elements we read,
// and a full XML library would be a new dependency for five element names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pbm::storage::s3 {

// "&amp;" → "&", "&lt;", "&gt;", "&quot;", "&apos;", "&#NN;" and "&#xHH;" (UTF-8 encoded).
// Returns nullopt for a malformed or unknown entity.
std::optional<std::string> XmlUnescape(std::string_view s);
// Escapes & < > " ' for element text.
std::string XmlEscape(std::string_view s);

// The raw contents of every <tag ...>...</tag> (or empty for <tag/>) in `doc`, in order; an
// element of the same name nested inside another is not supported (S3 never does that for the
// names we read). Throws kIo for an element that is not closed.
std::vector<std::string_view> XmlElements(std::string_view doc, std::string_view tag);
// The unescaped text of the first <tag> in `doc`, or nullopt if there is none.
std::optional<std::string> XmlText(std::string_view doc, std::string_view tag);

struct ListedObject {
  std::string key;
  int64_t size = 0;
  int64_t mtime_unix = 0;
};
struct ListPage {
  std::vector<ListedObject> objects;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken when truncated
};
// Parses a ListObjectsV2 result. Throws kIo naming what is malformed.
ListPage ParseListObjectsV2(std::string_view body);

// "2026-01-02T03:04:05.000Z" → seconds since the epoch; nullopt if malformed.
std::optional<int64_t> ParseIso8601(std::string_view s);
// "Fri, 02 Jan 2026 03:04:05 GMT" (HTTP date) → seconds since the epoch; nullopt if malformed.
std::optional<int64_t> ParseHttpDate(std::string_view s);

}  // namespace pbm::storage::s3
