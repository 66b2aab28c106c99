#!/usr/bin/env python3
"""The process (PROTOCOL sections 2, 10.4): SIGTERM handling, port reuse,
bind failures, flag and environment parsing, storage URLs, quiet stdout
and the default-token banner."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import shimhttp as H
from shimhttp import run_cli, uid

A = H.TOKEN_DEFAULT
B = H.token_for('default', 'b' * 64)


def out_of(cp):
    return (cp.stdout + cp.stderr).decode('utf-8', 'replace')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def banner_tokens(lines):
    """Tokens shown by the banner: the line after `DEFAULT NAMESPACE TOKEN:`,
    framed by lines of '═'."""
    found = []
    for i, line in enumerate(lines):
        if 'DEFAULT NAMESPACE TOKEN:' in line:
            if i + 2 >= len(lines) or i == 0:
                found.append(None)
                continue
            m = re.search(r'ns_[A-Za-z0-9_-]+_[0-9a-fA-F]{64}', lines[i + 1])
            framed = '═' * 10 in lines[i - 1] and '═' * 10 in lines[i + 2]
            found.append(m.group(0) if m and framed else None)
    return found


class ProcCase(H.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='shim-proc-')
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, **kw):
        s = H.Server(**kw)
        self.servers.append(s)
        return s

    def strict(self, sub='data', **kw):
        kw.setdefault('test_mode', False)
        kw.setdefault('data_dir', os.path.join(self.tmp, sub))
        kw.setdefault('db_url', 'sqlite://metadata.db')
        return self.server(**kw)


# ---------------------------------------------------------------------------
# Shutdown (2.8) and binding (2.6, 3.1)
# ---------------------------------------------------------------------------

class Shutdown(ProcCase):
    def test_sigterm_with_open_connections_exits_0_within_100_ms(self):
        srv = self.server()
        c = srv.client(A)
        c.write('sig-1')
        subs = [H.subscribe(srv.port, q, token=A) for q in
                ('stream=sig-1&position=0', 'category=sig', 'all=true', 'stream=sig-2')]
        subs[0].next_poke()
        idle = H.Conn(srv.port)
        idle.request('GET', '/health')
        half_head = H.Conn(srv.port)
        half_head.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Le')
        half_body = H.Conn(srv.port)
        half_body.send(b'POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n["sys')
        time.sleep(0.2)
        rc, dt = srv.stop(signal.SIGTERM)
        H.note('SIGTERM to exit: %.1f ms', dt * 1000)
        self.assertEqual(rc, 0, srv.stdout())
        self.assertLess(dt, 0.100, 'exit took %.1f ms' % (dt * 1000))
        for s in subs:
            with self.assertRaises(H.ConnClosed):
                for _ in range(10):      # replayed pokes not read yet, then the end
                    s.next_block(2)
            self.assertTrue(s.ended, 'SSE stream should end with the terminating chunk')
        for k in (idle, half_head, half_body):
            self.assertTrue(k.closed_within(1))
        time.sleep(0.1)
        out = srv.stdout()
        self.assertRegex(out, r'Shutdown signal received.*signal=SIGTERM')
        self.assertIn('Server stopped', out)

    def test_sigint_exits_0(self):
        srv = self.server()
        H.subscribe(srv.port, 'all=true')
        rc, dt = srv.stop(signal.SIGINT)
        self.assertEqual(rc, 0)
        self.assertLess(dt, 0.100, 'exit took %.1f ms' % (dt * 1000))
        time.sleep(0.1)
        self.assertRegex(srv.stdout(), r'Shutdown signal received.*signal=SIGINT')

    def test_sigterm_on_a_strict_server_exits_within_100_ms(self):
        srv = self.strict(token=A)
        c = srv.client(A)
        for i in range(50):
            c.write('d-%d' % i)
        H.subscribe(srv.port, 'category=d&position=0', token=A)
        rc, dt = srv.stop()
        self.assertEqual(rc, 0)
        self.assertLess(dt, 0.100, 'exit took %.1f ms' % (dt * 1000))

    def test_port_is_free_at_once_after_sigterm(self):
        srv = self.server()
        port = srv.port
        # server-side closes leave TIME_WAIT sockets behind
        for _ in range(5):
            k = H.Conn(port)
            k.request('GET', '/health', headers=[('Connection', 'close')])
            k.close()
        sub = H.subscribe(port, 'all=true')
        rc, _ = srv.stop()
        self.assertEqual(rc, 0)
        with self.assertRaises(OSError):
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
        srv2 = self.server(port=port)
        self.assertEqual(srv2.port, port)
        self.assertEqual(H.http_get(port, '/health').status, 200)
        sub.close()

    def test_second_server_on_a_busy_port_fails_promptly(self):
        srv = self.server()
        t0 = time.time()
        cp = run_cli(['--test-mode', '--port=%d' % srv.port, '--token=' + A], timeout=10)
        self.assertNotEqual(cp.returncode, 0)
        self.assertEqual(cp.returncode, 1)
        self.assertLess(time.time() - t0, 3.0)
        self.assertIn('failed to listen on port %d' % srv.port, out_of(cp))
        self.assertEqual(H.http_get(srv.port, '/health').status, 200)

    def test_dual_stack_listening(self):
        srv = self.server()
        try:
            c = H.Conn(srv.port, host='::1', family=socket.AF_INET6)
        except OSError as e:
            self.skipTest('no IPv6 loopback: %s' % e)
        self.assertEqual(c.request('GET', '/health').status, 200)
        c.close()
        self.assertEqual(H.Conn(srv.port, host='127.0.0.1').request('GET', '/health').status, 200)


# ---------------------------------------------------------------------------
# Command line (2.1-2.3)
# ---------------------------------------------------------------------------

class CommandLine(ProcCase):
    def test_flag_spellings(self):
        for args in (['--test-mode', '--port', '0'], ['-test-mode', '-port=0'], ['-test-mode', '-port', '0'],
                     ['--test-mode=true', '--port=0'], ['-test-mode=1', '--port=0'], ['-test-mode=T', '-port=0'],
                     ['--test-mode=True', '--port=0', '--log-level=warn'], ['serve', '--test-mode', '--port=0'],
                     ['--port=0', '-test-mode', 'false', '--bogus'],
                     ['--port=0', '--test-mode', '--', '--bogus'],
                     ['--test-mode', '--port=0', '--db-type=postgres'],
                     ['--test-mode', '--port=0', '--log-level=nonsense', '--log-format=console']):
            with self.subTest(args=args):
                srv = self.server(args=args)
                # test mode is on: a request without a token is served in `default`
                self.assertEqual(H.Client(srv.port).call('sys.version'), '0.7.0')
                rc, _ = srv.stop()
                self.assertEqual(rc, 0)

    def test_explicit_port(self):
        for form in ('-port=%d', '--port=%d', '-port %d', '--port %d'):
            with self.subTest(form=form):
                p = free_port()
                srv = self.server(args=['--test-mode'] + (form % p).split(' '))
                self.assertEqual(srv.port, p)
                self.assertIn('port=%d' % p, srv.stdout())
                srv.stop()

    def test_unknown_flag_exits_2(self):
        for args, name in ((['-x'], '-x'), (['--test-mode', '-x', '--port=0'], '-x'),
                           (['--bogus=1'], '-bogus'), (['--port=0', '--nope'], '-nope')):
            with self.subTest(args=args):
                cp = run_cli(args)
                self.assertEqual(cp.returncode, 2)
                self.assertIn('flag provided but not defined: ' + name, cp.stderr.decode())

    def test_version(self):
        for args in (['--version'], ['version'], ['-v']):
            with self.subTest(args=args):
                cp = run_cli(args)
                self.assertEqual((cp.returncode, cp.stdout), (0, b'0.7.0\n'))
        for args in (['--version', '--full'], ['version', '-f'], ['-v', '--full']):
            with self.subTest(args=args):
                cp = run_cli(args)
                self.assertEqual(cp.returncode, 0)
                text = cp.stdout.decode()
                self.assertIn('Version:  0.7.0\n', text)
                self.assertRegex(text, r'Library:  libstreamstore \d+\.\d+\.\d+')
                if H.lib_version():
                    self.assertIn('Library:  libstreamstore %s\n' % H.lib_version(), text)
                self.assertRegex(text, r'Commit:   \S')
                self.assertRegex(text, r'Built:    \S')

    def test_help(self):
        for args in (['help'], ['--help'], ['-h'], ['-help']):
            with self.subTest(args=args):
                cp = run_cli(args)
                self.assertEqual(cp.returncode, 0)
                text = out_of(cp)
                for word in ('port', 'EVENTODB_PORT', 'test-mode', 'EVENTODB_TEST_MODE', 'token', 'db-url',
                             'data-dir', 'max-body-size', 'EVENTODB_MAX_BODY_SIZE'):
                    self.assertIn(word, text)
        text = out_of(run_cli(['help']))
        for word in ('export', 'import', '/rpc', '/subscribe', '/health'):
            self.assertIn(word, text)

    def test_bad_flag_values_exit_2(self):
        for args, flag, value in ((['--max-body-size=abc'], 'max-body-size', 'abc'),
                                  (['--max-body-size=1000'], 'max-body-size', '1000'),
                                  (['--max-body-size=1048575'], 'max-body-size', '1048575'),
                                  (['--max-body-size=-5'], 'max-body-size', '-5'),
                                  (['--max-body-size', 'x1'], 'max-body-size', 'x1'),
                                  (['--port=abc'], 'port', 'abc'),
                                  (['--test-mode=maybe'], 'test-mode', 'maybe')):
            with self.subTest(args=args):
                cp = run_cli(['--test-mode', '--port=0'] + args if flag != 'test-mode' else ['--port=0'] + args)
                self.assertEqual(cp.returncode, 2, out_of(cp))
                err = cp.stderr.decode()
                self.assertIn(flag, err)
                self.assertIn(value, err)

    def test_minimum_body_limit_is_accepted(self):
        srv = self.server(extra=['--max-body-size=1048576'])
        r = H.Conn(srv.port).request('POST', '/rpc', None, headers=[('Content-Length', '1048577')])
        self.assertBody(r, 413, b'{"error":{"code":"PAYLOAD_TOO_LARGE","message":"Request body exceeds 1048576 bytes"}}\n')

    def test_fatal_configurations_exit_1(self):
        d = os.path.join(self.tmp, 'x')
        cases = [
            (['--port=0', '--db-type=timescale', '--test-mode'], 'unsupported --db-type: timescale'),
            (['--port=0', '--db-url=foo.db'], 'unsupported database scheme'),
            (['--port=0', '--db-url=mysql://h/db', '--data-dir=' + d],
             'unsupported database scheme: mysql (use postgres:// or sqlite://)'),
            (['--port=0', '--db-url=sqlite://x.db'], '--data-dir is required for SQLite'),
            (['--port=0', '--test-mode', '--token=bad'], 'invalid token format'),
            (['--port=0', '--test-mode', '--token=' + H.token_for('tenant-a')],
             "provided token is for namespace 'tenant-a', expected 'default'"),
            (['--port=0', '--db-url=postgres://nouser:x@127.0.0.1:1/nodb?connect_timeout=2'],
             'failed to connect to PostgreSQL'),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                t0 = time.time()
                cp = run_cli(args, timeout=15)
                self.assertEqual(cp.returncode, 1, out_of(cp))
                self.assertIn(msg, out_of(cp))
                self.assertLess(time.time() - t0, 10)

    def test_environment_supplies_defaults(self):
        # EVENTODB_TEST_MODE / EVENTODB_PORT / EVENTODB_TOKEN
        srv = self.server(args=['--log-level=info'], env={'EVENTODB_TEST_MODE': 'true', 'EVENTODB_PORT': '0',
                                        'EVENTODB_TOKEN': B})
        self.assertNotEqual(srv.port, 8080)
        self.assertEqual(H.Client(srv.port).call('sys.version'), '0.7.0')
        self.assertEqual(banner_tokens(srv.lines()), [B])
        srv.stop()
        # a flag overrides its variable; a bad or empty variable is ignored
        for env, extra, limit in (({'EVENTODB_MAX_BODY_SIZE': '2000000'}, [], 2000000),
                                  ({'EVENTODB_MAX_BODY_SIZE': '2000000'}, ['--max-body-size=3000000'], 3000000),
                                  ({'EVENTODB_MAX_BODY_SIZE': 'abc'}, [], 104857600),
                                  ({'EVENTODB_MAX_BODY_SIZE': ''}, [], 104857600),
                                  ({'EVENTODB_PORT': 'abc', 'EVENTODB_TEST_MODE': ''}, [], 104857600)):
            with self.subTest(env=env, extra=extra):
                srv = self.server(env=env, extra=extra)
                r = H.Conn(srv.port).request('POST', '/rpc', None, headers=[('Content-Length', '999999999')])
                self.assertBody(r, 413, b'{"error":{"code":"PAYLOAD_TOO_LARGE","message":"Request body exceeds %d bytes"}}\n'
                                % limit)
                srv.stop()
        # EVENTODB_TEST_MODE that does not parse is ignored: strict mode
        srv = self.server(args=['--port=0', '--data-dir=' + os.path.join(self.tmp, 'e'),
                                '--db-url=sqlite://m.db', '--token=' + A], env={'EVENTODB_TEST_MODE': 'maybe'})
        self.assertEqual(H.Client(srv.port).rpc('sys.version').status, 401)
        srv.stop()
        srv = self.server(args=['--port=0', '--token=' + A], env={'EVENTODB_TEST_MODE': '1'})
        self.assertEqual(H.Client(srv.port).rpc('sys.version').status, 200)

    def test_flag_overrides_test_mode_variable(self):
        srv = self.server(args=['--port=0', '--test-mode=false', '--token=' + A,
                                '--data-dir=' + os.path.join(self.tmp, 'f')], env={'EVENTODB_TEST_MODE': 'true'})
        self.assertEqual(H.Client(srv.port).rpc('sys.version').status, 401)


# ---------------------------------------------------------------------------
# Storage (2.4, 10.2) and persistence
# ---------------------------------------------------------------------------

class Storage(ProcCase):
    def test_strict_sqlite_layout_and_safe_names(self):
        d = os.path.join(self.tmp, 'a', 'b', 'data')
        before = set(os.listdir(self.tmp))
        srv = self.strict(data_dir=d, token=A)
        self.assertTrue(os.path.isfile(os.path.join(d, 'metadata.db')))
        c = srv.client(A)
        for ns in ('../../escape', '../x', 'Tenant.A', '/abs', 'a/b', '.', '..', 'nul\u00e9', 'CON', 'x' * 255):
            with self.subTest(ns=ns[:20]):
                tok = c.call('ns.create', ns)['token']
                H.Client(srv.port, tok).write('s-1')
        self.assertEqual(set(os.listdir(self.tmp)), before | {'a'})
        self.assertEqual(os.listdir(os.path.join(self.tmp, 'a')), ['b'])
        self.assertEqual(os.listdir(os.path.join(self.tmp, 'a', 'b')), ['data'])
        for root, dirs, files in os.walk(d):
            self.assertEqual(root, d, 'no sub-directories in the data directory: %s' % dirs)
        srv.stop()

    def test_storage_names_never_collide_or_adopt_files(self):
        d = os.path.join(self.tmp, 'data')
        os.makedirs(d)
        # files where the recommended storage names of these ids would be
        planted = {'ns-victim.db': b'not a database', 'ns-victim2.db-x': b'junk'}
        for name, content in planted.items():
            with open(os.path.join(d, name), 'wb') as f:
                f.write(content)
        srv = self.strict(data_dir=d, token=A)
        c = srv.client(A)
        ids = ['Ab', 'ab', 'AB', 'a.b', 'a%2Eb', 'a%2eb', 'a%b', 'victim', 'victim2', 'x' * 255, 'x' * 254 + 'X']
        toks = {}
        for i, ns in enumerate(ids):
            with self.subTest(ns=ns[:20]):
                r = c.rpc('ns.create', ns)
                self.assertEqual(r.status, 200, r)
                toks[ns] = r.json()['token']
                t = H.Client(srv.port, toks[ns])
                self.assertEqual(t.write('who-1', data={'ns': ns}), {'globalPosition': 1, 'position': 0})
                for _ in range(i):
                    t.write('pad-1')
        for i, ns in enumerate(ids):
            t = H.Client(srv.port, toks[ns])
            self.assertEqual(t.call('stream.get', 'who-1')[0][4], {'ns': ns})
            self.assertEqual(c.call('ns.info', ns)['messageCount'], i + 1)
        for name, content in planted.items():
            with open(os.path.join(d, name), 'rb') as f:
                self.assertEqual(f.read(), content, name)
        srv.stop()
        # and after a restart every namespace finds its own storage again
        srv = self.strict(data_dir=d, token=A)
        for i, ns in enumerate(ids):
            self.assertEqual(H.Client(srv.port, toks[ns]).call('stream.get', 'who-1')[0][4], {'ns': ns})

    def test_stale_companion_files_are_not_adopted(self):
        # 10.2 rule 3: a candidate taken by an existing file is never adopted;
        # `<name>-wal` / `-shm` belong to the database <name>
        d = os.path.join(self.tmp, 'data')
        os.makedirs(d)
        planted = {'ns-stale1.db-wal': b'junk wal', 'ns-stale2.db-shm': b'junk shm', 'ns-stale3.db-journal': b'junk'}
        for name, content in planted.items():
            with open(os.path.join(d, name), 'wb') as f:
                f.write(content)
        srv = self.strict(data_dir=d, token=A)
        c = srv.client(A)
        for ns in ('stale1', 'stale2', 'stale3'):
            tok = c.call('ns.create', ns)['token']
            self.assertEqual(H.Client(srv.port, tok).write('s-1'), {'globalPosition': 1, 'position': 0})
        srv.stop()
        for name, content in planted.items():
            with self.subTest(file=name):
                path = os.path.join(d, name)
                self.assertTrue(os.path.exists(path), name + ' was deleted by the server')
                with open(path, 'rb') as f:
                    self.assertEqual(f.read()[:20], content, name + ' was taken over')

    def test_sqlite_url_forms(self):
        for url, rel in (('sqlite://metadata.db', 'metadata.db'), ('sqlite://', 'metadata.db'),
                         ('sqlite:meta2.db', 'meta2.db'), ('sqlite:///abs/x.db', os.path.join('abs', 'x.db')),
                         ('sqlite://:memory:', ':memory:')):
            with self.subTest(url=url):
                d = os.path.join(self.tmp, uid())
                os.makedirs(os.path.dirname(os.path.join(d, rel)))   # only the data dir is created by the server
                srv = self.strict(data_dir=d, db_url=url, token=A)
                self.assertTrue(os.path.isfile(os.path.join(d, rel)), os.listdir(d))
                srv.stop()

    def test_embedded_default_store(self):
        cwd = os.path.join(self.tmp, 'cwd')
        os.mkdir(cwd)
        srv = self.server(args=['--port=0'], cwd=cwd)
        self.assertTrue(os.path.isdir(os.path.join(cwd, 'streamstore-data')))
        self.assertIn('streamstore-data', srv.stdout())
        self.assertEqual(H.Client(srv.port).rpc('sys.version').status, 401)   # strict
        toks = banner_tokens(srv.lines())
        self.assertEqual(len(toks), 1)
        self.assertRegex(toks[0], r'^ns_ZGVmYXVsdA_[0-9a-f]{64}$')
        self.assertEqual(H.Client(srv.port, toks[0]).call('sys.version'), '0.7.0')
        srv.stop()
        # --data-dir without --db-url: the same embedded default there
        d = os.path.join(self.tmp, 'dd')
        srv = self.server(args=['--port=0', '--data-dir=' + d, '--token=' + A])
        self.assertTrue(os.path.isfile(os.path.join(d, 'metadata.db')))
        self.assertEqual(H.Client(srv.port).rpc('sys.version').status, 401)

    def test_test_mode_with_a_db_url_is_strict(self):
        srv = self.strict(extra=['--test-mode'], token=A)
        self.assertEqual(H.Client(srv.port).rpc('sys.version').status, 401)
        self.assertEqual(H.Client(srv.port, B).rpc('sys.version').status, 403)

    def test_writes_survive_a_restart(self):
        srv = self.strict(token=A)
        c = srv.client(A)
        ns, tok = c.new_namespace()
        t = H.Client(srv.port, tok)
        res = [t.write('dur-1', data={'i': i}) for i in range(20)]
        before = t.call('stream.get', 'dur-1')
        srv.stop()
        srv = self.strict(token=A)
        t = H.Client(srv.port, tok)
        self.assertEqual(t.call('stream.get', 'dur-1'), before)
        self.assertEqual(t.write('dur-1')['globalPosition'], res[-1]['globalPosition'] + 1)

    def test_test_mode_servers_share_nothing(self):
        s1 = self.server()
        s2 = self.server()
        H.Client(s1.port, A).write('iso-1')
        self.assertIsNone(H.Client(s2.port, A).call('stream.version', 'iso-1'))

    def test_health_answers_quickly(self):
        for kw in ({}, {'test_mode': False, 'db_url': 'sqlite://metadata.db'}):
            with self.subTest(kw=kw):
                if 'db_url' in kw:
                    kw['data_dir'] = os.path.join(self.tmp, uid())
                srv = self.server(**kw)
                H.note('start to /health 200: %.0f ms', (srv.ready_time - srv.start_time) * 1000)
                self.assertLess(srv.ready_time - srv.start_time, 1.0)   # MUST 10 s, SHOULD 1 s here


# ---------------------------------------------------------------------------
# Output (2.7) and the banner (10.4)
# ---------------------------------------------------------------------------

class Output(ProcCase):
    def test_stdout_is_quiet(self):
        srv = self.server()
        time.sleep(0.3)
        startup = srv.lines()
        self.assertLessEqual(len(startup), 12, startup)
        self.assertTrue(any('port=%d' % srv.port in line for line in startup), startup)
        c = srv.client(A)
        for i in range(50):
            c.write('q-1')
            c.rpc('stream.get', 'q-1')
            c.rpc('nope')
            c.rpc_raw(b'[')
        H.http_get(srv.port, '/nope')
        H.http_get(srv.port, '/rpc', token='bad')
        s = H.subscribe(srv.port, 'all=true')
        c.write('q-1')
        s.next_poke()
        s.close()
        k = H.Conn(srv.port)
        k.send(b'GARBAGE\r\n\r\n')
        k.read_response()
        time.sleep(0.3)
        self.assertEqual(srv.lines(), startup, 'per-request output at level info')
        self.assertEqual(srv.stderr(), '')
        self.assertEqual(srv.stdout().count(A), 1, 'the token appears only in the banner')
        srv.stop()
        time.sleep(0.1)
        tail = srv.lines()[len(startup):]
        self.assertTrue(2 <= len(tail) <= 4, tail)
        self.assertIn('Shutdown signal received', tail[0])
        self.assertIn('Server stopped', tail[-1])

    def test_console_format(self):
        srv = self.server()
        for line in srv.lines():
            self.assertRegex(line, r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (DBG|INF|WRN|ERR|FTL) ')
        port_lines = [line for line in srv.lines() if 'port=%d' % srv.port in line]
        self.assertTrue(port_lines)
        self.assertTrue(any(' INF ' in line and ('0.7.0' in line or (H.lib_version() or '~') in line)
                            for line in port_lines), port_lines)

    def test_json_log_format(self):
        srv = self.server(extra=['--log-format=json'])
        lines = srv.lines()
        self.assertTrue(lines)
        for line in lines:
            obj = json.loads(line)
            for k in ('level', 'time', 'message'):
                self.assertIn(k, obj)
        self.assertTrue(any(o.get('port') == srv.port for o in map(json.loads, lines)))
        self.assertEqual(banner_tokens([json.loads(x)['message'] for x in lines]), [A])

    def test_debug_logging_to_an_unread_pipe_never_blocks(self):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith('EVENTODB_')}
        p = subprocess.Popen([H.SHIM, '--test-mode', '--port=%d' % port, '--log-level=debug', '--token=' + A],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    if H.http_get(port, '/health', timeout=1).status == 200:
                        break
                except (OSError, H.ConnClosed):
                    pass
                self.assertLess(time.time(), deadline, 'no /health')
                self.assertIsNone(p.poll())
                time.sleep(0.05)
            t0 = time.time()
            bodies = [b'["sys.version"]'] * 3000
            rs = H.pipeline(port, bodies, token=A)
            self.assertEqual([r.status for r in rs], [200] * 3000)
            self.assertLess(time.time() - t0, 30)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(5), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


class Banner(ProcCase):
    def test_test_mode_with_token(self):
        srv = self.server(token=A)
        self.assertEqual(banner_tokens(srv.lines()), [A])

    def test_test_mode_generated_token(self):
        srv = self.server(token=None)
        toks = banner_tokens(srv.lines())
        self.assertEqual(len(toks), 1)
        self.assertRegex(toks[0] or '', r'^ns_ZGVmYXVsdA_[0-9a-f]{64}$')

    def test_strict_lifecycle_of_the_banner(self):
        # fresh: created with the given token
        srv = self.strict(token=A)
        self.assertEqual(banner_tokens(srv.lines()), [A])
        self.assertIn('Created default namespace', srv.stdout())
        srv.client(A).write('keep-1')
        srv.stop()
        # existing, no token: no banner
        srv = self.strict(token=None)
        self.assertEqual(banner_tokens(srv.lines()), [])
        self.assertIn('Default namespace already exists', srv.stdout())
        self.assertEqual(srv.client(A).call('stream.version', 'keep-1'), 0)
        srv.stop()
        # existing, matching token: banner
        srv = self.strict(token=A)
        self.assertEqual(banner_tokens(srv.lines()), [A])
        self.assertIn('Default namespace already exists', srv.stdout())
        srv.stop()
        # existing, other token: warning, no banner, that token gets 403
        srv = self.strict(token=B)
        self.assertEqual(banner_tokens(srv.lines()), [])
        self.assertIn("--token does not match the stored token of namespace 'default'", srv.stdout())
        self.assertTrue(any(' WRN ' in line and '--token does not match' in line for line in srv.lines()))
        self.assertEqual(srv.client(B).rpc('sys.version').status, 403)
        self.assertEqual(srv.client(A).rpc('sys.version').status, 200)
        self.assertNotIn(B, srv.stdout())
        srv.stop()

    def test_strict_generated_token_works(self):
        srv = self.strict(token=None)
        toks = banner_tokens(srv.lines())
        self.assertEqual(len(toks), 1)
        self.assertRegex(toks[0] or '', r'^ns_ZGVmYXVsdA_[0-9a-f]{64}$')
        self.assertEqual(srv.client(toks[0]).call('sys.version'), '0.7.0')
        self.assertEqual(srv.client(A).rpc('sys.version').status, 403)


class NullStore(ProcCase):
    def test_null_store_answers_fixed_body(self):
        srv = self.server(extra=['--null-store'])
        self.assertIn('null', srv.stdout().lower())
        c = srv.client(A)
        for body in (b'["stream.write","s-1",{"type":"T","data":{}}]', b'["stream.get","s-1"]', b'["sys.version"]'):
            self.assertBody(c.rpc_raw(body), 200, b'{"globalPosition":1,"position":0}\n')
        self.assertEqual(c.rpc_raw(b'{"a":1}').status, 400)
        self.assertEqual(c.rpc_raw(b'[]').status, 400)


if __name__ == '__main__':
    H.main(__name__)
