/* xorshift.h — the reliability harnesses' one random number generator:
 * 32-bit xorshift, reproducible from a printed seed (never stuck at 0). */
#ifndef LSS_TEST_XORSHIFT_H
#define LSS_TEST_XORSHIFT_H

static inline unsigned xorshift(unsigned *s)
{
    unsigned x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x ? x : 0x9e3779b9u;
}

#endif
