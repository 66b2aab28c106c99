"""Shared helpers for the HTTP integration tests of shim-server.

Standard library only.  Every test file is run as

    python3 test_<group>.py <path to shim-server> [unittest names...]

and starts its own server processes on ephemeral ports.  The HTTP client
here is deliberately raw (bytes over a socket) so that tests can send
malformed requests and look at the exact bytes of every answer.
"""

import atexit
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid

SHIM = os.environ.get('SHIM_SERVER', '')
HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.dirname(os.path.dirname(HERE))

ZEROS = '0' * 64
PROTOCOL_VERSION = '0.7.0'

TS_RE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$')
# Message times have microsecond precision: at most 6 digits, no trailing 0.
MSG_TS_RE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{0,5}[1-9])?Z$')
UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
UUID7_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
TOKEN_RE = re.compile(r'^ns_[A-Za-z0-9_-]+_[0-9a-f]{64}$')
IMF_DATE_RE = re.compile(
    r'^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} '
    r'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} '
    r'\d{2}:\d{2}:\d{2} GMT$')


def note(fmt, *args):
    """A measured value worth seeing in the test log."""
    sys.stdout.write('  [note] ' + (fmt % args if args else fmt) + '\n')
    sys.stdout.flush()


def lib_version():
    try:
        with open(os.path.join(SRC_ROOT, 'VERSION')) as f:
            return f.read().strip()
    except OSError:
        return None


# ---------------------------------------------------------------------------
# Tokens and JSON
# ---------------------------------------------------------------------------

def b64ns(ns):
    return base64.urlsafe_b64encode(ns.encode('utf-8')).decode().rstrip('=')


def token_for(ns, secret=ZEROS):
    return 'ns_' + b64ns(ns) + '_' + secret


TOKEN_DEFAULT = token_for('default')


def uid(n=10):
    return uuid.uuid4().hex[:n]


def jdump(v):
    """Compact JSON as the server writes it (raw UTF-8, no spaces)."""
    return json.dumps(v, separators=(',', ':'), ensure_ascii=False)


def jbytes(v):
    return jdump(v).encode('utf-8')


def err_body(code, message, details=None):
    """The exact bytes of an RPC error response (PROTOCOL 5.2)."""
    e = '{"code":%s,"message":%s' % (jdump(code), jdump(message))
    if details:
        e += ',"details":' + json.dumps(details, separators=(',', ':'),
                                        ensure_ascii=False, sort_keys=True)
    return ('{"error":' + e + '}}\n').encode('utf-8')


def ts_micros(ts):
    """Timestamp text -> (epoch seconds, nanoseconds) for ordering."""
    m = re.match(r'^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$', ts)
    if not m:
        raise ValueError('bad timestamp %r' % ts)
    import calendar
    secs = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)))
    frac = (m.group(7) or '').ljust(9, '0')
    return secs * 10**9 + int(frac)


# ---------------------------------------------------------------------------
# Raw HTTP/1.1 client
# ---------------------------------------------------------------------------

class ConnClosed(Exception):
    """The peer closed the connection (EOF or reset) while we needed bytes."""


class Response(object):
    def __init__(self):
        self.version = ''
        self.status = 0
        self.reason = ''
        self.headers = []          # [(name, value)] in order
        self.body = b''
        self.chunks = None         # list of chunk payloads when chunked
        self.raw_head = b''
        self.interim = []          # 1xx responses seen before this one

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    def text(self):
        return self.body.decode('utf-8', 'replace')

    def __repr__(self):
        return '<Response %d %r %r>' % (self.status, self.headers, self.body[:300])


class Conn(object):
    """One TCP connection speaking raw HTTP/1.1."""

    def __init__(self, port, host='127.0.0.1', timeout=10.0, rcvbuf=None,
                 family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b''
        self.port = port
        self.eof = False

    # -- low level ---------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with RST (SO_LINGER 0)."""
        import struct
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack('ii', 1, 0))
        except OSError:
            pass
        self.close()

    def _fill(self, deadline=None):
        if deadline is not None:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise socket.timeout('deadline passed')
            self.sock.settimeout(remaining)
        else:
            self.sock.settimeout(self.timeout)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            self.eof = True
            raise ConnClosed('connection reset')
        if not data:
            self.eof = True
            raise ConnClosed('EOF')
        self.buf += data

    def read_until(self, delim, deadline=None, limit=1 << 26):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = self.buf[:i + len(delim)]
                self.buf = self.buf[i + len(delim):]
                return out
            if len(self.buf) > limit:
                raise ValueError('no %r within %d bytes' % (delim, limit))
            self._fill(deadline)

    def read_exact(self, n, deadline=None):
        while len(self.buf) < n:
            self._fill(deadline)
        out = self.buf[:n]
        self.buf = self.buf[n:]
        return out

    def read_to_eof(self, deadline=None):
        try:
            while True:
                self._fill(deadline)
        except ConnClosed:
            pass
        out = self.buf
        self.buf = b''
        return out

    def closed_within(self, seconds):
        """True if the peer closes (EOF/RST) within `seconds`; any bytes
        arriving meanwhile are kept in self.buf."""
        deadline = time.time() + seconds
        try:
            while True:
                self._fill(deadline)
        except ConnClosed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    # -- HTTP --------------------------------------------------------------
    def read_head(self, deadline=None):
        raw = self.read_until(b'\r\n\r\n', deadline)
        r = Response()
        r.raw_head = raw
        lines = raw[:-4].split(b'\r\n')
        parts = lines[0].decode('latin-1').split(' ', 2)
        r.version = parts[0]
        r.status = int(parts[1])
        r.reason = parts[2] if len(parts) > 2 else ''
        for line in lines[1:]:
            k, _, v = line.decode('latin-1').partition(':')
            r.headers.append((k, v.strip()))
        return r

    def read_chunk(self, deadline=None):
        """One chunk of a chunked body; b'' for the last chunk (trailers
        consumed)."""
        line = self.read_until(b'\r\n', deadline)
        size = int(line.split(b';')[0].strip(), 16)
        if size == 0:
            while self.read_until(b'\r\n', deadline) != b'\r\n':
                pass
            return b''
        data = self.read_exact(size, deadline)
        if self.read_exact(2, deadline) != b'\r\n':
            raise ValueError('chunk not followed by CRLF')
        return data

    def read_response(self, method='GET', deadline=None, keep_interim=True):
        if deadline is None:
            deadline = time.time() + self.timeout
        interim = []
        while True:
            r = self.read_head(deadline)
            if 100 <= r.status < 200 and r.status != 101:
                interim.append(r)
                if not keep_interim:
                    return r
                continue
            break
        r.interim = interim
        te = (r.header('transfer-encoding') or '').lower()
        cl = r.header('content-length')
        if method == 'HEAD' or r.status in (204, 304):
            return r
        if 'chunked' in te:
            r.chunks = []
            while True:
                c = self.read_chunk(deadline)
                if c == b'':
                    break
                r.chunks.append(c)
            r.body = b''.join(r.chunks)
        elif cl is not None:
            r.body = self.read_exact(int(cl), deadline)
        else:
            r.body = self.read_to_eof(deadline)
        return r

    def request(self, method, path, body=None, headers=None,
                version='HTTP/1.1', token=None, deadline=None):
        self.send(build_request(method, path, body, headers, version, token))
        return self.read_response(method, deadline)


def build_request(method, path, body=None, headers=None, version='HTTP/1.1',
                  token=None):
    if isinstance(body, str):
        body = body.encode('utf-8')
    hdrs = [('Host', '127.0.0.1')]
    if token is not None:
        hdrs.append(('Authorization', 'Bearer ' + token))
    names = set()
    for k, v in (headers or []):
        hdrs.append((k, v))
        names.add(k.lower())
    if body is not None and 'content-length' not in names and \
            'transfer-encoding' not in names:
        hdrs.append(('Content-Length', str(len(body))))
    head = '%s %s %s\r\n' % (method, path, version)
    head += ''.join('%s: %s\r\n' % kv for kv in hdrs) + '\r\n'
    return head.encode('utf-8') + (body or b'')


def rpc_body(*args):
    return jbytes(list(args))


class Client(object):
    """A keep-alive client with RPC conveniences; reconnects when needed."""

    def __init__(self, port, token=None, timeout=30.0):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = Conn(self.port, timeout=self.timeout)
        return self.conn

    def request(self, method, path, body=None, headers=None, token='__default__'):
        tok = self.token if token == '__default__' else token
        data = build_request(method, path, body, headers, token=tok)
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.send(data)
                r = c.read_response(method)
            except (ConnClosed, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
                continue
            if (r.header('connection') or '').lower() == 'close':
                self.close()
            return r

    def rpc_raw(self, body, token='__default__', headers=None):
        return self.request('POST', '/rpc', body, headers, token)

    def rpc(self, *args, **kw):
        return self.rpc_raw(rpc_body(*args), **kw)

    def call(self, *args, **kw):
        """RPC expected to succeed; returns the parsed result."""
        r = self.rpc(*args, **kw)
        if r.status != 200:
            raise AssertionError('%s -> %d %r' % (jdump(list(args))[:200],
                                                  r.status, r.body[:500]))
        if not r.body.endswith(b'\n'):
            raise AssertionError('RPC body without trailing newline: %r' % r.body[:200])
        return json.loads(r.body)

    def write(self, stream, type_='T', data=None, **opts):
        msg = {'type': type_, 'data': {} if data is None else data}
        if 'metadata' in opts:
            msg['metadata'] = opts.pop('metadata')
        if opts:
            return self.call('stream.write', stream, msg, opts)
        return self.call('stream.write', stream, msg)

    def new_namespace(self, prefix='t'):
        """Creates a fresh namespace; returns (id, token).  The token is a
        client-built one (64 zeros), which ns.create stores (6.8)."""
        ns = '%s_%s' % (prefix, uid(12))
        tok = token_for(ns)
        res = self.call('ns.create', ns, {'token': tok})
        assert res['token'] == tok, res
        return ns, tok


def http_get(port, path, token=None, headers=None, timeout=10.0):
    c = Conn(port, timeout=timeout)
    try:
        return c.request('GET', path, headers=headers, token=token)
    finally:
        c.close()


# ---------------------------------------------------------------------------
# SSE reader
# ---------------------------------------------------------------------------

class SSE(object):
    """A /subscribe connection.  Blocks are split on "\\n\\n"."""

    def __init__(self, port, query, token=None, headers=None, rcvbuf=None,
                 timeout=10.0, version='HTTP/1.1', connect_only=False):
        self.conn = Conn(port, timeout=timeout, rcvbuf=rcvbuf)
        self.text = b''
        self.chunks = []
        self.ended = False          # terminating chunk seen
        self.query = query
        self.conn.send(build_request('GET', '/subscribe?' + query, None,
                                     headers, version, token))
        self.head = None
        if not connect_only:
            self.head = self.conn.read_head(time.time() + timeout)

    @property
    def status(self):
        return self.head.status

    @property
    def chunked(self):
        return 'chunked' in (self.head.header('transfer-encoding') or '').lower()

    def read_error_body(self):
        """For non-200 answers: the (Content-Length framed) body."""
        cl = self.head.header('content-length')
        if cl is not None:
            return self.conn.read_exact(int(cl))
        return self.conn.read_to_eof(time.time() + 5)

    def _more(self, deadline):
        if self.ended:
            raise ConnClosed('stream ended with the terminating chunk')
        if self.chunked:
            c = self.conn.read_chunk(deadline)
            if c == b'':
                self.ended = True
                raise ConnClosed('stream ended with the terminating chunk')
            self.chunks.append(c)
            self.text += c
        else:
            before = len(self.conn.buf)
            if before == 0:
                self.conn._fill(deadline)
            self.text += self.conn.buf
            self.conn.buf = b''

    def next_block(self, timeout=5.0):
        """The next "\\n\\n"-terminated block (without the terminator)."""
        deadline = time.time() + timeout
        while True:
            i = self.text.find(b'\n\n')
            if i >= 0:
                blk = self.text[:i]
                self.text = self.text[i + 2:]
                return blk.decode('utf-8')
            self._more(deadline)

    def next_poke(self, timeout=5.0, skip_comments=True):
        """The next poke as a dict; comments (": ...") skipped."""
        while True:
            blk = self.next_block(timeout)
            if blk.startswith(':') and skip_comments:
                continue
            return parse_poke(blk)

    def pokes(self, n, timeout=10.0):
        deadline = time.time() + timeout
        out = []
        while len(out) < n:
            out.append(self.next_poke(max(0.001, deadline - time.time())))
        return out

    def quiet_for(self, seconds):
        """True when no event/comment other than pings arrives for `seconds`."""
        deadline = time.time() + seconds
        while True:
            try:
                blk = self.next_block(max(0.001, deadline - time.time()))
            except (socket.timeout, TimeoutError):
                return True
            if blk == ': ping':
                continue
            self.unexpected = blk
            return False

    def close(self):
        self.conn.close()


POKE_RE = re.compile(
    r'^event: poke\ndata: (\{"stream":("(?:[^"\\]|\\.)*"),"position":(-?\d+),'
    r'"globalPosition":(-?\d+)\})$', re.S)


def parse_poke(blk):
    m = POKE_RE.match(blk)
    if not m:
        raise AssertionError('not a poke block: %r' % blk)
    d = json.loads(m.group(1))
    return d


def subscribe(port, query, token=None, **kw):
    """Opens a subscription and consumes headers + ': ready'."""
    s = SSE(port, query, token=token, **kw)
    if s.status != 200:
        raise AssertionError('subscribe %s -> %d %r' % (query, s.status,
                                                        s.read_error_body()))
    blk = s.next_block(kw.get('timeout', 10.0))
    if blk != ': ready':
        raise AssertionError('first SSE block %r, expected ": ready"' % blk)
    return s


# ---------------------------------------------------------------------------
# Server process
# ---------------------------------------------------------------------------

PORT_RE = re.compile(r'\bport"?\s*[=:]\s*"?(\d+)')
# SHIM_VALGRIND: run the server under memcheck; --quiet leaves only reports,
# each line of which starts with ==<pid>==.
VALGRIND = ['valgrind', '--quiet', '--leak-check=full', '--show-leak-kinds=definite,indirect',
            '--errors-for-leak-kinds=definite,indirect', '--track-fds=yes']
VALGRIND_LINE = re.compile(r'==\d+== ')

# Every server started, so that none outlives the test process: a failed
# check in one teardown must not leave the others running (under valgrind
# they would go on holding CPU and memory).
_STARTED = []


def _kill_leftovers():
    for srv in _STARTED:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


atexit.register(_kill_leftovers)


class Server(object):
    """A shim-server process on an ephemeral port."""

    def __init__(self, args=None, env=None, cwd=None, test_mode=True,
                 token=TOKEN_DEFAULT, data_dir=None, db_url=None,
                 extra=None, wait=True, port=0):
        self.exe = SHIM
        a = []
        if test_mode:
            a.append('--test-mode')
        a.append('--port=%d' % port)
        if token:
            a.append('--token=' + token)
        if data_dir:
            a.append('--data-dir=' + data_dir)
        if db_url:
            a.append('--db-url=' + db_url)
        if args is not None:
            a = list(args)
        a += list(extra or [])
        self.args = a
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith('EVENTODB_'):
                del self.env[k]
        self.env.update(env or {})
        self.cwd = cwd
        self.port = None
        self.proc = None
        self.out_lines = []
        self.err_lines = []
        self._lock = threading.Lock()
        self._port_ev = threading.Event()
        self.start_time = None
        self.ready_time = None
        if wait:
            self.start()

    def start(self):
        self.start_time = time.time()
        cmd = [self.exe] + self.args
        if os.environ.get('SHIM_VALGRIND'):
            cmd = VALGRIND + cmd
            # teardown under memcheck takes far longer than the 30 ms the
            # server allows itself after SIGTERM before it _exit()s
            self.env.setdefault('SHIM_EXIT_GRACE_MS', '30000')
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     env=self.env, cwd=self.cwd)
        self.pid = self.proc.pid
        _STARTED.append(self)
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out_lines, True),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err_lines, False),
                             daemon=True)]
        for t in self._pumps:
            t.start()
        deadline = self.start_time + 10
        while not self._port_ev.wait(0.02):
            if self.proc.poll() is not None:
                time.sleep(0.1)
                raise RuntimeError('shim-server exited %s before reporting a port\n'
                                   'args: %r\nstdout: %s\nstderr: %s' % (
                                       self.proc.returncode, self.args,
                                       self.stdout(), self.stderr()))
            if time.time() > deadline:
                self.kill()
                raise RuntimeError('no port=<N> in the startup log within 10 s\n'
                                   'stdout: %s\nstderr: %s' % (self.stdout(), self.stderr()))
        self.wait_health(deadline)
        self.ready_time = time.time()
        return self

    def _pump(self, f, sink, look_for_port):
        for line in iter(f.readline, b''):
            s = line.decode('utf-8', 'replace').rstrip('\n')
            with self._lock:
                sink.append(s)
            if look_for_port and not self._port_ev.is_set():
                for m in PORT_RE.finditer(s):
                    if int(m.group(1)) > 0:
                        self.port = int(m.group(1))
                        self._port_ev.set()
                        break
        f.close()

    def wait_health(self, deadline):
        last = None
        while time.time() < deadline:
            try:
                r = http_get(self.port, '/health', timeout=2)
                if 200 <= r.status < 300:
                    return
                last = r
            except (OSError, ConnClosed, ValueError) as e:
                last = e
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError('GET /health did not answer 2xx within 10 s: %r\nstdout: %s' % (
            last, self.stdout()))

    def stdout(self):
        with self._lock:
            return '\n'.join(self.out_lines)

    def stderr(self):
        with self._lock:
            return '\n'.join(self.err_lines)

    def lines(self):
        with self._lock:
            return list(self.out_lines)

    def client(self, token=None):
        return Client(self.port, token)

    def rss_kb(self):
        with open('/proc/%d/status' % self.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signals the server, returns (exit code, seconds from kill to reap)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None, 0.0)
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.check_sanitizers()
            return (None, time.monotonic() - t0)
        took = time.monotonic() - t0
        self.check_sanitizers()
        return (self.proc.returncode, took)

    def check_sanitizers(self):
        """With SHIM_SANITIZED set (the asan and tsan setups run an
        instrumented server), any AddressSanitizer/LeakSanitizer/UBSan/
        ThreadSanitizer report the server printed fails the test run; with
        SHIM_VALGRIND set (the server runs under valgrind memcheck), any
        report of valgrind's does."""
        san = os.environ.get('SHIM_SANITIZED')
        vg = os.environ.get('SHIM_VALGRIND')
        if not san and not vg:
            return
        for t in getattr(self, '_pumps', []):
            t.join(5)
        with self._lock:
            bad = [l for l in self.err_lines + self.out_lines
                   if (san and ('Sanitizer' in l or 'runtime error:' in l)) or
                   (vg and VALGRIND_LINE.match(l))]
        if bad:
            raise AssertionError('shim-server %r reported:\n%s' % (
                self.args, '\n'.join(self.err_lines[-80:])))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_cli(args, env=None, timeout=20, input=None, cwd=None):
    """Runs shim-server to completion; returns CompletedProcess (text)."""
    e = dict(os.environ)
    for k in list(e):
        if k.startswith('EVENTODB_'):
            del e[k]
    e.update(env or {})
    return subprocess.run([SHIM] + list(args), capture_output=True, env=e,
                          timeout=timeout, input=input, cwd=cwd)


def strict_server(tmpdir, **kw):
    """Strict mode: file SQLite in tmpdir, default token = TOKEN_DEFAULT."""
    return Server(test_mode=False, data_dir=tmpdir, db_url='sqlite://metadata.db', **kw)


# ---------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------

class TestCase(unittest.TestCase):
    maxDiff = 4000

    def assertBody(self, r, status, body, ctype='application/json'):
        self.assertEqual((r.status, r.body), (status, body),
                         'expected %d %r' % (status, body))
        if ctype is not None:
            self.assertEqual((r.header('content-type') or '').split(';')[0].strip(),
                             ctype.split(';')[0])

    def assertRpcError(self, r, status, code, message, details=None):
        self.assertBody(r, status, err_body(code, message, details))


def main(module_name):
    """Runs the tests of module_name; prints "N passed, N failed"."""
    global SHIM
    argv = sys.argv[1:]
    if argv and os.path.isfile(argv[0]):
        SHIM = os.path.abspath(argv[0])
        argv = argv[1:]
    if not SHIM or not os.access(SHIM, os.X_OK):
        print('usage: %s <path to shim-server> [tests...] (got %r)' % (sys.argv[0], SHIM))
        print('0 passed, 1 failed')
        sys.exit(1)
    mod = sys.modules[module_name]
    loader = unittest.defaultTestLoader
    suite = loader.loadTestsFromNames(argv, mod) if argv else loader.loadTestsFromModule(mod)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed_run, failed_other = set(), set()
    for t, _ in result.failures + result.errors + [(u, None) for u in result.unexpectedSuccesses]:
        tc = getattr(t, 'test_case', t)      # a failing subTest counts its test once
        if isinstance(tc, unittest.TestCase):
            failed_run.add(tc.id())
        else:                                 # setUpModule/setUpClass errors
            failed_other.add(str(tc))
    failed = len(failed_run) + len(failed_other)
    passed = max(0, result.testsRun - len(result.skipped) - len(failed_run))
    print('%d passed, %d failed' % (passed, failed))
    sys.stdout.flush()
    sys.exit(0 if failed == 0 and result.testsRun > 0 else 1)


def pipeline(port, bodies, token=None, group=100, path='/rpc'):
    """Sends RPC bodies pipelined on one connection, `group` at a time;
    returns the responses in order."""
    c = Conn(port, timeout=60)
    out = []
    try:
        for i in range(0, len(bodies), group):
            part = bodies[i:i + group]
            c.send(b''.join(build_request('POST', path, b, token=token) for b in part))
            for _ in part:
                out.append(c.read_response('POST'))
    finally:
        c.close()
    return out


def write_many(port, token, stream, n, type_='T', data=None):
    """n stream.write calls (pipelined); returns the parsed results."""
    body = rpc_body('stream.write', stream, {'type': type_, 'data': data or {}})
    rs = pipeline(port, [body] * n, token=token)
    for r in rs:
        if r.status != 200:
            raise AssertionError('write failed: %d %r' % (r.status, r.body))
    return [json.loads(r.body) for r in rs]


def md5_member(stream, size):
    """Reference consumer-group function of PROTOCOL 7.7 (None = no member)."""
    import hashlib
    i = stream.find('-')
    if i < 0:
        return None
    card = stream[i + 1:].split('+', 1)[0]
    if card == '':
        return None
    h = int.from_bytes(hashlib.md5(card.encode('utf-8')).digest()[:8], 'big', signed=True)
    return abs(h) % size
