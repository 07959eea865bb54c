#include "auth/security_file.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace wtm::auth {
namespace {

constexpr int kInvalidPath = 30;
constexpr int kUnsupportedFormat = 12;

std::string CheckKey(const std::string& path, std::string key) {
  std::string out;
  for (char c : key) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=';
    if (!ok) {
      throw SecurityFileError(kUnsupportedFormat,
                              "invalid char in key file " + path + ": " + std::string(1, c));
    }
    out += c;
  }
  if (out.size() < 6 || out.size() > 1024) {
    throw SecurityFileError(kUnsupportedFormat, "security key in " + path + " has length " +
                                                    std::to_string(out.size()) +
                                                    ", must be between 6 and 1024 chars");
  }
  return out;
}

}  // namespace

std::vector<std::string> ReadSecurityFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    throw SecurityFileError(kInvalidPath,
                            "Error reading file " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    throw SecurityFileError(kInvalidPath, "permissions on " + path + " are too open");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw SecurityFileError(kInvalidPath,
                            "error opening file: " + path + ": " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> keys;
  try {
    YAML::Node doc = YAML::Load(text.str());
    if (doc.IsScalar()) {
      keys.push_back(CheckKey(path, doc.Scalar()));
    } else if (doc.IsSequence() && doc.size() > 0) {
      for (const auto& k : doc) {
        if (!k.IsScalar()) {
          throw SecurityFileError(kUnsupportedFormat,
                                  "Security file " + path + " must contain strings only");
        }
        keys.push_back(CheckKey(path, k.Scalar()));
      }
    } else {
      throw SecurityFileError(kUnsupportedFormat, "Security file " + path +
                                                      " must contain a string or an array of "
                                                      "strings");
    }
  } catch (const YAML::Exception& e) {
    throw SecurityFileError(kUnsupportedFormat,
                            "Error parsing security file " + path + ": " + e.msg);
  }
  return keys;
}

}  // namespace wtm::auth
