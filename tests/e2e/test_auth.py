"""Authentication in wtmongod, checked with pymongo as a mongod client would see it.

SCRAM-SHA-256 / SCRAM-SHA-1 logins (speculative and explicit), mongod's error codes (18 for a
failed login, 13 for commands without authentication), the localhost exception, users in
admin.system.users replicating to secondaries, a replica set whose members authenticate with a
key file, and the key-file checks at startup.
"""
import base64
import hashlib
import hmac
import os
import socket
import unittest

import pymongo
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import WriteConcern
from pymongo.errors import OperationFailure

from harness import Mongod, ReplSet, TempDir, make_keyfile, wait_until

ROOT_USER, ROOT_PWD = "root", "s3cret-Pw"


def login(m, user, pwd, **kw):
    kw.setdefault("serverSelectionTimeoutMS", 10000)
    return pymongo.MongoClient(m.host, directConnection=True, username=user, password=pwd,
                               readPreference="primaryPreferred", **kw)


def error_of(fn):
    """The OperationFailure that fn raises (fails the test when it raises none)."""
    try:
        fn()
    except OperationFailure as e:
        return e
    raise AssertionError("no OperationFailure from %r" % fn)


def scram_client_messages(mech, user, pwd, server_first, client_nonce, first_bare):
    """The client-final message and the server signature a SCRAM client computes."""
    if mech == "SCRAM-SHA-256":
        name, data = "sha256", pwd.encode()
    else:
        name = "sha1"
        data = hashlib.md5(("%s:mongo:%s" % (user, pwd)).encode()).hexdigest().encode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(name, data, base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", name).digest()
    stored = hashlib.new(name, client_key).digest()
    without_proof = "c=biws,r=" + attrs["r"]
    auth_msg = ",".join((first_bare, server_first, without_proof)).encode()
    sig = hmac.new(stored, auth_msg, name).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    server_key = hmac.new(salted, b"Server Key", name).digest()
    server_sig = base64.b64encode(hmac.new(server_key, auth_msg, name).digest()).decode()
    return without_proof + ",p=" + base64.b64encode(proof).decode(), server_sig


class StandaloneAuthTest(unittest.TestCase):
    """One --auth node; the first user is created through the localhost exception."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        d = cls.tmp.__enter__()
        cls.m = Mongod(os.path.join(d, "db"), args=["--auth"]).start()
        try:
            cls.m.client().admin.command("createUser", ROOT_USER, pwd=ROOT_PWD, roles=["root"])
        except Exception:
            cls.m.kill()
            cls.tmp.__exit__(None, None, None)
            raise
        cls.root = login(cls.m, ROOT_USER, ROOT_PWD)

    @classmethod
    def tearDownClass(cls):
        cls.root.close()
        cls.m.stop()
        cls.tmp.__exit__(None, None, None)

    def test_scram_sha256_login(self):
        with login(self.m, ROOT_USER, ROOT_PWD, authMechanism="SCRAM-SHA-256") as c:
            c.app.sha256.insert_one({"_id": 1})
            self.assertEqual(c.app.sha256.find_one(), {"_id": 1})
            st = c.admin.command("connectionStatus")["authInfo"]
            self.assertEqual(st["authenticatedUsers"], [{"user": ROOT_USER, "db": "admin"}])
            self.assertEqual(st["authenticatedUserRoles"], [{"role": "root", "db": "admin"}])

    def test_scram_sha1_login(self):
        with login(self.m, ROOT_USER, ROOT_PWD, authMechanism="SCRAM-SHA-1") as c:
            c.app.sha1.insert_one({"_id": 1})
            self.assertEqual(c.app.sha1.count_documents({}), 1)
        self.assertIn('"mechanism":"SCRAM-SHA-1"', self.m.log())

    def test_uri_with_auth_source(self):
        uri = "mongodb://%s:%s@%s/?authSource=admin&directConnection=true" % (
            ROOT_USER, ROOT_PWD, self.m.host)
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000) as c:
            c.app.uri.insert_one({"x": 1})
            self.assertEqual(c.app.uri.count_documents({}), 1)
        # The database in the path is the default authSource.
        uri = "mongodb://%s:%s@%s/admin?directConnection=true" % (ROOT_USER, ROOT_PWD, self.m.host)
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000) as c:
            self.assertEqual(c.app.uri.count_documents({}), 1)

    def test_wrong_password_is_code_18(self):
        with login(self.m, ROOT_USER, "wrong") as c:
            e = error_of(lambda: c.app.x.find_one())
        self.assertEqual(e.code, 18)
        self.assertEqual(e.details["errmsg"], "Authentication failed.")
        self.assertEqual(e.details["codeName"], "AuthenticationFailed")
        for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
            with login(self.m, ROOT_USER, "wrong", authMechanism=mech) as c:
                self.assertEqual(error_of(lambda: c.app.x.find_one()).code, 18)

    def test_unknown_user_is_code_18(self):
        with login(self.m, "nobody", "pw", authMechanism="SCRAM-SHA-256") as c:
            e = error_of(lambda: c.app.x.find_one())
        self.assertEqual((e.code, e.details["errmsg"]), (18, "Authentication failed."))
        # A user of another database is another user.
        with login(self.m, ROOT_USER, ROOT_PWD, authSource="app") as c:
            self.assertEqual(error_of(lambda: c.app.x.find_one()).code, 18)

    def test_unauthenticated_commands_are_refused(self):
        c = self.m.client()
        for name, fn in [("find", lambda: c.app.x.find_one()),
                         ("insert", lambda: c.app.x.insert_one({})),
                         ("listDatabases", lambda: c.list_database_names()),
                         ("createUser", lambda: c.admin.command("createUser", "x", pwd="y",
                                                                roles=[])),
                         ("serverStatus", lambda: c.admin.command("serverStatus"))]:
            e = error_of(fn)
            self.assertEqual(e.code, 13, name)
            self.assertEqual(e.details["errmsg"], "Command %s requires authentication" % name)
            self.assertEqual(e.details["codeName"], "Unauthorized")
        # The handshake and what a driver needs before authenticating still work.
        for cmd in ("hello", "isMaster", "ping", "buildInfo", "connectionStatus"):
            self.assertEqual(c.admin.command(cmd)["ok"], 1.0, cmd)
        self.assertEqual(c.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"], [])

    def test_hello_advertises_mechanisms(self):
        self.root.admin.command("createUser", "sha1only", pwd="pw", roles=["read"],
                                mechanisms=["SCRAM-SHA-1"])
        c = self.m.client()
        self.assertEqual(c.admin.command("hello", saslSupportedMechs="admin." + ROOT_USER)
                         ["saslSupportedMechs"], ["SCRAM-SHA-1", "SCRAM-SHA-256"])
        self.assertEqual(c.admin.command("hello", saslSupportedMechs="admin.sha1only")
                         ["saslSupportedMechs"], ["SCRAM-SHA-1"])
        self.assertNotIn("saslSupportedMechs",
                         c.admin.command("hello", saslSupportedMechs="admin.nobody"))
        # The driver negotiates SCRAM-SHA-1 for that user; asking for SHA-256 fails.
        with login(self.m, "sha1only", "pw") as u:
            self.assertEqual(u.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"],
                             [{"user": "sha1only", "db": "admin"}])
        with login(self.m, "sha1only", "pw", authMechanism="SCRAM-SHA-256") as u:
            self.assertEqual(error_of(lambda: u.app.x.find_one()).code, 18)

    def test_user_documents_and_commands(self):
        r = self.root
        r.admin.command("createUser", "alice", pwd="pw1", roles=["readWrite",
                                                                 {"role": "read", "db": "app"}],
                        customData={"team": "x"})
        e = error_of(lambda: r.admin.command("createUser", "alice", pwd="pw", roles=[]))
        self.assertEqual(e.code, 51003)
        self.assertEqual(e.details["errmsg"], 'User "alice@admin" already exists')
        self.assertEqual(error_of(lambda: r.admin.command("createUser", "bob", pwd="pw",
                                                          roles=["noSuchRole"])).code, 31)
        self.assertEqual(error_of(lambda: r.admin.command("createUser", "bob",
                                                          roles=[])).code, 2)  # no pwd

        # Stored as mongod stores it.
        doc = r.admin.system.users.find_one({"_id": "admin.alice"})
        self.assertEqual(doc["user"], "alice")
        self.assertEqual(doc["db"], "admin")
        raw = r.admin.get_collection("system.users", codec_options=CodecOptions(
            uuid_representation=UuidRepresentation.UNSPECIFIED)).find_one({"_id": "admin.alice"})
        self.assertEqual(raw["userId"].subtype, 4)
        self.assertEqual(doc["roles"], [{"role": "readWrite", "db": "admin"},
                                        {"role": "read", "db": "app"}])
        self.assertEqual(doc["customData"], {"team": "x"})
        creds = doc["credentials"]
        self.assertEqual(sorted(creds), ["SCRAM-SHA-1", "SCRAM-SHA-256"])
        self.assertEqual(creds["SCRAM-SHA-1"]["iterationCount"], 10000)
        self.assertEqual(creds["SCRAM-SHA-256"]["iterationCount"], 15000)
        self.assertEqual(len(base64.b64decode(creds["SCRAM-SHA-256"]["salt"])), 28)
        # The stored keys are SCRAM's: recompute SHA-256's from the password.
        s = creds["SCRAM-SHA-256"]
        salted = hashlib.pbkdf2_hmac("sha256", b"pw1", base64.b64decode(s["salt"]), 15000)
        stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
        self.assertEqual(base64.b64decode(s["storedKey"]), stored)
        self.assertIn({"name": "user_1_db_1", "key": {"user": 1, "db": 1}},
                      [{"name": i["name"], "key": dict(i["key"])}
                       for i in r.admin.system.users.list_indexes()])

        info = r.admin.command("usersInfo", "alice")["users"]
        self.assertEqual(len(info), 1)
        self.assertNotIn("credentials", info[0])
        self.assertEqual(info[0]["mechanisms"], ["SCRAM-SHA-1", "SCRAM-SHA-256"])
        self.assertIn("credentials",
                      r.admin.command("usersInfo", "alice", showCredentials=True)["users"][0])
        names = [u["user"] for u in r.admin.command("usersInfo", 1)["users"]]
        self.assertIn("alice", names)
        self.assertIn(ROOT_USER, names)

        r.admin.command("grantRolesToUser", "alice", roles=["clusterMonitor"])
        self.assertIn({"role": "clusterMonitor", "db": "admin"},
                      r.admin.command("usersInfo", "alice")["users"][0]["roles"])

        with login(self.m, "alice", "pw1") as a:
            a.app.x.find_one()
        r.admin.command("updateUser", "alice", pwd="pw2")
        with login(self.m, "alice", "pw1") as a:
            self.assertEqual(error_of(lambda: a.app.x.find_one()).code, 18)
        with login(self.m, "alice", "pw2") as a:
            a.app.x.find_one()

        # Dropping the user ends the sessions logged in as it.
        logged_in = login(self.m, "alice", "pw2", maxPoolSize=1)
        logged_in.app.x.find_one()
        r.admin.command("dropUser", "alice")
        self.assertEqual(error_of(lambda: logged_in.app.x.find_one()).code, 13)
        logged_in.close()
        self.assertEqual(r.admin.command("usersInfo", "alice")["users"], [])
        with login(self.m, "alice", "pw2") as a:
            self.assertEqual(error_of(lambda: a.app.x.find_one()).code, 18)
        self.assertEqual(error_of(lambda: r.admin.command("dropUser", "alice")).code, 11)

    def test_custom_role_as_pbm_creates_it(self):
        r = self.root
        r.admin.command("createRole", "pbmAnyAction",
                        privileges=[{"resource": {"anyResource": True}, "actions": ["anyAction"]}],
                        roles=[])
        self.assertEqual(error_of(lambda: r.admin.command(
            "createRole", "pbmAnyAction", privileges=[], roles=[])).code, 51002)
        role = r.admin.system.roles.find_one({"_id": "admin.pbmAnyAction"})
        self.assertEqual(role["role"], "pbmAnyAction")
        self.assertEqual(role["privileges"][0]["actions"], ["anyAction"])
        r.admin.command("createUser", "pbm", pwd="pbmpw",
                        roles=[{"db": "admin", "role": "readWrite", "collection": ""},
                               {"db": "admin", "role": "backup"},
                               {"db": "admin", "role": "clusterMonitor"},
                               {"db": "admin", "role": "restore"},
                               {"db": "admin", "role": "pbmAnyAction"}])
        with login(self.m, "pbm", "pbmpw") as p:
            p.admin.pbmConfig.insert_one({"x": 1})
        info = r.admin.command("rolesInfo", "pbmAnyAction", showPrivileges=True)["roles"]
        self.assertEqual(info[0]["privileges"][0]["resource"], {"anyResource": True})

    def test_sasl_conversation_by_hand(self):
        """saslStart / saslContinue without skipEmptyExchange, string payloads, logout."""
        with pymongo.MongoClient(self.m.host, directConnection=True, maxPoolSize=1,
                                 serverSelectionTimeoutMS=10000) as c:
            db = c.admin
            e = error_of(lambda: db.command("saslContinue", 1, conversationId=1, payload=b""))
            self.assertEqual((e.code, e.details["errmsg"]), (17, "No SASL session state found"))
            e = error_of(lambda: db.command("saslStart", 1, mechanism="PLAIN", payload=b"x"))
            self.assertEqual(e.code, 2)
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
                nonce = base64.b64encode(os.urandom(24)).decode()
                first_bare = "n=%s,r=%s" % (ROOT_USER, nonce)
                # A payload given as a string is base64, and comes back as a string.
                r1 = db.command("saslStart", 1, mechanism=mech,
                                payload=base64.b64encode(("n,," + first_bare).encode()).decode())
                self.assertEqual((r1["conversationId"], r1["done"]), (1, False))
                server_first = base64.b64decode(r1["payload"]).decode()
                self.assertTrue(server_first.startswith("r=" + nonce))
                final, server_sig = scram_client_messages(mech, ROOT_USER, ROOT_PWD, server_first,
                                                          nonce, first_bare)
                r2 = db.command("saslContinue", 1, conversationId=1,
                                payload=Binary(final.encode()))
                self.assertEqual(bytes(r2["payload"]).decode(), "v=" + server_sig)
                self.assertFalse(r2["done"])  # no skipEmptyExchange: one more round
                r3 = db.command("saslContinue", 1, conversationId=1, payload=Binary(b""))
                self.assertTrue(r3["done"])
                self.assertEqual(db.command("connectionStatus")["authInfo"]["authenticatedUsers"],
                                 [{"user": ROOT_USER, "db": "admin"}])
                c.app.x.find_one()
                db.command("logout")
                self.assertEqual(db.command("connectionStatus")["authInfo"]["authenticatedUsers"],
                                 [])
                self.assertEqual(error_of(lambda: c.app.x.find_one()).code, 13)
            # A wrong proof.
            nonce = "abcdefghijkl"
            first_bare = "n=%s,r=%s" % (ROOT_USER, nonce)
            r1 = db.command("saslStart", 1, mechanism="SCRAM-SHA-256",
                            payload=Binary(("n,," + first_bare).encode()),
                            options={"skipEmptyExchange": True})
            final, _ = scram_client_messages("SCRAM-SHA-256", ROOT_USER, "bad",
                                             bytes(r1["payload"]).decode(), nonce, first_bare)
            e = error_of(lambda: db.command("saslContinue", 1, conversationId=1,
                                            payload=Binary(final.encode())))
            self.assertEqual((e.code, e.details["errmsg"]), (18, "Authentication failed."))
            # The failed conversation is over.
            e = error_of(lambda: db.command("saslContinue", 1, conversationId=1, payload=b""))
            self.assertEqual(e.code, 17)


class LocalhostExceptionTest(unittest.TestCase):
    def test_first_user_then_exception_ends(self):
        with TempDir() as d:
            m = Mongod(os.path.join(d, "db"), args=["--auth"]).start()
            try:
                c = m.client()
                # Only the first admin user: reading, writing, other databases are refused.
                for fn in (lambda: c.app.x.find_one(), lambda: c.app.x.insert_one({}),
                           lambda: c.app.command("createUser", "u", pwd="p", roles=[]),
                           lambda: c.admin.command("createUser", "u", pwd="p",
                                                   roles=[{"role": "readWrite", "db": "app"}]),
                           lambda: c.admin.command("getParameter", 1, logLevel=1)):
                    e = error_of(fn)
                    self.assertEqual(e.code, 13)
                    self.assertIn("not authorized on ", e.details["errmsg"])
                c.admin.command("createUser", "first", pwd="pw", roles=["root"])
                # The exception is over, for this connection and every new one.
                e = error_of(lambda: c.admin.command("createUser", "second", pwd="pw",
                                                     roles=["root"]))
                self.assertEqual((e.code, e.details["errmsg"]),
                                 (13, "Command createUser requires authentication"))
                with m.client() as fresh:
                    self.assertEqual(error_of(lambda: fresh.app.x.find_one()).code, 13)
                with login(m, "first", "pw") as a:
                    a.admin.command("createUser", "second", pwd="pw", roles=["read"])
                    self.assertEqual(len(a.admin.command("usersInfo", 1)["users"]), 2)
                # The users survive a restart, and so does the end of the exception.
                m.stop()
                m.start()
                with m.client() as fresh:
                    e = error_of(lambda: fresh.admin.command("createUser", "third", pwd="pw",
                                                             roles=["root"]))
                    self.assertEqual(e.code, 13)
                with login(m, "second", "pw") as a:
                    a.app.x.find_one()
            finally:
                m.stop()


def non_loopback_ipv4():
    """An address of this machine that is not loopback, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


class BoundMongod(Mongod):
    """A Mongod listening on other addresses than the harness's 127.0.0.1."""

    def __init__(self, dbpath, bind_ip, **kw):
        super().__init__(dbpath, **kw)
        self.bind_ip = bind_ip

    def argv(self):
        a = super().argv()
        a[a.index("--bind_ip") + 1] = self.bind_ip
        return a


class RemoteClientTest(unittest.TestCase):
    def test_no_localhost_exception_for_remote_clients(self):
        ip = non_loopback_ipv4()
        if not ip:
            self.skipTest("no non-loopback IPv4 address")
        with TempDir() as d:
            m = BoundMongod(os.path.join(d, "db"), "127.0.0.1," + ip, args=["--auth"]).start()
            try:
                with pymongo.MongoClient("%s:%d" % (ip, m.port), directConnection=True,
                                         serverSelectionTimeoutMS=10000) as remote:
                    e = error_of(lambda: remote.admin.command("createUser", "u", pwd="p",
                                                              roles=["root"]))
                    self.assertEqual((e.code, e.details["errmsg"]),
                                     (13, "Command createUser requires authentication"))
                    self.assertEqual(error_of(lambda: remote.admin.command(
                        "replSetGetStatus")).code, 13)
                # From loopback the first user can be created, then the remote client logs in.
                m.client().admin.command("createUser", "u", pwd="p", roles=["root"])
                with pymongo.MongoClient("%s:%d" % (ip, m.port), directConnection=True,
                                         username="u", password="p",
                                         serverSelectionTimeoutMS=10000) as remote:
                    remote.app.x.insert_one({"_id": 1})
                    self.assertEqual(remote.app.x.count_documents({}), 1)
            finally:
                m.stop()


class WithoutAuthTest(unittest.TestCase):
    def test_offered_credentials_are_checked(self):
        with TempDir() as d:
            m = Mongod(os.path.join(d, "db")).start()
            try:
                c = m.client()
                c.app.x.insert_one({"_id": 1})  # no authentication needed
                c.admin.command("createUser", "u", pwd="pw", roles=["readWrite"])
                c.admin.command("createUser", "u2", pwd="pw", roles=["readWrite"])
                with login(m, "u", "pw") as a:
                    self.assertEqual(a.app.x.find_one(), {"_id": 1})
                with login(m, "u", "bad") as a:
                    self.assertEqual(error_of(lambda: a.app.x.find_one()).code, 18)
                # __system cannot log in without a key file.
                with login(m, "__system", "anything", authSource="local") as a:
                    self.assertEqual(error_of(lambda: a.app.x.find_one()).code, 18)
                # A connection authenticates once: as another user of the same database it is
                # refused (mongod 5.0+), as the same user again it is accepted.
                with pymongo.MongoClient(m.host, directConnection=True, maxPoolSize=1,
                                         username="u", password="pw") as a:
                    a.admin.command("ping")
                    for user, code in (("u2", 5626702), ("u", None)):
                        nonce = "abcdefghijkl"
                        first_bare = "n=%s,r=%s" % (user, nonce)
                        r1 = a.admin.command("saslStart", 1, mechanism="SCRAM-SHA-256",
                                             payload=Binary(("n,," + first_bare).encode()),
                                             options={"skipEmptyExchange": True})
                        final, _ = scram_client_messages("SCRAM-SHA-256", user, "pw",
                                                         bytes(r1["payload"]).decode(), nonce,
                                                         first_bare)
                        cont = lambda: a.admin.command("saslContinue", 1, conversationId=1,
                                                       payload=Binary(final.encode()))
                        if code:
                            self.assertEqual(error_of(cont).code, code)
                        else:
                            self.assertTrue(cont()["done"])
                    self.assertEqual(a.admin.command("connectionStatus")["authInfo"]
                                     ["authenticatedUsers"], [{"user": "u", "db": "admin"}])
            finally:
                m.stop()


class ReplSetKeyFileTest(unittest.TestCase):
    """A 3-member set with a key file: members authenticate as __system@local."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        d = cls.tmp.__enter__()
        cls.keyfile = os.path.join(d, "keyfile")
        cls.key = base64.b64encode(make_keyfile(cls.keyfile)).decode()
        cls.rs = ReplSet(d, args=["--keyFile", cls.keyfile])
        try:
            # replSetInitiate and replSetGetStatus run under the localhost exception, as with
            # mongod.
            cls.rs.start()
            cls.rs.primary.client().admin.command("createUser", ROOT_USER, pwd=ROOT_PWD,
                                                  roles=["root"])
        except Exception:
            cls.rs.kill()  # tearDownClass does not run when setUpClass fails
            cls.tmp.__exit__(None, None, None)
            raise
        cls.startup_logs = [m.log() for m in cls.rs.members]
        cls.root = pymongo.MongoClient(cls.rs.uri(), username=ROOT_USER, password=ROOT_PWD,
                                       serverSelectionTimeoutMS=10000)

    @classmethod
    def tearDownClass(cls):
        cls.root.close()
        cls.rs.stop()
        cls.tmp.__exit__(None, None, None)

    def test_set_is_healthy(self):
        st = self.root.admin.command("replSetGetStatus")
        self.assertEqual(sorted(m["stateStr"] for m in st["members"]),
                         ["PRIMARY", "SECONDARY", "SECONDARY"])
        self.assertTrue(all(m["health"] == 1 for m in st["members"]))
        # The members' heartbeats and oplog fetchers authenticated with the key.
        for log in self.startup_logs:
            self.assertIn('"principalName":"__system","authenticationDatabase":"local"', log)
            self.assertNotIn("Authentication failed", log)

    def test_user_replicates_to_secondaries(self):
        self.root.admin.command("createUser", "app", pwd="apppw", roles=["readWrite"],
                                writeConcern={"w": 3, "wtimeout": 30000})
        self.root.app.get_collection("c", write_concern=WriteConcern(w=3, wtimeout=30000)) \
            .insert_one({"_id": "written on the primary"})
        for m in self.rs.members[1:]:
            with pymongo.MongoClient(m.host, directConnection=True, username="app",
                                     password="apppw", readPreference="secondaryPreferred",
                                     serverSelectionTimeoutMS=10000) as s:
                self.assertEqual(s.admin.command("hello")["secondary"], True)
                self.assertEqual(s.app.c.find_one(), {"_id": "written on the primary"})
            with pymongo.MongoClient(m.host, directConnection=True, username="app",
                                     password="wrong", readPreference="secondaryPreferred",
                                     serverSelectionTimeoutMS=10000) as s:
                self.assertEqual(error_of(lambda: s.app.c.find_one()).code, 18)
            # The users exist there too, so the localhost exception is over on secondaries.
            with pymongo.MongoClient(m.host, directConnection=True,
                                     readPreference="secondaryPreferred") as s:
                e = error_of(lambda: s.app.c.find_one())
                self.assertEqual((e.code, e.details["errmsg"]),
                                 (13, "Command find requires authentication"))

    def test_internal_user_with_the_key(self):
        with pymongo.MongoClient(self.rs.primary.host, directConnection=True, username="__system",
                                 password=self.key, authSource="local",
                                 serverSelectionTimeoutMS=10000) as c:
            self.assertEqual(c.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"],
                             [{"user": "__system", "db": "local"}])
        with pymongo.MongoClient(self.rs.primary.host, directConnection=True, username="__system",
                                 password=self.key[:-4] + "AAA=", authSource="local",
                                 serverSelectionTimeoutMS=10000) as c:
            self.assertEqual(error_of(lambda: c.admin.command("replSetGetStatus")).code, 18)

    def test_reconfig_by_cluster_admin(self):
        self.root.admin.command("createUser", "ops", pwd="opspw", roles=["clusterAdmin"])
        with pymongo.MongoClient(self.rs.primary.host, directConnection=True, username="ops",
                                 password="opspw", serverSelectionTimeoutMS=10000) as c:
            cfg = c.admin.command("replSetGetConfig")["config"]
            cfg["version"] += 1
            cfg["members"][2]["priority"] = 0.5
            c.admin.command("replSetReconfig", cfg)
            self.assertEqual(c.admin.command("replSetGetConfig")["config"]["members"][2]["priority"],
                             0.5)
        # Without authentication, now that users exist: refused.
        with self.rs.primary.client() as c:
            e = error_of(lambda: c.admin.command("replSetGetConfig"))
            self.assertEqual(e.code, 13)
        wait_until(lambda: sorted(m["stateStr"] for m in self.root.admin.command(
            "replSetGetStatus")["members"]) == ["PRIMARY", "SECONDARY", "SECONDARY"],
                   what="healthy set after reconfig")


class InitiateByUserTest(unittest.TestCase):
    def test_initiate_by_root_when_users_exist(self):
        """A dbpath that already has users (from a standalone run): the localhost exception is
        over, so replSetInitiate needs an authenticated user, as with mongod."""
        with TempDir() as d:
            kf = os.path.join(d, "keyfile")
            make_keyfile(kf)
            m = Mongod(os.path.join(d, "db"), args=["--keyFile", kf]).start()
            try:
                m.client().admin.command("createUser", ROOT_USER, pwd=ROOT_PWD, roles=["root"])
                m.stop()
                m.replset = "rs0"
                m.start()
                cfg = {"_id": "rs0", "members": [{"_id": 0, "host": m.host}]}
                e = error_of(lambda: m.client().admin.command("replSetInitiate", cfg))
                self.assertEqual((e.code, e.details["errmsg"]),
                                 (13, "Command replSetInitiate requires authentication"))
                with login(m, ROOT_USER, ROOT_PWD) as c:
                    c.admin.command("replSetInitiate", cfg)
                    wait_until(lambda: c.admin.command("hello")["isWritablePrimary"],
                               what="primary")
                    c.app.x.insert_one({"_id": 1})
                    self.assertEqual(c.local.oplog.rs.find_one({"ns": "app.x"})["o"], {"_id": 1})
            finally:
                m.stop()


class KeyFileStartupTest(unittest.TestCase):
    def test_key_file_readable_by_others_is_refused(self):
        with TempDir() as d:
            kf = os.path.join(d, "keyfile")
            make_keyfile(kf, mode=0o644)
            m = Mongod(os.path.join(d, "db"), replset="rs0", args=["--keyFile", kf])
            code, err = m.run_to_exit()
            self.assertEqual(code, 1)
            self.assertIn("permissions on %s are too open" % kf, err)
            log = m.log()
            self.assertIn('"msg":"Read security file failed"', log)
            self.assertIn('"errmsg":"permissions on %s are too open"' % kf, log)
            self.assertIn("Unable to acquire security key[s]", log)
            # With 0600 (or 0400) the same file is accepted.
            os.chmod(kf, 0o400)
            m.start()
            m.client().admin.command("ping")
            m.stop()

    def test_bad_key_contents_and_options(self):
        with TempDir() as d:
            kf = os.path.join(d, "keyfile")
            with open(kf, "w") as f:
                f.write("abc\n")
            os.chmod(kf, 0o600)
            code, err = Mongod(os.path.join(d, "db"), args=["--keyFile", kf]).run_to_exit()
            self.assertEqual(code, 1)
            self.assertIn("has length 3", err)
            # mongod: a replica set with authorization needs a key file.
            code, err = Mongod(os.path.join(d, "db2"), replset="rs0",
                               args=["--auth"]).run_to_exit()
            self.assertEqual(code, 2)
            self.assertIn("security.keyFile is required when authorization is enabled with "
                          "replica sets", err)

    def test_config_file_enables_authorization(self):
        with TempDir() as d:
            conf = os.path.join(d, "mongod.conf")
            with open(conf, "w") as f:
                f.write("security:\n  authorization: enabled\n")
            m = Mongod(os.path.join(d, "db"), args=["-f", conf]).start()
            try:
                c = m.client()
                c.admin.command("createUser", "u", pwd="pw", roles=["root"])
                self.assertEqual(error_of(lambda: c.app.x.find_one()).code, 13)
                opts = login(m, "u", "pw").admin.command("getCmdLineOpts")["parsed"]
                self.assertEqual(opts["security"], {"authorization": "enabled"})
            finally:
                m.stop()


if __name__ == "__main__":
    unittest.main()
