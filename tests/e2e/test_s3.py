"""The S3 storage driver against s3rver on loopback (tests/e2e/s3server.py), driven through
build/bin/s3tool; the AWS SDK for JavaScript (tests/s3/sdk_client.js) independently checks what
we wrote and writes what we must read.

Run: PSMDB_BIN=build/bin /usr/bin/python3 -m unittest -v test_s3   (after scripts/setup.sh)
"""
import base64
import hashlib
import json
import os
import shutil
import tempfile
import unittest

from s3faultproxy import S3FaultProxy
from s3server import S3Server, S3Tool

MiB = 1024 * 1024
PART = 5 * MiB  # S3's minimum part size; the driver raises smaller settings to it


class S3StorageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = S3Server().start()
        cls.tmp = tempfile.mkdtemp(prefix="test-s3-")
        cls.tool = S3Tool(cls.s3.storage_config(prefix="pbm/backups", uploadPartSize=PART),
                          cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        self.tool.run("rmprefix", "")

    def test_round_trips_through_our_driver_and_the_sdk(self):
        sizes = {"empty": 0, "small": 1000, "one-part": PART, "part-plus-one": PART + 1,
                 "three-parts": 2 * PART + 12345}
        data = {name: os.urandom(size) for name, size in sizes.items()}
        for name, blob in data.items():
            self.tool.put("rt/" + name, blob)
        for name, blob in data.items():
            with self.subTest(object=name):
                self.assertEqual(self.tool.get("rt/" + name), blob)
                # Someone else's client finds the object under the prefix, byte for byte.
                self.assertEqual(self.s3.sdk("get", "pbm/backups/rt/" + name), blob)
                out = self.tool.run("stat", "rt/" + name).stdout.split()
                self.assertEqual(int(out[0]), len(blob))
        self.assertEqual(self.tool.list("rt/"),
                         sorted(("rt/" + n, s) for n, s in sizes.items()))
        listed = json.loads(self.s3.sdk("list", "pbm/backups/"))
        self.assertEqual(sorted((o["key"], o["size"]) for o in listed),
                         sorted(("pbm/backups/rt/" + n, s) for n, s in sizes.items()))

    def test_reads_what_the_sdk_wrote(self):
        small = b"written by @aws-sdk/client-s3"
        big = os.urandom(2 * PART + 777)
        self.s3.sdk("put", "pbm/backups/sdk/small", input=small)
        # @aws-sdk/lib-storage: a multipart upload with 5 MiB parts.
        self.s3.sdk("upload", "pbm/backups/sdk/big", str(PART), input=big)
        self.assertEqual(self.tool.get("sdk/small"), small)
        self.assertEqual(self.tool.get("sdk/big"), big)
        self.assertEqual(self.tool.list("sdk/"), [("sdk/big", len(big)), ("sdk/small", len(small))])

    def test_open_range(self):
        blob = os.urandom(2 * PART + 100)
        self.tool.put("r/obj", blob)
        for off, length in [(0, 10), (PART - 3, 10), (PART - 1, PART + 2), (len(blob) - 5, 100),
                            (len(blob), 10), (7, 0), (0, 3 * PART)]:
            with self.subTest(offset=off, length=length):
                got = self.tool.run("range", "r/obj", off, length).stdout
                self.assertEqual(got, blob[off:off + length])
        p = self.tool.run("range", "r/obj", len(blob) + 1, 1, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("past the end", p.stderr.decode())

    def test_missing_objects(self):
        p = self.tool.run("get", "no/such", check=False)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("no/such", p.stderr.decode())
        self.assertIn("no such object", p.stderr.decode())
        self.assertEqual(self.tool.run("stat", "no/such", check=False).returncode, 3)
        self.tool.run("rm", "no/such")  # removing a missing object is no error

    def test_list_with_continuation_and_remove_prefix(self):
        # More than one ListObjectsV2 page (1000 keys) and one DeleteObjects batch.
        self.tool.run("fill", "many/o", 1005)
        # (A sibling that sorts after "many/": s3rver pages in directory-walk order, so a key
        # like "many-not/x", bytewise before "many/...", would be lost on its second page.)
        self.tool.put("manyz/x", b"x")
        self.tool.put("keep/y", b"y")
        names = [n for n, _ in self.tool.list("many/")]
        self.assertEqual(names, ["many/o%06d" % i for i in range(1005)])
        self.assertEqual(len(self.tool.list("many")), 1006)  # a plain string prefix
        self.assertEqual(len(json.loads(self.s3.sdk("list", "pbm/backups/many/"))), 1005)
        self.tool.run("rmprefix", "many/")
        self.assertEqual(self.tool.list(""), [("keep/y", 1), ("manyz/x", 1)])
        self.assertEqual(self.tool.get("manyz/x"), b"x")

    def test_max_upload_parts(self):
        tool = S3Tool(self.s3.storage_config(prefix="pbm/backups", uploadPartSize=PART,
                                             maxUploadParts=2), self.tmp)
        tool.put("mp/two", os.urandom(2 * PART))
        p = tool.run("put", "mp/three", input=os.urandom(2 * PART + 1), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("needs more than maxUploadParts (2) parts of 5242880 bytes; raise "
                      "s3.uploadPartSize", p.stderr.decode())
        self.assertEqual(self.tool.list("mp/"), [("mp/two", 2 * PART)])

    def test_missing_bucket(self):
        tool = S3Tool(dict(self.s3.storage_config(), s3=dict(self.s3.storage_config()["s3"],
                                                               bucket="no-such-bucket")), self.tmp)
        p = tool.run("list", "", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("S3 list of all objects on s3://no-such-bucket: the bucket does not exist",
                      p.stderr.decode())

    def test_prefix_keeps_objects_apart(self):
        other = S3Tool(self.s3.storage_config(prefix="other"), self.tmp)
        other.put("a", b"other")
        self.tool.put("a", b"ours")
        self.assertEqual(self.tool.list(""), [("a", 4)])
        self.assertEqual(other.get("a"), b"other")
        other.run("rmprefix", "")
        self.assertEqual(other.list(""), [])
        self.assertEqual(self.tool.get("a"), b"ours")

    def test_abandoned_writer_leaves_nothing_and_aborts_its_upload(self):
        # Through a fault-free proxy, to see the requests the driver sends.
        with S3FaultProxy(self.s3.port, rate=0.0) as proxy:
            tool = S3Tool(self.s3.storage_config(prefix="pbm/backups", endpoint=proxy.endpoint,
                                                 uploadPartSize=PART), self.tmp)
            tool.run("abandon", "ab/big", input=os.urandom(2 * PART + 1))
            tool.run("abandon", "ab/small", input=b"tiny")
            methods = [(m, p.split("?")[0], p) for m, p in proxy.requests]
        self.assertEqual(self.tool.list(""), [])
        self.assertEqual(json.loads(self.s3.sdk("list", "")), [])
        started = [p for m, path, p in methods if m == "POST" and "uploads" in p]
        aborted = [p for m, path, p in methods if m == "DELETE" and "uploadId=" in p]
        self.assertEqual(len(started), 1, methods)
        self.assertEqual(len(aborted), 1, methods)  # s3rver answers 405, but we asked
        self.assertFalse([p for m, path, p in methods if m == "PUT" and "small" in path])

    def test_server_side_encryption_headers_are_sent(self):
        kms = {"sseAlgorithm": "aws:kms", "kmsKeyID": "key-1"}
        customer_key = bytes(range(32))
        sse_c = {"sseCustomerAlgorithm": "AES256",
                 "sseCustomerKey": base64.b64encode(customer_key).decode()}
        for sse, must in [
                (kms, {"x-amz-server-side-encryption": "aws:kms",
                       "x-amz-server-side-encryption-aws-kms-key-id": "key-1"}),
                (sse_c, {"x-amz-server-side-encryption-customer-algorithm": "AES256",
                         "x-amz-server-side-encryption-customer-key": sse_c["sseCustomerKey"],
                         "x-amz-server-side-encryption-customer-key-md5":
                             base64.b64encode(hashlib.md5(customer_key).digest()).decode()})]:
            with self.subTest(sse=sorted(sse)), S3FaultProxy(self.s3.port) as proxy:
                tool = S3Tool(self.s3.storage_config(prefix="pbm/backups", endpoint=proxy.endpoint,
                                                     uploadPartSize=PART,
                                                     serverSideEncryption=sse), self.tmp)
                tool.put("sse/small", b"s")
                tool.put("sse/big", os.urandom(PART + 1))
                self.assertEqual(tool.get("sse/small"), b"s")
                reqs = list(zip(proxy.requests, proxy.headers))
                # Object-creating requests carry the settings (SSE-C: every object data request).
                creating = [(m, p) for (m, p), hd in reqs
                            if (m == "PUT" and "partNumber" not in p) or (m == "POST" and "uploads" in p)]
                self.assertEqual(len(creating), 2, reqs)
                customer = "x-amz-server-side-encryption-customer-key" in must
                for (m, p), hd in reqs:
                    # SSE-C: also every part upload, HEAD and GET of object data.
                    reads_or_writes_data = m in ("PUT", "HEAD") or (m == "GET" and "list-type" not in p)
                    if (m, p) in creating or (customer and reads_or_writes_data):
                        for k, v in must.items():
                            self.assertEqual(hd.get(k), v, (m, p))
                # The SSE-C key is a secret too: never in what s3tool prints.
                p = tool.run("get", "sse/none", check=False)
                self.assertNotIn(sse_c["sseCustomerKey"], p.stderr.decode())

    def test_virtual_hosted_addressing(self):
        # curl resolves *.localhost to loopback; s3rver maps <bucket>.s3.localhost to the bucket.
        vhost = S3Tool(self.s3.storage_config(
            prefix="pbm/backups", endpoint="http://s3.localhost:%d" % self.s3.port,
            forcePathStyle=False), self.tmp)
        vhost.put("vh/a", b"virtual")
        self.assertEqual(self.tool.get("vh/a"), b"virtual")
        self.assertEqual(vhost.list("vh/"), [("vh/a", 7)])

    def test_bad_credentials_give_a_clear_error_without_the_secret(self):
        secret = "TOPSECRET-do-not-print"
        bad = S3Tool({"type": "s3", "s3": {
            "bucket": self.s3.bucket, "endpointUrl": self.s3.endpoint,
            "credentials": {"access-key-id": "NOSUCHKEY", "secret-access-key": secret,
                            "session-token": "TOKEN-do-not-print"}}}, self.tmp)
        for args in (("put", "x"), ("get", "x"), ("list", ""), ("describe",)):
            with self.subTest(args=args):
                p = bad.run(*args, input=b"data", check=False)
                out = p.stdout.decode() + p.stderr.decode()
                self.assertNotIn(secret, out)
                self.assertNotIn("TOKEN-do-not-print", out)
                if args[0] != "describe":
                    self.assertNotEqual(p.returncode, 0)
                    self.assertIn("s3://%s" % self.s3.bucket, out)
                    self.assertIn("HTTP 403", out)
                    self.assertIn("check the credentials", out)
        self.assertEqual(bad.run("describe").stdout.decode().strip(), "s3://" + self.s3.bucket)


class S3TlsTest(unittest.TestCase):
    def test_insecure_skip_tls_verify(self):
        with S3Server(tls=True) as s3, tempfile.TemporaryDirectory() as tmp:
            # A self-signed certificate is refused at once (not retried)...
            strict = S3Tool(s3.storage_config(), tmp)
            p = strict.run("put", "x", input=b"data", check=False)
            self.assertEqual(p.returncode, 1)
            err = p.stderr.decode()
            self.assertIn("S3 write of x on s3://%s failed after 1 attempt(s)" % s3.bucket, err)
            self.assertIn("certificate", err)
            # ...unless the config says to skip verification.
            lax = S3Tool(s3.storage_config(insecureSkipTLSVerify=True), tmp)
            blob = os.urandom(PART + 10)
            lax.put("x", blob)
            self.assertEqual(lax.get("x"), blob)


if __name__ == "__main__":
    unittest.main()
