/* test_clock.c — RFC 3339 output and input (PROTOCOL.md 1.2) and the wall
 * clock. */
#include "testutil.h"

#include <regex.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"
#include "internal.h"

#define S(lit) (lit), (sizeof(lit) - 1)
#define US INT64_C(1000000)

/* 2026-03-01T12:00:00Z */
static const int64_t noon_s = INT64_C(1772366400);

static void assert_formats(int64_t us, const char *want)
{
    char out[LSS_TIME_MAX];
    size_t n = lss__time_format(us, out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static int64_t parse_ok(const char *s)
{
    int64_t us = 0;
    char detail[LSS_TIME_ERR_MAX] = "";
    int rc = lss__time_parse(s, strlen(s), &us, detail, sizeof detail);
    if (rc != LSS_OK) {
        print_error("'%s' rejected: %s\n", s, detail);
        fail();
    }
    return us;
}

static void assert_parse_fails(const char *s, const char *want_detail)
{
    int64_t us = 12345;
    char detail[LSS_TIME_ERR_MAX] = "";
    int rc = lss__time_parse(s, strlen(s), &us, detail, sizeof detail);
    if (rc != LSS_ETIME) {
        print_error("'%s' accepted as %lld\n", s, (long long)us);
        fail();
    }
    assert_true(us == 12345);
    assert_string_equal(detail, want_detail);
}

static void format_should_follow_the_section_1_2_examples(void **state)
{
    (void)state;
    assert_formats(noon_s * US, "2026-03-01T12:00:00Z");
    assert_formats(noon_s * US + 500000, "2026-03-01T12:00:00.5Z");
    assert_formats(noon_s * US + 123456, "2026-03-01T12:00:00.123456Z");
    assert_formats(noon_s * US + 120000, "2026-03-01T12:00:00.12Z");
}

static void format_should_trim_only_trailing_zeros(void **state)
{
    (void)state;
    assert_formats(noon_s * US + 1, "2026-03-01T12:00:00.000001Z");
    assert_formats(noon_s * US + 100000, "2026-03-01T12:00:00.1Z");
    assert_formats(noon_s * US + 101000, "2026-03-01T12:00:00.101Z");
    assert_formats(noon_s * US + 999999, "2026-03-01T12:00:00.999999Z");
}

static void format_should_handle_the_epoch_and_before(void **state)
{
    (void)state;
    assert_formats(0, "1970-01-01T00:00:00Z");
    assert_formats(-1, "1969-12-31T23:59:59.999999Z");
    assert_formats(-500000, "1969-12-31T23:59:59.5Z");
    assert_formats(-US, "1969-12-31T23:59:59Z");
    assert_formats(-US - 1, "1969-12-31T23:59:58.999999Z");
    assert_formats(INT64_C(-86400) * US, "1969-12-31T00:00:00Z");
    assert_formats(INT64_C(-2208988800) * US + 250000,
                   "1900-01-01T00:00:00.25Z");
}

static void format_should_cover_years_0001_to_9999(void **state)
{
    (void)state;
    assert_formats(LSS_TIME_MIN_US, "0001-01-01T00:00:00Z");
    assert_formats(LSS_TIME_MAX_US, "9999-12-31T23:59:59.999999Z");
    assert_formats(INT64_C(951782400) * US, "2000-02-29T00:00:00Z");
    assert_formats(INT64_C(-62104060800) * US, "0002-01-01T00:00:00Z");
    /* Year 0000 still has four digits. */
    assert_formats(LSS_TIME_MIN_US - 1, "0000-12-31T23:59:59.999999Z");
}

static void format_should_write_nothing_outside_years_0000_to_9999(void **state)
{
    (void)state;
    char out[LSS_TIME_MAX] = "junk";
    assert_int_equal(lss__time_format(LSS_TIME_MAX_US + 1, out), 0);
    assert_string_equal(out, "");
    assert_int_equal(lss__time_format(INT64_MAX, out), 0);
    assert_int_equal(lss__time_format(INT64_MIN, out), 0);
    assert_int_equal(lss__time_format(INT64_C(-62167219200) * US - 1, out), 0);
    assert_int_equal(lss__time_format(INT64_C(-62167219200) * US, out), 20);
    assert_string_equal(out, "0000-01-01T00:00:00Z");
}

static void format_s_should_write_whole_seconds(void **state)
{
    (void)state;
    char out[LSS_TIME_MAX];
    assert_int_equal(lss__time_format_s(noon_s, out), 20);
    assert_string_equal(out, "2026-03-01T12:00:00Z");
    lss__time_format_s(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    assert_int_equal(lss__time_format_s(INT64_MAX, out), 0);
    assert_int_equal(lss__time_format_s(INT64_MIN, out), 0);
}

static void parse_should_read_the_section_1_2_examples(void **state)
{
    (void)state;
    assert_true(parse_ok("2026-03-01T12:00:00Z") == noon_s * US);
    assert_true(parse_ok("2026-03-01T12:00:00.000000Z") == noon_s * US);
    assert_true(parse_ok("2026-03-01T12:00:00.5Z") == noon_s * US + 500000);
    assert_true(parse_ok("2026-03-01T12:00:00.123456Z") ==
                noon_s * US + 123456);
    assert_true(parse_ok("2026-03-01T12:00:00.12Z") == noon_s * US + 120000);
    assert_true(parse_ok("2026-03-01T12:00:00.120000Z") ==
                noon_s * US + 120000);
}

static void parse_should_truncate_fractions_never_round(void **state)
{
    (void)state;
    assert_true(parse_ok("2026-03-01T12:00:00.9999999Z") ==
                noon_s * US + 999999);
    assert_true(parse_ok("2026-03-01T12:00:00.1234565Z") ==
                noon_s * US + 123456);
    assert_true(parse_ok("2026-03-01T12:00:00.000000999Z") == noon_s * US);
    assert_true(parse_ok("2026-03-01T12:00:00.123456789012345678901234Z") ==
                noon_s * US + 123456);
    assert_true(parse_ok("2026-03-01T23:59:59.99999999999Z") ==
                (noon_s + 43199) * US + 999999);
    assert_true(parse_ok("1969-12-31T23:59:59.9999999Z") == -1);
    assert_true(parse_ok("2026-03-01T12:00:00.0Z") == noon_s * US);
}

static void parse_should_apply_numeric_offsets(void **state)
{
    (void)state;
    assert_true(parse_ok("2026-03-01T17:30:00+05:30") == noon_s * US);
    assert_true(parse_ok("2026-03-01T06:30:00.5-05:30") ==
                noon_s * US + 500000);
    assert_true(parse_ok("2026-03-01T12:00:00-00:00") == noon_s * US);
    assert_true(parse_ok("2026-03-01T12:00:00+00:00") == noon_s * US);
    assert_true(parse_ok("2026-03-02T11:59:00+23:59") == noon_s * US);
    assert_true(parse_ok("2026-03-01T00:00:00-12:00") == noon_s * US);
    /* An offset may move the instant into another year. */
    assert_true(parse_ok("1970-01-01T00:30:00+01:00") == -1800 * US);
}

static void parse_should_accept_lower_case_t_and_z(void **state)
{
    (void)state;
    assert_true(parse_ok("2026-03-01t12:00:00z") == noon_s * US);
    assert_true(parse_ok("2026-03-01T12:00:00.5z") == noon_s * US + 500000);
}

static void parse_should_know_leap_years(void **state)
{
    (void)state;
    assert_true(parse_ok("2024-02-29T00:00:00Z") == INT64_C(1709164800) * US);
    assert_true(parse_ok("2000-02-29T00:00:00Z") == INT64_C(951782400) * US);
    assert_true(parse_ok("1600-02-29T00:00:00Z") ==
                INT64_C(-11670998400) * US);
    assert_parse_fails("2023-02-29T00:00:00Z", "day out of range");
    assert_parse_fails("1900-02-29T00:00:00Z", "day out of range");
    assert_parse_fails("2100-02-29T00:00:00Z", "day out of range");
    assert_parse_fails("2024-02-30T00:00:00Z", "day out of range");
}

static void parse_should_check_days_per_month(void **state)
{
    (void)state;
    static const char *last[] = {
        "2023-01-31", "2023-02-28", "2023-03-31", "2023-04-30",
        "2023-05-31", "2023-06-30", "2023-07-31", "2023-08-31",
        "2023-09-30", "2023-10-31", "2023-11-30", "2023-12-31",
    };
    for (size_t i = 0; i < LSS_ARRAY_LEN(last); i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%sT00:00:00Z", last[i]);
        parse_ok(buf);
        buf[9]++; /* one day later */
        if (buf[9] > '9') {
            buf[9] = '0';
            buf[8]++;
        }
        assert_parse_fails(buf, "day out of range");
    }
    assert_parse_fails("2023-01-00T00:00:00Z", "day out of range");
}

static void parse_should_check_field_ranges(void **state)
{
    (void)state;
    assert_parse_fails("2026-00-01T12:00:00Z", "month out of range");
    assert_parse_fails("2026-13-01T12:00:00Z", "month out of range");
    assert_parse_fails("2026-03-01T24:00:00Z", "hour out of range");
    assert_parse_fails("2026-03-01T12:60:00Z", "minute out of range");
    assert_parse_fails("2026-03-01T12:00:61Z", "second out of range");
    assert_parse_fails("2026-03-01T12:00:00+24:00",
                       "time zone hour out of range");
    assert_parse_fails("2026-03-01T12:00:00+05:60",
                       "time zone minute out of range");
}

/* Go's time.Parse refuses second 60, and so do we: a stored instant has
 * no way to say "the leap second". */
static void parse_should_reject_leap_seconds(void **state)
{
    (void)state;
    assert_parse_fails("2016-12-31T23:59:60Z", "second out of range");
    assert_parse_fails("2016-12-31T23:59:60.5Z", "second out of range");
}

static void parse_should_reject_malformed_text(void **state)
{
    (void)state;
    static const char *layout = "expected YYYY-MM-DDTHH:MM:SS";
    assert_parse_fails("", layout);
    assert_parse_fails("2026-03-01", layout);
    assert_parse_fails("2026-03-01T12:00", layout);
    assert_parse_fails("2026-03-01 12:00:00Z", layout);
    assert_parse_fails("2026/03/01T12:00:00Z", layout);
    assert_parse_fails("26-03-01T12:00:00Z", layout);
    assert_parse_fails("+2026-03-01T12:00:00Z", layout);
    assert_parse_fails("20260-03-01T12:00:00Z", layout);
    assert_parse_fails("2026-3-01T12:00:00Z", layout);
    assert_parse_fails("2026-03-01T1:00:00Z", layout);
    assert_parse_fails("2026-03-01T12:0a:00Z", layout);
    assert_parse_fails(" 2026-03-01T12:00:00Z", layout);
    assert_parse_fails("2026-03-01T12:00:00", "missing time zone");
    assert_parse_fails("2026-03-01T12:00:00.5", "missing time zone");
    assert_parse_fails("2026-03-01T12:00:00.Z", "expected digits after '.'");
    assert_parse_fails("2026-03-01T12:00:00,5Z",
                       "expected Z or +HH:MM or -HH:MM");
    assert_parse_fails("2026-03-01T12:00:00 Z",
                       "expected Z or +HH:MM or -HH:MM");
    assert_parse_fails("2026-03-01T12:00:00UTC",
                       "expected Z or +HH:MM or -HH:MM");
    assert_parse_fails("2026-03-01T12:00:00+0530",
                       "expected Z or +HH:MM or -HH:MM");
    assert_parse_fails("2026-03-01T12:00:00+05",
                       "expected Z or +HH:MM or -HH:MM");
    assert_parse_fails("2026-03-01T12:00:00+5:30",
                       "expected Z or +HH:MM or -HH:MM");
    assert_parse_fails("2026-03-01T12:00:00Z ", "extra text after time zone");
    assert_parse_fails("2026-03-01T12:00:00ZZ", "extra text after time zone");
    assert_parse_fails("2026-03-01T12:00:00+05:30Z",
                       "extra text after time zone");
    assert_parse_fails("2026-03-01T12:00:00+05:30:00",
                       "extra text after time zone");
}

static void parse_should_reject_embedded_nul(void **state)
{
    (void)state;
    int64_t us = 0;
    assert_int_equal(lss__time_parse(S("2026-03-01T12:00:00Z\0"), &us, NULL, 0),
                     LSS_ETIME);
    assert_int_equal(lss__time_parse(S("2026-03-01T12:00\0:00Z"), &us, NULL, 0),
                     LSS_ETIME);
}

static void parse_should_keep_to_years_0001_to_9999(void **state)
{
    (void)state;
    assert_true(parse_ok("0001-01-01T00:00:00Z") == LSS_TIME_MIN_US);
    assert_true(parse_ok("9999-12-31T23:59:59.999999999Z") == LSS_TIME_MAX_US);
    assert_true(parse_ok("0001-01-01T05:00:00+05:00") == LSS_TIME_MIN_US);
    assert_parse_fails("0000-12-31T23:59:59Z", "year out of range");
    assert_parse_fails("0001-01-01T00:30:00+01:00", "year out of range");
    assert_parse_fails("9999-12-31T23:00:00-01:00", "year out of range");
}

static void parse_should_truncate_its_detail_to_the_buffer(void **state)
{
    (void)state;
    int64_t us = 0;
    char small[8];
    memset(small, '#', sizeof small);
    assert_int_equal(lss__time_parse(S("2026-13-01T00:00:00Z"), &us, small,
                                     sizeof small),
                     LSS_ETIME);
    assert_string_equal(small, "month o");
    assert_int_equal(lss__time_parse(S("x"), &us, NULL, 0), LSS_ETIME);
    assert_int_equal(lss__time_parse(S("2026-03-01T12:00:00Z"), NULL, NULL, 0),
                     LSS_ETIME);
}

static void parse_bound_should_accept_a_bare_date(void **state)
{
    (void)state;
    int64_t us = 0;
    char detail[LSS_TIME_ERR_MAX];
    assert_int_equal(lss__time_parse_bound(S("2026-03-01"), &us, detail,
                                           sizeof detail),
                     LSS_OK);
    assert_true(us == (noon_s - 43200) * US);
    assert_int_equal(lss__time_parse_bound(S("1969-12-31"), &us, NULL, 0),
                     LSS_OK);
    assert_true(us == INT64_C(-86400) * US);
    assert_int_equal(lss__time_parse_bound(S("2026-03-01T12:00:00.5+00:00"),
                                           &us, NULL, 0),
                     LSS_OK);
    assert_true(us == noon_s * US + 500000);
}

static void parse_bound_should_reject_bad_dates(void **state)
{
    (void)state;
    int64_t us = 0;
    char detail[LSS_TIME_ERR_MAX];
    assert_int_equal(lss__time_parse_bound(S("2023-02-29"), &us, detail,
                                           sizeof detail),
                     LSS_ETIME);
    assert_string_equal(detail, "day out of range");
    assert_int_equal(lss__time_parse_bound(S("0000-01-01"), &us, detail,
                                           sizeof detail),
                     LSS_ETIME);
    assert_string_equal(detail, "year out of range");
    assert_int_equal(lss__time_parse_bound(S("2026-3-1xx"), &us, detail,
                                           sizeof detail),
                     LSS_ETIME);
    assert_string_equal(detail, "expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS");
    assert_int_equal(lss__time_parse_bound(S("2026-03-01T"), &us, detail,
                                           sizeof detail),
                     LSS_ETIME);
    assert_string_equal(detail, "expected YYYY-MM-DDTHH:MM:SS");
    /* Plain parse does not take a bare date. */
    assert_int_equal(lss__time_parse(S("2026-03-01"), &us, NULL, 0), LSS_ETIME);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int64_t random_instant(uint64_t *seed)
{
    uint64_t span = (uint64_t)(LSS_TIME_MAX_US - LSS_TIME_MIN_US) + 1;
    int64_t us = LSS_TIME_MIN_US + (int64_t)(xorshift(seed) % span);
    /* Also produce whole seconds and short fractions often. */
    switch (xorshift(seed) % 4) {
    case 0:
        us -= ((us % US) + US) % US;
        break;
    case 1:
        us -= ((us % 1000) + 1000) % 1000;
        break;
    default:
        break;
    }
    return us;
}

/* Every formatted time matches the regex of 1.2, agrees with the C
 * library's calendar, and parses back to the same microsecond. */
static void format_and_parse_should_round_trip_across_the_range(void **state)
{
    (void)state;
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                             "[0-9]{2}(\\.[0-9]{1,9})?Z$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 200000; i++) {
        int64_t us = random_instant(&seed);
        char out[LSS_TIME_MAX];
        size_t n = lss__time_format(us, out);
        assert_int_equal(n, strlen(out));
        if (regexec(&re, out, 0, NULL, 0) != 0) {
            print_error("'%s' does not match\n", out);
            fail();
        }
        const char *dot = strchr(out, '.');
        if (dot)
            assert_true(out[n - 2] != '0');

        int64_t secs = us / US - (us % US < 0);
        time_t t = (time_t)secs;
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        char want[96];
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d",
                 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
                 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
                 tm.tm_sec % 100);
        assert_memory_equal(out, want, 19);

        int64_t back = 0;
        assert_int_equal(lss__time_parse(out, n, &back, NULL, 0), LSS_OK);
        assert_true(back == us);
    }
    regfree(&re);
}

static void now_should_read_the_realtime_clock_in_microseconds(void **state)
{
    (void)state;
    int64_t before = (int64_t)time(NULL);
    int64_t a = lss__now_us();
    int64_t b = lss__now_us();
    int64_t after = (int64_t)time(NULL);
    assert_true(a / US >= before - 1 && a / US <= after + 1);
    assert_true(b >= a || a - b < US); /* tolerate a clock step */
    char out[LSS_TIME_MAX];
    assert_true(lss__time_format(a, out) > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_should_follow_the_section_1_2_examples),
        cmocka_unit_test(format_should_trim_only_trailing_zeros),
        cmocka_unit_test(format_should_handle_the_epoch_and_before),
        cmocka_unit_test(format_should_cover_years_0001_to_9999),
        cmocka_unit_test(format_should_write_nothing_outside_years_0000_to_9999),
        cmocka_unit_test(format_s_should_write_whole_seconds),
        cmocka_unit_test(parse_should_read_the_section_1_2_examples),
        cmocka_unit_test(parse_should_truncate_fractions_never_round),
        cmocka_unit_test(parse_should_apply_numeric_offsets),
        cmocka_unit_test(parse_should_accept_lower_case_t_and_z),
        cmocka_unit_test(parse_should_know_leap_years),
        cmocka_unit_test(parse_should_check_days_per_month),
        cmocka_unit_test(parse_should_check_field_ranges),
        cmocka_unit_test(parse_should_reject_leap_seconds),
        cmocka_unit_test(parse_should_reject_malformed_text),
        cmocka_unit_test(parse_should_reject_embedded_nul),
        cmocka_unit_test(parse_should_keep_to_years_0001_to_9999),
        cmocka_unit_test(parse_should_truncate_its_detail_to_the_buffer),
        cmocka_unit_test(parse_bound_should_accept_a_bare_date),
        cmocka_unit_test(parse_bound_should_reject_bad_dates),
        cmocka_unit_test(format_and_parse_should_round_trip_across_the_range),
        cmocka_unit_test(now_should_read_the_realtime_clock_in_microseconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
