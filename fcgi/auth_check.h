/* auth_check.h: the API-key check of a request (design.md §3): the one place that decides
 * whether an X-API-Key may make this request, and what the key may do (its scopes). */
#ifndef LOOPED_AUTH_CHECK_H
#define LOOPED_AUTH_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "error.h"
#include "http.h"
#include "keycache.h"
#include "ratelimit.h"

struct store;
struct config;

/* Sets up this process's key cache from cfg (LOOPED_KEY_CACHE_TTL_MS; the feed's grace,
 * keysync.h). Call once per process before the request threads start. Cannot fail. */
void auth_check_init(const struct config *cfg);

/* Releases what the calling thread's checks hold (its MAC handle); call before it exits. */
void auth_check_thread_done(void);

/* Who a request was authenticated as. `known` is set as soon as the key is recognised (its
 * digest names a key of the store), whatever the verdict: from then on the request is audited
 * as ka.key's. */
struct principal {
    struct key_auth ka; /* the digest and the key as the cache or the store had it */
    bool known;
};

/* Checks the request's X-API-Key, in order (design.md §3): present, shape and checksum (no
 * store), HMAC digest, key cache, one indexed store read on a miss, revoked, expired, the
 * key's allow-list (req->client_addr), its rate limit (the host's shared counters, ratelimit.h),
 * and then that the key grants `access` to req->resource (SCOPE_NONE: any valid key will do).
 * Wipes the raw key in the request's buffer once digested. Adds the response headers a key's
 * caller is owed (Looped-Key-Expires-At; Sunset and Looped-Key-Rotated-To once the key is known
 * to be still valid, api.md §6.3-§6.4; RateLimit-*, Retry-After) to res, and notes the key's
 * use (last used) once the address and the budget admit it. Returns 0 with *p filled and
 * req->key pointing at p->ka.key, or -1 with err set: missing_api_key, invalid_api_key,
 * revoked_api_key, expired_api_key, ip_not_allowed, rate_limited, insufficient_scope
 * (err->required names the scope), unavailable or internal_error. p->known tells whether to
 * audit; p is the caller's, nothing in it needs freeing. */
int auth_key_verify(struct store *st, struct request *req, enum scope_access access,
                    struct principal *p, struct response *res, struct app_error *err);

/* Adds a rate-limit verdict's RateLimit-Limit, -Remaining and -Reset to res, and Retry-After
 * when it refuses: for a key's budget and for any other one (a leak reporter's, leaks.h). */
void auth_rate_headers(struct response *res, const struct ratelimit_verdict *v);

/* True if key k may use scope bit need (catalog_scope_bit): read_all grants every read
 * (including resources added after the key was made), write_all everything, restricted its
 * scopes, where a write scope implies the read scope of the same resource. */
bool auth_key_grants(const struct api_key *k, uint64_t need);

#endif
