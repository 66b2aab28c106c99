/* uuid.c — UUIDv7 generation, parsing of the accepted spellings and the
 * canonical text form (PROTOCOL.md 7.4). */
#include "internal.h"
#include "uuid.h"

#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#define V7_RANDOM_BYTES 10

/* Byte offsets of the 16 hex pairs inside the 36-character form. */
static const uint8_t canonical_pairs[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                            19, 21, 24, 26, 28, 30, 32, 34};

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* ASCII lower case; maps nothing else into a-f */
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int hex_pair(const char *p, uint8_t *out)
{
    int hi = hex_value((unsigned char)p[0]);
    int lo = hex_value((unsigned char)p[1]);
    if (hi < 0 || lo < 0)
        return 0;
    *out = (uint8_t)(hi << 4 | lo);
    return 1;
}

static void v7_layout(uint8_t out[16], int64_t unix_ms, const uint8_t *rnd)
{
    uint64_t ms = (uint64_t)unix_ms;
    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)(ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | (rnd[0] & 0x0f));
    out[7] = rnd[1];
    out[8] = (uint8_t)(0x80 | (rnd[2] & 0x3f));
    memcpy(out + 9, rnd + 3, 7);
}

static int v7_ms_ok(int64_t unix_ms)
{
    return unix_ms >= 0 && unix_ms < ((int64_t)1 << 48);
}

void lss__uuid_gen_init(lss__uuid_gen *g)
{
    g->used = sizeof g->pool;
}

int lss__uuid_v7(uint8_t out[16], int64_t unix_ms)
{
    uint8_t rnd[V7_RANDOM_BYTES];
    if (!out || !v7_ms_ok(unix_ms))
        return LSS_EINVAL;
    if (RAND_bytes(rnd, (int)sizeof rnd) != 1)
        return LSS_EINTERNAL;
    v7_layout(out, unix_ms, rnd);
    return LSS_OK;
}

int lss__uuid_v7_gen(lss__uuid_gen *g, uint8_t out[16], int64_t unix_ms)
{
    if (!g || !out || !v7_ms_ok(unix_ms))
        return LSS_EINVAL;
    if (g->used > sizeof g->pool - V7_RANDOM_BYTES) {
        if (RAND_bytes(g->pool, (int)sizeof g->pool) != 1)
            return LSS_EINTERNAL;
        g->used = 0;
    }
    v7_layout(out, unix_ms, g->pool + g->used);
    g->used += V7_RANDOM_BYTES;
    return LSS_OK;
}

/* The 36-character body shared by the canonical, braced and URN forms. */
static int parse_canonical(const char *s, uint8_t out[16])
{
    uint8_t tmp[16];
    if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
        return 0;
    for (int i = 0; i < 16; i++)
        if (!hex_pair(s + canonical_pairs[i], &tmp[i]))
            return 0;
    memcpy(out, tmp, 16);
    return 1;
}

static int parse_bare(const char *s, uint8_t out[16])
{
    uint8_t tmp[16];
    for (int i = 0; i < 16; i++)
        if (!hex_pair(s + 2 * i, &tmp[i]))
            return 0;
    memcpy(out, tmp, 16);
    return 1;
}

static int urn_prefix_ok(const char *s)
{
    static const char prefix[] = "urn:uuid:";
    for (int i = 0; i < 9; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if (c != (unsigned char)prefix[i])
            return 0;
    }
    return 1;
}

/* 0 parsed, 1 bad length, 2 bad URN prefix, 3 bad format. */
static int classify(const char *s, size_t n, uint8_t out[16])
{
    switch (n) {
    case 32:
        return parse_bare(s, out) ? 0 : 3;
    case 36:
        return parse_canonical(s, out) ? 0 : 3;
    case 38:
        if (s[0] != '{' || s[37] != '}')
            return 3;
        return parse_canonical(s + 1, out) ? 0 : 3;
    case 45:
        if (!urn_prefix_ok(s))
            return 2;
        return parse_canonical(s + 9, out) ? 0 : 3;
    default:
        return 1;
    }
}

int lss__uuid_parse(const char *s, size_t n, uint8_t out[16])
{
    if (!out || (!s && n))
        return LSS_EUUID;
    return classify(s, n, out) == 0 ? LSS_OK : LSS_EUUID;
}

void lss__uuid_format(const uint8_t in[16], char out[LSS_UUID_TEXT_LEN])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        char *p = out + canonical_pairs[i];
        p[0] = digits[in[i] >> 4];
        p[1] = digits[in[i] & 0x0f];
    }
    out[8] = out[13] = out[18] = out[23] = '-';
}

size_t lss__uuid_error(const char *s, size_t n, char *out, size_t cap)
{
    uint8_t scratch[16];
    char len_text[LSS_UUID_ERR_MAX];
    const char *text;
    switch ((!s && n) ? 3 : classify(s, n, scratch)) {
    case 0:
        text = "";
        break;
    case 1:
        snprintf(len_text, sizeof len_text, "invalid UUID length: %zu", n);
        text = len_text;
        break;
    case 2:
        text = "invalid urn prefix";
        break;
    default:
        text = "invalid UUID format";
        break;
    }
    size_t len = strlen(text);
    if (cap) {
        size_t k = len < cap ? len : cap - 1;
        memcpy(out, text, k);
        out[k] = '\0';
    }
    return len;
}
