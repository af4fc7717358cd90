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

/* Sets the lifetimes: positive entries ttl_ms (0 disables the cache), negative neg_ttl_ms.
 * Call before the threads start. */
void keycache_init(int64_t ttl_ms, int64_t neg_ttl_ms);

/* Looks digest up. HIT fills out; UNKNOWN means the digest was recently not in the store. */
enum keycache_result keycache_get(const unsigned char digest[AUTH_DIGEST_LEN],
                                  struct key_auth *out);

/* Stores a key found in the store, or (id "") the fact that digest is unknown. */
void keycache_put(const struct key_auth *k);

/* Forgets the key with this id at once (revoke, delete, edit in this process). */
void keycache_forget(const char *key_id);

#endif
