// cxx.cc — the public header alone, compiled as C++11: it must build without
// a warning, and its functions must have C linkage (the link proves it).
// Nothing else may be included here.
#include "streamstore.h"

static_assert(sizeof(lss_status) == sizeof(int), "lss_status is int-sized");
static_assert(LSS_VERSION_NUMBER > 0, "version macros are constants");

namespace {

void *no_malloc(void *, size_t)
{
    return nullptr;
}

void *no_realloc(void *, void *, size_t, size_t)
{
    return nullptr;
}

void no_free(void *, void *)
{
}

} // namespace

int main()
{
    lss_allocator a = {no_malloc, no_realloc, no_free, nullptr};
    lss_span s = {"abc", 3};
    lss_status st = LSS_EVERSION;
    lss_db *db = nullptr;
    int (*version)(void) = lss_version_number;

    if (a.malloc(a.ctx, 1) != nullptr || s.n != 3 || st != -13 || db)
        return 1;
    if (version() != LSS_VERSION_NUMBER)
        return 2;
    if (lss_strerror(LSS_ENOMEM)[0] == '\0' || lss_errname(LSS_ROW)[0] != 'R')
        return 3;
    return 0;
}
