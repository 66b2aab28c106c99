/* test_names.c — stream-name rules and consumer groups (PROTOCOL.md 7.1,
 * 7.7): every worked example of the specification. */
#include "testutil.h"

#include <stdio.h>

#include <openssl/evp.h>

#include "internal.h"
#include "names.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static int64_t member_of(const char *s, int64_t size)
{
    int64_t m = -1;
    int rc = lss_group_member(s, strlen(s), size, &m);
    assert_int_equal(rc, 1);
    assert_true(m >= 0 && m < size);
    return m;
}

static void category_should_be_the_text_before_the_first_dash(void **state)
{
    (void)state;
    assert_int_equal(lss_category_len(S("account-123")), 7);
    assert_int_equal(lss_category_len(S("account-123+456")), 7);
    assert_int_equal(lss_category_len(S("account")), 7);
    assert_int_equal(lss_category_len(S("stream-with-many-dashes")), 6);
    assert_int_equal(lss_category_len(S("-x")), 0);
    assert_int_equal(lss_category_len(S("account:command-123")), 15);
    assert_int_equal(lss_category_len(NULL, 0), 0);
}

static void is_category_should_be_true_only_without_a_dash(void **state)
{
    (void)state;
    assert_true(lss_is_category(S("account")));
    assert_false(lss_is_category(S("account-1")));
    assert_false(lss_is_category(S("-")));
    assert_true(lss_is_category(S("account:command")));
    assert_true(lss_is_category(NULL, 0));
}

static void stream_id_should_be_the_text_after_the_first_dash(void **state)
{
    (void)state;
    const char *id = NULL;
    size_t id_n = 0;
    const char *s = "account-123+deposit";
    assert_int_equal(lss_stream_id(s, strlen(s), &id, &id_n), 1);
    assert_ptr_equal(id, s + 8);
    assert_span_equal(id, id_n, "123+deposit");
    assert_int_equal(lss_stream_id(S("a-b-c"), &id, &id_n), 1);
    assert_span_equal(id, id_n, "b-c");
    assert_int_equal(lss_stream_id(S("account-"), &id, &id_n), 1);
    assert_int_equal(id_n, 0);
}

static void stream_id_should_be_absent_without_a_dash(void **state)
{
    (void)state;
    const char *id = "untouched";
    size_t id_n = 42;
    assert_int_equal(lss_stream_id(S("account"), &id, &id_n), 0);
    assert_string_equal(id, "untouched");
    assert_int_equal(id_n, 42);
    assert_int_equal(lss_stream_id(NULL, 0, &id, &id_n), 0);
}

static void stream_id_should_accept_null_outputs(void **state)
{
    (void)state;
    assert_int_equal(lss_stream_id(S("a-b"), NULL, NULL), 1);
    assert_int_equal(lss_stream_id(S("ab"), NULL, NULL), 0);
    assert_int_equal(lss_cardinal_id(S("a-b+c"), NULL, NULL), 1);
}

static void cardinal_id_should_stop_at_the_first_plus(void **state)
{
    (void)state;
    const char *c = NULL;
    size_t c_n = 0;
    assert_int_equal(lss_cardinal_id(S("account-123+deposit"), &c, &c_n), 1);
    assert_span_equal(c, c_n, "123");
    assert_int_equal(lss_cardinal_id(S("account-123+456+789"), &c, &c_n), 1);
    assert_span_equal(c, c_n, "123");
    assert_int_equal(lss_cardinal_id(S("a-b-c"), &c, &c_n), 1);
    assert_span_equal(c, c_n, "b-c");
    assert_int_equal(lss_cardinal_id(S("account-123"), &c, &c_n), 1);
    assert_span_equal(c, c_n, "123");
}

static void cardinal_id_should_be_absent_or_empty_as_specified(void **state)
{
    (void)state;
    const char *c = NULL;
    size_t c_n = 99;
    assert_int_equal(lss_cardinal_id(S("account"), &c, &c_n), 0);
    assert_int_equal(lss_cardinal_id(S("account-"), &c, &c_n), 1);
    assert_int_equal(c_n, 0);
    assert_int_equal(lss_cardinal_id(S("account-+x"), &c, &c_n), 1);
    assert_int_equal(c_n, 0);
}

static void hash64_should_read_md5_big_endian_as_signed(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t h;
    } rows[] = {
        {"123", INT64_C(2318431741638412123)},
        {"1", INT64_C(-4266524885998034046)},
        {"abc", INT64_C(-8070080442485551184)},
        {"stream0", INT64_C(-870142150276481236)},
        {"456", INT64_C(2669782135874207551)},
        {"42", INT64_C(-6786705937655499993)},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(rows); i++) {
        int64_t h = 0;
        assert_int_equal(lss_hash64(rows[i].text, strlen(rows[i].text), &h),
                         LSS_OK);
        assert_true(h == rows[i].h);
    }
}

static void hash64_of_the_empty_string_should_be_md5_of_nothing(void **state)
{
    (void)state;
    /* MD5("") = d41d8cd98f00b204...; NULL with length 0 is "". */
    int64_t a = 0, b = 0;
    assert_int_equal(lss_hash64(NULL, 0, &a), LSS_OK);
    assert_int_equal(lss_hash64("", 0, &b), LSS_OK);
    assert_true(a == b);
    assert_true(a == INT64_C(-3162216497309240828));
}

static void hash64_should_reject_a_null_output(void **state)
{
    (void)state;
    assert_int_equal(lss_hash64(S("x"), NULL), LSS_EINVAL);
}

/* The first table of 7.7: stream, sizes 2, 3, 4. */
static void group_member_should_match_the_stream_table(void **state)
{
    (void)state;
    static const struct {
        const char *stream;
        int64_t m2, m3, m4;
    } rows[] = {
        {"account-123", 1, 1, 3},     {"account-123+deposit", 1, 1, 3},
        {"order-1", 0, 0, 2},         {"user-abc", 0, 2, 0},
        {"payment-stream0", 0, 1, 0}, {"account-456", 1, 1, 3},
        {"account-42", 1, 0, 1},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(rows); i++) {
        assert_int_equal(member_of(rows[i].stream, 2), rows[i].m2);
        assert_int_equal(member_of(rows[i].stream, 3), rows[i].m3);
        assert_int_equal(member_of(rows[i].stream, 4), rows[i].m4);
    }
}

/* The second table of 7.7: cardinal ids 0..11. */
static void group_member_should_match_the_cardinal_table(void **state)
{
    (void)state;
    static const struct {
        int64_t h, m2, m3, m4;
    } rows[] = {
        {INT64_C(-3473083983811222033), 1, 1, 1},
        {INT64_C(-4266524885998034046), 0, 0, 2},
        {INT64_C(-4026655064267673757), 1, 1, 1},
        {INT64_C(-1383792015730482434), 0, 2, 2},
        {INT64_C(-6305049951010035939), 1, 0, 3},
        {INT64_C(-1956185668341324987), 1, 0, 3},
        {INT64_C(1619335558399004591), 1, 2, 3},
        {INT64_C(-8136627526607169926), 0, 2, 2},
        {INT64_C(-3895340354620576879), 1, 1, 3},
        {INT64_C(5027297901218201533), 1, 1, 1},
        {INT64_C(-3181436448248937895), 1, 1, 3},
        {INT64_C(7283091646525908704), 0, 2, 0},
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(rows); i++) {
        char card[8], stream[16];
        snprintf(card, sizeof card, "%zu", i);
        snprintf(stream, sizeof stream, "cat-%zu", i);
        int64_t h = 0;
        assert_int_equal(lss_hash64(card, strlen(card), &h), LSS_OK);
        assert_true(h == rows[i].h);
        assert_int_equal(member_of(stream, 2), rows[i].m2);
        assert_int_equal(member_of(stream, 3), rows[i].m3);
        assert_int_equal(member_of(stream, 4), rows[i].m4);
    }
}

static void cardinals_0_to_5_should_give_member_0_the_ids_1_and_3(void **state)
{
    (void)state;
    static const int64_t want[] = {1, 0, 1, 0, 1, 1};
    for (int i = 0; i <= 5; i++) {
        char stream[16];
        snprintf(stream, sizeof stream, "<cat>-%d", i);
        assert_int_equal(member_of(stream, 2), want[i]);
    }
}

static void cardinals_1_to_4_should_alternate_over_two(void **state)
{
    (void)state;
    static const int64_t want[] = {0, 1, 0, 1};
    for (int i = 1; i <= 4; i++) {
        char stream[16];
        snprintf(stream, sizeof stream, "account-%d", i);
        assert_int_equal(member_of(stream, 2), want[i - 1]);
    }
}

static void payment_streams_0_to_11_should_map_as_listed(void **state)
{
    (void)state;
    static const int64_t want[] = {1, 2, 2, 1, 2, 0, 1, 1, 0, 1, 0, 1};
    for (int i = 0; i <= 11; i++) {
        char stream[32];
        snprintf(stream, sizeof stream, "payment-stream%d", i);
        assert_int_equal(member_of(stream, 3), want[i]);
    }
}

static void every_stream_should_go_to_exactly_one_member(void **state)
{
    (void)state;
    for (int64_t size = 1; size <= 7; size++) {
        for (int i = 0; i < 200; i++) {
            char stream[32];
            snprintf(stream, sizeof stream, "c-%d+tail", i);
            int hits = 0;
            int64_t m = member_of(stream, size);
            for (int64_t k = 0; k < size; k++)
                hits += (m == k);
            assert_int_equal(hits, 1);
        }
    }
}

static void compound_ids_should_share_their_cardinal_member(void **state)
{
    (void)state;
    for (int64_t size = 2; size <= 9; size++) {
        assert_int_equal(member_of("account-123+deposit", size),
                         member_of("account-123", size));
        assert_int_equal(member_of("other-123+x+y", size),
                         member_of("account-123", size));
    }
}

static void size_one_should_put_everything_in_member_zero(void **state)
{
    (void)state;
    assert_int_equal(member_of("account-123", 1), 0);
    assert_int_equal(member_of("order-1", 1), 0);
    assert_int_equal(member_of("a-b-c", 1), 0);
}

static void absent_or_empty_cardinals_should_belong_to_no_member(void **state)
{
    (void)state;
    int64_t m = 77;
    assert_int_equal(lss_group_member(S("account"), 2, &m), 0);
    assert_int_equal(lss_group_member(S("account-"), 2, &m), 0);
    assert_int_equal(lss_group_member(S("account-+x"), 2, &m), 0);
    assert_int_equal(lss_group_member(NULL, 0, 2, &m), 0);
    assert_int_equal(m, 77);
}

static void group_member_should_reject_bad_arguments(void **state)
{
    (void)state;
    int64_t m = 0;
    assert_int_equal(lss_group_member(S("account-1"), 0, &m), LSS_EINVAL);
    assert_int_equal(lss_group_member(S("account-1"), -1, &m), LSS_EINVAL);
    assert_int_equal(lss_group_member(S("account-1"), INT64_MIN, &m),
                     LSS_EINVAL);
    assert_int_equal(lss_group_member(S("account-1"), 2, NULL), LSS_EINVAL);
    assert_int_equal(lss_group_member(S("account"), 0, &m), LSS_EINVAL);
}

static void hash_member_should_treat_int64_min_as_two_to_the_63(void **state)
{
    (void)state;
    /* 2^63 mod 3 = 2, mod 5 = 3, mod 7 = 1, mod (2^63 - 1) = 1. */
    assert_int_equal(lss__hash_member(INT64_MIN, 2), 0);
    assert_int_equal(lss__hash_member(INT64_MIN, 3), 2);
    assert_int_equal(lss__hash_member(INT64_MIN, 5), 3);
    assert_int_equal(lss__hash_member(INT64_MIN, 7), 1);
    assert_int_equal(lss__hash_member(INT64_MIN, INT64_MAX), 1);
    assert_int_equal(lss__hash_member(INT64_MIN, 1), 0);
}

static void hash_member_should_use_the_absolute_value(void **state)
{
    (void)state;
    assert_int_equal(lss__hash_member(-7, 4), 3);
    assert_int_equal(lss__hash_member(7, 4), 3);
    assert_int_equal(lss__hash_member(0, 4), 0);
    assert_int_equal(lss__hash_member(INT64_MAX, INT64_MAX), 0);
    assert_int_equal(lss__hash_member(-INT64_MAX, 10), 7);
    assert_int_equal(lss__hash_member(INT64_C(-4266524885998034046), 4), 2);
}

static void hash64_ctx_should_agree_with_hash64(void **state)
{
    (void)state;
    EVP_MD *md = EVP_MD_fetch(NULL, "MD5", NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_non_null(ctx);
    char buf[64];
    for (int i = 0; i < 500; i++) {
        int n = snprintf(buf, sizeof buf, "key-%d-%x", i, i * 2654435761u);
        int64_t a = 0, b = 1;
        assert_int_equal(lss_hash64(buf, (size_t)n, &a), LSS_OK);
        assert_int_equal(lss__hash64_ctx(ctx, md, buf, (size_t)n, &b), LSS_OK);
        assert_true(a == b);
    }
    int64_t h = 0;
    assert_int_equal(lss__hash64_ctx(ctx, md, S("123"), &h), LSS_OK);
    assert_true(h == INT64_C(2318431741638412123));
    assert_int_equal(lss__hash64_ctx(ctx, md, NULL, 0, &h), LSS_OK);
    assert_true(h == INT64_C(-3162216497309240828));
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
}

static void hash64_ctx_should_reject_missing_context(void **state)
{
    (void)state;
    int64_t h = 0;
    assert_int_equal(lss__hash64_ctx(NULL, EVP_md5(), S("x"), &h), LSS_EINVAL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(lss__hash64_ctx(ctx, NULL, S("x"), &h), LSS_EINVAL);
    assert_int_equal(lss__hash64_ctx(ctx, EVP_md5(), S("x"), NULL),
                     LSS_EINVAL);
    EVP_MD_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(category_should_be_the_text_before_the_first_dash),
        cmocka_unit_test(is_category_should_be_true_only_without_a_dash),
        cmocka_unit_test(stream_id_should_be_the_text_after_the_first_dash),
        cmocka_unit_test(stream_id_should_be_absent_without_a_dash),
        cmocka_unit_test(stream_id_should_accept_null_outputs),
        cmocka_unit_test(cardinal_id_should_stop_at_the_first_plus),
        cmocka_unit_test(cardinal_id_should_be_absent_or_empty_as_specified),
        cmocka_unit_test(hash64_should_read_md5_big_endian_as_signed),
        cmocka_unit_test(hash64_of_the_empty_string_should_be_md5_of_nothing),
        cmocka_unit_test(hash64_should_reject_a_null_output),
        cmocka_unit_test(group_member_should_match_the_stream_table),
        cmocka_unit_test(group_member_should_match_the_cardinal_table),
        cmocka_unit_test(cardinals_0_to_5_should_give_member_0_the_ids_1_and_3),
        cmocka_unit_test(cardinals_1_to_4_should_alternate_over_two),
        cmocka_unit_test(payment_streams_0_to_11_should_map_as_listed),
        cmocka_unit_test(every_stream_should_go_to_exactly_one_member),
        cmocka_unit_test(compound_ids_should_share_their_cardinal_member),
        cmocka_unit_test(size_one_should_put_everything_in_member_zero),
        cmocka_unit_test(absent_or_empty_cardinals_should_belong_to_no_member),
        cmocka_unit_test(group_member_should_reject_bad_arguments),
        cmocka_unit_test(hash_member_should_treat_int64_min_as_two_to_the_63),
        cmocka_unit_test(hash_member_should_use_the_absolute_value),
        cmocka_unit_test(hash64_ctx_should_agree_with_hash64),
        cmocka_unit_test(hash64_ctx_should_reject_missing_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
