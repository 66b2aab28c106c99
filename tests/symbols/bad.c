/* bad.c — a shared library that breaks every rule check_symbols.py enforces,
 * plus one name that follows them; the symbols self-test must flag exactly
 * the breaches.  Never linked into anything. */
#undef NDEBUG
#include <assert.h>
#include <err.h>
#include <stdlib.h>
#include <unistd.h>

int bad_symbol(int x);
int lssnoprefix(int x);
int lss__leaked_internal(int x);
int lss_fine(int x);

int bad_symbol(int x)
{
    if (x == 1)
        abort();
    if (x == 2)
        exit(2);
    if (x == 3)
        _exit(3);
    if (x == 4)
        errx(4, "x is %d", x);
    assert(x != 5);
    return x;
}

int lssnoprefix(int x)
{
    return x + 1;
}

int lss__leaked_internal(int x)
{
    return x + 2;
}

int lss_fine(int x)
{
    return bad_symbol(x);
}
