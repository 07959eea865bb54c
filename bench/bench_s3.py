#!/usr/bin/python3
"""S3 upload (and download) throughput of the S3 driver to s3rver on loopback, with 1 and with N
parts in flight (s3.maxPartsInFlight), through build/bin/s3tool.

    /usr/bin/python3 bench/bench_s3.py [--bin build/bin] [--size-mib 512] [--part-mib 10]

Prints MiB/s per setting and writes bench/results/s3.json. Needs scripts/setup.sh (node and
tests/s3/node_modules). s3rver is a single-threaded node process writing to the local disk, so
the figures bound the driver's parallelism gain rather than measure S3.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--part-mib", type=int, default=10)
    ap.add_argument("--in-flight", default="1,4")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "s3.json"))
    args = ap.parse_args()
    os.environ["PSMDB_BIN"] = os.path.abspath(args.bin)
    from s3server import S3Server, S3Tool  # after PSMDB_BIN is set

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp, S3Server() as s3:
        src = os.path.join(tmp, "data")
        with open(src, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        for n in [int(x) for x in args.in_flight.split(",")]:
            tool = S3Tool(s3.storage_config(prefix="bench", uploadPartSize=args.part_mib << 20,
                                            maxPartsInFlight=n), tmp)
            ups, downs = [], []
            for _ in range(args.reps):
                with open(src, "rb") as f:
                    t0 = time.monotonic()
                    subprocess.run([os.path.join(args.bin, "s3tool"), tool.config_path, "put",
                                    "obj"], stdin=f, check=True)
                    ups.append(time.monotonic() - t0)
                t0 = time.monotonic()
                subprocess.run([os.path.join(args.bin, "s3tool"), tool.config_path, "get", "obj"],
                               stdout=subprocess.DEVNULL, check=True)
                downs.append(time.monotonic() - t0)
                tool.run("rm", "obj")
            r = {"size_mib": args.size_mib, "part_mib": args.part_mib, "parts_in_flight": n,
                 "upload_mib_s": round(args.size_mib / min(ups), 1),
                 "download_mib_s": round(args.size_mib / min(downs), 1),
                 "upload_s": [round(x, 2) for x in ups], "download_s": [round(x, 2) for x in downs]}
            results.append(r)
            print("parts in flight %2d: upload %7.1f MiB/s, download %7.1f MiB/s (best of %d)"
                  % (n, r["upload_mib_s"], r["download_mib_s"], args.reps), flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine_cores": os.cpu_count(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
