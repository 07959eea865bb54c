"""The S3 driver under faults: a proxy on loopback (s3faultproxy.py) between the driver and
s3rver answers a share of requests with 500s, connection resets or stalls. At 10% every round
trip still succeeds (retries with back-off re-send the same bytes); at 100% each operation fails
with one clear error naming the operation, the object and the cause, after the configured
retries (the subprocess timeout bounds the time).

Run: PSMDB_BIN=build/bin /usr/bin/python3 -m unittest -v test_s3_faults
"""
import os
import shutil
import tempfile
import unittest

from s3faultproxy import S3FaultProxy
from s3server import S3Server, S3Tool

MiB = 1024 * 1024


class S3FaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = S3Server().start()
        cls.tmp = tempfile.mkdtemp(prefix="test-s3-faults-")
        cls.direct = S3Tool(cls.s3.storage_config(prefix="f"), cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        self.direct.run("rmprefix", "")

    def tool(self, proxy, retries, stall="3s"):
        # Stalls count after `stall` without progress (longer than the proxy's stalls). The
        # proxy holds a whole 5 MiB part before s3rver sees it: under load an honest request can
        # be silent for over a second.
        return S3Tool(self.s3.storage_config(
            prefix="f", endpoint=proxy.endpoint, uploadPartSize=5 * MiB, stallTimeout=stall,
            retryer={"numMaxRetries": retries, "minRetryDelay": "5ms", "maxRetryDelay": "50ms"}),
            self.tmp)

    def test_round_trips_survive_ten_percent_faults(self):
        blobs = {"big": os.urandom(3 * 5 * MiB + 4321), "small": os.urandom(100), "empty": b""}
        with S3FaultProxy(self.s3.port, rate=0.1, stall_seconds=5, seed=7) as proxy:
            tool = self.tool(proxy, retries=6)
            for name, blob in blobs.items():
                tool.put("rt/" + name, blob)
            tool.run("fill", "rt/many/", 40)
            for name, blob in blobs.items():
                self.assertEqual(tool.get("rt/" + name), blob)
            self.assertEqual(tool.run("range", "rt/big", 5 * MiB - 10, 20).stdout,
                             blobs["big"][5 * MiB - 10:5 * MiB + 10])
            self.assertEqual(len(tool.list("rt/")), 43)
            tool.run("rmprefix", "rt/many/")
            injected = dict(proxy.injected)
        # The faults did happen, of every kind, and the data is what a fault-free reader sees.
        for kind in ("500", "reset", "stall"):
            self.assertGreater(injected[kind], 0, injected)
        self.assertEqual(self.direct.get("rt/big"), blobs["big"])
        self.assertEqual(len(self.direct.list("rt/")), 3)

    def test_every_operation_fails_clearly_at_hundred_percent(self):
        self.direct.put("there", b"data")
        causes = {"500": "HTTP 500",  # (HEAD has no body, so no S3 error code)
                  "reset": "(Recv|Send) failure",
                  "stall": "no data moved for 1000 ms \\(stalled"}
        for fault, cause in causes.items():
            with S3FaultProxy(self.s3.port, rate=1.0, faults=(fault,), stall_seconds=2) as proxy:
                tool = self.tool(proxy, retries=2, stall="1s")  # every attempt fails anyway
                for args, op, name in [(("put", "new/x"), "write", "new/x"),
                                       (("get", "there"), "stat", "there"),
                                       (("list", "a/"), "list", "a/*")]:
                    with self.subTest(fault=fault, op=args[0]):
                        p = tool.run(*args, input=b"payload", check=False, timeout=60)
                        err = p.stderr.decode().splitlines()[-1]
                        self.assertEqual(p.returncode, 1, err)
                        self.assertIn("S3 %s of %s on s3://%s/f failed after 3 attempt(s)"
                                      % (op, name, self.s3.bucket), err)
                        self.assertRegex(err, cause)
        self.assertEqual(self.direct.list(""), [("there", 4)])


if __name__ == "__main__":
    unittest.main()
