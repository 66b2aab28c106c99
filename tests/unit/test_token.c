/* test_token.c — namespace tokens (PROTOCOL.md 4.1-4.3), the base64url
 * codec with Go's error offsets, SHA-256 helpers and storage names (10.2). */
#include "testutil.h"

#include <stdio.h>

#include "internal.h"
#include "token.h"

#define S(lit) (lit), (sizeof(lit) - 1)
#define ZEROS64 "0000000000000000000000000000000000000000000000000000000000000000"
#define HEX64 "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdef0123"

/* Parse a NUL-terminated token; returns the code, the id or error text. */
static int parse(const char *t, char *ns, size_t *ns_n, char *err)
{
    return lss__token_parse(t, strlen(t), ns, LSS_NS_ID_MAX, ns_n, err,
                            LSS_TOKEN_ERR_MAX);
}

static void assert_token_names(const char *t, const char *want)
{
    char ns[LSS_NS_ID_MAX], err[LSS_TOKEN_ERR_MAX] = "";
    size_t ns_n = 0;
    if (parse(t, ns, &ns_n, err) != LSS_OK) {
        print_error("'%s' rejected: %s\n", t, err);
        fail();
    }
    assert_span_equal(ns, ns_n, want);
}

static void assert_token_error(const char *t, size_t n, const char *want)
{
    char ns[LSS_NS_ID_MAX], err[LSS_TOKEN_ERR_MAX];
    size_t ns_n = 12345;
    memset(err, '#', sizeof err);
    int rc = lss__token_parse(t, n, ns, sizeof ns, &ns_n, err, sizeof err);
    if (rc != LSS_ETOKEN) {
        print_error("'%.*s' gave %d\n", (int)n, t, rc);
        fail();
    }
    assert_int_equal(ns_n, 12345);
    assert_string_equal(err, want);
}

#define ASSERT_TOKEN_ERROR(lit, text) \
    assert_token_error(S(lit), "invalid token format: " text)

static void encode_should_match_the_section_4_1_table(void **state)
{
    (void)state;
    static const struct {
        const char *ns, *b;
    } rows[] = {
        {"default", "ZGVmYXVsdA"},
        {"tenant-a", "dGVuYW50LWE"},
        {"t_0_m5x2k1_ab12", "dF8wX201eDJrMV9hYjEy"},
        {"ab?", "YWI_"},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(rows); i++) {
        char out[64];
        size_t n = 0;
        assert_int_equal(lss__b64url_encode(rows[i].ns, strlen(rows[i].ns),
                                            out, sizeof out, &n),
                         LSS_OK);
        assert_span_equal(out, n, rows[i].b);
    }
}

static void encode_should_match_rfc_4648_vectors_without_padding(void **state)
{
    (void)state;
    static const char *want[] = {"",        "Zg",       "Zm8",     "Zm9v",
                                 "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t len = 0; len < LSS_ARRAY_LEN(want); len++) {
        char out[16];
        size_t n = 99;
        assert_int_equal(lss__b64url_encode("foobar", len, out, sizeof out, &n),
                         LSS_OK);
        assert_span_equal(out, n, want[len]);
        assert_int_equal(n, LSS_B64URL_LEN(len));
    }
    char out[4];
    size_t n = 0;
    assert_int_equal(lss__b64url_encode("\xfb\xff", 2, out, sizeof out, &n),
                     LSS_OK);
    assert_span_equal(out, n, "-_8");
}

static void encode_should_report_the_size_when_out_of_space(void **state)
{
    (void)state;
    char out[8];
    memset(out, '#', sizeof out);
    size_t n = 0;
    assert_int_equal(lss__b64url_encode("default", 7, out, 9, &n), LSS_ENOSPACE);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], '#');
}

static void decode_should_reverse_encode_for_every_length(void **state)
{
    (void)state;
    unsigned char in[64], back[64];
    char text[LSS_B64URL_LEN(64)];
    for (size_t len = 0; len <= sizeof in; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)(i * 37 + len);
        size_t tn = 0, bn = 0, bad = 0;
        assert_int_equal(lss__b64url_encode(in, len, text, sizeof text, &tn),
                         LSS_OK);
        assert_int_equal(
            lss__b64url_decode(text, tn, back, sizeof back, &bn, &bad), LSS_OK);
        assert_int_equal(bn, len);
        assert_memory_equal(in, back, len);
    }
}

static void assert_decode_fails_at(const char *s, size_t n, size_t want)
{
    unsigned char out[32];
    size_t len = 0, bad = 999;
    assert_int_equal(lss__b64url_decode(s, n, out, sizeof out, &len, &bad),
                     LSS_EINVAL);
    assert_int_equal(bad, want);
}

/* Offsets as Go's base64.RawURLEncoding.DecodeString reports them. */
static void decode_should_report_go_byte_offsets(void **state)
{
    (void)state;
    assert_decode_fails_at(S("ZGVmYXVsdA="), 10);  /* padding is illegal */
    assert_decode_fails_at(S("ZGVmYXVsdA=="), 10);
    assert_decode_fails_at(S("ZG=VmYXVsdA"), 2);
    assert_decode_fails_at(S("ZGVm+XVsdA"), 4);    /* std alphabet */
    assert_decode_fails_at(S("ZGVmYXVsdA/"), 10);
    assert_decode_fails_at(S("YWI/"), 3);
    assert_decode_fails_at(S("ZGVm YXVsdA"), 4);   /* space */
    assert_decode_fails_at(S("ZGVm\0YXVsdA"), 4);  /* NUL */
    assert_decode_fails_at(S("ZGVm\xc3\xa9"), 4);  /* non-ASCII */
    assert_decode_fails_at(S("ZGVmY"), 4);         /* 1 mod 4 */
    assert_decode_fails_at(S("A"), 0);
    assert_decode_fails_at(S("ZGVmYXVsdAAAA"), 12);
    /* A lone last character is reported at len - 1, CR/LF included. */
    assert_decode_fails_at(S("ZGVmY\n"), 5);
    assert_decode_fails_at(S("A\n\n"), 2);
    assert_decode_fails_at(S("A\r"), 1);
    /* An illegal byte wins over a bad length. */
    assert_decode_fails_at(S("ZGV=m"), 3);
}

static void decode_should_skip_cr_and_lf(void **state)
{
    (void)state;
    char out[16];
    size_t n = 0, bad = 0;
    assert_int_equal(lss__b64url_decode(S("ZGVm\r\nYXVsdA"), out, sizeof out,
                                        &n, &bad),
                     LSS_OK);
    assert_span_equal(out, n, "default");
    assert_int_equal(lss__b64url_decode(S("ZGVmYXVsd\nA\r"), out, sizeof out,
                                        &n, &bad),
                     LSS_OK);
    assert_span_equal(out, n, "default");
    assert_int_equal(lss__b64url_decode(S("\n\r\n"), out, sizeof out, &n, &bad),
                     LSS_OK);
    assert_int_equal(n, 0);
}

static void decode_should_tolerate_nonzero_padding_bits(void **state)
{
    (void)state;
    char out[16];
    size_t n = 0, bad = 0;
    assert_int_equal(lss__b64url_decode(S("ZGVmYXVsdB"), out, sizeof out, &n,
                                        &bad),
                     LSS_OK);
    assert_span_equal(out, n, "default");
    assert_int_equal(lss__b64url_decode(S("Zm9"), out, sizeof out, &n, &bad),
                     LSS_OK);
    assert_span_equal(out, n, "fo");
    assert_int_equal(lss__b64url_decode(S("Zm_"), out, sizeof out, &n, &bad),
                     LSS_OK);
    assert_int_equal(n, 2);
}

static void decode_should_validate_before_checking_space(void **state)
{
    (void)state;
    size_t n = 0, bad = 0;
    assert_int_equal(lss__b64url_decode(S("ZGVmYXVsdA"), NULL, 0, &n, &bad),
                     LSS_ENOSPACE);
    assert_int_equal(n, 7);
    assert_int_equal(lss__b64url_decode(S("ZGVmYXVsdA="), NULL, 0, &n, &bad),
                     LSS_EINVAL);
    assert_int_equal(bad, 10);
    char out[6] = "#####";
    assert_int_equal(lss__b64url_decode(S("ZGVmYXVsdA"), out, 6, &n, &bad),
                     LSS_ENOSPACE);
    assert_string_equal(out, "#####");
}

static void token_parse_should_return_the_namespace(void **state)
{
    (void)state;
    assert_token_names("ns_ZGVmYXVsdA_" ZEROS64, "default");
    assert_token_names("ns_dGVuYW50LWE_" HEX64, "tenant-a");
    assert_token_names("ns_dF8wX201eDJrMV9hYjEy_" ZEROS64, "t_0_m5x2k1_ab12");
}

static void token_parse_should_accept_underscores_in_the_namespace_part(
    void **state)
{
    (void)state;
    assert_token_names("ns_YWI__" ZEROS64, "ab?");
    /* "a_b" decodes (3 characters), so three parts are fine. */
    char ns[8];
    size_t n = 0;
    assert_int_equal(lss__b64url_decode(S("a_b"), ns, sizeof ns, &n, NULL),
                     LSS_OK);
    char tok[128];
    snprintf(tok, sizeof tok, "ns_a_b_%s", ZEROS64);
    char got[LSS_NS_ID_MAX], err[LSS_TOKEN_ERR_MAX];
    size_t got_n = 0;
    assert_int_equal(parse(tok, got, &got_n, err), LSS_OK);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, ns, n);
}

static void token_parse_should_accept_upper_case_hex(void **state)
{
    (void)state;
    assert_token_names("ns_ZGVmYXVsdA_"
                       "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
                       "0123456789",
                       "default");
}

static void step_1_should_require_the_ns_prefix(void **state)
{
    (void)state;
    ASSERT_TOKEN_ERROR("", "missing 'ns_' prefix");
    ASSERT_TOKEN_ERROR("ns", "missing 'ns_' prefix");
    ASSERT_TOKEN_ERROR("invalid-token", "missing 'ns_' prefix");
    ASSERT_TOKEN_ERROR("NS_ZGVmYXVsdA_" ZEROS64, "missing 'ns_' prefix");
    ASSERT_TOKEN_ERROR(" ns_ZGVmYXVsdA_" ZEROS64, "missing 'ns_' prefix");
    ASSERT_TOKEN_ERROR("ns-ZGVmYXVsdA_" ZEROS64, "missing 'ns_' prefix");
    assert_token_error(NULL, 0, "invalid token format: missing 'ns_' prefix");
}

static void step_2_should_require_two_parts(void **state)
{
    (void)state;
    ASSERT_TOKEN_ERROR("ns_", "expected 2 parts after prefix, got 1");
    ASSERT_TOKEN_ERROR("ns_ZGVmYXVsdA", "expected 2 parts after prefix, got 1");
    ASSERT_TOKEN_ERROR("ns_" ZEROS64, "expected 2 parts after prefix, got 1");
}

static void step_4_should_reject_extra_parts_that_do_not_decode(void **state)
{
    (void)state;
    ASSERT_TOKEN_ERROR("ns_a_b_c", "expected 2 parts after prefix, got 3");
    ASSERT_TOKEN_ERROR("ns_YWI__abc", "expected 2 parts after prefix, got 3");
    ASSERT_TOKEN_ERROR("ns_YWI__" ZEROS64 "0",
                       "expected 2 parts after prefix, got 3");
    ASSERT_TOKEN_ERROR("ns_YWI__g" ZEROS64,
                       "expected 2 parts after prefix, got 3");
    /* B = "_" is one character: it does not decode. */
    ASSERT_TOKEN_ERROR("ns___" ZEROS64, "expected 2 parts after prefix, got 3");
    ASSERT_TOKEN_ERROR("ns_YW=_I_" ZEROS64,
                       "expected 2 parts after prefix, got 3");
    ASSERT_TOKEN_ERROR("ns_a_b_c_d_e", "expected 2 parts after prefix, got 5");
    ASSERT_TOKEN_ERROR("ns____", "expected 2 parts after prefix, got 4");
}

static void step_5_should_require_64_hex_characters(void **state)
{
    (void)state;
    ASSERT_TOKEN_ERROR("ns_ZGVmYXVsdA_",
                       "random part must be 64 hex characters, got 0");
    ASSERT_TOKEN_ERROR("ns_ZGVmYXVsdA_abc",
                       "random part must be 64 hex characters, got 3");
    ASSERT_TOKEN_ERROR("ns_ZGVmYXVsdA_" ZEROS64 "0",
                       "random part must be 64 hex characters, got 65");
    /* Length in bytes: "é" counts twice. */
    ASSERT_TOKEN_ERROR("ns_ZGVmYXVsdA_\xc3\xa9",
                       "random part must be 64 hex characters, got 2");
    /* Checked before B decodes. */
    ASSERT_TOKEN_ERROR("ns_=_abc", "random part must be 64 hex characters, got 3");
}

static void hex_token(char *tok, size_t cap, size_t at, const char *bad)
{
    char h[65];
    memcpy(h, ZEROS64, 65);
    memcpy(h + at, bad, strlen(bad));
    snprintf(tok, cap, "ns_ZGVmYXVsdA_%s", h);
}

static void assert_hex_error(size_t at, const char *bad, const char *want)
{
    char tok[128], msg[LSS_TOKEN_ERR_MAX];
    hex_token(tok, sizeof tok, at, bad);
    snprintf(msg, sizeof msg,
             "invalid token format: random part is not valid hexadecimal: "
             "encoding/hex: invalid byte: %s",
             want);
    assert_token_error(tok, strlen(tok), msg);
}

/* Go prints the byte with %#U: the quoted character only when
 * strconv.IsPrint, and then UTF-8 encoded (byte 0xC3 prints as U+00C3). */
static void step_6_should_name_the_first_bad_byte_as_go_does(void **state)
{
    (void)state;
    assert_hex_error(10, "g", "U+0067 'g'");
    assert_hex_error(0, "Z", "U+005A 'Z'");
    assert_hex_error(63, "x", "U+0078 'x'");
    assert_hex_error(5, "x", "U+0078 'x'");
    assert_hex_error(3, "gz", "U+0067 'g'");
    assert_hex_error(4, " ", "U+0020 ' '");
    assert_hex_error(4, "'", "U+0027 '''");
    assert_hex_error(4, "~", "U+007E '~'");
    assert_hex_error(4, "\n", "U+000A");
    assert_hex_error(4, "\x7f", "U+007F");
    assert_hex_error(4, "\x01", "U+0001");
    assert_hex_error(4, "\xc3\xa9", "U+00C3 '\xc3\x83'");
    assert_hex_error(4, "\xe2\x82\xac", "U+00E2 '\xc3\xa2'");
    assert_hex_error(4, "\xff", "U+00FF '\xc3\xbf'");
    assert_hex_error(4, "\xa1", "U+00A1 '\xc2\xa1'");
    assert_hex_error(4, "\xa0", "U+00A0");
    assert_hex_error(4, "\xad", "U+00AD");
    assert_hex_error(4, "\x80", "U+0080");
    assert_hex_error(4, "\x9f", "U+009F");
}

static void step_6_should_name_a_nul_byte(void **state)
{
    (void)state;
    char tok[14 + 64];
    memcpy(tok, "ns_ZGVmYXVsdA_", 14);
    memcpy(tok + 14, ZEROS64, 64);
    tok[14 + 7] = '\0';
    assert_token_error(tok, sizeof tok,
                       "invalid token format: random part is not valid "
                       "hexadecimal: encoding/hex: invalid byte: U+0000");
}

static void step_6_should_come_before_the_namespace_part(void **state)
{
    (void)state;
    ASSERT_TOKEN_ERROR("ns_=_g" "000000000000000000000000000000000000000000000"
                       "000000000000000000",
                       "random part is not valid hexadecimal: encoding/hex: "
                       "invalid byte: U+0067 'g'");
}

static void step_7_should_report_the_base64_offset(void **state)
{
    (void)state;
#define B64_ERR "namespace part is not valid base64url: illegal base64 data at input byte "
    ASSERT_TOKEN_ERROR("ns_ZGVmYXVsdA=_" ZEROS64, B64_ERR "10");
    ASSERT_TOKEN_ERROR("ns_ZGVm+XVsdA_" ZEROS64, B64_ERR "4");
    ASSERT_TOKEN_ERROR("ns_ZGVm/XVsdA_" ZEROS64, B64_ERR "4");
    ASSERT_TOKEN_ERROR("ns_ZGVmY_" ZEROS64, B64_ERR "4");
    ASSERT_TOKEN_ERROR("ns_A_" ZEROS64, B64_ERR "0");
    ASSERT_TOKEN_ERROR("ns_ZGVmY\n_" ZEROS64, B64_ERR "5");
    ASSERT_TOKEN_ERROR("ns_ZG Vm_" ZEROS64, B64_ERR "2");
    ASSERT_TOKEN_ERROR("ns_ZGVm\xc3\xa9_" ZEROS64, B64_ERR "4");
#undef B64_ERR
}

static void step_7_should_skip_newlines_and_tolerate_padding_bits(void **state)
{
    (void)state;
    assert_token_names("ns_ZGVm\r\nYXVsdA_" ZEROS64, "default");
    assert_token_names("ns_ZGVmYXVsdB_" ZEROS64, "default");
}

static void step_8_should_reject_an_empty_namespace(void **state)
{
    (void)state;
    ASSERT_TOKEN_ERROR("ns__" ZEROS64, "namespace is empty");
    ASSERT_TOKEN_ERROR("ns_\n_" ZEROS64, "namespace is empty");
    ASSERT_TOKEN_ERROR("ns_\r\n\r\n_" ZEROS64, "namespace is empty");
}

static void token_parse_should_report_the_size_when_out_of_space(void **state)
{
    (void)state;
    char ns[4] = "###";
    char err[LSS_TOKEN_ERR_MAX] = "junk";
    size_t n = 0;
    const char *t = "ns_ZGVmYXVsdA_" ZEROS64;
    assert_int_equal(lss__token_parse(t, strlen(t), ns, 3, &n, err, sizeof err),
                     LSS_ENOSPACE);
    assert_int_equal(n, 7);
    assert_string_equal(ns, "###");
    assert_string_equal(err, "");
}

static void token_parse_should_truncate_its_error_text(void **state)
{
    (void)state;
    char ns[8], err[16];
    size_t n = 0;
    assert_int_equal(lss__token_parse(S("bogus"), ns, sizeof ns, &n, err,
                                      sizeof err),
                     LSS_ETOKEN);
    assert_string_equal(err, "invalid token f");
    assert_int_equal(lss__token_parse(S("bogus"), ns, sizeof ns, &n, NULL, 0),
                     LSS_ETOKEN);
}

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void generate_should_build_prefix_base64_and_64_lower_hex(void **state)
{
    (void)state;
    char tok[LSS__TOKEN_LEN(LSS_NS_ID_MAX)];
    size_t n = 0;
    assert_int_equal(lss__token_generate(S("default"), tok, sizeof tok, &n),
                     LSS_OK);
    assert_int_equal(n, 3 + 10 + 1 + 64);
    assert_memory_equal(tok, "ns_ZGVmYXVsdA_", 14);
    for (size_t i = 14; i < n; i++)
        assert_true(is_lower_hex(tok[i]));
    char tok2[LSS__TOKEN_LEN(LSS_NS_ID_MAX)];
    size_t n2 = 0;
    assert_int_equal(lss__token_generate(S("default"), tok2, sizeof tok2, &n2),
                     LSS_OK);
    assert_int_equal(n2, n);
    assert_true(memcmp(tok + 14, tok2 + 14, 64) != 0);
}

static void generate_should_refuse_an_empty_namespace(void **state)
{
    (void)state;
    char tok[128];
    size_t n = 0;
    assert_int_equal(lss__token_generate("", 0, tok, sizeof tok, &n),
                     LSS_EINVAL);
    assert_int_equal(lss__token_generate(NULL, 0, tok, sizeof tok, &n),
                     LSS_EINVAL);
}

static void generate_should_report_the_size_when_out_of_space(void **state)
{
    (void)state;
    char tok[77];
    memset(tok, '#', sizeof tok);
    size_t n = 0;
    assert_int_equal(lss__token_generate(S("default"), tok, sizeof tok, &n),
                     LSS_ENOSPACE);
    assert_int_equal(n, 78);
    for (size_t i = 0; i < sizeof tok; i++)
        assert_int_equal(tok[i], '#');
}

static void longest_token_should_fit_lss_token_max(void **state)
{
    (void)state;
    char ns[LSS_NS_ID_MAX];
    memset(ns, 'x', sizeof ns);
    char tok[LSS_TOKEN_MAX];
    size_t n = 0;
    assert_int_equal(lss__token_generate(ns, sizeof ns, tok, sizeof tok, &n),
                     LSS_OK);
    assert_int_equal(n, LSS_TOKEN_MAX);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void parse_should_invert_generate_for_any_bytes(void **state)
{
    (void)state;
    uint64_t seed = 0x243f6a8885a308d3u;
    for (size_t len = 1; len <= LSS_NS_ID_MAX; len++) {
        for (int rep = 0; rep < 8; rep++) {
            char ns[LSS_NS_ID_MAX], got[LSS_NS_ID_MAX];
            char tok[LSS_TOKEN_MAX], err[LSS_TOKEN_ERR_MAX] = "";
            for (size_t i = 0; i < len; i++) {
                /* Favour bytes that put '_' and '-' in the base64 text. */
                uint64_t r = xorshift(&seed);
                ns[i] = (char)(rep < 2 ? (r & 1 ? 0xff : 0xfb) : r);
            }
            size_t tn = 0, gn = 0;
            assert_int_equal(lss__token_generate(ns, len, tok, sizeof tok, &tn),
                             LSS_OK);
            int rc = lss__token_parse(tok, tn, got, sizeof got, &gn, err,
                                      sizeof err);
            if (rc != LSS_OK) {
                print_error("'%.*s': %s\n", (int)tn, tok, err);
                fail();
            }
            assert_int_equal(gn, len);
            assert_memory_equal(got, ns, len);
        }
    }
}

static void sha256_hex_should_match_the_section_4_3_example(void **state)
{
    (void)state;
    char hex[LSS_SHA256_HEX_LEN + 1];
    hex[LSS_SHA256_HEX_LEN] = '#';
    assert_int_equal(lss__sha256_hex(S("ns_ZGVmYXVsdA_" ZEROS64), hex), LSS_OK);
    assert_int_equal(hex[LSS_SHA256_HEX_LEN], '#');
    assert_memory_equal(
        hex, "6fefedfc989ca8bea8ce1b63672607c06fbd0d8b3c0667164cf4f5a02911fb52",
        64);
    assert_int_equal(lss__sha256_hex(NULL, 0, hex), LSS_OK);
    assert_memory_equal(
        hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        64);
}

static void ct_equal_should_compare_bytes(void **state)
{
    (void)state;
    assert_true(lss__ct_equal("abcdef", "abcdef", 6));
    assert_false(lss__ct_equal("abcdef", "abcdeF", 6));
    assert_false(lss__ct_equal("xbcdef", "abcdef", 6));
    assert_true(lss__ct_equal("a", "b", 0));
    assert_true(lss__ct_equal(NULL, NULL, 0));
}

static void assert_storage_name(const char *id, size_t n, const char *want)
{
    char out[LSS_STORAGE_NAME_MAX];
    size_t len = 0;
    assert_int_equal(
        lss__storage_name(id, n, LSS__STORAGE_ENCODED, out, sizeof out, &len),
        LSS_OK);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
}

static void storage_name_should_follow_the_section_10_2_examples(void **state)
{
    (void)state;
    assert_storage_name(S("t_0_m5x2k1_ab12"), "ns-t_0_m5x2k1_ab12.db");
    assert_storage_name(S("Tenant.A"), "ns-%54enant%2E%41.db");
    assert_storage_name(S("default"), "ns-default.db");
    assert_storage_name(S("test-a-1700000000000-x9"),
                        "ns-test-a-1700000000000-x9.db");
    assert_storage_name(S("a%b c"), "ns-a%25b%20c.db");
    assert_storage_name(S("\xc3\xa9\x01"), "ns-%C3%A9%01.db");
}

static void storage_name_should_never_contain_a_slash(void **state)
{
    (void)state;
    assert_storage_name(S("../../x"), "ns-%2E%2E%2F%2E%2E%2Fx.db");
    assert_storage_name(S("/etc/passwd"), "ns-%2Fetc%2Fpasswd.db");
    assert_storage_name(S(".."), "ns-%2E%2E.db");
    assert_storage_name(S("a\\b"), "ns-a%5Cb.db");
}

static void storage_name_should_keep_case_apart(void **state)
{
    (void)state;
    char a[LSS_STORAGE_NAME_MAX], b[LSS_STORAGE_NAME_MAX];
    size_t an = 0, bn = 0;
    lss__storage_name(S("acme"), LSS__STORAGE_ENCODED, a, sizeof a, &an);
    lss__storage_name(S("ACME"), LSS__STORAGE_ENCODED, b, sizeof b, &bn);
    assert_string_not_equal(a, b);
    assert_string_equal(b, "ns-%41%43%4D%45.db");
}

static void storage_name_should_allow_200_encoded_bytes(void **state)
{
    (void)state;
    char id[255], out[LSS_STORAGE_NAME_MAX];
    size_t len = 0;
    memset(id, 'a', sizeof id);
    assert_int_equal(lss__storage_name(id, 200, LSS__STORAGE_ENCODED, out,
                                       sizeof out, &len),
                     LSS_OK);
    assert_int_equal(len, LSS_STORAGE_NAME_MAX - 1);
    assert_int_equal(lss__storage_name(id, 201, LSS__STORAGE_ENCODED, out,
                                       sizeof out, &len),
                     LSS_ETOOBIG);
    /* 66 escaped bytes (198) + 2 plain = 200; 67 escaped = 201. */
    memset(id, '.', 66);
    assert_int_equal(lss__storage_name(id, 68, LSS__STORAGE_ENCODED, out,
                                       sizeof out, &len),
                     LSS_OK);
    assert_int_equal(len, 206);
    memset(id, '.', 67);
    assert_int_equal(lss__storage_name(id, 67, LSS__STORAGE_ENCODED, out,
                                       sizeof out, &len),
                     LSS_ETOOBIG);
}

static void long_ids_should_use_the_hashed_form(void **state)
{
    (void)state;
    char id[255], out[LSS_STORAGE_NAME_MAX];
    size_t len = 0;
    memset(id, 'Q', sizeof id);
    assert_int_equal(lss__storage_name(id, sizeof id, LSS__STORAGE_ENCODED, out,
                                       sizeof out, &len),
                     LSS_ETOOBIG);
    assert_int_equal(lss__storage_name(id, sizeof id, LSS__STORAGE_HASHED, out,
                                       sizeof out, &len),
                     LSS_OK);
    assert_int_equal(len, 70);
    char hex[64];
    assert_int_equal(lss__sha256_hex(id, sizeof id, hex), LSS_OK);
    assert_memory_equal(out, "nh-", 3);
    assert_memory_equal(out + 3, hex, 64);
    assert_string_equal(out + 67, ".db");
}

static void hashed_form_should_be_available_for_short_ids(void **state)
{
    (void)state;
    char out[71];
    size_t len = 0;
    assert_int_equal(lss__storage_name(S("default"), LSS__STORAGE_HASHED, out,
                                       sizeof out, &len),
                     LSS_OK);
    assert_string_equal(
        out,
        "nh-37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f.db");
}

static void storage_name_should_reject_bad_arguments(void **state)
{
    (void)state;
    char out[LSS_STORAGE_NAME_MAX] = "###";
    size_t len = 0;
    assert_int_equal(lss__storage_name("", 0, LSS__STORAGE_ENCODED, out,
                                       sizeof out, &len),
                     LSS_EINVAL);
    assert_int_equal(lss__storage_name(S("x"), 7, out, sizeof out, &len),
                     LSS_EINVAL);
    /* The NUL needs room too. */
    assert_int_equal(lss__storage_name(S("abc"), LSS__STORAGE_ENCODED, out, 9,
                                       &len),
                     LSS_ENOSPACE);
    assert_int_equal(len, 9);
    assert_string_equal(out, "###");
    assert_int_equal(lss__storage_name(S("abc"), LSS__STORAGE_HASHED, out, 70,
                                       &len),
                     LSS_ENOSPACE);
    assert_int_equal(len, 70);
    assert_int_equal(lss__storage_name(S("abc"), LSS__STORAGE_ENCODED, out, 10,
                                       &len),
                     LSS_OK);
    assert_string_equal(out, "ns-abc.db");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_should_match_the_section_4_1_table),
        cmocka_unit_test(encode_should_match_rfc_4648_vectors_without_padding),
        cmocka_unit_test(encode_should_report_the_size_when_out_of_space),
        cmocka_unit_test(decode_should_reverse_encode_for_every_length),
        cmocka_unit_test(decode_should_report_go_byte_offsets),
        cmocka_unit_test(decode_should_skip_cr_and_lf),
        cmocka_unit_test(decode_should_tolerate_nonzero_padding_bits),
        cmocka_unit_test(decode_should_validate_before_checking_space),
        cmocka_unit_test(token_parse_should_return_the_namespace),
        cmocka_unit_test(
            token_parse_should_accept_underscores_in_the_namespace_part),
        cmocka_unit_test(token_parse_should_accept_upper_case_hex),
        cmocka_unit_test(step_1_should_require_the_ns_prefix),
        cmocka_unit_test(step_2_should_require_two_parts),
        cmocka_unit_test(step_4_should_reject_extra_parts_that_do_not_decode),
        cmocka_unit_test(step_5_should_require_64_hex_characters),
        cmocka_unit_test(step_6_should_name_the_first_bad_byte_as_go_does),
        cmocka_unit_test(step_6_should_name_a_nul_byte),
        cmocka_unit_test(step_6_should_come_before_the_namespace_part),
        cmocka_unit_test(step_7_should_report_the_base64_offset),
        cmocka_unit_test(step_7_should_skip_newlines_and_tolerate_padding_bits),
        cmocka_unit_test(step_8_should_reject_an_empty_namespace),
        cmocka_unit_test(token_parse_should_report_the_size_when_out_of_space),
        cmocka_unit_test(token_parse_should_truncate_its_error_text),
        cmocka_unit_test(generate_should_build_prefix_base64_and_64_lower_hex),
        cmocka_unit_test(generate_should_refuse_an_empty_namespace),
        cmocka_unit_test(generate_should_report_the_size_when_out_of_space),
        cmocka_unit_test(longest_token_should_fit_lss_token_max),
        cmocka_unit_test(parse_should_invert_generate_for_any_bytes),
        cmocka_unit_test(sha256_hex_should_match_the_section_4_3_example),
        cmocka_unit_test(ct_equal_should_compare_bytes),
        cmocka_unit_test(storage_name_should_follow_the_section_10_2_examples),
        cmocka_unit_test(storage_name_should_never_contain_a_slash),
        cmocka_unit_test(storage_name_should_keep_case_apart),
        cmocka_unit_test(storage_name_should_allow_200_encoded_bytes),
        cmocka_unit_test(long_ids_should_use_the_hashed_form),
        cmocka_unit_test(hashed_form_should_be_available_for_short_ids),
        cmocka_unit_test(storage_name_should_reject_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
