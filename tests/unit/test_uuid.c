/* test_uuid.c — UUID spellings, canonical text and v7 generation
 * (PROTOCOL.md 7.4). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "uuid.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static const uint8_t sample[16] = {0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b,
                                   0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66,
                                   0x55, 0x44, 0x00, 0x00};

static void assert_parses_to_sample(const char *s)
{
    uint8_t out[16];
    if (lss__uuid_parse(s, strlen(s), out) != LSS_OK) {
        print_error("rejected: '%s'\n", s);
        fail();
    }
    assert_memory_equal(out, sample, 16);
}

static void assert_rejected(const char *s, size_t n)
{
    uint8_t out[16];
    memset(out, 0xaa, sizeof out);
    if (lss__uuid_parse(s, n, out) != LSS_EUUID) {
        print_error("accepted: '%.*s'\n", (int)n, s ? s : "");
        fail();
    }
    for (int i = 0; i < 16; i++)
        assert_int_equal(out[i], 0xaa);
}

static void canonical_form_should_parse(void **state)
{
    (void)state;
    assert_parses_to_sample("550e8400-e29b-41d4-a716-446655440000");
}

static void braced_form_should_parse(void **state)
{
    (void)state;
    assert_parses_to_sample("{550e8400-e29b-41d4-a716-446655440000}");
}

static void urn_form_should_parse_with_any_prefix_case(void **state)
{
    (void)state;
    assert_parses_to_sample("urn:uuid:550e8400-e29b-41d4-a716-446655440000");
    assert_parses_to_sample("URN:UUID:550e8400-e29b-41d4-a716-446655440000");
    assert_parses_to_sample("Urn:Uuid:550E8400-E29B-41D4-A716-446655440000");
}

static void bare_hex_form_should_parse(void **state)
{
    (void)state;
    assert_parses_to_sample("550e8400e29b41d4a716446655440000");
    assert_parses_to_sample("550E8400E29B41D4A716446655440000");
}

static void hex_digits_should_parse_in_either_case(void **state)
{
    (void)state;
    assert_parses_to_sample("550E8400-E29B-41D4-A716-446655440000");
    assert_parses_to_sample("550e8400-E29b-41D4-a716-446655440000");
    assert_parses_to_sample("{550E8400-E29B-41D4-A716-446655440000}");
}

static void any_version_and_variant_should_parse(void **state)
{
    (void)state;
    static const char *ids[] = {
        "00000000-0000-0000-0000-000000000000", /* nil */
        "ffffffff-ffff-ffff-ffff-ffffffffffff", /* max */
        "12345678-1234-1234-1234-123456789abc", /* v1, variant 0 */
        "01890a5d-ac96-774b-bcce-b302099a8057", /* v7 */
        "01890a5d-ac96-f74b-ccce-b302099a8057", /* v15, variant 110 */
    };
    uint8_t out[16];
    for (size_t i = 0; i < LSS_ARRAY_LEN(ids); i++)
        assert_int_equal(lss__uuid_parse(ids[i], 36, out), LSS_OK);
    assert_int_equal(lss__uuid_parse(S("00000000000000000000000000000000"), out),
                     LSS_OK);
    for (int i = 0; i < 16; i++)
        assert_int_equal(out[i], 0);
}

static void wrong_lengths_should_be_rejected(void **state)
{
    (void)state;
    const char *c = "550e8400-e29b-41d4-a716-4466554400001234567890";
    assert_rejected(c, 0);
    assert_rejected(c, 5);
    assert_rejected(c, 31);
    assert_rejected(c, 33);
    assert_rejected(c, 35);
    assert_rejected(c, 37);
    assert_rejected(c, 39);
    assert_rejected(c, 44);
    assert_rejected(c, 46);
    assert_rejected(NULL, 0);
}

static void misplaced_hyphens_should_be_rejected(void **state)
{
    (void)state;
    assert_rejected(S("550e840-0e29b-41d4-a716-446655440000"));
    assert_rejected(S("550e8400e-29b-41d4-a716-446655440000"));
    assert_rejected(S("550e8400-e29b-41d4-a716446655440000-"));
    assert_rejected(S("550e8400-e29b-41d4a-716-446655440000"));
    assert_rejected(S("550e8400-e29b-41d4-a716-44665544-000"));
    assert_rejected(S("550e8400+e29b+41d4+a716+446655440000"));
    assert_rejected(S("550e8400-e29b41d4a716446655440000"));
}

static void non_hex_digits_should_be_rejected(void **state)
{
    (void)state;
    assert_rejected(S("550e8400-e29b-41d4-a716-44665544000g"));
    assert_rejected(S("g50e8400-e29b-41d4-a716-446655440000"));
    assert_rejected(S("550e8400-e29b-41d4-a716-4466554400 0"));
    assert_rejected(S("550e8400-e29b-41d4-a716-44665544000\xc3"));
    assert_rejected(S("550e8400e29b41d4a71644665544000G"));
    assert_rejected(S("550e8400e29b41d4a7164466554400-0"));
    /* Bytes that a careless case fold (| 0x20) would turn into digits. */
    assert_rejected(S("550e8400-e29b-41d4-a716-44665544000\x10"));
    assert_rejected(S("550e8400-e29b-41d4-a716-44665544000\x11"));
    char nul[37];
    memcpy(nul, "550e8400-e29b-41d4-a716-446655440000", 36);
    nul[35] = '\0';
    assert_rejected(nul, 36);
}

static void urn_prefix_and_braces_should_not_combine(void **state)
{
    (void)state;
    assert_rejected(S("urn:uuid:{550e8400-e29b-41d4-a716-446655440000}"));
    assert_rejected(S("{urn:uuid:550e8400-e29b-41d4-a716-446655440000}"));
    assert_rejected(S("urn:uuid-550e8400-e29b-41d4-a716-446655440000"));
    assert_rejected(S("urn:guid:550e8400-e29b-41d4-a716-446655440000"));
    assert_rejected(S("urn:uuid:550e8400e29b41d4a716446655440000"));
    assert_rejected(S("{550e8400e29b41d4a716446655440000}"));
}

static void wrong_braces_should_be_rejected(void **state)
{
    (void)state;
    assert_rejected(S("(550e8400-e29b-41d4-a716-446655440000)"));
    assert_rejected(S("{550e8400-e29b-41d4-a716-446655440000{"));
    assert_rejected(S("}550e8400-e29b-41d4-a716-446655440000{"));
    assert_rejected(S("x550e8400-e29b-41d4-a716-446655440000}"));
}

static void whitespace_should_be_rejected(void **state)
{
    (void)state;
    assert_rejected(S(" 550e8400-e29b-41d4-a716-446655440000"));
    assert_rejected(S("550e8400-e29b-41d4-a716-446655440000 "));
    assert_rejected(S("550e8400-e29b-41d4-a716-446655440000\n"));
    assert_rejected(S(" 550e8400-e29b-41d4-a716-44665544000"));
    assert_rejected(S("550e8400-e29b-41d4-a716-44665544000\t"));
    assert_rejected(S(" 550e8400e29b41d4a71644665544000"));
    assert_rejected(S("{ 550e8400-e29b-41d4-a716-44665544000}"));
}

static void format_should_write_canonical_lower_case(void **state)
{
    (void)state;
    char text[LSS_UUID_TEXT_LEN + 1];
    text[LSS_UUID_TEXT_LEN] = '#';
    lss__uuid_format(sample, text);
    assert_int_equal(text[LSS_UUID_TEXT_LEN], '#'); /* no NUL written */
    assert_memory_equal(text, "550e8400-e29b-41d4-a716-446655440000", 36);
}

static void every_spelling_should_canonicalise_alike(void **state)
{
    (void)state;
    static const char *forms[] = {
        "550E8400-E29B-41D4-A716-446655440000",
        "{550e8400-e29b-41d4-a716-446655440000}",
        "URN:uuid:550e8400-E29B-41d4-a716-446655440000",
        "550e8400E29B41d4a716446655440000",
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(forms); i++) {
        uint8_t bin[16];
        char text[LSS_UUID_TEXT_LEN];
        assert_int_equal(lss__uuid_parse(forms[i], strlen(forms[i]), bin),
                         LSS_OK);
        lss__uuid_format(bin, text);
        assert_memory_equal(text, "550e8400-e29b-41d4-a716-446655440000", 36);
    }
}

static void format_then_parse_should_round_trip(void **state)
{
    (void)state;
    srand(7);
    for (int i = 0; i < 2000; i++) {
        uint8_t in[16], out[16];
        char text[LSS_UUID_TEXT_LEN];
        for (int k = 0; k < 16; k++)
            in[k] = (uint8_t)rand();
        lss__uuid_format(in, text);
        assert_int_equal(lss__uuid_parse(text, sizeof text, out), LSS_OK);
        assert_memory_equal(in, out, 16);
    }
}

static void error_should_name_the_length(void **state)
{
    (void)state;
    char buf[LSS_UUID_ERR_MAX];
    assert_int_equal(lss__uuid_error(S("hello"), buf, sizeof buf), 22);
    assert_string_equal(buf, "invalid UUID length: 5");
    lss__uuid_error(NULL, 0, buf, sizeof buf);
    assert_string_equal(buf, "invalid UUID length: 0");
    lss__uuid_error(S("550e8400-e29b-41d4-a716-44665544000"), buf, sizeof buf);
    assert_string_equal(buf, "invalid UUID length: 35");
}

static void error_should_say_format_for_bad_digits_or_hyphens(void **state)
{
    (void)state;
    char buf[LSS_UUID_ERR_MAX];
    lss__uuid_error(S("550e8400-e29b-41d4-a716-44665544000g"), buf, sizeof buf);
    assert_string_equal(buf, "invalid UUID format");
    lss__uuid_error(S("550e8400xe29b-41d4-a716-446655440000"), buf, sizeof buf);
    assert_string_equal(buf, "invalid UUID format");
    lss__uuid_error(S("[550e8400-e29b-41d4-a716-446655440000]"), buf,
                    sizeof buf);
    assert_string_equal(buf, "invalid UUID format");
    lss__uuid_error(S("urn:uuid:550e8400-e29b-41d4-a716-44665544000g"), buf,
                    sizeof buf);
    assert_string_equal(buf, "invalid UUID format");
}

static void error_should_name_a_bad_urn_prefix(void **state)
{
    (void)state;
    char buf[LSS_UUID_ERR_MAX];
    lss__uuid_error(S("urn:uuid-550e8400-e29b-41d4-a716-446655440000"), buf,
                    sizeof buf);
    assert_string_equal(buf, "invalid urn prefix");
}

static void error_should_be_empty_for_a_valid_id(void **state)
{
    (void)state;
    char buf[LSS_UUID_ERR_MAX] = "junk";
    assert_int_equal(
        lss__uuid_error(S("550e8400-e29b-41d4-a716-446655440000"), buf, 8), 0);
    assert_string_equal(buf, "");
}

static void error_should_truncate_to_the_buffer(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, '#', sizeof buf);
    assert_int_equal(lss__uuid_error(S("abc"), buf, 8), 22);
    assert_string_equal(buf, "invalid");
    assert_int_equal(lss__uuid_error(S("abc"), NULL, 0), 22);
}

static int64_t v7_ms(const uint8_t id[16])
{
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | id[i];
    return ms;
}

static void assert_v7_layout(const uint8_t id[16], int64_t ms)
{
    assert_int_equal(id[6] >> 4, 7);      /* version */
    assert_int_equal(id[8] >> 6, 2);      /* variant 10 */
    assert_true(v7_ms(id) == ms);
}

static void v7_should_carry_version_variant_and_timestamp(void **state)
{
    (void)state;
    static const int64_t times[] = {0, 1, 1700000000123, 1767225600000,
                                    ((int64_t)1 << 48) - 1};
    lss__uuid_gen g;
    lss__uuid_gen_init(&g);
    for (size_t i = 0; i < LSS_ARRAY_LEN(times); i++) {
        uint8_t id[16];
        assert_int_equal(lss__uuid_v7(id, times[i]), LSS_OK);
        assert_v7_layout(id, times[i]);
        assert_int_equal(lss__uuid_v7_gen(&g, id, times[i]), LSS_OK);
        assert_v7_layout(id, times[i]);
    }
}

static void v7_text_should_show_the_version_digit(void **state)
{
    (void)state;
    uint8_t id[16];
    char text[LSS_UUID_TEXT_LEN];
    assert_int_equal(lss__uuid_v7(id, 1700000000123), LSS_OK);
    lss__uuid_format(id, text);
    assert_memory_equal(text, "018bcfe5-687b-7", 15);
    assert_true(strchr("89ab", text[19]) != NULL);
}

static void v7_should_reject_times_outside_48_bits(void **state)
{
    (void)state;
    uint8_t id[16];
    lss__uuid_gen g;
    lss__uuid_gen_init(&g);
    assert_int_equal(lss__uuid_v7(id, -1), LSS_EINVAL);
    assert_int_equal(lss__uuid_v7(id, (int64_t)1 << 48), LSS_EINVAL);
    assert_int_equal(lss__uuid_v7(NULL, 0), LSS_EINVAL);
    assert_int_equal(lss__uuid_v7_gen(&g, id, -1), LSS_EINVAL);
    assert_int_equal(lss__uuid_v7_gen(&g, id, INT64_MAX), LSS_EINVAL);
    assert_int_equal(lss__uuid_v7_gen(NULL, id, 0), LSS_EINVAL);
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void assert_unique(uint8_t (*ids)[16], size_t n)
{
    qsort(ids, n, 16, cmp_id);
    for (size_t i = 1; i < n; i++)
        assert_true(memcmp(ids[i - 1], ids[i], 16) != 0);
}

/* 100k ids in one millisecond share 48 bits; the other 74 must differ. */
static void v7_ids_should_be_unique_within_one_millisecond(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint8_t(*ids)[16] = malloc(sizeof(uint8_t[16]) * N);
    assert_non_null(ids);
    lss__uuid_gen g;
    lss__uuid_gen_init(&g);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(lss__uuid_v7_gen(&g, ids[i], 1700000000000), LSS_OK);
    assert_unique(ids, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(lss__uuid_v7(ids[i], 1700000000000), LSS_OK);
    assert_unique(ids, N);
    free(ids);
}

static void v7_ids_should_sort_by_millisecond(void **state)
{
    (void)state;
    lss__uuid_gen g;
    lss__uuid_gen_init(&g);
    uint8_t prev[16], cur[16];
    char prev_text[LSS_UUID_TEXT_LEN], cur_text[LSS_UUID_TEXT_LEN];
    assert_int_equal(lss__uuid_v7_gen(&g, prev, 1700000000000), LSS_OK);
    lss__uuid_format(prev, prev_text);
    for (int64_t ms = 1700000000001; ms < 1700000002000; ms++) {
        assert_int_equal(lss__uuid_v7_gen(&g, cur, ms), LSS_OK);
        lss__uuid_format(cur, cur_text);
        assert_true(memcmp(prev, cur, 16) < 0);
        assert_true(memcmp(prev_text, cur_text, LSS_UUID_TEXT_LEN) < 0);
        memcpy(prev, cur, 16);
        memcpy(prev_text, cur_text, LSS_UUID_TEXT_LEN);
    }
}

static void v7_generator_should_refill_across_its_pool(void **state)
{
    (void)state;
    lss__uuid_gen g;
    lss__uuid_gen_init(&g);
    uint8_t ids[3 * LSS_UUID_POOL / 10][16];
    for (size_t i = 0; i < LSS_ARRAY_LEN(ids); i++) {
        assert_int_equal(lss__uuid_v7_gen(&g, ids[i], 5), LSS_OK);
        assert_v7_layout(ids[i], 5);
        assert_true(g.used <= sizeof g.pool);
    }
    assert_unique(ids, LSS_ARRAY_LEN(ids));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canonical_form_should_parse),
        cmocka_unit_test(braced_form_should_parse),
        cmocka_unit_test(urn_form_should_parse_with_any_prefix_case),
        cmocka_unit_test(bare_hex_form_should_parse),
        cmocka_unit_test(hex_digits_should_parse_in_either_case),
        cmocka_unit_test(any_version_and_variant_should_parse),
        cmocka_unit_test(wrong_lengths_should_be_rejected),
        cmocka_unit_test(misplaced_hyphens_should_be_rejected),
        cmocka_unit_test(non_hex_digits_should_be_rejected),
        cmocka_unit_test(urn_prefix_and_braces_should_not_combine),
        cmocka_unit_test(wrong_braces_should_be_rejected),
        cmocka_unit_test(whitespace_should_be_rejected),
        cmocka_unit_test(format_should_write_canonical_lower_case),
        cmocka_unit_test(every_spelling_should_canonicalise_alike),
        cmocka_unit_test(format_then_parse_should_round_trip),
        cmocka_unit_test(error_should_name_the_length),
        cmocka_unit_test(error_should_say_format_for_bad_digits_or_hyphens),
        cmocka_unit_test(error_should_name_a_bad_urn_prefix),
        cmocka_unit_test(error_should_be_empty_for_a_valid_id),
        cmocka_unit_test(error_should_truncate_to_the_buffer),
        cmocka_unit_test(v7_should_carry_version_variant_and_timestamp),
        cmocka_unit_test(v7_text_should_show_the_version_digit),
        cmocka_unit_test(v7_should_reject_times_outside_48_bits),
        cmocka_unit_test(v7_ids_should_be_unique_within_one_millisecond),
        cmocka_unit_test(v7_ids_should_sort_by_millisecond),
        cmocka_unit_test(v7_generator_should_refill_across_its_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
