#include "common/log.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>
#include <mutex>

namespace wtm {
namespace {

std::mutex g_mu;
FILE* g_out = nullptr;
thread_local std::string t_name = "main";

const char* SeverityCode(Severity s) {
  switch (s) {
    case Severity::kDebug:
      return "D1";
    case Severity::kInfo:
      return "I";
    case Severity::kWarning:
      return "W";
    case Severity::kError:
      return "E";
    case Severity::kFatal:
      return "F";
  }
  return "I";
}

}  // namespace

void InitLog(const std::string& path, bool append) {
  std::lock_guard<std::mutex> l(g_mu);
  if (g_out && g_out != stdout) fclose(g_out);
  g_out = stdout;
  if (!path.empty()) {
    FILE* f = fopen(path.c_str(), append ? "a" : "w");
    if (f) {
      setvbuf(f, nullptr, _IOLBF, 0);
      g_out = f;
    }
  }
}

void SetThreadName(std::string_view name) { t_name = std::string(name); }

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void Log(Severity s, std::string_view component, std::string_view msg, std::string_view attr_json) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm tmv;
  gmtime_r(&tv.tv_sec, &tmv);
  char ts[40];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tmv);
  std::string line = "{\"t\":{\"$date\":\"" + std::string(ts);
  char ms[16];
  snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(tv.tv_usec / 1000));
  line += ms;
  line += "\"},\"s\":\"";
  line += SeverityCode(s);
  line += "\",\"c\":\"";
  line += component;
  line += "\",\"ctx\":" + JsonQuote(t_name) + ",\"msg\":" + JsonQuote(msg);
  if (!attr_json.empty() && attr_json != "{}") {
    line += ",\"attr\":";
    line += attr_json;
  }
  line += "}\n";
  std::lock_guard<std::mutex> l(g_mu);
  FILE* out = g_out ? g_out : stdout;
  fwrite(line.data(), 1, line.size(), out);
  fflush(out);
}

}  // namespace wtm
