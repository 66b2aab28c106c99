/* test_errors.c — the error table, version twins and the libc allocator. */
#include "testutil.h"

#include <stdio.h>

#include "internal.h"

static void every_code_should_have_a_distinct_name_and_text(void **state)
{
    (void)state;
    static const int codes[] = {
#define X(name, value, text) value,
        LSS_ERRNO_MAP(X)
#undef X
    };
    static const char *names[] = {
#define X(name, value, text) #name,
        LSS_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof codes / sizeof codes[0];
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(lss_errname(codes[i]), names[i]);
        assert_string_not_equal(lss_strerror(codes[i]), "unknown error");
        for (size_t j = i + 1; j < n; j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
}

static void codes_should_keep_their_published_values(void **state)
{
    (void)state;
    assert_int_equal(LSS_OK, 0);
    assert_int_equal(LSS_ROW, 100);
    assert_int_equal(LSS_DONE, 101);
    assert_int_equal(LSS_AGAIN, 102);
    assert_int_equal(LSS_EINVAL, -1);
    assert_int_equal(LSS_ENOMEM, -2);
    assert_int_equal(LSS_ENOSPACE, -3);
    assert_int_equal(LSS_EVERSION, -13);
    assert_int_equal(LSS_EDUPLICATE, -14);
    assert_true(LSS_ROW > 0 && LSS_EINVAL < 0);
}

static void unknown_codes_should_say_so(void **state)
{
    (void)state;
    assert_string_equal(lss_strerror(12345), "unknown error");
    assert_string_equal(lss_errname(-999), "UNKNOWN");
    assert_string_equal(lss_errname(LSS_EVERSION), "EVERSION");
}

static void version_twins_should_match_the_build(void **state)
{
    (void)state;
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", LSS_VERSION_MAJOR, LSS_VERSION_MINOR,
             LSS_VERSION_PATCH);
    assert_string_equal(buf, LSS_VERSION_STRING);
    assert_string_equal(lss_version_string(), LSS_VERSION_STRING);
    assert_int_equal(lss_version_number(), LSS_VERSION_NUMBER);
    assert_string_equal(LSS_VERSION_STRING, LSS_TEST_PROJECT_VERSION);
}

static void libc_allocator_should_round_trip(void **state)
{
    (void)state;
    const lss_allocator *a = lss__alloc_or_libc(NULL);
    char *p = lss__malloc(a, 8);
    assert_non_null(p);
    memcpy(p, "abcdefg", 8);
    p = lss__realloc(a, p, 8, 4096);
    assert_non_null(p);
    assert_string_equal(p, "abcdefg");
    lss__free(a, p);
    lss__free(a, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_should_have_a_distinct_name_and_text),
        cmocka_unit_test(codes_should_keep_their_published_values),
        cmocka_unit_test(unknown_codes_should_say_so),
        cmocka_unit_test(version_twins_should_match_the_build),
        cmocka_unit_test(libc_allocator_should_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
