/* names.c — stream-name rules (category, id, cardinal id) and Message DB's
 * hash_64 for consumer groups (PROTOCOL.md 7.1, 7.7). */
#include "internal.h"
#include "names.h"

#include <string.h>

#include <openssl/evp.h>

/* memchr with a NULL pointer is undefined even for n == 0. */
static const char *find_byte(const char *s, size_t n, char c)
{
    return n ? (const char *)memchr(s, c, n) : NULL;
}

size_t lss_category_len(const char *s, size_t n)
{
    const char *dash = find_byte(s, n, '-');
    return dash ? (size_t)(dash - s) : n;
}

int lss_is_category(const char *s, size_t n)
{
    return find_byte(s, n, '-') == NULL;
}

int lss_stream_id(const char *s, size_t n, const char **id, size_t *id_n)
{
    const char *dash = find_byte(s, n, '-');
    if (!dash)
        return 0;
    size_t off = (size_t)(dash - s) + 1;
    if (id)
        *id = s + off;
    if (id_n)
        *id_n = n - off;
    return 1;
}

int lss_cardinal_id(const char *s, size_t n, const char **card,
                    size_t *card_n)
{
    const char *id;
    size_t id_n;
    if (!lss_stream_id(s, n, &id, &id_n))
        return 0;
    const char *plus = find_byte(id, id_n, '+');
    if (card)
        *card = id;
    if (card_n)
        *card_n = plus ? (size_t)(plus - id) : id_n;
    return 1;
}

static int64_t read_be64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    /* Two's complement reinterpretation without implementation-defined
     * conversion of out-of-range values. */
    if (u <= (uint64_t)INT64_MAX)
        return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

int lss_hash64(const char *s, size_t n, int64_t *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_n = 0;
    if (!out)
        return LSS_EINVAL;
    if (!EVP_Digest(s ? s : "", n, md, &md_n, EVP_md5(), NULL) || md_n < 8)
        return LSS_EINTERNAL;
    *out = read_be64(md);
    return LSS_OK;
}

int lss__hash64_ctx(EVP_MD_CTX *ctx, const EVP_MD *md, const char *s,
                    size_t n, int64_t *out)
{
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int md_n = 0;
    if (!ctx || !md || !out)
        return LSS_EINVAL;
    if (!EVP_DigestInit_ex2(ctx, md, NULL) ||
        !EVP_DigestUpdate(ctx, s ? s : "", n) ||
        !EVP_DigestFinal_ex(ctx, buf, &md_n) || md_n < 8)
        return LSS_EINTERNAL;
    *out = read_be64(buf);
    return LSS_OK;
}

int lss_group_member(const char *s, size_t n, int64_t size, int64_t *member)
{
    const char *card;
    size_t card_n;
    int64_t h;
    if (size <= 0 || !member)
        return LSS_EINVAL;
    if (!lss_cardinal_id(s, n, &card, &card_n) || card_n == 0)
        return 0;
    int rc = lss_hash64(card, card_n, &h);
    if (rc != LSS_OK)
        return rc;
    *member = lss__hash_member(h, size);
    return 1;
}
