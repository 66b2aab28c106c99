#!/usr/bin/env python3
"""POST /rpc against the real shim-server: every method's success shape,
every validation error of PROTOCOL Appendix B (exact bytes), the Appendix A
exchanges, idempotent writes, expected versions, consumer groups,
correlation, types, writeBatch and the ns.* lifecycle."""

import json
import re
import shutil
import tempfile
import threading
import time

import shimhttp as H
from shimhttp import err_body, jbytes, rpc_body, uid

SRV = None       # test mode, in-memory
STRICT = None    # strict mode, file SQLite
TMP = None


def setUpModule():
    global SRV, STRICT, TMP
    TMP = tempfile.mkdtemp(prefix='shim-rpc-')
    SRV = H.Server()
    STRICT = H.strict_server(TMP)


def tearDownModule():
    for s in (SRV, STRICT):
        if s:
            s.stop()
    shutil.rmtree(TMP, ignore_errors=True)


def inv(msg):
    return err_body('INVALID_REQUEST', msg)


MALFORMED_RE = re.compile(
    rb'^\{"error":\{"code":"INVALID_REQUEST","message":"Malformed JSON request",'
    rb'"details":\{"error":"(?:[^"\\]|\\.)+"\}\}\}\n$')


class NsCase(H.TestCase):
    """Each test gets a fresh namespace (global positions from 1)."""
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

    def check_errors(self, cases):
        """cases: [(args list or raw bytes, expected body bytes[, status])]"""
        for case in cases:
            req, want = case[0], case[1]
            status = case[2] if len(case) > 2 else 400
            body = req if isinstance(req, bytes) else jbytes(req)
            with self.subTest(body=body[:160]):
                r = self.c.rpc_raw(body)
                self.assertBody(r, status, want)

    def assertMalformed(self, r):
        self.assertEqual(r.status, 400, r)
        self.assertRegex(r.body, MALFORMED_RE)
        self.assertEqual(r.header('content-type', '').split(';')[0], 'application/json')

    def assertUnchanged(self):
        info = self.admin.call('ns.info', self.ns)
        self.assertEqual(info['messageCount'], 0, info)


# ---------------------------------------------------------------------------
# Envelope (5.1)
# ---------------------------------------------------------------------------

class Envelope(NsCase):
    def test_empty_and_whitespace_bodies_are_malformed(self):
        for body in (b'', b' ', b' \r\n\t '):
            with self.subTest(body=body):
                self.assertMalformed(self.c.rpc_raw(body))

    def test_object_body_is_exactly_the_appendix_a_error(self):
        r = self.c.rpc_raw(b'{"a":1}')
        self.assertBody(r, 400, b'{"error":{"code":"INVALID_REQUEST","message":"Malformed JSON '
                        b'request","details":{"error":"request body must be a JSON array"}}}\n')

    def test_scalars_are_malformed(self):
        for body in (b'"sys.version"', b'1', b'true', b'false'):
            with self.subTest(body=body):
                self.assertMalformed(self.c.rpc_raw(body))

    def test_strict_json_rejections(self):
        bad = [
            b'\xef\xbb\xbf["sys.version"]',                 # BOM
            b'["sys.version"] // c', b'/* c */["sys.version"]',
            b'["sys.version",]', b'["sys.version",{"a":1,}]',
            b'["sys.version",NaN]', b'["sys.version",Infinity]', b'["sys.version",-Infinity]',
            b'["sys.version",+1]', b'["sys.version",01]', b'["sys.version",-01]',
            b'["sys.version",.5]', b'["sys.version",1.]', b'["sys.version",1e]',
            b'["sys.version",-]', b"['sys.version']", b'["sys.version",\'x\']',
            b'["sys.version","a\x01b"]', b'["sys.version","a\tb"]', b'["sys.version","a\nb"]',
            b'["sys.version","\x00"]',
            b'["sys.version","\xff"]',                      # invalid byte
            b'["sys.version","\xc0\xaf"]',                  # overlong
            b'["sys.version","\xe0\x80\xaf"]',              # overlong
            b'["sys.version","\xed\xa0\x80"]',              # encoded surrogate
            b'["sys.version","\xf4\x90\x80\x80"]',          # above U+10FFFF
            b'["sys.version","\xe2\x82"]',                  # truncated
            b'["sys.version","\x80"]',                      # lone continuation
            b'["sys.version","\\ud800"]', b'["sys.version","\\ud800x"]',
            b'["sys.version","\\udc00"]', b'["sys.version","\\ud800\\u0041"]',
            b'["sys.version","\\ud800\\ud800"]',
            b'["sys.version","\\u0000"]', b'["sys.version",{"\\u0000":1}]',
            b'["sys.version","\\x"]', b'["sys.version","\\u12"]', b'["sys.version","\\U0041"]',
            b'["sys.version",{"a":1,"a":2}]', b'["sys.version",{"a":1,"\\u0061":2}]',
            b'["sys.version",{"x":{"b":1,"b":1}}]',
            b'["sys.version"] x', b'["sys.version"] []', b'["sys.version"]]', b'["sys.version"',
            b'["sys.version",tru]', b'["sys.version",nul]', b'["sys.version" 1]',
            b'["sys.version",\x0c1]',                       # form feed is not JSON space
            b'["sys.version",{a:1}]', b'["sys.version",{"a" 1}]',
        ]
        for body in bad:
            with self.subTest(body=body):
                self.assertMalformed(self.c.rpc_raw(body))
        self.assertEqual(self.c.call('sys.version'), '0.7.0')

    def test_unicode_escapes_and_any_number_are_accepted(self):
        for body in (b'["sys.version","\\ud83c\\udf89","\\u00e9","\\/"]',
                     b'["sys.version",1e999999,-0.0,123456789012345678901234567890]',
                     b' \r\n\t[ "sys.version" ] \n',
                     '["sys.version","日本語🎉"]'.encode()):
            with self.subTest(body=body):
                self.assertBody(self.c.rpc_raw(body), 200, b'"0.7.0"\n')

    def test_nesting_of_512_levels_is_accepted_and_513_rejected(self):
        ok = b'["sys.version",' + b'[' * 511 + b']' * 511 + b']'
        self.assertBody(self.c.rpc_raw(ok), 200, b'"0.7.0"\n')
        bad = b'["sys.version",' + b'[' * 512 + b']' * 512 + b']'
        self.assertMalformed(self.c.rpc_raw(bad))
        bad = b'["sys.version",' + b'{"a":' * 512 + b'1' + b'}' * 512 + b']'
        self.assertMalformed(self.c.rpc_raw(bad))

    def test_deep_nesting_of_100000_is_rejected_without_crashing(self):
        for body in (b'[' * 100000 + b']' * 100000, b'[' * 100000, b'["sys.version",' + b'{"a":' * 100000):
            self.assertMalformed(self.c.rpc_raw(body))
        self.assertTrue(self.srv.alive())
        self.assertEqual(self.c.call('sys.version'), '0.7.0')

    def test_null_and_empty_array_are_missing_method_name(self):
        for body in (b'null', b'[]', b'  [ ] ', b' null\n'):
            with self.subTest(body=body):
                self.assertBody(self.c.rpc_raw(body), 400, inv('Missing method name'))

    def test_non_string_method_name(self):
        for body in (b'[1]', b'[null]', b'[["stream.get"]]', b'[{"m":1}]', b'[true,"x"]'):
            with self.subTest(body=body):
                self.assertBody(self.c.rpc_raw(body), 400, inv('Method name must be a string'))

    def test_unknown_methods_are_404_method_not_found(self):
        for m in ('invalid.method', 'ns.rotateToken', 'stream.delete', 'Stream.write',
                  'stream.write ', '', 'sys.VERSION', 'stream.writebatch', 'a"b\\c'):
            with self.subTest(method=m):
                self.assertBody(self.c.rpc(m), 404,
                                err_body('METHOD_NOT_FOUND', 'Unknown method: ' + m))

    def test_appendix_a_unknown_method_bytes(self):
        self.assertBody(self.c.rpc('invalid.method'), 404,
                        b'{"error":{"code":"METHOD_NOT_FOUND","message":"Unknown method: invalid.method"}}\n')

    def test_content_type_is_not_checked(self):
        for ct in ('text/plain', 'application/x-www-form-urlencoded', 'bogus'):
            r = self.c.rpc_raw(b'["sys.version"]', headers=[('Content-Type', ct)])
            self.assertBody(r, 200, b'"0.7.0"\n')

    def test_response_headers(self):
        r = self.c.rpc('sys.version')
        self.assertEqual(r.header('content-type').split(';')[0], 'application/json')
        self.assertEqual(int(r.header('content-length')), len(r.body))
        self.assertRegex(r.header('date', ''), H.IMF_DATE_RE)
        self.assertRegex(r.header('server', ''), r'^libstreamstore/\d+\.\d+\.\d+')
        lv = H.lib_version()
        if lv:
            self.assertEqual(r.header('server'), 'libstreamstore/' + lv)
        for name in ('X-EventoDB-Token', 'Access-Control-Allow-Origin'):
            self.assertIsNone(r.header(name))


# ---------------------------------------------------------------------------
# sys.*
# ---------------------------------------------------------------------------

class Sys(NsCase):
    def test_sys_version(self):
        self.assertBody(self.c.rpc('sys.version'), 200, b'"0.7.0"\n')
        self.assertBody(self.c.rpc('sys.version', 1, {'x': 2}), 200, b'"0.7.0"\n')

    def test_sys_health(self):
        want = b'{"backend":"unknown","connections":0,"status":"ok"}\n'
        self.assertBody(self.c.rpc('sys.health'), 200, want)
        self.assertBody(self.c.rpc('sys.health', 'ignored', []), 200, want)


# ---------------------------------------------------------------------------
# stream.write (6.3)
# ---------------------------------------------------------------------------

W = 'stream.write'
OKM = {'type': 'T', 'data': {}}


class StreamWrite(NsCase):
    def test_first_write_shape(self):
        r = self.c.rpc(W, 'account-1', {'type': 'Opened', 'data': {'balance': 0}})
        self.assertBody(r, 200, b'{"globalPosition":1,"position":0}\n')
        r = self.c.rpc(W, 'account-1', {'type': 'Opened', 'data': {}}, {})
        self.assertBody(r, 200, b'{"globalPosition":2,"position":1}\n')
        r = self.c.rpc(W, 'other', {'type': 'X', 'data': {}})
        self.assertBody(r, 200, b'{"globalPosition":3,"position":0}\n')

    def test_validation_errors_in_order(self):
        req2 = 'stream.write requires at least 2 arguments: streamName and message'
        sn = 'streamName must be a non-empty string'
        mo = 'message must be an object'
        mt = 'message.type must be a non-empty string'
        md = 'message.data must be an object'
        mm = 'message.metadata must be an object'
        oo = 'options must be an object'
        ids = 'options.id must be a string'
        idu = 'options.id must be a valid UUID'
        ev = 'options.expectedVersion must be a number'
        cases = [
            ([W], inv(req2)), ([W, 's-1'], inv(req2)), ([W, None], inv(req2)),
            ([W, 123, OKM], inv(sn)), ([W, '', OKM], inv(sn)), ([W, None, OKM], inv(sn)),
            ([W, ['s'], OKM], inv(sn)), ([W, {}, OKM], inv(sn)), ([W, True, OKM], inv(sn)),
            ([W, 's-1', None], inv(mo)), ([W, 's-1', []], inv(mo)), ([W, 's-1', 'x'], inv(mo)),
            ([W, 's-1', 1], inv(mo)), ([W, 's-1', [OKM]], inv(mo)),
            ([W, 's-1', {'data': {}}], inv(mt)), ([W, 's-1', {'type': '', 'data': {}}], inv(mt)),
            ([W, 's-1', {'type': 1, 'data': {}}], inv(mt)), ([W, 's-1', {'type': None, 'data': {}}], inv(mt)),
            ([W, 's-1', {'type': ['T'], 'data': {}}], inv(mt)),
            ([W, 's-1', {'type': 'T'}], inv(md)), ([W, 's-1', {'type': 'T', 'data': None}], inv(md)),
            ([W, 's-1', {'type': 'T', 'data': []}], inv(md)), ([W, 's-1', {'type': 'T', 'data': 'x'}], inv(md)),
            ([W, 's-1', {'type': 'T', 'data': 1}], inv(md)), ([W, 's-1', {'type': 'T', 'data': True}], inv(md)),
            ([W, 's-1', {'type': 'T', 'data': {}, 'metadata': None}], inv(mm)),
            ([W, 's-1', {'type': 'T', 'data': {}, 'metadata': []}], inv(mm)),
            ([W, 's-1', {'type': 'T', 'data': {}, 'metadata': 'x'}], inv(mm)),
            ([W, 's-1', {'type': 'T', 'data': {}, 'metadata': 0}], inv(mm)),
            ([W, 's-1', OKM, None], inv(oo)), ([W, 's-1', OKM, []], inv(oo)),
            ([W, 's-1', OKM, 'x'], inv(oo)), ([W, 's-1', OKM, 5], inv(oo)),
            ([W, 's-1', OKM, {'id': 1}], inv(ids)), ([W, 's-1', OKM, {'id': None}], inv(ids)),
            ([W, 's-1', OKM, {'id': {}}], inv(ids)),
            ([W, 's-1', OKM, {'expectedVersion': '1'}], inv(ev)),
            ([W, 's-1', OKM, {'expectedVersion': None}], inv(ev)),
            ([W, 's-1', OKM, {'expectedVersion': True}], inv(ev)),
            ([W, 's-1', OKM, {'expectedVersion': [0]}], inv(ev)),
            # first failure wins
            ([W, '', None], inv(sn)),
            ([W, 's-1', {'type': '', 'data': None}], inv(mt)),
            ([W, 's-1', {'type': 'T', 'data': None, 'metadata': None}], inv(md)),
            ([W, 's-1', {'type': 'T', 'data': {}, 'metadata': 1}, 'x'], inv(mm)),
            ([W, 's-1', OKM, {'id': 1, 'expectedVersion': 'x'}], inv(ids)),
            ([W, 's-1', OKM, {'id': 'zz', 'expectedVersion': 'x'}], inv(idu)),
        ]
        for bad_id in ('abc', '12345678-1234-1234-1234-123456789ab',
                       '12345678-1234-1234-1234-123456789abcd', '12345678123412341234123456789abg',
                       '{12345678-1234-1234-1234-123456789abc', '12345678-1234-1234-1234-123456789abc}',
                       ' 12345678-1234-1234-1234-123456789abc', '12345678-1234-1234-1234_123456789abc',
                       'urn:uuid:12345678123412341234123456789abc', 'uuid:12345678-1234-1234-1234-123456789abc',
                       '1234567-81234-1234-1234-123456789abc', '{12345678123412341234123456789abc}',
                       '12345678-1234-1234-1234-12345678-abc', 'g2345678-1234-1234-1234-123456789abc'):
            cases.append(([W, 's-1', OKM, {'id': bad_id}], inv(idu)))
        self.check_errors(cases)
        self.assertUnchanged()

    def test_accepted_id_spellings_are_canonicalised(self):
        forms = [
            ('550E8400-E29B-41D4-A716-446655440000', '550e8400-e29b-41d4-a716-446655440000'),
            ('{550e8400-e29b-41d4-a716-446655440001}', '550e8400-e29b-41d4-a716-446655440001'),
            ('{550E8400-E29B-41D4-A716-44665544000A}', '550e8400-e29b-41d4-a716-44665544000a'),
            ('URN:UUID:550e8400-e29b-41d4-a716-446655440002', '550e8400-e29b-41d4-a716-446655440002'),
            ('urn:uuid:550e8400-e29b-41d4-a716-446655440003', '550e8400-e29b-41d4-a716-446655440003'),
            ('Urn:Uuid:550E8400-e29b-41d4-a716-446655440009', '550e8400-e29b-41d4-a716-446655440009'),
            ('550e8400e29b41d4a716446655440004', '550e8400-e29b-41d4-a716-446655440004'),
            ('00000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-000000000000'),
            ('FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', 'ffffffff-ffff-ffff-ffff-ffffffffffff'),
        ]
        for i, (given, canon) in enumerate(forms):
            with self.subTest(id=given):
                res = self.c.call(W, 'ids-1', OKM, {'id': given})
                self.assertEqual(res, {'globalPosition': i + 1, 'position': i})
        got = [m[0] for m in self.c.call('stream.get', 'ids-1')]
        self.assertEqual(got, [c for _, c in forms])

    def test_empty_id_means_generated_uuidv7(self):
        self.c.call(W, 'gen-1', OKM, {'id': ''})
        self.c.call(W, 'gen-1', OKM)
        now_ms = int(time.time() * 1000)
        for m in self.c.call('stream.get', 'gen-1'):
            self.assertRegex(m[0], H.UUID7_RE)
            ms = int(m[0].replace('-', '')[:12], 16)
            self.assertLess(abs(ms - now_ms), 120000, m[0])

    def test_unknown_keys_are_ignored(self):
        res = self.c.call(W, 'unk-1', {'type': 'T', 'data': {}, 'extra': 1, 'position': 99, 'id': 5},
                          {'condition': "x'; DROP TABLE messages;--", 'foo': [1], 'position': 'x'})
        self.assertEqual(res, {'globalPosition': 1, 'position': 0})

    def test_payload_bytes_are_kept_exactly(self):
        data = ('{ "b" : 1.0e0 ,\n  "a":[1, 2 ], "big": 123456789012345678901234567890,'
                ' "f": 0.1000000000000000055511151231257827, "s":"\\u00e9\\/\\"", "e":"",'
                ' "n":null, "t":true, "u":"\u65e5\u672c\u8a9e\U0001f389", "neg":-0.0e-7 }')
        meta = '{"z":1,  "a" : {"x":[]} , "correlationStreamName":"x-1"}'
        body = ('["stream.write","pay-1",{"type":"T","data":%s,"metadata":%s}]' % (data, meta)).encode()
        self.assertBody(self.c.rpc_raw(body), 200, b'{"globalPosition":1,"position":0}\n')
        r = self.c.rpc('stream.get', 'pay-1')
        self.assertEqual(r.status, 200)
        pat = (rb'^\[\["[0-9a-f-]{36}","T",0,1,' + re.escape(data.encode()) + b',' +
               re.escape(meta.encode()) + rb',"[^"]+"\]\]\n$')
        self.assertRegex(r.body, pat)
        r = self.c.rpc('category.get', 'pay')
        self.assertIn(b',' + data.encode() + b',' + meta.encode() + b',', r.body)
        r = self.c.rpc('stream.last', 'pay-1')
        self.assertIn(b',' + data.encode() + b',' + meta.encode() + b',', r.body)

    def test_metadata_absent_reads_null_and_empty_object_reads_empty(self):
        self.c.write('md-1')
        self.c.write('md-1', metadata={})
        ms = self.c.call('stream.get', 'md-1')
        self.assertIsNone(ms[0][5])
        self.assertEqual(ms[1][5], {})
        self.assertRegex(self.c.rpc('stream.get', 'md-1').body,
                         rb'^\[\["[^"]+","T",0,1,\{\},null,"[^"]+"\],\["[^"]+","T",1,2,\{\},\{\},"[^"]+"\]\]\n$')

    def test_nested_values_round_trip(self):
        data = {'e': '', 'b': False, 't': True, 'n': None, 'cjk': '\u65e5\u672c', 'emoji': '\U0001f600',
                'arr': [1, 'x', None, {'k': []}], 'nested': {'deep': {'deeper': [[[]]]}},
                'ctl': '\b\f\n\r\t\x01\x1f', 'q': '"\\/'}
        self.c.write('nest-1', data=data)
        self.assertEqual(self.c.call('stream.get', 'nest-1')[0][4], data)

    def test_large_payload_round_trips(self):
        data = {'blob': 'x' * 150000, 'n': list(range(2000))}
        self.c.write('big-1', data=data)
        self.assertEqual(self.c.call('stream.get', 'big-1')[0][4], data)

    def test_message_time_format_and_clock(self):
        before = time.time()
        self.c.write('time-1')
        after = time.time()
        m = self.c.call('stream.get', 'time-1')[0]
        self.assertRegex(m[6], H.MSG_TS_RE)
        t = H.ts_micros(m[6]) / 1e9
        self.assertTrue(before - 2 <= t <= after + 2, (before, m[6], after))

    def test_any_non_empty_stream_name_is_stored_verbatim(self):
        names = ["x'; DROP TABLE messages;--", 'a%_*-1', '../../etc/passwd', 'with space-1',
                 '-lead', 'trail-', 'a-b-c', 'uni\u00e9-\U0001f600', 'q"uote\\-1', 'x' * 2000]
        for i, n in enumerate(names):
            with self.subTest(name=n[:40]):
                self.assertEqual(self.c.write(n), {'globalPosition': i + 1, 'position': 0})
                got = self.c.call('stream.get', n)
                self.assertEqual(len(got), 1)
                self.assertEqual(self.c.call('stream.version', n), 0)
        self.assertEqual(self.c.call('stream.get', 'a__*-1'), [])
        self.assertEqual(self.c.call('stream.get', 'a%%*-1'), [])


class ExpectedVersion(NsCase):
    def test_appendix_a_conflict_bytes(self):
        self.c.write('account-42', 'Opened', {'balance': 0})
        r = self.c.rpc(W, 'account-42', {'type': 'X', 'data': {}}, {'expectedVersion': 5})
        self.assertBody(r, 409, b'{"error":{"code":"STREAM_VERSION_CONFLICT","message":"Expected '
                        b'version 5, stream is at version 0","details":{"actual":0,"expected":5}}}\n')
        r = self.c.rpc(W, 'account-99', {'type': 'X', 'data': {}}, {'expectedVersion': -1})
        self.assertBody(r, 200, b'{"globalPosition":2,"position":0}\n')

    def conflict(self, stream, expected, actual):
        return err_body('STREAM_VERSION_CONFLICT',
                        'Expected version %d, stream is at version %d' % (expected, actual),
                        {'actual': actual, 'expected': expected})

    def test_rules_of_7_3(self):
        # empty stream: only -1 matches
        self.assertBody(self.c.rpc(W, 'ev-1', OKM, {'expectedVersion': 0}), 409,
                        self.conflict('ev-1', 0, -1))
        self.assertBody(self.c.rpc(W, 'ev-1', OKM, {'expectedVersion': -2}), 409,
                        self.conflict('ev-1', -2, -1))
        self.assertEqual(self.c.call(W, 'ev-1', OKM, {'expectedVersion': -1}),
                         {'globalPosition': 1, 'position': 0})
        self.assertBody(self.c.rpc(W, 'ev-1', OKM, {'expectedVersion': -1}), 409,
                        self.conflict('ev-1', -1, 0))
        self.assertBody(self.c.rpc(W, 'ev-1', OKM, {'expectedVersion': 1}), 409,
                        self.conflict('ev-1', 1, 0))
        self.assertEqual(self.c.call(W, 'ev-1', OKM, {'expectedVersion': 0}),
                         {'globalPosition': 2, 'position': 1})
        self.assertEqual(self.c.call('stream.version', 'ev-1'), 1)

    def test_number_conversion_of_1_4(self):
        self.assertEqual(self.c.call(W, 'num-1', OKM, {'expectedVersion': -1.5}),
                         {'globalPosition': 1, 'position': 0})            # -1.5 -> -1
        self.assertEqual(self.c.call(W, 'num-1', OKM, {'expectedVersion': 0.9}),
                         {'globalPosition': 2, 'position': 1})            # 0.9 -> 0
        self.assertEqual(self.c.call(W, 'num-1', OKM, {'expectedVersion': 1.9}),
                         {'globalPosition': 3, 'position': 2})            # 1.9 -> 1
        r = self.c.rpc_raw(b'["stream.write","num-1",{"type":"T","data":{}},{"expectedVersion":2e0}]')
        self.assertBody(r, 200, b'{"globalPosition":4,"position":3}\n')
        r = self.c.rpc_raw(b'["stream.write","num-1",{"type":"T","data":{}},{"expectedVersion":3.0e-0}]')
        self.assertBody(r, 200, b'{"globalPosition":5,"position":4}\n')
        # -0.5 -> 0 on an empty stream: conflict, details show the converted value
        self.assertBody(self.c.rpc(W, 'num-2', OKM, {'expectedVersion': -0.5}), 409,
                        self.conflict('num-2', 0, -1))
        r = self.c.rpc_raw(b'["stream.write","num-2",{"type":"T","data":{}},{"expectedVersion":9223372036854775808}]')
        self.assertBody(r, 409, self.conflict('num-2', 9223372036854775807, -1))
        r = self.c.rpc_raw(b'["stream.write","num-2",{"type":"T","data":{}},{"expectedVersion":-1e400}]')
        self.assertBody(r, 409, self.conflict('num-2', -9223372036854775808, -1))
        r = self.c.rpc_raw(b'["stream.write","num-2",{"type":"T","data":{}},{"expectedVersion":1e400}]')
        self.assertBody(r, 409, self.conflict('num-2', 9223372036854775807, -1))

    def test_concurrent_writers_with_the_same_expected_version(self):
        self.c.write('hot-1')
        n = 12
        results = [None] * n
        barrier = threading.Barrier(n)

        def worker(i):
            cl = H.Client(self.srv.port, self.tok)
            barrier.wait()
            results[i] = cl.rpc(W, 'hot-1', {'type': 'T', 'data': {'i': i}}, {'expectedVersion': 0})
            cl.close()
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        ok = [r for r in results if r.status == 200]
        self.assertEqual(len(ok), 1, [r.body for r in results])
        self.assertEqual(json.loads(ok[0].body)['position'], 1)
        for r in results:
            if r.status != 200:
                self.assertBody(r, 409, self.conflict('hot-1', 0, 1))
        self.assertEqual(self.c.call('stream.version', 'hot-1'), 1)

    def test_concurrent_appends_without_expected_version_are_gapless(self):
        n = 50
        results = [None] * n
        barrier = threading.Barrier(n)

        def worker(i):
            cl = H.Client(self.srv.port, self.tok)
            barrier.wait()
            results[i] = cl.call(W, 'par-1', {'type': 'T', 'data': {'i': i}})
            cl.close()
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        self.assertEqual(sorted(r['position'] for r in results), list(range(n)))
        self.assertEqual(len(set(r['globalPosition'] for r in results)), n)
        msgs = self.c.call('stream.get', 'par-1')
        self.assertEqual([m[2] for m in msgs], list(range(n)))
        gp = [m[3] for m in msgs]
        self.assertEqual(gp, sorted(gp))
        # the returned positions match what was stored
        by_i = {m[4]['i']: (m[2], m[3]) for m in msgs}
        for i, r in enumerate(results):
            self.assertEqual(by_i[i], (r['position'], r['globalPosition']))


class Idempotency(NsCase):
    def test_appendix_a_client_supplied_ids(self):
        self.c.write('account-42', 'Opened', {'balance': 0})
        self.c.write('account-99', 'X')
        r = self.c.rpc_raw(b'["stream.write","order-1",{"type":"Placed","data":{"total":99.99}},'
                           b'{"id":"12345678-1234-1234-1234-123456789ABC"}]')
        self.assertBody(r, 200, b'{"globalPosition":3,"position":0}\n')
        r = self.c.rpc_raw(b'["stream.write","order-1",{"type":"Placed","data":{"total":99.99}},'
                           b'{"id":"12345678-1234-1234-1234-123456789abc"}]')
        self.assertBody(r, 200, b'{"globalPosition":3,"position":0}\n')
        r = self.c.rpc_raw(b'["stream.write","order-1",{"type":"Cancelled","data":{}},'
                           b'{"id":"12345678-1234-1234-1234-123456789abc"}]')
        self.assertBody(r, 409, b'{"error":{"code":"DUPLICATE_MESSAGE_ID","message":"Message ID '
                        b'\'12345678-1234-1234-1234-123456789abc\' already exists","details":{"id":'
                        b'"12345678-1234-1234-1234-123456789abc"}}}\n')
        r = self.c.rpc_raw(b'["stream.write","order-1",{"type":"Placed","data":{}},{"id":"abc"}]')
        self.assertBody(r, 400, b'{"error":{"code":"INVALID_REQUEST","message":"options.id must be a valid UUID"}}\n')
        msgs = self.c.call('stream.get', 'order-1')
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0][0], '12345678-1234-1234-1234-123456789abc')
        self.assertEqual(self.admin.call('ns.info', self.ns)['messageCount'], 3)

    def dup(self, id_):
        return err_body('DUPLICATE_MESSAGE_ID', "Message ID '%s' already exists" % id_, {'id': id_})

    def test_json_equal_content_is_an_idempotent_retry(self):
        u = 'aaaaaaaa-1111-4111-8111-000000000001'
        body1 = (b'["stream.write","idem-1",{"type":"T","data":{"a":1,"b":[1,2],"c":"\\u00e9"},'
                 b'"metadata":{"m":1}},{"id":"%s"}]' % u.encode())
        self.assertBody(self.c.rpc_raw(body1), 200, b'{"globalPosition":1,"position":0}\n')
        self.c.write('idem-1')
        variants = [
            b'["stream.write","idem-1",{"type":"T","data":{"b":[1,2.0],"c":"\xc3\xa9","a":1e0},'
            b'"metadata":{"m":10e-1}},{"id":"%s"}]' % u.upper().encode(),
            b'["stream.write","idem-1",{"data":{ "c" : "\\u00E9" , "a" : 1.00, "b":[ 1 , 2 ]},'
            b'"metadata":{"m":1},"type":"T"},{"id":"{%s}","expectedVersion":77}]' % u.encode(),
        ]
        for v in variants:
            with self.subTest(body=v):
                self.assertBody(self.c.rpc_raw(v), 200, b'{"globalPosition":1,"position":0}\n')
        self.assertEqual(len(self.c.call('stream.get', 'idem-1')), 2)

    def test_same_id_with_different_content_is_409(self):
        u = 'aaaaaaaa-1111-4111-8111-000000000002'
        self.c.call(W, 'dup-1', {'type': 'T', 'data': {'a': 1}, 'metadata': {'m': 1}}, {'id': u})
        cases = [
            ('dup-2', {'type': 'T', 'data': {'a': 1}, 'metadata': {'m': 1}}),   # other stream
            ('dup-1', {'type': 'U', 'data': {'a': 1}, 'metadata': {'m': 1}}),   # other type
            ('dup-1', {'type': 'T', 'data': {'a': 2}, 'metadata': {'m': 1}}),   # other data
            ('dup-1', {'type': 'T', 'data': {'a': 1, 'b': None}, 'metadata': {'m': 1}}),
            ('dup-1', {'type': 'T', 'data': {'a': 1}}),                         # no metadata
            ('dup-1', {'type': 'T', 'data': {'a': 1}, 'metadata': {'m': '1'}}),
            ('dup-1', {'type': 'T', 'data': {'a': 1}, 'metadata': {}}),
        ]
        for stream, msg in cases:
            with self.subTest(stream=stream, msg=msg):
                # the duplicate check precedes the version check
                self.assertBody(self.c.rpc(W, stream, msg, {'id': u, 'expectedVersion': 50}), 409, self.dup(u))
                self.assertBody(self.c.rpc(W, stream, msg, {'id': u.upper()}), 409, self.dup(u))
        self.assertEqual(self.admin.call('ns.info', self.ns)['messageCount'], 1)

    def test_concurrent_identical_writes_store_one_message(self):
        u = 'aaaaaaaa-1111-4111-8111-000000000003'
        self.c.write('race-1')
        n = 10
        res = [None] * n
        barrier = threading.Barrier(n)

        def worker(i):
            cl = H.Client(self.srv.port, self.tok)
            barrier.wait()
            res[i] = cl.rpc(W, 'race-1', {'type': 'T', 'data': {'x': 1}}, {'id': u})
            cl.close()
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        for r in res:
            self.assertBody(r, 200, b'{"globalPosition":2,"position":1}\n')
        self.assertEqual(len(self.c.call('stream.get', 'race-1')), 2)

    def test_ids_are_unique_across_streams_not_across_namespaces(self):
        u = 'aaaaaaaa-1111-4111-8111-000000000004'
        self.c.call(W, 'a-1', OKM, {'id': u})
        ns2, tok2 = self.admin.new_namespace()
        c2 = H.Client(self.srv.port, tok2)
        self.assertEqual(c2.call(W, 'b-1', OKM, {'id': u}), {'globalPosition': 1, 'position': 0})
        self.assertBody(self.c.rpc(W, 'b-1', OKM, {'id': u}), 409, self.dup(u))
        c2.close()


# ---------------------------------------------------------------------------
# stream.get / stream.last / stream.version
# ---------------------------------------------------------------------------

G = 'stream.get'


class StreamRead(NsCase):
    def setUp(self):
        super().setUp()
        # acc-1: types A B A B A at positions 0..4, interleaved with others
        self.g = {}
        seq = [('acc-1', 'A'), ('acc-2', 'A'), ('acc-1', 'B'), ('acc', 'A'), ('acc-1', 'A'),
               ('acc-1+x', 'A'), ('acc-1', 'B'), ('acc-1', 'A')]
        for i, (s, t) in enumerate(seq):
            r = self.c.write(s, t, {'i': i})
            if s == 'acc-1':
                self.g[r['position']] = r['globalPosition']

    def positions(self, *args):
        return [m[2] for m in self.c.call(G, *args)]

    def test_validation_errors(self):
        bs = 'options.batchSize must be <= 10000 or -1 for unlimited'
        ty = 'options.types must be an array of 1 to 100 non-empty strings'
        cases = [
            ([G], inv('stream.get requires at least 1 argument: streamName')),
            ([G, ''], inv('streamName must be a non-empty string')),
            ([G, 1], inv('streamName must be a non-empty string')),
            ([G, None], inv('streamName must be a non-empty string')),
            ([G, 'acc-1', None], inv('options must be an object')),
            ([G, 'acc-1', []], inv('options must be an object')),
            ([G, 'acc-1', 'x'], inv('options must be an object')),
            ([G, 'acc-1', {'position': '1'}], inv('options.position must be a number')),
            ([G, 'acc-1', {'position': None}], inv('options.position must be a number')),
            ([G, 'acc-1', {'position': True}], inv('options.position must be a number')),
            ([G, 'acc-1', {'globalPosition': '1'}], inv('options.globalPosition must be a number')),
            ([G, 'acc-1', {'globalPosition': None}], inv('options.globalPosition must be a number')),
            ([G, 'acc-1', {'batchSize': '1'}], inv('options.batchSize must be a number')),
            ([G, 'acc-1', {'batchSize': None}], inv('options.batchSize must be a number')),
            ([G, 'acc-1', {'batchSize': 10001}], inv(bs)),
            ([G, 'acc-1', {'batchSize': 20000}], inv(bs)),
            (b'["stream.get","acc-1",{"batchSize":1e400}]', inv(bs)),
            (b'["stream.get","acc-1",{"batchSize":10001.5}]', inv(bs)),
            ([G, 'acc-1', {'types': []}], inv(ty)),
            ([G, 'acc-1', {'types': ['']}], inv(ty)),
            ([G, 'acc-1', {'types': ['A', '']}], inv(ty)),
            ([G, 'acc-1', {'types': 'A'}], inv(ty)),
            ([G, 'acc-1', {'types': None}], inv(ty)),
            ([G, 'acc-1', {'types': [1]}], inv(ty)),
            ([G, 'acc-1', {'types': [None]}], inv(ty)),
            ([G, 'acc-1', {'types': ['A'] * 101}], inv(ty)),
            ([G, 'acc-1', {'types': {}}], inv(ty)),
            # order
            ([G, 'acc-1', {'position': 'x', 'globalPosition': 'y', 'batchSize': 'z'}],
             inv('options.position must be a number')),
            ([G, 'acc-1', {'globalPosition': 'y', 'batchSize': 'z'}],
             inv('options.globalPosition must be a number')),
            ([G, 'acc-1', {'batchSize': 20000, 'types': []}], inv(bs)),
            ([G, '', {'position': 'x'}], inv('streamName must be a non-empty string')),
        ]
        self.check_errors(cases)

    def test_appendix_a_batch_size_error_bytes(self):
        r = self.c.rpc(G, 'account-42', {'batchSize': 20000})
        self.assertBody(r, 400, b'{"error":{"code":"INVALID_REQUEST","message":"options.batchSize '
                        b'must be <= 10000 or -1 for unlimited"}}\n')

    def test_shape_and_order(self):
        msgs = self.c.call(G, 'acc-1')
        self.assertEqual([m[2] for m in msgs], [0, 1, 2, 3, 4])
        self.assertEqual([m[1] for m in msgs], ['A', 'B', 'A', 'B', 'A'])
        self.assertEqual([m[3] for m in msgs], [self.g[i] for i in range(5)])
        for m in msgs:
            self.assertEqual(len(m), 7)
            self.assertRegex(m[0], H.UUID7_RE)
            self.assertIsInstance(m[4], dict)
            self.assertIsNone(m[5])
            self.assertRegex(m[6], H.MSG_TS_RE)

    def test_missing_stream_is_an_empty_array(self):
        self.assertBody(self.c.rpc(G, 'nope-1'), 200, b'[]\n')
        self.assertBody(self.c.rpc(G, 'acc-1', {'position': 5}), 200, b'[]\n')

    def test_exact_stream_name_only(self):
        self.assertEqual(len(self.c.call(G, 'acc')), 1)
        self.assertEqual(len(self.c.call(G, 'acc-1+x')), 1)
        self.assertEqual(len(self.c.call(G, 'acc-2')), 1)
        self.assertEqual(self.c.call(G, 'acc-'), [])
        self.assertEqual(self.c.call(G, 'ACC-1'), [])

    def test_position_and_global_position(self):
        self.assertEqual(self.positions('acc-1', {'position': 2}), [2, 3, 4])
        self.assertEqual(self.positions('acc-1', {'position': -5}), [0, 1, 2, 3, 4])
        self.assertEqual(self.positions('acc-1', {'position': 1.9}), [1, 2, 3, 4])
        self.assertEqual(self.positions('acc-1', {'position': -0.5}), [0, 1, 2, 3, 4])
        self.assertBody(self.c.rpc_raw(b'["stream.get","acc-1",{"position":9223372036854775808}]'), 200, b'[]\n')
        self.assertEqual([m[2] for m in json.loads(self.c.rpc_raw(
            b'["stream.get","acc-1",{"position":4e0}]').body)], [4])
        self.assertBody(self.c.rpc_raw(b'["stream.get","acc-1",{"position":5e0}]'), 200, b'[]\n')
        g2 = self.g[2]
        self.assertEqual(self.positions('acc-1', {'globalPosition': g2}), [2, 3, 4])
        self.assertEqual(self.positions('acc-1', {'globalPosition': g2, 'position': 100}), [2, 3, 4])
        self.assertEqual(self.positions('acc-1', {'globalPosition': g2 + 1, 'position': 0}), [3, 4])
        self.assertEqual(self.positions('acc-1', {'globalPosition': 0}), [0, 1, 2, 3, 4])

    def test_batch_size(self):
        self.assertEqual(self.positions('acc-1', {'batchSize': 2}), [0, 1])
        self.assertEqual(self.positions('acc-1', {'batchSize': 2, 'position': 3}), [3, 4])
        for bs in (0, -1, -7, 10000, 1e3, -0.5):
            with self.subTest(batchSize=bs):
                self.assertEqual(self.positions('acc-1', {'batchSize': bs}), [0, 1, 2, 3, 4])
        self.assertBody(self.c.rpc_raw(b'["stream.get","acc","{}"]'), 400, inv('options must be an object'))
        self.assertEqual(len(json.loads(self.c.rpc_raw(b'["stream.get","acc-1",{"batchSize":1.9}]').body)), 1)
        self.assertEqual(len(json.loads(self.c.rpc_raw(b'["stream.get","acc-1",{"batchSize":-1e400}]').body)), 5)

    def test_default_batch_size_is_1000_and_minus_one_is_unlimited(self):
        H.write_many(self.srv.port, self.tok, 'many-1', 1003)
        self.assertEqual(len(self.c.call(G, 'many-1')), 1000)
        self.assertEqual(len(self.c.call(G, 'many-1', {'batchSize': -1})), 1003)
        self.assertEqual(self.positions('many-1', {'position': 1000}), [1000, 1001, 1002])

    def test_types_extension(self):
        self.assertEqual(self.positions('acc-1', {'types': ['A']}), [0, 2, 4])
        self.assertEqual(self.positions('acc-1', {'types': ['B', 'B']}), [1, 3])
        self.assertEqual(self.positions('acc-1', {'types': ['A', 'B']}), [0, 1, 2, 3, 4])
        self.assertEqual(self.positions('acc-1', {'types': ['A'], 'batchSize': 2}), [0, 2])
        self.assertEqual(self.positions('acc-1', {'types': ['A'], 'position': 1}), [2, 4])
        self.assertEqual(self.positions('acc-1', {'types': ['Z']}), [])
        self.assertEqual(self.positions('acc-1', {'types': ['a']}), [])
        self.assertEqual(self.positions('acc-1', {'types': ['X%d' % i for i in range(99)] + ['B']}), [1, 3])

    def test_stream_last(self):
        L = 'stream.last'
        self.check_errors([
            ([L], inv('stream.last requires at least 1 argument: streamName')),
            ([L, ''], inv('streamName must be a non-empty string')),
            ([L, 5], inv('streamName must be a non-empty string')),
            ([L, 'acc-1', None], inv('options must be an object')),
            ([L, 'acc-1', 'x'], inv('options must be an object')),
            ([L, 'acc-1', {'type': 1}], inv('options.type must be a string')),
            ([L, 'acc-1', {'type': None}], inv('options.type must be a string')),
            ([L, 'acc-1', {'type': ['A']}], inv('options.type must be a string')),
        ])
        last = self.c.call(L, 'acc-1')
        self.assertEqual((last[1], last[2], last[3]), ('A', 4, self.g[4]))
        self.assertEqual(len(last), 7)
        self.assertEqual(self.c.call(L, 'acc-1', {'type': 'B'})[2], 3)
        self.assertEqual(self.c.call(L, 'acc-1', {'type': ''})[2], 4)
        self.assertEqual(self.c.call(L, 'acc-1', {'types': ['B']})[2], 4)   # types does not apply
        self.assertBody(self.c.rpc(L, 'acc-1', {'type': 'Z'}), 200, b'null\n')
        self.assertBody(self.c.rpc(L, 'nope-1'), 200, b'null\n')
        self.assertEqual(self.c.call(L, 'acc-1'), self.c.call(G, 'acc-1')[-1])

    def test_stream_version(self):
        V = 'stream.version'
        self.check_errors([
            ([V], inv('stream.version requires 1 argument: streamName')),
            ([V, ''], inv('streamName must be a non-empty string')),
            ([V, None], inv('streamName must be a non-empty string')),
            ([V, 7], inv('streamName must be a non-empty string')),
        ])
        self.assertBody(self.c.rpc(V, 'acc-1'), 200, b'4\n')
        self.assertBody(self.c.rpc(V, 'acc'), 200, b'0\n')
        self.assertBody(self.c.rpc(V, 'nope-1'), 200, b'null\n')


# ---------------------------------------------------------------------------
# category.get, correlation, consumer groups (6.7, 7.6, 7.7)
# ---------------------------------------------------------------------------

C = 'category.get'


class CategoryGet(NsCase):
    def streams(self, cat, opts=None):
        args = [C, cat] + ([opts] if opts is not None else [])
        return [m[1] for m in self.c.call(*args)]

    def test_validation_errors(self):
        cg = lambda **k: {'consumerGroup': k}
        bs = 'options.batchSize must be <= 10000 or -1 for unlimited'
        cases = [
            ([C], inv('category.get requires at least 1 argument: categoryName')),
            ([C, 1], inv('categoryName must be a string')),
            ([C, None], inv('categoryName must be a string')),
            ([C, ['a']], inv('categoryName must be a string')),
            ([C, 'c', None], inv('options must be an object')),
            ([C, 'c', []], inv('options must be an object')),
            ([C, 'c', {'position': '1'}], inv('options.position must be a number')),
            ([C, 'c', {'globalPosition': None}], inv('options.globalPosition must be a number')),
            ([C, 'c', {'batchSize': 'x'}], inv('options.batchSize must be a number')),
            ([C, 'c', {'batchSize': 10001}], inv(bs)),
            ([C, 'c', {'correlation': 1}], inv('options.correlation must be a string')),
            ([C, 'c', {'correlation': None}], inv('options.correlation must be a string')),
            ([C, 'c', {'consumerGroup': 1}], inv('options.consumerGroup must be an object')),
            ([C, 'c', {'consumerGroup': []}], inv('options.consumerGroup must be an object')),
            ([C, 'c', {'consumerGroup': None}], inv('options.consumerGroup must be an object')),
            ([C, 'c', {'consumerGroup': 'x'}], inv('options.consumerGroup must be an object')),
            ([C, 'c', cg(member='0', size=2)], inv('options.consumerGroup.member must be a number')),
            ([C, 'c', cg(member=None, size=2)], inv('options.consumerGroup.member must be a number')),
            ([C, 'c', cg(member='x', size='y')], inv('options.consumerGroup.member must be a number')),
            ([C, 'c', cg(member=0, size='2')], inv('options.consumerGroup.size must be a number')),
            ([C, 'c', cg(member=0, size=None)], inv('options.consumerGroup.size must be a number')),
            ([C, 'c', cg(member=-1, size=2)], inv('options.consumerGroup.member must be non-negative')),
            ([C, 'c', cg(member=-1, size=0)], inv('options.consumerGroup.member must be non-negative')),
            ([C, 'c', cg(member=0, size=0)], inv('options.consumerGroup.size must be positive')),
            ([C, 'c', cg(member=0, size=-1)], inv('options.consumerGroup.size must be positive')),
            ([C, 'c', cg(member=5, size=0)], inv('options.consumerGroup.size must be positive')),
            ([C, 'c', cg(member=2, size=2)], inv('options.consumerGroup.member must be < size')),
            ([C, 'c', cg(member=5, size=2)], inv('options.consumerGroup.member must be < size')),
            ([C, 'c', cg(member=1.5, size=1.9)], inv('options.consumerGroup.member must be < size')),
            ([C, 'c', cg(member=0)], inv('options.consumerGroup requires both member and size')),
            ([C, 'c', cg(size=2)], inv('options.consumerGroup requires both member and size')),
            ([C, 'c', {'types': []}], inv('options.types must be an array of 1 to 100 non-empty strings')),
            ([C, 'c', {'types': ['']}], inv('options.types must be an array of 1 to 100 non-empty strings')),
            # order
            ([C, 'c', {'correlation': 1, 'consumerGroup': 1}], inv('options.correlation must be a string')),
            ([C, 'c', {'batchSize': 20000, 'correlation': 1}], inv(bs)),
            ([C, 'c', {'position': 'x', 'correlation': 1}], inv('options.position must be a number')),
            ([C, 'c', {'consumerGroup': {'member': 0}, 'types': []}],
             inv('options.consumerGroup requires both member and size')),
            ([C, 'c', {'consumerGroup': {'member': 1, 'size': 1}, 'types': []}],
             inv('options.consumerGroup.member must be < size')),
            ([C, 1, None], inv('categoryName must be a string')),
        ]
        self.check_errors(cases)

    def test_shape_positions_and_defaults(self):
        r1 = self.c.write('cat-1', 'A', {'i': 1})
        self.c.write('other-1')
        r2 = self.c.write('cat-2', 'B', {'i': 2}, metadata={'m': 1})
        r3 = self.c.write('cat-1', 'C', {'i': 3})
        msgs = self.c.call(C, 'cat')
        self.assertEqual([m[1:5] for m in msgs], [['cat-1', 'A', 0, 1], ['cat-2', 'B', 0, 3],
                                                  ['cat-1', 'C', 1, 4]])
        for m in msgs:
            self.assertEqual(len(m), 8)
            self.assertRegex(m[0], H.UUID7_RE)
            self.assertRegex(m[7], H.MSG_TS_RE)
        self.assertEqual(msgs[1][5:7], [{'i': 2}, {'m': 1}])
        self.assertEqual(self.c.call(C, 'cat', {'position': 0}), msgs)
        self.assertEqual(self.c.call(C, 'cat', {'position': 1}), msgs)
        self.assertEqual(self.c.call(C, 'cat', {'position': -100}), msgs)
        self.assertEqual([m[4] for m in self.c.call(C, 'cat', {'position': 2})], [3, 4])
        self.assertEqual([m[4] for m in self.c.call(C, 'cat', {'position': 4})], [4])
        self.assertEqual(self.c.call(C, 'cat', {'position': 5}), [])
        self.assertEqual([m[4] for m in self.c.call(C, 'cat', {'position': 100, 'globalPosition': 3})], [3, 4])
        self.assertEqual([m[4] for m in self.c.call(C, 'cat', {'batchSize': 2})], [1, 3])
        self.assertEqual([m[4] for m in self.c.call(C, 'cat', {'batchSize': -1})], [1, 3, 4])
        self.assertEqual([m[4] for m in self.c.call(C, 'cat', {'types': ['A', 'C']})], [1, 4])
        self.assertEqual([m[4] for m in self.c.call(C, 'cat', {'types': ['C'], 'batchSize': 1})], [4])
        self.assertBody(self.c.rpc(C, 'cat-1'), 200, b'[]\n')
        self.assertBody(self.c.rpc(C, 'nope'), 200, b'[]\n')
        self.assertEqual([m[4] for m in self.c.call(C, '')], [1, 2, 3, 4])
        self.assertEqual(self.c.call(C, 'cat', {'consumerGroup': {}}), msgs)
        self.assertEqual((r1['globalPosition'], r2['globalPosition'], r3['globalPosition']), (1, 3, 4))

    def test_category_matching_is_exact(self):
        names = ['account-1', 'account:command-1', 'Account-1', 'accountLog-1', 'account',
                 'account-1+x', 'account-', 'acc-1', 'account-2-3', '-x']
        for n in names:
            self.c.write(n)
        self.assertEqual(self.streams('account'), ['account-1', 'account', 'account-1+x', 'account-', 'account-2-3'])
        self.assertEqual(self.streams('account:command'), ['account:command-1'])
        self.assertEqual(self.streams('Account'), ['Account-1'])
        self.assertEqual(self.streams('accountLog'), ['accountLog-1'])
        self.assertEqual(self.streams('acc'), ['acc-1'])
        self.assertEqual(self.streams('account%'), [])
        self.assertEqual(self.streams('account_'), [])
        self.assertEqual(self.streams('accoun'), [])
        self.assertEqual(len(self.streams('')), len(names))

    def test_correlation_filter(self):
        metas = [('a-1', {'correlationStreamName': 'workflow-abc'}),
                 ('a-2', {'correlationStreamName': 'workflow-xyz'}),
                 ('a-3', {'correlationStreamName': 'process-123'}),
                 ('a-4', None),
                 ('a-5', {'correlationStreamName': 123}),
                 ('a-6', {'x': {'correlationStreamName': 'workflow-1'}}),
                 ('a-7', {'note': '"correlationStreamName":"workflow-9"'}),
                 ('a-8', {'correlationStreamName': 'workflow'}),
                 ('a-9', {'correlationStreamName': None}),
                 ('a-10', {'correlationStreamName': ['workflow-1']}),
                 ('a-11', {'correlationStreamName': 'Workflow-1'})]
        for s, m in metas:
            if m is None:
                self.c.write(s)
            else:
                self.c.write(s, metadata=m)
        self.assertEqual(self.streams('a', {'correlation': 'workflow'}), ['a-1', 'a-2', 'a-8'])
        self.assertEqual(self.streams('a', {'correlation': 'process'}), ['a-3'])
        self.assertEqual(self.streams('a', {'correlation': 'work'}), [])
        self.assertEqual(self.streams('a', {'correlation': 'workflow-abc'}), [])
        self.assertEqual(self.streams('a', {'correlation': ''}), [s for s, _ in metas])
        self.assertEqual(self.streams('', {'correlation': 'process'}), ['a-3'])
        self.assertEqual(self.streams('a', {'correlation': 'workflow', 'batchSize': 2}), ['a-1', 'a-2'])

    def test_consumer_group_consequences_of_7_7(self):
        for i in range(6):
            self.c.write('job-%d' % i)
        self.assertEqual(self.streams('job', {'consumerGroup': {'member': 0, 'size': 2}}), ['job-1', 'job-3'])
        self.assertEqual(self.streams('job', {'consumerGroup': {'member': 1, 'size': 2}}),
                         ['job-0', 'job-2', 'job-4', 'job-5'])
        for i in range(1, 5):
            self.c.write('task-%d' % i)
        m0 = self.streams('task', {'consumerGroup': {'member': 0, 'size': 2}})
        m1 = self.streams('task', {'consumerGroup': {'member': 1, 'size': 2}})
        self.assertEqual((m0, m1), (['task-1', 'task-3'], ['task-2', 'task-4']))
        for i in range(12):
            self.c.write('payment-stream%d' % i)
        want = [1, 2, 2, 1, 2, 0, 1, 1, 0, 1, 0, 1]
        got = [None] * 12
        for m in range(3):
            for s in self.streams('payment', {'consumerGroup': {'member': m, 'size': 3}}):
                self.assertIsNone(got[int(s[len('payment-stream'):])])
                got[int(s[len('payment-stream'):])] = m
        self.assertEqual(got, want)

    def test_consumer_group_table_rows(self):
        table = {'account-123': (1, 1, 3), 'account-123+deposit': (1, 1, 3), 'account-456': (1, 1, 3),
                 'account-42': (1, 0, 1)}
        for s in table:
            self.c.write(s)
        for size_i, size in enumerate((2, 3, 4)):
            for member in range(size):
                got = self.streams('account', {'consumerGroup': {'member': member, 'size': size}})
                want = [s for s in table if table[s][size_i] == member]
                self.assertEqual(got, want, (size, member))
        self.c.write('order-1')
        self.c.write('user-abc')
        for s, size, m in (('order-1', 2, 0), ('order-1', 3, 0), ('order-1', 4, 2),
                           ('user-abc', 2, 0), ('user-abc', 3, 2), ('user-abc', 4, 0)):
            self.assertEqual(self.streams(s.split('-')[0], {'consumerGroup': {'member': m, 'size': size}}), [s])

    def test_members_are_disjoint_cover_and_match_md5(self):
        names = ['grp-%d' % i for i in range(40)] + ['grp-%d+%d' % (i, i) for i in range(10)] + \
                ['grp-x%s' % uid(4) for _ in range(10)] + ['grp', 'grp-', 'grp-+x', 'grp-\u00e9', 'grp-a-b']
        for n in names:
            self.c.write(n)
        for size in (1, 2, 3, 4, 7):
            seen = []
            for member in range(size):
                got = self.streams('grp', {'consumerGroup': {'member': member, 'size': size}})
                want = [n for n in names if H.md5_member(n, size) == member]
                self.assertEqual(got, want, (size, member))
                seen += got
            self.assertEqual(sorted(seen), sorted(n for n in names if H.md5_member(n, 1) is not None))
        for none in ('grp', 'grp-', 'grp-+x'):
            self.assertNotIn(none, self.streams('grp', {'consumerGroup': {'member': 0, 'size': 1}}))
        # the limit counts messages that passed every filter
        got = self.streams('grp', {'consumerGroup': {'member': 1, 'size': 3}, 'batchSize': 3})
        self.assertEqual(got, [n for n in names if H.md5_member(n, 3) == 1][:3])

    def test_number_conversion_in_consumer_group(self):
        self.c.write('cv-1')
        self.c.write('cv-2')
        # 0.5 -> 0, 2.9 -> 2; 1 -> member 0 of 2, 2 -> member 1
        self.assertEqual(self.streams('cv', {'consumerGroup': {'member': 0.5, 'size': 2.9}}), ['cv-1'])
        self.assertEqual(self.streams('cv', {'consumerGroup': {'member': -0.5, 'size': 2}}), ['cv-1'])


# ---------------------------------------------------------------------------
# stream.writeBatch (12.1)
# ---------------------------------------------------------------------------

B = 'stream.writeBatch'


def bm(**k):
    m = {'type': 'T', 'data': {}}
    m.update(k)
    return m


class WriteBatch(NsCase):
    def test_validation_errors(self):
        u = 'bbbbbbbb-1111-4111-8111-000000000001'
        cnt = 'messages must contain between 1 and 1000 messages'
        cases = [
            ([B], inv('stream.writeBatch requires at least 2 arguments: streamName and messages')),
            ([B, 's-1'], inv('stream.writeBatch requires at least 2 arguments: streamName and messages')),
            ([B, '', [bm()]], inv('streamName must be a non-empty string')),
            ([B, 1, [bm()]], inv('streamName must be a non-empty string')),
            ([B, 's-1', {}], inv('messages must be an array')),
            ([B, 's-1', None], inv('messages must be an array')),
            ([B, 's-1', 'x'], inv('messages must be an array')),
            ([B, 's-1', bm()], inv('messages must be an array')),
            ([B, 's-1', []], inv(cnt)),
            ([B, 's-1', [bm()] * 1001], inv(cnt)),
            ([B, 's-1', [bm(), 1]], inv('messages[1] must be an object')),
            ([B, 's-1', [None]], inv('messages[0] must be an object')),
            ([B, 's-1', [bm(), []]], inv('messages[1] must be an object')),
            ([B, 's-1', [bm(), {'data': {}}]], inv('messages[1].type must be a non-empty string')),
            ([B, 's-1', [bm(type='')]], inv('messages[0].type must be a non-empty string')),
            ([B, 's-1', [{'type': 'T'}]], inv('messages[0].data must be an object')),
            ([B, 's-1', [bm(data=None)]], inv('messages[0].data must be an object')),
            ([B, 's-1', [bm(data=[])]], inv('messages[0].data must be an object')),
            ([B, 's-1', [bm(metadata=None)]], inv('messages[0].metadata must be an object')),
            ([B, 's-1', [bm(), bm(), bm(metadata=[])]], inv('messages[2].metadata must be an object')),
            ([B, 's-1', [bm(id=1)]], inv('messages[0].id must be a string')),
            ([B, 's-1', [bm(id=None)]], inv('messages[0].id must be a string')),
            ([B, 's-1', [bm(id='x')]], inv('messages[0].id must be a valid UUID')),
            ([B, 's-1', [bm(id=u), bm(id=u.upper())]], inv('messages[1].id duplicates messages[0].id')),
            ([B, 's-1', [bm(), bm(id=u), bm(), bm(id='{%s}' % u)]],
             inv('messages[3].id duplicates messages[1].id')),
            ([B, 's-1', [bm()], None], inv('options must be an object')),
            ([B, 's-1', [bm()], 'x'], inv('options must be an object')),
            ([B, 's-1', [bm()], {'expectedVersion': 'x'}], inv('options.expectedVersion must be a number')),
            ([B, 's-1', [bm()], {'expectedVersion': None}], inv('options.expectedVersion must be a number')),
            # order: every check of one message before the next; messages before options
            ([B, 's-1', [{'type': '', 'data': None}, 1]], inv('messages[0].type must be a non-empty string')),
            ([B, 's-1', [bm(data=None, metadata=None)]], inv('messages[0].data must be an object')),
            ([B, 's-1', [bm(id=1, metadata=1)]], inv('messages[0].metadata must be an object')),
            ([B, 's-1', [1], 'x'], inv('messages[0] must be an object')),
            ([B, 's-1', [bm(id='x'), 1]], inv('messages[0].id must be a valid UUID')),
            ([B, 's-1', [], 'x'], inv(cnt)),
            ([B, '', 'x'], inv('streamName must be a non-empty string')),
        ]
        self.check_errors(cases)
        self.assertUnchanged()

    def test_appendix_a_exchange(self):
        r = self.c.rpc(B, 'cart-7', [{'type': 'Added', 'data': {'sku': 'a'}}, {'type': 'Added', 'data': {'sku': 'b'}},
                                     {'type': 'CheckedOut', 'data': {}}], {'expectedVersion': -1})
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.body, rb'^\{"count":3,"globalPosition":\d+,"position":2\}\n$')
        g = json.loads(r.body)['globalPosition']
        r = self.c.rpc(G, 'cart-7', {'types': ['CheckedOut']})
        self.assertRegex(r.body, rb'^\[\["[0-9a-f-]{36}","CheckedOut",2,%d,\{\},null,"[^"]+"\]\]\n$' % g)
        self.assertBody(self.c.rpc(B, 'cart-7', []), 400,
                        b'{"error":{"code":"INVALID_REQUEST","message":"messages must contain between 1 and 1000 messages"}}\n')

    def test_batch_semantics(self):
        self.c.write('b-1')
        res = self.c.call(B, 'b-1', [bm(data={'k': i}) for i in range(5)], {'expectedVersion': 0})
        self.assertEqual((res['count'], res['position']), (5, 5))
        msgs = self.c.call(G, 'b-1')
        self.assertEqual([m[2] for m in msgs], list(range(6)))
        self.assertEqual([m[4] for m in msgs[1:]], [{'k': i} for i in range(5)])
        gps = [m[3] for m in msgs]
        self.assertEqual(gps, sorted(set(gps)))
        self.assertEqual(gps[-1], res['globalPosition'])
        self.assertEqual(len(set(m[6] for m in msgs[1:])), 1, 'one time for the whole batch')
        for m in msgs:
            self.assertRegex(m[0], H.UUID7_RE)

    def test_expected_version_checked_once_and_all_or_nothing(self):
        self.c.call(B, 'b-2', [bm(), bm()], {'expectedVersion': -1})
        r = self.c.rpc(B, 'b-2', [bm(), bm()], {'expectedVersion': -1})
        self.assertBody(r, 409, err_body('STREAM_VERSION_CONFLICT', 'Expected version -1, stream is at version 1',
                                         {'actual': 1, 'expected': -1}))
        self.assertEqual(self.c.call('stream.version', 'b-2'), 1)
        self.assertEqual(self.c.call(B, 'b-2', [bm(), bm(), bm()], {'expectedVersion': 1})['position'], 4)

    def test_thousand_messages(self):
        res = self.c.call(B, 'b-3', [bm(data={'i': i}) for i in range(1000)])
        self.assertEqual((res['count'], res['position']), (1000, 999))
        self.assertEqual(len(self.c.call(G, 'b-3', {'batchSize': -1})), 1000)

    def test_idempotent_retry_and_duplicates(self):
        u = ['bbbbbbbb-2222-4222-8222-00000000000%d' % i for i in range(1, 6)]
        self.c.write('b-4')
        batch = [bm(id=u[0], data={'a': 1}), bm(id=u[1], data={'b': 2}, metadata={'m': 1})]
        first = self.c.call(B, 'b-4', batch)
        self.assertEqual((first['count'], first['position']), (2, 2))
        self.c.write('b-4')
        dup = lambda i: err_body('DUPLICATE_MESSAGE_ID', "Message ID '%s' already exists" % i, {'id': i})
        # exact retry (spelling and key order may differ; expectedVersion not re-evaluated)
        retry = [bm(id=u[0].upper(), data={'a': 1.0}), {'metadata': {'m': 1}, 'data': {'b': 2}, 'type': 'T',
                                                          'id': '{%s}' % u[1]}]
        self.assertEqual(self.c.call(B, 'b-4', retry, {'expectedVersion': 0}), first)
        self.assertBody(self.c.rpc(B, 'b-4', [batch[0], bm(id=u[2])]), 409, dup(u[0]))
        self.assertBody(self.c.rpc(B, 'b-4', [bm(id=u[2]), batch[1]]), 409, dup(u[1]))
        self.assertBody(self.c.rpc(B, 'b-4', [batch[1], batch[0]]), 409, dup(u[1]))
        self.assertBody(self.c.rpc(B, 'b-4', [batch[0], bm(data={'b': 2}, metadata={'m': 1})]), 409, dup(u[0]))
        # not a retry as a whole: the first id that exists is reported, even
        # when that one message alone would be identical
        self.assertBody(self.c.rpc(B, 'b-4', [batch[0], bm(id=u[1], data={'b': 3}, metadata={'m': 1})]), 409, dup(u[0]))
        self.assertBody(self.c.rpc(B, 'b-4', [bm(id=u[3]), bm(id=u[1], data={'b': 3}, metadata={'m': 1})]), 409, dup(u[1]))
        self.assertBody(self.c.rpc(B, 'other-4', batch), 409, dup(u[0]))
        self.assertEqual(len(self.c.call(G, 'b-4')), 4)
        # a single write of a batch message is an idempotent retry of that message
        stored = self.c.call(G, 'b-4')[1]
        self.assertEqual(stored[0], u[0])
        self.assertEqual(self.c.call(W, 'b-4', {'type': 'T', 'data': {'a': 1}}, {'id': u[0]}),
                         {'globalPosition': stored[3], 'position': 1})
        self.assertEqual(self.admin.call('ns.info', self.ns)['messageCount'], 4)


# ---------------------------------------------------------------------------
# ns.* (6.8-6.13)
# ---------------------------------------------------------------------------

class Namespaces(NsCase):
    def test_create_validation_errors(self):
        N = 'ns.create'
        x = 'nsval_' + uid()
        cases = [
            ([N], inv('ns.create requires at least 1 argument: namespace ID')),
            ([N, ''], inv('namespace ID must be a non-empty string')),
            ([N, 5], inv('namespace ID must be a non-empty string')),
            ([N, None], inv('namespace ID must be a non-empty string')),
            ([N, {}], inv('namespace ID must be a non-empty string')),
            ([N, 'a' * 256], inv('namespace ID must be at most 255 bytes')),
            ([N, '\u00e9' * 128], inv('namespace ID must be at most 255 bytes')),
            ([N, x, None], inv('options must be an object')),
            ([N, x, 'x'], inv('options must be an object')),
            ([N, x, []], inv('options must be an object')),
            ([N, x, {'description': 1}], inv('options.description must be a string')),
            ([N, x, {'description': None}], inv('options.description must be a string')),
            ([N, x, {'token': 1}], inv('options.token must be a string')),
            ([N, x, {'token': None}], inv('options.token must be a string')),
            ([N, x, {'token': ''}], inv("Invalid token format: invalid token format: missing 'ns_' prefix")),
            ([N, x, {'token': 'abc'}], inv("Invalid token format: invalid token format: missing 'ns_' prefix")),
            ([N, x, {'token': 'ns_abc'}],
             inv('Invalid token format: invalid token format: expected 2 parts after prefix, got 1')),
            ([N, x, {'token': 'ns_' + H.b64ns(x) + '_abc'}],
             inv('Invalid token format: invalid token format: random part must be 64 hex characters, got 3')),
            ([N, x, {'token': H.TOKEN_DEFAULT}], inv("Token is for namespace 'default', not '%s'" % x)),
            ([N, x, {'metadata': 1}], inv('options.metadata must be an object')),
            ([N, x, {'metadata': []}], inv('options.metadata must be an object')),
            ([N, x, {'metadata': None}], inv('options.metadata must be an object')),
            ([N, x, {'description': 1, 'token': 1}], inv('options.description must be a string')),
            ([N, x, {'token': 1, 'metadata': 1}], inv('options.token must be a string')),
            ([N, 'a' * 256, None], inv('namespace ID must be at most 255 bytes')),
        ]
        self.check_errors(cases)
        self.assertBody(self.c.rpc('ns.info', x), 404,
                        err_body('NAMESPACE_NOT_FOUND', "Namespace '%s' not found" % x))

    def test_create_shape_and_lengths(self):
        for ns in ('a' * 245 + uid(10), '\u00e9' * 122 + uid(10) + 'a', 'x' + uid(), 'Tenant.A' + uid(),
                   '../../' + uid(), 'ab?' + uid(), 'sp ace' + uid(), '\U0001f600' + uid()):
            with self.subTest(ns=ns[:20]):
                self.assertLessEqual(len(ns.encode()), 255)
                r = self.c.rpc('ns.create', ns)
                self.assertEqual(r.status, 200, r)
                self.assertRegex(r.body, rb'^\{"createdAt":"[^"]+","namespace":(?:[^,]+),"token":"[^"]+"\}\n$')
                res = r.json()
                self.assertEqual(sorted(res), ['createdAt', 'namespace', 'token'])
                self.assertEqual(res['namespace'], ns)
                self.assertRegex(res['createdAt'], H.MSG_TS_RE)
                self.assertRegex(res['token'], H.TOKEN_RE)
                self.assertTrue(res['token'].startswith('ns_' + H.b64ns(ns) + '_'))
                c2 = H.Client(self.srv.port, res['token'])
                self.assertEqual(c2.write('x-1'), {'globalPosition': 1, 'position': 0})
                c2.close()
                info = self.c.call('ns.info', ns)
                self.assertEqual((info['namespace'], info['description'], info['messageCount']), (ns, '', 1))

    def test_exists_and_validation_precedes_existence(self):
        ns = 'tenant-a' + uid()
        self.assertEqual(self.c.call('ns.create', ns, {'description': 'A', 'metadata': {'k': 1}})['namespace'], ns)
        self.assertBody(self.c.rpc('ns.create', ns, {}), 409,
                        err_body('NAMESPACE_EXISTS', "Namespace '%s' already exists" % ns))
        self.assertBody(self.c.rpc('ns.create', ns, {'token': H.TOKEN_DEFAULT}), 400,
                        inv("Token is for namespace 'default', not '%s'" % ns))
        self.assertBody(self.c.rpc('ns.create', 'default'), 409,
                        err_body('NAMESPACE_EXISTS', "Namespace 'default' already exists"))
        self.assertEqual(self.c.call('ns.info', ns)['description'], 'A')

    def test_ids_are_case_sensitive(self):
        base = 'case' + uid()
        self.c.call('ns.create', base)
        self.assertEqual(self.c.call('ns.create', base.upper())['namespace'], base.upper())

    def test_info(self):
        I = 'ns.info'
        self.check_errors([
            ([I], inv('ns.info requires 1 argument: namespace ID')),
            ([I, ''], inv('namespace ID must be a non-empty string')),
            ([I, 3], inv('namespace ID must be a non-empty string')),
            ([I, None], inv('namespace ID must be a non-empty string')),
        ])
        info = self.c.call(I, self.ns)
        self.assertRegex(self.c.rpc(I, self.ns).body,
                         rb'^\{"createdAt":"[^"]+","description":"","lastActivity":null,"messageCount":0,'
                         rb'"namespace":"[^"]+","streamCount":0\}\n$')
        self.assertRegex(info['createdAt'], H.TS_RE)
        for i in range(5):
            self.c.write('acct-%d' % (i % 2))
        info = self.c.call(I, self.ns)
        self.assertEqual((info['messageCount'], info['streamCount']), (5, 2))
        newest = max(self.c.call(C, ''), key=lambda m: m[4])
        self.assertEqual(info['lastActivity'], newest[7])
        self.assertBody(self.c.rpc(I, 'zz-missing'), 404,
                        err_body('NAMESPACE_NOT_FOUND', "Namespace 'zz-missing' not found"))

    def test_delete(self):
        D = 'ns.delete'
        self.check_errors([
            ([D], inv('ns.delete requires 1 argument: namespace ID')),
            ([D, ''], inv('namespace ID must be a non-empty string')),
            ([D, 3], inv('namespace ID must be a non-empty string')),
        ])
        ns, tok = self.admin.new_namespace()
        c2 = H.Client(self.srv.port, tok)
        for i in range(3):
            c2.write('s-%d' % i)
        # any valid token may delete any namespace
        r = self.c.rpc(D, ns)
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.body, rb'^\{"deletedAt":"[^"]+","messagesDeleted":3,"namespace":"[^"]+"\}\n$')
        self.assertRegex(r.json()['deletedAt'], H.MSG_TS_RE)
        self.assertEqual(r.json()['namespace'], ns)
        self.assertBody(self.c.rpc(D, ns), 404, err_body('NAMESPACE_NOT_FOUND', "Namespace '%s' not found" % ns))
        self.assertBody(self.c.rpc('ns.info', ns), 404, err_body('NAMESPACE_NOT_FOUND', "Namespace '%s' not found" % ns))
        c2.close()
        self.assertBody(c2.rpc('stream.get', 's-0'), 403,
                        err_body('AUTH_UNAUTHORIZED', 'Token not authorized for namespace', {'namespace': ns}))
        self.assertNotIn(ns, [e['namespace'] for e in self.c.call('ns.list')])
        # re-creating starts empty with global positions from 1
        self.c.call('ns.create', ns, {'token': tok})
        self.assertEqual(c2.call('stream.get', 's-0'), [])
        self.assertEqual(c2.write('s-9'), {'globalPosition': 1, 'position': 0})
        c2.close()

    def test_delete_own_namespace(self):
        r = self.c.rpc('ns.delete', self.ns)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.c.rpc('sys.version').status, 403)

    def test_list(self):
        mine = []
        for i in range(3):
            ns = 'lst%d_%s' % (i, uid())
            self.c.call('ns.create', ns, {'description': 'd%d' % i} if i else {})
            mine.append(ns)
        H.Client(self.srv.port, H.token_for(mine[1])).write('x-1')
        r = self.c.rpc('ns.list', {'limit': 1, 'offset': 5})
        self.assertEqual(r.status, 200)
        lst = r.json()
        self.assertGreaterEqual(len(lst), 5)
        by = {e['namespace']: e for e in lst}
        for e in lst:
            self.assertEqual(sorted(e), ['createdAt', 'description', 'messageCount', 'namespace'])
            self.assertIsInstance(e['description'], str)
            self.assertRegex(e['createdAt'], H.TS_RE)
        self.assertEqual(by['default']['description'], 'Default namespace')
        self.assertEqual((by[mine[0]]['description'], by[mine[1]]['description']), ('', 'd1'))
        self.assertEqual((by[mine[0]]['messageCount'], by[mine[1]]['messageCount']), (0, 1))
        keys = [(-H.ts_micros(e['createdAt']), e['namespace'].encode()) for e in lst]
        self.assertEqual(keys, sorted(keys), 'createdAt descending, ties by id')
        self.assertRegex(r.body, rb'^\[\{"createdAt":"[^"]+","description":"[^"]*","messageCount":\d+,"namespace":')

    def test_streams(self):
        S = 'ns.streams'
        lim = 'limit must be between 1 and 1000'
        self.check_errors([
            ([S, None], inv('options must be an object')),
            ([S, 'x'], inv('options must be an object')),
            ([S, []], inv('options must be an object')),
            ([S, {'prefix': 1}], inv('prefix must be a string')),
            ([S, {'prefix': None}], inv('prefix must be a string')),
            ([S, {'cursor': 1}], inv('cursor must be a string')),
            ([S, {'cursor': None}], inv('cursor must be a string')),
            ([S, {'limit': '1'}], inv('limit must be a number')),
            ([S, {'limit': None}], inv('limit must be a number')),
            ([S, {'limit': 0}], inv(lim)), ([S, {'limit': -1}], inv(lim)),
            ([S, {'limit': 1001}], inv(lim)), ([S, {'limit': 0.5}], inv(lim)),
            (b'["ns.streams",{"limit":1e400}]', inv(lim)),
            ([S, {'prefix': 1, 'cursor': 1}], inv('prefix must be a string')),
            ([S, {'cursor': 1, 'limit': 'x'}], inv('cursor must be a string')),
        ])
        self.assertBody(self.c.rpc(S), 200, b'[]\n')
        names = ['a%b-1', 'a_b-1', 'axb-1', 'B-1', 'a-1', '\u00e9-1', 'z-1', 'a*-1', 'a', 'ab', 'a%']
        for i, n in enumerate(names):
            for _ in range(i % 3 + 1):
                self.c.write(n)
        order = sorted(names, key=lambda s: s.encode())
        got = self.c.call(S)
        self.assertEqual([e['stream'] for e in got], order)
        for e in got:
            self.assertEqual(sorted(e), ['lastActivity', 'stream', 'version'])
            self.assertEqual(e['version'], names.index(e['stream']) % 3)
            self.assertEqual(e['lastActivity'], self.c.call(G, e['stream'])[-1][6])
        self.assertEqual([e['stream'] for e in self.c.call(S, {'prefix': 'a%'})], ['a%', 'a%b-1'])
        self.assertEqual([e['stream'] for e in self.c.call(S, {'prefix': 'a_'})], ['a_b-1'])
        self.assertEqual([e['stream'] for e in self.c.call(S, {'prefix': 'a*'})], ['a*-1'])
        self.assertEqual([e['stream'] for e in self.c.call(S, {'prefix': 'A'})], [])
        self.assertEqual([e['stream'] for e in self.c.call(S, {'prefix': ''})], order)
        self.assertEqual([e['stream'] for e in self.c.call(S, {'cursor': 'a-1'})], order[order.index('a-1') + 1:])
        self.assertEqual([e['stream'] for e in self.c.call(S, {'cursor': 'a', 'prefix': 'a', 'limit': 2})],
                         [n for n in order if n.startswith('a') and n.encode() > b'a'][:2])
        self.assertEqual(len(self.c.call(S, {'limit': 1000.9})), len(names))
        self.assertEqual(len(self.c.call(S, {'limit': 1.9})), 1)
        # paging with the last name yields every stream exactly once
        seen, cursor = [], ''
        while True:
            page = self.c.call(S, {'limit': 3, 'cursor': cursor})
            if not page:
                break
            seen += [e['stream'] for e in page]
            cursor = page[-1]['stream']
        self.assertEqual(seen, order)

    def test_streams_default_limit_is_100(self):
        bodies = [rpc_body(W, 'lim%03d-1' % i, OKM) for i in range(105)]
        for r in H.pipeline(self.srv.port, bodies, token=self.tok):
            self.assertEqual(r.status, 200)
        self.assertEqual(len(self.c.call('ns.streams')), 100)
        self.assertEqual(len(self.c.call('ns.streams', {'limit': 1000})), 105)

    def test_categories(self):
        self.assertBody(self.c.rpc('ns.categories'), 200, b'[]\n')
        for s, n in (('account', 1), ('account-1', 2), ('account-2+x', 1), ('order-1', 1), ('Order-1', 3),
                     ('a:b-1', 1), ('-x', 1)):
            for _ in range(n):
                self.c.write(s)
        r = self.c.rpc('ns.categories', 'ignored')
        self.assertBody(r, 200, b'[{"category":"","messageCount":1,"streamCount":1},'
                                b'{"category":"Order","messageCount":3,"streamCount":1},'
                                b'{"category":"a:b","messageCount":1,"streamCount":1},'
                                b'{"category":"account","messageCount":4,"streamCount":3},'
                                b'{"category":"order","messageCount":1,"streamCount":1}]\n')

    def test_namespaces_are_isolated(self):
        ns2, tok2 = self.admin.new_namespace()
        c2 = H.Client(self.srv.port, tok2)
        self.c.write('iso-1')
        self.c.write('iso-1')
        self.assertEqual(c2.write('iso-1'), {'globalPosition': 1, 'position': 0})
        self.assertEqual(len(self.c.call(G, 'iso-1')), 2)
        self.assertEqual(len(c2.call(G, 'iso-1')), 1)
        self.assertEqual(len(c2.call(C, 'iso')), 1)
        self.assertEqual(c2.call('ns.categories'), [{'category': 'iso', 'messageCount': 1, 'streamCount': 1}])
        c2.close()


# ---------------------------------------------------------------------------
# Appendix A on a fresh strict server (SQLite file store)
# ---------------------------------------------------------------------------

class AppendixA(H.TestCase):
    T = 'ns_dF8wX201eDJrMV9hYjEy_' + H.ZEROS

    def test_write_read_and_validation_exchanges(self):
        adm = H.Client(STRICT.port, H.TOKEN_DEFAULT)
        adm.call('ns.create', 't_0_m5x2k1_ab12', {'token': self.T})
        c = H.Client(STRICT.port, self.T)
        r = c.rpc_raw(b'["stream.write","account-42",{"type":"Opened","data":{"balance":0}},{}]',
                      headers=[('Content-Type', 'application/json')])
        self.assertBody(r, 200, b'{"globalPosition":1,"position":0}\n')
        r = c.rpc_raw(b'["stream.get","account-42",{}]')
        self.assertRegex(r.body, rb'^\[\["[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",'
                                 rb'"Opened",0,1,\{"balance":0\},null,"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z"\]\]\n$')
        msg = r.json()[0]
        self.assertBody(c.rpc_raw(b'["stream.version","account-42"]'), 200, b'0\n')
        self.assertBody(c.rpc_raw(b'["stream.version","account-43"]'), 200, b'null\n')
        self.assertBody(c.rpc_raw(b'["stream.last","account-42",{"type":"X"}]'), 200, b'null\n')
        r = c.rpc_raw(b'["category.get","account",{"consumerGroup":{"member":1,"size":2}}]')
        self.assertBody(r, 200, ('[["%s","account-42","Opened",0,1,{"balance":0},null,"%s"]]\n'
                                 % (msg[0], msg[6])).encode())
        self.assertBody(c.rpc_raw(b'["category.get","account",{"consumerGroup":{"member":0,"size":2}}]'), 200, b'[]\n')
        self.assertBody(c.rpc_raw(b'["category.get","account-42",{}]'), 200, b'[]\n')
        r = c.rpc_raw(b'["stream.write","account-42",{"type":"X","data":{}},{"expectedVersion":5}]')
        self.assertBody(r, 409, b'{"error":{"code":"STREAM_VERSION_CONFLICT","message":"Expected version 5, '
                                b'stream is at version 0","details":{"actual":0,"expected":5}}}\n')
        r = c.rpc_raw(b'["stream.write","account-99",{"type":"X","data":{}},{"expectedVersion":-1}]')
        self.assertBody(r, 200, b'{"globalPosition":2,"position":0}\n')
        r = c.rpc_raw(b'["stream.write","order-1",{"type":"Placed","data":{"total":99.99}},'
                      b'{"id":"12345678-1234-1234-1234-123456789ABC"}]')
        self.assertBody(r, 200, b'{"globalPosition":3,"position":0}\n')
        r = c.rpc_raw(b'["stream.write","order-1",{"type":"Placed","data":{"total":99.99}},'
                      b'{"id":"12345678-1234-1234-1234-123456789abc"}]')
        self.assertBody(r, 200, b'{"globalPosition":3,"position":0}\n')
        r = c.rpc_raw(b'["stream.write","order-1",{"type":"Cancelled","data":{}},'
                      b'{"id":"12345678-1234-1234-1234-123456789abc"}]')
        self.assertBody(r, 409, b'{"error":{"code":"DUPLICATE_MESSAGE_ID","message":"Message ID \'12345678-1234-'
                                b'1234-1234-123456789abc\' already exists","details":{"id":"12345678-1234-1234-'
                                b'1234-123456789abc"}}}\n')
        r = c.rpc_raw(b'["stream.write","order-1",{"type":"Placed","data":{}},{"id":"abc"}]')
        self.assertBody(r, 400, b'{"error":{"code":"INVALID_REQUEST","message":"options.id must be a valid UUID"}}\n')
        self.assertEqual(c.call('stream.get', 'order-1')[0][0], '12345678-1234-1234-1234-123456789abc')
        # envelope and validation errors
        for body, status, want in [
            (b'["stream.get","account-42",{"batchSize":20000}]', 400,
             b'{"error":{"code":"INVALID_REQUEST","message":"options.batchSize must be <= 10000 or -1 for unlimited"}}\n'),
            (b'["stream.write","s-1",null,{}]', 400,
             b'{"error":{"code":"INVALID_REQUEST","message":"message must be an object"}}\n'),
            (b'["stream.write",123,{"type":"T","data":{}}]', 400,
             b'{"error":{"code":"INVALID_REQUEST","message":"streamName must be a non-empty string"}}\n'),
            (b'["stream.write","s-1",{"type":"T","data":{},"metadata":null}]', 400,
             b'{"error":{"code":"INVALID_REQUEST","message":"message.metadata must be an object"}}\n'),
            (b'{"a":1}', 400, b'{"error":{"code":"INVALID_REQUEST","message":"Malformed JSON request",'
                              b'"details":{"error":"request body must be a JSON array"}}}\n'),
            (b'["invalid.method"]', 404,
             b'{"error":{"code":"METHOD_NOT_FOUND","message":"Unknown method: invalid.method"}}\n'),
        ]:
            with self.subTest(body=body):
                self.assertBody(c.rpc_raw(body), status, want)
        r = H.Conn(STRICT.port).request('GET', '/rpc', token=self.T)
        self.assertBody(r, 405, b'{"error":{"code":"INVALID_REQUEST","message":"Only POST method allowed"}}\n')
        self.assertEqual(r.header('allow'), 'POST')
        r = H.http_get(STRICT.port, '/nope')
        self.assertBody(r, 404, b'{"error":{"code":"NOT_FOUND","message":"Endpoint not found"}}')
        # writeBatch extension
        r = c.rpc_raw(b'["stream.writeBatch","cart-7",[{"type":"Added","data":{"sku":"a"}},{"type":"Added",'
                      b'"data":{"sku":"b"}},{"type":"CheckedOut","data":{}}],{"expectedVersion":-1}]')
        self.assertRegex(r.body, rb'^\{"count":3,"globalPosition":(\d+),"position":2\}\n$')
        g = r.json()['globalPosition']
        self.assertGreaterEqual(g, 6)
        r = c.rpc_raw(b'["stream.get","cart-7",{"types":["CheckedOut"]}]')
        self.assertRegex(r.body, rb'^\[\["[0-9a-f-]{36}","CheckedOut",2,%d,\{\},null,"[^"]+"\]\]\n$' % g)
        self.assertBody(c.rpc_raw(b'["stream.writeBatch","cart-7",[]]'), 400,
                        b'{"error":{"code":"INVALID_REQUEST","message":"messages must contain between 1 and 1000 messages"}}\n')
        c.close()
        adm.close()

    def test_payload_bytes_kept_on_the_file_store(self):
        adm = H.Client(STRICT.port, H.TOKEN_DEFAULT)
        ns, tok = adm.new_namespace()
        c = H.Client(STRICT.port, tok)
        data = '{ "b" : 1.0e0 ,\n "a":[1, 2 ], "big": 123456789012345678901234567890 }'
        r = c.rpc_raw(('["stream.write","p-1",{"type":"T","data":%s}]' % data).encode())
        self.assertEqual(r.status, 200)
        self.assertIn(b',' + data.encode() + b',null,', c.rpc('stream.get', 'p-1').body)
        c.close()
        adm.close()

    def test_namespace_lifecycle_and_listing_exchanges(self):
        tmp = tempfile.mkdtemp(prefix='shim-rpc-life-')
        srv = H.strict_server(tmp)
        try:
            time.sleep(1.1)   # default and tenant-a get different createdAt seconds
            a = H.Client(srv.port, H.TOKEN_DEFAULT)
            r = a.rpc('ns.create', 'tenant-a', {'description': 'A'})
            self.assertRegex(r.body, rb'^\{"createdAt":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z",'
                                     rb'"namespace":"tenant-a","token":"ns_dGVuYW50LWE_[0-9a-f]{64}"\}\n$')
            tok = r.json()['token']
            self.assertBody(a.rpc('ns.create', 'tenant-a', {}), 409,
                            b'{"error":{"code":"NAMESPACE_EXISTS","message":"Namespace \'tenant-a\' already exists"}}\n')
            self.assertBody(a.rpc('ns.create', 'tenant-a', {'token': H.TOKEN_DEFAULT}), 400,
                            b'{"error":{"code":"INVALID_REQUEST","message":"Token is for namespace \'default\', '
                            b'not \'tenant-a\'"}}\n')
            t = H.Client(srv.port, tok)
            t.write('account-1')
            t.write('account-1')
            t.write('order-1')
            times = [m[7] for m in t.call('category.get', '')]
            r = a.rpc('ns.info', 'tenant-a')
            self.assertRegex(r.body, rb'^\{"createdAt":"[^"]+","description":"A","lastActivity":"%s",'
                                     rb'"messageCount":3,"namespace":"tenant-a","streamCount":2\}\n$'
                             % re.escape(times[2].encode()))
            r = a.rpc('ns.list')
            self.assertRegex(r.body, rb'^\[\{"createdAt":"[^"]+","description":"A","messageCount":3,'
                                     rb'"namespace":"tenant-a"\},\{"createdAt":"[^"]+","description":'
                                     rb'"Default namespace","messageCount":0,"namespace":"default"\}\]\n$')
            self.assertBody(t.rpc('ns.streams', {'limit': 1}), 200,
                            ('[{"lastActivity":"%s","stream":"account-1","version":1}]\n' % times[1]).encode())
            self.assertBody(t.rpc('ns.streams', {'cursor': 'account-1'}), 200,
                            ('[{"lastActivity":"%s","stream":"order-1","version":0}]\n' % times[2]).encode())
            self.assertBody(t.rpc('ns.categories'), 200,
                            b'[{"category":"account","messageCount":2,"streamCount":1},'
                            b'{"category":"order","messageCount":1,"streamCount":1}]\n')
            r = a.rpc('ns.delete', 'tenant-a')
            self.assertRegex(r.body, rb'^\{"deletedAt":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z",'
                                     rb'"messagesDeleted":3,"namespace":"tenant-a"\}\n$')
            self.assertBody(a.rpc('ns.delete', 'tenant-a'), 404,
                            b'{"error":{"code":"NAMESPACE_NOT_FOUND","message":"Namespace \'tenant-a\' not found"}}\n')
            t.close()
            self.assertBody(t.rpc('sys.version'), 403,
                            b'{"error":{"code":"AUTH_UNAUTHORIZED","message":"Token not authorized for namespace",'
                            b'"details":{"namespace":"tenant-a"}}}\n')
            a.close()
        finally:
            srv.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class DeletedDefaultInTestMode(H.TestCase):
    """Test mode maps token-less requests to `default`; once it is deleted,
    data methods fail with 500 BACKEND_ERROR `<prefix>: namespace not found`."""

    def test_data_methods_fail_with_backend_error(self):
        srv = H.Server()
        try:
            c = H.Client(srv.port, None)
            c.write('x-1')
            self.assertEqual(c.call('ns.delete', 'default')['messagesDeleted'], 1)
            nf = lambda p: err_body('BACKEND_ERROR', p + ': namespace not found')
            for args, prefix in [
                ((W, 'x-1', OKM), 'Failed to write message'),
                ((B, 'x-1', [OKM]), 'Failed to write messages'),
                ((G, 'x-1'), 'Failed to get messages'),
                (('stream.last', 'x-1'), 'Failed to get last message'),
                (('stream.version', 'x-1'), 'Failed to get stream version'),
                ((C, 'x'), 'Failed to get category messages'),
                (('ns.streams',), 'Failed to list streams'),
                (('ns.categories',), 'Failed to list categories'),
            ]:
                with self.subTest(method=args[0]):
                    self.assertBody(c.rpc(*args), 500, nf(prefix))
            self.assertEqual(c.call('sys.version'), '0.7.0')
            self.assertNotIn('default', [e['namespace'] for e in c.call('ns.list')])
            # the default token is now a token of a missing namespace
            self.assertEqual(c.rpc('sys.version', token=H.TOKEN_DEFAULT).status, 403)
            # re-creating it starts empty
            c.call('ns.create', 'default')
            self.assertEqual(c.write('x-1'), {'globalPosition': 1, 'position': 0})
        finally:
            srv.stop()


class Capacity(NsCase):
    def test_hundred_simultaneous_connections_each_writing(self):
        n = 100
        conns = [H.Conn(self.srv.port, timeout=30) for _ in range(n)]
        for i, c in enumerate(conns):
            c.send(H.build_request('POST', '/rpc', rpc_body(W, 'cap-%d' % (i % 10), {'type': 'T', 'data': {'i': i}}),
                                   token=self.tok))
        res = [c.read_response('POST') for c in conns]
        for c in conns:
            c.close()
        self.assertEqual([r.status for r in res], [200] * n)
        self.assertEqual(sorted(r.json()['globalPosition'] for r in res), list(range(1, n + 1)))


class NamespaceConcurrency(H.TestCase):
    """6.8: of concurrent creations of one id exactly one succeeds; 3.6: ten
    concurrent create/delete flows while subscriptions are open.  On the
    file store, where creation makes a database file."""

    def run_threads(self, n, fn):
        out = [None] * n
        barrier = threading.Barrier(n)

        def worker(i):
            barrier.wait()
            try:
                out[i] = fn(i)
            except Exception as e:   # reported by the caller
                out[i] = e
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        [t.start() for t in ts]
        [t.join(120) for t in ts]
        return out

    def test_concurrent_creation_of_one_id(self):
        ns = 'race_' + uid()
        res = self.run_threads(10, lambda i: H.Client(STRICT.port, H.TOKEN_DEFAULT).rpc('ns.create', ns))
        ok = [r for r in res if r.status == 200]
        self.assertEqual(len(ok), 1, res)
        for r in res:
            if r.status != 200:
                self.assertBody(r, 409, err_body('NAMESPACE_EXISTS', "Namespace '%s' already exists" % ns))
        tok = ok[0].json()['token']
        self.assertEqual(H.Client(STRICT.port, tok).write('x-1'), {'globalPosition': 1, 'position': 0})

    def test_concurrent_creation_of_different_ids(self):
        base = 'many_' + uid()
        res = self.run_threads(10, lambda i: H.Client(STRICT.port, H.TOKEN_DEFAULT).rpc('ns.create', '%s_%d' % (base, i)))
        self.assertEqual([r.status for r in res], [200] * 10, res)
        for r in res:
            self.assertEqual(H.Client(STRICT.port, r.json()['token']).write('x-1'), {'globalPosition': 1, 'position': 0})

    def test_create_delete_flows_with_subscriptions_open(self):
        subs = [H.subscribe(STRICT.port, 'all=true', token=H.TOKEN_DEFAULT) for _ in range(5)]
        base = 'flow_' + uid()

        def flow(i):
            c = H.Client(STRICT.port, H.TOKEN_DEFAULT)
            for k in range(5):
                ns = '%s_%d' % (base, i)
                tok = c.call('ns.create', ns)['token']
                t = H.Client(STRICT.port, tok)
                for j in range(3):
                    assert t.write('f-%d' % j) == {'globalPosition': j + 1, 'position': 0}
                t.close()
                assert c.call('ns.delete', ns)['messagesDeleted'] == 3
            c.close()
            return 'ok'
        res = self.run_threads(10, flow)
        self.assertEqual(res, ['ok'] * 10)
        w = H.Client(STRICT.port, H.TOKEN_DEFAULT).write('after-' + uid())
        for s in subs:
            self.assertEqual(s.next_poke()['globalPosition'], w['globalPosition'])
            s.close()


if __name__ == '__main__':
    H.main(__name__)
