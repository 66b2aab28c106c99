#!/usr/bin/env python3
"""Authentication (PROTOCOL section 4): the table of 4.5 in strict and test
mode on every authenticated endpoint, token parsing errors (4.2),
`?token=` precedence, tokens whose base64url part contains `_`, deleted
namespaces and the scope of ns.* calls."""

import shutil
import tempfile
import urllib.parse

import shimhttp as H
from shimhttp import err_body, uid

STRICT = None
TEST = None
TMP = None
A = H.TOKEN_DEFAULT


def setUpModule():
    global STRICT, TEST, TMP
    TMP = tempfile.mkdtemp(prefix='shim-auth-')
    STRICT = H.strict_server(TMP)
    TEST = H.Server()


def tearDownModule():
    for s in (STRICT, TEST):
        if s:
            s.stop()
    shutil.rmtree(TMP, ignore_errors=True)


ENDPOINTS = {
    'rpc': ('POST', '/rpc', b'["sys.version"]'),
    'subscribe': ('GET', '/subscribe?all=true', None),
    'import': ('POST', '/import', b''),
    'export': ('GET', '/export', None),
}


def do(port, ep, headers=(), qtoken=None, body=None):
    """One request to endpoint `ep`; an SSE answer is read up to its first
    chunk and then dropped."""
    method, path, default_body = ENDPOINTS[ep]
    if body is None:
        body = default_body
    if qtoken is not None:
        path += ('&' if '?' in path else '?') + 'token=' + urllib.parse.quote(qtoken, safe='')
    c = H.Conn(port)
    try:
        c.send(H.build_request(method, path, body, list(headers)))
        if ep == 'subscribe':
            r = c.read_head()
            if r.status == 200:
                r.body = c.read_chunk()
            elif r.header('content-length') is not None:
                r.body = c.read_exact(int(r.header('content-length')))
            return r
        return c.read_response(method)
    finally:
        c.close()


def bearer(tok):
    return [('Authorization', 'Bearer ' + tok)]


def invalid(parse_error):
    return err_body('AUTH_INVALID_TOKEN', 'Invalid token format',
                    {'error': 'invalid token format: ' + parse_error})


def unauthorized(ns):
    return err_body('AUTH_UNAUTHORIZED', 'Token not authorized for namespace', {'namespace': ns})


def required(msg):
    return err_body('AUTH_REQUIRED', msg)


class AuthCase(H.TestCase):
    def assertAccepted(self, r, ep):
        self.assertEqual(r.status, 200, r)
        if ep == 'rpc':
            self.assertEqual(r.body, b'"0.7.0"\n')
        elif ep == 'subscribe':
            self.assertEqual(r.body, b': ready\n\n')
            self.assertEqual(r.header('content-type'), 'text/event-stream')
        elif ep == 'import':
            self.assertEqual(r.header('content-type'), 'text/event-stream')
            self.assertRegex(r.body, rb'^data: \{"done":true,"imported":0,"elapsed":"\d+\.\ds"\}\n\n$')
        elif ep == 'export':
            self.assertEqual(r.header('content-type'), 'application/x-ndjson')

    def assertRejected(self, r, status, body):
        # JSON, before any output of the endpoint (no SSE headers)
        self.assertBody(r, status, body)
        self.assertNotEqual(r.header('content-type'), 'text/event-stream')

    def new_ns(self, srv, generated=False):
        adm = H.Client(srv.port, A)
        ns = 'ten_' + uid()
        if generated:
            tok = adm.call('ns.create', ns)['token']
        else:
            tok = H.token_for(ns)
            adm.call('ns.create', ns, {'token': tok})
        adm.close()
        return ns, tok


# ---------------------------------------------------------------------------
# The table of 4.5
# ---------------------------------------------------------------------------

class Table45(AuthCase):
    def test_nothing_presented(self):
        for ep in ENDPOINTS:
            with self.subTest(ep=ep):
                self.assertRejected(do(STRICT.port, ep), 401, required('Authorization header required'))
                self.assertAccepted(do(TEST.port, ep), ep)

    def test_empty_authorization_header(self):
        for ep in ENDPOINTS:
            with self.subTest(ep=ep):
                self.assertRejected(do(STRICT.port, ep, [('Authorization', '')]), 401,
                                    required('Authorization header required'))
                self.assertAccepted(do(TEST.port, ep, [('Authorization', '')]), ep)

    def test_authorization_without_bearer(self):
        for value in ('Basic abc', 'bearer ' + A, 'BEARER ' + A, 'Bearer' + A, 'Token ' + A, A,
                      'Bearer\t' + A):
            for ep in ENDPOINTS:
                with self.subTest(value=value[:12], ep=ep):
                    self.assertRejected(do(STRICT.port, ep, [('Authorization', value)]), 401,
                                        required('Authorization header must use Bearer scheme'))
                    self.assertAccepted(do(TEST.port, ep, [('Authorization', value)]), ep)

    def test_bearer_with_empty_token(self):
        for ep in ENDPOINTS:
            with self.subTest(ep=ep):
                self.assertRejected(do(STRICT.port, ep, [('Authorization', 'Bearer ')]), 401,
                                    required('Token required'))
                self.assertAccepted(do(TEST.port, ep, [('Authorization', 'Bearer ')]), ep)

    def test_malformed_token_is_401_in_both_modes(self):
        for srv in (STRICT, TEST):
            for ep in ENDPOINTS:
                with self.subTest(mode='strict' if srv is STRICT else 'test', ep=ep):
                    self.assertRejected(do(srv.port, ep, bearer('invalid-token')), 401,
                                        invalid("missing 'ns_' prefix"))
                    self.assertRejected(do(srv.port, ep, qtoken='invalid-token-format'), 401,
                                        invalid("missing 'ns_' prefix"))

    def test_unknown_namespace_is_403_in_both_modes(self):
        ns = 'unknown_' + uid()
        for srv in (STRICT, TEST):
            for ep in ENDPOINTS:
                with self.subTest(mode='strict' if srv is STRICT else 'test', ep=ep):
                    self.assertRejected(do(srv.port, ep, bearer(H.token_for(ns))), 403, unauthorized(ns))
                    self.assertRejected(do(srv.port, ep, qtoken=H.token_for(ns, 'f' * 64)), 403, unauthorized(ns))

    def test_wrong_secret_is_403_in_strict_and_accepted_in_test_mode(self):
        for generated in (False, True):
            ns, tok = self.new_ns(STRICT, generated)
            wrong = H.token_for(ns, ('1' if tok[-1] != '1' else '2') * 64)
            ns2, tok2 = self.new_ns(TEST, generated)
            wrong2 = H.token_for(ns2, 'ab' * 32)
            for ep in ENDPOINTS:
                with self.subTest(generated=generated, ep=ep):
                    self.assertRejected(do(STRICT.port, ep, bearer(wrong)), 403, unauthorized(ns))
                    self.assertAccepted(do(STRICT.port, ep, bearer(tok)), ep)
                    self.assertAccepted(do(TEST.port, ep, bearer(wrong2)), ep)
                    self.assertAccepted(do(TEST.port, ep, bearer(tok2)), ep)
            # an upper-case spelling of the stored secret is a different token
            if generated:
                upper = tok[:-64] + tok[-64:].upper()
                self.assertRejected(do(STRICT.port, 'rpc', bearer(upper)), 403, unauthorized(ns))

    def test_unknown_namespace_and_wrong_secret_look_identical(self):
        ns, tok = self.new_ns(STRICT, True)
        r1 = do(STRICT.port, 'rpc', bearer(H.token_for(ns, '9' * 64)))
        ns_missing = ns + 'x'
        r2 = do(STRICT.port, 'rpc', bearer(H.token_for(ns_missing)))
        self.assertEqual(r1.status, r2.status)
        self.assertEqual(r1.body.replace(ns.encode(), b'N'), r2.body.replace(ns_missing.encode(), b'N'))
        self.assertEqual([k.lower() for k, _ in r1.headers], [k.lower() for k, _ in r2.headers])

    def test_valid_tokens_accepted_in_both_modes(self):
        for srv in (STRICT, TEST):
            for ep in ENDPOINTS:
                with self.subTest(mode='strict' if srv is STRICT else 'test', ep=ep):
                    self.assertAccepted(do(srv.port, ep, bearer(A)), ep)
                    self.assertAccepted(do(srv.port, ep, qtoken=A), ep)

    def test_header_name_is_case_insensitive(self):
        for name in ('authorization', 'AUTHORIZATION', 'AuThOrIzAtIoN'):
            self.assertAccepted(do(STRICT.port, 'rpc', [(name, 'Bearer ' + A)]), 'rpc')

    def test_token_after_bearer_is_not_trimmed(self):
        for srv in (STRICT, TEST):
            self.assertRejected(do(srv.port, 'rpc', [('Authorization', 'Bearer  ' + A)]), 401,
                                invalid("missing 'ns_' prefix"))


class TestModeNamespace(AuthCase):
    """Which namespace a test-mode request is served in."""

    def marker(self, tok, headers=None):
        s = 'mark-' + uid()
        c = H.Client(TEST.port, None)
        r = c.rpc('stream.write', s, {'type': 'T', 'data': {}},
                  headers=(headers if headers is not None else bearer(tok)))
        c.close()
        self.assertEqual(r.status, 200, r)
        return s

    def where(self, stream, tokens):
        out = []
        for t in tokens:
            c = H.Client(TEST.port, t)
            out.append(c.call('stream.version', stream))
            c.close()
        return out

    def test_no_token_is_default(self):
        ns, tok = self.new_ns(TEST)
        for headers in ([], [('Authorization', 'Basic abc')], [('Authorization', 'Bearer ')],
                        [('Authorization', 'bearer ' + tok)]):
            with self.subTest(headers=headers):
                s = self.marker(None, headers)
                self.assertEqual(self.where(s, [A, tok]), [0, None])

    def test_token_with_any_secret_is_its_namespace(self):
        ns, tok = self.new_ns(TEST)
        s = self.marker(None, bearer(H.token_for(ns, 'C' * 64)))
        self.assertEqual(self.where(s, [A, tok]), [None, 0])

    def test_appendix_a_test_mode_exchanges(self):
        c = H.Client(TEST.port, None)
        self.assertEqual(c.rpc('ns.create', 'tenant-b' + uid(), {}).status, 200)
        c.close()
        self.assertRejected(do(TEST.port, 'rpc', bearer('invalid-token-format')), 401,
                            invalid("missing 'ns_' prefix"))
        ns = 'never_' + uid()
        self.assertRejected(do(TEST.port, 'rpc', bearer(H.token_for(ns, 'd' * 64))), 403, unauthorized(ns))
        ns2, tok2 = self.new_ns(TEST)
        self.assertAccepted(do(TEST.port, 'rpc', bearer(H.token_for(ns2, '0123456789abcdef' * 4))), 'rpc')

    def test_base64_decoding_details(self):
        # CR/LF inside the base64url part are skipped; non-zero padding bits tolerated
        for tok in ('ns_ZGVm\nYXVsdA_' + H.ZEROS, 'ns_ZGVm\r\nYXVsdA_' + H.ZEROS, 'ns_ZGVmYXVsdB_' + H.ZEROS,
                    'ns_ZGVmYXVsdA_' + 'A' * 64, 'ns_ZGVmYXVsdA_' + 'aBcDeF' * 10 + '0000'):
            with self.subTest(tok=tok):
                self.assertAccepted(do(TEST.port, 'rpc', qtoken=tok), 'rpc')
        self.assertRejected(do(STRICT.port, 'rpc', bearer('ns_ZGVmYXVsdB_' + H.ZEROS)), 403, unauthorized('default'))


# ---------------------------------------------------------------------------
# Token parsing (4.2), both modes
# ---------------------------------------------------------------------------

class TokenParsing(AuthCase):
    CASES = [
        ('invalid-token', "missing 'ns_' prefix"),
        ('NS_ZGVmYXVsdA_' + H.ZEROS, "missing 'ns_' prefix"),
        ('ns', "missing 'ns_' prefix"),
        ('ns_', 'expected 2 parts after prefix, got 1'),
        ('ns_abc', 'expected 2 parts after prefix, got 1'),
        ('ns_ZGVmYXVsdA' + H.ZEROS, 'expected 2 parts after prefix, got 1'),
        ('ns_ZGVmYXVsdA_abc', 'random part must be 64 hex characters, got 3'),
        ('ns_ZGVmYXVsdA_', 'random part must be 64 hex characters, got 0'),
        ('ns_ZGVmYXVsdA_' + '0' * 63, 'random part must be 64 hex characters, got 63'),
        ('ns_ZGVmYXVsdA_' + '0' * 65, 'random part must be 64 hex characters, got 65'),
        ('ns_ZGVmYXVsdA_g' + '0' * 63, "random part is not valid hexadecimal: encoding/hex: invalid byte: U+0067 'g'"),
        ('ns_ZGVmYXVsdA_' + '0' * 10 + 'Z' + '0' * 52 + 'x',
         "random part is not valid hexadecimal: encoding/hex: invalid byte: U+005A 'Z'"),
        ('ns_ZGVmYXVsdA_' + '0' * 63 + '-', "random part is not valid hexadecimal: encoding/hex: invalid byte: U+002D '-'"),
        ('ns_ZG=mYXVsdA_' + H.ZEROS, 'namespace part is not valid base64url: illegal base64 data at input byte 2'),
        ('ns_ZGV+YXVsdA_' + H.ZEROS, 'namespace part is not valid base64url: illegal base64 data at input byte 3'),
        ('ns_ZGV/YXVsdA_' + H.ZEROS, 'namespace part is not valid base64url: illegal base64 data at input byte 3'),
        ('ns_ZGVmYXVsdA=_' + H.ZEROS, 'namespace part is not valid base64url: illegal base64 data at input byte 10'),
        ('ns_ZGVmYXVsdA==_' + H.ZEROS, 'namespace part is not valid base64url: illegal base64 data at input byte 10'),
        ('ns_Z_' + H.ZEROS, 'namespace part is not valid base64url: illegal base64 data at input byte 0'),
        ('ns_ZGVmY_' + H.ZEROS, 'namespace part is not valid base64url: illegal base64 data at input byte 4'),
        ('ns_ZGV.YXVsdA_' + H.ZEROS, 'namespace part is not valid base64url: illegal base64 data at input byte 3'),
        ('ns__' + H.ZEROS, 'namespace is empty'),
        ('ns_a_b_xyz', 'expected 2 parts after prefix, got 3'),
        ('ns_a_b_c_' + H.ZEROS, 'expected 2 parts after prefix, got 4'),
        ('ns_YWI__' + '0' * 63, 'expected 2 parts after prefix, got 3'),
        ('ns_YWI__' + 'g' * 64, 'expected 2 parts after prefix, got 3'),
    ]

    def test_parse_errors_in_both_modes(self):
        for srv in (STRICT, TEST):
            for tok, err in self.CASES:
                with self.subTest(mode='strict' if srv is STRICT else 'test', token=tok[:24]):
                    self.assertRejected(do(srv.port, 'rpc', bearer(tok)), 401, invalid(err))

    def test_parse_errors_via_the_query_parameter(self):
        for tok, err in self.CASES[:12]:
            with self.subTest(token=tok[:24]):
                self.assertRejected(do(STRICT.port, 'rpc', qtoken=tok), 401, invalid(err))

    def test_three_part_token_decoding_to_an_unknown_namespace(self):
        # B = "a_b" decodes, H is 64 hex: the namespace is the decoded bytes -> 403
        r = do(TEST.port, 'rpc', bearer('ns_YWJj_ZGVm_' + H.ZEROS))   # B = "YWJj_ZGVm": 9 chars
        self.assertRejected(r, 401, invalid('expected 2 parts after prefix, got 3'))
        # B = "a_" decodes (non-zero padding bits tolerated) to "k"
        self.assertRejected(do(TEST.port, 'rpc', bearer('ns_a__' + H.ZEROS)), 403, unauthorized('k'))
        r = do(TEST.port, 'rpc', bearer('ns_eD8_eQ_' + H.ZEROS))        # "x??y", not created
        self.assertRejected(r, 403, unauthorized('x??y'))


# ---------------------------------------------------------------------------
# ?token= precedence (4.4 step 1)
# ---------------------------------------------------------------------------

class QueryToken(AuthCase):
    def test_query_token_wins_over_the_header(self):
        for headers in ([], [('Authorization', 'Basic x')], bearer('invalid'), bearer(H.token_for('nobody'))):
            for ep in ENDPOINTS:
                with self.subTest(headers=headers, ep=ep):
                    self.assertAccepted(do(STRICT.port, ep, headers, qtoken=A), ep)
        self.assertRejected(do(STRICT.port, 'rpc', bearer(A), qtoken='invalid'), 401, invalid("missing 'ns_' prefix"))
        ns = 'nobody_' + uid()
        self.assertRejected(do(STRICT.port, 'rpc', bearer(A), qtoken=H.token_for(ns)), 403, unauthorized(ns))

    def test_empty_query_token_falls_back_to_the_header(self):
        self.assertAccepted(do(STRICT.port, 'rpc', bearer(A), qtoken=''), 'rpc')
        self.assertRejected(do(STRICT.port, 'rpc', qtoken=''), 401, required('Authorization header required'))
        self.assertRejected(do(STRICT.port, 'rpc', [('Authorization', 'Basic x')], qtoken=''), 401,
                            required('Authorization header must use Bearer scheme'))

    def raw(self, port, target, headers=()):
        c = H.Conn(port)
        try:
            return c.request('POST', target, b'["sys.version"]', list(headers))
        finally:
            c.close()

    def test_first_occurrence_wins_and_values_are_form_decoded(self):
        self.assertAccepted(self.raw(STRICT.port, '/rpc?token=%s&token=bad' % A), 'rpc')
        self.assertRejected(self.raw(STRICT.port, '/rpc?token=bad&token=%s' % A), 401, invalid("missing 'ns_' prefix"))
        self.assertAccepted(self.raw(STRICT.port, '/rpc?x=1&token=%s&y=2' % A), 'rpc')
        enc = ''.join('%%%02X' % ord(ch) for ch in A)
        self.assertAccepted(self.raw(STRICT.port, '/rpc?token=' + enc), 'rpc')
        self.assertAccepted(self.raw(STRICT.port, '/rpc?token=' + A.replace('_', '%5f')), 'rpc')
        self.assertRejected(self.raw(STRICT.port, '/rpc?tokens=' + A), 401, required('Authorization header required'))
        self.assertRejected(self.raw(STRICT.port, '/rpc?Token=' + A), 401, required('Authorization header required'))
        # '+' decodes to a space
        self.assertRejected(self.raw(STRICT.port, '/rpc?token=+' + A), 401, invalid("missing 'ns_' prefix"))


# ---------------------------------------------------------------------------
# Tokens whose base64url contains '_' (4.2, 10.1)
# ---------------------------------------------------------------------------

class UnderscoreTokens(AuthCase):
    NAMES = ['ab?', '???', 'x??y', '\u00ff\u00ff\u00ff', '?>?>', 't_0_m5x2k1_ab12', 'a?b?c?']

    def test_client_built_and_generated_tokens_work(self):
        for srv in (STRICT, TEST):
            adm = H.Client(srv.port, A)
            for i, base in enumerate(self.NAMES):
                for generated in (False, True):
                    ns = base + ('' if not generated else '~' + uid(4))
                    with self.subTest(mode='strict' if srv is STRICT else 'test', ns=ns):
                        if generated:
                            tok = adm.call('ns.create', ns)['token']
                        else:
                            tok = H.token_for(ns, '%064x' % (i + 1))
                            self.assertEqual(adm.call('ns.create', ns, {'token': tok})['token'], tok)
                        self.assertTrue(tok.startswith('ns_' + H.b64ns(ns) + '_'), tok)
                        c = H.Client(srv.port, tok)
                        self.assertEqual(c.write('u-1'), {'globalPosition': 1, 'position': 0})
                        c.close()
                        for ep in ENDPOINTS:
                            self.assertAccepted(do(srv.port, ep, bearer(tok)), ep)
                            self.assertAccepted(do(srv.port, ep, qtoken=tok), ep)
                        if srv is STRICT:
                            self.assertRejected(do(srv.port, 'rpc', bearer(tok[:-64] + 'e' * 64)), 403,
                                                unauthorized(ns))
            names = [b64 for b64 in (H.b64ns(n) for n in self.NAMES) if '_' in b64]
            self.assertGreaterEqual(len(names), 5)
            adm.close()


# ---------------------------------------------------------------------------
# Deleted namespaces, scope, methods
# ---------------------------------------------------------------------------

class Lifecycle(AuthCase):
    def test_deleted_namespace_is_403_everywhere(self):
        for srv in (STRICT, TEST):
            ns, tok = self.new_ns(srv, generated=(srv is STRICT))
            for ep in ENDPOINTS:
                self.assertAccepted(do(srv.port, ep, bearer(tok)), ep)
            adm = H.Client(srv.port, A)
            adm.call('ns.delete', ns)
            adm.close()
            for ep in ENDPOINTS:
                with self.subTest(mode='strict' if srv is STRICT else 'test', ep=ep):
                    self.assertRejected(do(srv.port, ep, bearer(tok)), 403, unauthorized(ns))
                    self.assertRejected(do(srv.port, ep, qtoken=tok), 403, unauthorized(ns))

    def test_client_supplied_upper_case_secret_is_stored_as_given(self):
        ns = 'upper_' + uid()
        tok = H.token_for(ns, 'ABCDEF0123456789' * 4)
        adm = H.Client(STRICT.port, A)
        self.assertEqual(adm.call('ns.create', ns, {'token': tok})['token'], tok)
        adm.close()
        self.assertAccepted(do(STRICT.port, 'rpc', bearer(tok)), 'rpc')
        self.assertRejected(do(STRICT.port, 'rpc', bearer(tok.lower().replace(H.b64ns(ns).lower(), H.b64ns(ns)))),
                            403, unauthorized(ns))

    def test_recreated_namespace_keeps_only_the_new_token(self):
        ns, tok = self.new_ns(STRICT, generated=True)
        adm = H.Client(STRICT.port, A)
        adm.call('ns.delete', ns)
        tok2 = adm.call('ns.create', ns)['token']
        adm.close()
        self.assertNotEqual(tok, tok2)
        self.assertRejected(do(STRICT.port, 'rpc', bearer(tok)), 403, unauthorized(ns))
        self.assertAccepted(do(STRICT.port, 'rpc', bearer(tok2)), 'rpc')

    def test_any_valid_token_may_manage_any_namespace(self):
        ns1, tok1 = self.new_ns(STRICT, True)
        ns2, tok2 = self.new_ns(STRICT, True)
        c1 = H.Client(STRICT.port, tok1)
        H.Client(STRICT.port, tok2).write('secret-1', data={'s': 1})
        self.assertEqual(c1.call('ns.info', ns2)['messageCount'], 1)
        self.assertEqual(c1.call('ns.info', 'default')['description'], 'Default namespace')
        self.assertIn(ns2, [e['namespace'] for e in c1.call('ns.list')])
        ns3 = 'made_by_tenant_' + uid()
        self.assertEqual(c1.call('ns.create', ns3)['namespace'], ns3)
        # data stays in the request namespace
        self.assertEqual(c1.call('stream.get', 'secret-1'), [])
        self.assertEqual(c1.call('category.get', ''), [])
        self.assertEqual(c1.call('ns.delete', ns2)['messagesDeleted'], 1)
        self.assertRejected(do(STRICT.port, 'rpc', bearer(tok2)), 403, unauthorized(ns2))
        c1.close()

    def test_wrong_method_is_401_before_405_in_strict_mode(self):
        c = H.Conn(STRICT.port)
        r = c.request('GET', '/rpc')
        self.assertBody(r, 401, required('Authorization header required'))
        r = c.request('GET', '/rpc', token=A)
        self.assertBody(r, 405, b'{"error":{"code":"INVALID_REQUEST","message":"Only POST method allowed"}}\n')
        self.assertEqual(r.header('allow'), 'POST')
        r = c.request('PUT', '/rpc', b'["sys.version"]', token='bad')
        self.assertBody(r, 401, invalid("missing 'ns_' prefix"))
        r = c.request('DELETE', '/export')
        self.assertBody(r, 401, required('Authorization header required'))
        r = c.request('POST', '/export', b'', token=A)
        self.assertBody(r, 405, b'{"error":{"code":"INVALID_REQUEST","message":"Only GET method allowed"}}\n')
        self.assertEqual(r.header('allow'), 'GET')
        c.close()
        c = H.Conn(TEST.port)
        r = c.request('GET', '/rpc')
        self.assertBody(r, 405, b'{"error":{"code":"INVALID_REQUEST","message":"Only POST method allowed"}}\n')
        r = c.request('GET', '/rpc', token=H.token_for('nobody_' + uid()))
        self.assertEqual(r.status, 403)
        c.close()

    def test_unauthenticated_paths_in_strict_mode(self):
        for path, status in (('/health', 200), ('/version', 200), ('/metrics', 200), ('/nope', 404),
                             ('/rpc/', 404), ('/admin/namespaces', 404), ('/debug/pprof/', 404)):
            with self.subTest(path=path):
                self.assertEqual(H.http_get(STRICT.port, path).status, status)

    def test_forced_import_with_bad_credentials_clears_nothing(self):
        ns, tok = self.new_ns(STRICT, True)
        c = H.Client(STRICT.port, tok)
        c.write('keep-1')
        r = H.Conn(STRICT.port).request('POST', '/import?force=true', b'', token=H.token_for(ns, '5' * 64))
        self.assertRejected(r, 403, unauthorized(ns))
        r = H.Conn(STRICT.port).request('POST', '/import?force=true', b'')
        self.assertRejected(r, 401, required('Authorization header required'))
        self.assertEqual(c.call('stream.version', 'keep-1'), 0)
        c.close()

    def test_startup_token_is_the_default_namespace_token(self):
        c = H.Client(STRICT.port, A)
        s = 'startup-' + uid()
        c.write(s)
        self.assertEqual(c.call('stream.version', s), 0)
        self.assertRejected(do(STRICT.port, 'rpc', bearer(H.token_for('default', '1' * 64))), 403,
                            unauthorized('default'))
        c.close()


if __name__ == '__main__':
    H.main(__name__)
