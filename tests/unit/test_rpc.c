/* test_rpc.c — the JSON-RPC layer (lib/rpc.c) against PROTOCOL.md sections
 * 5, 6, 12.1, 12.2 and Appendices A and B: exact response bytes, every
 * validation message, batch semantics, big responses, the zero-allocation
 * steady state and allocation failures.
 *
 * Expected bodies are compared byte for byte.  Where the server chooses a
 * value (ids, times, tokens) the expectation holds a placeholder that must
 * match that value's exact shape: <UUID> (canonical lower case), <TIME>
 * (PROTOCOL.md 1.2), <HEX64>.  Every response is also parsed with cJSON. */
#include "testutil.h"

#include <stdio.h>

#include <cjson/cJSON.h>

#define NS "t_0_m5x2k1_ab12"

typedef struct fx {
    counting_alloc ca;
    lss_db *db;
    lss_conn *c;
    const char *ns;
} fx;

static void fx_open(fx *f, const char *ns, const char *desc)
{
    counting_alloc_init(&f->ca);
    lss_options o;
    lss_options_init(&o);
    o.allocator = &f->ca.a;
    assert_int_equal(lss_open(":memory:", &o, &f->db), LSS_OK);
    assert_int_equal(lss_conn_open(f->db, &f->c), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tn;
    assert_int_equal(lss_ns_create(f->c, ns, strlen(ns), desc, strlen(desc),
                                   NULL, 0, tok, sizeof tok, &tn, NULL),
                     LSS_OK);
    f->ns = ns;
}

static void fx_close(fx *f)
{
    lss_conn_close(f->c);
    lss_close(f->db);
    assert_int_equal(f->ca.live, 0);
}

/* ------------------------------------------------------------------------
 * Matching
 * ---------------------------------------------------------------------- */

static int is_dig(char c)
{
    return c >= '0' && c <= '9';
}

static int is_lhex(char c)
{
    return is_dig(c) || (c >= 'a' && c <= 'f');
}

/* Length of a PROTOCOL.md 1.2 timestamp at s[0..n), or 0. */
static size_t time_len(const char *s, size_t n)
{
    static const char layout[] = "DDDD-DD-DDTDD:DD:DD";
    size_t i = 0;
    for (; layout[i]; i++) {
        if (i >= n)
            return 0;
        if (layout[i] == 'D' ? !is_dig(s[i]) : s[i] != layout[i])
            return 0;
    }
    if (i < n && s[i] == '.') {
        size_t d = 0;
        for (i++; i < n && is_dig(s[i]); i++)
            d++;
        if (d < 1 || d > 9 || s[i - 1] == '0') /* trailing zeros trimmed */
            return 0;
    }
    return i < n && s[i] == 'Z' ? i + 1 : 0;
}

static size_t uuid_len(const char *s, size_t n)
{
    if (n < 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_lhex(s[i]))
            return 0;
    }
    return 36;
}

static size_t hex64_len(const char *s, size_t n)
{
    if (n < 64)
        return 0;
    for (size_t i = 0; i < 64; i++)
        if (!is_lhex(s[i]))
            return 0;
    return 64;
}

/* s[0..n) against pattern pat (literal bytes and placeholders). */
static int match(const char *pat, const char *s, size_t n)
{
    size_t i = 0;
    while (*pat) {
        size_t k = 0;
        if (!strncmp(pat, "<TIME>", 6))
            k = time_len(s + i, n - i);
        else if (!strncmp(pat, "<UUID>", 6))
            k = uuid_len(s + i, n - i);
        else if (!strncmp(pat, "<HEX64>", 7))
            k = hex64_len(s + i, n - i);
        else {
            if (i >= n || s[i] != *pat)
                return 0;
            i++;
            pat++;
            continue;
        }
        if (!k)
            return 0;
        i += k;
        pat = strchr(pat, '>') + 1;
    }
    return i == n;
}

/* Every response is one JSON value and one "\n". */
static void assert_json(const char *s, size_t n)
{
    assert_true(n >= 2);
    assert_int_equal(s[n - 1], '\n');
    assert_true(s[n - 2] != '\n');
    char *t = malloc(n + 1);
    assert_non_null(t);
    memcpy(t, s, n);
    t[n] = '\0';
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(t, &end, 0);
    if (!j)
        print_error("not JSON: %s\n", t);
    assert_non_null(j);
    assert_int_equal(*end, '\n');
    cJSON_Delete(j);
    free(t);
}

/* ------------------------------------------------------------------------
 * Calling
 * ---------------------------------------------------------------------- */

static lss_rpc_req req_of(const char *ns, const char *body, size_t n)
{
    lss_rpc_req q;
    memset(&q, 0, sizeof q);
    q.ns = ns;
    q.ns_n = ns ? strlen(ns) : 0;
    q.body = body;
    q.body_n = n;
    return q;
}

static lss_rpc_req call_n(fx *f, const char *body, size_t n)
{
    lss_rpc_req q = req_of(f->ns, body, n);
    assert_int_equal(lss_rpc_call(f->c, &q), LSS_OK);
    assert_non_null(q.resp);
    assert_json(q.resp, q.resp_n);
    return q;
}

static lss_rpc_req call(fx *f, const char *body)
{
    return call_n(f, body, strlen(body));
}

#define EXPECT(f, body, st, pat) expect_at((f), (body), (st), (pat), __LINE__)

static void expect_resp(const lss_rpc_req *q, int status, const char *pat,
                        int line)
{
    if (q->status != status || !match(pat, q->resp, q->resp_n)) {
        print_error("line %d: body %.*s\n  got %d %.*s  want %d %s\n", line,
                    (int)q->body_n, q->body, q->status, (int)q->resp_n,
                    q->resp, status, pat);
        fail();
    }
}

static void expect_at(fx *f, const char *body, int status, const char *pat,
                      int line)
{
    lss_rpc_req q = call(f, body);
    expect_resp(&q, status, pat, line);
}

static void expect_bad(fx *f, const char *body, const char *msg, int line)
{
    char want[512];
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"%s\"}}\n",
             msg);
    expect_at(f, body, 400, want, line);
}

/* A stream.write of a small message; returns nothing, asserts 200. */
static void write_msg(fx *f, const char *stream, const char *type,
                      const char *data)
{
    char body[512];
    snprintf(body, sizeof body,
             "[\"stream.write\",\"%s\",{\"type\":\"%s\",\"data\":%s}]", stream,
             type, data);
    lss_rpc_req q = call(f, body);
    assert_int_equal(q.status, 200);
}

/* ------------------------------------------------------------------------
 * Appendix A
 * ---------------------------------------------------------------------- */

static void appendix_a_data_exchanges_should_be_reproduced(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");

    /* Write and read. */
    EXPECT(&f, "[\"stream.write\",\"account-42\",{\"type\":\"Opened\",\"data\":{\"balance\":0}},{}]",
           200, "{\"globalPosition\":1,\"position\":0}\n");
    EXPECT(&f, "[\"stream.get\",\"account-42\",{}]", 200,
           "[[\"<UUID>\",\"Opened\",0,1,{\"balance\":0},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.version\",\"account-42\"]", 200, "0\n");
    EXPECT(&f, "[\"stream.version\",\"account-43\"]", 200, "null\n");
    EXPECT(&f, "[\"stream.last\",\"account-42\",{\"type\":\"X\"}]", 200, "null\n");

    /* Category read with a consumer group. */
    EXPECT(&f, "[\"category.get\",\"account\",{\"consumerGroup\":{\"member\":1,\"size\":2}}]",
           200,
           "[[\"<UUID>\",\"account-42\",\"Opened\",0,1,{\"balance\":0},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"category.get\",\"account\",{\"consumerGroup\":{\"member\":0,\"size\":2}}]",
           200, "[]\n");
    EXPECT(&f, "[\"category.get\",\"account-42\",{}]", 200, "[]\n");

    /* Expected version. */
    EXPECT(&f, "[\"stream.write\",\"account-42\",{\"type\":\"X\",\"data\":{}},{\"expectedVersion\":5}]",
           409,
           "{\"error\":{\"code\":\"STREAM_VERSION_CONFLICT\",\"message\":\"Expected version 5, "
           "stream is at version 0\",\"details\":{\"actual\":0,\"expected\":5}}}\n");
    EXPECT(&f, "[\"stream.write\",\"account-99\",{\"type\":\"X\",\"data\":{}},{\"expectedVersion\":-1}]",
           200, "{\"globalPosition\":2,\"position\":0}\n");

    /* Client-supplied ids. */
    EXPECT(&f, "[\"stream.write\",\"order-1\",{\"type\":\"Placed\",\"data\":{\"total\":99.99}},"
               "{\"id\":\"12345678-1234-1234-1234-123456789ABC\"}]",
           200, "{\"globalPosition\":3,\"position\":0}\n");
    EXPECT(&f, "[\"stream.write\",\"order-1\",{\"type\":\"Placed\",\"data\":{\"total\":99.99}},"
               "{\"id\":\"12345678-1234-1234-1234-123456789abc\"}]",
           200, "{\"globalPosition\":3,\"position\":0}\n");
    EXPECT(&f, "[\"stream.write\",\"order-1\",{\"type\":\"Cancelled\",\"data\":{}},"
               "{\"id\":\"12345678-1234-1234-1234-123456789abc\"}]",
           409,
           "{\"error\":{\"code\":\"DUPLICATE_MESSAGE_ID\",\"message\":\"Message ID "
           "'12345678-1234-1234-1234-123456789abc' already exists\",\"details\":"
           "{\"id\":\"12345678-1234-1234-1234-123456789abc\"}}}\n");
    EXPECT(&f, "[\"stream.write\",\"order-1\",{\"type\":\"Placed\",\"data\":{}},{\"id\":\"abc\"}]",
           400, "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"options.id must be a valid UUID\"}}\n");
    EXPECT(&f, "[\"stream.get\",\"order-1\"]", 200,
           "[[\"12345678-1234-1234-1234-123456789abc\",\"Placed\",0,3,{\"total\":99.99},null,\"<TIME>\"]]\n");

    /* Envelope and validation errors. */
    EXPECT(&f, "[\"stream.get\",\"account-42\",{\"batchSize\":20000}]", 400,
           "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"options.batchSize must be "
           "<= 10000 or -1 for unlimited\"}}\n");
    EXPECT(&f, "[\"stream.write\",\"s-1\",null,{}]", 400,
           "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"message must be an object\"}}\n");
    EXPECT(&f, "[\"stream.write\",123,{\"type\":\"T\",\"data\":{}}]", 400,
           "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"streamName must be a non-empty string\"}}\n");
    EXPECT(&f, "[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{},\"metadata\":null}]", 400,
           "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"message.metadata must be an object\"}}\n");
    EXPECT(&f, "{\"a\":1}", 400,
           "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Malformed JSON request\","
           "\"details\":{\"error\":\"request body must be a JSON array\"}}}\n");
    EXPECT(&f, "[\"invalid.method\"]", 404,
           "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: invalid.method\"}}\n");

    /* The SSE example's second write to account-42 and task-1 .. task-4
     * bring the global position to 8, as in the appendix. */
    EXPECT(&f, "[\"stream.write\",\"account-42\",{\"type\":\"Deposited\",\"data\":{}}]", 200,
           "{\"globalPosition\":4,\"position\":1}\n");
    for (int i = 1; i <= 4; i++) {
        char s[16];
        snprintf(s, sizeof s, "task-%d", i);
        write_msg(&f, s, "T", "{}");
    }

    /* Extensions. */
    EXPECT(&f, "[\"stream.writeBatch\",\"cart-7\",[{\"type\":\"Added\",\"data\":{\"sku\":\"a\"}},"
               "{\"type\":\"Added\",\"data\":{\"sku\":\"b\"}},{\"type\":\"CheckedOut\",\"data\":{}}],"
               "{\"expectedVersion\":-1}]",
           200, "{\"count\":3,\"globalPosition\":11,\"position\":2}\n");
    EXPECT(&f, "[\"stream.get\",\"cart-7\",{\"types\":[\"CheckedOut\"]}]", 200,
           "[[\"<UUID>\",\"CheckedOut\",2,11,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.writeBatch\",\"cart-7\",[]]", 400,
           "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"messages must contain between 1 "
           "and 1000 messages\"}}\n");
    fx_close(&f);
}

static void appendix_a_namespace_exchanges_should_be_reproduced(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "default", "Default namespace");
    EXPECT(&f, "[\"ns.create\",\"tenant-a\",{\"description\":\"A\"}]", 200,
           "{\"createdAt\":\"<TIME>\",\"namespace\":\"tenant-a\",\"token\":\"ns_dGVuYW50LWE_<HEX64>\"}\n");
    EXPECT(&f, "[\"ns.create\",\"tenant-a\",{}]", 409,
           "{\"error\":{\"code\":\"NAMESPACE_EXISTS\",\"message\":\"Namespace 'tenant-a' already exists\"}}\n");
    EXPECT(&f, "[\"ns.create\",\"tenant-a\",{\"token\":\"ns_ZGVmYXVsdA_0000000000000000000000000000000000000000000000000000000000000000\"}]",
           400,
           "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Token is for namespace 'default', "
           "not 'tenant-a'\"}}\n");

    /* Three writes with tenant-a's token: two to account-1, one to order-1. */
    f.ns = "tenant-a";
    write_msg(&f, "account-1", "T", "{}");
    write_msg(&f, "account-1", "T", "{}");
    write_msg(&f, "order-1", "T", "{}");
    EXPECT(&f, "[\"ns.info\",\"tenant-a\"]", 200,
           "{\"createdAt\":\"<TIME>\",\"description\":\"A\",\"lastActivity\":\"<TIME>\","
           "\"messageCount\":3,\"namespace\":\"tenant-a\",\"streamCount\":2}\n");
    /* Newest first; the registry keeps whole seconds, so two namespaces
     * made within one second tie and are ordered by id. */
    lss_rpc_req q = call(&f, "[\"ns.list\"]");
    cJSON *j = cJSON_ParseWithLength(q.resp, q.resp_n);
    assert_non_null(j);
    const char *t0 = cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "createdAt")->valuestring;
    const char *t1 = cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "createdAt")->valuestring;
    if (strcmp(t0, t1) == 0)
        expect_resp(&q, 200,
                    "[{\"createdAt\":\"<TIME>\",\"description\":\"Default namespace\",\"messageCount\":0,"
                    "\"namespace\":\"default\"},"
                    "{\"createdAt\":\"<TIME>\",\"description\":\"A\",\"messageCount\":3,\"namespace\":\"tenant-a\"}]\n",
                    __LINE__);
    else
        expect_resp(&q, 200,
                    "[{\"createdAt\":\"<TIME>\",\"description\":\"A\",\"messageCount\":3,\"namespace\":\"tenant-a\"},"
                    "{\"createdAt\":\"<TIME>\",\"description\":\"Default namespace\",\"messageCount\":0,"
                    "\"namespace\":\"default\"}]\n",
                    __LINE__);
    cJSON_Delete(j);

    /* Listing, before the deletion. */
    EXPECT(&f, "[\"ns.streams\",{\"limit\":1}]", 200,
           "[{\"lastActivity\":\"<TIME>\",\"stream\":\"account-1\",\"version\":1}]\n");
    EXPECT(&f, "[\"ns.streams\",{\"cursor\":\"account-1\"}]", 200,
           "[{\"lastActivity\":\"<TIME>\",\"stream\":\"order-1\",\"version\":0}]\n");
    EXPECT(&f, "[\"ns.categories\"]", 200,
           "[{\"category\":\"account\",\"messageCount\":2,\"streamCount\":1},"
           "{\"category\":\"order\",\"messageCount\":1,\"streamCount\":1}]\n");

    f.ns = "default";
    EXPECT(&f, "[\"ns.delete\",\"tenant-a\"]", 200,
           "{\"deletedAt\":\"<TIME>\",\"messagesDeleted\":3,\"namespace\":\"tenant-a\"}\n");
    EXPECT(&f, "[\"ns.delete\",\"tenant-a\"]", 404,
           "{\"error\":{\"code\":\"NAMESPACE_NOT_FOUND\",\"message\":\"Namespace 'tenant-a' not found\"}}\n");
    EXPECT(&f, "[\"ns.info\",\"tenant-a\"]", 404,
           "{\"error\":{\"code\":\"NAMESPACE_NOT_FOUND\",\"message\":\"Namespace 'tenant-a' not found\"}}\n");
    fx_close(&f);
}

/* ------------------------------------------------------------------------
 * Appendix B: every validation message, in the order of section 6
 * ---------------------------------------------------------------------- */

typedef struct vcase {
    const char *body;
    const char *msg;
} vcase;

static const vcase validation_cases[] = {
    /* stream.write (6.3) */
    {"[\"stream.write\"]", "stream.write requires at least 2 arguments: streamName and message"},
    {"[\"stream.write\",\"s-1\"]", "stream.write requires at least 2 arguments: streamName and message"},
    {"[\"stream.write\",\"\",{}]", "streamName must be a non-empty string"},
    {"[\"stream.write\",null,{}]", "streamName must be a non-empty string"},
    {"[\"stream.write\",\"\",null,5]", "streamName must be a non-empty string"},
    {"[\"stream.write\",\"s-1\",[]]", "message must be an object"},
    {"[\"stream.write\",\"s-1\",\"m\",5]", "message must be an object"},
    {"[\"stream.write\",\"s-1\",{}]", "message.type must be a non-empty string"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"\",\"data\":{}}]", "message.type must be a non-empty string"},
    {"[\"stream.write\",\"s-1\",{\"type\":1,\"data\":{}}]", "message.type must be a non-empty string"},
    {"[\"stream.write\",\"s-1\",{\"type\":null,\"data\":5},5]", "message.type must be a non-empty string"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\"}]", "message.data must be an object"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":[]}]", "message.data must be an object"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":null}]", "message.data must be an object"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":\"{}\",\"metadata\":1},5]", "message.data must be an object"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{},\"metadata\":[]}]", "message.metadata must be an object"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{},\"metadata\":null},5]", "message.metadata must be an object"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},null]", "options must be an object"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},[]]", "options must be an object"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},{\"id\":1,\"expectedVersion\":\"x\"}]", "options.id must be a string"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},{\"id\":null}]", "options.id must be a string"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},{\"id\":\"abc\",\"expectedVersion\":\"x\"}]", "options.id must be a valid UUID"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},{\"id\":\"12345678-1234-1234-1234-12345678\"}]", "options.id must be a valid UUID"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},{\"expectedVersion\":\"1\"}]", "options.expectedVersion must be a number"},
    {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},{\"expectedVersion\":null}]", "options.expectedVersion must be a number"},

    /* stream.writeBatch (12.1) */
    {"[\"stream.writeBatch\"]", "stream.writeBatch requires at least 2 arguments: streamName and messages"},
    {"[\"stream.writeBatch\",\"s-1\"]", "stream.writeBatch requires at least 2 arguments: streamName and messages"},
    {"[\"stream.writeBatch\",\"\",[]]", "streamName must be a non-empty string"},
    {"[\"stream.writeBatch\",7,{}]", "streamName must be a non-empty string"},
    {"[\"stream.writeBatch\",\"s-1\",{}]", "messages must be an array"},
    {"[\"stream.writeBatch\",\"s-1\",null]", "messages must be an array"},
    {"[\"stream.writeBatch\",\"s-1\",[],5]", "messages must contain between 1 and 1000 messages"},
    {"[\"stream.writeBatch\",\"s-1\",[1]]", "messages[0] must be an object"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{}},null]]", "messages[1] must be an object"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{}},{\"data\":{}}]]", "messages[1].type must be a non-empty string"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"\",\"data\":{}}]]", "messages[0].type must be a non-empty string"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\"}]]", "messages[0].data must be an object"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":[]}]]", "messages[0].data must be an object"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{},\"metadata\":null}]]", "messages[0].metadata must be an object"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{},\"id\":5}]]", "messages[0].id must be a string"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{},\"id\":\"x\"}]]", "messages[0].id must be a valid UUID"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{},\"id\":\"\"},{\"type\":\"T\",\"data\":{},\"id\":\"\"}]]", NULL},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{},\"id\":\"12345678-1234-1234-1234-123456789abc\"},"
     "{\"type\":\"T\",\"data\":{},\"id\":\"22345678-1234-1234-1234-123456789abc\"},"
     "{\"type\":\"T\",\"data\":{},\"id\":\"{12345678-1234-1234-1234-123456789ABC}\"}]]",
     "messages[2].id duplicates messages[0].id"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{},\"id\":\"12345678123412341234123456789abc\"},"
     "{\"type\":\"T\",\"data\":{},\"id\":\"urn:uuid:12345678-1234-1234-1234-123456789abc\"}],\"x\"]",
     "messages[1].id duplicates messages[0].id"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{}},{\"type\":\"T\"}],\"x\"]", "messages[1].data must be an object"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{}}],\"x\"]", "options must be an object"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{}}],null]", "options must be an object"},
    {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{}}],{\"expectedVersion\":true}]", "options.expectedVersion must be a number"},

    /* stream.get (6.4) */
    {"[\"stream.get\"]", "stream.get requires at least 1 argument: streamName"},
    {"[\"stream.get\",\"\"]", "streamName must be a non-empty string"},
    {"[\"stream.get\",{}]", "streamName must be a non-empty string"},
    {"[\"stream.get\",\"s-1\",1]", "options must be an object"},
    {"[\"stream.get\",\"s-1\",null]", "options must be an object"},
    {"[\"stream.get\",\"s-1\",{\"position\":\"0\",\"batchSize\":\"x\"}]", "options.position must be a number"},
    {"[\"stream.get\",\"s-1\",{\"position\":null}]", "options.position must be a number"},
    {"[\"stream.get\",\"s-1\",{\"globalPosition\":true,\"batchSize\":\"x\"}]", "options.globalPosition must be a number"},
    {"[\"stream.get\",\"s-1\",{\"batchSize\":[]}]", "options.batchSize must be a number"},
    {"[\"stream.get\",\"s-1\",{\"batchSize\":10001,\"types\":[]}]", "options.batchSize must be <= 10000 or -1 for unlimited"},
    {"[\"stream.get\",\"s-1\",{\"batchSize\":1e300}]", "options.batchSize must be <= 10000 or -1 for unlimited"},
    {"[\"stream.get\",\"s-1\",{\"types\":[]}]", "options.types must be an array of 1 to 100 non-empty strings"},
    {"[\"stream.get\",\"s-1\",{\"types\":\"A\"}]", "options.types must be an array of 1 to 100 non-empty strings"},
    {"[\"stream.get\",\"s-1\",{\"types\":null}]", "options.types must be an array of 1 to 100 non-empty strings"},
    {"[\"stream.get\",\"s-1\",{\"types\":[\"A\",\"\"]}]", "options.types must be an array of 1 to 100 non-empty strings"},
    {"[\"stream.get\",\"s-1\",{\"types\":[\"A\",1]}]", "options.types must be an array of 1 to 100 non-empty strings"},

    /* stream.last (6.5) */
    {"[\"stream.last\"]", "stream.last requires at least 1 argument: streamName"},
    {"[\"stream.last\",\"\"]", "streamName must be a non-empty string"},
    {"[\"stream.last\",\"s-1\",\"x\"]", "options must be an object"},
    {"[\"stream.last\",\"s-1\",{\"type\":1}]", "options.type must be a string"},
    {"[\"stream.last\",\"s-1\",{\"type\":null}]", "options.type must be a string"},

    /* stream.version (6.6) */
    {"[\"stream.version\"]", "stream.version requires 1 argument: streamName"},
    {"[\"stream.version\",\"\"]", "streamName must be a non-empty string"},
    {"[\"stream.version\",false]", "streamName must be a non-empty string"},

    /* category.get (6.7) */
    {"[\"category.get\"]", "category.get requires at least 1 argument: categoryName"},
    {"[\"category.get\",1]", "categoryName must be a string"},
    {"[\"category.get\",null,1]", "categoryName must be a string"},
    {"[\"category.get\",\"c\",[]]", "options must be an object"},
    {"[\"category.get\",\"c\",{\"position\":\"1\"}]", "options.position must be a number"},
    {"[\"category.get\",\"c\",{\"globalPosition\":{}}]", "options.globalPosition must be a number"},
    {"[\"category.get\",\"c\",{\"batchSize\":\"1\",\"correlation\":1}]", "options.batchSize must be a number"},
    {"[\"category.get\",\"c\",{\"batchSize\":10000.5e1,\"correlation\":1}]", "options.batchSize must be <= 10000 or -1 for unlimited"},
    {"[\"category.get\",\"c\",{\"correlation\":1,\"consumerGroup\":1}]", "options.correlation must be a string"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":1}]", "options.consumerGroup must be an object"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":null}]", "options.consumerGroup must be an object"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"member\":\"0\",\"size\":\"x\"}}]", "options.consumerGroup.member must be a number"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"member\":0,\"size\":null}}]", "options.consumerGroup.size must be a number"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"size\":\"2\"}}]", "options.consumerGroup.size must be a number"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"member\":-1,\"size\":0}}]", "options.consumerGroup.member must be non-negative"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"member\":0,\"size\":0}}]", "options.consumerGroup.size must be positive"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"member\":0,\"size\":-3}}]", "options.consumerGroup.size must be positive"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"member\":2,\"size\":2}}]", "options.consumerGroup.member must be < size"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"member\":0.5,\"size\":0.9}}]", "options.consumerGroup.size must be positive"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"member\":0}}]", "options.consumerGroup requires both member and size"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{\"size\":2},\"types\":[]}]", "options.consumerGroup requires both member and size"},
    {"[\"category.get\",\"c\",{\"consumerGroup\":{},\"types\":[]}]", "options.types must be an array of 1 to 100 non-empty strings"},

    /* ns.create (6.8) */
    {"[\"ns.create\"]", "ns.create requires at least 1 argument: namespace ID"},
    {"[\"ns.create\",\"\"]", "namespace ID must be a non-empty string"},
    {"[\"ns.create\",5]", "namespace ID must be a non-empty string"},
    {"[\"ns.create\",\"x\",[]]", "options must be an object"},
    {"[\"ns.create\",\"x\",{\"description\":1,\"token\":1}]", "options.description must be a string"},
    {"[\"ns.create\",\"x\",{\"description\":null}]", "options.description must be a string"},
    {"[\"ns.create\",\"x\",{\"token\":1,\"metadata\":1}]", "options.token must be a string"},
    {"[\"ns.create\",\"x\",{\"token\":\"\",\"metadata\":1}]", "Invalid token format: invalid token format: missing 'ns_' prefix"},
    {"[\"ns.create\",\"x\",{\"token\":\"ns_eA\"}]", "Invalid token format: invalid token format: expected 2 parts after prefix, got 1"},
    {"[\"ns.create\",\"x\",{\"token\":\"ns_eA_00\"}]", "Invalid token format: invalid token format: random part must be 64 hex characters, got 2"},
    {"[\"ns.create\",\"x\",{\"token\":\"ns__0000000000000000000000000000000000000000000000000000000000000000\"}]",
     "Invalid token format: invalid token format: namespace is empty"},
    {"[\"ns.create\",\"x\",{\"token\":\"ns_eQ_0000000000000000000000000000000000000000000000000000000000000000\",\"metadata\":1}]",
     "Token is for namespace 'y', not 'x'"},
    {"[\"ns.create\",\"x\",{\"metadata\":null}]", "options.metadata must be an object"},
    {"[\"ns.create\",\"x\",{\"metadata\":[]}]", "options.metadata must be an object"},

    /* ns.delete (6.9), ns.info (6.11) */
    {"[\"ns.delete\"]", "ns.delete requires 1 argument: namespace ID"},
    {"[\"ns.delete\",\"\"]", "namespace ID must be a non-empty string"},
    {"[\"ns.delete\",null]", "namespace ID must be a non-empty string"},
    {"[\"ns.info\"]", "ns.info requires 1 argument: namespace ID"},
    {"[\"ns.info\",\"\"]", "namespace ID must be a non-empty string"},
    {"[\"ns.info\",[]]", "namespace ID must be a non-empty string"},

    /* ns.streams (6.12) */
    {"[\"ns.streams\",1]", "options must be an object"},
    {"[\"ns.streams\",null]", "options must be an object"},
    {"[\"ns.streams\",{\"prefix\":1,\"cursor\":1}]", "prefix must be a string"},
    {"[\"ns.streams\",{\"cursor\":null,\"limit\":\"x\"}]", "cursor must be a string"},
    {"[\"ns.streams\",{\"limit\":\"x\"}]", "limit must be a number"},
    {"[\"ns.streams\",{\"limit\":0}]", "limit must be between 1 and 1000"},
    {"[\"ns.streams\",{\"limit\":0.9}]", "limit must be between 1 and 1000"},
    {"[\"ns.streams\",{\"limit\":-5}]", "limit must be between 1 and 1000"},
    {"[\"ns.streams\",{\"limit\":1001}]", "limit must be between 1 and 1000"},
};

static void every_validation_message_should_be_exact_and_first_failure_wins(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    for (size_t i = 0; i < sizeof validation_cases / sizeof *validation_cases; i++) {
        const vcase *v = &validation_cases[i];
        if (v->msg) {
            expect_bad(&f, v->body, v->msg, (int)i);
        } else {
            lss_rpc_req q = call(&f, v->body);
            assert_int_equal(q.status, 200);
        }
    }
    /* Nothing reached the store. */
    EXPECT(&f, "[\"ns.info\",\"" NS "\"]", 200,
           "{\"createdAt\":\"<TIME>\",\"description\":\"\",\"lastActivity\":\"<TIME>\","
           "\"messageCount\":2,\"namespace\":\"" NS "\",\"streamCount\":1}\n");
    fx_close(&f);
}

/* Bodies too long for the table: 1001 messages, 101 types, a 256-byte id. */
static void size_limits_should_be_checked(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    char *b = malloc(64 * 1024);
    assert_non_null(b);

    size_t n = (size_t)sprintf(b, "[\"stream.writeBatch\",\"s-1\",[");
    for (int i = 0; i < 1001; i++)
        n += (size_t)sprintf(b + n, "%s{\"type\":\"T\",\"data\":{}}", i ? "," : "");
    strcpy(b + n, "]]");
    expect_bad(&f, b, "messages must contain between 1 and 1000 messages", __LINE__);
    /* 1000 is fine. */
    n = (size_t)sprintf(b, "[\"stream.writeBatch\",\"s-1\",[");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(b + n, "%s{\"type\":\"T\",\"data\":{}}", i ? "," : "");
    strcpy(b + n, "]]");
    EXPECT(&f, b, 200, "{\"count\":1000,\"globalPosition\":1000,\"position\":999}\n");

    for (int types = 100; types <= 101; types++) {
        n = (size_t)sprintf(b, "[\"stream.get\",\"s-1\",{\"types\":[");
        for (int i = 0; i < types; i++)
            n += (size_t)sprintf(b + n, "%s\"T%d\"", i ? "," : "", i);
        strcpy(b + n, "]}]");
        if (types == 100)
            EXPECT(&f, b, 200, "[]\n");
        else
            expect_bad(&f, b, "options.types must be an array of 1 to 100 non-empty strings",
                       __LINE__);
    }

    char id[300];
    memset(id, 'a', 256);
    id[256] = '\0';
    snprintf(b, 1024, "[\"ns.create\",\"%s\"]", id);
    expect_bad(&f, b, "namespace ID must be at most 255 bytes", __LINE__);
    char want[512];
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"NAMESPACE_NOT_FOUND\",\"message\":\"Namespace '%s' not found\"}}\n",
             id);
    snprintf(b, 1024, "[\"ns.info\",\"%s\"]", id);
    EXPECT(&f, b, 404, want);
    snprintf(b, 1024, "[\"ns.delete\",\"%s\"]", id);
    lss_rpc_req q = call(&f, b);
    assert_int_equal(q.status, 404);
    /* 255 bytes, counted after unescaping: "\u00e9" is 2 bytes. */
    memset(id, 'a', 253);
    strcpy(id + 253, "\\u00e9");
    snprintf(b, 1024, "[\"ns.create\",\"%s\"]", id);
    q = call(&f, b);
    assert_int_equal(q.status, 200);
    strcpy(id + 253, "a\\u00e9");
    snprintf(b, 1024, "[\"ns.create\",\"%s\"]", id);
    expect_bad(&f, b, "namespace ID must be at most 255 bytes", __LINE__);
    free(b);
    fx_close(&f);
}

/* ------------------------------------------------------------------------
 * Envelope
 * ---------------------------------------------------------------------- */

static void expect_malformed(fx *f, const char *body, size_t n,
                             const char *why, int line)
{
    char want[512];
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Malformed JSON request\","
             "\"details\":{\"error\":\"%s\"}}}\n",
             why);
    lss_rpc_req q = call_n(f, body, n);
    expect_resp(&q, 400, want, line);
    assert_int_equal(q.method, LSS_RPC_INVALID);
}

#define MALFORMED(f, body, why) \
    expect_malformed((f), (body), strlen(body), (why), __LINE__)

static void envelope_errors_should_follow_the_processing_order(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    MALFORMED(&f, "", "unexpected end of JSON input");
    expect_malformed(&f, NULL, 0, "unexpected end of JSON input", __LINE__);
    MALFORMED(&f, " \t\r\n", "unexpected end of JSON input");
    MALFORMED(&f, "[\"stream.get\",", "unexpected end of JSON input");
    MALFORMED(&f, "[1,]", "invalid character ']' looking for beginning of value");
    MALFORMED(&f, "[] x", "invalid character 'x' after top-level value");
    MALFORMED(&f, "[\"stream.write\",\"s\",{\"type\":\"T\",\"data\":{\"a\":1,\"a\":2}}]",
              "duplicate object key \\\"a\\\"");
    MALFORMED(&f, "[\"x\",\"\xff\"]", "invalid UTF-8 in string");
    MALFORMED(&f, "[\"x\",\"\\ud800\"]", "invalid surrogate escape");
    MALFORMED(&f, "[\"x\",\"\\u0000\"]", "U+0000 is not allowed in strings");
    MALFORMED(&f, "\"stream.get\"", "request body must be a JSON array");
    MALFORMED(&f, "17", "request body must be a JSON array");
    expect_malformed(&f, "[\"sys.version\"]\0", 16, "invalid character '\\\\x00' after top-level value", __LINE__);

    /* 513 levels: the outer array and 512 inside it. */
    char deep[1100];
    size_t n = 0;
    memcpy(deep, "[\"x\",", 5);
    n += 5;
    for (int i = 0; i < 512; i++)
        deep[n++] = '[';
    for (int i = 0; i < 513; i++)
        deep[n++] = ']';
    expect_malformed(&f, deep, n, "nesting depth exceeds 512", __LINE__);
    /* 512 levels, the outer array included, is still fine. */
    n = 0;
    deep[n++] = '[';
    memcpy(deep + n, "\"sys.version\",", 14);
    n += 14;
    for (int i = 0; i < 511; i++)
        deep[n++] = '[';
    for (int i = 0; i < 512; i++)
        deep[n++] = ']';
    lss_rpc_req q = call_n(&f, deep, n);
    assert_int_equal(q.status, 200);

    q = call(&f, "null");
    expect_resp(&q, 400, "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Missing method name\"}}\n", __LINE__);
    assert_int_equal(q.method, LSS_RPC_INVALID);
    EXPECT(&f, " [ ] ", 400, "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Missing method name\"}}\n");
    EXPECT(&f, "[1]", 400, "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Method name must be a string\"}}\n");
    EXPECT(&f, "[null,\"x\"]", 400, "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Method name must be a string\"}}\n");
    EXPECT(&f, "[[\"stream.get\"]]", 400, "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Method name must be a string\"}}\n");
    q = call(&f, "[\"Stream.Get\",\"s\"]");
    expect_resp(&q, 404, "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: Stream.Get\"}}\n", __LINE__);
    assert_int_equal(q.method, LSS_RPC_UNKNOWN);
    EXPECT(&f, "[\"ns.rotateToken\"]", 404, "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: ns.rotateToken\"}}\n");
    EXPECT(&f, "[\"stream.delete\",\"s-1\"]", 404, "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: stream.delete\"}}\n");
    EXPECT(&f, "[\"invalid\"]", 404, "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: invalid\"}}\n");
    EXPECT(&f, "[\"unknown\"]", 404, "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: unknown\"}}\n");
    EXPECT(&f, "[\"\"]", 404, "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: \"}}\n");
    /* The name is unescaped, then escaped again for the message. */
    EXPECT(&f, "[\"a\\\"b\\\\c\\/d\\u0001\\u00e9\"]", 404,
           "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: a\\\"b\\\\c/d\\u0001\xc3\xa9\"}}\n");
    /* An escaped spelling of a real name is that method. */
    q = call(&f, "[\"stream\\u002eversion\",\"s-1\"]");
    expect_resp(&q, 200, "null\n", __LINE__);
    assert_int_equal(q.method, LSS_RPC_STREAM_VERSION);
    /* A malformed body never reaches validation. */
    MALFORMED(&f, "[\"stream.write\"", "unexpected end of JSON input");
    /* Arguments beyond those a method reads are ignored. */
    EXPECT(&f, "[\"sys.version\",1,2,{\"x\":[]}]", 200, "\"0.7.0\"\n");
    EXPECT(&f, "[\"sys.health\",null]", 200, "{\"backend\":\"unknown\",\"connections\":0,\"status\":\"ok\"}\n");
    EXPECT(&f, "[\"stream.version\",\"s-1\",{},{},{},{},{}]", 200, "null\n");
    EXPECT(&f, "[\"ns.categories\",1,2]", 200, "[]\n");
    EXPECT(&f, "[\"ns.list\",{\"limit\":1,\"offset\":3}]", 200,
           "[{\"createdAt\":\"<TIME>\",\"description\":\"\",\"messageCount\":0,\"namespace\":\"" NS "\"}]\n");
    /* A body surrounded by whitespace. */
    EXPECT(&f, "\r\n [ \"sys.version\" ] \t", 200, "\"0.7.0\"\n");
    fx_close(&f);
}

static void every_method_should_report_its_id(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    for (int m = LSS_RPC_SYS_VERSION; m < LSS_RPC_METHOD_COUNT; m++) {
        char body[64];
        snprintf(body, sizeof body, "[\"%s\"]", lss_rpc_method_name(m));
        lss_rpc_req q = call(&f, body);
        assert_int_equal(q.method, m);
    }
    assert_string_equal(lss_rpc_method_name(LSS_RPC_INVALID), "invalid");
    assert_string_equal(lss_rpc_method_name(LSS_RPC_UNKNOWN), "unknown");
    assert_string_equal(lss_rpc_method_name(99), "unknown");
    fx_close(&f);
}

/* ------------------------------------------------------------------------
 * Method behaviour
 * ---------------------------------------------------------------------- */

static void numbers_should_be_converted_as_protocol_1_4_says(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    for (int i = 0; i < 3; i++)
        write_msg(&f, "s-1", "T", "{}");
    EXPECT(&f, "[\"stream.get\",\"s-1\",{\"position\":1.9}]", 200,
           "[[\"<UUID>\",\"T\",1,2,{},null,\"<TIME>\"],[\"<UUID>\",\"T\",2,3,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.get\",\"s-1\",{\"position\":2e0,\"batchSize\":-0.5}]", 200,
           "[[\"<UUID>\",\"T\",2,3,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.get\",\"s-1\",{\"position\":-1e400,\"batchSize\":1.99}]", 200,
           "[[\"<UUID>\",\"T\",0,1,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.get\",\"s-1\",{\"position\":0,\"globalPosition\":3}]", 200,
           "[[\"<UUID>\",\"T\",2,3,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.get\",\"s-1\",{\"position\":9223372036854775808}]", 200, "[]\n");
    EXPECT(&f, "[\"stream.get\",\"s-1\",{\"batchSize\":-1}]", 200,
           "[[\"<UUID>\",\"T\",0,1,{},null,\"<TIME>\"],[\"<UUID>\",\"T\",1,2,{},null,\"<TIME>\"],"
           "[\"<UUID>\",\"T\",2,3,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.get\",\"s-1\",{\"batchSize\":-7,\"position\":2}]", 200,
           "[[\"<UUID>\",\"T\",2,3,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.get\",\"s-1\",{\"batchSize\":10000.9,\"position\":2}]", 200,
           "[[\"<UUID>\",\"T\",2,3,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}},{\"expectedVersion\":2.7}]", 200,
           "{\"globalPosition\":4,\"position\":3}\n");
    EXPECT(&f, "[\"category.get\",\"s\",{\"position\":3.5,\"batchSize\":1}]", 200,
           "[[\"<UUID>\",\"s-1\",\"T\",2,3,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"category.get\",\"s\",{\"position\":1,\"globalPosition\":4}]", 200,
           "[[\"<UUID>\",\"s-1\",\"T\",3,4,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"ns.streams\",{\"limit\":1000.7}]", 200,
           "[{\"lastActivity\":\"<TIME>\",\"stream\":\"s-1\",\"version\":3}]\n");
    fx_close(&f);
}

static void version_conflicts_should_report_minus_one_for_an_empty_stream(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    EXPECT(&f, "[\"stream.write\",\"new-1\",{\"type\":\"T\",\"data\":{}},{\"expectedVersion\":0}]", 409,
           "{\"error\":{\"code\":\"STREAM_VERSION_CONFLICT\",\"message\":\"Expected version 0, "
           "stream is at version -1\",\"details\":{\"actual\":-1,\"expected\":0}}}\n");
    EXPECT(&f, "[\"stream.write\",\"new-1\",{\"type\":\"T\",\"data\":{}},{\"expectedVersion\":-2}]", 409,
           "{\"error\":{\"code\":\"STREAM_VERSION_CONFLICT\",\"message\":\"Expected version -2, "
           "stream is at version -1\",\"details\":{\"actual\":-1,\"expected\":-2}}}\n");
    EXPECT(&f, "[\"stream.writeBatch\",\"new-1\",[{\"type\":\"T\",\"data\":{}}],{\"expectedVersion\":3}]", 409,
           "{\"error\":{\"code\":\"STREAM_VERSION_CONFLICT\",\"message\":\"Expected version 3, "
           "stream is at version -1\",\"details\":{\"actual\":-1,\"expected\":3}}}\n");
    EXPECT(&f, "[\"stream.version\",\"new-1\"]", 200, "null\n");
    fx_close(&f);
}

static void payloads_should_come_back_byte_for_byte(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    EXPECT(&f, "[\"stream.write\",\"p-1\",{\"type\":\"T\",\"data\": { \"b\" : 1.50 ,\n \"a\":[1e400,"
               "\"\\u00e9\\n\",12345678901234567890123] } ,\"metadata\":{\"x\":null,\"y\":\"\"}}]",
           200, "{\"globalPosition\":1,\"position\":0}\n");
    EXPECT(&f, "[\"stream.get\",\"p-1\"]", 200,
           "[[\"<UUID>\",\"T\",0,1,{ \"b\" : 1.50 ,\n \"a\":[1e400,\"\\u00e9\\n\",12345678901234567890123] },"
           "{\"x\":null,\"y\":\"\"},\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.last\",\"p-1\"]", 200,
           "[\"<UUID>\",\"T\",0,1,{ \"b\" : 1.50 ,\n \"a\":[1e400,\"\\u00e9\\n\",12345678901234567890123] },"
           "{\"x\":null,\"y\":\"\"},\"<TIME>\"]\n");
    /* Escaped names are unescaped for the store and escaped in output. */
    EXPECT(&f, "[\"stream.write\",\"q\\u002d1\",{\"type\":\"T\\t\\u00e9\\\"\",\"data\":{}},"
               "{\"id\":\"\\u0031\\u0032345678-1234-1234-1234-123456789ABC\"}]",
           200, "{\"globalPosition\":2,\"position\":0}\n");
    EXPECT(&f, "[\"category.get\",\"\\u0071\"]", 200,
           "[[\"12345678-1234-1234-1234-123456789abc\",\"q-1\",\"T\\t\xc3\xa9\\\"\",0,2,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"stream.last\",\"q-1\",{\"type\":\"T\\t\xc3\xa9\\\"\"}]", 200,
           "[\"12345678-1234-1234-1234-123456789abc\",\"T\\t\xc3\xa9\\\"\",0,2,{},null,\"<TIME>\"]\n");
    EXPECT(&f, "[\"stream.last\",\"q-1\",{\"type\":\"\"}]", 200,
           "[\"12345678-1234-1234-1234-123456789abc\",\"T\\t\xc3\xa9\\\"\",0,2,{},null,\"<TIME>\"]\n");
    EXPECT(&f, "[\"stream.last\",\"nope-1\"]", 200, "null\n");
    /* options.id "" means no id; other id spellings are canonicalised. */
    EXPECT(&f, "[\"stream.write\",\"r-1\",{\"type\":\"T\",\"data\":{}},{\"id\":\"\"}]", 200,
           "{\"globalPosition\":3,\"position\":0}\n");
    EXPECT(&f, "[\"stream.write\",\"r-1\",{\"type\":\"T\",\"data\":{}},"
               "{\"id\":\"URN:uuid:AAAAAAAA-1234-1234-1234-123456789ABC\"}]", 200,
           "{\"globalPosition\":4,\"position\":1}\n");
    EXPECT(&f, "[\"stream.get\",\"r-1\",{\"position\":1}]", 200,
           "[[\"aaaaaaaa-1234-1234-1234-123456789abc\",\"T\",1,4,{},null,\"<TIME>\"]]\n");
    fx_close(&f);
}

static void categories_correlation_groups_and_types_should_filter(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    static const char *const corr[] = {"workflow-abc", "workflow-xyz", "process-123", NULL};
    for (int i = 0; i < 4; i++) {
        char body[256];
        if (corr[i])
            snprintf(body, sizeof body,
                     "[\"stream.write\",\"acct-%d\",{\"type\":\"T%d\",\"data\":{},"
                     "\"metadata\":{\"correlationStreamName\":\"%s\"}}]", i, i % 2, corr[i]);
        else
            snprintf(body, sizeof body,
                     "[\"stream.write\",\"acct-%d\",{\"type\":\"T%d\",\"data\":{}}]", i, i % 2);
        assert_int_equal(call(&f, body).status, 200);
    }
    lss_rpc_req q = call(&f, "[\"category.get\",\"acct\",{\"correlation\":\"workflow\"}]");
    expect_resp(&q, 200,
                "[[\"<UUID>\",\"acct-0\",\"T0\",0,1,{},{\"correlationStreamName\":\"workflow-abc\"},\"<TIME>\"],"
                "[\"<UUID>\",\"acct-1\",\"T1\",0,2,{},{\"correlationStreamName\":\"workflow-xyz\"},\"<TIME>\"]]\n",
                __LINE__);
    EXPECT(&f, "[\"category.get\",\"acct\",{\"correlation\":\"work\"}]", 200, "[]\n");
    EXPECT(&f, "[\"category.get\",\"acct\",{\"correlation\":\"\",\"types\":[\"T1\"],\"batchSize\":1}]",
           200, "[[\"<UUID>\",\"acct-1\",\"T1\",0,2,{},{\"correlationStreamName\":\"workflow-xyz\"},\"<TIME>\"]]\n");
    EXPECT(&f, "[\"category.get\",\"\",{\"position\":4}]", 200,
           "[[\"<UUID>\",\"acct-3\",\"T1\",0,4,{},null,\"<TIME>\"]]\n");
    /* Cardinals 1 and 3 go to member 0 of 2 (PROTOCOL.md 7.7). */
    EXPECT(&f, "[\"category.get\",\"acct\",{\"consumerGroup\":{\"member\":0,\"size\":2},\"types\":[\"T1\",\"T1\"]}]",
           200,
           "[[\"<UUID>\",\"acct-1\",\"T1\",0,2,{},{\"correlationStreamName\":\"workflow-xyz\"},\"<TIME>\"],"
           "[\"<UUID>\",\"acct-3\",\"T1\",0,4,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"category.get\",\"acct\",{\"consumerGroup\":{}}]", 200,
           "[[\"<UUID>\",\"acct-0\",\"T0\",0,1,{},{\"correlationStreamName\":\"workflow-abc\"},\"<TIME>\"],"
           "[\"<UUID>\",\"acct-1\",\"T1\",0,2,{},{\"correlationStreamName\":\"workflow-xyz\"},\"<TIME>\"],"
           "[\"<UUID>\",\"acct-2\",\"T0\",0,3,{},{\"correlationStreamName\":\"process-123\"},\"<TIME>\"],"
           "[\"<UUID>\",\"acct-3\",\"T1\",0,4,{},null,\"<TIME>\"]]\n");
    EXPECT(&f, "[\"ns.streams\",{\"prefix\":\"acct-\",\"cursor\":\"acct-1\",\"limit\":1}]", 200,
           "[{\"lastActivity\":\"<TIME>\",\"stream\":\"acct-2\",\"version\":0}]\n");
    EXPECT(&f, "[\"ns.streams\",{\"prefix\":\"acct_\"}]", 200, "[]\n");
    EXPECT(&f, "[\"ns.categories\"]", 200,
           "[{\"category\":\"acct\",\"messageCount\":4,\"streamCount\":4}]\n");
    fx_close(&f);
}

static void ns_create_should_accept_its_own_token_and_report_the_creation_time(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "default", "Default namespace");
    static const char tok[] =
        "ns_eA_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    EXPECT(&f, "[\"ns.create\",\"x\",{\"token\":\"ns_eA_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
               "\"metadata\":{\"k\":1},\"description\":\"d\\u00e9\"}]",
           200, "{\"createdAt\":\"<TIME>\",\"namespace\":\"x\",\"token\":\"ns_eA_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}\n");
    const char *ns;
    size_t ns_n;
    assert_int_equal(lss_authorize(f.c, tok, strlen(tok), 0, &ns, &ns_n), LSS_OK);
    assert_span_equal(ns, ns_n, "x");
    /* ns.create reports the exact instant (microseconds); ns.info reports
     * what the registry keeps, the same instant in whole seconds
     * (PROTOCOL.md 1.2, Appendix A). */
    lss_rpc_req q = call(&f, "[\"ns.create\",\"y\"]");
    assert_int_equal(q.status, 200);
    char created[64];
    const char *at = strstr(q.resp, "\"createdAt\":\"");
    assert_non_null(at);
    at += 13;
    size_t tl = (size_t)(strchr(at, '"') - at);
    memcpy(created, at, tl);
    created[tl] = '\0';
    char *dot = strchr(created, '.');
    if (dot)
        memcpy(dot, "Z", 2);
    q = call(&f, "[\"ns.info\",\"y\"]");
    assert_int_equal(q.status, 200);
    assert_non_null(strstr(q.resp, created));
    EXPECT(&f, "[\"ns.info\",\"x\"]", 200,
           "{\"createdAt\":\"<TIME>\",\"description\":\"d\xc3\xa9\",\"lastActivity\":null,"
           "\"messageCount\":0,\"namespace\":\"x\",\"streamCount\":0}\n");
    /* A decoded namespace that is not UTF-8 is quoted with U+FFFD. */
    EXPECT(&f, "[\"ns.create\",\"z\",{\"token\":\"ns__w_0000000000000000000000000000000000000000000000000000000000000000\"}]",
           400, "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Token is for namespace '\xef\xbf\xbd', not 'z'\"}}\n");
    EXPECT(&f, "[\"ns.create\",\"a\\\"b\",{}]", 200,
           "{\"createdAt\":\"<TIME>\",\"namespace\":\"a\\\"b\",\"token\":\"ns_YSJi_<HEX64>\"}\n");
    EXPECT(&f, "[\"ns.create\",\"a\\\"b\"]", 409,
           "{\"error\":{\"code\":\"NAMESPACE_EXISTS\",\"message\":\"Namespace 'a\\\"b' already exists\"}}\n");
    fx_close(&f);
}

/* ------------------------------------------------------------------------
 * Batches
 * ---------------------------------------------------------------------- */

static void a_read_after_a_write_in_one_batch_should_see_the_write(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    static const char *const bodies[] = {
        "[\"stream.write\",\"b-1\",{\"type\":\"A\",\"data\":{\"n\":1}}]",
        "[\"stream.write\",\"b-1\",{\"type\":\"B\",\"data\":{\"n\":2}}]",
        "[\"stream.get\",\"b-1\"]",
        "[\"stream.writeBatch\",\"b-2\",[{\"type\":\"C\",\"data\":{}},{\"type\":\"D\",\"data\":{}}]]",
        "[\"stream.version\",\"b-2\"]",
        "[\"ns.info\",\"" NS "\"]",
    };
    lss_rpc_req q[6];
    for (int i = 0; i < 6; i++)
        q[i] = req_of(NS, bodies[i], strlen(bodies[i]));
    assert_int_equal(lss_rpc_batch(f.c, q, 6), LSS_OK);
    for (int i = 0; i < 6; i++)
        assert_json(q[i].resp, q[i].resp_n);
    expect_resp(&q[0], 200, "{\"globalPosition\":1,\"position\":0}\n", __LINE__);
    expect_resp(&q[1], 200, "{\"globalPosition\":2,\"position\":1}\n", __LINE__);
    expect_resp(&q[2], 200,
                "[[\"<UUID>\",\"A\",0,1,{\"n\":1},null,\"<TIME>\"],[\"<UUID>\",\"B\",1,2,{\"n\":2},null,\"<TIME>\"]]\n",
                __LINE__);
    expect_resp(&q[3], 200, "{\"count\":2,\"globalPosition\":4,\"position\":1}\n", __LINE__);
    expect_resp(&q[4], 200, "1\n", __LINE__);
    expect_resp(&q[5], 200,
                "{\"createdAt\":\"<TIME>\",\"description\":\"\",\"lastActivity\":\"<TIME>\","
                "\"messageCount\":4,\"namespace\":\"" NS "\",\"streamCount\":2}\n",
                __LINE__);
    assert_int_equal(q[0].method, LSS_RPC_STREAM_WRITE);
    assert_int_equal(q[3].method, LSS_RPC_STREAM_WRITE_BATCH);
    fx_close(&f);
}

/* LSS_RPC_MAY_DEFER: a flagged read runs after every write of the batch (it
 * sees later writes, and does not split them); an unflagged one keeps its
 * place; a flagged write or an envelope error is answered as usual. */
static void a_deferrable_read_should_run_after_the_batch_writes(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    static const char *const bodies[] = {
        "[\"stream.write\",\"d-1\",{\"type\":\"A\",\"data\":{}}]",
        "[\"stream.version\",\"d-1\"]",            /* deferred: sees both */
        "[\"stream.version\",\"d-1\"]",            /* in place: sees one */
        "[\"stream.get\",\"d-1\",{\"position\":1}]", /* deferred: row 1 */
        "[\"stream.write\",\"d-1\",{\"type\":\"B\",\"data\":{}}]",
        "[\"stream.version\"]",                      /* deferred, invalid */
        "[\"stream.write\",\"d-1\",{\"type\":\"C\",\"data\":{}},{\"expectedVersion\":1}]",
        "not json",
    };
    static const unsigned flags[] = {LSS_RPC_MAY_DEFER, LSS_RPC_MAY_DEFER, 0,
                                     LSS_RPC_MAY_DEFER, 0, LSS_RPC_MAY_DEFER,
                                     LSS_RPC_MAY_DEFER, LSS_RPC_MAY_DEFER};
    enum { N = 8 };
    lss_rpc_req q[N];
    for (int i = 0; i < N; i++) {
        q[i] = req_of(NS, bodies[i], strlen(bodies[i]));
        q[i].flags = flags[i];
    }
    assert_int_equal(lss_rpc_batch(f.c, q, N), LSS_OK);
    expect_resp(&q[0], 200, "{\"globalPosition\":1,\"position\":0}\n", __LINE__);
    expect_resp(&q[1], 200, "2\n", __LINE__);
    expect_resp(&q[2], 200, "0\n", __LINE__);
    expect_resp(&q[3], 200,
                "[[\"<UUID>\",\"B\",1,2,{},null,\"<TIME>\"],[\"<UUID>\",\"C\",2,3,{},null,\"<TIME>\"]]\n",
                __LINE__);
    expect_resp(&q[4], 200, "{\"globalPosition\":2,\"position\":1}\n", __LINE__);
    assert_int_equal(q[5].status, 400);
    assert_int_equal(q[5].method, LSS_RPC_STREAM_VERSION);
    expect_resp(&q[6], 200, "{\"globalPosition\":3,\"position\":2}\n", __LINE__);
    assert_int_equal(q[7].status, 400);
    assert_int_equal(q[1].method, LSS_RPC_STREAM_VERSION);
    assert_int_equal(q[3].method, LSS_RPC_STREAM_GET);
    for (int i = 0; i < N; i++)
        assert_json(q[i].resp, q[i].resp_n);
    fx_close(&f);
}

static void two_writes_expecting_the_same_version_in_one_batch_should_let_the_first_win(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    static const char *const bodies[] = {
        "[\"stream.write\",\"v-1\",{\"type\":\"A\",\"data\":{}},{\"expectedVersion\":-1}]",
        "[\"stream.write\",\"v-1\",{\"type\":\"B\",\"data\":{}},{\"expectedVersion\":-1}]",
        "[\"stream.write\",\"v-1\",{\"type\":\"C\"}]", /* invalid: answered at once */
        "[\"stream.writeBatch\",\"v-1\",[{\"type\":\"D\",\"data\":{}}],{\"expectedVersion\":0}]",
        "[\"nope\"]",
        "[\"stream.write\",\"v-2\",{\"type\":\"E\",\"data\":{}}]",
    };
    lss_rpc_req q[6];
    for (int i = 0; i < 6; i++)
        q[i] = req_of(NS, bodies[i], strlen(bodies[i]));
    assert_int_equal(lss_rpc_batch(f.c, q, 6), LSS_OK);
    expect_resp(&q[0], 200, "{\"globalPosition\":1,\"position\":0}\n", __LINE__);
    expect_resp(&q[1], 409,
                "{\"error\":{\"code\":\"STREAM_VERSION_CONFLICT\",\"message\":\"Expected version -1, "
                "stream is at version 0\",\"details\":{\"actual\":0,\"expected\":-1}}}\n",
                __LINE__);
    expect_resp(&q[2], 400, "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"message.data must be an object\"}}\n",
                __LINE__);
    expect_resp(&q[3], 200, "{\"count\":1,\"globalPosition\":2,\"position\":1}\n", __LINE__);
    expect_resp(&q[4], 404, "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: nope\"}}\n",
                __LINE__);
    expect_resp(&q[5], 200, "{\"globalPosition\":3,\"position\":0}\n", __LINE__);
    /* Idempotent retries inside one batch. */
    static const char *const again[] = {
        "[\"stream.writeBatch\",\"w-1\",[{\"type\":\"A\",\"data\":{},\"id\":\"11111111-1111-1111-1111-111111111111\"},"
        "{\"type\":\"B\",\"data\":{},\"id\":\"22222222-2222-2222-2222-222222222222\"}]]",
        "[\"stream.writeBatch\",\"w-1\",[{\"type\":\"A\",\"data\":{},\"id\":\"11111111-1111-1111-1111-111111111111\"},"
        "{\"type\":\"B\",\"data\":{},\"id\":\"22222222-2222-2222-2222-222222222222\"}]]",
        "[\"stream.write\",\"w-1\",{\"type\":\"X\",\"data\":{}},{\"id\":\"22222222-2222-2222-2222-222222222222\"}]",
    };
    for (int i = 0; i < 3; i++)
        q[i] = req_of(NS, again[i], strlen(again[i]));
    assert_int_equal(lss_rpc_batch(f.c, q, 3), LSS_OK);
    expect_resp(&q[0], 200, "{\"count\":2,\"globalPosition\":5,\"position\":1}\n", __LINE__);
    expect_resp(&q[1], 200, "{\"count\":2,\"globalPosition\":5,\"position\":1}\n", __LINE__);
    expect_resp(&q[2], 409,
                "{\"error\":{\"code\":\"DUPLICATE_MESSAGE_ID\",\"message\":\"Message ID "
                "'22222222-2222-2222-2222-222222222222' already exists\",\"details\":"
                "{\"id\":\"22222222-2222-2222-2222-222222222222\"}}}\n",
                __LINE__);
    fx_close(&f);
}

/* Requests of one batch may serve different namespaces. */
static void a_batch_should_serve_each_request_in_its_own_namespace(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    EXPECT(&f, "[\"ns.create\",\"other\"]", 200,
           "{\"createdAt\":\"<TIME>\",\"namespace\":\"other\",\"token\":\"ns_b3RoZXI_<HEX64>\"}\n");
    static const char w[] = "[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}}]";
    static const char g[] = "[\"stream.version\",\"s-1\"]";
    lss_rpc_req q[5] = {req_of(NS, w, sizeof w - 1), req_of("other", w, sizeof w - 1),
                        req_of(NS, w, sizeof w - 1), req_of("other", g, sizeof g - 1),
                        req_of(NS, g, sizeof g - 1)};
    assert_int_equal(lss_rpc_batch(f.c, q, 5), LSS_OK);
    expect_resp(&q[0], 200, "{\"globalPosition\":1,\"position\":0}\n", __LINE__);
    expect_resp(&q[1], 200, "{\"globalPosition\":1,\"position\":0}\n", __LINE__);
    expect_resp(&q[2], 200, "{\"globalPosition\":2,\"position\":1}\n", __LINE__);
    expect_resp(&q[3], 200, "0\n", __LINE__);
    expect_resp(&q[4], 200, "1\n", __LINE__);
    fx_close(&f);
}

static void a_deleted_namespace_should_give_backend_errors_with_each_prefix(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    write_msg(&f, "s-1", "T", "{}");
    lss_conn *other;
    assert_int_equal(lss_conn_open(f.db, &other), LSS_OK);
    assert_int_equal(lss_ns_delete(other, NS, strlen(NS), NULL, NULL), LSS_OK);
    lss_conn_close(other);
    static const struct {
        const char *body, *prefix;
    } cases[] = {
        {"[\"stream.write\",\"s-1\",{\"type\":\"T\",\"data\":{}}]", "Failed to write message"},
        {"[\"stream.writeBatch\",\"s-1\",[{\"type\":\"T\",\"data\":{}}]]", "Failed to write messages"},
        {"[\"stream.get\",\"s-1\"]", "Failed to get messages"},
        {"[\"stream.last\",\"s-1\"]", "Failed to get last message"},
        {"[\"stream.version\",\"s-1\"]", "Failed to get stream version"},
        {"[\"category.get\",\"s\"]", "Failed to get category messages"},
        {"[\"ns.streams\"]", "Failed to list streams"},
        {"[\"ns.categories\"]", "Failed to list categories"},
    };
    for (int pass = 0; pass < 2; pass++) {
        /* pass 1: no request namespace at all */
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            char want[256];
            snprintf(want, sizeof want,
                     "{\"error\":{\"code\":\"BACKEND_ERROR\",\"message\":\"%s: namespace not found\"}}\n",
                     cases[i].prefix);
            lss_rpc_req q = req_of(pass ? NULL : NS, cases[i].body, strlen(cases[i].body));
            assert_int_equal(lss_rpc_call(f.c, &q), LSS_OK);
            expect_resp(&q, 500, want, (int)i);
        }
    }
    /* Validation still comes first. */
    expect_bad(&f, "[\"stream.get\",\"\"]", "streamName must be a non-empty string", __LINE__);
    fx_close(&f);
}

static void the_null_store_flag_should_answer_without_touching_the_store(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    static const char *const bodies[] = {
        "[\"stream.write\",\"n-1\",{\"type\":\"T\",\"data\":{}}]",
        "[\"stream.get\",\"n-1\"]",
        "[\"ns.delete\",\"" NS "\"]",
        "[\"stream.write\"]",
    };
    for (int i = 0; i < 4; i++) {
        lss_rpc_req q = req_of(NS, bodies[i], strlen(bodies[i]));
        q.flags = LSS_RPC_NULL_STORE;
        assert_int_equal(lss_rpc_call(f.c, &q), LSS_OK);
        expect_resp(&q, 200, "{\"globalPosition\":1,\"position\":0}\n", i);
    }
    lss_rpc_req q = req_of(NS, "[\"x\"]", 5);
    q.flags = LSS_RPC_NULL_STORE;
    assert_int_equal(lss_rpc_call(f.c, &q), LSS_OK);
    assert_int_equal(q.status, 404);
    q = req_of(NS, "[", 1);
    q.flags = LSS_RPC_NULL_STORE;
    assert_int_equal(lss_rpc_call(f.c, &q), LSS_OK);
    assert_int_equal(q.status, 400);
    EXPECT(&f, "[\"stream.version\",\"n-1\"]", 200, "null\n");
    EXPECT(&f, "[\"ns.info\",\"" NS "\"]", 200,
           "{\"createdAt\":\"<TIME>\",\"description\":\"\",\"lastActivity\":null,"
           "\"messageCount\":0,\"namespace\":\"" NS "\",\"streamCount\":0}\n");
    fx_close(&f);
}

static void misuse_should_be_reported_without_crashing(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    lss_rpc_req q = req_of(NS, "[\"sys.version\"]", 15);
    assert_int_equal(lss_rpc_call(NULL, &q), LSS_EINVAL);
    assert_int_equal(q.status, 500);
    assert_int_equal(lss_rpc_call(f.c, NULL), LSS_EINVAL);
    assert_int_equal(lss_rpc_batch(f.c, NULL, 3), LSS_EINVAL);
    assert_int_equal(lss_rpc_batch(f.c, &q, 0), LSS_OK);
    /* An open cursor on the session. */
    lss_cursor *cur;
    assert_int_equal(lss_read_stream(f.c, NS, strlen(NS), "s-1", 3, NULL, &cur), LSS_OK);
    q = req_of(NS, "[\"sys.version\"]", 15);
    assert_int_equal(lss_rpc_call(f.c, &q), LSS_EMISUSE);
    assert_int_equal(q.status, 500);
    assert_json(q.resp, q.resp_n);
    lss_cursor_close(cur);
    /* A NULL body with a length. */
    q = req_of(NS, NULL, 5);
    assert_int_equal(lss_rpc_call(f.c, &q), LSS_OK);
    assert_int_equal(q.status, 400);
    assert_json(q.resp, q.resp_n);
    fx_close(&f);
}

/* ------------------------------------------------------------------------
 * Memory
 * ---------------------------------------------------------------------- */

static size_t w1_body(char *b, size_t cap, long k)
{
    return (size_t)snprintf(
        b, cap,
        "[\"stream.write\",\"test-stream-%ld\",{\"type\":\"TestEvent\",\"data\":{\"counter\":%ld,"
        "\"payload\":\"test data for profiling with some content to make it realistic\","
        "\"nested\":{\"field1\":\"value1\",\"field2\":42,\"field3\":true}},\"metadata\":"
        "{\"correlationStreamName\":\"test-correlation\",\"source\":\"load-test\"}}]",
        k % 100, k);
}

static void w1(fx *f, long k)
{
    char body[512], read[128];
    size_t n = w1_body(body, sizeof body, k);
    lss_rpc_req q = req_of(f->ns, body, n);
    assert_int_equal(lss_rpc_call(f->c, &q), LSS_OK);
    assert_int_equal(q.status, 200);
    n = (size_t)snprintf(read, sizeof read,
                         "[\"stream.get\",\"test-stream-%ld\",{\"position\":0,\"batchSize\":10}]",
                         k % 100);
    q = req_of(f->ns, read, n);
    assert_int_equal(lss_rpc_call(f->c, &q), LSS_OK);
    assert_int_equal(q.status, 200);
    assert_int_equal(q.resp[0], '[');
}

static void steady_state_writes_and_reads_should_not_allocate(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    long k = 0;
    for (; k < 2000; k++) /* warm-up: every stream reaches 10+ messages */
        w1(&f, k);
    long before = counting_alloc_calls(&f.ca);
    for (long end = k + 10000; k < end; k++)
        w1(&f, k);
    assert_int_equal(counting_alloc_calls(&f.ca) - before, 0);

    /* The same through a batch of 16 writes and a read. */
    char bodies[17][512];
    lss_rpc_req q[17];
    for (int round = 0; round < 200; round++) {
        if (round == 100)
            before = counting_alloc_calls(&f.ca);
        for (int i = 0; i < 16; i++) {
            size_t n = w1_body(bodies[i], sizeof bodies[i], k++);
            q[i] = req_of(NS, bodies[i], n);
        }
        size_t n = (size_t)snprintf(bodies[16], sizeof bodies[16],
                                    "[\"stream.get\",\"test-stream-7\",{\"batchSize\":10}]");
        q[16] = req_of(NS, bodies[16], n);
        assert_int_equal(lss_rpc_batch(f.c, q, 17), LSS_OK);
        for (int i = 0; i < 17; i++)
            assert_int_equal(q[i].status, 200);
    }
    assert_int_equal(counting_alloc_calls(&f.ca) - before, 0);
    fx_close(&f);
}

static void large_payloads_and_many_rows_should_fit_in_responses(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NS, "");
    size_t big = 100 * 1024;
    char *body = malloc(big + 256);
    assert_non_null(body);
    for (int i = 0; i < 5; i++) {
        size_t n = (size_t)sprintf(body, "[\"stream.write\",\"big-1\",{\"type\":\"T\",\"data\":{\"s\":\"");
        memset(body + n, 'a' + i, big);
        n += big;
        n += (size_t)sprintf(body + n, "\"}}]");
        lss_rpc_req q = call_n(&f, body, n);
        assert_int_equal(q.status, 200);
    }
    lss_rpc_req q = call(&f, "[\"stream.get\",\"big-1\"]");
    assert_int_equal(q.status, 200);
    cJSON *j = cJSON_ParseWithLength(q.resp, q.resp_n);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), 5);
    for (int i = 0; i < 5; i++) {
        cJSON *s = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetArrayItem(j, i), 4), "s");
        assert_true(cJSON_IsString(s));
        assert_int_equal(strlen(s->valuestring), big);
        assert_int_equal(s->valuestring[0], 'a' + i);
        assert_int_equal(s->valuestring[big - 1], 'a' + i);
    }
    cJSON_Delete(j);

    /* 10,000 rows written by 10 batches of 1000 in one lss_rpc_batch. */
    char *bb = malloc(64 * 1024);
    assert_non_null(bb);
    size_t n = (size_t)sprintf(bb, "[\"stream.writeBatch\",\"many-1\",[");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(bb + n, "%s{\"type\":\"T\",\"data\":{\"i\":%d}}", i ? "," : "", i);
    n += (size_t)sprintf(bb + n, "]]");
    lss_rpc_req w[10];
    for (int i = 0; i < 10; i++)
        w[i] = req_of(NS, bb, n);
    assert_int_equal(lss_rpc_batch(f.c, w, 10), LSS_OK);
    for (int i = 0; i < 10; i++) {
        char want[128];
        snprintf(want, sizeof want, "{\"count\":1000,\"globalPosition\":%d,\"position\":%d}\n",
                 5 + 1000 * (i + 1), 1000 * (i + 1) - 1);
        expect_resp(&w[i], 200, want, i);
    }
    static const char *const reads[] = {
        "[\"stream.get\",\"many-1\",{\"batchSize\":-1}]",
        "[\"sys.version\"]",
        "[\"category.get\",\"many\",{\"batchSize\":10000}]",
        "[\"stream.get\",\"big-1\",{\"batchSize\":1}]",
    };
    lss_rpc_req r[4];
    for (int i = 0; i < 4; i++)
        r[i] = req_of(NS, reads[i], strlen(reads[i]));
    assert_int_equal(lss_rpc_batch(f.c, r, 4), LSS_OK);
    /* Every view is valid after the buffer grew behind the earlier ones. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].status, 200);
        assert_json(r[i].resp, r[i].resp_n);
    }
    expect_resp(&r[1], 200, "\"0.7.0\"\n", __LINE__);
    for (int i = 0; i < 3; i += 2) {
        j = cJSON_ParseWithLength(r[i].resp, r[i].resp_n);
        assert_non_null(j);
        assert_int_equal(cJSON_GetArraySize(j), 10000);
        cJSON *last = cJSON_GetArrayItem(j, 9999);
        int data_at = i == 0 ? 4 : 5;
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(last, data_at), "i")->valueint, 999);
        cJSON_Delete(j);
    }
    assert_true(r[3].resp_n > big);
    free(bb);
    free(body);
    fx_close(&f);
}

/* Every allocation failure is reported as a response, never a crash, and
 * leaks nothing. */
static void every_allocation_failure_should_fail_cleanly(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "[\"stream.write\",\"f-1\",{\"type\":\"T\",\"data\":{}}]",
        "[\"stream.writeBatch\",\"f\\u002d1\",[{\"type\":\"T\",\"data\":{},\"id\":\"\\u00312345678-1234-1234-1234-123456789abc\"}]]",
        "[\"stream.get\",\"f-1\",{\"types\":[\"\\u0054\"]}]",
        "[\"ns.list\"]",
        "[\"unknown\\u002emethod\"]",
        "[\"ns.create\",\"g\",{\"token\":\"ns_eA_0000000000000000000000000000000000000000000000000000000000000000\"}]",
        "[\"category.get\",\"f\"]",
    };
    for (long k = 1;; k++) {
        fx f;
        fx_open(&f, NS, "");
        f.ca.fail_at = f.ca.calls + k;
        f.ca.fail_after = 1;
        lss_rpc_req q[7];
        for (int i = 0; i < 7; i++)
            q[i] = req_of(NS, bodies[i], strlen(bodies[i]));
        int rc = lss_rpc_batch(f.c, q, 7);
        assert_true(rc == LSS_OK || rc == LSS_ENOMEM);
        int all_ok = 1;
        for (int i = 0; i < 7; i++) {
            assert_non_null(q[i].resp);
            assert_json(q[i].resp, q[i].resp_n);
            assert_true(q[i].status >= 200 && q[i].status <= 500);
            if (q[i].status >= 500)
                all_ok = 0;
        }
        int reached = f.ca.calls >= f.ca.fail_at;
        f.ca.fail_at = 0;
        /* The session recovers once memory is back. */
        lss_rpc_req again = req_of(NS, bodies[3], strlen(bodies[3]));
        assert_int_equal(lss_rpc_call(f.c, &again), LSS_OK);
        assert_int_equal(again.status, 200);
        fx_close(&f);
        if (!reached) {
            assert_true(all_ok);
            break;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appendix_a_data_exchanges_should_be_reproduced),
        cmocka_unit_test(appendix_a_namespace_exchanges_should_be_reproduced),
        cmocka_unit_test(every_validation_message_should_be_exact_and_first_failure_wins),
        cmocka_unit_test(size_limits_should_be_checked),
        cmocka_unit_test(envelope_errors_should_follow_the_processing_order),
        cmocka_unit_test(every_method_should_report_its_id),
        cmocka_unit_test(numbers_should_be_converted_as_protocol_1_4_says),
        cmocka_unit_test(version_conflicts_should_report_minus_one_for_an_empty_stream),
        cmocka_unit_test(payloads_should_come_back_byte_for_byte),
        cmocka_unit_test(categories_correlation_groups_and_types_should_filter),
        cmocka_unit_test(ns_create_should_accept_its_own_token_and_report_the_creation_time),
        cmocka_unit_test(a_read_after_a_write_in_one_batch_should_see_the_write),
        cmocka_unit_test(a_deferrable_read_should_run_after_the_batch_writes),
        cmocka_unit_test(two_writes_expecting_the_same_version_in_one_batch_should_let_the_first_win),
        cmocka_unit_test(a_batch_should_serve_each_request_in_its_own_namespace),
        cmocka_unit_test(a_deleted_namespace_should_give_backend_errors_with_each_prefix),
        cmocka_unit_test(the_null_store_flag_should_answer_without_touching_the_store),
        cmocka_unit_test(misuse_should_be_reported_without_crashing),
        cmocka_unit_test(steady_state_writes_and_reads_should_not_allocate),
        cmocka_unit_test(large_payloads_and_many_rows_should_fit_in_responses),
        cmocka_unit_test(every_allocation_failure_should_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
