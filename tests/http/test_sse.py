#!/usr/bin/env python3
"""GET /subscribe (PROTOCOL section 8): headers and `: ready`, replay then
live with concurrent writers (no loss, no duplicates, ascending order),
stream/category/all subscriptions, position semantics (8.6), consumer
groups, parameter errors, slow subscribers, deleted namespaces."""

import re
import select
import socket
import threading
import time
import urllib.parse

import shimhttp as H

SRV = None


def setUpModule():
    global SRV
    SRV = H.Server()


def tearDownModule():
    if SRV:
        SRV.stop()


def poke_bytes(stream, pos, gpos):
    return ('event: poke\ndata: {"stream":%s,"position":%d,"globalPosition":%d}\n\n'
            % (H.jdump(stream), pos, gpos)).encode('utf-8')


def q(**params):
    return urllib.parse.urlencode(params)


class SseCase(H.TestCase):
    def setUp(self):
        self.admin = H.Client(SRV.port, H.TOKEN_DEFAULT)
        self.ns, self.tok = self.admin.new_namespace()
        self.c = H.Client(SRV.port, self.tok)
        self.subs = []

    def tearDown(self):
        for s in self.subs:
            s.close()
        self.c.close()
        self.admin.close()

    def sub(self, query, **kw):
        s = H.subscribe(SRV.port, query, token=self.tok, **kw)
        self.subs.append(s)
        return s

    def keys(self, s, n, key='position', timeout=10):
        return [p[key] for p in s.pokes(n, timeout)]

    def assertQuiet(self, s, seconds=0.5):
        self.assertTrue(s.quiet_for(seconds), 'unexpected SSE output: %r' % getattr(s, 'unexpected', None))


class HeadersAndFraming(SseCase):
    def test_headers_and_ready_first_for_every_kind(self):
        for query in ('stream=h-1', 'category=h', 'all=true', 'stream=h-1&position=5',
                      'category=h&consumer=0&size=2'):
            with self.subTest(query=query):
                t0 = time.time()
                s = H.SSE(SRV.port, query, token=self.tok)
                self.subs.append(s)
                self.assertEqual(s.status, 200)
                self.assertEqual(s.head.header('content-type'), 'text/event-stream')
                self.assertEqual(s.head.header('cache-control'), 'no-cache')
                self.assertEqual(s.head.header('connection'), 'keep-alive')
                self.assertEqual(s.head.header('access-control-allow-origin'), '*')
                self.assertEqual(s.head.header('transfer-encoding'), 'chunked')
                self.assertIsNone(s.head.header('content-length'))
                self.assertRegex(s.head.header('date', ''), H.IMF_DATE_RE)
                self.assertRegex(s.head.header('server', ''), r'^libstreamstore/')
                self.assertEqual(s.next_block(2), ': ready')
                self.assertEqual(s.chunks[0], b': ready\n\n')
                self.assertLess(time.time() - t0, 1.0)

    def test_each_poke_is_one_chunk_with_exact_bytes(self):
        r = [self.c.write('acc-7') for _ in range(3)]
        s = self.sub('stream=acc-7&position=0')
        self.assertEqual(s.pokes(3), [{'stream': 'acc-7', 'position': i, 'globalPosition': r[i]['globalPosition']}
                                      for i in range(3)])
        self.assertEqual(s.chunks[1:4], [poke_bytes('acc-7', i, i + 1) for i in range(3)])
        w = self.c.write('acc-7')
        s.next_poke()
        self.assertEqual(s.chunks[4], poke_bytes('acc-7', 3, w['globalPosition']))

    def test_appendix_a_stream_subscription(self):
        self.c.write('account-42', 'Opened', {'balance': 0})
        self.c.write('other-1')
        self.c.write('other-2')
        s = H.SSE(SRV.port, 'stream=account-42&position=0&token=' + self.tok)
        self.subs.append(s)
        self.assertEqual(s.status, 200)
        self.assertEqual(s.next_block(), ': ready')
        self.assertEqual(s.next_block(), 'event: poke\ndata: {"stream":"account-42","position":0,"globalPosition":1}')
        self.c.write('account-42')
        self.assertEqual(s.next_block(), 'event: poke\ndata: {"stream":"account-42","position":1,"globalPosition":4}')

    def test_stream_names_are_json_escaped(self):
        names = ['q"uo\\te-1', 'caf\u00e9-\U0001f600', 'tab\there-1', 'sl/ash-1', '<b>&-1']
        for n in names:
            s = self.sub(q(stream=n))
            self.c.write(n)
            p = s.next_poke()
            self.assertEqual(p['stream'], n)
            self.assertEqual(p['position'], 0)

    def test_http_1_0_subscription_is_unchunked(self):
        s = H.SSE(SRV.port, 'all=true', token=self.tok, version='HTTP/1.0')
        self.subs.append(s)
        self.assertEqual(s.status, 200)
        self.assertNotEqual((s.head.header('transfer-encoding') or '').lower(), 'chunked')
        self.assertEqual(s.next_block(), ': ready')
        w = self.c.write('v10-1')
        self.assertEqual(s.next_poke(), {'stream': 'v10-1', 'position': 0, 'globalPosition': w['globalPosition']})


class ParameterErrors(SseCase):
    E1 = "Either 'stream', 'category', or 'all=true' parameter required"
    E2 = "Cannot combine 'all' with 'stream' or 'category'"
    E3 = "Cannot specify both 'stream' and 'category'"
    E4 = 'Invalid position parameter'
    E5 = 'Invalid consumer parameter'
    E6 = 'Invalid size parameter'
    E7 = 'Invalid consumer group: member must be < size'

    def test_errors_are_plain_text_400s(self):
        cases = [
            ('', self.E1), ('stream=', self.E1), ('category=', self.E1), ('all=1', self.E1),
            ('all=TRUE', self.E1), ('all=false', self.E1), ('all=', self.E1), ('position=0', self.E1),
            ('stream=&category=', self.E1), ('consumer=0&size=2', self.E1), ('Stream=s', self.E1),
            ('all=true&stream=s', self.E2), ('all=true&category=c', self.E2),
            ('all=true&stream=s&category=c', self.E2),
            ('stream=a&category=b', self.E3),
            ('stream=a&position=abc', self.E4), ('stream=a&position=1.5', self.E4),
            ('all=true&position=x', self.E4), ('category=c&position=9223372036854775808', self.E4),
            ('stream=a&position=1e3', self.E4), ('stream=a&position=--1', self.E4),
            ('stream=a&position=0x10', self.E4), ('stream=a&position=+', self.E4),
            ('category=c&consumer=x', self.E5), ('category=c&consumer=1.0', self.E5),
            ('category=c&consumer=x&size=y', self.E5),
            ('category=c&size=x', self.E6), ('category=c&consumer=1&size=2.0', self.E6),
            ('category=c&consumer=-1', self.E7), ('category=c&consumer=1', self.E7),
            ('category=c&consumer=2&size=2', self.E7), ('category=c&size=-1', self.E7),
            ('category=c&consumer=0&size=-2', self.E7), ('category=c&consumer=-1&size=2', self.E7),
            ('category=c&consumer=5&size=0', self.E7),
            # first failure wins
            ('stream=a&category=b&position=x', self.E3), ('all=true&stream=a&position=x', self.E2),
            ('category=c&position=x&consumer=y', self.E4), ('category=c&consumer=y&size=-1', self.E5),
        ]
        for query, text in cases:
            with self.subTest(query=query):
                s = H.SSE(SRV.port, query, token=self.tok)
                try:
                    self.assertEqual(s.status, 400)
                    self.assertEqual(s.head.header('content-type'), 'text/plain; charset=utf-8')
                    self.assertIsNone(s.head.header('access-control-allow-origin'))
                    self.assertEqual(s.read_error_body(), text.encode())
                finally:
                    s.close()

    def test_appendix_a_consumer_without_size(self):
        s = H.SSE(SRV.port, 'category=task&consumer=1&token=' + self.tok)
        self.assertEqual(s.status, 400)
        self.assertEqual(s.read_error_body(), b'Invalid consumer group: member must be < size')
        s.close()

    def test_accepted_parameter_forms(self):
        for query in ('stream=a&consumer=x&size=y', 'all=true&consumer=5&size=2', 'all=true&consumer=x',
                      'category=c&consumer=0&size=0', 'category=c&consumer=0&size=1',
                      'category=c&consumer=&size=', 'stream=a&position=', 'stream=a&position=+5',
                      'stream=a&position=-3', 'category=c&position=-9223372036854775808',
                      'stream=a&consumerGroupMember=1&consumerGroupSize=2&correlation=x&foo=bar',
                      'category=c&consumer=3&size=4', 'all=true&stream=', 'stream=a&category='):
            with self.subTest(query=query):
                s = H.SSE(SRV.port, query, token=self.tok)
                try:
                    self.assertEqual(s.status, 200, s.read_error_body() if s.status != 200 else '')
                    self.assertEqual(s.next_block(), ': ready')
                finally:
                    s.close()


class StreamSubscriptions(SseCase):
    def test_positions_of_8_6(self):
        for _ in range(3):
            self.c.write('pos-1')
        s0 = self.sub('stream=pos-1&position=0')
        s2 = self.sub('stream=pos-1&position=2')
        s3 = self.sub('stream=pos-1&position=3')
        sd = self.sub('stream=pos-1')
        sn = self.sub('stream=pos-1&position=-5')
        sp = self.sub('stream=pos-1&position=%2B1')
        self.assertEqual(self.keys(s0, 3), [0, 1, 2])
        self.assertEqual(self.keys(s2, 1), [2])
        self.assertEqual(self.keys(sd, 3), [0, 1, 2])
        self.assertEqual(self.keys(sn, 3), [0, 1, 2])
        self.assertEqual(self.keys(sp, 2), [1, 2])
        self.assertQuiet(s3)
        self.c.write('pos-1')
        for s in (s0, s2, s3, sd, sn, sp):
            self.assertEqual(self.keys(s, 1), [3])
        s9 = self.sub('stream=pos-1&position=9')
        for _ in range(6):
            self.c.write('pos-1')
        self.assertEqual(self.keys(s9, 1), [9])
        self.assertEqual(self.keys(s0, 6), [4, 5, 6, 7, 8, 9])

    def test_only_the_exact_stream(self):
        s = self.sub('stream=ex-1')
        for name in ('ex-1+x', 'ex-10', 'ex', 'Ex-1', 'ex-1 '):
            self.c.write(name)
        self.assertQuiet(s)
        self.c.write('ex-1')
        self.assertEqual(s.next_poke()['stream'], 'ex-1')

    def test_form_decoding_and_first_occurrence(self):
        s1 = self.sub('stream=a+b-1')
        s2 = self.sub('stream=a%2Bb-1')
        s3 = self.sub('stream=caf%C3%A9-1&stream=other-1')
        self.c.write('a b-1')
        self.c.write('a+b-1')
        self.c.write('other-1')
        self.c.write('caf\u00e9-1')
        self.assertEqual(s1.next_poke()['stream'], 'a b-1')
        self.assertEqual(s2.next_poke()['stream'], 'a+b-1')
        self.assertEqual(s3.next_poke()['stream'], 'caf\u00e9-1')
        for s in (s1, s2, s3):
            self.assertQuiet(s, 0.3)

    def test_replay_window_is_1000(self):
        H.write_many(SRV.port, self.tok, 'win-1', 1005)
        s = self.sub('stream=win-1&position=0', timeout=30)
        self.assertEqual(self.keys(s, 1000, timeout=30), list(range(1000)))
        self.assertQuiet(s)
        self.c.write('win-1')
        self.assertEqual(self.keys(s, 1), [1005])

    def race(self, query, stream_of, total, key, start_after=100, position=0):
        """Writes `total` messages from another thread; subscribes once
        `start_after` are done; returns (pokes, results, flags)."""
        results = [None] * total
        after_ready = [False] * total
        ready = threading.Event()
        started = threading.Event()
        errors = []

        def writer():
            try:
                cl = H.Client(SRV.port, self.tok)
                for i in range(total):
                    if i == start_after:
                        started.set()
                    after_ready[i] = ready.is_set()
                    results[i] = cl.call('stream.write', stream_of(i), {'type': 'T', 'data': {'i': i}})
                cl.close()
            except Exception as e:   # pragma: no cover - reported below
                errors.append(e)
                started.set()
        t = threading.Thread(target=writer)
        t.start()
        started.wait(30)
        s = H.subscribe(SRV.port, query, token=self.tok, timeout=30)
        self.subs.append(s)
        ready.set()
        t.join(60)
        self.assertFalse(errors, errors)
        return s, results, after_ready

    def test_replay_then_live_races_the_writer(self):
        n = 400
        s, results, _ = self.race('stream=race-1&position=0', lambda i: 'race-1', n, 'position')
        got = self.keys(s, n, timeout=30)
        self.assertEqual(got, list(range(n)))
        self.assertQuiet(s, 0.3)
        s, results, _ = self.race('stream=race-2&position=50', lambda i: 'race-2', n, 'position', start_after=200)
        self.assertEqual(self.keys(s, n - 50, timeout=30), list(range(50, n)))
        self.assertQuiet(s, 0.3)


class CategorySubscriptions(SseCase):
    def test_category_replay_live_and_global_position(self):
        gp = [self.c.write('cat-%d' % (i % 3))['globalPosition'] for i in range(5)]
        self.c.write('dog-1')
        s0 = self.sub('category=cat&position=0')
        s1 = self.sub('category=cat')
        s3 = self.sub('category=cat&position=%d' % gp[3])
        self.assertEqual(self.keys(s0, 5, 'globalPosition'), gp)
        self.assertEqual(self.keys(s1, 5, 'globalPosition'), gp)
        self.assertEqual(self.keys(s3, 2, 'globalPosition'), gp[3:])
        w = self.c.write('cat-9')
        for s in (s0, s1, s3):
            self.assertEqual(s.next_poke(), {'stream': 'cat-9', 'position': 0, 'globalPosition': w['globalPosition']})
            self.assertQuiet(s, 0.2)

    def test_only_the_exact_category(self):
        s = self.sub('category=cat1_x')
        for name in ('cat2_y-stream', 'cat1_xy-1', 'cat1_x:cmd-1', 'Cat1_x-1', 'cat1-x'):
            self.c.write(name)
        self.assertQuiet(s)
        self.c.write('cat1_x')
        self.c.write('cat1_x-1+2')
        self.assertEqual([p['stream'] for p in s.pokes(2)], ['cat1_x', 'cat1_x-1+2'])

    def test_appendix_a_consumer_group_split(self):
        for i in range(4):
            self.c.write('pad-%d' % i)
        m0 = self.sub('category=task&position=0&consumer=0&size=2')
        self.c.write('task-1')
        self.c.write('task-2')
        self.c.write('task-3')
        self.c.write('task-4')
        self.assertEqual(m0.next_block(), 'event: poke\ndata: {"stream":"task-1","position":0,"globalPosition":5}')
        self.assertEqual(m0.next_block(), 'event: poke\ndata: {"stream":"task-3","position":0,"globalPosition":7}')
        self.assertQuiet(m0, 0.3)

    def test_consumer_groups_in_replay_and_live(self):
        before = ['job-%d' % i for i in range(0, 10)] + ['job', 'job-', 'job-+x', 'job-3+a']
        after = ['job-%d' % i for i in range(10, 20)] + ['job-+y', 'job-7+b', 'job']
        for n in before:
            self.c.write(n)
        subs = {}
        for size in (2, 3):
            for m in range(size):
                subs[(m, size)] = self.sub('category=job&position=0&consumer=%d&size=%d' % (m, size))
        one = self.sub('category=job&consumer=0&size=1')
        nogroup = self.sub('category=job&consumer=0&size=0')
        for n in after:
            self.c.write(n)
        allnames = before + after
        for (m, size), s in subs.items():
            want = [n for n in allnames if H.md5_member(n, size) == m]
            self.assertEqual([p['stream'] for p in s.pokes(len(want))], want, (m, size))
            self.assertQuiet(s, 0.2)
        want = [n for n in allnames if H.md5_member(n, 1) == 0]
        self.assertEqual([p['stream'] for p in one.pokes(len(want))], want)
        self.assertEqual([p['stream'] for p in nogroup.pokes(len(allnames))], allnames)

    def test_category_replay_window_counts_matching_messages(self):
        bodies = [H.rpc_body('stream.write', 'grp-%d' % (i % 50), {'type': 'T', 'data': {}}) for i in range(2500)]
        rs = H.pipeline(SRV.port, bodies, token=self.tok)
        gps = [(('grp-%d' % (i % 50)), r.json()['globalPosition']) for i, r in enumerate(rs)]
        s = self.sub('category=grp&position=0&consumer=1&size=2', timeout=30)
        want = [g for n, g in gps if H.md5_member(n, 2) == 1][:1000]
        self.assertEqual(len(want), 1000)
        self.assertEqual(self.keys(s, 1000, 'globalPosition', timeout=30), want)
        self.assertQuiet(s)

    def test_category_race(self):
        n = 300
        results = [None] * n
        started = threading.Event()

        def writer():
            cl = H.Client(SRV.port, self.tok)
            for i in range(n):
                if i == 80:
                    started.set()
                results[i] = cl.call('stream.write', 'rc-%d' % (i % 7) if i % 5 else 'other-%d' % i,
                                     {'type': 'T', 'data': {}})
            cl.close()
        t = threading.Thread(target=writer)
        t.start()
        started.wait(30)
        s = self.sub('category=rc&position=0', timeout=30)
        t.join(60)
        want = [results[i]['globalPosition'] for i in range(n) if i % 5]
        self.assertEqual(self.keys(s, len(want), 'globalPosition', timeout=30), want)
        self.assertQuiet(s, 0.3)


class AllSubscriptions(SseCase):
    def test_no_replay_and_position_filter(self):
        for i in range(3):
            self.c.write('pre-%d' % i)
        s = self.sub('all=true&position=0')
        s5 = self.sub('all=true&position=6')
        sx = self.sub('all=true&consumer=1&size=2')
        self.assertQuiet(s, 0.3)
        w = [self.c.write(n) for n in ('a-1', 'b', 'c-2+x', 'a-1')]
        want = [('a-1', 0, 4), ('b', 0, 5), ('c-2+x', 0, 6), ('a-1', 1, 7)]
        self.assertEqual([(p['stream'], p['position'], p['globalPosition']) for p in s.pokes(4)], want)
        self.assertEqual([(p['stream'], p['position'], p['globalPosition']) for p in sx.pokes(4)], want)
        self.assertEqual([p['globalPosition'] for p in s5.pokes(2)], [6, 7])
        self.assertEqual([x['globalPosition'] for x in w], [4, 5, 6, 7])

    def test_all_race_no_loss_after_ready(self):
        n = 400
        results = [None] * n
        flags = [False] * n
        ready = threading.Event()
        started = threading.Event()

        def writer(offset):
            cl = H.Client(SRV.port, self.tok)
            for i in range(offset, n, 2):
                if i >= 100:
                    started.set()
                flags[i] = ready.is_set()
                results[i] = cl.call('stream.write', 'w%d-%d' % (offset, i % 13), {'type': 'T', 'data': {}})
            cl.close()
        ts = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
        [t.start() for t in ts]
        started.wait(30)
        s = self.sub('all=true')
        ready.set()
        [t.join(60) for t in ts]
        must = set(results[i]['globalPosition'] for i in range(n) if flags[i])
        last = max(r['globalPosition'] for r in results)
        got = []
        while not got or got[-1] < last:
            got.append(s.next_poke(10)['globalPosition'])
        self.assertEqual(got, sorted(set(got)), 'strictly ascending, no duplicates')
        self.assertFalse(must - set(got), 'writes sent after ": ready" must be poked')
        self.assertQuiet(s, 0.3)


class ManySubscribers(SseCase):
    """The loop serves all its subscriptions through one shared wake-up and
    writes each subscriber's pending pokes together: with hundreds of
    subscribers of every kind in two namespaces, each still gets exactly
    its pokes, once, in order, one exact chunk each (formatted pokes are
    shared between subscribers, never mixed up across namespaces)."""

    def test_hundreds_of_subscribers_get_exactly_their_pokes(self):
        ns2, tok2 = self.admin.new_namespace()
        c2 = H.Client(SRV.port, tok2)
        long_name = 'm' + 'x' * 300 + '-1'  # too long for the shared text
        streams = ['m-1', 'm-2', 'n-1', 'm-3+a', long_name]
        kinds = ['all=true', 'stream=m-1', 'category=m', 'stream=' + long_name,
                 'all=true&position=40']
        subs = []
        for i in range(240):
            tok = self.tok if i % 2 else tok2
            s = H.subscribe(SRV.port, kinds[i % len(kinds)], token=tok)
            self.subs.append(s)
            subs.append((i % 2, kinds[i % len(kinds)], s))
        writes = ([], [])

        def writer(k, cl):
            for j in range(60):
                st = streams[(j + k) % len(streams)]
                r = cl.write(st)
                writes[k].append((st, r['position'], r['globalPosition']))
        ts = [threading.Thread(target=writer, args=(1, self.c)),
              threading.Thread(target=writer, args=(0, c2))]
        [t.start() for t in ts]
        [t.join(60) for t in ts]
        c2.close()
        for k, kind, s in subs:
            want = [w for w in writes[k]
                    if kind == 'all=true'
                    or (kind == 'all=true&position=40' and w[2] >= 40)
                    or (kind.startswith('stream=') and kind[7:] == w[0])
                    or (kind == 'category=m' and w[0].split('-', 1)[0] == 'm')]
            got = [(p['stream'], p['position'], p['globalPosition']) for p in s.pokes(len(want), 20)]
            self.assertEqual(got, want, kind)
            self.assertEqual(s.chunks[-len(want):], [poke_bytes(*w) for w in want], kind)
            self.assertEqual(s.text, b'', kind)
        # nothing more for anyone (pings aside: none within 15 s)
        ready, _, _ = select.select([s.conn.sock for _, _, s in subs], [], [], 0.3)
        self.assertEqual(ready, [])


class Publication(SseCase):
    def test_batch_idempotent_retry_and_failed_writes(self):
        s = self.sub('all=true')
        u = ['cccccccc-1111-4111-8111-00000000000%d' % i for i in range(3)]
        res = self.c.call('stream.writeBatch', 'bat-1', [{'type': 'T', 'data': {}, 'id': x} for x in u])
        pokes = s.pokes(3)
        self.assertEqual([(p['stream'], p['position']) for p in pokes], [('bat-1', 0), ('bat-1', 1), ('bat-1', 2)])
        self.assertEqual(pokes[-1]['globalPosition'], res['globalPosition'])
        # idempotent retries, conflicts and validation failures publish nothing
        self.c.call('stream.writeBatch', 'bat-1', [{'type': 'T', 'data': {}, 'id': x} for x in u])
        self.c.call('stream.write', 'bat-1', {'type': 'T', 'data': {}}, {'id': u[0]})
        self.assertEqual(self.c.rpc('stream.write', 'bat-1', {'type': 'T', 'data': {}}, {'expectedVersion': 0}).status, 409)
        self.assertEqual(self.c.rpc('stream.write', 'bat-1', {'type': 'X', 'data': {}}, {'id': u[1]}).status, 409)
        self.assertEqual(self.c.rpc('stream.write', 'bat-1', {'type': '', 'data': {}}).status, 400)
        self.assertQuiet(s)
        w = self.c.write('bat-1')
        self.assertEqual(s.next_poke(), {'stream': 'bat-1', 'position': 3, 'globalPosition': w['globalPosition']})

    def test_imports_publish_nothing(self):
        s = self.sub('all=true')
        sc = self.sub('category=imp')
        body = ''.join(H.jdump({'id': '0195a7c2-0000-7000-8000-%012d' % i, 'stream': 'imp-1', 'type': 'T',
                                'pos': i, 'gpos': i + 1, 'data': {}, 'meta': None,
                                'time': '2025-01-01T00:00:00Z'}) + '\n' for i in range(5))
        r = H.Conn(SRV.port).request('POST', '/import', body.encode(), token=self.tok)
        self.assertEqual(r.status, 200)
        self.assertIn(b'"done":true', r.body)
        self.assertQuiet(s)
        self.assertQuiet(sc, 0.1)
        self.assertEqual(self.c.write('imp-1'), {'globalPosition': 6, 'position': 5})
        self.assertEqual(s.next_poke()['globalPosition'], 6)

    def test_namespaces_are_isolated(self):
        ns2, tok2 = self.admin.new_namespace()
        s = self.sub('all=true')
        sc = self.sub('category=iso')
        H.Client(SRV.port, tok2).write('iso-1')
        H.Client(SRV.port, None).write('iso-1')   # default namespace
        self.assertQuiet(s)
        self.assertQuiet(sc, 0.1)

    def test_poke_latency(self):
        s = self.sub('all=true')
        lat = []
        for i in range(50):
            t0 = time.time()
            self.c.write('lat-1')
            s.next_poke(1.0)
            lat.append(time.time() - t0)
        lat.sort()
        self.assertLess(lat[-1], 0.5)
        self.assertLess(lat[int(len(lat) * 0.95) - 1], 0.1, lat[-5:])


class Lifetime(SseCase):
    def test_deleted_namespace_goes_silent(self):
        s_all = self.sub('all=true')
        s_str = self.sub('stream=d-1')
        s_cat = self.sub('category=d')
        self.c.write('d-1')
        for s in (s_all, s_str, s_cat):
            s.next_poke()
        self.admin.call('ns.delete', self.ns)
        # same id again: a new instance that never feeds the old subscriptions
        self.admin.call('ns.create', self.ns, {'token': self.tok})
        self.c.close()
        s_new = self.sub('all=true')
        self.c.write('d-1')
        self.assertEqual(s_new.next_poke(), {'stream': 'd-1', 'position': 0, 'globalPosition': 1})
        for s in (s_all, s_str, s_cat):
            self.assertQuiet(s, 0.5)
        # the old subscriptions are still open
        for s in (s_all, s_str, s_cat):
            self.assertFalse(s.conn.eof)
            self.assertFalse(s.conn.closed_within(0.1))

    def test_aborting_clients_do_not_disturb_the_server(self):
        H.write_many(SRV.port, self.tok, 'ab-1', 600)
        keep = self.sub('stream=ab-1&position=600')
        for i in range(20):
            s = H.SSE(SRV.port, 'stream=ab-1&position=0', token=self.tok)
            if i % 2:
                s.next_block()
            s.conn.abort() if i % 3 else s.close()
        for i in range(5):
            s = H.SSE(SRV.port, 'all=true', token=self.tok, connect_only=True)
            s.conn.abort()
        w = self.c.write('ab-1')
        self.assertEqual(keep.next_poke(), {'stream': 'ab-1', 'position': 600, 'globalPosition': w['globalPosition']})
        self.assertTrue(SRV.alive())
        self.assertEqual(H.http_get(SRV.port, '/health').status, 200)

    def test_replay_to_a_stalled_reader_does_not_block_writers(self):
        name = 'stall-' + 'y' * 400
        rs = H.pipeline(SRV.port, [H.rpc_body('stream.writeBatch', name, [{'type': 'T', 'data': {}}] * 1000)],
                        token=self.tok)
        self.assertEqual(rs[0].status, 200)
        stalled = [H.SSE(SRV.port, q(stream=name, position=0), token=self.tok, rcvbuf=4096) for _ in range(3)]
        self.subs.extend(stalled)
        time.sleep(0.3)
        worst = 0
        for i in range(20):
            t0 = time.time()
            self.c.write(name if i % 2 else 'other-1')
            worst = max(worst, time.time() - t0)
        self.assertLess(worst, 1.0)
        # and the stalled readers still get everything, in order, once they read
        for s in stalled:
            self.assertEqual(s.head.status, 200)
            self.assertEqual(s.next_block(), ': ready')
            self.assertEqual(self.keys(s, 1010, timeout=30), list(range(1010)))

    def test_slow_subscriber_is_disconnected_others_unaffected(self):
        name = 'slow-' + 'x' * 400
        total, batch = 30000, 500
        slow = H.SSE(SRV.port, q(stream=name), token=self.tok, rcvbuf=4096)
        self.subs.append(slow)
        self.assertEqual(slow.status, 200)
        self.assertEqual(slow.next_block(), ': ready')
        fast = self.sub(q(stream=name))
        got_fast = []
        fast_err = []

        def reader():
            try:
                while len(got_fast) < total:
                    got_fast.append(fast.next_poke(30)['position'])
            except Exception as e:
                fast_err.append(e)
        t = threading.Thread(target=reader)
        t.start()
        wc = H.Client(SRV.port, self.tok)
        slowest = 0
        for i in range(total // batch):
            # keep the reading subscriber close behind (it is Python, the
            # server is not), so that only the non-reading one overflows
            wait_until = time.time() + 30
            while len(got_fast) < i * batch - 1000 and time.time() < wait_until and not fast_err:
                time.sleep(0.005)
            t0 = time.time()
            r = wc.rpc('stream.writeBatch', name, [{'type': 'T', 'data': {}}] * batch)
            slowest = max(slowest, time.time() - t0)
            self.assertEqual(r.status, 200, r)
        wc.close()
        t.join(60)
        self.assertFalse(fast_err, fast_err)
        self.assertEqual(got_fast, list(range(total)), 'the reading subscriber gets every poke in order')
        self.assertLess(slowest, 5.0, 'writers are not held up by the slow subscriber')
        # the slow one: a prefix of the pokes, then an abortive close
        got_slow = []
        ended = None
        deadline = time.time() + 20
        try:
            while time.time() < deadline:
                got_slow.append(slow.next_poke(max(0.01, deadline - time.time()))['position'])
        except H.ConnClosed as e:
            ended = str(e)
        except (socket.timeout, TimeoutError):
            ended = 'timeout'
        except OSError as e:
            ended = 'error: %s' % e
        H.note('slow subscriber: %d of %d pokes read, then %s; slowest batch %.3f s',
               len(got_slow), total, ended, slowest)
        self.assertIsNotNone(ended)
        self.assertNotEqual(ended, 'timeout', 'the slow subscriber was never disconnected (%d pokes read)'
                            % len(got_slow))
        self.assertFalse(slow.ended, 'overflow must not end with the terminating chunk')
        self.assertLess(len(got_slow), total)
        self.assertEqual(got_slow, list(range(len(got_slow))), 'no poke silently dropped before the close')
        self.assertTrue(SRV.alive())
        self.assertEqual(H.http_get(SRV.port, '/health').status, 200)
        w = self.c.write(name)
        self.assertEqual(fast.next_poke(5)['position'], w['position'])
        m = re.search(rb'streamstore_sse_disconnects_total\{reason="overflow"\} (\d+)',
                      H.http_get(SRV.port, '/metrics').body)
        self.assertTrue(m and int(m.group(1)) >= 1, 'overflow counted in /metrics')


if __name__ == '__main__':
    H.main(__name__)
