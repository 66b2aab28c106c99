/* token.h — namespace tokens (PROTOCOL.md 4.1-4.3), base64url, SHA-256
 * helpers and SQLite storage names (PROTOCOL.md 10.2). */
#ifndef LSS_TOKEN_H
#define LSS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* Unpadded base64url length of n bytes. */
#define LSS_B64URL_LEN(n) ((n) / 3 * 4 + ((n) % 3 * 8 + 5) / 6)
/* Hex digits of a token's random part and of a SHA-256 digest. */
#define LSS_TOKEN_HEX_LEN 64
#define LSS_SHA256_HEX_LEN 64
/* Longest namespace id (PROTOCOL.md 10.1). */
#define LSS_NS_ID_MAX 255
/* Length of a token for an n-byte namespace id; streamstore.h's
 * LSS_TOKEN_MAX is LSS__TOKEN_LEN(LSS_NS_ID_MAX). */
#define LSS__TOKEN_LEN(n) (3 + LSS_B64URL_LEN(n) + 1 + LSS_TOKEN_HEX_LEN)
/* Room for any lss__token_parse error text, NUL included. */
#define LSS_TOKEN_ERR_MAX 128
/* Room for any storage name, NUL included ("ns-" + 200 + ".db"). */
#define LSS_STORAGE_NAME_MAX 207

/* Unpadded base64url (RFC 4648 section 5) of p[0..n).  *out_len is set to
 * the encoded length; returns 0 having written it (no NUL), or
 * LSS_ENOSPACE having written nothing when cap is smaller. */
int lss__b64url_encode(const void *p, size_t n, char *out, size_t cap,
                       size_t *out_len);

/* Decode unpadded base64url exactly as Go's
 * base64.RawURLEncoding.DecodeString accepts it: CR and LF are skipped,
 * '=', '+', '/' and every other byte outside the alphabet are rejected, a
 * lone final character (length = 1 mod 4 not counting CR/LF) is rejected,
 * non-zero padding bits are tolerated.  Returns 0 having written *out_len
 * bytes; LSS_EINVAL with *bad_at = the byte offset Go would report in
 * "illegal base64 data at input byte <k>"; LSS_ENOSPACE (nothing written)
 * with *out_len = the decoded size when it exceeds cap.  Validation comes
 * first, so out may be NULL with cap 0 to check input only. */
int lss__b64url_decode(const char *s, size_t n, void *out, size_t cap,
                       size_t *out_len, size_t *bad_at);

/* Parse token t[0..n) into its namespace id (PROTOCOL.md 4.2, steps 1-9).
 * Returns 0 with the id in ns_out[0..*ns_len) (no NUL); LSS_ETOKEN with
 * the full error text, "invalid token format: " prefix included, written
 * NUL-terminated into err (truncated to err_cap; LSS_TOKEN_ERR_MAX never
 * truncates); LSS_ENOSPACE with *ns_len = the id's size when ns_cap is too
 * small.  Neither allocates nor keeps state.  Thread-safe. */
int lss__token_parse(const char *t, size_t n, char *ns_out, size_t ns_cap,
                     size_t *ns_len, char *err, size_t err_cap);

/* A fresh token for namespace ns[0..n): "ns_" + base64url(ns) + "_" + 64
 * lower-case hex digits from 32 CSPRNG bytes.  Written to out without NUL,
 * length in *out_len.  LSS_EINVAL for an empty ns; LSS_ENOSPACE (nothing
 * written, *out_len = needed) when cap is too small; LSS_EINTERNAL if the
 * CSPRNG fails. */
int lss__token_generate(const char *ns, size_t n, char *out, size_t cap,
                        size_t *out_len);

/* Lower-case hex of SHA-256(p[0..n)): 64 bytes, no NUL.  Returns 0, or
 * LSS_EINTERNAL if libcrypto fails (out is then filled with 'x', which no
 * stored hash can equal). */
int lss__sha256_hex(const void *p, size_t n, char out[LSS_SHA256_HEX_LEN]);

/* 1 if a[0..n) == b[0..n), else 0, in time independent of the contents. */
int lss__ct_equal(const void *a, const void *b, size_t n);

/* The two SQLite storage-name candidates of PROTOCOL.md 10.2. */
enum lss__storage_form {
    /* "ns-" + E(id) + ".db", E percent-encoding (%XX, upper-case hex) every
     * byte outside [a-z0-9_-]; only when E(id) is at most 200 bytes. */
    LSS__STORAGE_ENCODED = 0,
    /* "nh-" + lower-case hex SHA-256(id) + ".db": always available; the
     * fallback when E(id) is too long or the first name is taken. */
    LSS__STORAGE_HASHED = 1
};

/* Storage name of namespace id[0..n) in the given form, written
 * NUL-terminated; *out_len is its length without the NUL.  LSS_EINVAL for
 * an empty id or unknown form; LSS_ETOOBIG when form is
 * LSS__STORAGE_ENCODED and E(id) exceeds 200 bytes (use the hashed form);
 * LSS_ENOSPACE (nothing written) when cap <= *out_len; LSS_EINTERNAL if
 * libcrypto fails. */
int lss__storage_name(const char *id, size_t n, int form, char *out,
                      size_t cap, size_t *out_len);

#endif /* LSS_TOKEN_H */
