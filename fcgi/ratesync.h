/* ratesync.h: shares the host's rate-limit counts with the other hosts through the store. */
#ifndef LOOPED_RATESYNC_H
#define LOOPED_RATESYNC_H

#include "store.h"

#define RATESYNC_EVERY_MS 500  /* a host's counts reach the others within about a second */
#define RATESYNC_STALE_MS 2000 /* a reporter silent this long is replaced */

/* Starts the thread that, in the one process of the host holding the reporter lease
 * (ratelimit_lease), writes the counts that changed and reads the other hosts' every
 * RATESYNC_EVERY_MS. host is this host's id (LOOPED_HOST_ID; the caller's, kept until
 * ratesync_stop). Returns 0 or -1 (no thread: this process never reports, another may). */
int ratesync_start(struct store *st, const char *host);

/* Stops and joins the thread; accepts a process where it never started. */
void ratesync_stop(void);

#endif
