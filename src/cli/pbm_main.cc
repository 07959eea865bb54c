// pbm: the command line of the backup tool (PBM's commands and flags where PBM has them).
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

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

  auto* backup = app.add_subcommand("backup", "make a backup");
  pbm::cli::BackupArgs ba;
  backup->add_option("-t,--type", ba.type, "backup type")->check(CLI::IsMember({"logical", "physical"}));
  backup->add_option("--compression", ba.compression, "none, gzip, zstd, lz4, snappy");
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
      if (config_file.empty()) {
        pbm::cli::ConfigShow(ctl, o);
      } else {
        pbm::cli::ConfigSet(ctl, config_file, o);
      }
    } else if (*backup) {
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
