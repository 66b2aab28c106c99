/* walbuf.h — a VFS shim that writes each commit's WAL frames with one
 * write() instead of two per frame.  For connections that commit with
 * synchronous=FULL only (walbuf.c says why). */
#ifndef LSS_WALBUF_H
#define LSS_WALBUF_H

#include <sqlite3.h>

/* The name of the shim over the current default VFS, registered (not as
 * the default) on first use; NULL if it cannot be registered, in which
 * case the caller opens with the default VFS. */
const char *lss__walbuf_vfs(void);

#endif
