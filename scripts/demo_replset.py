"""Main-job demo: replica set → sample data → backup-cursor copy during writes → restore → check.

Until the backup engine (pbm, pbm-agent) exists, this shows the substrate it will stand on.
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
import harness as h  # noqa: E402
from test_backup_cursor import Writer, open_backup_cursor, restore_copy  # noqa: E402


def step(msg):
    print("==> " + msg, flush=True)


def main():
    with h.TempDir("wtm-demo-") as tmp:
        step("starting a 3-member replica set rs0 (wtmongod) in " + tmp)
        rs = h.ReplSet(os.path.join(tmp, "rs"), 3, args=["--syncdelay", "2"]).start()
        try:
            client = rs.client()
            for m in client.admin.command("replSetGetStatus")["members"]:
                print("    %-22s %s" % (m["name"], m["stateStr"]))
            step("loading sample data (10,000 orders, w:majority)")
            client.shop.orders.insert_many(
                [{"_id": i, "item": "item%d" % (i % 50), "qty": i % 7, "price": i * 0.5}
                 for i in range(10000)])
            client.shop.orders.create_index("item")
            step("copying a secondary's files through $backupCursor while a writer runs")
            with Writer(client) as w:
                h.wait_until(lambda: w.acked >= 100, 60, what="writes")
                node = rs.members[1]
                cur, meta, files = open_backup_cursor(node.client())
                before = w.acked
                copy = os.path.join(tmp, "restore")
                h.copy_backup_files(files, copy, meta["dbpath"])
                shutil.copy(os.path.join(meta["dbpath"], "storage.bson"), copy)
                ts = rs.primary.client().admin.command("hello")["lastWrite"]["majorityOpTime"]["ts"]
                ext = list(node.client().admin.aggregate(
                    [{"$backupCursorExtend": {"backupId": meta["backupId"], "timestamp": ts}}]))
                h.copy_backup_files(ext, copy, meta["dbpath"])
                after = w.acked
                cur.close()
            print("    %d files, checkpoint %s, consistent point %s" %
                  (len(files) + len(ext), meta["checkpointTimestamp"], ts))
        finally:
            rs.stop()
        step("restoring the copy: truncate the oplog at the consistent point and replay it")
        ids, top = restore_copy(copy, ts)
        m = h.Mongod(copy).start()
        orders = m.client().shop.orders.count_documents({})
        m.stop()
        ok = (ids == list(range(len(ids))) and before <= len(ids) <= after
              and top["ts"] == ts and orders == 10000)
        print("    orders: %d (expected 10000); writer documents: %d, contiguous: %s, "
              "acknowledged before/after the backup: %d/%d" %
              (orders, len(ids), ids == list(range(len(ids))), before, after))
        step("check " + ("PASSED" if ok else "FAILED"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
