"""Physical backup and restore wall time against the plain tools on the same data.

  /usr/bin/python3 bench/bench_physical.py [--size-gb 2] [--bin build/bin] [--workdir DIR]

A 1-member replica set pod (devcluster: wtmongod + pbm-agent) is loaded until its dbpath holds
--size-gb; then, in the same run and on the same data:
  backup:  pbm backup --type=physical --compression=zstd (level 1 and 3) --wait
           vs  tar -C dbpath -cf - . | zstd -1 -T2 > x.tar.zst
  copy:    pbm backup --compression=none --wait   vs  cp -r dbpath (and cp -r && sync)
  restore: pbm restore --wait (of the zstd level-1 backup)   vs  zstd -d < x.tar.zst | tar -x
  logical: pbm backup --type=logical and pbm restore of it, against the physical restore
The agent's peak RSS (VmHWM) is read after the backups and, reset, after the restore.
One member, so the restore and the tar extraction move the same bytes once. Not part of CI.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time

import pymongo

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


def peak_rss_mib(pid):
    """The process's peak resident set (VmHWM) in MiB."""
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM for pid %d" % pid)


def reset_peak_rss(pid):
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


DROP_CACHES = True


def cold():
    """Flushes dirty pages and drops the page cache, so each timed run reads from the disk and
    pays for its own writes (needs root; turned off by --no-drop-caches or when refused)."""
    global DROP_CACHES
    if not DROP_CACHES:
        return
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
    except OSError as e:
        print("cannot drop the page cache (%s): timing with a warm cache" % e, flush=True)
        DROP_CACHES = False


def timed(fn):
    cold()
    t = time.time()
    fn()
    return time.time() - t


def restore_phases(store, name, started):
    """Seconds from the restore's start to each phase a member reached (status files' mtimes)."""
    out = {}
    for root, _, files in os.walk(os.path.join(store, ".pbm.restore", name)):
        for fn in files:
            phase = fn.rsplit(".", 1)[-1]
            if phase in ("preflight", "staged", "down", "ready", "done"):
                out[phase] = round(os.stat(os.path.join(root, fn)).st_mtime - started, 2)
    return out


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)


def timed_copy(cmd, dest):
    """Times `cmd`, a cp of the live dbpath into `dest`. WiredTiger may remove a journal file
    between cp's listing and its open of it; such a run is thrown away and run again."""
    for attempt in range(3):
        try:
            return timed(lambda: sh(cmd))
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
            print("cp raced with the live dbpath; again", flush=True)
        finally:
            shutil.rmtree(dest, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "physical.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    ap.add_argument("--trials", type=int, default=3,
                    help="interleaved runs of each timed backup and plain tool (medians reported)")
    ap.add_argument("--skip-logical", action="store_true",
                    help="skip the logical backup and restore of the same data")
    ap.add_argument("--no-drop-caches", action="store_true",
                    help="do not drop the page cache before each timed run")
    a = ap.parse_args()
    global DROP_CACHES
    DROP_CACHES = not a.no_drop_caches
    work = tempfile.mkdtemp(prefix="bench-physical-", dir=a.workdir)
    dc = os.path.join(work, "dc")
    res = {"size_gb_target": a.size_gb, "load_start": os.getloadavg()[0]}
    try:
        subprocess.run([os.path.join(a.bin, "devcluster"), "up", "--dir", dc, "--members", "1",
                        "--detach", "--", "--syncdelay", "10"], check=True, capture_output=True)
        info = json.load(open(os.path.join(dc, "cluster.json")))
        uri, dbpath = info["uri"], info["members"][0]["dbpath"]
        env = dict(os.environ, PBM_MONGODB_URI=uri)
        pbm = lambda *args: subprocess.run([os.path.join(a.bin, "pbm"), *args], env=env, check=True,
                                           capture_output=True, text=True)
        cfg = os.path.join(work, "pbm.yaml")
        open(cfg, "w").write("storage:\n  type: filesystem\n  filesystem:\n    path: %s\n" % os.path.join(work, "store"))
        pbm("config", "--file", cfg)
        # Text-like documents (compress about 3:1 with zstd, as real data often does).
        words = ["".join(random.choice(string.ascii_lowercase) for _ in range(random.randint(3, 9)))
                 for _ in range(5000)]
        c = pymongo.MongoClient(uri)
        coll = c.bench.get_collection("docs")
        t0 = time.time()
        n = 0
        target = a.size_gb * (1 << 30)
        while True:
            if du(dbpath) >= target:
                time.sleep(12)  # a checkpoint after the load drops the journal files
                if du(dbpath) >= target:
                    break
            batch = [{"_id": n + i, "n": n + i, "text": " ".join(random.choices(words, k=150))}
                     for i in range(5000)]
            coll.insert_many(batch, ordered=False)
            n += len(batch)
            if n % 200000 == 0:
                print("loaded %d docs, dbpath %.2f GiB" % (n, du(dbpath) / (1 << 30)), flush=True)
        res.update(docs=n, load_secs=round(time.time() - t0, 1), dbpath_bytes=du(dbpath))
        print("dbpath: %.2f GiB, %d docs" % (res["dbpath_bytes"] / (1 << 30), n), flush=True)

        def backup(comp, level=None):
            args = ["backup", "--type=physical", "--compression=" + comp, "--wait"]
            if level is not None:
                args += ["--compression-level", str(level)]
            out = []
            t = timed(lambda: out.append(pbm(*args).stdout))
            name = [x.strip("'.") for x in out[0].split() if x.strip("'.").startswith("20")][0]
            return t, name

        def tar_zstd():
            t = timed(lambda: sh("tar -C %s -cf - . | zstd -q -1 -T2 > %s/x.tar.zst" % (dbpath, work)))
            res["tar_zst_bytes"] = os.path.getsize(os.path.join(work, "x.tar.zst"))
            return t

        def cp_sync():
            # Our backup fsyncs every object before publishing it; cp -r leaves the data in the
            # page cache. The like-for-like figure is cp -r followed by sync.
            return timed_copy("cp -r %s %s/cpcopy && sync" % (dbpath, work),
                              os.path.join(work, "cpcopy"))

        # Interleaved trials (this machine's disk and CPU are shared: single runs vary by 30%);
        # the medians are the figures.
        trials = {"pbm_backup_zstd1_s": [], "tar_zstd1_s": [], "pbm_backup_none_s": [],
                  "cp_r_sync_s": []}
        zstd1_name = None
        for _ in range(a.trials):
            t, name = backup("zstd", 1)
            zstd1_name = zstd1_name or name
            trials["pbm_backup_zstd1_s"].append(t)
            trials["tar_zstd1_s"].append(tar_zstd())
            trials["pbm_backup_none_s"].append(backup("none")[0])
            trials["cp_r_sync_s"].append(cp_sync())
        res["trials"] = {k: [round(x, 2) for x in v] for k, v in trials.items()}
        for k, v in trials.items():
            res[k] = statistics.median(v)
        res["pbm_backup_zstd3_s"] = backup("zstd", 3)[0]
        res["cp_r_s"] = timed_copy("cp -r %s %s/cpcopy" % (dbpath, work),
                                   os.path.join(work, "cpcopy"))
        res["page_cache_dropped"] = DROP_CACHES
        agent_pid = json.load(open(os.path.join(dc, "cluster.json")))["members"][0]["agent_pid"]
        res["agent_peak_rss_backup_mib"] = peak_rss_mib(agent_pid)
        reset_peak_rss(agent_pid)
        snaps = json.loads(pbm("list", "--out", "json").stdout)["snapshots"]
        res["backups"] = [{k: s[k] for k in ("name", "compression", "size")} for s in snaps]
        first = zstd1_name  # the first zstd level-1 backup
        restores, untars, untars_sync, phases = [], [], [], []
        for _ in range(a.trials):
            cold()
            restore_start = time.time()
            out = pbm("restore", first, "--wait").stdout
            restores.append(time.time() - restore_start)
            rname = [t for t in out.replace("'", " ").split() if t.startswith("20") and t.endswith("Z")][0]
            # staged: downloaded and verified; down: mongod stopped; ready: temporary mongod
            # steps done; done: the pod's mongod is back (after the container's back-off) and
            # healthy.
            phases.append(restore_phases(os.path.join(work, "store"), rname, restore_start))
            os.makedirs(os.path.join(work, "untar"))
            untars.append(timed(lambda: sh("zstd -q -d -T2 < %s/x.tar.zst | tar -x -C %s/untar" % (work, work))))
            shutil.rmtree(os.path.join(work, "untar"))
            # The restore makes every file durable before it stops mongod: the like-for-like
            # figure is the untar followed by sync.
            os.makedirs(os.path.join(work, "untar"))
            untars_sync.append(timed(lambda: sh("zstd -q -d -T2 < %s/x.tar.zst | tar -x -C %s/untar && sync" % (work, work))))
            shutil.rmtree(os.path.join(work, "untar"))
        res["trials"].update(pbm_restore_s=[round(x, 2) for x in restores],
                             zstd_d_tar_x_s=[round(x, 2) for x in untars],
                             zstd_d_tar_x_sync_s=[round(x, 2) for x in untars_sync],
                             restore_staged_s=[p.get("staged") for p in phases])
        res["pbm_restore_s"] = statistics.median(restores)
        res["zstd_d_tar_x_s"] = statistics.median(untars)
        res["zstd_d_tar_x_sync_s"] = statistics.median(untars_sync)
        res["restore_phases_s"] = phases[restores.index(res["pbm_restore_s"])] if len(restores) % 2 else phases[0]
        staged = statistics.median([p.get("staged", 0) for p in phases])
        res["restore_staged_vs_untar"] = round(staged / res["zstd_d_tar_x_s"], 2)
        res["restore_staged_vs_untar_sync"] = round(staged / res["zstd_d_tar_x_sync_s"], 2)
        res["agent_peak_rss_restore_mib"] = peak_rss_mib(agent_pid)
        if not a.skip_logical:
            # The same data, logically: dump (zstd level 1) and restore through the running node.
            cold()
            t = time.time()
            out = pbm("backup", "--type=logical", "--compression=zstd", "--compression-level", "1",
                      "--wait").stdout
            res["logical_backup_s"] = time.time() - t
            lname = [x.strip("'.") for x in out.split() if x.strip("'.").startswith("20")][0]
            cold()
            t = time.time()
            pbm("restore", lname, "--wait")
            res["logical_restore_s"] = time.time() - t
            res["logical_vs_physical_restore"] = round(res["logical_restore_s"] / res["pbm_restore_s"], 1)
            res["agent_peak_rss_logical_mib"] = peak_rss_mib(agent_pid)
        res["load_end"] = os.getloadavg()[0]
        res["backup_vs_tar"] = round(res["pbm_backup_zstd1_s"] / res["tar_zstd1_s"], 2)
        res["copy_throughput_vs_cp"] = round(res["cp_r_s"] / res["pbm_backup_none_s"], 2)
        res["copy_throughput_vs_cp_sync"] = round(res["cp_r_sync_s"] / res["pbm_backup_none_s"], 2)
        res["restore_vs_untar"] = round(res["pbm_restore_s"] / res["zstd_d_tar_x_s"], 2)
        print(json.dumps(res, indent=2))
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        json.dump(res, open(a.out, "w"), indent=2)
    finally:
        subprocess.run([os.path.join(a.bin, "devcluster"), "down", "--dir", dc], capture_output=True)
        if a.keep:
            print("work directory kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
