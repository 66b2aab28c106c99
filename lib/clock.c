/* clock.c — wall clock and RFC 3339 text, with civil-date arithmetic of
 * our own so that no locale, TZ or other process-global state is read. */
#include "internal.h"
#include "clock.h"

#include <string.h>
#include <time.h>

#define US_PER_S 1000000
#define S_PER_DAY 86400

/* Format bounds: 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define FORMAT_MIN_S (-62167219200LL)
#define FORMAT_MAX_S 253402300799LL

int64_t lss__now_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / 1000;
}

/* Howard Hinnant's days_from_civil / civil_from_days: proleptic Gregorian,
 * exact for every int64 day count we can produce here. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int64_t y, int m)
{
    static const uint8_t days[12] = {31, 28, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static char *put_digits(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* secs is the floored second, us the remainder in [0, 1e6). */
static size_t format_parts(int64_t secs, int32_t us, char out[LSS_TIME_MAX])
{
    if (secs < FORMAT_MIN_S || secs > FORMAT_MAX_S) {
        out[0] = '\0';
        return 0;
    }
    int64_t days = secs / S_PER_DAY;
    int64_t sod = secs % S_PER_DAY;
    if (sod < 0) {
        sod += S_PER_DAY;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);

    char *p = out;
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, sod % 60, 2);
    if (us) {
        int digits = 6;
        while (us % 10 == 0) {
            us /= 10;
            digits--;
        }
        *p++ = '.';
        p = put_digits(p, us, digits);
    }
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - out);
}

size_t lss__time_format(int64_t unix_us, char out[LSS_TIME_MAX])
{
    int64_t secs = unix_us / US_PER_S;
    int64_t rem = unix_us % US_PER_S;
    if (rem < 0) {
        rem += US_PER_S;
        secs--;
    }
    return format_parts(secs, (int32_t)rem, out);
}

size_t lss__time_format_s(int64_t unix_s, char out[LSS_TIME_MAX])
{
    return format_parts(unix_s, 0, out);
}

static int set_detail(char *detail, size_t cap, const char *text)
{
    if (cap) {
        size_t len = strlen(text);
        size_t k = len < cap ? len : cap - 1;
        memcpy(detail, text, k);
        detail[k] = '\0';
    }
    return LSS_ETIME;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether s matches pattern byte for byte, where 'D' in the pattern is
 * any decimal digit and 'T' is 'T' or 't' (RFC 3339 section 5.6, NOTE). */
static int match_layout(const char *s, const char *pattern)
{
    for (size_t i = 0; pattern[i]; i++) {
        char p = pattern[i];
        if (p == 'D' ? !is_digit(s[i])
                     : p == 'T' ? s[i] != 'T' && s[i] != 't' : s[i] != p)
            return 0;
    }
    return 1;
}

static int num2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* The digits of "YYYY-MM-DD" at s, already matched; days since the epoch. */
static int parse_date(const char *s, int64_t *days, char *detail, size_t cap)
{
    int y = num2(s) * 100 + num2(s + 2), m = num2(s + 5), d = num2(s + 8);
    if (m < 1 || m > 12)
        return set_detail(detail, cap, "month out of range");
    if (d < 1 || d > days_in_month(y, m))
        return set_detail(detail, cap, "day out of range");
    *days = days_from_civil(y, m, d);
    return LSS_OK;
}

/* Fraction digits after '.', truncated to microseconds. */
static size_t parse_fraction(const char *s, size_t n, int32_t *us)
{
    size_t i = 0;
    int32_t v = 0;
    for (; i < n && is_digit(s[i]); i++)
        if (i < 6)
            v = v * 10 + (s[i] - '0');
    for (size_t k = i; k < 6; k++)
        v *= 10;
    *us = v;
    return i;
}

/* "Z", "z" or "±HH:MM" filling s[0..n) exactly; offset east of UTC. */
static int parse_zone(const char *s, size_t n, int64_t *offset_s,
                      char *detail, size_t cap)
{
    if (n == 0)
        return set_detail(detail, cap, "missing time zone");
    if (s[0] == 'Z' || s[0] == 'z') {
        if (n != 1)
            return set_detail(detail, cap, "extra text after time zone");
        *offset_s = 0;
        return LSS_OK;
    }
    if ((s[0] != '+' && s[0] != '-') || n < 6 || !match_layout(s + 1, "DD:DD"))
        return set_detail(detail, cap, "expected Z or +HH:MM or -HH:MM");
    if (n != 6)
        return set_detail(detail, cap, "extra text after time zone");
    int h = num2(s + 1), m = num2(s + 4);
    if (h > 23)
        return set_detail(detail, cap, "time zone hour out of range");
    if (m > 59)
        return set_detail(detail, cap, "time zone minute out of range");
    *offset_s = (int64_t)(h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1);
    return LSS_OK;
}

static int check_range(int64_t secs, char *detail, size_t cap)
{
    if (secs < LSS_TIME_MIN_US / US_PER_S || secs > LSS_TIME_MAX_US / US_PER_S)
        return set_detail(detail, cap, "year out of range");
    return LSS_OK;
}

int lss__time_parse(const char *s, size_t n, int64_t *unix_us, char *detail,
                    size_t detail_cap)
{
    int64_t days, offset_s;
    int32_t us = 0;
    int rc;

    if (!unix_us || (!s && n))
        return set_detail(detail, detail_cap, "invalid argument");
    if (n < 19 || !match_layout(s, "DDDD-DD-DDTDD:DD:DD"))
        return set_detail(detail, detail_cap,
                          "expected YYYY-MM-DDTHH:MM:SS");
    if ((rc = parse_date(s, &days, detail, detail_cap)) != LSS_OK)
        return rc;
    int hh = num2(s + 11), mm = num2(s + 14), ss = num2(s + 17);
    if (hh > 23)
        return set_detail(detail, detail_cap, "hour out of range");
    if (mm > 59)
        return set_detail(detail, detail_cap, "minute out of range");
    if (ss > 59)
        return set_detail(detail, detail_cap, "second out of range");

    size_t i = 19;
    if (i < n && s[i] == '.') {
        size_t k = parse_fraction(s + i + 1, n - i - 1, &us);
        if (k == 0)
            return set_detail(detail, detail_cap,
                              "expected digits after '.'");
        i += 1 + k;
    }
    if ((rc = parse_zone(s + i, n - i, &offset_s, detail, detail_cap)) !=
        LSS_OK)
        return rc;

    int64_t secs = days * S_PER_DAY + hh * 3600 + mm * 60 + ss - offset_s;
    if ((rc = check_range(secs, detail, detail_cap)) != LSS_OK)
        return rc;
    *unix_us = secs * US_PER_S + us;
    return LSS_OK;
}

int lss__time_parse_bound(const char *s, size_t n, int64_t *unix_us,
                          char *detail, size_t detail_cap)
{
    int64_t days;
    int rc;
    if (n != 10 || !s || !unix_us)
        return lss__time_parse(s, n, unix_us, detail, detail_cap);
    if (!match_layout(s, "DDDD-DD-DD"))
        return set_detail(detail, detail_cap,
                          "expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS");
    if ((rc = parse_date(s, &days, detail, detail_cap)) != LSS_OK ||
        (rc = check_range(days * S_PER_DAY, detail, detail_cap)) != LSS_OK)
        return rc;
    *unix_us = days * S_PER_DAY * US_PER_S;
    return LSS_OK;
}
