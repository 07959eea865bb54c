// mongod-style structured log lines: {"t":{"$date":...},"s":"I","c":"REPL","ctx":"...","msg":"...","attr":{...}}
#pragma once

#include <string>
#include <string_view>

namespace wtm {

enum class Severity { kDebug, kInfo, kWarning, kError, kFatal };

// Sends log lines to `path` (appending when `append`, else truncating), or stdout when empty.
void InitLog(const std::string& path, bool append);
// Sets the name shown in "ctx" for lines logged from this thread.
void SetThreadName(std::string_view name);
// Writes one line. `attr_json` is a JSON object text ("{}" when empty); thread-safe.
void Log(Severity s, std::string_view component, std::string_view msg, std::string_view attr_json = "{}");

// JSON string literal with escapes, for building attr objects.
std::string JsonQuote(std::string_view s);

}  // namespace wtm

#define WTM_LOG(comp, msg, attr) ::wtm::Log(::wtm::Severity::kInfo, comp, msg, attr)
#define WTM_WARN(comp, msg, attr) ::wtm::Log(::wtm::Severity::kWarning, comp, msg, attr)
#define WTM_ERROR(comp, msg, attr) ::wtm::Log(::wtm::Severity::kError, comp, msg, attr)
