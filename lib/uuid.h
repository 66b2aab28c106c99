/* uuid.h — UUIDv7 generation and the UUID spellings clients may send
 * (PROTOCOL.md 7.4). */
#ifndef LSS_UUID_H
#define LSS_UUID_H

#include <stddef.h>
#include <stdint.h>

/* Length of the canonical text form 8-4-4-4-12. */
#define LSS_UUID_TEXT_LEN 36
/* Room for any lss__uuid_error text, NUL included. */
#define LSS_UUID_ERR_MAX 48
/* Random bytes a generator fetches per refill: 25 ids of 10 bytes. */
#define LSS_UUID_POOL 250

/* Random bits for v7 ids, refilled in blocks: one RAND_bytes call costs
 * about 1.1 us whatever its size up to a few hundred bytes, so fetching 10
 * bytes per id would dominate id generation.  Caller-owned (one per
 * connection or thread; never shared without a lock).  A forked child must
 * call lss__uuid_gen_init on inherited generators, or parent and child
 * would draw the same pending bytes. */
typedef struct lss__uuid_gen {
    size_t used; /* bytes of pool already handed out */
    uint8_t pool[LSS_UUID_POOL];
} lss__uuid_gen;

/* Empty the pool so the next id refills it.  Never fails. */
void lss__uuid_gen_init(lss__uuid_gen *g);

/* A version 7 UUID (RFC 9562): 48-bit big-endian unix_ms, version 7,
 * variant 10, 74 random bits.  lss__uuid_v7 asks RAND_bytes every call;
 * lss__uuid_v7_gen draws from g.  Returns 0; LSS_EINVAL when unix_ms is
 * outside [0, 2^48) or a pointer is NULL; LSS_EINTERNAL if the CSPRNG
 * fails (out is then untouched). */
int lss__uuid_v7(uint8_t out[16], int64_t unix_ms);
int lss__uuid_v7_gen(lss__uuid_gen *g, uint8_t out[16], int64_t unix_ms);

/* Parse s[0..n) in one of the accepted spellings: canonical (36),
 * braced "{...}" (38), URN "urn:uuid:..." (45, prefix case-insensitive),
 * bare 32 hex digits; hex digits in either case; any version and variant.
 * Returns 0 and fills out, or LSS_EUUID (out untouched). */
int lss__uuid_parse(const char *s, size_t n, uint8_t out[16]);

/* Canonical lower-case 8-4-4-4-12 text; exactly 36 bytes, no NUL. */
void lss__uuid_format(const uint8_t in[16], char out[LSS_UUID_TEXT_LEN]);

/* Why lss__uuid_parse rejects s[0..n), for the import reason
 * "invalid id: <detail>": "invalid UUID length: <n>", "invalid urn prefix"
 * or "invalid UUID format"; "" when s parses.  Writes a NUL-terminated text
 * truncated to cap (cap >= LSS_UUID_ERR_MAX never truncates) and returns
 * its untruncated length. */
size_t lss__uuid_error(const char *s, size_t n, char *out, size_t cap);

#endif /* LSS_UUID_H */
