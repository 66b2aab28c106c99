/* rpc.c — the EventoDB JSON-RPC methods over the lss_* API: request bytes
 * in, response bytes out (PROTOCOL.md sections 5, 6, 12.1, 12.2). */
#include "store.h"

const char *lss_rpc_method_name(int method)
{
    switch (method) {
#define LSS__RPC_NAME(name, value, text) \
    case (value):                        \
        return text;
        LSS_RPC_METHOD_MAP(LSS__RPC_NAME)
#undef LSS__RPC_NAME
    default:
        return "unknown";
    }
}

void lss__rpc_free(lss_conn *c)
{
    (void)c; /* no per-session state yet */
}
