/* malloc_count.c — an LD_PRELOAD interposer that counts the process's
 * malloc, calloc and realloc calls (SQLite's, libcrypto's, libc's own and
 * ours) and forwards them to glibc.  lss-bench finds the counter with
 * dlsym(RTLD_DEFAULT, "lss_bench_malloc_calls") and prints "-" when this
 * module is not loaded; `lss-bench --count-malloc` re-executes itself with
 * it preloaded.
 *
 * glibc exports its allocator as __libc_malloc & co., so forwarding needs no
 * dlsym(RTLD_NEXT) (which may itself allocate while we are being resolved).
 * free and the aligned allocators are left alone: they do not allocate a new
 * block through malloc's API, and memory stays glibc's either way. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

static atomic_ullong calls;

__attribute__((visibility("default"))) unsigned long long
lss_bench_malloc_calls(void);

unsigned long long lss_bench_malloc_calls(void)
{
    return atomic_load_explicit(&calls, memory_order_relaxed);
}

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}
