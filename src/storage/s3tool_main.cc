// s3tool: a test-only CLI over NewStorageFromConfig, so that e2e tests and benchmarks can drive a
// storage driver (mostly S3) without a cluster.
//   s3tool CONFIG.json put NAME            < data       (one Writer, Commit)
//   s3tool CONFIG.json abandon NAME        < data       (Write everything, destroy w/o Commit)
//   s3tool CONFIG.json get NAME            > data
//   s3tool CONFIG.json range NAME OFFSET LENGTH > data
//   s3tool CONFIG.json stat NAME           → "SIZE MTIME", exit 3 if missing
//   s3tool CONFIG.json list [PREFIX]       → "NAME\tSIZE" lines
//   s3tool CONFIG.json fill PREFIX COUNT   (COUNT small objects PREFIX000000..., for List tests)
//   s3tool CONFIG.json rm NAME | rmprefix [PREFIX] | describe
// Warnings (retries) go to stderr.
// CONFIG.json holds the `storage:` section as JSON. Errors: one line on stderr, exit 1
// (3 for kNotFound).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/storage.h"

namespace {

int Run(const std::vector<std::string>& args) {
  using namespace pbm::storage;
  if (args.size() < 2) {
    std::cerr << "usage: s3tool CONFIG.json put|abandon|get|range|stat|list|rm|rmprefix|describe "
                 "[ARGS]\n";
    return 2;
  }
  std::ifstream in(args[0]);
  if (!in) {
    std::cerr << "s3tool: cannot read " << args[0] << "\n";
    return 2;
  }
  std::unique_ptr<Storage> st = NewStorageFromConfig(nlohmann::json::parse(in));
  const std::string& cmd = args[1];
  auto arg = [&](size_t i) -> const std::string& {
    static const std::string empty;
    return i < args.size() ? args[i] : empty;
  };
  std::vector<char> buf(1 << 20);
  if (cmd == "put" || cmd == "abandon") {
    auto w = st->Create(arg(2));
    for (;;) {
      ssize_t n = ::read(0, buf.data(), buf.size());
      if (n < 0) pbm::FailErrno("read stdin", errno);
      if (n == 0) break;
      w->Write(buf.data(), static_cast<size_t>(n));
    }
    if (cmd == "put") w->Commit();
    return 0;
  }
  if (cmd == "get" || cmd == "range") {
    auto r = cmd == "get" ? st->Open(arg(2))
                          : st->OpenRange(arg(2), std::stoll(arg(3)), std::stoll(arg(4)));
    for (;;) {
      size_t n = r->Read(buf.data(), buf.size());
      if (n == 0) break;
      if (std::fwrite(buf.data(), 1, n, stdout) != n) pbm::FailErrno("write stdout", errno);
    }
    std::fflush(stdout);
    return 0;
  }
  if (cmd == "stat") {
    auto info = st->Stat(arg(2));
    if (!info) return 3;
    std::cout << info->size << " " << info->mtime_unix << "\n";
    return 0;
  }
  if (cmd == "list") {
    for (const auto& o : st->List(arg(2))) std::cout << o.name << "\t" << o.size << "\n";
    return 0;
  }
  if (cmd == "fill") {
    int count = std::stoi(arg(3));
    for (int i = 0; i < count; ++i) {
      st->WriteAll(fmt::format("{}{:06d}", arg(2), i), std::to_string(i));
    }
    return 0;
  }
  if (cmd == "rm") {
    st->Remove(arg(2));
    return 0;
  }
  if (cmd == "rmprefix") {
    st->RemovePrefix(arg(2));
    return 0;
  }
  if (cmd == "describe") {
    std::cout << st->Describe() << "\n";
    return 0;
  }
  std::cerr << "s3tool: unknown command " << cmd << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_st("s3tool"));
  try {
    return Run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const pbm::Error& e) {
    std::cerr << "s3tool: " << e.what() << "\n";
    return e.kind() == pbm::ErrorKind::kNotFound ? 3 : 1;
  } catch (const std::exception& e) {
    std::cerr << "s3tool: " << e.what() << "\n";
    return 1;
  }
}
