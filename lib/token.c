/* token.c — namespace tokens (PROTOCOL.md 4), the base64url codec they use,
 * SHA-256 helpers and SQLite storage names (PROTOCOL.md 10.2). */
#include "internal.h"
#include "token.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#ifdef LSS_TOKEN_MAX
_Static_assert(LSS_TOKEN_MAX == LSS__TOKEN_LEN(LSS_NS_ID_MAX),
               "streamstore.h's LSS_TOKEN_MAX must fit the longest token");
#endif

#define ERR_PREFIX "invalid token format: "
#define ENCODED_MAX 200

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

static void hex_encode(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_lower[p[i] >> 4];
        out[2 * i + 1] = hex_lower[p[i] & 0x0f];
    }
}

int lss__b64url_encode(const void *p, size_t n, char *out, size_t cap,
                       size_t *out_len)
{
    const unsigned char *in = p;
    size_t need = LSS_B64URL_LEN(n);
    *out_len = need;
    if (need > cap)
        return LSS_ENOSPACE;
    size_t i = 0;
    char *o = out;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                     in[i + 2];
        *o++ = b64url_alphabet[v >> 18];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
        *o++ = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        *o++ = b64url_alphabet[in[i] >> 2];
        *o++ = b64url_alphabet[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        *o++ = b64url_alphabet[v >> 10];
        *o++ = b64url_alphabet[v >> 4 & 63];
        *o++ = b64url_alphabet[(v & 15) << 2];
    }
    return LSS_OK;
}

/* Go decodes in quanta of four alphabet characters, skipping CR/LF; it
 * reports an illegal byte at its own offset, and a quantum holding a single
 * character at end of input at len(s) - 1 (whatever CR/LF follow it).
 * Padding '=' is an ordinary illegal byte for the raw encoding.  This
 * returns the number of decoded bytes, or (size_t)-1 with *bad_at set. */
static size_t b64url_scan(const char *s, size_t n, size_t *bad_at)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n')
            continue;
        if (b64url_value(c) < 0) {
            *bad_at = i;
            return (size_t)-1;
        }
        chars++;
    }
    if (chars % 4 == 1) {
        *bad_at = n - 1;
        return (size_t)-1;
    }
    return chars / 4 * 3 + (chars % 4 ? chars % 4 - 1 : 0);
}

int lss__b64url_decode(const char *s, size_t n, void *out, size_t cap,
                       size_t *out_len, size_t *bad_at)
{
    size_t bad = 0;
    size_t need = b64url_scan(s, n, &bad);
    if (need == (size_t)-1) {
        if (bad_at)
            *bad_at = bad;
        return LSS_EINVAL;
    }
    if (out_len)
        *out_len = need;
    if (need > cap)
        return LSS_ENOSPACE;

    unsigned char *o = out;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            continue; /* CR or LF: anything else failed the scan */
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits (< 8) are the tolerated padding bits. */
    return LSS_OK;
}

#if defined(__GNUC__) || defined(__clang__)
#define LSS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LSS_PRINTF(f, a)
#endif

static int token_error(char *err, size_t cap, const char *fmt, ...)
    LSS_PRINTF(3, 4);

static int token_error(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return LSS_ETOKEN;
}

/* Go's "%#U" of a byte b: "U+00XX 'c'" when strconv.IsPrint(rune(b)), the
 * character UTF-8 encoded; just "U+00XX" otherwise.  For runes up to 0xFF,
 * IsPrint is exactly 0x20..0x7E and 0xA1..0xFF except the soft hyphen. */
static int hex_error(char *err, size_t cap, unsigned char b)
{
    int printable = (b >= 0x20 && b <= 0x7e) || (b >= 0xa1 && b != 0xad);
    char ch[3] = {0};
    if (b < 0x80) {
        ch[0] = (char)b;
    } else {
        ch[0] = (char)(0xc0 | b >> 6);
        ch[1] = (char)(0x80 | (b & 0x3f));
    }
    if (!printable)
        return token_error(err, cap,
                           ERR_PREFIX "random part is not valid hexadecimal: "
                                      "encoding/hex: invalid byte: U+%04X",
                           (unsigned)b);
    return token_error(err, cap,
                       ERR_PREFIX "random part is not valid hexadecimal: "
                                  "encoding/hex: invalid byte: U+%04X '%s'",
                       (unsigned)b, ch);
}

/* Index of the first non-hex byte of h[0..n), or n. */
static size_t first_non_hex(const char *h, size_t n)
{
    size_t i = 0;
    while (i < n && is_hex((unsigned char)h[i]))
        i++;
    return i;
}

int lss__token_parse(const char *t, size_t n, char *ns_out, size_t ns_cap,
                     size_t *ns_len, char *err, size_t err_cap)
{
    size_t bad = 0, dec_len = 0;

    if (err && err_cap)
        err[0] = '\0';
    if (!t || n < 3 || memcmp(t, "ns_", 3) != 0)
        return token_error(err, err_cap, ERR_PREFIX "missing 'ns_' prefix");
    const char *r = t + 3;
    size_t rn = n - 3, parts = 1, last = 0;
    for (size_t i = 0; i < rn; i++) {
        if (r[i] == '_') {
            parts++;
            last = i;
        }
    }
    if (parts < 2)
        return token_error(err, err_cap,
                           ERR_PREFIX "expected 2 parts after prefix, got 1");
    const char *b = r, *h = r + last + 1;
    size_t bn = last, hn = rn - last - 1;

    if (parts > 2 &&
        (hn != LSS_TOKEN_HEX_LEN || first_non_hex(h, hn) != hn ||
         b64url_scan(b, bn, &bad) == (size_t)-1))
        return token_error(err, err_cap,
                           ERR_PREFIX "expected 2 parts after prefix, got %zu",
                           parts);
    if (hn != LSS_TOKEN_HEX_LEN)
        return token_error(err, err_cap,
                           ERR_PREFIX
                           "random part must be 64 hex characters, got %zu",
                           hn);
    size_t k = first_non_hex(h, hn);
    if (k != hn)
        return hex_error(err, err_cap, (unsigned char)h[k]);

    int rc = lss__b64url_decode(b, bn, ns_out, ns_cap, &dec_len, &bad);
    if (rc == LSS_EINVAL)
        return token_error(err, err_cap,
                           ERR_PREFIX "namespace part is not valid base64url: "
                                      "illegal base64 data at input byte %zu",
                           bad);
    if (dec_len == 0)
        return token_error(err, err_cap, ERR_PREFIX "namespace is empty");
    if (ns_len)
        *ns_len = dec_len;
    return rc; /* LSS_OK, or LSS_ENOSPACE with the size needed */
}

int lss__token_generate(const char *ns, size_t n, char *out, size_t cap,
                        size_t *out_len)
{
    unsigned char rnd[LSS_TOKEN_HEX_LEN / 2];
    size_t b_len = LSS_B64URL_LEN(n);
    size_t need = LSS__TOKEN_LEN(n);

    if (!ns || n == 0 || !out_len)
        return LSS_EINVAL;
    *out_len = need;
    if (!out || need > cap)
        return LSS_ENOSPACE;
    if (RAND_bytes(rnd, (int)sizeof rnd) != 1)
        return LSS_EINTERNAL;
    memcpy(out, "ns_", 3);
    lss__b64url_encode(ns, n, out + 3, b_len, &b_len);
    out[3 + b_len] = '_';
    hex_encode(rnd, sizeof rnd, out + 3 + b_len + 1);
    OPENSSL_cleanse(rnd, sizeof rnd);
    return LSS_OK;
}

int lss__sha256_hex(const void *p, size_t n, char out[LSS_SHA256_HEX_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_n = 0;
    if (!EVP_Digest(p ? p : "", n, md, &md_n, EVP_sha256(), NULL) ||
        md_n != LSS_SHA256_HEX_LEN / 2) {
        memset(out, 'x', LSS_SHA256_HEX_LEN);
        return LSS_EINTERNAL;
    }
    hex_encode(md, md_n, out);
    return LSS_OK;
}

int lss__ct_equal(const void *a, const void *b, size_t n)
{
    return n == 0 || CRYPTO_memcmp(a, b, n) == 0;
}

static int storage_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int lss__storage_name(const char *id, size_t n, int form, char *out,
                      size_t cap, size_t *out_len)
{
    if (!id || n == 0 || !out_len)
        return LSS_EINVAL;

    if (form == LSS__STORAGE_HASHED) {
        *out_len = 3 + LSS_SHA256_HEX_LEN + 3;
        if (!out || cap <= *out_len)
            return LSS_ENOSPACE;
        char hex[LSS_SHA256_HEX_LEN];
        int rc = lss__sha256_hex(id, n, hex);
        if (rc != LSS_OK)
            return rc;
        memcpy(out, "nh-", 3);
        memcpy(out + 3, hex, sizeof hex);
        memcpy(out + 3 + sizeof hex, ".db", 4);
        return LSS_OK;
    }
    if (form != LSS__STORAGE_ENCODED)
        return LSS_EINVAL;

    size_t e_len = 0;
    for (size_t i = 0; i < n; i++)
        e_len += storage_safe((unsigned char)id[i]) ? 1 : 3;
    *out_len = 3 + e_len + 3;
    if (e_len > ENCODED_MAX)
        return LSS_ETOOBIG;
    if (!out || cap <= *out_len)
        return LSS_ENOSPACE;
    char *o = out;
    memcpy(o, "ns-", 3);
    o += 3;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (storage_safe(c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex_upper[c >> 4];
            *o++ = hex_upper[c & 0x0f];
        }
    }
    memcpy(o, ".db", 4);
    return LSS_OK;
}
