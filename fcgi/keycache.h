/* keycache.h: the per-process cache of API keys by digest (design.md §3 step 3). */
#ifndef LOOPED_KEYCACHE_H
#define LOOPED_KEYCACHE_H

#include "keys.h"

/* A key as last read from the store, under its digest; a negative entry (a digest the store
 * did not know) has key.id "". */
struct key_auth {
    unsigned char digest[AUTH_DIGEST_LEN];
    struct api_key key;
};

enum keycache_result { KEYCACHE_MISS, KEYCACHE_HIT, KEYCACHE_UNKNOWN };

/* Sets the lifetimes (ms): a positive entry lives up to ttl while this process follows the
 * store's feed of key changes (keycache_synced), otherwise up to grace (the promised bound on
 * how long a revoked key may still be accepted); ttl 0 disables the cache. Negative entries
 * live neg_ttl. Call before the threads start. */
void keycache_init(int64_t ttl, int64_t neg_ttl, int64_t grace);

/* Looks digest up. HIT fills out; UNKNOWN means the digest was recently not in the store.
 * MISS makes the caller the one that looks it up in the store, and it must then call
 * keycache_put or keycache_done: threads that miss on the same digest meanwhile wait for that
 * (up to KEYCACHE_WAIT_MS, then they look it up themselves), so a burst of requests with one
 * new key costs one store lookup per process. */
#define KEYCACHE_WAIT_MS 2000
enum keycache_result keycache_get(const unsigned char digest[AUTH_DIGEST_LEN],
                                  struct key_auth *out);

/* Stores what a store lookup that started at read_started (util_mono_ms()) found: a key, or
 * (id "") the fact that the digest is unknown. Dropped if a key was forgotten since the lookup
 * started: what it read may predate that change. */
void keycache_put(const struct key_auth *k, int64_t read_started);

/* Ends a lookup that found nothing to store (the store failed). */
void keycache_done(const unsigned char digest[AUTH_DIGEST_LEN]);

/* Forgets the keys with these ids at once (edited, revoked or deleted). */
void keycache_forget(const char *const *ids, size_t n);

/* Records that every key change made before poll_started (util_mono_ms()) has been applied
 * with keycache_forget; missed says that changes may have been lost since the previous call
 * (the feed was not read for so long that records may have been pruned), so that entries
 * read before now are never trusted beyond grace again. Positive entries are trusted beyond
 * grace (up to ttl) only while the last such call is less than grace ago. */
void keycache_synced(int64_t poll_started, bool missed);

#endif
