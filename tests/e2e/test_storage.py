"""The dbpath as wtmongod lays it out, block/journal compression and encryption at rest.

Standalone nodes only. Every scenario works in its own TempDir; the node's log goes next to the
dbpath (harness default), never inside it, so scanning the dbpath for a marker sees only what
the storage engine wrote.
"""
import base64
import glob
import hashlib
import os
import re
import shutil
import unittest
import uuid

import bson
import pymongo
from pymongo.write_concern import WriteConcern

from harness import Mongod, TempDir, make_keyfile, wait_until


def tree_state(root):
    """Every directory and file under root: {relpath: sha256 or '<dir>'}."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), root)] = "<dir>"
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def files_containing(root, needle):
    hits = []
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                if needle in f.read():
                    hits.append(os.path.relpath(p, root))
    return sorted(hits)


def size_of(paths):
    return sum(os.path.getsize(p) for p in paths)


def enc_args(keyfile, mode="AES256-CBC"):
    return ["--enableEncryption", "--encryptionKeyFile", keyfile, "--encryptionCipherMode", mode]


NONE_COMPRESSION = ["--wiredTigerCollectionBlockCompressor", "none",
                    "--wiredTigerJournalCompressor", "none"]


class StorageTestBase(unittest.TestCase):
    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.kill()

    def node(self, dbpath, args=(), **kw):
        m = Mongod(dbpath, args=args, **kw)
        self.nodes.append(m)
        return m

    def start(self, dbpath, args=()):
        return self.node(dbpath, args).start()


class DbpathLayoutTest(StorageTestBase):
    def populate(self, m, db="appdb"):
        c = m.client()
        c[db].items.insert_many([{"_id": i, "v": "x%d" % i} for i in range(100)])
        c[db].items.create_index("v")
        return c

    def read_storage_bson(self, dbpath):
        with open(os.path.join(dbpath, "storage.bson"), "rb") as f:
            return bson.decode(f.read())

    def test_default_layout(self):
        with TempDir() as tmp:
            dbpath = os.path.join(tmp, "db")
            m = self.start(dbpath)
            self.populate(m)
            self.assertEqual(m.stop(), 0)
            names = set(os.listdir(dbpath))
            for f in ("WiredTiger", "WiredTiger.wt", "WiredTiger.turtle", "WiredTiger.lock",
                      "_mdb_catalog.wt", "sizeStorer.wt", "storage.bson", "mongod.lock",
                      "journal"):
                self.assertIn(f, names)
            with open(os.path.join(dbpath, "WiredTiger"), "rb") as f:
                self.assertTrue(f.read().startswith(b"WiredTiger\nWiredTiger 3.2.1"))
            self.assertTrue(glob.glob(os.path.join(dbpath, "journal", "WiredTigerLog.*")))
            # A clean shutdown leaves mongod.lock empty.
            self.assertEqual(os.path.getsize(os.path.join(dbpath, "mongod.lock")), 0)
            # User collection + its _id and "v" indexes, plus at least the local/admin ones.
            colls = glob.glob(os.path.join(dbpath, "collection-*.wt"))
            idx = glob.glob(os.path.join(dbpath, "index-*.wt"))
            self.assertGreaterEqual(len(colls), 1)
            self.assertGreaterEqual(len(idx), 2)
            for p in colls + idx:
                self.assertRegex(os.path.basename(p), r"^(collection|index)-\d+-\d+\.wt$")
            self.assertEqual(self.read_storage_bson(dbpath),
                             {"storage": {"engine": "wiredTiger",
                                          "options": {"directoryPerDB": False,
                                                      "directoryForIndexes": False}}})

            # The dbpath reopens with the same data.
            m = self.start(dbpath)
            self.assertEqual(m.client().appdb.items.count_documents({}), 100)
            self.assertEqual(m.stop(), 0)

    def check_layout(self, per_db, for_indexes):
        args = (["--directoryperdb"] if per_db else []) + \
               (["--wiredTigerDirectoryForIndexes"] if for_indexes else [])
        with TempDir() as tmp:
            dbpath = os.path.join(tmp, "db")
            m = self.start(dbpath, args)
            self.populate(m, db="appdb")
            self.assertEqual(m.stop(), 0)
            self.assertEqual(self.read_storage_bson(dbpath),
                             {"storage": {"engine": "wiredTiger",
                                          "options": {"directoryPerDB": per_db,
                                                      "directoryForIndexes": for_indexes}}})
            base = os.path.join(dbpath, "appdb") if per_db else dbpath
            cdir = os.path.join(base, "collection") if for_indexes else base
            idir = os.path.join(base, "index") if for_indexes else base
            self.assertEqual(len(glob.glob(os.path.join(cdir, "collection-*.wt"))), 1,
                             sorted(tree_state(dbpath)))
            self.assertEqual(len(glob.glob(os.path.join(idir, "index-*.wt"))), 2,
                             sorted(tree_state(dbpath)))
            if for_indexes:
                self.assertEqual(glob.glob(os.path.join(cdir, "index-*")), [])
                self.assertEqual(glob.glob(os.path.join(idir, "collection-*")), [])
            # No user-table file of appdb sits anywhere else.
            if per_db:
                self.assertEqual(glob.glob(os.path.join(dbpath, "collection-*.wt")), [])
            else:
                self.assertEqual(glob.glob(os.path.join(dbpath, "appdb")), [])
            # Same options: the data is there after a restart.
            m = self.start(dbpath, args)
            self.assertEqual(m.client().appdb.items.count_documents({"v": "x7"}), 1)
            self.assertEqual(m.stop(), 0)

    def test_directory_per_db(self):
        self.check_layout(True, False)

    def test_directory_for_indexes(self):
        self.check_layout(False, True)

    def test_directory_per_db_and_for_indexes(self):
        self.check_layout(True, True)


PHRASE = "the quick brown fox jumps over the lazy dog; "


def compressible_docs(n=3000):
    text = PHRASE * 45  # ~2 KB
    return [{"_id": i, "n": i, "text": "%06d %s" % (i, text)} for i in range(n)]


class CompressionTest(StorageTestBase):
    N = 3000

    def run_compressor(self, name, tmp):
        dbpath = os.path.join(tmp, name)
        args = ["--wiredTigerCollectionBlockCompressor", name,
                "--wiredTigerJournalCompressor", name]
        docs = compressible_docs(self.N)
        m = self.start(dbpath, args)
        coll = m.client().appdb.get_collection("c", write_concern=WriteConcern(j=True))
        coll.insert_many(docs)
        # Crash: the inserts come back from the (compressed) journal.
        m.kill()
        # Journal files have a fixed size (file_max), so count how often the repeated phrase
        # is stored verbatim in them instead.
        journal = 0
        for p in glob.glob(os.path.join(dbpath, "journal", "WiredTigerLog.*")):
            with open(p, "rb") as f:
                journal += f.read().count(PHRASE.encode())
        m = self.start(dbpath, args)
        got = list(m.client().appdb.c.find({}).sort("_id", 1))
        self.assertEqual(got, docs, "%s: journal recovery lost or changed data" % name)
        self.assertEqual(m.stop(), 0)
        data = size_of(glob.glob(os.path.join(dbpath, "collection-*.wt")))
        # A clean restart reads the compressed pages back from the checkpoint.
        m = self.start(dbpath, args)
        got = list(m.client().appdb.c.find({}).sort("_id", 1))
        self.assertEqual(got, docs, "%s: data changed across a clean restart" % name)
        opts = m.client().admin.command("getCmdLineOpts")["parsed"]["storage"]["wiredTiger"]
        self.assertEqual(opts["collectionConfig"]["blockCompressor"], name)
        self.assertEqual(opts["engineConfig"]["journalCompressor"], name)
        self.assertEqual(m.stop(), 0)
        return data, journal

    def test_compressors(self):
        with TempDir() as tmp:
            sizes = {c: self.run_compressor(c, tmp) for c in ("none", "snappy", "zlib", "zstd")}
        # sizes: {compressor: (bytes of collection files, phrase copies in the journal)}
        data_none, journal_none = sizes["none"]
        self.assertGreater(data_none, self.N * 2000, sizes)  # uncompressed really is
        self.assertGreaterEqual(journal_none, self.N * 45, sizes)
        for c in ("zlib", "zstd"):
            self.assertLess(sizes[c][0], data_none / 5, "%s data files: %s" % (c, sizes))
            self.assertLess(sizes[c][1], journal_none / 20, "%s journal: %s" % (c, sizes))
        self.assertLess(sizes["snappy"][0], data_none / 2, sizes)
        self.assertLess(sizes["snappy"][1], journal_none / 2, sizes)


class EncryptionTest(StorageTestBase):
    def write_marker(self, m, marker):
        c = m.client()
        coll = c.appdb.get_collection("secrets", write_concern=WriteConcern(j=True))
        coll.create_index("s")
        coll.insert_many([{"_id": i, "s": "%s-%d" % (marker, i)} for i in range(50)])

    def check_marker(self, m, marker):
        docs = list(m.client().appdb.secrets.find({}).sort("_id", 1))
        self.assertEqual([d["s"] for d in docs], ["%s-%d" % (marker, i) for i in range(50)])
        self.assertEqual(m.client().appdb.secrets.find_one({"s": "%s-7" % marker})["_id"], 7)

    def run_encrypted(self, mode):
        with TempDir() as tmp:
            dbpath = os.path.join(tmp, "db")
            key = os.path.join(tmp, "key")
            make_keyfile(key)
            marker = "SECRET-" + uuid.uuid4().hex
            args = enc_args(key, mode) + NONE_COMPRESSION
            m = self.start(dbpath, args)
            st = m.client().admin.command("serverStatus")["encryptionAtRest"]
            self.assertEqual(st["encryptionEnabled"], True)
            self.assertEqual(st["encryptionCipherMode"], mode)
            parsed = m.client().admin.command("getCmdLineOpts")["parsed"]
            self.assertEqual(parsed["security"], {"enableEncryption": True,
                                                  "encryptionKeyFile": key,
                                                  "encryptionCipherMode": mode})
            self.assertEqual(parsed["storage"]["dbPath"], dbpath)
            self.write_marker(m, marker)

            # Crash: the journal holds the inserts, encrypted.
            m.kill()
            self.assertEqual(files_containing(dbpath, marker.encode()), [])
            self.assertTrue(glob.glob(os.path.join(dbpath, "journal", "WiredTigerLog.*")))
            m = self.start(dbpath, args)
            self.check_marker(m, marker)
            self.assertEqual(m.stop(), 0)
            self.assertEqual(files_containing(dbpath, marker.encode()), [])

            # The same key and mode open it again.
            m = self.start(dbpath, args)
            self.check_marker(m, marker)
            self.assertEqual(m.stop(), 0)
            self.assertEqual(files_containing(dbpath, marker.encode()), [])

    def test_aes256_cbc(self):
        self.run_encrypted("AES256-CBC")

    def test_aes256_gcm(self):
        self.run_encrypted("AES256-GCM")

    def test_control_unencrypted_marker_visible(self):
        """Without encryption the same scan finds the marker: the scans above can fail."""
        with TempDir() as tmp:
            dbpath = os.path.join(tmp, "db")
            marker = "SECRET-" + uuid.uuid4().hex
            m = self.start(dbpath, NONE_COMPRESSION)
            st = m.client().admin.command("serverStatus")["encryptionAtRest"]
            self.assertEqual(st["encryptionEnabled"], False)
            self.assertNotIn("security", m.client().admin.command("getCmdLineOpts")["parsed"])
            self.write_marker(m, marker)
            m.kill()
            hits = files_containing(dbpath, marker.encode())
            self.assertTrue(any(h.startswith("journal" + os.sep) for h in hits), hits)
            m = self.start(dbpath, NONE_COMPRESSION)
            self.check_marker(m, marker)
            self.assertEqual(m.stop(), 0)
            hits = files_containing(dbpath, marker.encode())
            self.assertTrue(any(re.match(r"collection-.*\.wt$", h) for h in hits), hits)
            self.assertTrue(any(re.match(r"index-.*\.wt$", h) for h in hits), hits)


class StartupErrorTest(StorageTestBase):
    """Each refused start: non-zero exit, one line on stderr naming the problem, and the dbpath
    byte-identical afterwards (so still usable with the right settings, checked at the end)."""

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = TempDir()
        cls.tmp = cls.tmpdir.path
        cls.key = os.path.join(cls.tmp, "key")
        make_keyfile(cls.key)
        cls.enc = os.path.join(cls.tmp, "enc")
        cls.plain = os.path.join(cls.tmp, "plain")
        for dbpath, args in ((cls.enc, enc_args(cls.key)), (cls.plain, [])):
            m = Mongod(dbpath, args=args).start()
            try:
                m.client().appdb.items.insert_many([{"_id": i} for i in range(10)])
            finally:
                assert m.stop() == 0

    @classmethod
    def tearDownClass(cls):
        cls.tmpdir.__exit__(None, None, None)

    def refused(self, dbpath, args, pattern):
        before = tree_state(dbpath)
        m = self.node(dbpath, args, logpath=os.path.join(self.tmp, "refused.log"))
        code, err = m.run_to_exit()
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertNotEqual(code, 0, err)
        self.assertEqual(len(lines), 1, "expected one line on stderr, got: %r" % err)
        self.assertRegex(lines[0], pattern)
        self.assertEqual(tree_state(dbpath), before, "the refused start changed %s" % dbpath)
        return lines[0]

    def check_usable(self, dbpath, args):
        m = self.start(dbpath, args)
        self.assertEqual(m.client().appdb.items.count_documents({}), 10)
        self.assertEqual(m.stop(), 0)

    def keyfile(self, name, content, mode=0o600):
        p = os.path.join(self.tmp, name)
        with open(p, "wb") as f:
            f.write(content)
        os.chmod(p, mode)
        return p

    def test_encrypted_dbpath_errors(self):
        other = os.path.join(self.tmp, "otherkey")
        make_keyfile(other)
        self.refused(self.enc, enc_args(other), r"(?i)different key")
        self.refused(self.enc, enc_args(os.path.join(self.tmp, "nokey")),
                     r"nokey.*No such file")
        loose = os.path.join(self.tmp, "loosekey")
        shutil.copy(self.key, loose)
        os.chmod(loose, 0o644)
        self.refused(self.enc, enc_args(loose), r"(?i)loosekey.*permission.*0644")
        bad64 = self.keyfile("bad64", b"this is not base64!!\n")
        self.refused(self.enc, enc_args(bad64), r"bad64.*base64")
        short = self.keyfile("short", base64.b64encode(os.urandom(16)) + b"\n")
        self.refused(self.enc, enc_args(short), r"short.*32-byte.*16 bytes")
        self.refused(self.enc, [], r"(?i)encrypted.*--enableEncryption")
        self.refused(self.enc, enc_args(self.key, "AES256-GCM"), r"AES256-CBC.*AES256-GCM")
        self.check_usable(self.enc, enc_args(self.key))

    def test_failed_first_start_leaves_empty_dbpath(self):
        """A first start refused for its key file writes nothing (no storage.bson pinning the
        options, no lock file), so the corrected command can use other layout options."""
        fresh = os.path.join(self.tmp, "fresh")
        os.makedirs(fresh)
        self.refused(fresh, enc_args(os.path.join(self.tmp, "nokey")), r"nokey.*No such file")
        self.assertEqual(os.listdir(fresh), [])
        m = self.start(fresh, enc_args(self.key) + ["--directoryperdb"])
        m.client().appdb.items.insert_one({"_id": 1})
        self.assertEqual(m.stop(), 0)
        self.assertTrue(glob.glob(os.path.join(fresh, "appdb", "collection-*.wt")))

    def test_plain_dbpath_errors(self):
        self.refused(self.plain, enc_args(self.key), r"(?i)not encrypted.*enableEncryption")
        self.refused(self.plain, ["--directoryperdb"], r"directoryPerDB")
        self.refused(self.plain, ["--wiredTigerDirectoryForIndexes"], r"directoryForIndexes")
        self.check_usable(self.plain, [])

    def test_refused_start_after_crash(self):
        """A node killed before its first periodic checkpoint: a start with the other encryption
        setting is still refused, and mongod.lock still holding the dead pid (how the next start
        knows to recover) is left as it was, like everything else."""
        other = os.path.join(self.tmp, "otherkey2")
        make_keyfile(other)
        cases = (("crashed-plain", [], [(enc_args(self.key), r"(?i)not encrypted")]),
                 ("crashed-enc", enc_args(self.key),
                  [([], r"(?i)encrypted.*--enableEncryption"),
                   (enc_args(other), r"(?i)different key"),
                   (enc_args(self.key, "AES256-GCM"), r"AES256-CBC.*AES256-GCM")]))
        for name, args, refusals in cases:
            crashed = os.path.join(self.tmp, name)
            m = self.start(crashed, args)
            m.client().appdb.get_collection("items", write_concern=WriteConcern(j=True)) \
                .insert_many([{"_id": i} for i in range(10)])
            m.kill()
            with open(os.path.join(crashed, "mongod.lock")) as f:
                self.assertEqual(f.read().strip(), str(m.proc.pid))
            for bad_args, pattern in refusals:
                self.refused(crashed, bad_args, pattern)
            m = self.start(crashed, args)
            self.assertIn("Detected unclean shutdown", m.log())
            self.assertEqual(m.client().appdb.items.count_documents({}), 10)
            self.assertEqual(m.stop(), 0)

    def test_foreign_dbpaths(self):
        other_engine = os.path.join(self.tmp, "mmap")
        shutil.copytree(self.plain, other_engine)
        with open(os.path.join(other_engine, "storage.bson"), "wb") as f:
            f.write(bson.encode({"storage": {"engine": "mmapv1",
                                             "options": {"directoryPerDB": False}}}))
        self.refused(other_engine, [], r"mmapv1")

        corrupt = os.path.join(self.tmp, "corrupt")
        shutil.copytree(self.plain, corrupt)
        wt = os.path.join(corrupt, "WiredTiger.wt")
        size = os.path.getsize(wt)
        with open(wt, "r+b") as f:
            f.seek(4096)
            f.write(os.urandom(size - 4096))
        # The root cause (a bad block in WiredTiger.wt), not WiredTiger's closing "panic".
        line = self.refused(corrupt, [], r"WiredTiger\.wt: .*(checksum|block)")
        self.assertNotIn("panic", line)
        self.assertNotRegex(line, r"\[\d+:\d+\]")  # no WiredTiger log-line prefix

        # WiredTiger files without the WiredTiger metadata: not a dbpath we can open.
        stray = os.path.join(self.tmp, "stray")
        os.makedirs(stray)
        shutil.copy(glob.glob(os.path.join(self.plain, "collection-*.wt"))[0], stray)
        self.refused(stray, [], r"collection-.*\.wt")

    def test_dbpath_in_use(self):
        first = self.start(self.plain)
        with open(os.path.join(self.plain, "mongod.lock")) as f:
            lock = f.read()
        self.assertEqual(lock.strip(), str(first.proc.pid))
        second = self.node(self.plain, logpath=os.path.join(self.tmp, "second.log"))
        code, err = second.run_to_exit()
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertNotEqual(code, 0)
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"(?i)mongod\.lock.*another mongod instance")
        with open(os.path.join(self.plain, "mongod.lock")) as f:
            self.assertEqual(f.read(), lock)
        # The first node is untouched and keeps serving.
        self.assertIsNone(first.proc.poll())
        self.assertEqual(first.client().appdb.items.count_documents({}), 10)
        self.assertEqual(first.stop(), 0)


if __name__ == "__main__":
    unittest.main()
