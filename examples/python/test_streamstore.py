"""Tests of the ctypes binding (stdlib unittest).

    LSS_LIBRARY=build/lib/libstreamstore.so PYTHONPATH=examples/python \\
        python3 examples/python/test_streamstore.py
"""

import json
import os
import select
import shutil
import sys
import tempfile
import threading
import unittest
import uuid

import streamstore as ss

BIG = 12345678901234567890123


class StoreCase(unittest.TestCase):
    """A fresh in-memory store, a session and namespace "t" per test."""

    def setUp(self):
        self.store = ss.Store(":memory:")
        self.s = self.store.session()
        self.token = self.s.create_namespace("t", "test namespace")

    def tearDown(self):
        self.store.close()


class TestOpen(unittest.TestCase):
    def test_version_matches_the_header(self):
        self.assertRegex(ss.version(), r"^\d+\.\d+\.\d+$")

    def test_memory_store_opens_and_closes_as_a_context_manager(self):
        with ss.Store(":memory:") as store, store.session() as s:
            s.create_namespace("a")
            self.assertEqual(s.append("a", "x-1", "T", {}), (0, 1))
        with self.assertRaises(ss.Closed):
            store.session()

    def test_file_store_keeps_messages_across_reopen(self):
        d = tempfile.mkdtemp(prefix="lss-py-")
        try:
            with ss.Store(d, sync="normal") as store, store.session() as s:
                s.create_namespace("durable")
                s.append("durable", "account-1", "Opened", {"n": BIG})
            self.assertTrue(os.path.exists(os.path.join(d, "metadata.db")))
            self.assertTrue(os.path.exists(os.path.join(d, "ns-durable.db")))
            with ss.Store(d) as store, store.session() as s:
                msgs = s.read_stream("durable", "account-1")
                self.assertEqual([m["data"] for m in msgs], [{"n": BIG}])
                self.assertEqual(s.stream_version("durable", "account-1"), 0)
        finally:
            shutil.rmtree(d)

    def test_open_failure_raises_with_code_and_detail(self):
        with tempfile.NamedTemporaryFile() as f:   # a file where a directory should be
            with self.assertRaises(ss.StorageError) as cm:
                ss.Store(os.path.join(f.name, "data"))
        self.assertEqual(cm.exception.code, ss.EIO)
        self.assertEqual(cm.exception.name, "EIO")
        self.assertIn("data directory", cm.exception.message)

    def test_closing_the_store_closes_its_sessions(self):
        store = ss.Store(":memory:")
        s = store.session()
        store.close()
        with self.assertRaises(ss.Closed):
            s.list_namespaces()


class TestNamespaces(StoreCase):
    def test_create_returns_a_token_that_authorizes(self):
        self.assertTrue(self.token.startswith("ns_"))
        self.assertEqual(self.s.authorize(self.token), "t")

    def test_a_token_can_be_supplied(self):
        tok = "ns_" + "YWJj" + "_" + "0" * 64   # base64url("abc")
        self.assertEqual(self.s.create_namespace("abc", token=tok), tok)
        self.assertEqual(self.s.authorize(tok), "abc")

    def test_info_and_list(self):
        self.s.append("t", "a-1", "T", {})
        self.s.append("t", "b-1", "T", {})
        info = self.s.namespace_info("t")
        self.assertEqual(info["id"], "t")
        self.assertEqual(info["description"], "test namespace")
        self.assertEqual((info["message_count"], info["stream_count"]), (2, 2))
        self.assertIsNotNone(info["last_activity_us"])
        self.s.create_namespace("ü-second")
        ids = [n["id"] for n in self.s.list_namespaces()]
        self.assertEqual(sorted(ids), ["t", "ü-second"])

    def test_create_twice_is_already_exists(self):
        with self.assertRaises(ss.AlreadyExists) as cm:
            self.s.create_namespace("t")
        self.assertEqual(cm.exception.code, ss.EEXISTS)

    def test_delete_reports_messages_and_then_not_found(self):
        self.s.append("t", "a-1", "T", {})
        self.assertEqual(self.s.delete_namespace("t"), 1)
        with self.assertRaises(ss.NotFound) as cm:
            self.s.append("t", "a-1", "T", {})
        self.assertEqual(cm.exception.code, ss.ENOTFOUND)
        with self.assertRaises(ss.NotFound):
            self.s.delete_namespace("t")

    def test_wrong_token_is_not_authorized(self):
        self.s.create_namespace("abc")
        with self.assertRaises(ss.NotAuthorized):
            self.s.authorize("ns_YWJj_" + "1" * 64)
        with self.assertRaises(ss.InvalidToken):
            self.s.authorize("not a token")


class TestAppendRead(StoreCase):
    def test_round_trip_keeps_unicode_and_big_integers(self):
        data = {"name": "Zoë 山田 🎉", "n": BIG, "neg": -BIG, "f": 1.5,
                "nested": {"empty": "", "t": True, "nil": None, "list": [1, "two"]}}
        meta = {"correlationStreamName": "workflow-1", "who": "ü"}
        pos = self.s.append("t", "account-ü", "Opened ✓", data, metadata=meta)
        self.assertEqual(pos, (0, 1))
        [m] = self.s.read_stream("t", "account-ü")
        self.assertEqual(m["data"], data)
        self.assertIs(type(m["data"]["n"]), int)
        self.assertEqual(m["data"]["n"], BIG)
        self.assertEqual(m["metadata"], meta)
        self.assertEqual((m["stream"], m["type"]), ("account-ü", "Opened ✓"))
        self.assertEqual((m["position"], m["global_position"]), (0, 1))
        self.assertEqual(str(uuid.UUID(m["id"])), m["id"])
        self.assertGreater(m["time_us"], 0)

    def test_json_text_is_stored_byte_for_byte(self):
        text = '{ "n" : 12345678901234567890123, "x":1.0 }'
        self.s.append("t", "a-1", "T", text)
        [m] = self.s.read_stream("t", "a-1", raw=True)
        self.assertEqual(m["data"], text.encode())
        self.assertIsNone(m["metadata"])
        [m] = self.s.read_stream("t", "a-1")
        self.assertEqual(m["data"]["n"], BIG)

    def test_positions_and_paging(self):
        for i in range(5):
            self.assertEqual(self.s.append("t", "a-1", "T", {"i": i}), (i, i + 1))
        page = self.s.read_stream("t", "a-1", position=2, batch_size=2)
        self.assertEqual([m["data"]["i"] for m in page], [2, 3])
        self.assertEqual(len(self.s.read_stream("t", "a-1", batch_size=None)), 5)
        self.assertEqual(self.s.stream_version("t", "a-1"), 4)
        self.assertIsNone(self.s.stream_version("t", "a-2"))
        self.s.append("t", "b-1", "T", {})                 # global position 6
        self.s.append("t", "a-1", "T", {"i": 5})
        by_gpos = self.s.read_stream("t", "a-1", global_position=5)
        self.assertEqual([(m["position"], m["global_position"]) for m in by_gpos],
                         [(4, 5), (5, 7)])

    def test_batch_is_atomic_and_returns_the_last_position(self):
        pos = self.s.append_batch("t", "a-1", [
            ("Opened", {}), {"type": "Noted", "data": {"k": 1}, "metadata": {"m": 2}}])
        self.assertEqual(pos, (1, 2))
        with self.assertRaises(ss.InvalidJSON):
            self.s.append_batch("t", "a-1", [("Ok", {}), ("Bad", "[1]")])
        self.assertEqual(self.s.stream_version("t", "a-1"), 1)

    def test_read_last_with_and_without_type(self):
        self.assertIsNone(self.s.read_last("t", "a-1"))
        self.s.append("t", "a-1", "A", {"i": 0})
        self.s.append("t", "a-1", "B", {"i": 1})
        self.assertEqual(self.s.read_last("t", "a-1")["type"], "B")
        self.assertEqual(self.s.read_last("t", "a-1", type="A")["data"], {"i": 0})

    def test_category_read_with_types_and_correlation(self):
        self.s.append("t", "order-1", "Placed", {}, {"correlationStreamName": "workflow-abc"})
        self.s.append("t", "order-2", "Placed", {}, {"correlationStreamName": "process-1"})
        self.s.append("t", "order-1", "Shipped", {})
        self.s.append("t", "other-1", "Placed", {})
        self.assertEqual(len(self.s.read_category("t", "order")), 3)
        self.assertEqual(len(self.s.read_category("t", "")), 4)   # all
        shipped = self.s.read_category("t", "order", types=["Shipped"])
        self.assertEqual([m["global_position"] for m in shipped], [3])
        wf = self.s.read_category("t", "order", correlation="workflow")
        self.assertEqual([m["stream"] for m in wf], ["order-1"])
        self.assertEqual(self.s.read_category("t", "order", correlation="work"), [])
        later = self.s.read_category("t", "order", position=2)
        self.assertEqual([m["global_position"] for m in later], [2, 3])

    def test_list_streams_and_categories(self):
        for st in ("b-1", "a-2", "a-1", "a-1"):
            self.s.append("t", st, "T", {})
        self.assertEqual([(r["stream"], r["version"]) for r in self.s.list_streams("t")],
                         [("a-1", 1), ("a-2", 0), ("b-1", 0)])
        self.assertEqual([r["stream"] for r in self.s.list_streams("t", prefix="a-", after="a-1")],
                         ["a-2"])
        cats = self.s.list_categories("t")
        self.assertEqual([(c["category"], c["stream_count"], c["message_count"]) for c in cats],
                         [("a", 2, 3), ("b", 1, 1)])


class TestConcurrencyAndIdempotency(StoreCase):
    def test_expected_version_conflict_raises_with_code_and_actual(self):
        self.s.append("t", "a-1", "T", {}, expected_version=None)   # must be empty
        self.s.append("t", "a-1", "T", {}, expected_version=0)
        with self.assertRaises(ss.VersionConflict) as cm:
            self.s.append("t", "a-1", "T", {}, expected_version=0)
        e = cm.exception
        self.assertEqual((e.code, e.name, e.actual), (ss.EVERSION, "EVERSION", 1))
        self.assertIsInstance(e, ss.StreamStoreError)
        with self.assertRaises(ss.VersionConflict) as cm:
            self.s.append("t", "a-1", "T", {}, expected_version=ss.NO_STREAM)
        with self.assertRaises(ss.VersionConflict) as cm:
            self.s.append("t", "a-2", "T", {}, expected_version=0)
        self.assertIsNone(cm.exception.actual)   # that stream is empty
        # the stream_version / expected_version round trip, empty included
        v = self.s.stream_version("t", "a-3")
        self.assertEqual(self.s.append("t", "a-3", "T", {}, expected_version=v)[0], 0)

    def test_two_sessions_race_and_the_loser_retries(self):
        self.s.append("t", "acct-1", "Deposited", {"balance": 0})
        barrier = threading.Barrier(2)
        conflicts = []

        def teller():
            with self.store.session() as s:
                first = True
                while True:
                    v = s.stream_version("t", "acct-1")
                    bal = s.read_last("t", "acct-1")["data"]["balance"]
                    if first:
                        barrier.wait()
                        first = False
                    try:
                        s.append("t", "acct-1", "Deposited", {"balance": bal + 10},
                                 expected_version=v)
                        return
                    except ss.VersionConflict as e:
                        conflicts.append(e.actual)

        th = [threading.Thread(target=teller) for _ in range(2)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        self.assertEqual(len(conflicts), 1)
        self.assertEqual(self.s.read_last("t", "acct-1")["data"]["balance"], 20)

    def test_same_id_same_content_is_an_idempotent_retry(self):
        mid = str(uuid.uuid4())
        first = self.s.append("t", "a-1", "T", {"k": 1}, id=mid)
        self.s.append("t", "a-1", "T", {"k": 2})
        again = self.s.append("t", "a-1", "T", {"k": 1}, id=mid.upper())
        self.assertEqual(again, first)
        self.assertEqual(self.s.stream_version("t", "a-1"), 1)
        self.assertEqual(self.s.read_stream("t", "a-1")[0]["id"], mid)

    def test_same_id_other_content_is_a_duplicate(self):
        mid = "{%s}" % uuid.uuid4()
        self.s.append("t", "a-1", "T", {"k": 1}, id=mid)
        with self.assertRaises(ss.DuplicateMessage) as cm:
            self.s.append("t", "a-1", "T", {"k": 2}, id=mid)
        self.assertEqual(cm.exception.code, ss.EDUPLICATE)
        self.assertEqual(cm.exception.id, mid[1:-1])


class TestConsumerGroups(StoreCase):
    def test_members_match_protocol_7_7(self):
        # <cat>-1 .. <cat>-4 with size 2 -> members 0, 1, 0, 1
        for i in range(1, 5):
            self.s.append("t", "cat-%d" % i, "T", {"i": i})
        self.assertEqual([ss.group_member("cat-%d" % i, 2) for i in range(1, 5)],
                         [0, 1, 0, 1])
        m0 = self.s.read_category("t", "cat", consumer_group=(0, 2))
        m1 = self.s.read_category("t", "cat", consumer_group=(1, 2))
        self.assertEqual([m["stream"] for m in m0], ["cat-1", "cat-3"])
        self.assertEqual([m["stream"] for m in m1], ["cat-2", "cat-4"])

    def test_payment_streams_with_size_3(self):
        want = [1, 2, 2, 1, 2, 0, 1, 1, 0, 1, 0, 1]
        self.assertEqual([ss.group_member("payment-stream%d" % i, 3) for i in range(12)],
                         want)
        self.assertEqual(ss.hash64("123"), 2318431741638412123)
        self.assertIsNone(ss.group_member("account", 2))
        self.assertEqual(ss.category("account-1+x"), "account")

    def test_bad_group_is_invalid_argument(self):
        with self.assertRaises(ss.InvalidArgument) as cm:
            self.s.read_category("t", "cat", consumer_group=(2, 2))
        self.assertEqual(cm.exception.code, ss.EINVAL)


class TestSubscriptions(StoreCase):
    def test_replay_then_live_pokes_through_select(self):
        self.s.append("t", "chat-1", "Said", {"i": 0})
        self.s.append("t", "other-1", "Said", {})
        with self.s.subscribe("t", category="chat", position=0) as sub:
            self.assertIsInstance(sub.fileno(), int)
            r, _, _ = select.select([sub], [], [], 5)
            self.assertEqual(r, [sub])                      # the replay is queued
            self.assertEqual(sub.drain(), [ss.Poke("chat-1", 0, 1)])
            self.assertIsNone(sub.next(0))
            r, _, _ = select.select([sub], [], [], 0)
            self.assertEqual(r, [])                         # drained: not readable

            def writer():
                with self.store.session() as w:
                    for i in range(1, 4):
                        w.append("t", "chat-%d" % (i % 2 + 1), "Said", {"i": i})

            th = threading.Thread(target=writer)
            th.start()
            got = []
            while len(got) < 3:
                p = sub.next(timeout=5)
                self.assertIsNotNone(p, "no poke within 5 s")
                got.append(p)
            th.join()
            self.assertEqual([p.global_position for p in got], [3, 4, 5])
            self.assertEqual([p.stream for p in got], ["chat-2", "chat-1", "chat-2"])
            m = self.s.read_stream("t", got[0].stream, position=got[0].position)[0]
            self.assertEqual(m["data"], {"i": 1})

    def test_stream_and_group_subscriptions(self):
        sub = self.s.subscribe("t", stream="cat-2")
        grp = self.s.subscribe("t", category="cat", consumer_group=(1, 2))
        for i in range(1, 5):
            self.s.append("t", "cat-%d" % i, "T", {})
        self.assertEqual([p.stream for p in sub.drain()], ["cat-2"])
        self.assertEqual([p.stream for p in grp.drain()], ["cat-2", "cat-4"])
        sub.close()
        with self.assertRaises(ss.Closed):
            sub.next(0)

    def test_subscribe_to_a_missing_namespace_is_not_found(self):
        with self.assertRaises(ss.NotFound):
            self.s.subscribe("nope", category="x")


class TestImportExport(StoreCase):
    def test_export_import_round_trip(self):
        self.s.append("t", "user-1", "Registered", {"name": "Zoë 🎉", "n": BIG})
        self.s.append("t", "user-1", 'Typed "quoted"', '{ "spaced" : [1, 2] }',
                      metadata={"correlationStreamName": "game-1"})
        self.s.append("t", "game-1", "Started", {})
        lines = list(self.s.export_ndjson("t", batch_size=2))
        self.assertEqual(len(lines), 3)
        rec = json.loads(lines[1])
        self.assertEqual(list(rec), ["id", "stream", "type", "pos", "gpos", "data",
                                     "meta", "time"])
        self.assertEqual(rec["data"], {"spaced": [1, 2]})
        self.s.create_namespace("copy")
        self.assertEqual(self.s.import_ndjson("copy", lines, batch=2), 3)
        self.assertEqual(list(self.s.export_ndjson("copy")), lines)
        self.assertEqual(self.s.append("t", "x-1", "T", {})[1], 4)
        self.assertEqual(self.s.append("copy", "x-1", "T", {})[1], 4)
        # importing the same records again conflicts; force clears first
        with self.assertRaises(ss.Conflict) as cm:
            self.s.import_ndjson("copy", lines)
        self.assertEqual(cm.exception.code, ss.ECONFLICT)
        self.assertEqual(self.s.import_ndjson("copy", lines, force=True), 3)
        self.assertEqual(len(self.s.read_category("copy", "")), 3)

    def test_bad_line_reports_its_number(self):
        with self.assertRaises(ss.InvalidJSON) as cm:
            self.s.import_ndjson("t", ["", "{nope"])
        self.assertIn("line 2", str(cm.exception))


class TestErrors(StoreCase):
    def test_errors_carry_codes_and_names(self):
        cases = [
            (ss.InvalidName, ss.ENAME, lambda: self.s.append("t", "", "T", {})),
            (ss.InvalidName, ss.ENAME, lambda: self.s.append("t", "a-1", "", {})),
            (ss.InvalidJSON, ss.EJSON, lambda: self.s.append("t", "a-1", "T", "[]")),
            (ss.InvalidJSON, ss.EJSON, lambda: self.s.append("t", "a-1", "T", b"{bad")),
            (ss.InvalidUUID, ss.EUUID, lambda: self.s.append("t", "a-1", "T", {}, id="x")),
            (ss.NotFound, ss.ENOTFOUND, lambda: self.s.read_stream("nope", "a-1")),
            (ss.InvalidArgument, ss.EINVAL, lambda: self.s.list_streams("t", limit=0)),
            (ss.InvalidName, ss.ENAME, lambda: self.s.create_namespace("")),
        ]
        for cls, code, call in cases:
            with self.subTest(cls=cls.__name__, code=code):
                with self.assertRaises(cls) as cm:
                    call()
                e = cm.exception
                self.assertEqual(e.code, code)
                self.assertEqual(e.name, ss.library.lss_errname(code).decode())
                self.assertTrue(e.message)
                self.assertIsInstance(e, ss.StreamStoreError)

    def test_session_is_usable_after_an_error(self):
        with self.assertRaises(ss.InvalidJSON):
            self.s.append("t", "a-1", "T", "nope")
        self.assertEqual(self.s.append("t", "a-1", "T", {}), (0, 1))


if __name__ == "__main__":
    # Under valgrind (the valgrind test setup, when `--suite examples` overrides
    # its exclusion of 'nosan') this would check the interpreter, not the
    # library: skip (77 is meson's skip status).
    if "vgpreload" in os.environ.get("LD_PRELOAD", ""):
        print("SKIP: running under valgrind")
        sys.exit(77)
    print("libstreamstore", ss.version(), "from", ss.library._name, file=sys.stderr)
    unittest.main(verbosity=2)
