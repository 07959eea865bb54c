"""wtmongod's command line and mongod.conf-style YAML config file."""
import glob
import os
import subprocess
import unittest

from harness import WTMONGOD, Mongod, TempDir, free_port, make_keyfile


def run(args, timeout=60):
    p = subprocess.run([WTMONGOD] + list(args), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class RawMongod(Mongod):
    """A node started with exactly the given arguments (no --dbpath/--port added)."""

    def __init__(self, dbpath, port, args):
        super().__init__(dbpath, port=port, args=args)

    def argv(self):
        return [WTMONGOD] + self.args


class OptionErrorsTest(unittest.TestCase):
    def test_version(self):
        code, out, err = run(["--version"])
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^db version v6\.0\.\d+")
        self.assertEqual(lines[1], "Build Info: {")
        self.assertIn('"version": "6.0.', out)
        self.assertEqual(err, "")

    def test_help(self):
        code, out, err = run(["--help"])
        self.assertEqual(code, 0, err)
        for flag in ("--dbpath", "--port", "--enableEncryption", "--encryptionKeyFile",
                     "--wiredTigerCollectionBlockCompressor", "--setParameter", "--config"):
            self.assertIn(flag, out)

    def assert_bad_options(self, args, first_line, dbpath):
        """Exit 2, mongod's two-line message on stderr, nothing written to the dbpath."""
        port = [] if "--port" in args else ["--port", str(free_port())]
        code, out, err = run(["--dbpath", dbpath] + port + args)
        self.assertEqual(code, 2, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 2, err)
        self.assertRegex(lines[0], first_line)
        self.assertEqual(lines[1], "try '%s --help' for more information" % WTMONGOD)
        self.assertEqual(os.listdir(dbpath), [], "an option error touched the dbpath")

    def test_unknown_option(self):
        with TempDir() as tmp:
            self.assert_bad_options(
                ["--noSuchOption"],
                r"^Error parsing command line: unrecognised option '--noSuchOption'$", tmp)
            self.assert_bad_options(
                ["--noSuchOption=3"],
                r"^Error parsing command line: unrecognised option '--noSuchOption'$", tmp)
            # A switch given a value, a missing value.
            self.assert_bad_options(
                ["--directoryperdb=true"],
                r"^Error parsing command line: option '--directoryperdb' does not take any "
                r"arguments$", tmp)
            self.assert_bad_options(
                ["--encryptionKeyFile"],
                r"^Error parsing command line: the required argument for option "
                r"'--encryptionKeyFile' is missing$", tmp)

    def test_bad_values(self):
        with TempDir() as tmp:
            self.assert_bad_options(
                ["--wiredTigerCollectionBlockCompressor", "lz4"],
                r"'lz4'.*'--wiredTigerCollectionBlockCompressor'.*none, snappy, zlib, zstd", tmp)
            self.assert_bad_options(
                ["--wiredTigerJournalCompressor", "gzip"],
                r"'gzip'.*'--wiredTigerJournalCompressor'", tmp)
            self.assert_bad_options(
                ["--enableEncryption", "--encryptionKeyFile", "/nonexistent",
                 "--encryptionCipherMode", "AES128-ECB"],
                r"'AES128-ECB'.*'--encryptionCipherMode'.*AES256-CBC, AES256-GCM", tmp)
            self.assert_bad_options(["--port", "notaport"], r"'notaport'.*'--port'", tmp)
            self.assert_bad_options(["--port", "70000"], r"'70000'.*'--port'", tmp)

            # The same checks apply to the config file.
            conf = os.path.join(os.path.dirname(tmp), os.path.basename(tmp) + ".conf")
            try:
                with open(conf, "w") as f:
                    f.write("storage:\n  wiredTiger:\n    collectionConfig:\n"
                            "      blockCompressor: lz4\n")
                self.assert_bad_options(
                    ["-f", conf],
                    r"'lz4'.*'storage\.wiredTiger\.collectionConfig\.blockCompressor'", tmp)
                with open(conf, "w") as f:
                    f.write("storage:\n  noSuchSetting: 1\n")
                self.assert_bad_options(["-f", conf], r"storage\.noSuchSetting", tmp)
            finally:
                os.remove(conf)

    def test_encryption_options_need_each_other(self):
        with TempDir() as tmp:
            self.assert_bad_options(["--enableEncryption"], r"--encryptionKeyFile", tmp)
            self.assert_bad_options(["--encryptionKeyFile", "/k"], r"--enableEncryption", tmp)

    def test_unknown_set_parameter(self):
        with TempDir() as tmp:
            code, _, err = run(["--dbpath", tmp, "--port", str(free_port()),
                                "--setParameter", "noSuchParameter=1"])
            self.assertNotEqual(code, 0)
            self.assertIn("Unknown --setParameter 'noSuchParameter'", err)
            self.assertEqual(os.listdir(tmp), [])
            # A known parameter with a bad value, and an unknown one in the config file.
            code, _, err = run(["--dbpath", tmp, "--port", str(free_port()),
                                "--setParameter", "cursorTimeoutMillis=soon"])
            self.assertNotEqual(code, 0)
            self.assertIn("cursorTimeoutMillis", err)
            self.assertIn("soon", err)
            conf = os.path.join(tmp, "..", os.path.basename(tmp) + ".conf")
            try:
                with open(conf, "w") as f:
                    f.write("setParameter:\n  noSuchParameter: 1\n")
                code, _, err = run(["-f", conf, "--dbpath", tmp, "--port", str(free_port())])
                self.assertNotEqual(code, 0)
                self.assertIn("Unknown --setParameter 'noSuchParameter'", err)
            finally:
                os.remove(conf)
            self.assertEqual(os.listdir(tmp), [])


class ConfigFileTest(unittest.TestCase):
    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.kill()

    def parsed_of(self, m):
        self.nodes.append(m)
        m.start()
        try:
            c = m.client()
            return c.admin.command("getCmdLineOpts")["parsed"], c
        except Exception:
            m.kill()
            raise

    def test_config_file_equals_command_line(self):
        with TempDir() as tmp:
            dbpath = os.path.join(tmp, "db")
            log = os.path.join(tmp, "mongod.log")
            key = os.path.join(tmp, "key")
            make_keyfile(key)
            port = free_port()
            conf = os.path.join(tmp, "mongod.conf")
            with open(conf, "w") as f:
                f.write("""# mongod.conf
storage:
  dbPath: %(dbpath)s
  directoryPerDB: true
  syncPeriodSecs: 30
  wiredTiger:
    engineConfig:
      cacheSizeGB: 0.5
      journalCompressor: zstd
      directoryForIndexes: true
    collectionConfig:
      blockCompressor: zlib
    indexConfig:
      prefixCompression: false
systemLog:
  destination: file
  path: %(log)s
  logAppend: true
net:
  port: %(port)d
  bindIp: 127.0.0.1
security:
  enableEncryption: true
  encryptionKeyFile: %(key)s
  encryptionCipherMode: AES256-GCM
replication:
  oplogSizeMB: 100
setParameter:
  cursorTimeoutMillis: 60000
""" % {"dbpath": dbpath, "log": log, "port": port, "key": key})
            os.makedirs(dbpath)

            from_file, c = self.parsed_of(RawMongod(dbpath, port, ["-f", conf]))
            # The file's settings are in force, not just echoed.
            c.appdb.items.insert_one({"_id": 1})
            st = c.admin.command("serverStatus")["encryptionAtRest"]
            self.assertEqual((st["encryptionEnabled"], st["encryptionCipherMode"]),
                             (True, "AES256-GCM"))
            self.assertEqual(c.admin.command("getParameter", 1, cursorTimeoutMillis=1)
                             ["cursorTimeoutMillis"], 60000)
            self.assertEqual(self.nodes[-1].stop(), 0)
            self.assertEqual(len(glob.glob(os.path.join(dbpath, "appdb", "collection",
                                                        "collection-*.wt"))), 1)
            self.assertTrue(os.path.getsize(log) > 0)

            cli = ["--dbpath", dbpath, "--directoryperdb", "--syncdelay", "30",
                   "--wiredTigerCacheSizeGB", "0.5", "--wiredTigerJournalCompressor", "zstd",
                   "--wiredTigerDirectoryForIndexes",
                   "--wiredTigerCollectionBlockCompressor", "zlib",
                   "--wiredTigerIndexPrefixCompression", "false",
                   "--logpath", log, "--logappend", "--port", str(port),
                   "--bind_ip", "127.0.0.1", "--enableEncryption", "--encryptionKeyFile", key,
                   "--encryptionCipherMode", "AES256-GCM", "--oplogSize", "100",
                   "--setParameter", "cursorTimeoutMillis=60000"]
            from_cli, c = self.parsed_of(RawMongod(dbpath, port, cli))
            self.assertEqual(c.appdb.items.find_one(), {"_id": 1})
            self.assertEqual(self.nodes[-1].stop(), 0)

            want = {
                "net": {"bindIp": "127.0.0.1", "port": port},
                "replication": {"oplogSizeMB": 100},
                "security": {"enableEncryption": True, "encryptionCipherMode": "AES256-GCM",
                             "encryptionKeyFile": key},
                "setParameter": {"cursorTimeoutMillis": "60000"},
                "storage": {
                    "dbPath": dbpath, "directoryPerDB": True, "syncPeriodSecs": 30.0,
                    "wiredTiger": {
                        "collectionConfig": {"blockCompressor": "zlib"},
                        "engineConfig": {"cacheSizeGB": 0.5, "directoryForIndexes": True,
                                         "journalCompressor": "zstd"},
                        "indexConfig": {"prefixCompression": False}}},
                "systemLog": {"destination": "file", "logAppend": True, "path": log},
            }
            self.assertEqual(from_cli, want)
            self.assertEqual(from_file.pop("config"), conf)
            self.assertEqual(from_file, want)
            self.assertIsInstance(from_cli["net"]["port"], int)
            self.assertIsInstance(from_file["storage"]["syncPeriodSecs"], float)

    def test_command_line_overrides_file(self):
        with TempDir() as tmp:
            file_dbpath = os.path.join(tmp, "filedb")
            cli_dbpath = os.path.join(tmp, "clidb")
            os.makedirs(file_dbpath)
            os.makedirs(cli_dbpath)
            file_port, cli_port = free_port(), free_port()
            conf = os.path.join(tmp, "mongod.conf")
            with open(conf, "w") as f:
                f.write("storage:\n  dbPath: %s\n  wiredTiger:\n    collectionConfig:\n"
                        "      blockCompressor: zlib\n"
                        "net:\n  port: %d\n  bindIp: 127.0.0.1\n"
                        "setParameter:\n  cursorTimeoutMillis: 1000\n"
                        % (file_dbpath, file_port))
            m = RawMongod(cli_dbpath, cli_port,
                          ["-f", conf, "--dbpath", cli_dbpath, "--port", str(cli_port),
                           "--wiredTigerCollectionBlockCompressor", "zstd",
                           "--setParameter", "cursorTimeoutMillis=2000",
                           "--logpath", os.path.join(tmp, "log")])
            parsed, c = self.parsed_of(m)  # connects on the command line's port
            self.assertEqual(parsed["net"], {"port": cli_port, "bindIp": "127.0.0.1"})
            self.assertEqual(parsed["storage"]["dbPath"], cli_dbpath)
            self.assertEqual(parsed["storage"]["wiredTiger"]["collectionConfig"],
                             {"blockCompressor": "zstd"})
            self.assertEqual(parsed["setParameter"], {"cursorTimeoutMillis": "2000"})
            self.assertEqual(c.admin.command("getParameter", 1, cursorTimeoutMillis=1)
                             ["cursorTimeoutMillis"], 2000)
            c.appdb.items.insert_one({"_id": 1})
            self.assertEqual(m.stop(), 0)
            self.assertTrue(os.path.exists(os.path.join(cli_dbpath, "storage.bson")))
            self.assertEqual(os.listdir(file_dbpath), [])


if __name__ == "__main__":
    unittest.main()
