#!/usr/bin/env python3
"""Import and export (PROTOCOL section 9, 12.3): the NDJSON record format,
/export filters, /import events and errors, force, and the round trip
A -> export -> import into B -> export, byte for byte.  Also the `export`
and `import` subcommands."""

import gzip
import json
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse

import shimhttp as H
from shimhttp import jdump, run_cli

SRV = None
SMALL = None

REC_RE = re.compile(r'^\{"id":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}","stream":"(?:[^"\\]|\\.)*",'
                    r'"type":"(?:[^"\\]|\\.)*","pos":\d+,"gpos":\d+,"data":(?:\{.*\}|null),"meta":(?:\{.*\}|null),'
                    r'"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{0,5}[1-9])?Z"\}$')


def setUpModule():
    global SRV, SMALL
    SRV = H.Server()
    SMALL = H.Server(extra=['--max-body-size=1048576'])


def tearDownModule():
    for s in (SRV, SMALL):
        if s:
            s.stop()


def rec(i, stream='a-1', pos=None, gpos=None, time_='2025-01-01T00:00:00Z', **kw):
    r = {'id': '0195a7c2-0000-7000-8000-%012d' % i, 'stream': stream, 'type': 'T',
         'pos': i if pos is None else pos, 'gpos': i + 1 if gpos is None else gpos,
         'data': {'i': i}, 'meta': None, 'time': time_}
    r.update(kw)
    return r


def ndjson(records):
    return ''.join((r if isinstance(r, str) else jdump(r)) + '\n' for r in records).encode()


def events(body):
    """The `data: {...}` events of an import response, parsed."""
    text = body.decode()
    blocks = text.split('\n\n')
    if blocks[-1] != '':
        raise AssertionError('event stream does not end with a blank line: %r' % text[-200:])
    out = []
    for b in blocks[:-1]:
        if not b.startswith('data: ') or '\n' in b:
            raise AssertionError('bad event block %r' % b)
        out.append(json.loads(b[6:]))
    return out


class TransferCase(H.TestCase):
    server = None

    def setUp(self):
        srv = self.server or SRV
        self.srv = srv
        self.admin = H.Client(srv.port, H.TOKEN_DEFAULT)
        self.ns, self.tok = self.admin.new_namespace()
        self.c = H.Client(srv.port, self.tok)

    def tearDown(self):
        self.c.close()
        self.admin.close()

    def export(self, query='', tok=None):
        c = H.Conn(self.srv.port, timeout=60)
        r = c.request('GET', '/export' + ('?' + query if query else ''), token=tok or self.tok)
        c.close()
        return r

    def export_ok(self, query='', tok=None):
        r = self.export(query, tok)
        self.assertEqual(r.status, 200, r)
        return r.body

    def records(self, query='', tok=None):
        body = self.export_ok(query, tok)
        if not body:
            return []
        self.assertTrue(body.endswith(b'\n'))
        return [json.loads(line) for line in body.decode().split('\n')[:-1]]

    def import_(self, body, query='', tok=None, srv=None):
        c = H.Conn((srv or self.srv).port, timeout=120)
        r = c.request('POST', '/import' + ('?' + query if query else ''), body, token=tok or self.tok,
                      headers=[('Content-Type', 'application/x-ndjson')])
        c.close()
        return r

    def import_events(self, body, query='', tok=None):
        r = self.import_(body, query, tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header('content-type'), 'text/event-stream')
        return events(r.body)

    def assertDone(self, evs, n):
        self.assertEqual(list(evs[-1]), ['done', 'imported', 'elapsed'])
        self.assertEqual((evs[-1]['done'], evs[-1]['imported']), (True, n))
        self.assertRegex(evs[-1]['elapsed'], r'^\d+\.\ds$')

    def assertImportError(self, evs, code, message, line):
        self.assertEqual(len(evs) >= 1, True)
        want = {'error': code, 'message': message}
        if line is not None:
            want['line'] = line
        self.assertEqual(evs[-1], want)
        self.assertEqual(list(evs[-1]), list(want), 'key order error, message, line')


# ---------------------------------------------------------------------------
# /export
# ---------------------------------------------------------------------------

class Export(TransferCase):
    def test_format_and_headers(self):
        pretty = '{ "sku" : "a",\n  "n": 1.50, "big": 123456789012345678901234567890, "u": "\\u00e9\u65e5" }'
        body = ('["stream.write","cart-1",{"type":"Added","data":%s,"metadata":{ "correlationStreamName" : '
                '"order-9" }}]' % pretty).encode()
        self.assertEqual(self.c.rpc_raw(body).status, 200)
        self.c.write('order-1', 'Placed', {'q"uote': 'x\ny'})
        self.c.write('cart-1', 'Removed', {})
        r = self.export()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header('content-type'), 'application/x-ndjson')
        self.assertEqual(r.header('cache-control'), 'no-cache')
        self.assertEqual(r.header('x-accel-buffering'), 'no')
        self.assertEqual(r.header('transfer-encoding'), 'chunked')
        lines = r.body.decode().split('\n')
        self.assertEqual(lines[-1], '')
        lines = lines[:-1]
        self.assertEqual(len(lines), 3)
        for line in lines:
            self.assertRegex(line, REC_RE)
        self.assertEqual(
            lines[0][lines[0].index('"data":'):lines[0].index(',"time":')],
            '"data":{"sku":"a","n":1.50,"big":123456789012345678901234567890,"u":"\\u00e9\u65e5"},'
            '"meta":{"correlationStreamName":"order-9"}')
        recs = [json.loads(x) for x in lines]
        msgs = self.c.call('category.get', '')
        for rr, m in zip(recs, msgs):
            self.assertEqual(list(rr), ['id', 'stream', 'type', 'pos', 'gpos', 'data', 'meta', 'time'])
            self.assertEqual([rr['id'], rr['stream'], rr['type'], rr['pos'], rr['gpos'], rr['data'], rr['meta'],
                              rr['time']], m)
        self.assertEqual([x['gpos'] for x in recs], [1, 2, 3])
        self.assertIsNone(recs[1]['meta'])

    def test_empty_namespace_is_an_empty_body(self):
        self.assertEqual(self.export_ok(), b'')

    def test_category_filter(self):
        for s in ('cart-1', 'order-1', 'cart-2', 'carts-1', 'cart', 'pay-1', 'cart:x-1'):
            self.c.write(s)
        streams = lambda q: [x['stream'] for x in self.records(q)]
        self.assertEqual(streams('categories=cart'), ['cart-1', 'cart-2', 'cart'])
        self.assertEqual(streams('categories=' + urllib.parse.quote(' cart , order ,,')),
                         ['cart-1', 'order-1', 'cart-2', 'cart'])
        self.assertEqual(streams('categories=order,pay'), ['order-1', 'pay-1'])
        self.assertEqual(len(streams('categories=')), 7)
        self.assertEqual(len(streams('categories=,')), 7)
        self.assertEqual(streams('categories=car'), [])
        self.assertEqual(streams('categories=cart-1'), [])
        self.assertEqual(streams('categories=cart%3Ax'), ['cart:x-1'])
        self.assertEqual(streams('categories=pay&categories=cart'), ['pay-1'])

    def test_time_bounds(self):
        for i in range(3):
            self.c.write('t-%d' % i)
            time.sleep(0.02)
        times = [m[7] for m in self.c.call('category.get', '')]
        self.assertEqual(len(set(times)), 3)
        gp = lambda q: [x['gpos'] for x in self.records(q)]
        enc = lambda t: urllib.parse.quote(t, safe='')
        self.assertEqual(gp('since=' + enc(times[1])), [2, 3])
        self.assertEqual(gp('until=' + enc(times[1])), [1])
        self.assertEqual(gp('since=%s&until=%s' % (enc(times[1]), enc(times[2]))), [2])
        self.assertEqual(gp('since=%s&until=%s' % (enc(times[2]), enc(times[1]))), [])
        self.assertEqual(gp('since=%s&until=%s' % (enc(times[1]), enc(times[1]))), [])
        today = time.strftime('%Y-%m-%d', time.gmtime(H.ts_micros(times[0]) / 1e9))
        tomorrow = time.strftime('%Y-%m-%d', time.gmtime(H.ts_micros(times[0]) / 1e9 + 86400))
        self.assertEqual(gp('since=' + today), [1, 2, 3])
        self.assertEqual(gp('until=' + today), [])
        self.assertEqual(gp('since=' + tomorrow), [])
        self.assertEqual(gp('until=' + tomorrow), [1, 2, 3])
        self.assertEqual(gp('since=2000-01-01T00:00:00Z&until=2999-01-01'), [1, 2, 3])
        # the same instant with an offset and with extra fraction digits
        ns = H.ts_micros(times[1])
        secs, frac = divmod(ns, 10**9)
        plus2 = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(secs + 7200)) + '.%09d+02:00' % frac
        self.assertEqual(gp('since=' + enc(plus2)), [2, 3])
        self.assertEqual(gp('until=' + enc(plus2)), [1])
        nines = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(secs)) + '.%06d999Z' % (frac // 1000)
        self.assertEqual(gp('since=' + enc(nines)), [2, 3])   # truncated to microseconds

    def test_invalid_bounds_are_400(self):
        for bad in ('yesterday', '2026-13-01', '2026-03-01T12:00', '2026-03-01 12:00:00Z', '01/03/2026', '0'):
            with self.subTest(bad=bad):
                r = self.export('since=' + urllib.parse.quote(bad))
                self.assertBody(r, 400, H.err_body('INVALID_REQUEST',
                                                   'invalid since: expected YYYY-MM-DD or RFC3339 format'))
                r = self.export('until=' + urllib.parse.quote(bad))
                self.assertBody(r, 400, H.err_body('INVALID_REQUEST',
                                                   'invalid until: expected YYYY-MM-DD or RFC3339 format'))

    def test_large_export_is_complete_and_ascending(self):
        H.write_many(self.srv.port, self.tok, 'big-1', 2500)
        self.c.write('other-1')
        recs = self.records()
        self.assertEqual([x['gpos'] for x in recs], list(range(1, 2502)))
        self.assertEqual(len(self.records('categories=big')), 2500)

    def test_export_during_writes_is_ascending_without_duplicates(self):
        H.write_many(self.srv.port, self.tok, 'pre-1', 3000)
        stop = threading.Event()

        def writer():
            cl = H.Client(self.srv.port, self.tok)
            while not stop.is_set():
                cl.call('stream.write', 'live-%d' % (time.time() * 1000 % 7), {'type': 'T', 'data': {}})
            cl.close()
        t = threading.Thread(target=writer)
        t.start()
        try:
            for _ in range(3):
                g = [x['gpos'] for x in self.records()]
                self.assertEqual(g, sorted(set(g)))
                self.assertEqual(g[:3000], list(range(1, 3001)))
        finally:
            stop.set()
            t.join(30)

    def test_export_is_produced_only_as_fast_as_it_is_read(self):
        blob = 'b' * 10000
        for k in range(5):
            rs = H.pipeline(self.srv.port, [H.rpc_body('stream.writeBatch', 'fat-%d' % k,
                                                       [{'type': 'T', 'data': {'x': blob}}] * 1000)],
                            token=self.tok)
            self.assertEqual(rs[0].status, 200)
        time.sleep(0.2)
        rss0 = self.srv.rss_kb()
        c = H.Conn(self.srv.port, timeout=30, rcvbuf=8192)
        c.send(H.build_request('GET', '/export', token=self.tok))
        head = c.read_head()
        self.assertEqual(head.status, 200)
        time.sleep(2.0)                 # 50 MB to send, nobody reading
        rss1 = self.srv.rss_kb()
        H.note('export of ~50 MB unread: VmRSS %d kB -> %d kB', rss0, rss1)
        self.assertLess(rss1 - rss0, 24 * 1024)
        # and it completes when read
        n = 0
        buf = b''
        while True:
            ch = c.read_chunk(time.time() + 60)
            if not ch:
                break
            buf += ch
            n += buf.count(b'\n')
            buf = buf[buf.rfind(b'\n') + 1:]
        c.close()
        self.assertEqual(n, 5000)

    def test_export_is_per_namespace(self):
        self.c.write('mine-1')
        ns2, tok2 = self.admin.new_namespace()
        H.Client(self.srv.port, tok2).write('theirs-1')
        self.assertEqual([x['stream'] for x in self.records()], ['mine-1'])
        self.assertEqual([x['stream'] for x in self.records(tok=tok2)], ['theirs-1'])


# ---------------------------------------------------------------------------
# /import
# ---------------------------------------------------------------------------

class Import(TransferCase):
    def test_empty_body_and_headers(self):
        r = self.import_(b'')
        self.assertEqual(r.status, 200)
        for k, v in (('content-type', 'text/event-stream'), ('cache-control', 'no-cache'),
                     ('connection', 'keep-alive'), ('x-accel-buffering', 'no'), ('transfer-encoding', 'chunked')):
            self.assertEqual(r.header(k), v)
        self.assertRegex(r.body, rb'^data: \{"done":true,"imported":0,"elapsed":"\d+\.\ds"\}\n\n$')

    def test_progress_events_and_counter(self):
        body = ndjson(rec(i) for i in range(2500))
        r = self.import_(body)
        self.assertRegex(r.body, rb'^data: \{"imported":1000,"gpos":1000\}\n\ndata: \{"imported":2000,"gpos":2000\}'
                                 rb'\n\ndata: \{"done":true,"imported":2500,"elapsed":"\d+\.\ds"\}\n\n$')
        self.assertEqual(self.admin.call('ns.info', self.ns)['messageCount'], 2500)
        self.assertEqual(self.c.write('new-1'), {'globalPosition': 2501, 'position': 0})
        self.assertEqual(self.c.write('a-1'), {'globalPosition': 2502, 'position': 2500})

    def test_progress_reports_the_last_gpos_of_each_batch(self):
        body = ndjson(rec(i, gpos=3 * i + 7) for i in range(2100))
        evs = self.import_events(body)
        self.assertEqual(evs[:2], [{'imported': 1000, 'gpos': 3 * 999 + 7}, {'imported': 2000, 'gpos': 3 * 1999 + 7}])
        self.assertDone(evs, 2100)
        self.assertEqual(self.c.write('z-1')['globalPosition'], 3 * 2099 + 7 + 1)

    def test_imported_null_metadata_equals_absent_metadata_for_retries(self):
        u = '0195a7c2-0000-7000-8000-00000000beef'
        self.assertDone(self.import_events(ndjson([dict(rec(0, stream='im-1', gpos=40), id=u, data={'k': 1})])), 1)
        self.assertEqual(self.c.call('stream.write', 'im-1', {'type': 'T', 'data': {'k': 1.0}}, {'id': u}),
                         {'globalPosition': 40, 'position': 0})
        r = self.c.rpc('stream.write', 'im-1', {'type': 'T', 'data': {'k': 1}, 'metadata': {}}, {'id': u})
        self.assertEqual(r.status, 409, r)
        v = '0195a7c2-0000-7000-8000-00000000bee0'
        self.assertDone(self.import_events(ndjson([dict(rec(1, stream='im-2', pos=0, gpos=41), id=v, data=None)])), 1)
        r = self.c.rpc('stream.write', 'im-2', {'type': 'T', 'data': {}}, {'id': v})
        self.assertEqual(r.status, 409, r)

    def test_records_are_stored_as_given(self):
        recs = [
            {'id': '0195A7C2-0000-7000-8000-0000000000AA', 'stream': 'g-1', 'type': 'X', 'pos': 0, 'gpos': 10,
             'data': {'a': [1, 2]}, 'meta': {'correlationStreamName': 'w-1'}, 'time': '2025-01-01T02:00:00+02:00'},
            {'id': '{0195a7c2-0000-7000-8000-0000000000ab}', 'stream': 'g-1', 'type': 'Y', 'pos': 5, 'gpos': 20,
             'data': None, 'meta': None, 'time': '2025-01-01T00:00:01.1234567Z', 'extra': 'ignored'},
            {'id': 'urn:uuid:0195a7c2-0000-7000-8000-0000000000ac', 'stream': 'h', 'type': 'Z', 'pos': 3, 'gpos': 15,
             'time': '2025-01-01T00:00:02.500Z'},
            {'id': '0195a7c2000070008000' '0000000000ad', 'stream': 'g-2', 'type': 'Z', 'pos': 0, 'gpos': 16,
             'data': {}, 'time': '2025-01-01T00:00:03.000000Z'},
        ]
        evs = self.import_events(ndjson(recs))
        self.assertDone(evs, 4)
        got = self.c.call('stream.get', 'g-1')
        self.assertEqual(got, [['0195a7c2-0000-7000-8000-0000000000aa', 'X', 0, 10, {'a': [1, 2]},
                                {'correlationStreamName': 'w-1'}, '2025-01-01T00:00:00Z'],
                               ['0195a7c2-0000-7000-8000-0000000000ab', 'Y', 5, 20, None, None,
                                '2025-01-01T00:00:01.123456Z']])
        self.assertEqual(self.c.call('stream.get', 'h'), [['0195a7c2-0000-7000-8000-0000000000ac', 'Z', 3, 15,
                                                           None, None, '2025-01-01T00:00:02.5Z']])
        self.assertEqual(self.c.call('stream.last', 'g-2')[6], '2025-01-01T00:00:03Z')
        self.assertEqual([m[4] for m in self.c.call('category.get', '')], [10, 15, 16, 20])
        # gaps stay; counters continue after the maximum
        self.assertEqual(self.c.write('g-1'), {'globalPosition': 21, 'position': 6})
        self.assertEqual(self.c.write('h'), {'globalPosition': 22, 'position': 4})
        self.assertEqual(self.c.call('category.get', 'w', {'correlation': 'w'}), [])
        self.assertEqual(len(self.c.call('category.get', 'g', {'correlation': 'w'})), 1)

    def test_blank_lines_and_crlf(self):
        body = (jdump(rec(0)) + '\r\n\r\n   \n\t\n' + jdump(rec(1)) + '\r\n').encode()
        self.assertDone(self.import_events(body), 2)
        body = (jdump(rec(2)) + '\n\n' + jdump(rec(3)) + '\n \nnot json\n').encode()
        evs = self.import_events(body)
        self.assertEqual(evs[-1]['error'], 'INVALID_JSON')
        self.assertEqual(evs[-1]['line'], 5)
        self.assertTrue(evs[-1]['message'].startswith('malformed JSON at line 5: '), evs[-1])
        # last line without a newline
        self.assertDone(self.import_events(jdump(rec(4)).encode()), 1)

    def test_appendix_a_duplicate_in_the_final_batch(self):
        body = (b'{"id":"0195a7c2-0000-7000-8000-000000000001","stream":"a-1","type":"T","pos":0,"gpos":10,"data":{},'
                b'"meta":null,"time":"2025-01-01T00:00:00Z"}\n'
                b'{"id":"0195a7c2-0000-7000-8000-000000000002","stream":"a-1","type":"T","pos":1,"gpos":10,"data":{},'
                b'"meta":null,"time":"2025-01-01T00:00:01.5Z"}\n')
        r = self.import_(body)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header('x-accel-buffering'), 'no')
        self.assertEqual(r.body, b'data: {"error":"POSITION_EXISTS","message":"global position already exists: 10",'
                                 b'"line":2}\n\n')
        self.assertEqual(self.c.call('stream.get', 'a-1'), [])

    def test_conflicts_with_stored_data(self):
        self.assertDone(self.import_events(ndjson([rec(0), rec(1)])), 2)      # a-1 pos 0,1 gpos 1,2
        cases = [
            ([rec(5, gpos=2, stream='b-1', pos=0)], 'global position already exists: 2'),
            ([rec(6, stream='a-1', pos=1, gpos=50)], 'stream position already exists: a-1 1'),
            ([rec(7, stream='b-1', pos=0, gpos=51, id=rec(0)['id'])],
             'message id already exists: %s' % rec(0)['id']),
            ([rec(8, stream='b-1', pos=0, gpos=60), rec(9, stream='b-1', pos=0, gpos=61)],
             'stream position already exists: b-1 0'),
            ([rec(10, stream='b-1', pos=0, gpos=62), rec(11, stream='b-1', pos=1, gpos=63, id=rec(10)['id'])],
             'message id already exists: %s' % rec(10)['id']),
        ]
        for recs, msg in cases:
            with self.subTest(msg=msg):
                evs = self.import_events(ndjson(recs))
                self.assertImportError(evs, 'POSITION_EXISTS', msg, len(recs))
        self.assertEqual(self.admin.call('ns.info', self.ns)['messageCount'], 2)

    def test_earlier_batches_stay_committed(self):
        recs = [rec(i) for i in range(1500)]
        recs[1200]['gpos'] = 5
        evs = self.import_events(ndjson(recs))
        self.assertEqual(evs[0], {'imported': 1000, 'gpos': 1000})
        self.assertImportError(evs, 'POSITION_EXISTS', 'global position already exists: 5', 1201)
        self.assertEqual(self.admin.call('ns.info', self.ns)['messageCount'], 1000)

    def test_force_clears_and_resets_the_counter(self):
        for i in range(10):
            self.c.write('old-1')
        evs = self.import_events(ndjson([rec(0, gpos=1), rec(1, gpos=2), rec(2, gpos=3)]), 'force=true')
        self.assertDone(evs, 3)
        self.assertEqual(self.c.call('stream.get', 'old-1'), [])
        self.assertEqual(self.c.write('new-1'), {'globalPosition': 4, 'position': 0})
        self.assertDone(self.import_events(b'', 'force=true'), 0)
        self.assertEqual(self.admin.call('ns.info', self.ns)['messageCount'], 0)
        self.assertEqual(self.c.write('new-1'), {'globalPosition': 1, 'position': 0})
        # only the exact value `true` forces
        for q in ('force=TRUE', 'force=1', 'force=yes', 'Force=true'):
            with self.subTest(q=q):
                evs = self.import_events(ndjson([rec(0, gpos=1, stream='z-1', pos=0)]), q)
                self.assertImportError(evs, 'POSITION_EXISTS', 'global position already exists: 1', 1)

    def test_invalid_json_lines(self):
        for line in ('not json', '[1]', '"x"', 'null', '{"id":', '{"a":1,"a":2}', '{"pos":"x"}', '{"pos":1.5}',
                     '{"stream":7}', '{"gpos":true}', '{"data":{"x":"\\ud800"}}', '\xff'):
            with self.subTest(line=line):
                body = ndjson([rec(0)]) + line.encode('utf-8', 'surrogateescape') + b'\n' + ndjson([rec(1)])
                if line == '\xff':
                    body = ndjson([rec(0)]) + b'{"stream":"\xff"}\n'
                evs = self.import_events(body, 'force=true')
                self.assertEqual(list(evs[-1]), ['error', 'message', 'line'])
                self.assertEqual((evs[-1]['error'], evs[-1]['line']), ('INVALID_JSON', 2))
                self.assertTrue(evs[-1]['message'].startswith('malformed JSON at line 2: '), evs[-1])

    def test_invalid_records(self):
        base = rec(0)
        drop = lambda k: {x: v for x, v in base.items() if x != k}
        with_ = lambda **kw: dict(base, **kw)
        cases = [
            (drop('time'), 'invalid time format: '),
            (with_(time='yesterday'), 'invalid time format: '),
            (with_(time='2025-01-01'), 'invalid time format: '),
            (with_(time='2025-01-01T00:00:00'), 'invalid time format: '),
            (with_(id='abc'), 'invalid id: '),
            (drop('id'), 'invalid id: '),
            (with_(id='abc', time='bad'), 'invalid time format: '),
            (with_(stream=''), 'stream must be a non-empty string'),
            (drop('stream'), 'stream must be a non-empty string'),
            (with_(type=''), 'type must be a non-empty string'),
            (drop('type'), 'type must be a non-empty string'),
            (with_(pos=-1), 'pos must be non-negative'),
            (with_(gpos=0), 'gpos must be positive'),
            (drop('gpos'), 'gpos must be positive'),
            (with_(gpos=-5, pos=-1), 'pos must be non-negative'),
            (with_(data=[]), 'data must be an object or null'),
            (with_(data='x'), 'data must be an object or null'),
            (with_(data=1), 'data must be an object or null'),
            (with_(meta=5), 'meta must be an object or null'),
            (with_(meta=[]), 'meta must be an object or null'),
            (with_(stream='', type=''), 'stream must be a non-empty string'),
        ]
        for r, reason in cases:
            with self.subTest(record=r, reason=reason):
                evs = self.import_events(ndjson([rec(1, gpos=100, pos=0, stream='ok-1'), r]), 'force=true')
                e = evs[-1]
                self.assertEqual(list(e), ['error', 'message', 'line'])
                self.assertEqual((e['error'], e['line']), ('INVALID_RECORD', 2))
                prefix = 'invalid record at line 2: ' + reason
                if reason.endswith(': '):
                    self.assertTrue(e['message'].startswith(prefix) and len(e['message']) > len(prefix), e)
                else:
                    self.assertEqual(e['message'], prefix)

    def test_overlong_line(self):
        big = jdump(rec(1, data={'x': 'y' * (1 << 20)}))
        evs = self.import_events(ndjson([rec(0)]) + big.encode() + b'\n', 'force=true')
        self.assertEqual(evs[-1]['error'], 'READ_ERROR')
        self.assertEqual(evs[-1]['message'], 'error reading input: bufio.Scanner: token too long')

    def test_line_of_almost_1_mib_is_fine(self):
        r = rec(0, data={'x': 'y' * ((1 << 20) - 300)})
        line = jdump(r).encode()
        self.assertLess(len(line), 1 << 20)
        self.assertDone(self.import_events(line + b'\n'), 1)
        self.assertEqual(len(self.c.call('stream.get', 'a-1')[0][4]['x']), (1 << 20) - 300)

    def test_chunked_import_body(self):
        body = ndjson(rec(i) for i in range(50))
        parts = [body[i:i + 333] for i in range(0, len(body), 333)]
        raw = b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in parts) + b'0\r\n\r\n'
        c = H.Conn(self.srv.port)
        c.send(H.build_request('POST', '/import', raw, [('Transfer-Encoding', 'chunked')], token=self.tok))
        r = c.read_response('POST')
        c.close()
        self.assertDone(events(r.body), 50)

    def test_body_limit(self):
        srv = SMALL
        adm = H.Client(srv.port, H.TOKEN_DEFAULT)
        ns, tok = adm.new_namespace()
        H.Client(srv.port, tok).write('keep-1')
        # Content-Length over the limit: 413 before anything, force never clears
        c = H.Conn(srv.port)
        c.send(b'POST /import?force=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
               b'Content-Length: 2000000\r\n\r\n' % tok.encode())
        r = c.read_response('POST')
        self.assertBody(r, 413, b'{"error":{"code":"PAYLOAD_TOO_LARGE","message":"Request body exceeds 1048576 bytes"}}\n')
        c.close()
        self.assertEqual(H.Client(srv.port, tok).call('stream.version', 'keep-1'), 0)
        # chunked over the limit: a READ_ERROR event, then the connection closes
        body = ndjson(rec(i, stream='c-1', gpos=i + 10) for i in range(9000))
        self.assertGreater(len(body), 1 << 20)
        c = H.Conn(srv.port, timeout=30)
        c.send(b'POST /import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n'
               % tok.encode())
        try:
            for i in range(0, len(body), 32768):
                p = body[i:i + 32768]
                c.send(b'%x\r\n%s\r\n' % (len(p), p))
            c.send(b'0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        head = c.read_head()
        self.assertEqual(head.status, 200)
        data = b''
        try:
            while True:
                ch = c.read_chunk()
                if ch == b'':
                    break
                data += ch
        except (H.ConnClosed, OSError):
            pass
        evs = events(data)
        self.assertEqual(evs[-1]['error'], 'READ_ERROR')
        self.assertEqual(evs[-1]['message'], 'error reading input: request body exceeds 1048576 bytes')
        self.assertTrue(c.eof or c.closed_within(3))
        c.close()
        adm.close()


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------

class RoundTrip(TransferCase):
    def populate(self):
        c = self.c
        raw = [
            '["stream.write","acct-1",{"type":"Opened","data":{ "b" : 1.0e0, "a" : [1, 2.50],\n'
            '"big": 123456789012345678901234567890 },"metadata":{"correlationStreamName":"wf-1","z":null}}]',
            '["stream.write","acct-1",{"type":"Deposited","data":{"amt":"\\u00e9\\/\\"\\n","e":""}}]',
            '["stream.write","\u65e5\u672c-1",{"type":"\U0001f389","data":{"k":"\u00e9"}}]',
            '["stream.write","q\\"uote-1",{"type":"T","data":{"nested":{"x":[{},[],null,true,false]}}}]',
        ]
        for body in raw:
            self.assertEqual(c.rpc_raw(body.encode()).status, 200)
        c.call('stream.writeBatch', 'cart-7', [{'type': 'Added', 'data': {'i': i}} for i in range(5)])
        c.write('acct-2', 'X', {'y': -0.0}, metadata={})
        # imported records without data, with gaps and old times
        evs = self.import_events(ndjson([
            {'id': '0195a7c2-0000-7000-8000-00000000a001', 'stream': 'legacy-1', 'type': 'Old', 'pos': 0,
             'gpos': 100, 'data': None, 'meta': None, 'time': '2020-02-29T23:59:59.999999Z'},
            {'id': '0195a7c2-0000-7000-8000-00000000a002', 'stream': 'legacy-1', 'type': 'Old', 'pos': 7,
             'gpos': 105, 'data': {}, 'meta': {'m': 1}, 'time': '2020-03-01T00:00:00Z'},
        ]))
        self.assertDone(evs, 2)
        c.write('acct-1')
        time.sleep(0.01)
        c.write('legacy-1')

    def test_export_import_export_is_byte_identical(self):
        self.populate()
        ea = self.export_ok()
        self.assertEqual(len(ea.decode().split('\n')) - 1, 14)
        ns_b, tok_b = self.admin.new_namespace()
        evs = self.import_events(ea, tok=tok_b)
        self.assertDone(evs, 14)
        eb = self.export_ok(tok=tok_b)
        self.assertEqual(eb, ea)
        cb = H.Client(self.srv.port, tok_b)
        self.assertEqual(cb.call('category.get', '', {'batchSize': -1}),
                         [m for m in self.c.call('category.get', '', {'batchSize': -1})])
        self.assertEqual(cb.call('ns.categories'), self.c.call('ns.categories'))
        self.assertEqual(cb.call('ns.streams'), self.c.call('ns.streams'))
        # filters on both sides agree
        for q in ('categories=acct', 'categories=legacy,cart', 'until=2021-01-01'):
            self.assertEqual(self.export_ok(q, tok=tok_b), self.export_ok(q))
        # the counters continue after the imported maximum in B as in A
        self.assertEqual(cb.write('acct-1'), self.c.write('acct-1'))
        cb.close()

    def test_forced_reimport_into_the_same_namespace(self):
        self.populate()
        ea = self.export_ok()
        self.assertDone(self.import_events(ea, 'force=true'), 14)
        self.assertEqual(self.export_ok(), ea)


# ---------------------------------------------------------------------------
# Subcommands (9.3, 9.4)
# ---------------------------------------------------------------------------

class Subcommands(TransferCase):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='shim-transfer-')
        self.url = 'http://127.0.0.1:%d' % self.srv.port

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def test_export_to_stdout_and_file(self):
        for i in range(7):
            self.c.write('sub-%d' % (i % 2))
        self.c.write('other-1')
        cp = run_cli(['export', '--url', self.url, '--token', self.tok])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, self.export_ok())
        self.assertIn('Exported: 8 events total\n', cp.stderr.decode())
        out = os.path.join(self.tmp, 'x.ndjson')
        cp = run_cli(['export', '--url=' + self.url, '--token=' + self.tok, '--categories', ' sub , nope',
                      '--output', out])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(open(out, 'rb').read(), self.export_ok('categories=sub'))
        gz = os.path.join(self.tmp, 'x.ndjson.gz')
        cp = run_cli(['export', '--url', self.url, '--token', self.tok, '--gzip', '--output', gz,
                      '--since', '2000-01-01', '--until', '2999-01-01T00:00:00Z'])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(gzip.decompress(open(gz, 'rb').read()), self.export_ok())

    def test_import_from_file_and_stdin(self):
        f = os.path.join(self.tmp, 'in.ndjson')
        with open(f, 'wb') as fh:
            fh.write(ndjson(rec(i) for i in range(1200)))
        cp = run_cli(['import', '--url', self.url, '--token', self.tok, '--input', f])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        err = cp.stderr.decode()
        self.assertIn('Imported: 1000 events (gpos: 1000)...', err)
        self.assertRegex(err, r'Imported: 1200 events in \d+\.\ds\n')
        self.assertEqual(self.admin.call('ns.info', self.ns)['messageCount'], 1200)
        # gzip input, from stdin
        ns2, tok2 = self.admin.new_namespace()
        cp = run_cli(['import', '--url', self.url, '--token', tok2, '--gzip'],
                     input=gzip.compress(ndjson(rec(i) for i in range(3))))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(self.admin.call('ns.info', ns2)['messageCount'], 3)

    def test_import_errors_and_force_prompt(self):
        f = os.path.join(self.tmp, 'dup.ndjson')
        with open(f, 'wb') as fh:
            fh.write(ndjson([rec(0, gpos=10), rec(1, gpos=10)]))
        cp = run_cli(['import', '--url', self.url, '--token', self.tok, '--input', f])
        self.assertEqual(cp.returncode, 1)
        self.assertIn('POSITION_EXISTS: global position already exists: 10 (line 2)', cp.stderr.decode())
        self.c.write('keep-1')
        good = os.path.join(self.tmp, 'good.ndjson')
        with open(good, 'wb') as fh:
            fh.write(ndjson([rec(0)]))
        for answer in (b'n\n', b'\n', b'nope\n', b''):
            cp = run_cli(['import', '--url', self.url, '--token', self.tok, '--input', good, '--force'],
                         input=answer)
            self.assertEqual(cp.returncode, 0, cp.stderr)
            self.assertIn('Are you sure you want to continue? [y/N]: ', cp.stderr.decode() + cp.stdout.decode())
            self.assertIn('Import cancelled.', (cp.stderr + cp.stdout).decode())
            self.assertEqual(self.c.call('stream.version', 'keep-1'), 0)
        cp = run_cli(['import', '--url', self.url, '--token', self.tok, '--input', good, '--force'],
                     input=b' YES \n')
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIsNone(self.c.call('stream.version', 'keep-1'))
        self.assertEqual(self.c.call('stream.version', 'a-1'), 0)

    def test_export_falls_back_to_rpc_without_an_export_endpoint(self):
        import http.server
        import threading as th
        real = self.srv.port
        seen = []

        class Proxy(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                body = b'{"error":{"code":"NOT_FOUND","message":"Endpoint not found"}}'
                self.send_response(404)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get('Content-Length', 0))
                body = self.rfile.read(n)
                seen.append((self.path, self.headers.get('Authorization'), json.loads(body)))
                c = H.Conn(real)
                r = c.request('POST', '/rpc', body, headers=[('Authorization', self.headers.get('Authorization'))])
                c.close()
                self.send_response(r.status)
                self.send_header('Content-Length', str(len(r.body)))
                self.end_headers()
                self.wfile.write(r.body)
        httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Proxy)
        t = th.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            H.write_many(real, self.tok, 'bee-1', 1500)
            for i in range(3):
                self.c.write('ant-%d' % i)
                self.c.write('bee-2')
            url = 'http://127.0.0.1:%d' % httpd.server_address[1]
            cp = run_cli(['export', '--url', url, '--token', self.tok, '--categories', 'bee, ant'])
            self.assertEqual(cp.returncode, 0, cp.stderr)
            self.assertEqual(cp.stdout, self.export_ok('categories=bee') + self.export_ok('categories=ant'))
            self.assertIn('Exported: 1506 events total\n', cp.stderr.decode())
            self.assertTrue(all(path == '/rpc' and auth == 'Bearer ' + self.tok for path, auth, _ in seen), seen[:3])
            calls = [b for _, _, b in seen]
            bee = self.c.call('category.get', 'bee', {'batchSize': -1})
            self.assertEqual(calls[0], ['category.get', 'bee', {'batchSize': 1000, 'position': 0}])
            self.assertEqual(calls[1], ['category.get', 'bee', {'batchSize': 1000, 'position': bee[999][4] + 1}])
            self.assertEqual(calls[2], ['category.get', 'bee', {'batchSize': 1000, 'position': bee[-1][4] + 1}])
            self.assertEqual(calls[3], ['category.get', 'ant', {'batchSize': 1000, 'position': 0}])
            self.assertEqual(len(calls), 5)
            # without --categories: the single category ""
            del seen[:]
            cp = run_cli(['export', '--url', url, '--token', self.tok])
            self.assertEqual(cp.returncode, 0, cp.stderr)
            self.assertEqual(cp.stdout, self.export_ok())
            self.assertEqual(seen[0][2], ['category.get', '', {'batchSize': 1000, 'position': 0}])
        finally:
            httpd.shutdown()
            httpd.server_close()

    def test_cli_errors(self):
        cases = [
            (['export', '--token', self.tok], 1, 'Error: --url is required'),
            (['export', '--url', self.url], 1, 'Error: --token is required'),
            (['import', '--token', self.tok], 1, 'Error: --url is required'),
            (['import', '--url', self.url], 1, 'Error: --token is required'),
            (['export', '--url', self.url, '--token', self.tok, '--since', 'bad'], 1,
             'invalid --since: expected YYYY-MM-DD or RFC3339 format'),
            (['export', '--url', self.url, '--token', self.tok, '--until', 'bad'], 1,
             'invalid --until: expected YYYY-MM-DD or RFC3339 format'),
            (['export', '--url', self.url, '--token', 'invalid'], 1, 'failed to fetch messages: HTTP 401: '),
            (['import', '--url', self.url, '--token', 'invalid', '--input', '/dev/null'], 1,
             'server error (HTTP 401): '),
            (['export', '--bogus'], 2, 'flag provided but not defined: -bogus'),
            (['import', '-x'], 2, 'flag provided but not defined: -x'),
        ]
        for args, rc, msg in cases:
            with self.subTest(args=args):
                cp = run_cli(args, input=b'')
                self.assertEqual(cp.returncode, rc, cp.stderr)
                self.assertIn(msg, cp.stderr.decode())


if __name__ == '__main__':
    H.main(__name__)
