/* fuzz_names.c — stream names (PROTOCOL.md 7.1, 7.7), namespace tokens and
 * their base64url (4.1-4.3), storage names (10.2) and UUID spellings (7.4).
 *
 * Properties, on any input of up to MAX_IN bytes:
 *   - names: category(s) is a prefix without '-', id(s) is what follows the
 *     first '-', and for any category c without '-' and any id i,
 *     parse(c + "-" + i) == (c, i); the cardinal id is the id up to '+';
 *     the consumer-group member is in [0, size), the same with a reused
 *     digest context, and absent exactly when the cardinal id is;
 *   - tokens: parsing gives LSS_OK or LSS_ETOKEN with a NUL-terminated text
 *     starting "invalid token format: " (truncated safely to a small
 *     buffer); an accepted token re-formatted from its namespace and random
 *     part parses to the same namespace; for any namespace id of 1..255
 *     bytes parse(generate(id)) == id, and the empty id is LSS_EINVAL;
 *   - base64url: decode(encode(x)) == x; decoding gives LSS_OK or LSS_EINVAL
 *     at an offset inside the input, and decode(encode(decode(x))) ==
 *     decode(x);
 *   - storage names: the encoded form uses only [a-z0-9_-] and %XX and
 *     decodes back to the id (LSS_ETOOBIG past 200 bytes), the hashed form
 *     is "nh-" + 64 lower-case hex + ".db";
 *   - UUIDs: an accepted spelling formats canonically and parses back to
 *     the same bytes; lss__uuid_error is "" exactly for accepted ones. */
#include "fuzz.h"

#include <openssl/evp.h>

#include "names.h"
#include "token.h"
#include "uuid.h"

#define MAX_IN 4096
#define PREFIX "invalid token format: "

static int span_eq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static void check_name(const char *s, size_t n)
{
    size_t cl = lss_category_len(s, n);
    CHECK(cl <= n, "category longer than the name");
    CHECK(!cl || memchr(s, '-', cl) == NULL, "'-' inside the category");
    const char *id = NULL;
    size_t idn = 0;
    int has = lss_stream_id(s, n, &id, &idn);
    CHECK(has == !lss_is_category(s, n), "stream_id and is_category disagree");
    CHECK(has == (cl < n), "stream_id and category_len disagree");
    if (has)
        CHECK(id == s + cl + 1 && idn == n - cl - 1 && s[cl] == '-',
              "id is not what follows the first '-'");
    const char *card = NULL;
    size_t cn = 0;
    CHECK(lss_cardinal_id(s, n, &card, &cn) == has, "cardinal_id presence");
    if (has) {
        CHECK(card == id && cn <= idn, "cardinal id not a prefix of the id");
        CHECK(!cn || memchr(card, '+', cn) == NULL, "'+' in the cardinal id");
        CHECK(cn == idn || card[cn] == '+', "cardinal id stops early");
    }

    int64_t size = (n ? (unsigned char)s[0] : 0) + 1, member = -1;
    int rc = lss_group_member(s, n, size, &member);
    CHECK(rc == (has && cn > 0), "group member presence: %d", rc);
    if (rc == 1) {
        CHECK(member >= 0 && member < size, "member %lld of %lld",
              (long long)member, (long long)size);
        int64_t h1, h2;
        CHECK(lss_hash64(card, cn, &h1) == LSS_OK, "hash64");
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_MD *md = EVP_MD_fetch(NULL, "MD5", NULL);
        CHECK(ctx && md, "libcrypto");
        CHECK(lss__hash64_ctx(ctx, md, card, cn, &h2) == LSS_OK && h1 == h2,
              "hash64 with a context differs");
        EVP_MD_free(md);
        EVP_MD_CTX_free(ctx);
        CHECK(lss__hash_member(h1, size) == member, "member is not the hash");
    }
    CHECK(lss_group_member(s, n, 0, &member) == LSS_EINVAL, "size 0 accepted");
}

/* format(category, id) then parse: c is the input without '-' up to the
 * middle, i the rest. */
static void check_name_roundtrip(const char *s, size_t n)
{
    char *c = malloc(n + 2);
    CHECK(c != NULL, "out of memory");
    size_t half = n / 2, cl = 0;
    for (size_t k = 0; k < half; k++)
        if (s[k] != '-')
            c[cl++] = s[k];
    size_t il = n - half;
    c[cl] = '-';
    memcpy(c + cl + 1, s + half, il);
    size_t tn = cl + 1 + il;
    char *t = fuzz_dup(c, tn);
    const char *id;
    size_t idn;
    CHECK(lss_category_len(t, tn) == cl, "category of c-i is not c");
    CHECK(lss_stream_id(t, tn, &id, &idn) == 1 && span_eq(id, idn, s + half, il),
          "id of c-i is not i");
    CHECK(lss_category_len(t, cl) == cl && lss_is_category(t, cl),
          "a category without '-' is not a category");
    free(t);
    free(c);
}

static void check_b64(const char *s, size_t n)
{
    /* encode then decode: the identity */
    size_t en = LSS_B64URL_LEN(n), got = 0, bad = 0;
    char *e = malloc(en ? en : 1);
    CHECK(e != NULL, "out of memory");
    CHECK(lss__b64url_encode(s, n, e, en, &got) == LSS_OK && got == en,
          "encode");
    if (en)
        CHECK(lss__b64url_encode(s, n, e, en - 1, &got) == LSS_ENOSPACE,
              "encode into a short buffer");
    char *d = malloc(n ? n : 1);
    CHECK(d != NULL, "out of memory");
    CHECK(lss__b64url_decode(e, en, d, n, &got, &bad) == LSS_OK && got == n &&
              (n == 0 || memcmp(d, s, n) == 0),
          "decode(encode(x)) != x");
    free(d);
    free(e);

    /* decode the input itself */
    size_t need = 0;
    int rc = lss__b64url_decode(s, n, NULL, 0, &need, &bad);
    CHECK(rc == LSS_OK || rc == LSS_EINVAL || rc == LSS_ENOSPACE,
          "decode: %d", rc);
    if (rc == LSS_EINVAL) {
        CHECK(bad < n, "bad offset %zu of %zu", bad, n);
        return;
    }
    CHECK(need <= n, "decoded longer than the text");
    d = malloc(need ? need : 1);
    CHECK(d != NULL, "out of memory");
    CHECK(lss__b64url_decode(s, n, d, need, &got, &bad) == LSS_OK &&
              got == need,
          "decode with room");
    en = LSS_B64URL_LEN(need);
    e = malloc(en ? en : 1);
    CHECK(e != NULL, "out of memory");
    lss__b64url_encode(d, need, e, en, &got);
    char *d2 = malloc(need ? need : 1);
    CHECK(d2 != NULL, "out of memory");
    CHECK(lss__b64url_decode(e, en, d2, need, &got, &bad) == LSS_OK &&
              got == need && (need == 0 || memcmp(d, d2, need) == 0),
          "decode(encode(decode(x))) != decode(x)");
    free(d2);
    free(e);
    free(d);
}

/* PROTOCOL.md 4.2 step by step, written apart from lib/token.c: the text
 * the first failing step must give (its fixed part), or NULL when the
 * token parses. */
static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static const char *expected_token_error(const char *t, size_t n, char *buf,
                                        size_t cap)
{
    if (n < 3 || memcmp(t, "ns_", 3) != 0)
        return PREFIX "missing 'ns_' prefix";
    const char *r = t + 3;
    size_t rn = n - 3, parts = 1, last = 0;
    for (size_t i = 0; i < rn; i++)
        if (r[i] == '_') {
            parts++;
            last = i;
        }
    if (parts < 2)
        return PREFIX "expected 2 parts after prefix, got 1";
    const char *h = r + last + 1;
    size_t bn = last, hn = rn - last - 1, hex = 0, chars = 0;
    while (hex < hn && ((h[hex] >= '0' && h[hex] <= '9') ||
                        (h[hex] >= 'a' && h[hex] <= 'f') ||
                        (h[hex] >= 'A' && h[hex] <= 'F')))
        hex++;
    int b64ok = 1;
    for (size_t i = 0; i < bn; i++) {
        if (r[i] == '\r' || r[i] == '\n')
            continue;
        if (!b64_char(r[i]))
            b64ok = 0;
        chars++;
    }
    if (chars % 4 == 1)
        b64ok = 0;
    if (parts > 2 && !(hn == 64 && hex == hn && b64ok)) {
        snprintf(buf, cap, PREFIX "expected 2 parts after prefix, got %zu",
                 parts);
        return buf;
    }
    if (hn != 64) {
        snprintf(buf, cap,
                 PREFIX "random part must be 64 hex characters, got %zu", hn);
        return buf;
    }
    if (hex != hn)
        return PREFIX "random part is not valid hexadecimal: "
                      "encoding/hex: invalid byte: U+";
    if (!b64ok)
        return PREFIX "namespace part is not valid base64url: "
                      "illegal base64 data at input byte ";
    if (chars == 0)
        return PREFIX "namespace is empty";
    return NULL;
}

static void check_token_parse(const char *t, size_t n)
{
    char ns[LSS_NS_ID_MAX + 1];
    char err[LSS_TOKEN_ERR_MAX];
    size_t nl = (size_t)-1;
    memset(err, 'x', sizeof err);
    int rc = lss__token_parse(t, n, ns, sizeof ns, &nl, err, sizeof err);
    CHECK(rc == LSS_OK || rc == LSS_ETOKEN || rc == LSS_ENOSPACE,
          "token_parse: %d", rc);
    char ebuf[LSS_TOKEN_ERR_MAX];
    const char *want = expected_token_error(t, n, ebuf, sizeof ebuf);
    CHECK((rc == LSS_ETOKEN) == (want != NULL),
          "token_parse gives %d where PROTOCOL.md 4.2 expects %s", rc,
          want ? want : "success");
    if (want)
        CHECK(strncmp(err, want, strlen(want)) == 0,
              "token error '%s' where PROTOCOL.md 4.2 expects '%s'", err,
              want);
    if (rc == LSS_ETOKEN) {
        CHECK(memchr(err, 0, sizeof err) != NULL, "error not NUL-terminated");
        CHECK(strncmp(err, PREFIX, strlen(PREFIX)) == 0 &&
                  strlen(err) > strlen(PREFIX),
              "error text: %s", err);
        CHECK(nl == (size_t)-1, "ns_len set on an error");
        char small[5];
        memset(small, 'x', sizeof small);
        CHECK(lss__token_parse(t, n, ns, sizeof ns, &nl, small, sizeof small) ==
                      LSS_ETOKEN &&
                  small[4] == '\0',
              "error not truncated safely");
        return;
    }
    CHECK(nl >= 1, "empty namespace accepted");
    CHECK(lss__token_parse(t, n, NULL, 0, &nl, NULL, 0) == LSS_ENOSPACE,
          "parse without room");
    if (rc == LSS_ENOSPACE)
        return; /* longer than any namespace id; the verdict is what counts */
    /* Re-format from (namespace, random part): same namespace. */
    const char *h = t + n - LSS_TOKEN_HEX_LEN;
    size_t bl = LSS_B64URL_LEN(nl), fl = 3 + bl + 1 + LSS_TOKEN_HEX_LEN, got;
    char *f = malloc(fl);
    CHECK(f != NULL, "out of memory");
    memcpy(f, "ns_", 3);
    lss__b64url_encode(ns, nl, f + 3, bl, &got);
    f[3 + bl] = '_';
    memcpy(f + 3 + bl + 1, h, LSS_TOKEN_HEX_LEN);
    char ns2[LSS_NS_ID_MAX + 1];
    size_t nl2 = 0;
    CHECK(lss__token_parse(f, fl, ns2, sizeof ns2, &nl2, err, sizeof err) ==
                  LSS_OK &&
              span_eq(ns, nl, ns2, nl2),
          "parse(format(parse(t))) != parse(t): %s", err);
    free(f);
}

static void check_namespace(const char *id, size_t n)
{
    char tok[LSS_TOKEN_MAX];
    size_t tl = 0;
    if (n == 0) {
        CHECK(lss__token_generate(id, n, tok, sizeof tok, &tl) == LSS_EINVAL,
              "token for an empty namespace");
        CHECK(lss__storage_name(id, n, LSS__STORAGE_ENCODED, tok, sizeof tok,
                                &tl) == LSS_EINVAL,
              "storage name for an empty namespace");
        return;
    }
    CHECK(lss__token_generate(id, n, tok, sizeof tok, &tl) == LSS_OK,
          "token_generate");
    CHECK(tl == LSS__TOKEN_LEN(n) && tl <= LSS_TOKEN_MAX, "token length");
    CHECK(lss__token_generate(id, n, tok, tl - 1, &tl) == LSS_ENOSPACE,
          "token into a short buffer");
    char ns[LSS_NS_ID_MAX];
    size_t nl = 0;
    char err[LSS_TOKEN_ERR_MAX];
    CHECK(lss__token_parse(tok, tl, ns, sizeof ns, &nl, err, sizeof err) ==
                  LSS_OK &&
              span_eq(ns, nl, id, n),
          "parse(generate(id)) != id: %s", err);

    char name[LSS_STORAGE_NAME_MAX];
    size_t len = 0;
    int rc = lss__storage_name(id, n, LSS__STORAGE_ENCODED, name, sizeof name,
                               &len);
    CHECK(rc == LSS_OK || rc == LSS_ETOOBIG, "storage name: %d", rc);
    if (rc == LSS_OK) {
        CHECK(len >= 7 && len < sizeof name && name[len] == '\0' &&
                  memcmp(name, "ns-", 3) == 0 &&
                  memcmp(name + len - 3, ".db", 3) == 0,
              "storage name shape: %s", name);
        CHECK(len - 6 <= 200, "encoded part over 200 bytes");
        char dec[LSS_STORAGE_NAME_MAX];
        size_t dl = 0;
        for (size_t i = 3; i < len - 3; i++) {
            char c = name[i];
            if (c == '%') {
                CHECK(i + 2 < len - 3, "truncated escape");
                unsigned v = 0;
                for (int k = 1; k <= 2; k++) {
                    char x = name[i + (size_t)k];
                    CHECK((x >= '0' && x <= '9') || (x >= 'A' && x <= 'F'),
                          "escape not upper-case hex");
                    v = v * 16 + (unsigned)(x <= '9' ? x - '0' : x - 'A' + 10);
                }
                CHECK(!((v >= 'a' && v <= 'z') || (v >= '0' && v <= '9') ||
                        v == '_' || v == '-'),
                      "a safe byte escaped");
                dec[dl++] = (char)v;
                i += 2;
            } else {
                CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                          c == '_' || c == '-',
                      "unsafe byte in a storage name");
                dec[dl++] = c;
            }
        }
        CHECK(span_eq(dec, dl, id, n), "storage name does not decode to id");
    }
    rc = lss__storage_name(id, n, LSS__STORAGE_HASHED, name, sizeof name, &len);
    CHECK(rc == LSS_OK && len == 70 && memcmp(name, "nh-", 3) == 0 &&
              strcmp(name + 67, ".db") == 0,
          "hashed storage name");
    for (size_t i = 3; i < 67; i++)
        CHECK((name[i] >= '0' && name[i] <= '9') ||
                  (name[i] >= 'a' && name[i] <= 'f'),
              "hashed name not lower-case hex");
}

static void check_uuid(const char *s, size_t n)
{
    uint8_t u[16], u2[16];
    char txt[LSS_UUID_TEXT_LEN], why[LSS_UUID_ERR_MAX];
    int rc = lss__uuid_parse(s, n, u);
    size_t wl = lss__uuid_error(s, n, why, sizeof why);
    CHECK(wl < sizeof why && strlen(why) == wl, "uuid_error length");
    if (rc != LSS_OK) {
        CHECK(rc == LSS_EUUID && wl > 0, "rejected UUID: %d, '%s'", rc, why);
        return;
    }
    CHECK(wl == 0, "accepted UUID has an error text: %s", why);
    lss__uuid_format(u, txt);
    for (int i = 0; i < LSS_UUID_TEXT_LEN; i++)
        CHECK((i == 8 || i == 13 || i == 18 || i == 23)
                  ? txt[i] == '-'
                  : ((txt[i] >= '0' && txt[i] <= '9') ||
                     (txt[i] >= 'a' && txt[i] <= 'f')),
              "not canonical: %.36s", txt);
    CHECK(lss__uuid_parse(txt, sizeof txt, u2) == LSS_OK &&
              memcmp(u, u2, 16) == 0,
          "parse(format(u)) != u");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IN)
        return 0;
    char *s = fuzz_dup(data, size);
    check_name(s, size);
    check_name_roundtrip(s, size);
    check_b64(s, size);
    check_token_parse(s, size);
    check_namespace(s, size < LSS_NS_ID_MAX ? size : LSS_NS_ID_MAX);
    check_uuid(s, size);
    free(s);
    return 0;
}
