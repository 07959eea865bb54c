// pbm: the command line of the backup tool (PBM's commands and flags where PBM has them).
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "common/error.h"
#include "control/connect.h"
#include "control/control.h"
#include "mongo/client.h"

int main(int argc, char** argv) {
  CLI::App app{"pbm: physical and logical backups of MongoDB"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags (--out, --mongodb-uri) also after the subcommand
  std::string uri, out = "text";
  app.add_option("--mongodb-uri", uri, "MongoDB connection string (or PBM_MONGODB_URI)");
  app.add_option("-o,--out", out, "output format")->check(CLI::IsMember({"text", "json"}));

  auto* config = app.add_subcommand("config", "show or set the configuration");
  std::string config_file;
  config->add_option("--file", config_file, "YAML config file (storage.type, storage.filesystem.path, ...)");
  std::vector<std::string> config_set;
  config->add_option("--set", config_set, "set key=value in the stored config (repeatable)");
  bool force_resync = false;
  config->add_flag("--force-resync", force_resync, "rebuild the backup list from the storage");
  std::string config_key;
  config->add_option("key", config_key, "show one value of the config (e.g. storage.type)");

  auto* del = app.add_subcommand("delete-backup", "delete backups from the storage");
  pbm::cli::DeleteArgs da;
  del->add_option("name", da.name, "backup name");
  del->add_option("--older-than", da.older_than, "every backup started before a time (2026-11-23T10:00:00Z) or age (7d, 12h, 30m)");
  del->add_flag("-y,--yes,--force", da.yes, "do not ask for confirmation");
  app.add_subcommand("cancel-backup", "cancel the running backup");
  auto* logs = app.add_subcommand("logs", "show the agents' log");
  pbm::cli::LogsArgs la;
  logs->add_option("-t,--tail", la.tail, "last N entries (0: all)");
  logs->add_option("-e,--event", la.event, "backup, backup/<name>, restore, ...");
  logs->add_option("-n,--node", la.node, "rs or rs/host:port");
  logs->add_option("-s,--severity", la.severity, "D, I, W, E, F: at or above");
  logs->add_option("-i,--opid", la.opid, "one operation");
  logs->add_flag("-x,--extra", la.extra, "show operation ids");
  auto* verify = app.add_subcommand("verify", "read a backup back and check every object");
  std::string verify_name;
  verify->add_option("name", verify_name, "backup name")->required();

  auto* backup = app.add_subcommand("backup", "make a backup");
  pbm::cli::BackupArgs ba;
  backup->add_option("-t,--type", ba.type, "backup type")->check(CLI::IsMember({"logical", "physical"}));
  auto* compression_opt =
      backup->add_option("--compression", ba.compression, "none, gzip, zstd, lz4, snappy (default: the config's backup.compression, else zstd)");
  int level = -1000;
  backup->add_option("--compression-level", level, "codec level");
  backup->add_flag("-w,--wait", ba.wait, "wait for the backup to finish");
  backup->add_option("--wait-time", ba.wait_timeout_secs, "give up waiting after N seconds (0: never)");

  app.add_subcommand("list", "list the backups");
  auto* describe = app.add_subcommand("describe-backup", "show a backup's metadata");
  std::string name;
  describe->add_option("name", name, "backup name")->required();
  app.add_subcommand("status", "show agents, running operations and backups");
  auto* restore = app.add_subcommand("restore", "restore a backup onto the cluster");
  pbm::cli::RestoreArgs ra;
  restore->add_option("backup", ra.backup, "backup name")->required();
  restore->add_flag("-w,--wait", ra.wait, "wait for the restore to finish");
  restore->add_option("--wait-time", ra.wait_timeout_secs, "give up waiting after N seconds (0: never)");
  auto* describe_restore = app.add_subcommand("describe-restore", "show a restore's status");
  std::string restore_name, config_path;
  describe_restore->add_option("name", restore_name, "restore name")->required();
  describe_restore->add_option("-c,--config", config_path,
                               "pbm.yaml with the storage (when the cluster is down)");

  CLI11_PARSE(app, argc, argv);
  // Warnings (e.g. S3 retries) go to stderr: stdout carries the output, JSON with --out json.
  spdlog::set_default_logger(spdlog::stderr_color_mt("pbm"));
  if (level != -1000) ba.compression_level = level;
  pbm::cli::Output o{out == "json", &std::cout};
  try {
    if (*describe_restore && !config_path.empty()) {
      // Works while every mongod is down: the status lives on the storage.
      pbm::cli::DescribeRestore(nullptr, config_path, restore_name, o);
      return 0;
    }
    std::string u = pbm::control::ResolveMongoUri(uri);
    pbm::mongo::Client client(u, 10000);
    // A URI naming one member: reach its whole set (writes go to the primary).
    std::unique_ptr<pbm::mongo::Client> cluster;
    if (u.find("replicaSet=") == std::string::npos) cluster = pbm::control::ConnectCluster(client, u);
    pbm::control::Control ctl(cluster ? *cluster : client);
    if (*config) {
      if (!config_file.empty() + !config_set.empty() + force_resync + !config_key.empty() > 1) {
        throw pbm::Error(pbm::ErrorKind::kInvalidArgument,
                         "pbm config takes one of --file, --set, --force-resync or a key");
      }
      if (!config_file.empty()) {
        pbm::cli::ConfigSet(ctl, config_file, o);
      } else if (!config_set.empty()) {
        pbm::cli::ConfigSetKeys(ctl, config_set, o);
      } else if (force_resync) {
        pbm::cli::ForceResync(ctl, o);
      } else if (!config_key.empty()) {
        pbm::cli::ConfigGet(ctl, config_key, o);
      } else {
        pbm::cli::ConfigShow(ctl, o);
      }
    } else if (*del) {
      pbm::cli::DeleteBackups(ctl, da, o);
    } else if (app.got_subcommand("cancel-backup")) {
      pbm::cli::CancelBackup(ctl, o);
    } else if (*logs) {
      pbm::cli::Logs(ctl, la, o);
    } else if (*verify) {
      if (!pbm::cli::Verify(ctl, verify_name, o)) return 1;
    } else if (*backup) {
      // As PBM: the config's backup.compression and compressionLevel are the defaults.
      if (auto cfg = ctl.GetConfig(); cfg && cfg->contains("backup") && (*cfg)["backup"].is_object()) {
        const auto& bc = (*cfg)["backup"];
        if (compression_opt->count() == 0 && bc.contains("compression") && bc["compression"].is_string()) {
          ba.compression = bc["compression"].get<std::string>();
          if (level == -1000 && bc.contains("compressionLevel") && bc["compressionLevel"].is_number_integer()) {
            ba.compression_level = bc["compressionLevel"].get<int>();
          }
        }
      }
      pbm::cli::Backup(ctl, ba, o);
    } else if (app.got_subcommand("list")) {
      pbm::cli::List(ctl, o);
    } else if (*describe) {
      pbm::cli::DescribeBackup(ctl, name, o);
    } else if (app.got_subcommand("status")) {
      pbm::cli::Status(ctl, o);
    } else if (*restore) {
      pbm::cli::Restore(ctl, cluster ? *cluster : client, ra, o);
    } else if (*describe_restore) {
      pbm::cli::DescribeRestore(&ctl, "", restore_name, o);
    }
  } catch (const pbm::Error& e) {
    if (o.json) {
      std::cout << nlohmann::json{{"Error", e.what()}}.dump() << std::endl;
    } else {
      std::cerr << "Error: " << e.what() << std::endl;
    }
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
