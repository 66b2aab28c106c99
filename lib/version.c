/* version.c — run-time twins of the version macros. */
#include "internal.h"

int lss_version_number(void)
{
    return LSS_VERSION_NUMBER;
}

const char *lss_version_string(void)
{
    return LSS_VERSION_STRING;
}
