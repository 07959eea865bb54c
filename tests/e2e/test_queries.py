"""Query behaviour that clients rely on beyond plain CRUD (test_replset.py covers that)."""
import unittest

import harness as h


class QueryTest(unittest.TestCase):
    def test_sort_on_id_uses_the_index_not_memory(self):
        """mongod serves a sort on _id from the _id index, so it works on collections larger
        than the 100 MB in-memory sort limit, in batches, with filters, skip and limit."""
        with h.TempDir() as t:
            m = h.Mongod(t + "/d").start()
            try:
                c = m.client()
                n = 30011  # ~120 MB: more than the in-memory sort limit
                c.t.c.insert_many([{"_id": (i * 7919) % n, "pad": "x" * 4000} for i in range(n)])
                ids = [d["_id"] for d in c.t.c.find({}, {"_id": 1}).sort("_id", 1).batch_size(500)]
                self.assertEqual(ids, list(range(n)))
                ids = [d["_id"] for d in
                       c.t.c.find({"_id": {"$gte": 100}}).sort("_id", -1).skip(5).limit(20)]
                self.assertEqual(ids, list(range(n - 6, n - 26, -1)))
                c.t.c.insert_many([{"_id": "str"}, {"_id": 2.5}])
                ids = [d["_id"] for d in c.t.c.find({"_id": {"$lt": 4}}).sort("_id", 1)]
                self.assertEqual(ids, [0, 1, 2, 2.5, 3])
                # Any other sort of that much data still hits mongod's limit, with its error.
                with self.assertRaises(Exception) as e:
                    list(c.t.c.find().sort("pad", 1))
                self.assertIn("Sort exceeded memory limit", str(e.exception))
            finally:
                m.stop()


if __name__ == "__main__":
    unittest.main()
