/* keysync.h: follows the store's feed of key changes for this process's key cache. */
#ifndef LOOPED_KEYSYNC_H
#define LOOPED_KEYSYNC_H

#include "store.h"

#define KEYSYNC_EVERY_MS 250  /* how often each process reads the feed */
#define KEYSYNC_GRACE_MS 1000 /* api.md: a revoked key is refused everywhere within 1 s */

/* Starts the thread that reads the feed every KEYSYNC_EVERY_MS and forgets the keys it names
 * (keycache_forget, keycache_synced). Returns 0 or -1 (no thread: the cache then keeps
 * entries only KEYSYNC_GRACE_MS). */
int keysync_start(struct store *st);

/* Stops and joins the thread; accepts a process where it never started. */
void keysync_stop(void);

/* Publishes that key id was edited, revoked or deleted: this process forgets it now, every
 * other one at its next read of the feed. If the store refuses the record, the thread retries
 * until it is written (the change itself is already stored). */
void keysync_changed(struct store *st, const char *id);

/* Has the thread take its next turn now (leaks.c: a report to work). Cannot fail. */
void keysync_wake(void);

#endif
