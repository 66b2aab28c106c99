/* test_json.c — the strict scanner, accessors, numbers, equality, writer and
 * compaction.  cJSON is the independent oracle: what we accept, cJSON must
 * accept, and what we write, cJSON must read back as intended. */
#include "testutil.h"

#include <stdio.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "json.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

typedef struct scanned {
    lss_json_doc d;
    lss_json_tok *tok;
    size_t cap;
    lss_json_err err;
    int rc;
} scanned;

static void scan_into(scanned *s, const char *p, size_t n, unsigned expand)
{
    s->cap = lss__json_tape_need(n);
    s->tok = test_malloc(s->cap * sizeof *s->tok);
    s->rc = lss__json_scan(&s->d, p, n, expand, s->tok, s->cap, &s->err);
}

static void scanned_free(scanned *s)
{
    test_free(s->tok);
    s->tok = NULL;
}

static int scan_rc(const char *p, size_t n, unsigned expand, lss_json_err *err)
{
    scanned s;
    scan_into(&s, p, n, expand);
    if (err)
        *err = s.err;
    scanned_free(&s);
    return s.rc;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every container's children must end exactly at its next, and every token
 * must start with the byte its type promises. */
static void check_tape(const lss_json_doc *d)
{
    for (size_t i = 0; i < d->ntok; i++) {
        const lss_json_tok *t = &d->tok[i];
        assert_true(t->next > i && t->next <= d->ntok);
        assert_true((size_t)t->off + t->len <= d->len && t->len > 0);
        char c = d->src[t->off];
        switch (t->type) {
        case LSS_JSON_STRING: assert_int_equal(c, '"'); break;
        case LSS_JSON_ARRAY: assert_int_equal(c, '['); break;
        case LSS_JSON_OBJECT: assert_int_equal(c, '{'); break;
        case LSS_JSON_NUMBER: assert_true(c == '-' || (c >= '0' && c <= '9')); break;
        default: assert_true(c == 't' || c == 'f' || c == 'n');
        }
        if (t->type != LSS_JSON_ARRAY && t->type != LSS_JSON_OBJECT) {
            assert_int_equal(t->next, i + 1);
            continue;
        }
        uint32_t j = (uint32_t)i + 1;
        for (uint32_t c2 = 0; c2 < t->count; c2++) {
            if (t->type == LSS_JSON_OBJECT) {
                assert_int_equal(d->tok[j].type, LSS_JSON_STRING);
                j = d->tok[j].next;
            }
            j = d->tok[j].next;
        }
        assert_int_equal(j, t->next);
    }
}

/* ------------------------------------------------------------------------
 * (a) The accept/reject table
 * ---------------------------------------------------------------------- */

typedef struct jcase {
    const char *text;
    size_t len;
    int ok;
    const char *msg; /* NULL: any message */
    long off;        /* -1: any offset */
} jcase;

#define OK(s) {s, sizeof(s) - 1, 1, NULL, -1}
#define BAD(s, m) {s, sizeof(s) - 1, 0, m, -1}
#define BADAT(s, m, o) {s, sizeof(s) - 1, 0, m, o}

#define EOFMSG "unexpected end of JSON input"
#define UTF8MSG "invalid UTF-8 in string"
#define SURR "invalid surrogate escape"
#define NUL0 "U+0000 is not allowed in strings"
#define BEGIN(c) "invalid character '" c "' looking for beginning of value"
#define AFTER_TOP(c) "invalid character '" c "' after top-level value"
#define AFTER_ELEM(c) "invalid character '" c "' after array element"
#define AFTER_PAIR(c) "invalid character '" c "' after object key:value pair"
#define AFTER_KEY(c) "invalid character '" c "' after object key"
#define KEY_BEGIN(c) "invalid character '" c "' looking for beginning of object key string"
#define IN_STR(c) "invalid character '" c "' in string literal"
#define IN_ESC(c) "invalid character '" c "' in string escape code"
#define IN_HEX(c) "invalid character '" c "' in \\u hexadecimal character escape"
#define IN_NUM(c) "invalid character '" c "' in numeric literal"
#define AFTER_DOT(c) "invalid character '" c "' after decimal point in numeric literal"
#define IN_EXP(c) "invalid character '" c "' in exponent of numeric literal"

static const jcase cases[] = {
    /* numbers */
    OK("0"), OK("-0"), OK("1"), OK("-1"), OK("0e0"), OK("0E0"), OK("1E+2"),
    OK("1e-2"), OK("1.5"), OK("-1.5e10"), OK("0.0"), OK("-0.0"), OK("0.0e+00"),
    OK("1E-0"), OK("100"), OK("10.01"), OK("123e456"),
    OK("123456789012345678901234567890"), OK("1e999999999999999999"),
    OK("-9223372036854775808"), OK("[0,-0,1.5e-7]"),
    BADAT("01", AFTER_TOP("1"), 1), BAD("-01", AFTER_TOP("1")),
    BAD("00", AFTER_TOP("0")), BADAT("[01]", AFTER_ELEM("1"), 2),
    BAD("1.", EOFMSG), BADAT("[1.]", AFTER_DOT("]"), 3), BAD("0.", EOFMSG),
    BAD("1.e5", AFTER_DOT("e")), BAD("0.e1", AFTER_DOT("e")),
    BADAT(".5", BEGIN("."), 0), BAD(".", BEGIN(".")), BAD("-", EOFMSG),
    BAD("[-]", IN_NUM("]")), BAD("-a", IN_NUM("a")), BAD("--1", IN_NUM("-")),
    BAD("- 1", IN_NUM(" ")), BAD("+1", BEGIN("+")), BAD("1e", EOFMSG),
    BAD("1e+", EOFMSG), BAD("[1e]", IN_EXP("]")), BAD("1e.5", IN_EXP(".")),
    BAD("1E+x", IN_EXP("x")), BAD("1.5.", AFTER_TOP(".")),
    BAD("[1e5.5]", AFTER_ELEM(".")), BAD("0x10", AFTER_TOP("x")),
    BAD("1_000", AFTER_TOP("_")), BAD("NaN", BEGIN("N")),
    BAD("Infinity", BEGIN("I")), BAD("-Infinity", IN_NUM("I")),
    BAD("nan", "invalid character 'a' in literal null (expecting 'u')"),
    BAD("[1,NaN]", BEGIN("N")),
    /* literals */
    OK("true"), OK("false"), OK("null"), OK("[true,false,null]"),
    BAD("tru", EOFMSG), BAD("nul", EOFMSG), BAD("fals", EOFMSG),
    BADAT("trux", "invalid character 'x' in literal true (expecting 'e')", 3),
    BAD("nulL", "invalid character 'L' in literal null (expecting 'l')"),
    BAD("falsy", "invalid character 'y' in literal false (expecting 'e')"),
    BAD("True", BEGIN("T")), BAD("truefalse", AFTER_TOP("f")),
    BAD("[true false]", AFTER_ELEM("f")), BAD("undefined", BEGIN("u")),
    /* strings and escapes */
    OK("\"\""), OK("\"x\""), OK("\"\\\"\""), OK("\"\\\\\""), OK("\"\\/\""),
    OK("\"\\b\\f\\n\\r\\t\""), OK("\"\\u0041\""), OK("\"\\u00e9\""),
    OK("\"\\u00E9\""), OK("\"\\u0001\\u001f\\u007f\\u0080\""),
    OK("\"\\uD83D\\uDE00\""), OK("\"\\ud83d\\ude00\""), OK("\"\\uFFFF\""),
    OK("\"\\uD800\\uDC00\""), OK("\"\\uDBFF\\uDFFF\""), OK("\"a b c\""),
    OK("\"'single'\""), OK("\"/*no comment*/\""), OK("\"\\u2028\\u2029\""),
    BAD("\"a", EOFMSG), BAD("\"", EOFMSG), BAD("\"\\", EOFMSG),
    BAD("\"\\u12", EOFMSG), BAD("\"\\u00", EOFMSG),
    BADAT("'a'", BEGIN("\\'"), 0), BAD("{'a':1}", KEY_BEGIN("\\'")),
    BADAT("\"\x01\"", IN_STR("\\x01"), 1), BAD("\"a\nb\"", IN_STR("\\n")),
    BAD("\"\t\"", IN_STR("\\t")), BAD("\"\x1f\"", IN_STR("\\x1f")),
    BAD("\"\r\"", IN_STR("\\r")),
    BADAT("\"ab\0\"", NUL0, 3), BADAT("\"\\u0000\"", NUL0, 1),
    BAD("{\"\\u0000\":1}", NUL0), BAD("[\"x\",\"\\u0000y\"]", NUL0),
    BADAT("\"\\x\"", IN_ESC("x"), 2), BAD("\"\\'\"", IN_ESC("\\'")),
    BAD("\"\\a\"", IN_ESC("a")), BAD("\"\\U0041\"", IN_ESC("U")),
    BAD("\"\\0\"", IN_ESC("0")), BAD("\"\\ \"", IN_ESC(" ")),
    BADAT("\"\\u12\"\"", IN_HEX("\""), 5), BAD("\"\\u00G0\"", IN_HEX("G")),
    BAD("\"\\u-123\"", IN_HEX("-")),
    BADAT("\"\\uDE00\"", SURR, 1), BAD("\"\\uDC00\"", SURR),
    BAD("\"\\uDFFF\"", SURR), BADAT("\"\\uD83D\"", SURR, 1),
    BAD("\"\\uD83Dx\"", SURR), BAD("\"\\uD83D\\u0041\"", SURR),
    BAD("\"\\uD83D\\uD83D\"", SURR), BAD("\"\\uD83D\\n\"", SURR),
    BAD("\"\\uDBFF\\uE000\"", SURR), BAD("\"x\\uDE00\\uD83D\"", SURR),
    BAD("\"\\uD83D\\uDE0\"", IN_HEX("\"")), BAD("\"\\uD83D\\", EOFMSG),
    /* UTF-8: boundaries accepted */
    OK("\"\x7f\""), OK("\"\xc2\x80\""), OK("\"\xdf\xbf\""),
    OK("\"\xe0\xa0\x80\""), OK("\"\xed\x9f\xbf\""), OK("\"\xee\x80\x80\""),
    OK("\"\xef\xbf\xbf\""), OK("\"\xf0\x90\x80\x80\""),
    OK("\"\xf4\x8f\xbf\xbf\""), OK("\"\xe6\x97\xa5\xe6\x9c\xac\""),
    OK("\"\xf0\x9f\x98\x80 ok\""), OK("{\"\xc3\xa9\":\"\xe2\x82\xac\"}"),
    /* UTF-8: ill-formed rejected */
    BADAT("\"\x80\"", UTF8MSG, 1), BAD("\"\xbf\"", UTF8MSG),
    BAD("\"\xc0\x80\"", UTF8MSG), BAD("\"\xc1\xbf\"", UTF8MSG),
    BAD("\"\xe0\x80\x80\"", UTF8MSG), BAD("\"\xe0\x9f\xbf\"", UTF8MSG),
    BADAT("\"ab\xed\xa0\x80\"", UTF8MSG, 3), BAD("\"\xed\xbf\xbf\"", UTF8MSG),
    BAD("\"\xf0\x80\x80\x80\"", UTF8MSG), BAD("\"\xf0\x8f\xbf\xbf\"", UTF8MSG),
    BAD("\"\xf4\x90\x80\x80\"", UTF8MSG), BAD("\"\xf5\x80\x80\x80\"", UTF8MSG),
    BAD("\"\xf8\x88\x80\x80\x80\"", UTF8MSG), BAD("\"\xff\"", UTF8MSG),
    BAD("\"\xfe\"", UTF8MSG), BAD("\"\xc3\"", UTF8MSG),
    BAD("\"\xe2\x82\"", UTF8MSG), BAD("\"\xf0\x9f\x98\"", UTF8MSG),
    BAD("\"\xc3\x28\"", UTF8MSG), BAD("\"\xe2\x28\xa1\"", UTF8MSG),
    BAD("\"\xf0\x9f\x28\x80\"", UTF8MSG), BAD("\"\xc3", UTF8MSG),
    BAD("\"\xf0\x9f\x98", UTF8MSG), BAD("{\"k\xff\":1}", UTF8MSG),
    /* bytes outside strings */
    BADAT("\xef\xbb\xbf" "1", BEGIN("\xc3\xaf"), 0),
    BAD("\xc3\xa9", BEGIN("\xc3\x83")), BAD("\x00", BEGIN("\\x00")),
    BAD("1\x00", AFTER_TOP("\\x00")), BAD("[1]\x80", AFTER_TOP("\\u0080")),
    /* whitespace */
    OK(" 1 "), OK("\t\r\n1\n"), OK("\r[1]\r"), OK("[ 1 , 2 ]"),
    OK("{ \"a\" : 1 }"), OK(" \n[\n{\n}\n]\n "),
    BAD("", EOFMSG), BAD("   ", EOFMSG), BAD("\n\t\r ", EOFMSG),
    BADAT("\f1", BEGIN("\\f"), 0), BAD("1\f", AFTER_TOP("\\f")),
    BAD("[1,\f2]", BEGIN("\\f")), BAD("\v1", BEGIN("\\v")),
    BAD("\xc2\xa0" "1", BEGIN("\xc3\x82")),
    /* comments */
    BAD("/* c */ 1", BEGIN("/")), BAD("1 // c", AFTER_TOP("/")),
    BAD("[1 /* c */]", AFTER_ELEM("/")), BAD("# c\n1", BEGIN("#")),
    /* arrays */
    OK("[]"), OK("[[]]"), OK("[{}]"), OK("[1,\"a\",true,false,null,{},[]]"),
    OK("[[[[[[1]]]]]]"), OK("[\"a\",[\"b\",[\"c\"]]]"),
    BAD("[", EOFMSG), BAD("[1", EOFMSG), BAD("[1,", EOFMSG),
    BAD("[1,2,", EOFMSG), BADAT("[1,]", BEGIN("]"), 3),
    BAD("[,1]", BEGIN(",")), BAD("[1,,2]", BEGIN(",")),
    BADAT("[1 2]", AFTER_ELEM("2"), 3), BAD("[1;2]", AFTER_ELEM(";")),
    BAD("[1}", AFTER_ELEM("}")), BAD("]", BEGIN("]")),
    BADAT("[1]]", AFTER_TOP("]"), 3), BAD("[] []", AFTER_TOP("[")),
    BAD("[1:2]", AFTER_ELEM(":")),
    /* objects */
    OK("{}"), OK("{\"a\":1}"), OK("{\"a\":1,\"b\":2}"), OK("{\"a\":1,\"A\":1}"),
    OK("{\"\":1}"), OK("{\"a\":{\"a\":1}}"), OK("[{\"a\":1},{\"a\":2}]"),
    OK("{\"ab\":1,\"a\":1,\"b\":1}"), OK("{\"a\":[],\"b\":{},\"c\":\"\"}"),
    OK("{\"a\":{\"b\":{\"c\":{}}}}"), OK("{\"a b\":1,\"a  b\":2}"),
    BAD("{", EOFMSG), BAD("{\"a\"", EOFMSG), BAD("{\"a\":", EOFMSG),
    BAD("{\"a\":1", EOFMSG), BAD("{\"a\":1,", EOFMSG),
    BADAT("{\"a\":1,}", KEY_BEGIN("}"), 7), BAD("{,}", KEY_BEGIN(",")),
    BAD("{a:1}", KEY_BEGIN("a")), BAD("{1:1}", KEY_BEGIN("1")),
    BADAT("{\"a\" 1}", AFTER_KEY("1"), 5), BAD("{\"a\"}", AFTER_KEY("}")),
    BAD("{\"a\";1}", AFTER_KEY(";")), BAD("{\"a\":}", BEGIN("}")),
    BADAT("{\"a\":1 \"b\":2}", AFTER_PAIR("\""), 7),
    BAD("{\"a\":1]", AFTER_PAIR("]")), BAD("{\"a\":1,,}", KEY_BEGIN(",")),
    BAD("}", BEGIN("}")), BAD("{\"a\":1}{}", AFTER_TOP("{")),
    BAD("{\"a\"::1}", BEGIN(":")), BAD("{null:1}", KEY_BEGIN("n")),
    /* duplicate member names, compared after unescaping */
    BADAT("{\"a\":1,\"a\":2}", "duplicate object key \"a\"", 7),
    BADAT("{\"a\":1,\"\\u0061\":2}", "duplicate object key \"a\"", 7),
    BAD("{\"\\u0061\":1,\"a\":2}", "duplicate object key \"a\""),
    BAD("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate object key \"\xc3\xa9\""),
    BAD("{\"\\uD83D\\uDE00\":1,\"\xf0\x9f\x98\x80\":2}",
        "duplicate object key \"\xf0\x9f\x98\x80\""),
    BAD("{\"a\":{\"b\":1,\"b\":2}}", "duplicate object key \"b\""),
    BAD("[{\"x\":1,\"y\":2,\"x\":3}]", "duplicate object key \"x\""),
    BAD("{\"\":1,\"\":2}", "duplicate object key \"\""),
    BAD("{\"a\\/b\":1,\"a/b\":2}", "duplicate object key \"a/b\""),
    BAD("{\"\\n\":1,\"\\u000a\":2}", "duplicate object key \"\n\""),
    BAD("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,"
        "\"i\":9,\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"\\u0067\":15}",
        "duplicate object key \"g\""),
    BAD("[1,{\"q\":{\"r\":[{\"s\":1,\"t\":2,\"s\":3}]}}]",
        "duplicate object key \"s\""),
    /* top level: exactly one value */
    OK("\"top\""), OK("42"), BAD("1 2", AFTER_TOP("2")),
    BAD("\"abc\"x", AFTER_TOP("x")), BAD("\"a\"  \"b\"", AFTER_TOP("\"")),
    BAD("null,", AFTER_TOP(",")),
};

static void expect_case(const jcase *c, size_t i, unsigned expand)
{
    lss_json_err err;
    int rc = scan_rc(c->text, c->len, expand, &err);
    if (c->ok && rc != LSS_OK) {
        print_error("case %zu (expand %u) '%.*s' rejected: %s\n", i, expand,
                    (int)c->len, c->text, err.msg);
        fail();
    }
    if (c->ok)
        return;
    if (rc != LSS_EJSON) {
        print_error("case %zu (expand %u) '%.*s' gave %d\n", i, expand,
                    (int)c->len, c->text, rc);
        fail();
    }
    if (c->msg && strcmp(c->msg, err.msg) != 0) {
        print_error("case %zu '%.*s': message '%s', want '%s'\n", i,
                    (int)c->len, c->text, err.msg, c->msg);
        fail();
    }
    if (c->off >= 0 && (long)err.off != c->off) {
        print_error("case %zu '%.*s': offset %zu, want %ld\n", i, (int)c->len,
                    c->text, err.off, c->off);
        fail();
    }
}

/* cJSON on a terminated copy, the whole text required to be one value. */
static cJSON *cjson_try(const char *p, size_t n)
{
    char *z = test_malloc(n + 1);
    const char *end = NULL;
    memcpy(z, p, n);
    z[n] = '\0';
    cJSON *j = cJSON_ParseWithOpts(z, &end, 1);
    test_free(z);
    return j;
}

/* What we accept, cJSON (more lenient) must accept too. */
static void expect_cjson_accepts(const char *p, size_t n)
{
    cJSON *j = cjson_try(p, n);
    if (!j) {
        print_error("cJSON rejects accepted '%.*s'\n", (int)n, p);
        fail();
    }
    cJSON_Delete(j);
}

static void scanner_should_follow_the_accept_reject_table(void **state)
{
    (void)state;
    size_t ncases = LSS_ARRAY_LEN(cases);
    assert_true(ncases >= 150);
    for (size_t i = 0; i < ncases; i++) {
        const jcase *c = &cases[i];
        expect_case(c, i, LSS_JSON_EXPAND_ALL);
        expect_case(c, i, 0);
        expect_case(c, i, 1);
        if (!c->ok)
            continue;
        scanned s;
        scan_into(&s, c->text, c->len, LSS_JSON_EXPAND_ALL);
        check_tape(&s.d);
        scanned_free(&s);
        expect_cjson_accepts(c->text, c->len);
    }
}

static void scanner_should_reject_lone_low_surrogate(void **state)
{
    (void)state;
    lss_json_err err;
    assert_int_equal(scan_rc("\"\\uDE00\"", 8, LSS_JSON_EXPAND_ALL, &err),
                     LSS_EJSON);
    assert_string_equal(err.msg, "invalid surrogate escape");
    assert_int_equal(scan_rc("\"\\uD83D\\uDE00\"", 14, 0, &err), LSS_OK);
}

static char *nested(size_t depth, const char *open, const char *mid,
                    const char *close, size_t *n)
{
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    *n = depth * (lo + lc) + lm;
    char *p = test_malloc(*n + 1), *q = p;
    for (size_t i = 0; i < depth; i++, q += lo)
        memcpy(q, open, lo);
    memcpy(q, mid, lm);
    q += lm;
    for (size_t i = 0; i < depth; i++, q += lc)
        memcpy(q, close, lc);
    *q = '\0';
    return p;
}

static void expect_depth(const char *open, const char *close, size_t lo)
{
    size_t n;
    lss_json_err err;
    for (unsigned expand = 0; expand <= LSS_JSON_EXPAND_ALL; expand += 256) {
        char *p = nested(512, open, "1", close, &n);
        assert_int_equal(scan_rc(p, n, expand, &err), LSS_OK);
        test_free(p);
        p = nested(513, open, "1", close, &n);
        assert_int_equal(scan_rc(p, n, expand, &err), LSS_EJSON);
        assert_string_equal(err.msg, "nesting depth exceeds 512");
        assert_int_equal(err.off, 512 * lo);
        test_free(p);
    }
}

static void scanner_should_accept_depth_512_and_reject_513(void **state)
{
    (void)state;
    expect_depth("[", "]", 1);
    expect_depth("{\"a\":", "}", 5);
    /* mixed: 256 x [{"": is 512 levels; one more [ makes 513 */
    size_t n;
    lss_json_err err;
    char *p = nested(256, "[{\"\":", "1", "}]", &n);
    assert_int_equal(scan_rc(p, n, LSS_JSON_EXPAND_ALL, &err), LSS_OK);
    test_free(p);
    p = nested(256, "[{\"\":", "[1]", "}]", &n);
    assert_int_equal(scan_rc(p, n, 3, &err), LSS_EJSON);
    assert_string_equal(err.msg, "nesting depth exceeds 512");
    assert_int_equal(err.off, 256 * 5);
    test_free(p);
}

static void scanner_should_fail_fast_on_100000_deep_arrays(void **state)
{
    (void)state;
    size_t n = 100000;
    char *p = test_malloc(n);
    memset(p, '[', n);
    lss_json_tok tok[8];
    lss_json_doc d;
    lss_json_err err;
    double t0 = now_seconds();
    /* expand 0 needs one token: the depth limit must trip, not storage */
    assert_int_equal(lss__json_scan(&d, p, n, 0, tok, 8, &err), LSS_EJSON);
    assert_true(now_seconds() - t0 < 0.5);
    assert_string_equal(err.msg, "nesting depth exceeds 512");
    assert_int_equal(err.off, 512);
    scanned s;
    scan_into(&s, p, n, LSS_JSON_EXPAND_ALL);
    assert_int_equal(s.rc, LSS_EJSON);
    assert_string_equal(s.err.msg, "nesting depth exceeds 512");
    scanned_free(&s);
    test_free(p);
}

static void scanner_should_expand_only_to_the_requested_depth(void **state)
{
    (void)state;
    static const char doc[] = "[1,[2,[3,{\"a\":[4]}]]]";
    static const size_t want[] = {1, 3, 5, 7, 9, 10, 10};
    for (unsigned e = 0; e < LSS_ARRAY_LEN(want); e++) {
        scanned s;
        scan_into(&s, doc, sizeof doc - 1, e);
        assert_int_equal(s.rc, LSS_OK);
        assert_int_equal(s.d.ntok, want[e]);
        check_tape(&s.d);
        scanned_free(&s);
    }
    scanned s;
    scan_into(&s, doc, sizeof doc - 1, 1);
    const lss_json_tok *inner = &s.d.tok[2];
    assert_int_equal(inner->type, LSS_JSON_ARRAY);
    assert_true(inner->flags & LSS_JSON_RAW);
    assert_int_equal(inner->count, 0);
    lss_span sp = lss__json_span(&s.d, inner);
    assert_span_equal(sp.p, sp.n, "[2,[3,{\"a\":[4]}]]");
    lss_json_iter it;
    lss__json_iter_init(&it, &s.d, inner);
    assert_null(lss__json_iter_next(&it, NULL));
    assert_false(s.d.tok[0].flags & LSS_JSON_RAW);
    assert_int_equal(s.d.tok[0].count, 2);
    scanned_free(&s);
}

/* A deep object that is not expanded is still checked for duplicates. */
static void scanner_should_find_duplicates_in_unexpanded_objects(void **state)
{
    (void)state;
    static const char doc[] =
        "[\"m\",{\"data\":{\"x\":{\"y\":1,\"z\":2,\"\\u0079\":3}}}]";
    lss_json_err err;
    for (unsigned e = 0; e <= 4; e++) {
        assert_int_equal(scan_rc(doc, sizeof doc - 1, e, &err), LSS_EJSON);
        assert_string_equal(err.msg, "duplicate object key \"y\"");
        assert_int_equal(err.off, 31);
    }
}

/* Long names are cut in the message at a character boundary. */
static void duplicate_message_should_cut_long_names_cleanly(void **state)
{
    (void)state;
    char doc[512], key[128], want[128];
    size_t k = 0;
    key[k++] = 'a';
    for (int i = 0; i < 40; i++, k += 2)
        memcpy(key + k, "\xc3\xa9", 2);
    key[k] = '\0';
    snprintf(doc, sizeof doc, "{\"%s\":1,\"%s\":2}", key, key);
    /* 60 bytes kept would split the 30th e-acute: 'a' + 29 of them stay */
    snprintf(want, sizeof want, "duplicate object key \"%.59s...\"", key);
    lss_json_err err;
    assert_int_equal(scan_rc(doc, strlen(doc), 0, &err), LSS_EJSON);
    assert_string_equal(err.msg, want);
}

/* ------------------------------------------------------------------------
 * (f) Big objects and storage
 * ---------------------------------------------------------------------- */

static char *big_object(size_t keys, const char *prefix, const char *extra,
                        size_t *n)
{
    size_t cap = keys * (strlen(prefix) + 32) + strlen(extra) + 16;
    char *p = test_malloc(cap);
    size_t len = 0;
    p[len++] = '{';
    for (size_t i = 0; i < keys; i++)
        len += (size_t)snprintf(p + len, cap - len, "%s\"%sk%zu\":%zu",
                                i ? "," : "", prefix, i, i);
    len += (size_t)snprintf(p + len, cap - len, "%s}", extra);
    *n = len;
    return p;
}

static void expect_big(size_t keys, const char *prefix, const char *extra,
                       int ok, const char *msg)
{
    size_t n;
    char *p = big_object(keys, prefix, extra, &n);
    for (unsigned e = 0; e <= 1; e++) {
        scanned s;
        double t0 = now_seconds();
        scan_into(&s, p, n, e);
        double dt = now_seconds() - t0;
        assert_true(dt < 5.0);
        assert_int_equal(s.rc, ok ? LSS_OK : LSS_EJSON);
        if (ok && e == 1)
            assert_int_equal(s.d.ntok, 1 + 2 * keys);
        if (msg)
            assert_string_equal(s.err.msg, msg);
        scanned_free(&s);
    }
    test_free(p);
}

static void scanner_should_check_100000_keys_quickly(void **state)
{
    (void)state;
    expect_big(100000, "", "", 1, NULL);
    expect_big(100000, "", ",\"k0\":1", 0, "duplicate object key \"k0\"");
    expect_big(100000, "", ",\"\\u006b77777\":1", 0,
               "duplicate object key \"k77777\"");
    /* long shared prefixes make every comparison walk far */
    expect_big(20000, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", "",
               1, NULL);
}

static void expect_need_suffices(const char *p, size_t n)
{
    size_t cap = lss__json_tape_need(n);
    lss_json_tok *tok = test_malloc(cap * sizeof *tok);
    lss_json_doc d;
    lss_json_err err;
    for (unsigned e = 0; e <= LSS_JSON_EXPAND_ALL; e += LSS_JSON_EXPAND_ALL)
        assert_int_equal(lss__json_scan(&d, p, n, e, tok, cap, &err), LSS_OK);
    test_free(tok);
}

static char *repeat(const char *head, const char *unit, size_t times,
                    const char *tail, size_t *n)
{
    size_t lh = strlen(head), lu = strlen(unit), lt = strlen(tail);
    *n = lh + lu * times + lt;
    char *p = test_malloc(*n + 1);
    memcpy(p, head, lh);
    for (size_t i = 0; i < times; i++)
        memcpy(p + lh + i * lu, unit, lu);
    memcpy(p + lh + lu * times, tail, lt + 1);
    return p;
}

static void tape_need_should_suffice_for_dense_inputs(void **state)
{
    (void)state;
    size_t n;
    char *p;
    p = nested(512, "{\"\":", "0", "}", &n);
    expect_need_suffices(p, n);
    test_free(p);
    p = nested(512, "[", "", "]", &n);
    expect_need_suffices(p, n);
    test_free(p);
    p = repeat("[0", ",0", 5000, "]", &n);
    expect_need_suffices(p, n);
    test_free(p);
    p = repeat("[\"\"", ",\"\"", 5000, "]", &n);
    expect_need_suffices(p, n);
    test_free(p);
    p = repeat("[[]", ",{}", 5000, "]", &n);
    expect_need_suffices(p, n);
    test_free(p);
    p = repeat("{\"\":[0", ",0", 5000, "]}", &n);
    expect_need_suffices(p, n);
    test_free(p);
    p = big_object(3000, "", "", &n);
    expect_need_suffices(p, n);
    test_free(p);
    for (size_t i = 0; i < LSS_ARRAY_LEN(cases); i++)
        if (cases[i].ok)
            expect_need_suffices(cases[i].text, cases[i].len);
}

/* The bound is for texts that can still close; a malformed one that opens
 * more than it could close still gets its syntax error, not LSS_ENOSPACE
 * (found by fuzz-json: tests/fuzz/corpus/json/
 * repro-unclosed-arrays-exhaust-tape). */
static void tape_need_should_suffice_for_unclosed_inputs(void **state)
{
    (void)state;
    static const struct {
        const char *open;
        size_t times;
        const char *tail, *msg;
    } t[] = {
        {"[", 192, "['a'%", "invalid character '\\'' looking for beginning of value"},
        {"[", 500, "", "unexpected end of JSON input"},
        {"{\"\":", 500, "", "unexpected end of JSON input"},
        {"[{\"\":0,\"\":", 250, "", "unexpected end of JSON input"},
        {"[{\"\":0,\"\":", 300, "", "nesting depth exceeds 512"},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(t); i++) {
        size_t n;
        char *p = repeat("", t[i].open, t[i].times, t[i].tail, &n);
        scanned s;
        scan_into(&s, p, n, LSS_JSON_EXPAND_ALL);
        assert_int_equal(s.rc, LSS_EJSON);
        assert_string_equal(s.err.msg, t[i].msg);
        scanned_free(&s);
        test_free(p);
    }
}

static void scanner_should_report_small_storage_as_enospace(void **state)
{
    (void)state;
    static const char doc[] = "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}";
    lss_json_tok tok[32];
    lss_json_doc d;
    lss_json_err err;
    size_t used = 0;
    assert_int_equal(lss__json_scan(&d, doc, sizeof doc - 1,
                                    LSS_JSON_EXPAND_ALL, tok, 32, &err),
                     LSS_OK);
    used = d.ntok;
    assert_int_equal(used, 10);
    for (size_t cap = 0; cap < used; cap++) {
        assert_int_equal(lss__json_scan(&d, doc, sizeof doc - 1,
                                         LSS_JSON_EXPAND_ALL, tok, cap, &err),
                         LSS_ENOSPACE);
        assert_string_equal(err.msg, "token storage exhausted");
    }
    assert_int_equal(lss__json_scan(&d, NULL, 0, 0, tok, 4, &err), LSS_EJSON);
    assert_int_equal(lss__json_scan(NULL, doc, 1, 0, tok, 4, &err), LSS_EINVAL);
    assert_int_equal(lss__json_scan(&d, NULL, 5, 0, tok, 4, &err), LSS_EINVAL);
#if SIZE_MAX > UINT32_MAX
    assert_int_equal(lss__json_scan(&d, doc, (size_t)UINT32_MAX + 1, 0, tok, 4,
                                    &err),
                     LSS_ETOOBIG);
#endif
    assert_int_equal(lss__json_scan(&d, "[1]", 3, 0, tok, 1, NULL), LSS_OK);
}

/* ------------------------------------------------------------------------
 * (2) Accessors
 * ---------------------------------------------------------------------- */

static const char acc_doc[] =
    "{\"method\":\"x\",\"a\\u0062c\":[1,2,3],\"s\":\"plain\","
    "\"e\":\"tab\\there \\u00e9 \\ud83d\\ude00\",\"n\":null,\"t\":true,"
    "\"nested\":{\"k\":{\"deep\":-12}}}";

static void accessors_should_find_members_by_unescaped_name(void **state)
{
    (void)state;
    scanned s;
    scan_into(&s, acc_doc, sizeof acc_doc - 1, LSS_JSON_EXPAND_ALL);
    assert_int_equal(s.rc, LSS_OK);
    const lss_json_tok *root = lss__json_root(&s.d);
    const lss_json_tok *abc = lss__json_getz(&s.d, root, "abc");
    assert_int_equal(lss__json_type(abc), LSS_JSON_ARRAY);
    assert_int_equal(abc->count, 3);
    assert_null(lss__json_getz(&s.d, root, "ab"));
    assert_null(lss__json_getz(&s.d, root, "abcd"));
    assert_null(lss__json_getz(&s.d, root, "a\\u0062c"));
    assert_int_equal(lss__json_type(lss__json_getz(&s.d, root, "n")),
                     LSS_JSON_NULL);
    assert_int_equal(lss__json_type(lss__json_getz(&s.d, root, "t")),
                     LSS_JSON_TRUE);
    const lss_json_tok *deep = lss__json_getz(
        &s.d, lss__json_getz(&s.d, lss__json_getz(&s.d, root, "nested"), "k"),
        "deep");
    int64_t v = 0;
    assert_int_equal(lss__json_int64(&s.d, deep, &v), LSS_OK);
    assert_int_equal(v, -12);
    /* absent or wrong-typed parents read as absent */
    assert_null(lss__json_getz(&s.d, NULL, "x"));
    assert_null(lss__json_getz(&s.d, abc, "x"));
    assert_null(lss__json_at(&s.d, root, 0));
    assert_int_equal(lss__json_type(NULL), 0);
    scanned_free(&s);
}

static void accessors_should_iterate_in_document_order(void **state)
{
    (void)state;
    static const char *names[] = {"method", "abc", "s", "e", "n", "t", "nested"};
    scanned s;
    scan_into(&s, acc_doc, sizeof acc_doc - 1, 1);
    lss_json_iter it;
    const lss_json_tok *k, *v;
    size_t i = 0;
    lss__json_iter_init(&it, &s.d, lss__json_root(&s.d));
    while ((v = lss__json_iter_next(&it, &k))) {
        assert_true(i < LSS_ARRAY_LEN(names));
        assert_true(lss__json_str_equal(&s.d, k, names[i], strlen(names[i])));
        i++;
    }
    assert_int_equal(i, LSS_ARRAY_LEN(names));
    const lss_json_tok *abc = lss__json_getz(&s.d, lss__json_root(&s.d), "abc");
    assert_true(abc->flags & LSS_JSON_RAW); /* depth 2 > expand 1 */
    scanned_free(&s);
    scan_into(&s, acc_doc, sizeof acc_doc - 1, 2);
    abc = lss__json_getz(&s.d, lss__json_root(&s.d), "abc");
    for (size_t j = 0; j < 3; j++) {
        int64_t x;
        assert_int_equal(lss__json_int64(&s.d, lss__json_at(&s.d, abc, j), &x),
                         LSS_OK);
        assert_int_equal(x, (int64_t)j + 1);
    }
    assert_null(lss__json_at(&s.d, abc, 3));
    scanned_free(&s);
}

static void strings_should_be_zero_copy_without_escapes(void **state)
{
    (void)state;
    scanned s;
    scan_into(&s, acc_doc, sizeof acc_doc - 1, LSS_JSON_EXPAND_ALL);
    const lss_json_tok *root = lss__json_root(&s.d);
    lss_span out;
    char buf[64];
    assert_int_equal(lss__json_str(&s.d, lss__json_getz(&s.d, root, "s"), NULL,
                                   0, &out),
                     LSS_OK);
    assert_span_equal(out.p, out.n, "plain");
    assert_true(out.p > acc_doc && out.p < acc_doc + sizeof acc_doc);
    const lss_json_tok *e = lss__json_getz(&s.d, root, "e");
    assert_true(e->flags & LSS_JSON_ESCAPED);
    assert_int_equal(lss__json_str(&s.d, e, buf, 4, &out), LSS_ENOSPACE);
    assert_null(out.p);
    assert_int_equal(out.n, strlen("tab\there \xc3\xa9 \xf0\x9f\x98\x80"));
    assert_int_equal(lss__json_str(&s.d, e, buf, sizeof buf, &out), LSS_OK);
    assert_span_equal(out.p, out.n, "tab\there \xc3\xa9 \xf0\x9f\x98\x80");
    assert_ptr_equal(out.p, buf);
    assert_true(lss__json_str_equal(&s.d, e, out.p, out.n));
    assert_false(lss__json_str_equal(&s.d, e, out.p, out.n - 1));
    assert_int_equal(lss__json_str(&s.d, root, buf, sizeof buf, &out),
                     LSS_EINVAL);
    scanned_free(&s);
}

static void str_copy_should_have_snprintf_semantics(void **state)
{
    (void)state;
    static const char want[] = "tab\there \xc3\xa9 \xf0\x9f\x98\x80";
    size_t len = sizeof want - 1;
    scanned s;
    scan_into(&s, acc_doc, sizeof acc_doc - 1, LSS_JSON_EXPAND_ALL);
    const lss_json_tok *e = lss__json_getz(&s.d, lss__json_root(&s.d), "e");
    for (size_t cap = 0; cap <= len + 2; cap++) {
        char buf[64];
        size_t need = 0;
        memset(buf, 'Z', sizeof buf);
        int rc = lss__json_str_copy(&s.d, e, buf, cap, &need);
        assert_int_equal(need, len);
        assert_int_equal(rc, cap > len ? LSS_OK : LSS_ENOSPACE);
        for (size_t k = cap; k < sizeof buf; k++)
            assert_int_equal(buf[k], 'Z'); /* nothing past cap */
        if (rc == LSS_OK)
            assert_string_equal(buf, want);
    }
    size_t need;
    assert_int_equal(lss__json_str_copy(&s.d, e, NULL, 0, &need), LSS_ENOSPACE);
    assert_int_equal(need, len);
    scanned_free(&s);
}

static void unescape_should_decode_every_escape(void **state)
{
    (void)state;
    static const char esc[] = "\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9"
                              "\\u20ac\\uD834\\uDD1E\\u001f";
    static const char want[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac"
                               "\xf0\x9d\x84\x9e\x1f";
    char buf[64];
    size_t need;
    assert_int_equal(lss__json_unescape(esc, sizeof esc - 1, buf, sizeof buf,
                                        &need),
                     LSS_OK);
    assert_int_equal(need, sizeof want - 1);
    assert_memory_equal(buf, want, need);
    assert_int_equal(lss__json_unescape(esc, sizeof esc - 1, buf, 3, &need),
                     LSS_ENOSPACE);
    assert_int_equal(need, sizeof want - 1);
}

/* ------------------------------------------------------------------------
 * (d) Integer conversions
 * ---------------------------------------------------------------------- */

typedef struct numcase {
    const char *text;
    int rc;
    int64_t v;
} numcase;

static void numbers_should_convert_integer_literals_exactly(void **state)
{
    (void)state;
    static const numcase t[] = {
        {"0", LSS_OK, 0},
        {"-0", LSS_OK, 0},
        {"1", LSS_OK, 1},
        {"-1", LSS_OK, -1},
        {"42", LSS_OK, 42},
        {"1732233600123456789", LSS_OK, 1732233600123456789},
        {"9223372036854775807", LSS_OK, INT64_MAX},
        {"-9223372036854775808", LSS_OK, INT64_MIN},
        {"-9223372036854775807", LSS_OK, -INT64_MAX},
        {"9223372036854775808", LSS_ERANGE, 0},
        {"-9223372036854775809", LSS_ERANGE, 0},
        {"10000000000000000000", LSS_ERANGE, 0},
        {"18446744073709551616", LSS_ERANGE, 0},
        {"99999999999999999999999999", LSS_ERANGE, 0},
        {"1.0", LSS_EINVAL, 0},
        {"1e2", LSS_EINVAL, 0},
        {"-0.0", LSS_EINVAL, 0},
        {"01", LSS_EINVAL, 0},
        {"+1", LSS_EINVAL, 0},
        {"", LSS_EINVAL, 0},
        {"-", LSS_EINVAL, 0},
        {"1 ", LSS_EINVAL, 0},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(t); i++) {
        int64_t v = 7;
        int rc = lss__json_num_int64(t[i].text, strlen(t[i].text), &v);
        if (rc != t[i].rc || (rc == LSS_OK && v != t[i].v)) {
            print_error("'%s': rc %d v %lld\n", t[i].text, rc, (long long)v);
            fail();
        }
    }
}

static void numbers_should_truncate_toward_zero_and_clamp(void **state)
{
    (void)state;
    static const numcase t[] = {
        {"1.9", LSS_OK, 1},
        {"-0.5", LSS_OK, 0},
        {"-1.5", LSS_OK, -1},
        {"1e3", LSS_OK, 1000},
        {"9223372036854775808", LSS_OK, INT64_MAX},
        {"-1e400", LSS_OK, INT64_MIN},
        {"1e-400", LSS_OK, 0},
        {"123.456e2", LSS_OK, 12345},
        {"0.00001e5", LSS_OK, 1},
        {"1e999999999999999999", LSS_OK, INT64_MAX},
        {"-1e999999999999999999", LSS_OK, INT64_MIN},
        {"1e-999999999999999999", LSS_OK, 0},
        {"1e99999999999999999999999999999999999999", LSS_OK, INT64_MAX},
        {"0e999999999999999999", LSS_OK, 0},
        {"0.000e99999", LSS_OK, 0},
        {"0", LSS_OK, 0},
        {"-0", LSS_OK, 0},
        {"0.5", LSS_OK, 0},
        {"0.99999999999999999999", LSS_OK, 0},
        {"-0.99999999999999999999", LSS_OK, 0},
        {"1e0", LSS_OK, 1},
        {"10e-1", LSS_OK, 1},
        {"19e-1", LSS_OK, 1},
        {"-19e-1", LSS_OK, -1},
        {"12.7e-1", LSS_OK, 1},
        {"100e-2", LSS_OK, 1},
        {"99e-2", LSS_OK, 0},
        {"1E+2", LSS_OK, 100},
        {"123456789.987654321e-4", LSS_OK, 12345},
        {"1234567890123456789012e-3", LSS_OK, 1234567890123456789},
        {"1e18", LSS_OK, 1000000000000000000},
        {"1e19", LSS_OK, INT64_MAX},
        {"-1e19", LSS_OK, INT64_MIN},
        {"9.2e18", LSS_OK, 9200000000000000000},
        {"9.999e18", LSS_OK, INT64_MAX},
        {"9223372036854775807", LSS_OK, INT64_MAX},
        {"9223372036854775807.999", LSS_OK, INT64_MAX},
        {"9223372036854775806.999", LSS_OK, INT64_MAX - 1},
        {"-9223372036854775808", LSS_OK, INT64_MIN},
        {"-9223372036854775808.9", LSS_OK, INT64_MIN},
        {"-9223372036854775809", LSS_OK, INT64_MIN},
        {"-9223372036854775807.5", LSS_OK, -INT64_MAX},
        {"92233720368547758070e-1", LSS_OK, INT64_MAX},
        {"0.0000000000000000000000000000001e31", LSS_OK, 1},
        {"1732233600123456789", LSS_OK, 1732233600123456789},
        {"1.7322336001234567899e18", LSS_OK, 1732233600123456789},
        {"1.5", LSS_OK, 1},
        {"abc", LSS_EINVAL, 0},
        {"1.", LSS_EINVAL, 0},
        {".5", LSS_EINVAL, 0},
        {"1e", LSS_EINVAL, 0},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(t); i++) {
        int64_t v = 7;
        int rc = lss__json_num_trunc(t[i].text, strlen(t[i].text), &v);
        if (rc != t[i].rc || (rc == LSS_OK && v != t[i].v)) {
            print_error("'%s': rc %d v %lld\n", t[i].text, rc, (long long)v);
            fail();
        }
    }
}

static void number_tokens_should_convert_and_others_should_not(void **state)
{
    (void)state;
    static const char doc[] = "[-1.5,\"3\",null,1e3,7]";
    scanned s;
    int64_t v;
    scan_into(&s, doc, sizeof doc - 1, LSS_JSON_EXPAND_ALL);
    const lss_json_tok *r = lss__json_root(&s.d);
    assert_int_equal(lss__json_to_int64(&s.d, lss__json_at(&s.d, r, 0), &v),
                     LSS_OK);
    assert_int_equal(v, -1);
    assert_int_equal(lss__json_int64(&s.d, lss__json_at(&s.d, r, 0), &v),
                     LSS_EINVAL);
    assert_int_equal(lss__json_to_int64(&s.d, lss__json_at(&s.d, r, 1), &v),
                     LSS_EINVAL);
    assert_int_equal(lss__json_to_int64(&s.d, lss__json_at(&s.d, r, 2), &v),
                     LSS_EINVAL);
    assert_int_equal(lss__json_to_int64(&s.d, lss__json_at(&s.d, r, 3), &v),
                     LSS_OK);
    assert_int_equal(v, 1000);
    assert_true(lss__json_at(&s.d, r, 4)->flags & LSS_JSON_INTEGER);
    assert_false(lss__json_at(&s.d, r, 3)->flags & LSS_JSON_INTEGER);
    assert_int_equal(lss__json_to_int64(&s.d, NULL, &v), LSS_EINVAL);
    scanned_free(&s);
}

/* ------------------------------------------------------------------------
 * (e) Equality
 * ---------------------------------------------------------------------- */

static int json_eq(const char *a, size_t na, const char *b, size_t nb)
{
    size_t cap = lss__json_equal_need(na, nb);
    lss_json_tok *scratch = test_malloc(cap * sizeof *scratch);
    int rc = lss__json_equal(a, na, b, nb, scratch, cap);
    test_free(scratch);
    return rc;
}

typedef struct eqcase {
    const char *a, *b;
    int eq;
} eqcase;

static void equality_should_follow_the_table(void **state)
{
    (void)state;
    static const eqcase t[] = {
        {"1", "1", 1}, {"1", "1.0", 1}, {"1", "1e0", 1}, {"1", "10e-1", 1},
        {"1", "0.1e1", 1}, {"-0", "0", 1}, {"0", "0e99", 1},
        {"0.0", "-0e-5", 1}, {"1", "2", 0}, {"1", "-1", 0}, {"100", "1e2", 1},
        {"100", "1e3", 0}, {"123.456", "123456e-3", 1}, {"1.5", "15e-1", 1},
        {"1.5", "1.50", 1}, {"1.5", "1.05", 0}, {"-2.5", "-25E-1", 1},
        {"-2.5", "2.5", 0}, {"0.001", "1e-3", 1}, {"0.001", "1e-4", 0},
        {"12345678901234567890123", "1.2345678901234567890123e22", 1},
        {"9007199254740993", "9007199254740992", 0},
        {"1e999999999999999999999", "10e999999999999999999998", 1},
        {"1e999999999999999999999", "1e999999999999999999998", 0},
        {"1e-999999999999999999999", "0.1e-999999999999999999998", 1},
        {"1e1000000000000000000", "10e999999999999999999", 1},
        {"1e1000000000000000000", "1e999999999999999999", 0},
        {"1e1000000000000000000", "1e-1000000000000000000", 0},
        {"1e99999999999999999", "1e999999999999999999999", 0},
        {"1e00000000000000000000000000005", "100000e0", 1},
        {"\"a\"", "\"\\u0061\"", 1}, {"\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"", 1},
        {"\"a\"", "\"b\"", 0}, {"\"a\"", "\"a \"", 0}, {"\"\\/\"", "\"/\"", 1},
        {"\"\\n\"", "\"\\u000a\"", 1}, {"\"\"", "\"\"", 1}, {"\"\"", "\" \"", 0},
        {"\"\xc3\xa9\"", "\"\\u00E9\"", 1}, {"\"e\xcc\x81\"", "\"\xc3\xa9\"", 0},
        {"true", "true", 1}, {"true", "false", 0}, {"null", "null", 1},
        {"null", "false", 0}, {"0", "false", 0}, {"\"1\"", "1", 0},
        {"[]", "{}", 0}, {"[]", "[]", 1}, {"{}", "{}", 1}, {"{}", " { } ", 1},
        {"[1,2]", "[1,2]", 1}, {"[1,2]", "[2,1]", 0}, {"[1,2]", "[1,2,3]", 0},
        {"[[1],[2]]", "[[1],[2.0]]", 1}, {"[[1],[2]]", "[[1,2]]", 0},
        {"{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}", 1},
        {"{\"a\":1}", "{\"a\":1,\"b\":2}", 0},
        {"{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}", 0},
        {"{\"a\":1,\"b\":2}", "{\"a\":2,\"b\":1}", 0},
        {"{\"a\":1}", "{\"\\u0061\":1.0}", 1}, {"{\"a\":[]}", "{\"a\":{}}", 0},
        {"{\"a\":{\"x\":[1,{\"y\":null}]},\"b\":\"s\"}",
         "{ \"b\" : \"\\u0073\" , \"a\" : { \"x\" : [ 1e0 , { \"y\" : null } ] } }", 1},
        {"{\"a\":{\"x\":[1,{\"y\":null}]},\"b\":\"s\"}",
         "{\"b\":\"s\",\"a\":{\"x\":[1,{\"y\":false}]}}", 0},
        {"{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,"
         "\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14}",
         "{\"n\":14,\"m\":13,\"l\":12,\"k\":11,\"j\":10,\"i\":9,\"h\":8,\"g\":7,"
         "\"f\":6,\"e\":5,\"d\":4,\"c\":3,\"b\":2,\"\\u0061\":1}", 1},
        {"{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,"
         "\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14}",
         "{\"n\":14,\"m\":13,\"l\":12,\"k\":11,\"j\":10,\"i\":9,\"h\":8,\"g\":7,"
         "\"f\":6,\"e\":5,\"d\":4,\"c\":3,\"b\":2,\"o\":1}", 0},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(t); i++) {
        int ab = json_eq(t[i].a, strlen(t[i].a), t[i].b, strlen(t[i].b));
        int ba = json_eq(t[i].b, strlen(t[i].b), t[i].a, strlen(t[i].a));
        if (ab != t[i].eq || ba != t[i].eq) {
            print_error("%s vs %s: %d/%d, want %d\n", t[i].a, t[i].b, ab, ba,
                        t[i].eq);
            fail();
        }
    }
}

static void equality_should_reject_malformed_or_undersized_input(void **state)
{
    (void)state;
    lss_json_tok scratch[8];
    assert_int_equal(json_eq("[1,]", 4, "[1]", 3), LSS_EJSON);
    assert_int_equal(json_eq("[1]", 3, "{\"a\":1,\"a\":1}", 13), LSS_EJSON);
    assert_int_equal(lss__json_equal("[1,2,3]", 7, "[1,2,3]", 7, scratch, 4),
                     LSS_ENOSPACE);
    assert_int_equal(lss__json_equal("[1]", 3, "[1]", 3, scratch, 8), 1);
}

static void equality_should_match_big_objects_in_any_order(void **state)
{
    (void)state;
    size_t keys = 20000, n = 0, cap = keys * 24 + 16;
    char *fwd = big_object(keys, "", "", &n);
    char *rev = test_malloc(cap);
    size_t len = 0;
    rev[len++] = '{';
    for (size_t i = keys; i-- > 0;)
        len += (size_t)snprintf(rev + len, cap - len, "%s\"k%zu\":%zu.0",
                                i + 1 < keys ? "," : "", i, i);
    rev[len++] = '}';
    double t0 = now_seconds();
    assert_int_equal(json_eq(fwd, n, rev, len), 1);
    assert_true(now_seconds() - t0 < 5.0);
    memcpy(rev + len - 4, "1.5", 3); /* last value 0.0 -> 1.5 */
    assert_int_equal(json_eq(fwd, n, rev, len), 0);
    test_free(fwd);
    test_free(rev);
}

/* ------------------------------------------------------------------------
 * (b) Writer, with cJSON as the oracle
 * ---------------------------------------------------------------------- */

/* Parse out[0..n) with cJSON; the caller deletes. */
static cJSON *cjson_parse(const char *p, size_t n)
{
    cJSON *j = cjson_try(p, n);
    if (!j) {
        print_error("cJSON cannot parse '%.*s'\n", (int)n, p);
        fail();
    }
    return j;
}

static void writer_should_escape_exactly_per_protocol(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } t[] = {
        {"", 0, "\"\""},
        {"\"", 1, "\"\\\"\""},
        {"\\", 1, "\"\\\\\""},
        {"/", 1, "\"/\""},
        {"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
        {"\0", 1, "\"\\u0000\""},
        {"\x01\x1f\x0b", 3, "\"\\u0001\\u001f\\u000b\""},
        {"\x7f", 1, "\"\x7f\""},
        {"<>&", 3, "\"<>&\""},
        {"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", 9,
         "\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\""},
        {"\xe2\x80\xa8", 3, "\"\xe2\x80\xa8\""},
        {"a\"b\\c/d\ne", 9, "\"a\\\"b\\\\c/d\\ne\""},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(t); i++) {
        char buf[64];
        size_t need;
        lss_json_writer w;
        lss__jw_init(&w, buf, sizeof buf);
        lss__jw_str(&w, t[i].in, t[i].n);
        assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
        assert_span_equal(buf, need, t[i].out);
    }
}

static void writer_strings_should_parse_back_with_cjson(void **state)
{
    (void)state;
    char in[160], buf[1024];
    size_t n = 0;
    for (unsigned c = 1; c < 0x80; c++)
        in[n++] = (char)c;
    memcpy(in + n, "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 13);
    n += 13;
    in[n] = '\0';
    lss_json_writer w;
    size_t need;
    lss__jw_init(&w, buf, sizeof buf);
    lss__jw_str(&w, in, n);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    cJSON *j = cjson_parse(buf, need);
    assert_true(cJSON_IsString(j));
    assert_string_equal(j->valuestring, in);
    cJSON_Delete(j);
    /* and our own scanner agrees */
    scanned s;
    char back[256];
    scan_into(&s, buf, need, 0);
    assert_int_equal(s.rc, LSS_OK);
    assert_int_equal(lss__json_str_copy(&s.d, lss__json_root(&s.d), back,
                                        sizeof back, NULL),
                     LSS_OK);
    assert_string_equal(back, in);
    scanned_free(&s);
}

static void writer_should_print_int64_in_plain_decimal(void **state)
{
    (void)state;
    static const struct {
        int64_t v;
        const char *s;
    } t[] = {
        {0, "0"},
        {1, "1"},
        {-1, "-1"},
        {9, "9"},
        {10, "10"},
        {-10, "-10"},
        {1732233600123456789, "1732233600123456789"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
        {INT64_MIN + 1, "-9223372036854775807"},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(t); i++) {
        char buf[32];
        size_t need;
        int64_t back;
        lss_json_writer w;
        lss__jw_init(&w, buf, sizeof buf);
        lss__jw_int(&w, t[i].v);
        assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
        assert_span_equal(buf, need, t[i].s); /* cJSON has only doubles */
        cJSON *j = cjson_parse(buf, need);
        assert_true(cJSON_IsNumber(j));
        cJSON_Delete(j);
        assert_int_equal(lss__json_num_int64(buf, need, &back), LSS_OK);
        assert_true(back == t[i].v);
    }
}

static void writer_literals_should_parse_back_with_cjson(void **state)
{
    (void)state;
    char buf[32];
    size_t need;
    lss_json_writer w;
    lss__jw_init(&w, buf, sizeof buf);
    lss__jw_char(&w, '[');
    lss__jw_null(&w);
    lss__jw_char(&w, ',');
    lss__jw_bool(&w, 1);
    lss__jw_char(&w, ',');
    lss__jw_bool(&w, 0);
    lss__jw_char(&w, ']');
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    assert_span_equal(buf, need, "[null,true,false]");
    cJSON *j = cjson_parse(buf, need);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(j, 0)));
    assert_true(cJSON_IsTrue(cJSON_GetArrayItem(j, 1)));
    assert_true(cJSON_IsFalse(cJSON_GetArrayItem(j, 2)));
    cJSON_Delete(j);
}

static const char w1_request[] =
    "[\"stream.write\",\"test-stream-42\",{\"type\":\"TestEvent\",\"data\":{"
    "\"counter\":1732233600123456789,\"payload\":\"test data for profiling "
    "with some content to make it realistic\",\"nested\":{\"field1\":"
    "\"value1\",\"field2\":42,\"field3\":true}},\"metadata\":{"
    "\"correlationStreamName\":\"test-correlation\",\"source\":"
    "\"load-test\"}}]";

/* A stream.get row: [id, type, position, globalPosition, data, metadata,
 * time], data and metadata copied as stored. */
static void write_row(lss_json_writer *w, lss_span data, lss_span meta)
{
    lss__jw_char(w, '[');
    lss__jw_strz(w, "0190f0e2-7c3a-7d4e-8f00-123456789abc");
    lss__jw_char(w, ',');
    lss__jw_strz(w, "TestEvent");
    lss__jw_char(w, ',');
    lss__jw_int(w, 4);
    lss__jw_char(w, ',');
    lss__jw_int(w, 123);
    lss__jw_char(w, ',');
    lss__jw_raw(w, data.p, data.n);
    lss__jw_char(w, ',');
    lss__jw_raw(w, meta.p, meta.n);
    lss__jw_char(w, ',');
    lss__jw_strz(w, "2026-03-01T12:00:00.123456Z");
    lss__jw_char(w, ']');
}

static void writer_should_report_needed_size_and_never_overrun(void **state)
{
    (void)state;
    static const char data[] = "{\"a\":\"\\n\"}";
    lss_span d = {data, sizeof data - 1}, m = {"null", 4};
    char full[256];
    size_t need;
    lss_json_writer w;
    lss__jw_init(&w, full, sizeof full);
    write_row(&w, d, m);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    for (size_t cap = 0; cap <= need + 1; cap++) {
        char buf[256];
        size_t got;
        memset(buf, 'Z', sizeof buf);
        lss__jw_init(&w, buf, cap);
        write_row(&w, d, m);
        assert_int_equal(lss__jw_finish(&w, &got),
                         cap >= need ? LSS_OK : LSS_ENOSPACE);
        assert_int_equal(got, need);
        for (size_t k = cap; k < sizeof buf; k++)
            assert_int_equal(buf[k], 'Z');
        assert_memory_equal(buf, full, cap < need ? cap : need);
    }
    lss__jw_init(&w, NULL, 100);
    lss__jw_int(&w, -5);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_ENOSPACE);
    assert_int_equal(need, 2);
}

static void writer_should_build_responses_cjson_reads_back(void **state)
{
    (void)state;
    char buf[512];
    size_t need;
    lss_json_writer w;
    lss__jw_init(&w, buf, sizeof buf);
    lss__jw_raw(&w, "{\"globalPosition\":", 18);
    lss__jw_int(&w, 123);
    lss__jw_raw(&w, ",\"position\":", 12);
    lss__jw_int(&w, 4);
    lss__jw_char(&w, '}');
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    assert_span_equal(buf, need, "{\"globalPosition\":123,\"position\":4}");

    lss_span data = {"{\"x\": [1, 2]}", 13}, meta = {"null", 4};
    lss__jw_init(&w, buf, sizeof buf);
    write_row(&w, data, meta);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    cJSON *j = cjson_parse(buf, need);
    assert_int_equal(cJSON_GetArraySize(j), 7);
    assert_string_equal(cJSON_GetArrayItem(j, 1)->valuestring, "TestEvent");
    assert_int_equal(cJSON_GetArrayItem(j, 2)->valueint, 4);
    assert_int_equal(cJSON_GetArrayItem(j, 3)->valueint, 123);
    cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(j, 4), "x");
    assert_int_equal(cJSON_GetArraySize(x), 2);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(j, 5)));
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------------
 * (c) Compaction
 * ---------------------------------------------------------------------- */

/* No space, tab, CR or LF outside strings. */
static int has_insignificant_ws(const char *p, size_t n)
{
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (in_str && p[i] == '\\')
            i++;
        else if (p[i] == '"')
            in_str = !in_str;
        else if (!in_str && strchr(" \t\r\n", p[i]) && p[i])
            return 1;
    }
    return 0;
}

/* Compact p, then check the result against cJSON and our own equality. */
static void expect_compacts(const char *p, size_t n, const char *want)
{
    size_t cap = n + 1, need;
    char *out = test_malloc(cap);
    lss_json_writer w;
    lss__jw_init(&w, out, cap);
    lss__json_compact(&w, p, n);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    if (want)
        assert_span_equal(out, need, want);
    assert_false(has_insignificant_ws(out, need));
    cJSON *a = cjson_parse(p, n), *b = cjson_parse(out, need);
    if (!cJSON_Compare(a, b, 1)) {
        /* cJSON_Compare fails on numbers beyond double (inf != inf); the
         * printed trees, order included, must still match. */
        char *pa = cJSON_PrintUnformatted(a), *pb = cJSON_PrintUnformatted(b);
        assert_string_equal(pa, pb);
        cJSON_free(pa);
        cJSON_free(pb);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    assert_int_equal(json_eq(p, n, out, need), 1);
    test_free(out);
}

static void compact_should_drop_only_insignificant_whitespace(void **state)
{
    (void)state;
    static const char *t[][2] = {
        {" { \"a\" : [ 1 , 2 ] ,\n \"b\\\" c\" : \" x y \" } ",
         "{\"a\":[1,2],\"b\\\" c\":\" x y \"}"},
        {"[ \"a\\\\\" , 1 ]", "[\"a\\\\\",1]"},
        {"{\n\t\"n\": 1.0E+2,\r\n\t\"e\": \"\\u00e9\\n\"\n}",
         "{\"n\":1.0E+2,\"e\":\"\\u00e9\\n\"}"},
        {"[ ]", "[]"},
        {"\"  \"", "\"  \""},
        {" 12 ", "12"},
        {"{ \"z\" : 1 , \"a\" : 2 }", "{\"z\":1,\"a\":2}"},
        {"[true , false , null]", "[true,false,null]"},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(t); i++)
        expect_compacts(t[i][0], strlen(t[i][0]), t[i][1]);
    expect_compacts(w1_request, sizeof w1_request - 1, w1_request);
}

static void compact_should_report_enospace_like_the_writer(void **state)
{
    (void)state;
    static const char in[] = "{ \"a\" : [ 1 , 2 ] }";
    char buf[8];
    size_t need;
    lss_json_writer w;
    memset(buf, 'Z', sizeof buf);
    lss__jw_init(&w, buf, 5);
    lss__json_compact(&w, in, sizeof in - 1);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_ENOSPACE);
    assert_int_equal(need, strlen("{\"a\":[1,2]}"));
    assert_memory_equal(buf, "{\"a\":ZZZ", 8);
}

/* ------------------------------------------------------------------------
 * (g) The RPC path allocates nothing
 * ---------------------------------------------------------------------- */

static void w1_request_should_scan_and_answer_without_allocating(void **state)
{
    (void)state;
    counting_alloc ca;
    counting_alloc_init(&ca);
    /* everything sized up front, on the stack */
    lss_json_tok tok[256];
    lss_json_tok scratch[1024];
    char out[1024], name[64];
    lss_json_doc d;
    lss_json_err err;
    lss_json_writer w;
    lss_span method, stream, type, data, meta;
    int64_t ev = -2;
    size_t need;
    assert_true(LSS_ARRAY_LEN(tok) >= lss__json_tape_need(sizeof w1_request));

    assert_int_equal(lss__json_scan(&d, w1_request, sizeof w1_request - 1, 3,
                                    tok, LSS_ARRAY_LEN(tok), &err),
                     LSS_OK);
    const lss_json_tok *root = lss__json_root(&d);
    assert_int_equal(lss__json_type(root), LSS_JSON_ARRAY);
    assert_int_equal(lss__json_str(&d, lss__json_at(&d, root, 0), name,
                                   sizeof name, &method),
                     LSS_OK);
    assert_span_equal(method.p, method.n, "stream.write");
    assert_int_equal(lss__json_str(&d, lss__json_at(&d, root, 1), name,
                                   sizeof name, &stream),
                     LSS_OK);
    assert_span_equal(stream.p, stream.n, "test-stream-42");
    const lss_json_tok *msg = lss__json_at(&d, root, 2);
    assert_int_equal(lss__json_str(&d, lss__json_getz(&d, msg, "type"), name,
                                   sizeof name, &type),
                     LSS_OK);
    assert_span_equal(type.p, type.n, "TestEvent");
    const lss_json_tok *dt = lss__json_getz(&d, msg, "data");
    const lss_json_tok *mt = lss__json_getz(&d, msg, "metadata");
    assert_int_equal(lss__json_type(dt), LSS_JSON_OBJECT);
    assert_int_equal(lss__json_type(mt), LSS_JSON_OBJECT);
    data = lss__json_span(&d, dt);
    meta = lss__json_span(&d, mt);
    assert_true(lss__json_str_equal(
        &d, lss__json_getz(&d, mt, "correlationStreamName"),
        "test-correlation", 16));
    const lss_json_tok *opts = lss__json_at(&d, root, 3);
    assert_null(opts);
    assert_null(lss__json_getz(&d, opts, "id"));
    assert_int_equal(lss__json_to_int64(&d, lss__json_getz(&d, opts,
                                                            "expectedVersion"),
                                        &ev),
                     LSS_EINVAL);
    /* the nested payload stays one raw token below depth 3 */
    const lss_json_tok *nest = lss__json_getz(&d, dt, "nested");
    assert_true(nest->flags & LSS_JSON_RAW);

    /* idempotency check against a stored copy, then the response */
    assert_int_equal(lss__json_equal(data.p, data.n, data.p, data.n, scratch,
                                     LSS_ARRAY_LEN(scratch)),
                     1);
    lss__jw_init(&w, out, sizeof out);
    lss__jw_raw(&w, "{\"globalPosition\":", 18);
    lss__jw_int(&w, 123);
    lss__jw_raw(&w, ",\"position\":", 12);
    lss__jw_int(&w, 4);
    lss__jw_char(&w, '}');
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    assert_span_equal(out, need, "{\"globalPosition\":123,\"position\":4}");
    lss__jw_init(&w, out, sizeof out);
    write_row(&w, data, meta);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    lss__jw_init(&w, out, sizeof out);
    lss__json_compact(&w, data.p, data.n);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);

    assert_int_equal(counting_alloc_calls(&ca), 0);
    assert_int_equal(ca.calls, 0);
    assert_int_equal(ca.live, 0);
}

/* ------------------------------------------------------------------------
 * (h) Random documents and mutations
 * ---------------------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Du;
}

static size_t rnd_below(rng *r, size_t n)
{
    return (size_t)(rnd(r) % n);
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

static const char *const string_pool[] = {
    "a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f",
    "\xc3\xa9", "\xe6\x97\xa5", "\xef\xbf\xbf", "\xf0\x9f\x98\x80", "0",
};

static cJSON *random_tree(rng *r, int depth)
{
    size_t kind = rnd_below(r, depth > 3 ? 5 : 7);
    switch (kind) {
    case 0: return cJSON_CreateNull();
    case 1: return cJSON_CreateBool(rnd_below(r, 2) != 0);
    case 2: return cJSON_CreateNumber((double)((long)rnd_below(r, 2001) - 1000));
    case 3:
    case 4: {
        char s[64] = "";
        size_t len = rnd_below(r, 6);
        for (size_t i = 0; i < len; i++)
            strcat(s, string_pool[rnd_below(r, LSS_ARRAY_LEN(string_pool))]);
        return cJSON_CreateString(s);
    }
    case 5: {
        cJSON *a = cJSON_CreateArray();
        size_t m = rnd_below(r, 5);
        for (size_t i = 0; i < m; i++)
            cJSON_AddItemToArray(a, random_tree(r, depth + 1));
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        size_t m = rnd_below(r, 6);
        for (size_t i = 0; i < m; i++) {
            char key[32];
            snprintf(key, sizeof key, "k%zu%s", i,
                     string_pool[rnd_below(r, LSS_ARRAY_LEN(string_pool))]);
            cJSON_AddItemToObject(o, key, random_tree(r, depth + 1));
        }
        return o;
    }
    }
}

/* How a tree is spelled: member order, escaping, number forms, spaces. */
typedef struct style {
    int reverse, escape_all, numform, spaces;
    rng *r;
} style;

static void put_ws(lss_json_writer *w, const style *st)
{
    static const char ws[] = " \t\r\n";
    if (st->spaces && rnd_below(st->r, 3) == 0)
        lss__jw_char(w, ws[rnd_below(st->r, 4)]);
}

/* Every character as \uXXXX (surrogate pairs above U+FFFF). */
static void put_escaped_all(lss_json_writer *w, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    char e[16];
    lss__jw_char(w, '"');
    while (*u) {
        unsigned cp = *u, len = 1;
        if (cp >= 0xf0) {
            cp = (u[0] & 7u) << 18 | (u[1] & 63u) << 12 | (u[2] & 63u) << 6 | (u[3] & 63u);
            len = 4;
        } else if (cp >= 0xe0) {
            cp = (u[0] & 15u) << 12 | (u[1] & 63u) << 6 | (u[2] & 63u);
            len = 3;
        } else if (cp >= 0xc0) {
            cp = (u[0] & 31u) << 6 | (u[1] & 63u);
            len = 2;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            snprintf(e, sizeof e, "\\u%04X\\u%04x", 0xd800 + (cp >> 10),
                     0xdc00 + (cp & 0x3ff));
        } else {
            snprintf(e, sizeof e, "\\u%04x", cp);
        }
        lss__jw_raw(w, e, strlen(e));
        u += len;
    }
    lss__jw_char(w, '"');
}

static void put_string(lss_json_writer *w, const char *s, const style *st)
{
    if (st->escape_all)
        put_escaped_all(w, s);
    else
        lss__jw_strz(w, s);
}

/* The same integer in one of several exact spellings. */
static void put_number(lss_json_writer *w, long k, int form)
{
    char b[48];
    const char *sign = k < 0 ? "-" : "";
    unsigned long m = (unsigned long)(k < 0 ? -k : k);
    switch (form) {
    case 1: snprintf(b, sizeof b, "%s%lu.0", sign, m); break;
    case 2: snprintf(b, sizeof b, "%s%lu0e-1", sign, m); break;
    case 3: snprintf(b, sizeof b, "%s%luE+0", sign, m); break;
    case 4: snprintf(b, sizeof b, "%s0.%lu000e%zu", sign, m,
                     m ? (size_t)snprintf(NULL, 0, "%lu", m) : (size_t)1);
        break;
    default: snprintf(b, sizeof b, "%s%lu", sign, m);
    }
    lss__jw_raw(w, b, strlen(b));
}

static void serialize(lss_json_writer *w, const cJSON *v, const style *st)
{
    put_ws(w, st);
    if (cJSON_IsNull(v)) {
        lss__jw_null(w);
    } else if (cJSON_IsBool(v)) {
        lss__jw_bool(w, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        put_number(w, (long)v->valuedouble, st->numform);
    } else if (cJSON_IsString(v)) {
        put_string(w, v->valuestring, st);
    } else {
        const cJSON *kids[16];
        size_t m = 0;
        int obj = cJSON_IsObject(v);
        for (const cJSON *c = v->child; c && m < 16; c = c->next)
            kids[m++] = c;
        lss__jw_char(w, obj ? '{' : '[');
        for (size_t i = 0; i < m; i++) {
            const cJSON *c = kids[obj && st->reverse ? m - 1 - i : i];
            if (i)
                lss__jw_char(w, ',');
            if (obj) {
                put_ws(w, st);
                put_string(w, c->string, st);
                put_ws(w, st);
                lss__jw_char(w, ':');
            }
            serialize(w, c, st);
            put_ws(w, st);
        }
        lss__jw_char(w, obj ? '}' : ']');
    }
    put_ws(w, st);
}

static size_t spell(const cJSON *tree, style *st, char *buf, size_t cap)
{
    lss_json_writer w;
    size_t need;
    lss__jw_init(&w, buf, cap);
    serialize(&w, tree, st);
    assert_int_equal(lss__jw_finish(&w, &need), LSS_OK);
    return need;
}

/* Change one leaf so that the tree is no longer equal; 0 if it has none. */
static int perturb(cJSON *v)
{
    if (cJSON_IsNumber(v)) {
        cJSON_SetNumberValue(v, v->valuedouble + 1);
        return 1;
    }
    if (cJSON_IsString(v)) {
        char s[80];
        snprintf(s, sizeof s, "%s!", v->valuestring);
        return cJSON_SetValuestring(v, s) != NULL;
    }
    if (cJSON_IsBool(v)) {
        v->type = cJSON_IsTrue(v) ? cJSON_False : cJSON_True;
        return 1;
    }
    for (cJSON *c = v->child; c; c = c->next)
        if (perturb(c))
            return 1;
    return 0;
}

static void random_spellings_should_be_equal_and_perturbations_not(void **state)
{
    (void)state;
    rng r = {0x9e3779b97f4a7c15u};
    long iters = env_long("LSS_TEST_RANDOM_ITERS", 400);
    char *a = test_malloc(65536), *b = test_malloc(65536);
    for (long it = 0; it < iters; it++) {
        cJSON *tree = random_tree(&r, 0);
        style sa = {0, 0, 0, 0, &r};
        style sb = {1, (int)rnd_below(&r, 2), (int)rnd_below(&r, 5), 1, &r};
        size_t na = spell(tree, &sa, a, 65536);
        size_t nb = spell(tree, &sb, b, 65536);
        /* the plain spelling is what cJSON reads back */
        cJSON *back = cjson_parse(a, na);
        assert_true(cJSON_Compare(tree, back, 1));
        cJSON_Delete(back);
        if (json_eq(a, na, b, nb) != 1) {
            print_error("not equal:\n%.*s\n%.*s\n", (int)na, a, (int)nb, b);
            fail();
        }
        expect_compacts(b, nb, NULL);
        if (perturb(tree)) {
            nb = spell(tree, &sb, b, 65536);
            assert_int_equal(json_eq(a, na, b, nb), 0);
        }
        cJSON_Delete(tree);
    }
    test_free(a);
    test_free(b);
}

static size_t mutate(rng *r, char *p, size_t n, size_t cap)
{
    static const char interesting[] = "{}[]\":,\\0123456789eE+-.tfnu \t\n\f\x7f";
    size_t edits = 1 + rnd_below(r, 3);
    for (size_t e = 0; e < edits; e++) {
        size_t at = n ? rnd_below(r, n) : 0;
        char c = rnd_below(r, 2) ? interesting[rnd_below(r, sizeof interesting - 1)]
                                 : (char)rnd(r);
        switch (rnd_below(r, 4)) {
        case 0:
            if (n)
                p[at] = c;
            break;
        case 1:
            if (n) {
                memmove(p + at, p + at + 1, n - at - 1);
                n--;
            }
            break;
        case 2:
            if (n + 1 < cap) {
                memmove(p + at + 1, p + at, n - at);
                p[at] = c;
                n++;
            }
            break;
        default:
            n = at;
        }
    }
    return n;
}

static void expect_consistent(const char *p, size_t n, long *accepted)
{
    lss_json_err e_all, e_raw;
    int rc_all = scan_rc(p, n, LSS_JSON_EXPAND_ALL, &e_all);
    int rc_raw = scan_rc(p, n, 0, &e_raw);
    assert_int_equal(rc_all, rc_raw);
    if (rc_all != LSS_OK) {
        assert_int_equal(rc_all, LSS_EJSON);
        assert_string_equal(e_all.msg, e_raw.msg);
        assert_true(e_all.off <= n);
        return;
    }
    (*accepted)++;
    expect_cjson_accepts(p, n);
    expect_compacts(p, n, NULL);
}

static void mutated_documents_should_never_crash_and_agree_with_cjson(void **state)
{
    (void)state;
    rng r = {0x243f6a8885a308d3u};
    long iters = env_long("LSS_TEST_FUZZ_ITERS", 6000), accepted = 0;
    size_t cap = 8192;
    char *seed = test_malloc(cap), *p = test_malloc(cap);
    for (long it = 0; it < iters; it++) {
        size_t n;
        if (it % 3 == 0) {
            cJSON *tree = random_tree(&r, 0);
            style st = {0, (int)rnd_below(&r, 2), (int)rnd_below(&r, 5), 1, &r};
            n = spell(tree, &st, seed, cap);
            cJSON_Delete(tree);
        } else if (it % 3 == 1) {
            n = sizeof w1_request - 1;
            memcpy(seed, w1_request, n);
        } else {
            const jcase *c = &cases[rnd_below(&r, LSS_ARRAY_LEN(cases))];
            n = c->len;
            memcpy(seed, c->text, n);
        }
        memcpy(p, seed, n);
        n = mutate(&r, p, n, cap);
        expect_consistent(p, n, &accepted);
    }
    /* the mutations must leave both outcomes well represented */
    assert_true(accepted > iters / 20);
    assert_true(accepted < iters - iters / 20);
    test_free(seed);
    test_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scanner_should_follow_the_accept_reject_table),
        cmocka_unit_test(scanner_should_reject_lone_low_surrogate),
        cmocka_unit_test(scanner_should_accept_depth_512_and_reject_513),
        cmocka_unit_test(scanner_should_fail_fast_on_100000_deep_arrays),
        cmocka_unit_test(scanner_should_expand_only_to_the_requested_depth),
        cmocka_unit_test(scanner_should_find_duplicates_in_unexpanded_objects),
        cmocka_unit_test(duplicate_message_should_cut_long_names_cleanly),
        cmocka_unit_test(scanner_should_check_100000_keys_quickly),
        cmocka_unit_test(tape_need_should_suffice_for_dense_inputs),
        cmocka_unit_test(tape_need_should_suffice_for_unclosed_inputs),
        cmocka_unit_test(scanner_should_report_small_storage_as_enospace),
        cmocka_unit_test(accessors_should_find_members_by_unescaped_name),
        cmocka_unit_test(accessors_should_iterate_in_document_order),
        cmocka_unit_test(strings_should_be_zero_copy_without_escapes),
        cmocka_unit_test(str_copy_should_have_snprintf_semantics),
        cmocka_unit_test(unescape_should_decode_every_escape),
        cmocka_unit_test(numbers_should_convert_integer_literals_exactly),
        cmocka_unit_test(numbers_should_truncate_toward_zero_and_clamp),
        cmocka_unit_test(number_tokens_should_convert_and_others_should_not),
        cmocka_unit_test(equality_should_follow_the_table),
        cmocka_unit_test(equality_should_reject_malformed_or_undersized_input),
        cmocka_unit_test(equality_should_match_big_objects_in_any_order),
        cmocka_unit_test(writer_should_escape_exactly_per_protocol),
        cmocka_unit_test(writer_strings_should_parse_back_with_cjson),
        cmocka_unit_test(writer_should_print_int64_in_plain_decimal),
        cmocka_unit_test(writer_literals_should_parse_back_with_cjson),
        cmocka_unit_test(writer_should_report_needed_size_and_never_overrun),
        cmocka_unit_test(writer_should_build_responses_cjson_reads_back),
        cmocka_unit_test(compact_should_drop_only_insignificant_whitespace),
        cmocka_unit_test(compact_should_report_enospace_like_the_writer),
        cmocka_unit_test(w1_request_should_scan_and_answer_without_allocating),
        cmocka_unit_test(random_spellings_should_be_equal_and_perturbations_not),
        cmocka_unit_test(mutated_documents_should_never_crash_and_agree_with_cjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
