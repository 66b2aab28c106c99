#!/usr/bin/env python3
"""HTTP transport (PROTOCOL section 3): keep-alive, pipelining, chunked
bodies, Expect: 100-continue, limits (413 before the body, 431), bad
framing, routing, exact bodies of /health, /version and 404, HEAD, and
memory that stays flat over many bad requests."""

import re
import shutil
import socket
import tempfile
import time

import shimhttp as H
from shimhttp import rpc_body

SRV = None      # test mode, default body limit
SMALL = None    # test mode, --max-body-size=1048576
STRICT = None
TMP = None

MALFORMED = b'{"error":{"code":"INVALID_REQUEST","message":"Malformed HTTP request"}}\n'
TOO_LARGE = b'{"error":{"code":"PAYLOAD_TOO_LARGE","message":"Request body exceeds %d bytes"}}\n'
HEADERS_TOO_LARGE = b'{"error":{"code":"HEADERS_TOO_LARGE","message":"Request header fields too large"}}\n'
NOT_IMPL = b'{"error":{"code":"NOT_IMPLEMENTED","message":"Unsupported Transfer-Encoding"}}\n'
NOT_FOUND = b'{"error":{"code":"NOT_FOUND","message":"Endpoint not found"}}'
HEALTH = b'{"status":"ok"}'
VERSION = b'{"version":"0.7.0"}'


def setUpModule():
    global SRV, SMALL, STRICT, TMP
    TMP = tempfile.mkdtemp(prefix='shim-framing-')
    SRV = H.Server()
    SMALL = H.Server(extra=['--max-body-size=1048576'])
    STRICT = H.strict_server(TMP)


def tearDownModule():
    for s in (SRV, SMALL, STRICT):
        if s:
            s.stop()
    shutil.rmtree(TMP, ignore_errors=True)


def req(method, path, body=None, headers=None, token=None, version='HTTP/1.1'):
    return H.build_request(method, path, body, headers, version, token)


class FramingCase(H.TestCase):
    def conn(self, srv=None, **kw):
        return H.Conn((srv or SRV).port, **kw)

    def still_serves(self, srv=None):
        c = self.conn(srv)
        r = c.request('POST', '/rpc', b'["sys.version"]', token=H.TOKEN_DEFAULT)
        c.close()
        self.assertBody(r, 200, b'"0.7.0"\n')

    def assertClosesWith(self, raw, status, body, srv=None, send_all=True):
        """Sends raw bytes; expects one response, `Connection: close`, EOF."""
        c = self.conn(srv)
        try:
            try:
                c.send(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = c.read_response()
            self.assertBody(r, status, body)
            self.assertEqual((r.header('connection') or '').lower(), 'close', r.headers)
            self.assertTrue(c.closed_within(3), 'connection not closed after %d' % status)
        finally:
            c.close()
        self.still_serves(srv)
        return r


class KeepAliveAndPipelining(FramingCase):
    def test_keep_alive_serves_many_requests(self):
        c = self.conn()
        for i in range(25):
            r = [lambda: c.request('GET', '/health'),
                 lambda: c.request('POST', '/rpc', b'["sys.version"]'),
                 lambda: c.request('GET', '/version'),
                 lambda: c.request('GET', '/nope'),
                 lambda: c.request('POST', '/rpc', b'[')][i % 5]()
            self.assertIn(r.status, (200, 404, 400))
            self.assertNotEqual((r.header('connection') or '').lower(), 'close')
        c.close()

    def test_connection_close_is_honoured(self):
        c = self.conn()
        r = c.request('GET', '/health', headers=[('Connection', 'close')])
        self.assertBody(r, 200, HEALTH)
        self.assertEqual(r.header('connection').lower(), 'close')
        self.assertTrue(c.closed_within(3))
        c.close()

    def test_http_1_0_is_served(self):
        c = self.conn()
        c.send(b'GET /health HTTP/1.0\r\n\r\n')
        r = c.read_response()
        self.assertBody(r, 200, HEALTH)
        c.close()
        c = self.conn()
        c.send(b'POST /rpc HTTP/1.0\r\nContent-Length: 15\r\n\r\n["sys.version"]')
        self.assertBody(c.read_response(), 200, b'"0.7.0"\n')
        c.close()

    def test_pipelined_requests_are_answered_in_order(self):
        s = 'pipe-' + H.uid()
        raw = b''.join([
            req('GET', '/health'),
            req('POST', '/rpc', rpc_body('stream.write', s, {'type': 'A', 'data': {}})),
            req('GET', '/version'),
            req('GET', '/nope'),
            req('POST', '/rpc', rpc_body('stream.write', s, {'type': 'B', 'data': {}})),
            req('POST', '/rpc', b'{"a":1}'),
            req('HEAD', '/health'),
            req('POST', '/rpc', rpc_body('stream.get', s)),
            req('POST', '/rpc', rpc_body('stream.version', s)),
        ])
        c = self.conn()
        c.send(raw)
        methods = ['GET', 'POST', 'GET', 'GET', 'POST', 'POST', 'HEAD', 'POST', 'POST']
        rs = [c.read_response(m) for m in methods]
        c.close()
        self.assertBody(rs[0], 200, HEALTH)
        self.assertEqual(rs[1].json()['position'], 0)
        self.assertBody(rs[2], 200, VERSION)
        self.assertBody(rs[3], 404, NOT_FOUND)
        self.assertEqual(rs[4].json()['position'], 1)
        self.assertEqual(rs[5].status, 400)
        self.assertEqual((rs[6].status, rs[6].body), (200, b''))
        self.assertEqual([m[1] for m in rs[7].json()], ['A', 'B'])
        self.assertBody(rs[8], 200, b'1\n')

    def test_pipelined_writes_then_read_see_every_write(self):
        s = 'pipe-' + H.uid()
        bodies = [rpc_body('stream.write', s, {'type': 'T', 'data': {'i': i}}) for i in range(200)]
        bodies.append(rpc_body('stream.get', s, {'batchSize': -1}))
        rs = H.pipeline(SRV.port, bodies, group=201)
        self.assertEqual([r.json()['position'] for r in rs[:200]], list(range(200)))
        self.assertEqual([m[4]['i'] for m in rs[200].json()], list(range(200)))

    def test_pipelined_bytes_split_anywhere(self):
        raw = req('GET', '/health') + req('POST', '/rpc', b'["sys.version"]') + req('GET', '/version')
        for step in (1, 3, 7, 64):
            c = self.conn()
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(0, len(raw), step):
                c.send(raw[i:i + step])
                if step < 8 and i % 40 == 0:
                    time.sleep(0.001)
            self.assertBody(c.read_response(), 200, HEALTH)
            self.assertBody(c.read_response('POST'), 200, b'"0.7.0"\n')
            self.assertBody(c.read_response(), 200, VERSION)
            c.close()

    def test_pipelined_requests_after_a_fatal_error_are_not_served(self):
        s = 'pipe-' + H.uid()
        raw = (req('GET', '/health') + b'GARBAGE\r\n\r\n' +
               req('POST', '/rpc', rpc_body('stream.write', s, {'type': 'T', 'data': {}})))
        c = self.conn()
        c.send(raw)
        self.assertBody(c.read_response(), 200, HEALTH)
        self.assertBody(c.read_response(), 400, MALFORMED)
        self.assertTrue(c.closed_within(3))
        c.close()
        self.assertEqual(H.Client(SRV.port).call('stream.version', s), None)

    def test_many_simultaneous_connections(self):
        conns = [self.conn(timeout=30) for _ in range(300)]
        for c in conns:
            c.send(req('GET', '/health'))
        for c in conns:
            self.assertBody(c.read_response(), 200, HEALTH)
            c.close()


class StoreWorker(FramingCase):
    """/rpc calls run on a store worker thread while the loop goes on; the
    durable store (STRICT) makes each batch slow enough (an fsync) for
    requests and hang-ups to arrive while one runs."""

    def test_requests_sent_while_earlier_ones_run_are_answered_in_order(self):
        for k in range(20):
            s = 'overlap-' + H.uid()
            c = self.conn(STRICT)
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.send(req('POST', '/rpc', rpc_body('stream.write', s, {'type': 'A', 'data': {}}),
                       token=H.TOKEN_DEFAULT))
            if k % 2:
                time.sleep(0.0002)
            c.send(req('POST', '/rpc', rpc_body('stream.write', s, {'type': 'B', 'data': {}}),
                       token=H.TOKEN_DEFAULT) +
                   req('GET', '/health') +
                   req('POST', '/rpc', rpc_body('stream.get', s), token=H.TOKEN_DEFAULT))
            rs = [c.read_response(m) for m in ('POST', 'POST', 'GET', 'POST')]
            c.close()
            self.assertEqual(rs[0].json()['position'], 0)
            self.assertEqual(rs[1].json()['position'], 1)
            self.assertBody(rs[2], 200, HEALTH)
            self.assertEqual([m[1] for m in rs[3].json()], ['A', 'B'])

    def test_clients_gone_while_their_calls_run_leave_whole_streams(self):
        streams = []
        for round_ in range(3):
            conns = []
            for i in range(16):
                s = 'gone-%d-%d-%s' % (round_, i, H.uid())
                streams.append(s)
                c = self.conn(STRICT)
                c.send(b''.join(req('POST', '/rpc',
                                    rpc_body('stream.write', s, {'type': 'T', 'data': {'i': j}}),
                                    token=H.TOKEN_DEFAULT) for j in range(30)))
                conns.append(c)
            time.sleep(0.002 * round_)
            for i, c in enumerate(conns):
                if i % 2:
                    c.abort()
                else:
                    c.close()
        self.still_serves(STRICT)
        cl = H.Client(STRICT.port, token=H.TOKEN_DEFAULT)
        try:
            for s in streams:
                rows = cl.call('stream.get', s, {'batchSize': -1})
                self.assertEqual([m[2] for m in rows], list(range(len(rows))), s)
                self.assertEqual([m[4]['i'] for m in rows], list(range(len(rows))), s)
            text = cl.request('GET', '/metrics').body.decode()
        finally:
            cl.close()
        batches = int(re.search(r'^streamstore_rpc_batches_total (\d+)$', text, re.M).group(1))
        calls = int(re.search(r'^streamstore_rpc_batched_calls_total (\d+)$', text, re.M).group(1))
        self.assertGreater(batches, 0)
        self.assertGreaterEqual(calls, batches)


class RequestBodies(FramingCase):
    def test_chunked_request_bodies(self):
        body = (b'7;ext=1\r\n["sys.v\r\n'
                b'A\r\nersion", 1\r\n'
                b'1;a;b="c"\r\n]\r\n'
                b'0\r\nX-Trailer: yes\r\nOther: 1\r\n\r\n')
        c = self.conn()
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' + body)
        self.assertBody(c.read_response('POST'), 200, b'"0.7.0"\n')
        # the connection stays usable
        self.assertBody(c.request('GET', '/health'), 200, HEALTH)
        s = 'chunk-' + H.uid()
        payload = rpc_body('stream.write', s, {'type': 'T', 'data': {'x': 'y' * 5000}})
        parts = [payload[i:i + 777] for i in range(0, len(payload), 777)]
        raw = b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in parts) + b'0\r\n\r\n'
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' + raw)
        r = c.read_response('POST')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()['position'], 0)
        r = c.request('POST', '/rpc', rpc_body('stream.get', s))
        self.assertEqual(r.json()[0][4], {'x': 'y' * 5000})
        c.close()

    def test_empty_chunked_body_is_malformed_json(self):
        c = self.conn()
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
        r = c.read_response('POST')
        self.assertEqual(r.status, 400)
        self.assertIn(b'Malformed JSON request', r.body)
        c.close()

    def test_body_arriving_in_pieces(self):
        body = b'["sys.version"]'
        c = self.conn()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % len(body))
        for b in body:
            time.sleep(0.01)
            c.send(bytes([b]))
        self.assertBody(c.read_response('POST'), 200, b'"0.7.0"\n')
        c.close()

    def test_large_body_under_the_limit(self):
        s = 'large-' + H.uid()
        data = {'blob': 'z' * (5 << 20)}
        r = H.Client(SRV.port).rpc('stream.write', s, {'type': 'T', 'data': data})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(H.Client(SRV.port).call('stream.get', s)[0][4], data)

    def test_expect_100_continue(self):
        body = b'["sys.version"]'
        c = self.conn()
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n' % len(body))
        interim = c.read_until(b'\r\n\r\n', time.time() + 3)
        self.assertEqual(interim, b'HTTP/1.1 100 Continue\r\n\r\n')
        c.send(body)
        self.assertBody(c.read_response('POST'), 200, b'"0.7.0"\n')
        # chunked with Expect too
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n')
        self.assertEqual(c.read_until(b'\r\n\r\n', time.time() + 3), b'HTTP/1.1 100 Continue\r\n\r\n')
        c.send(b'f\r\n["sys.version"]\r\n0\r\n\r\n')
        self.assertBody(c.read_response('POST'), 200, b'"0.7.0"\n')
        c.close()

    def test_expect_100_with_auth_failure_answers_at_once_and_closes(self):
        c = self.conn(STRICT)
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 15\r\n\r\n')
        r = c.read_response('POST', keep_interim=False)
        self.assertEqual(r.interim, [])
        self.assertBody(r, 401, H.err_body('AUTH_REQUIRED', 'Authorization header required'))
        self.assertTrue(c.closed_within(3))
        c.close()
        self.still_serves(STRICT)

    def test_expect_100_with_oversized_body_is_413_without_continue(self):
        c = self.conn()
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 209715200\r\n\r\n')
        r = c.read_response('POST', keep_interim=False)
        self.assertEqual(r.interim, [])
        self.assertBody(r, 413, TOO_LARGE % 104857600)
        self.assertTrue(c.closed_within(3))
        c.close()


class Limits(FramingCase):
    def test_413_is_sent_before_the_body_is_read(self):
        for path in ('/rpc', '/import', '/import?force=true', '/subscribe?all=true', '/health', '/nope'):
            with self.subTest(path=path):
                c = self.conn()
                t0 = time.time()
                c.send(b'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n' % path.encode())
                r = c.read_response('POST', deadline=time.time() + 5)
                self.assertLess(time.time() - t0, 2.0)
                self.assertBody(r, 413, TOO_LARGE % 104857600)
                self.assertEqual((r.header('connection') or '').lower(), 'close')
                self.assertTrue(c.closed_within(3))
                c.close()
        self.still_serves()

    def test_limit_is_inclusive(self):
        lim = 1048576
        body = b'["sys.version"]'
        body += b' ' * (lim - len(body))
        c = self.conn(SMALL)
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % lim + body)
        self.assertBody(c.read_response('POST'), 200, b'"0.7.0"\n')
        c.close()
        self.assertClosesWith(b'POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % (lim + 1),
                              413, TOO_LARGE % lim, SMALL)

    def test_chunked_body_over_the_limit(self):
        lim = 1048576
        c = self.conn(SMALL)
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')
        piece = b' ' * 65536
        try:
            for _ in range(24):      # 1.5 MiB
                c.send(b'10000\r\n' + piece + b'\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response('POST')
        self.assertBody(r, 413, TOO_LARGE % lim)
        self.assertTrue(c.closed_within(3))
        c.close()
        self.still_serves(SMALL)

    def test_431_for_a_20_kib_head(self):
        self.assertClosesWith(b'GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ' + b'a' * 20480 + b'\r\n\r\n',
                              431, HEADERS_TOO_LARGE)
        many = b''.join(b'X-H%d: %s\r\n' % (i, b'v' * 40) for i in range(450))
        self.assertClosesWith(b'POST /rpc HTTP/1.1\r\nHost: x\r\n' + many + b'Content-Length: 15\r\n\r\n'
                              b'["sys.version"]', 431, HEADERS_TOO_LARGE)
        self.assertClosesWith(b'GET /' + b'p' * 20480 + b' HTTP/1.1\r\nHost: x\r\n\r\n', 431, HEADERS_TOO_LARGE)

    def test_head_under_16_kib_is_fine(self):
        c = self.conn()
        r = c.request('GET', '/health', headers=[('X-Pad', 'a' * (15 * 1024))])
        self.assertBody(r, 200, HEALTH)
        c.close()


class BadFraming(FramingCase):
    def test_conflicting_or_unparseable_content_length(self):
        for cl in ([b'5', b'6'], [b'15', b'16'], [b'abc'], [b'-1'], [b'1 5'], [b'+15'], [b'0x0f'], [b''],
                   [b'15, 16'], [b'1.5']):
            with self.subTest(cl=cl):
                hdrs = b''.join(b'Content-Length: %s\r\n' % v for v in cl)
                self.assertClosesWith(b'POST /rpc HTTP/1.1\r\nHost: x\r\n' + hdrs + b'\r\n["sys.version"]',
                                      400, MALFORMED)

    def test_repeated_identical_content_length_is_fine(self):
        c = self.conn()
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\nContent-Length: 15\r\n\r\n["sys.version"]')
        self.assertBody(c.read_response('POST'), 200, b'"0.7.0"\n')
        c.close()

    def test_huge_content_length_number(self):
        c = self.conn()
        c.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n')
        r = c.read_response('POST')
        self.assertIn(r.status, (400, 413), r)
        self.assertTrue(c.closed_within(3))
        c.close()
        self.still_serves()

    def test_content_length_with_chunked(self):
        for hdrs in (b'Content-Length: 15\r\nTransfer-Encoding: chunked\r\n',
                     b'Transfer-Encoding: chunked\r\nContent-Length: 15\r\n'):
            with self.subTest(hdrs=hdrs):
                self.assertClosesWith(b'POST /rpc HTTP/1.1\r\nHost: x\r\n' + hdrs + b'\r\nf\r\n["sys.version"]\r\n0\r\n\r\n',
                                      400, MALFORMED)

    def test_bad_chunk_sizes(self):
        for chunks in (b'zz\r\n["sys.version"]\r\n0\r\n\r\n', b'-f\r\n["sys.version"]\r\n0\r\n\r\n',
                       b'\r\n["sys.version"]\r\n0\r\n\r\n', b'f\r\n["sys.version"]XX0\r\n\r\n',
                       b'0x0f\r\n["sys.version"]\r\n0\r\n\r\n', b'g\r\n'):
            with self.subTest(chunks=chunks):
                self.assertClosesWith(b'POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' + chunks,
                                      400, MALFORMED)

    def test_unsupported_transfer_encoding(self):
        for te in (b'gzip', b'gzip, chunked', b'deflate', b'identity', b'chunked, gzip'):
            with self.subTest(te=te):
                self.assertClosesWith(b'POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ' + te +
                                      b'\r\n\r\nf\r\n["sys.version"]\r\n0\r\n\r\n', 501, NOT_IMPL)

    def test_malformed_request_lines_and_headers(self):
        for raw in (b'GARBAGE\r\n\r\n', b'GET /health\r\n\r\n', b'GET /health HTTP/1.1 extra\r\n\r\n',
                    b'GET /health XTTP/1.1\r\n\r\n', b'GET /health HTTP/1.1\r\nNoColonHeader\r\n\r\n',
                    b'GET /health HTTP/1.1\r\n: novalue\r\n\r\n', b'GET /health HTTP/1.1\r\nHost : x\r\n\r\n',
                    b'GET /health HTTP/1.1\r\nX-A: a\x00b\r\n\r\n', b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n',
                    b'GET\x00/health HTTP/1.1\r\n\r\n', b'GET /he alth HTTP/1.1\r\n\r\n'):
            with self.subTest(raw=raw):
                self.assertClosesWith(raw, 400, MALFORMED)


class Routing(FramingCase):
    def test_health_and_version_exact_for_any_method(self):
        c = self.conn()
        for method, body in (('GET', None), ('POST', b'x'), ('PUT', b''), ('DELETE', None), ('OPTIONS', None)):
            with self.subTest(method=method):
                for path, want in (('/health', HEALTH), ('/version', VERSION)):
                    r = c.request(method, path, body)
                    self.assertBody(r, 200, want)
                    self.assertEqual(int(r.header('content-length')), len(want))
        c.close()

    def test_404_exact_without_newline(self):
        for path in ('/nope', '/rpc/', '/RPC', '/health/', '/admin/namespaces', '/debug/pprof/',
                     '/subscribe/stream/x', '/', '/rpcx', '/export/'):
            with self.subTest(path=path):
                for method in ('GET', 'POST'):
                    r = self.conn().request(method, path, b'["sys.version"]' if method == 'POST' else None)
                    self.assertBody(r, 404, NOT_FOUND)

    def test_405_with_allow_after_auth(self):
        c = self.conn()
        for method in ('GET', 'PUT', 'DELETE', 'PATCH'):
            with self.subTest(method=method):
                r = c.request(method, '/rpc')
                self.assertBody(r, 405, b'{"error":{"code":"INVALID_REQUEST","message":"Only POST method allowed"}}\n')
                self.assertEqual(r.header('allow'), 'POST')
        for method in ('POST', 'PUT', 'DELETE'):
            with self.subTest(method=method):
                r = c.request(method, '/export', b'')
                self.assertBody(r, 405, b'{"error":{"code":"INVALID_REQUEST","message":"Only GET method allowed"}}\n')
                self.assertEqual(r.header('allow'), 'GET')
        c.close()

    def test_head(self):
        c = self.conn()
        for path, want in (('/health', HEALTH), ('/version', VERSION)):
            r = c.request('HEAD', path)
            self.assertEqual((r.status, r.body), (200, b''))
            self.assertEqual(r.header('content-type').split(';')[0], 'application/json')
            self.assertEqual(r.header('content-length'), str(len(want)))
        r = c.request('HEAD', '/nope')
        self.assertEqual((r.status, r.body), (404, b''))
        self.assertEqual(r.header('content-length'), str(len(NOT_FOUND)))
        r = c.request('HEAD', '/metrics')
        self.assertEqual((r.status, r.body), (200, b''))
        r = c.request('HEAD', '/rpc')
        self.assertEqual((r.status, r.body), (405, b''))
        # nothing was sent after the heads: the next response parses cleanly
        self.assertBody(c.request('GET', '/health'), 200, HEALTH)
        self.assertFalse(c.buf)
        c.close()

    def test_slashes_collapse_and_query_is_ignored(self):
        c = self.conn()
        self.assertBody(c.request('POST', '//rpc', b'["sys.version"]'), 200, b'"0.7.0"\n')
        self.assertBody(c.request('POST', '///rpc?x=1&y', b'["sys.version"]'), 200, b'"0.7.0"\n')
        self.assertBody(c.request('GET', '//health'), 200, HEALTH)
        self.assertBody(c.request('GET', '/health?verbose=1'), 200, HEALTH)
        self.assertBody(c.request('GET', '//version//'), 404, NOT_FOUND)
        self.assertBody(c.request('GET', '/rpc//'), 404, NOT_FOUND)
        c.close()

    def test_common_headers(self):
        c = self.conn()
        lv = H.lib_version()
        for method, path, body in (('GET', '/health', None), ('GET', '/nope', None),
                                   ('POST', '/rpc', b'["sys.version"]'), ('POST', '/rpc', b'[')):
            r = c.request(method, path, body)
            self.assertRegex(r.header('date', ''), H.IMF_DATE_RE)
            self.assertEqual(r.header('server'), 'libstreamstore/' + lv if lv else r.header('server'))
            self.assertEqual(int(r.header('content-length')), len(r.body))
            self.assertIsNone(r.header('access-control-allow-origin'))
            self.assertIsNone(r.header('transfer-encoding'))
        c.close()

    def test_metrics_endpoint(self):
        r = H.http_get(SRV.port, '/metrics')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
        self.assertRegex(r.body, rb'streamstore_build_info\{[^}]*protocol="0\.7\.0"[^}]*\} 1')
        self.assertIn(b'streamstore_http_requests_total{', r.body)


class Robustness(FramingCase):
    def test_server_answers_after_each_bad_request(self):
        bad = [b'GARBAGE\r\n\r\n', b'POST /rpc HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n',
               b'POST /rpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
               b'POST /rpc HTTP/1.1\r\nContent-Length: 209715200\r\n\r\n',
               b'GET / HTTP/1.1\r\nX: ' + b'a' * 20000 + b'\r\n\r\n',
               b'POST /rpc HTTP/1.1\r\nContent-Length: 3\r\n\r\n[[[',
               b'POST /rpc HTTP/1.1\r\nContent-Length: 2\r\n\r\n\xff\xfe',
               b'\x00\x00\x00\x00', b'\r\n\r\n\r\n', b'POST /rpc HTTP/1.1\r\n']
        for raw in bad:
            with self.subTest(raw=raw[:40]):
                c = self.conn()
                try:
                    c.send(raw)
                    c.sock.shutdown(socket.SHUT_WR)
                    c.read_to_eof(time.time() + 5)
                except OSError:
                    pass
                c.close()
                self.still_serves()

    def test_rss_stays_flat_over_10000_bad_requests(self):
        def burst(n):
            # keep-alive bad requests, pipelined in groups of 100
            ka = [req('POST', '/rpc', b'{"a":1}'), req('POST', '/rpc', b'["nope.method"]'),
                  req('GET', '/nope'), req('POST', '/rpc', b'["stream.get","",{}]'),
                  req('POST', '/rpc', b'["sys.version","\xff"]'),
                  req('POST', '/rpc', b'[' * 2000)]
            closing = [b'GARBAGE\r\n\r\n',
                       b'POST /rpc HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n',
                       b'POST /rpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
                       b'POST /rpc HTTP/1.1\r\nContent-Length: 209715200\r\n\r\n',
                       b'GET / HTTP/1.1\r\nX: ' + b'a' * 17000 + b'\r\n\r\n',
                       b'POST /rpc HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n',
                       req('POST', '/rpc', b'["sys.version"]', token='invalid-token')]
            n_ka = n * 6 // 10
            c = self.conn(timeout=30)
            done = 0
            while done < n_ka:
                group = [ka[(done + i) % len(ka)] for i in range(min(100, n_ka - done))]
                c.send(b''.join(group))
                for _ in group:
                    c.read_response('POST')
                done += len(group)
            c.close()
            for i in range(n - n_ka):
                k = self.conn(timeout=10)
                try:
                    k.send(closing[i % len(closing)])
                    k.read_response()
                except (OSError, H.ConnClosed, ValueError):
                    pass
                k.close()
        burst(1000)
        time.sleep(0.2)
        rss0 = SRV.rss_kb()
        burst(10000)
        time.sleep(0.5)
        rss1 = SRV.rss_kb()
        H.note('VmRSS %d kB -> %d kB over 10000 bad requests', rss0, rss1)
        self.still_serves()
        self.assertLess(rss1 - rss0, 5 * 1024, 'VmRSS grew from %d kB to %d kB' % (rss0, rss1))


    def test_clients_vanishing_mid_response(self):
        s = 'vanish-' + H.uid()
        H.Client(SRV.port).write(s, data={'x': 'y' * 200000})
        body = rpc_body('stream.get', s)
        for i in range(100):
            c = self.conn()
            c.send(req('POST', '/rpc', body) * 3)
            if i % 2:
                c.abort()
            else:
                c.close()
        self.assertTrue(SRV.alive())
        self.still_serves()


class Metrics(FramingCase):
    """GET /metrics (12.4), on a server of its own."""

    def setUp(self):
        self.srv = H.Server()

    def tearDown(self):
        self.srv.stop()

    def value(self, body, series):
        m = re.search(rb'^' + re.escape(series.encode()) + rb' (\S+)$', body, re.M)
        return float(m.group(1)) if m else None

    def test_counters_gauges_and_labels(self):
        port = self.srv.port
        c = H.Client(port, H.TOKEN_DEFAULT)
        for i in range(3):
            c.write('secretstream-1', data={'secretvalue': 1})
        c.rpc('stream.write', 'secretstream-1', {'type': 'T', 'data': {}}, {'expectedVersion': 99})
        c.rpc('secret.method')
        c.rpc_raw(b'[1]')
        c.call('ns.create', 'secretns', {'description': 'secretdesc'})
        s1 = H.subscribe(port, 'stream=secretstream-1')
        s2 = H.subscribe(port, 'category=secretstream')
        H.http_get(port, '/nope-secretpath')
        body = H.http_get(port, '/metrics').body
        for series, want in (('streamstore_rpc_requests_total{method="stream.write",status="200"}', 3),
                             ('streamstore_rpc_requests_total{method="stream.write",status="409"}', 1),
                             ('streamstore_rpc_requests_total{method="unknown",status="404"}', 1),
                             ('streamstore_rpc_requests_total{method="invalid",status="400"}', 1),
                             ('streamstore_rpc_requests_total{method="ns.create",status="200"}', 1),
                             ('streamstore_sse_subscribers{kind="stream"}', 1),
                             ('streamstore_sse_subscribers{kind="category"}', 1)):
            with self.subTest(series=series):
                self.assertEqual(self.value(body, series), want, body.decode()[:3000])
        self.assertIsNotNone(self.value(body, 'streamstore_http_requests_total{endpoint="other",status="404"}'))
        self.assertGreaterEqual(self.value(body, 'streamstore_http_requests_total{endpoint="/rpc",status="200"}'), 4)
        for secret in (b'secretstream', b'secretvalue', b'secret.method', b'secretns', b'secretdesc',
                       b'secretpath', H.TOKEN_DEFAULT.encode()):
            self.assertNotIn(secret, body)
        self.assertIn(b'# TYPE streamstore_write_duration_seconds histogram', body)
        buckets = re.findall(rb'^streamstore_write_duration_seconds_bucket\{le="([^"]+)"\}', body, re.M)
        self.assertEqual(buckets, [b'0.0005', b'0.001', b'0.0025', b'0.005', b'0.01', b'0.025', b'0.05', b'0.1',
                                   b'0.25', b'0.5', b'1', b'2.5', b'5', b'10', b'+Inf'])
        self.assertEqual(self.value(body, 'streamstore_write_duration_seconds_count'), 4)
        for name in (b'streamstore_read_duration_seconds', b'streamstore_sse_pokes_total',
                     b'streamstore_sse_disconnects_total', b'streamstore_store_size_bytes',
                     b'streamstore_build_info'):
            self.assertIn(name, body)
        # Every RPC call went through a store batch (one call each here: the
        # client waits for each answer); the library allocator is counted.
        self.assertEqual(self.value(body, 'streamstore_rpc_batches_total'),
                         self.value(body, 'streamstore_rpc_batched_calls_total'))
        self.assertEqual(self.value(body, 'streamstore_rpc_batched_calls_total'), 7)
        self.assertGreater(self.value(body, 'streamstore_library_allocations_total'), 0)
        self.assertIsNone(self.value(body, 'streamstore_process_mallocs_total'))
        s1.close()
        s2.close()
        deadline = time.time() + 3
        while time.time() < deadline:
            body = H.http_get(port, '/metrics').body
            if self.value(body, 'streamstore_sse_subscribers{kind="stream"}') == 0:
                break
            time.sleep(0.05)
        self.assertEqual(self.value(body, 'streamstore_sse_subscribers{kind="stream"}'), 0)
        self.assertGreaterEqual(self.value(body, 'streamstore_sse_disconnects_total{reason="client"}') or 0, 1)


if __name__ == '__main__':
    H.main(__name__)
