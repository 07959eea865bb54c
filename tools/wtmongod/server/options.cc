#include "server/options.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <variant>

#include "common/error.h"

namespace wtm {
namespace {

// How an option's value is written.
enum class Kind {
  kString,
  kInt,     // integer within [min, max]
  kDouble,  // number within [min, max]
  kBool,    // takes a value: true|false|1|0
  kSwitch,  // command line: no value (sets true); config file: bool
  kEnum,    // one of `allowed`
};

struct Spec {
  const char* flag;  // command-line name without "--"; nullptr for config-file-only options
  const char* key;   // config path; also where the option appears in "parsed"
  bool in_file;      // accepted in the YAML config file
  Kind kind;
  std::vector<std::string> allowed = {};
  double min = 0, max = 0;
  const char* help = "";
};

const std::vector<Spec>& Specs() {
  static const std::vector<Spec> specs = {
      {"dbpath",
       "storage.dbPath",
       true,
       Kind::kString,
       {},
       0,
       0,
       "directory for datafiles - defaults to /data/db"},
      {"directoryperdb",
       "storage.directoryPerDB",
       true,
       Kind::kSwitch,
       {},
       0,
       0,
       "each database will be stored in a separate directory"},
      {"syncdelay",
       "storage.syncPeriodSecs",
       true,
       Kind::kDouble,
       {},
       0,
       31536000,
       "seconds between checkpoints (default 60)"},
      {"storageEngine",
       "storage.engine",
       true,
       Kind::kEnum,
       {"wiredTiger"},
       0,
       0,
       "what storage engine to use - defaults to wiredTiger"},
      {"wiredTigerCacheSizeGB",
       "storage.wiredTiger.engineConfig.cacheSizeGB",
       true,
       Kind::kDouble,
       {},
       0,
       10000,
       "maximum amount of memory to allocate for cache; 0 = automatic"},
      {"wiredTigerJournalCompressor",
       "storage.wiredTiger.engineConfig.journalCompressor",
       true,
       Kind::kEnum,
       {"none", "snappy", "zlib", "zstd"},
       0,
       0,
       "use a compressor for log records [none|snappy|zlib|zstd]"},
      {"wiredTigerDirectoryForIndexes",
       "storage.wiredTiger.engineConfig.directoryForIndexes",
       true,
       Kind::kSwitch,
       {},
       0,
       0,
       "put indexes and data in different directories"},
      {"wiredTigerCollectionBlockCompressor",
       "storage.wiredTiger.collectionConfig.blockCompressor",
       true,
       Kind::kEnum,
       {"none", "snappy", "zlib", "zstd"},
       0,
       0,
       "block compression algorithm for collection data [none|snappy|zlib|zstd]"},
      {"wiredTigerIndexPrefixCompression",
       "storage.wiredTiger.indexConfig.prefixCompression",
       true,
       Kind::kBool,
       {},
       0,
       0,
       "use prefix compression on row-store leaf pages (true|false)"},
      {"logpath",
       "systemLog.path",
       true,
       Kind::kString,
       {},
       0,
       0,
       "log file to send write to instead of stdout"},
      {"logappend",
       "systemLog.logAppend",
       true,
       Kind::kSwitch,
       {},
       0,
       0,
       "append to logpath instead of over-writing"},
      {nullptr, "systemLog.destination", true, Kind::kEnum, {"file", "syslog"}, 0, 0, ""},
      {"port",
       "net.port",
       true,
       Kind::kInt,
       {},
       0,
       65535,
       "specify port number - 27017 by default"},
      {"bind_ip",
       "net.bindIp",
       true,
       Kind::kString,
       {},
       0,
       0,
       "comma separated list of ip addresses to listen on - localhost by default"},
      {"bind_ip_all", "net.bindIpAll", true, Kind::kSwitch, {}, 0, 0, "bind to all ip addresses"},
      {"replSet",
       "replication.replSet",
       false,
       Kind::kString,
       {},
       0,
       0,
       "arg is <setname>[/<optionalseedhostlist>]"},
      {nullptr, "replication.replSetName", true, Kind::kString, {}, 0, 0, ""},
      {"oplogSize",
       "replication.oplogSizeMB",
       true,
       Kind::kInt,
       {},
       1,
       1024.0 * 1024 * 1024,
       "size to use (in MB) for replication op log. default is 5% of disk space"},
      {"enableEncryption",
       "security.enableEncryption",
       true,
       Kind::kSwitch,
       {},
       0,
       0,
       "enable encryption at rest (needs --encryptionKeyFile)"},
      {"encryptionKeyFile",
       "security.encryptionKeyFile",
       true,
       Kind::kString,
       {},
       0,
       0,
       "the path to encryption key file"},
      {"encryptionCipherMode",
       "security.encryptionCipherMode",
       true,
       Kind::kEnum,
       {"AES256-CBC", "AES256-GCM"},
       0,
       0,
       "cipher mode to use for encryption at rest"},
      {"auth", "security.authorization", false, Kind::kSwitch, {}, 0, 0, "run with security"},
      {"noauth", "security.noauth", false, Kind::kSwitch, {}, 0, 0, "run without security"},
      {nullptr, "security.authorization", true, Kind::kEnum, {"enabled", "disabled"}, 0, 0, ""},
      {"keyFile",
       "security.keyFile",
       true,
       Kind::kString,
       {},
       0,
       0,
       "private key for cluster authentication"},
      {"clusterAuthMode",
       "security.clusterAuthMode",
       true,
       Kind::kEnum,
       {"keyFile"},
       0,
       0,
       "authentication mode used for cluster authentication (only keyFile is supported)"},
      {"fork",
       "processManagement.fork",
       true,
       Kind::kSwitch,
       {},
       0,
       0,
       "fork server process (not supported)"},
  };
  return specs;
}

// setParameter names wtmongod accepts, and how their values are checked.
struct ParamSpec {
  const char* name;
  bool is_bool;
  int64_t min = 0, max = 0;  // for integers
};

const std::vector<ParamSpec>& Params() {
  static const std::vector<ParamSpec> params = {
      {"recoverFromOplogAsStandalone", true},
      {"takeUnstableCheckpointOnShutdown", true},
      {"enableTestCommands", true},
      {"cursorTimeoutMillis", false, 0, INT64_MAX},
      {"ttlMonitorEnabled", true},
      {"disableLogicalSessionCacheRefresh", true},
      {"logLevel", false, 0, 5},
      {"maxIndexBuildMemoryUsageMegabytes", false, 50, INT64_MAX},
      {"oplogFetcherBatchSize", false, 1, INT64_MAX},
      {"heartbeatIntervalMillis", false, 1, INT64_MAX},
  };
  return params;
}

using Value = std::variant<std::string, int64_t, double, bool>;
using Env = std::map<std::string, Value>;

// An option error; the message lacks the "Error parsing ..." prefix.
struct OptionError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const Spec* FindFlag(std::string_view flag) {
  for (const Spec& s : Specs())
    if (s.flag && flag == s.flag) return &s;
  return nullptr;
}

const Spec* FindKey(std::string_view key) {
  for (const Spec& s : Specs())
    if (s.in_file && key == s.key) return &s;
  return nullptr;
}

std::optional<bool> ParseBool(std::string_view v) {
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return std::nullopt;
}

std::optional<int64_t> ParseInt(std::string_view v) {
  int64_t out = 0;
  if (v.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return out;
}

std::optional<double> ParseDouble(std::string_view v) {
  if (v.empty()) return std::nullopt;
  std::string s(v);
  char* end = nullptr;
  errno = 0;
  double out = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size()) return std::nullopt;
  return out;
}

std::string FormatNumber(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

// Converts `text` to the option's type; `name` is how the user wrote the option ("--port",
// "net.port").
Value ConvertValue(const Spec& spec, const std::string& name, const std::string& text) {
  auto invalid = [&](const std::string& why) {
    return OptionError("the argument ('" + text + "') for option '" + name + "' is invalid" +
                       (why.empty() ? "" : ": " + why));
  };
  switch (spec.kind) {
    case Kind::kString:
      return text;
    case Kind::kInt: {
      auto v = ParseInt(text);
      if (!v) throw invalid("");
      if (*v < spec.min || *v > spec.max)
        throw invalid("must be between " + FormatNumber(spec.min) + " and " +
                      FormatNumber(spec.max));
      return *v;
    }
    case Kind::kDouble: {
      auto v = ParseDouble(text);
      if (!v) throw invalid("");
      if (!(*v >= spec.min && *v <= spec.max))
        throw invalid("must be between " + FormatNumber(spec.min) + " and " +
                      FormatNumber(spec.max));
      return *v;
    }
    case Kind::kBool:
    case Kind::kSwitch: {
      auto v = ParseBool(text);
      if (!v) throw invalid("expected true or false");
      return *v;
    }
    case Kind::kEnum: {
      for (const std::string& a : spec.allowed)
        if (text == a) return text;
      std::string list;
      for (const std::string& a : spec.allowed) list += (list.empty() ? "" : ", ") + a;
      throw invalid("allowed values are " + list);
    }
  }
  throw invalid("");
}

// Validates one setParameter and stores it as "setParameter.<name>" (a string, as mongod reports
// it).
void SetParameter(const std::string& name, const std::string& value, Env* env) {
  const ParamSpec* spec = nullptr;
  for (const ParamSpec& p : Params())
    if (name == p.name) spec = &p;
  if (!spec) throw OptionError("Unknown --setParameter '" + name + "'");
  if (spec->is_bool) {
    if (!ParseBool(value))
      throw OptionError("Bad value for --setParameter '" + name + "': '" + value +
                        "' is not a bool (true, false, 1 or 0)");
  } else {
    auto v = ParseInt(value);
    if (!v)
      throw OptionError("Bad value for --setParameter '" + name + "': '" + value +
                        "' is not an integer");
    if (*v < spec->min || *v > spec->max)
      throw OptionError(
          "Bad value for --setParameter '" + name + "': " + value + " must be at least " +
          std::to_string(spec->min) +
          (spec->max == INT64_MAX ? "" : " and at most " + std::to_string(spec->max)));
  }
  (*env)["setParameter." + name] = value;
}

struct CommandLine {
  Env env;
  std::string config;
  bool help = false;
  bool version = false;
};

CommandLine ParseCommandLine(int argc, const char* const* argv) {
  CommandLine cl;
  std::map<std::string, int> seen;
  auto once = [&](const std::string& flag) {
    if (++seen[flag] > 1)
      throw OptionError("option '" + flag + "' cannot be specified more than once");
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string name;
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0 && arg.size() > 2) {
      size_t eq = arg.find('=');
      name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) inline_value = arg.substr(eq + 1);
    } else if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-') {
      char c = arg[1];
      if (c == 'f') {
        name = "config";
        if (arg.size() > 2) inline_value = arg.substr(2);
      } else if (c == 'h' && arg.size() == 2) {
        name = "help";
      } else {
        throw OptionError("unrecognised option '" + arg + "'");
      }
    } else if (arg.rfind("-", 0) == 0) {
      throw OptionError("unrecognised option '" + arg + "'");
    } else {
      throw OptionError("too many positional options have been specified on the command line");
    }
    const std::string flag = "--" + name;
    // The value of an option that takes one: "--opt=value" or the next argument.
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] != '\0'))
        throw OptionError("the required argument for option '" + flag + "' is missing");
      return argv[++i];
    };
    auto no_value = [&]() {
      if (inline_value) throw OptionError("option '" + flag + "' does not take any arguments");
    };
    if (name == "help") {
      no_value();
      cl.help = true;
    } else if (name == "version") {
      no_value();
      cl.version = true;
    } else if (name == "config") {
      once(flag);
      cl.config = value();
      cl.env["config"] = cl.config;
    } else if (name == "setParameter") {
      std::string kv = value();
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw OptionError("Illegal option assignment: \"" + kv + "\"");
      SetParameter(kv.substr(0, eq), kv.substr(eq + 1), &cl.env);
    } else if (const Spec* spec = FindFlag(name)) {
      once(flag);
      if (name == "auth" || name == "noauth") {
        // As mongod, both are canonicalised to security.authorization.
        no_value();
        if (cl.env.count("security.authorization"))
          throw OptionError("option '--auth' cannot be specified with '--noauth'");
        cl.env["security.authorization"] = std::string(name == "auth" ? "enabled" : "disabled");
      } else if (spec->kind == Kind::kSwitch) {
        no_value();
        cl.env[spec->key] = true;
      } else {
        cl.env[spec->key] = ConvertValue(*spec, flag, value());
      }
    } else {
      throw OptionError("unrecognised option '" + arg.substr(0, arg.find('=')) + "'");
    }
  }
  return cl;
}

// Flattens a YAML mapping into `env` by dotted config path.
void FlattenYaml(const YAML::Node& node, const std::string& prefix, Env* env) {
  for (const auto& kv : node) {
    const std::string key = prefix + kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "setParameter") {
      if (v.IsNull()) continue;
      if (!v.IsMap()) throw OptionError("setParameter must be a mapping of name: value");
      for (const auto& p : v) {
        if (!p.second.IsScalar())
          throw OptionError("setParameter." + p.first.as<std::string>() +
                            " must be a scalar value");
        SetParameter(p.first.as<std::string>(), p.second.Scalar(), env);
      }
      continue;
    }
    if (v.IsNull()) continue;
    if (v.IsMap()) {
      FlattenYaml(v, key + ".", env);
      continue;
    }
    const Spec* spec = FindKey(key);
    if (!spec) throw OptionError("unrecognised option '" + key + "'");
    if (!v.IsScalar()) throw OptionError("option '" + key + "' must be a single value");
    if (env->count(key)) throw OptionError("option '" + key + "' is given more than once");
    (*env)[key] = ConvertValue(*spec, key, v.Scalar());
  }
}

Env ParseConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw OptionError("Error reading config file: " + std::string(std::strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  Env env;
  try {
    YAML::Node root = YAML::Load(text.str());
    if (root.IsNull()) return env;
    if (!root.IsMap()) throw OptionError("the file must hold a YAML mapping");
    FlattenYaml(root, "", &env);
  } catch (const YAML::Exception& e) {
    throw OptionError("Error parsing YAML config file: " + e.msg);
  } catch (const OptionError& e) {
    throw OptionError(std::string("Error parsing YAML config file: ") + e.what());
  }
  return env;
}

bool GetBool(const Env& env, const std::string& key, bool dflt) {
  auto it = env.find(key);
  return it == env.end() ? dflt : std::get<bool>(it->second);
}

std::string GetString(const Env& env, const std::string& key, const std::string& dflt) {
  auto it = env.find(key);
  return it == env.end() ? dflt : std::get<std::string>(it->second);
}

// Appends env entries whose keys start with `prefix` as nested documents (keys are sorted, so one
// subtree's entries are contiguous).
void AppendNested(bson_t* out, Env::const_iterator& it, Env::const_iterator end,
                  const std::string& prefix) {
  while (it != end && it->first.compare(0, prefix.size(), prefix) == 0) {
    std::string rest = it->first.substr(prefix.size());
    size_t dot = rest.find('.');
    if (dot != std::string::npos) {
      std::string field = rest.substr(0, dot);
      bson_t child;
      bson_append_document_begin(out, field.c_str(), -1, &child);
      AppendNested(&child, it, end, prefix + field + ".");
      bson_append_document_end(out, &child);
      continue;
    }
    const char* k = rest.c_str();
    const Value& v = it->second;
    if (auto* s = std::get_if<std::string>(&v)) {
      bson_append_utf8(out, k, -1, s->c_str(), -1);
    } else if (auto* n = std::get_if<int64_t>(&v)) {
      if (*n >= INT32_MIN && *n <= INT32_MAX)
        bson_append_int32(out, k, -1, static_cast<int32_t>(*n));
      else
        bson_append_int64(out, k, -1, *n);
    } else if (auto* d = std::get_if<double>(&v)) {
      bson_append_double(out, k, -1, *d);
    } else {
      bson_append_bool(out, k, -1, std::get<bool>(v));
    }
    ++it;
  }
}

std::string HelpText(const std::string& prog) {
  std::ostringstream os;
  os << "Usage: " << prog << " [options]\n\nOptions:\n";
  auto line = [&](const std::string& left, const std::string& help) {
    os << "  " << left;
    if (left.size() < 44)
      os << std::string(44 - left.size(), ' ');
    else
      os << "\n" << std::string(46, ' ');
    os << help << "\n";
  };
  line("-h [ --help ]", "show this usage information");
  line("--version", "show version information");
  line("-f [ --config ] arg", "configuration file specifying additional options");
  line("--setParameter arg", "Set a configurable parameter (name=value; repeatable)");
  for (const Spec& s : Specs()) {
    if (!s.flag) continue;
    std::string left = std::string("--") + s.flag + (s.kind == Kind::kSwitch ? "" : " arg");
    line(left, s.help);
  }
  os << "\nAccepted --setParameter names:";
  for (const ParamSpec& p : Params()) os << " " << p.name;
  os << "\n";
  return os.str();
}

// Fills ServerOptions from the merged environment and checks cross-option rules.
void ApplyEnv(const Env& env, ServerOptions* o) {
  o->dbpath = GetString(env, "storage.dbPath", o->dbpath);
  o->directory_per_db = GetBool(env, "storage.directoryPerDB", false);
  if (auto it = env.find("storage.syncPeriodSecs"); it != env.end())
    o->sync_period_secs = static_cast<int>(std::get<double>(it->second));
  if (auto it = env.find("storage.wiredTiger.engineConfig.cacheSizeGB"); it != env.end()) {
    o->cache_size_gb = std::get<double>(it->second);
    if (o->cache_size_gb != 0 && o->cache_size_gb < 0.25)
      throw OptionError("storage.wiredTiger.engineConfig.cacheSizeGB must be 0 or at least 0.25");
  }
  o->journal_compressor =
      GetString(env, "storage.wiredTiger.engineConfig.journalCompressor", o->journal_compressor);
  o->directory_for_indexes =
      GetBool(env, "storage.wiredTiger.engineConfig.directoryForIndexes", false);
  o->block_compressor =
      GetString(env, "storage.wiredTiger.collectionConfig.blockCompressor", o->block_compressor);
  o->prefix_compression = GetBool(env, "storage.wiredTiger.indexConfig.prefixCompression", true);

  const std::string dest = GetString(env, "systemLog.destination", "");
  o->logpath = GetString(env, "systemLog.path", "");
  o->log_append = GetBool(env, "systemLog.logAppend", false);
  if (dest == "syslog") throw OptionError("systemLog.destination 'syslog' is not supported");
  if (dest == "file" && o->logpath.empty())
    throw OptionError("systemLog.path is required if systemLog.destination is to a file");

  if (auto it = env.find("net.port"); it != env.end())
    o->port = static_cast<int>(std::get<int64_t>(it->second));
  if (env.count("net.bindIp") && GetBool(env, "net.bindIpAll", false))
    throw OptionError("net.bindIp and net.bindIpAll are mutually exclusive");
  o->bind_ip = GetString(env, "net.bindIp", o->bind_ip);
  if (GetBool(env, "net.bindIpAll", false)) o->bind_ip = "0.0.0.0";

  o->repl_set =
      GetString(env, "replication.replSet", GetString(env, "replication.replSetName", ""));
  if (auto it = env.find("replication.oplogSizeMB"); it != env.end())
    o->oplog_size_mb = std::get<int64_t>(it->second);

  o->enable_encryption = GetBool(env, "security.enableEncryption", false);
  o->encryption_key_file = GetString(env, "security.encryptionKeyFile", "");
  o->encryption_cipher_mode =
      GetString(env, "security.encryptionCipherMode", o->encryption_cipher_mode);
  if (!o->enable_encryption && !o->encryption_key_file.empty())
    throw OptionError("--encryptionKeyFile requires --enableEncryption");
  if (o->enable_encryption && o->encryption_key_file.empty())
    throw OptionError(
        "--enableEncryption requires --encryptionKeyFile (Vault and KMIP are not supported)");

  o->authorization = GetString(env, "security.authorization", "") == "enabled";
  o->key_file = GetString(env, "security.keyFile", "");
  o->cluster_auth_mode = GetString(env, "security.clusterAuthMode", "");
  if (o->authorization && !o->repl_set.empty() && o->key_file.empty())
    throw OptionError(
        "security.keyFile is required when authorization is enabled with replica sets");
  if (!o->cluster_auth_mode.empty() && o->key_file.empty())
    throw OptionError("security.clusterAuthMode keyFile requires security.keyFile");

  if (GetBool(env, "processManagement.fork", false)) throw OptionError("fork is not supported");

  const std::string prefix = "setParameter.";
  for (auto it = env.lower_bound(prefix); it != env.end() && it->first.rfind(prefix, 0) == 0; ++it)
    o->set_parameters[it->first.substr(prefix.size())] = std::get<std::string>(it->second);
}

}  // namespace

std::string VersionText() {
#if defined(__x86_64__)
  const char* arch = "x86_64";
#elif defined(__aarch64__)
  const char* arch = "aarch64";
#else
  const char* arch = "unknown";
#endif
  std::ostringstream os;
  os << "db version v" << kServerVersion << "\n"
     << "Build Info: {\n"
     << "    \"version\": \"" << kServerVersion << "\",\n"
     << "    \"modules\": [],\n"
     << "    \"allocator\": \"system\",\n"
     << "    \"environment\": {\n"
     << "        \"distarch\": \"" << arch << "\",\n"
     << "        \"target_arch\": \"" << arch << "\"\n"
     << "    }\n"
     << "}\n";
  return os.str();
}

ParseOutcome ParseServerOptions(int argc, const char* const* argv) {
  ParseOutcome out;
  const std::string prog = argc > 0 && argv[0] && *argv[0] ? argv[0] : "mongod";
  for (int i = 0; i < argc; ++i) out.options.argv.emplace_back(argv[i]);
  auto fail = [&](const std::string& msg) {
    out.action = ParseOutcome::Action::kError;
    out.exit_code = 2;
    out.message = msg + "\ntry '" + prog + " --help' for more information\n";
    return out;
  };

  CommandLine cl;
  try {
    cl = ParseCommandLine(argc, argv);
  } catch (const OptionError& e) {
    return fail(std::string("Error parsing command line: ") + e.what());
  }
  if (cl.help || cl.version) {
    out.action = ParseOutcome::Action::kPrintAndExit;
    out.message = cl.help ? HelpText(prog) : VersionText();
    return out;
  }

  try {
    Env env;
    if (!cl.config.empty()) env = ParseConfigFile(cl.config);
    // The command line overrides the file, including options that stand for the same setting.
    if (cl.env.count("replication.replSet")) env.erase("replication.replSetName");
    if (cl.env.count("net.bindIp")) env.erase("net.bindIpAll");
    if (cl.env.count("net.bindIpAll")) env.erase("net.bindIp");
    if (cl.env.count("systemLog.path")) cl.env["systemLog.destination"] = std::string("file");
    for (auto& [k, v] : cl.env) env[k] = v;
    if (env.count("systemLog.path") && !env.count("systemLog.destination"))
      env["systemLog.destination"] = std::string("file");

    out.options.config_file = cl.config;
    ApplyEnv(env, &out.options);

    bson_t* parsed = bson_new();
    auto it = env.cbegin();
    AppendNested(parsed, it, env.cend(), "");
    out.options.parsed = Doc(parsed);
  } catch (const OptionError& e) {
    return fail(e.what());
  }
  return out;
}

bool ParameterBool(const ServerOptions& opts, const std::string& name, bool dflt) {
  auto it = opts.set_parameters.find(name);
  if (it == opts.set_parameters.end()) return dflt;
  auto v = ParseBool(it->second);
  if (!v)
    throw MongoError(ErrorCode::kBadValue,
                     "setParameter '" + name + "' is not a bool: '" + it->second + "'");
  return *v;
}

bool ParameterIsBool(const std::string& name) {
  for (const ParamSpec& p : Params())
    if (name == p.name) return p.is_bool;
  return false;
}

int64_t ParameterInt(const ServerOptions& opts, const std::string& name, int64_t dflt) {
  auto it = opts.set_parameters.find(name);
  if (it == opts.set_parameters.end()) return dflt;
  auto v = ParseInt(it->second);
  if (!v)
    throw MongoError(ErrorCode::kBadValue,
                     "setParameter '" + name + "' is not an integer: '" + it->second + "'");
  return *v;
}

}  // namespace wtm
