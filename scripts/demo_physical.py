"""The main job: a 3-member replica set of pods (devcluster: mongod + pbm-agent each), sample
data, a physical backup with pbm while a writer runs, a change to the data, a physical restore,
and a check that every member holds exactly the backup's data.

Run through scripts/demo.sh (which installs and builds first). Keeps its files with KEEP_TMP=1.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pymongo
from pymongo import WriteConcern

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("PSMDB_BIN", os.path.join(ROOT, "build", "bin"))


def step(msg):
    print("==> " + msg, flush=True)


def run(*args, env=None, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=900)
    if check and p.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(args), p.stdout, p.stderr))
    return p


def main():
    tmp = tempfile.mkdtemp(prefix="psmdb-demo-")
    dc = os.path.join(tmp, "cluster")
    try:
        step("starting a 3-member replica set of pods (mongod + pbm-agent) in " + dc)
        run(os.path.join(BIN, "devcluster"), "up", "--dir", dc, "--members", "3",
            "--backoff-initial-ms", "200", "--backoff-max-ms", "1000", "--detach")
        info = json.load(open(os.path.join(dc, "cluster.json")))
        uri = info["uri"]
        env = dict(os.environ, PBM_MONGODB_URI=uri)
        pbm = lambda *a, check=True: run(os.path.join(BIN, "pbm"), *a, env=env, check=check)
        deadline = time.time() + 60
        while len(json.loads(pbm("status", "--out", "json").stdout)["cluster"]) < 3:
            if time.time() > deadline:
                sys.exit("the agents did not report in")
            time.sleep(0.5)
        cfg = os.path.join(tmp, "pbm.yaml")
        with open(cfg, "w") as f:
            f.write("storage:\n  type: filesystem\n  filesystem:\n    path: %s\n" % os.path.join(tmp, "backups"))
        step("pbm config --file " + cfg)
        print(pbm("config", "--file", cfg).stdout)

        client = pymongo.MongoClient(uri)
        step("loading sample data: 50,000 orders and an index")
        client.shop.orders.insert_many(
            [{"_id": i, "item": "item%d" % (i % 100), "qty": i % 9, "price": round(i * 0.37, 2),
              "note": "order number %d" % i} for i in range(50000)])
        client.shop.orders.create_index("item")

        step("pbm backup --type=physical --compression=zstd --wait (a writer keeps inserting)")
        writes = client.shop.get_collection("events", write_concern=WriteConcern(w="majority"))
        state = {"n": 0, "stop": False}

        def writer():
            while not state["stop"]:
                writes.insert_one({"_id": state["n"]})
                state["n"] += 1
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        while state["n"] < 50:
            time.sleep(0.05)
        before = state["n"]
        out = pbm("backup", "--type=physical", "--compression=zstd", "--wait").stdout
        after = state["n"]
        state["stop"] = True
        t.join()
        print(out)
        name = json.loads(pbm("list", "--out", "json").stdout)["snapshots"][-1]["name"]
        print(pbm("list").stdout)
        print(pbm("describe-backup", name).stdout)

        step("changing the data after the backup: deleting 10,000 orders, dropping the index")
        client.shop.orders.delete_many({"_id": {"$lt": 10000}})
        client.shop.orders.drop_index("item_1")

        step("pbm restore %s --wait" % name)
        print(pbm("restore", name, "--wait").stdout)
        print(pbm("status").stdout)

        step("checking every member")
        ok = True
        for m in json.load(open(os.path.join(dc, "cluster.json")))["members"]:
            c = pymongo.MongoClient(m["host"], directConnection=True, readPreference="secondaryPreferred")
            orders = c.shop.orders.count_documents({})
            events = sorted(d["_id"] for d in c.shop.events.find({}, {"_id": 1}))
            indexes = sorted(c.shop.orders.index_information())
            good = (orders == 50000 and events == list(range(len(events))) and
                    before <= len(events) <= after and "item_1" in indexes)
            ok &= good
            print("    %-18s orders %d, events 0..%d (acknowledged around the backup: %d..%d), "
                  "indexes %s: %s" % (m["host"], orders, len(events) - 1, before, after, indexes,
                                      "OK" if good else "WRONG"))
        hidden = [l for l in open(os.path.join(dc, "devcluster.log")) if "start failed" in l]
        print("    the supervisor saw %d failed mongod restarts while the entrypoint was hidden" % len(hidden))
        step("check " + ("PASSED" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        subprocess.run([os.path.join(BIN, "devcluster"), "down", "--dir", dc], capture_output=True)
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
