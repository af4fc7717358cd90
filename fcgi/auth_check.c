/* auth_check.c: the API-key check of a request, from the raw header to the scope decision. */
#include "auth_check.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "config.h"
#include "keysync.h"
#include "metrics.h"
#include "ratelimit.h"
#include "store.h"
#include "util.h"

#define UNKNOWN_TTL_MS 5000 /* how long a digest the store did not know stays known unknown */

void auth_check_init(const struct config *cfg)
{
    keycache_init(cfg->key_cache_ttl_ms, UNKNOWN_TTL_MS, KEYSYNC_GRACE_MS);
}

void auth_check_thread_done(void)
{
    auth_thread_done();
}

bool auth_key_grants(const struct api_key *k, uint64_t need)
{
    uint64_t writes;

    switch (k->permission) {
    case PERM_WRITE_ALL:
        return true;
    case PERM_READ_ALL:
        return (need & SCOPE_WRITE_BITS) == 0;
    case PERM_RESTRICTED:
        /* Spread each write bit onto the read bit below it: write implies read. */
        writes = k->scopes & SCOPE_WRITE_BITS;
        return ((k->scopes | (writes >> 1)) & need) == need;
    default:
        return false;
    }
}

/* The key of digest, from the cache or else from the store (one read by the digest's
 * document), and into the cache either way. Returns 0 with p->ka filled, 1 for a digest no key
 * has, -1 with err set (the store failed). */
static int key_lookup(struct store *st, struct principal *p, struct app_error *err)
{
    char hex[AUTH_DIGEST_HEX];
    int64_t read_started;
    int rc;

    switch (keycache_get(p->ka.digest, &p->ka)) {
    case KEYCACHE_HIT:
        metrics_key_check(METRICS_KEY_HIT);
        return 0;
    case KEYCACHE_UNKNOWN:
        metrics_key_check(METRICS_KEY_UNKNOWN);
        return 1;
    case KEYCACHE_MISS:
        break;
    }
    auth_hex(p->ka.digest, hex);
    read_started = util_mono_ms();
    rc = store_key_by_hash(st, hex, &p->ka.key, err);
    if (rc < 0) {
        keycache_done(p->ka.digest);
        metrics_key_check(METRICS_KEY_MISS);
        return -1;
    }
    if (rc == 1)
        memset(&p->ka.key, 0, sizeof p->ka.key); /* remembered as unknown */
    keycache_put(&p->ka, read_started);
    metrics_key_check(rc == 1 ? METRICS_KEY_UNKNOWN : METRICS_KEY_MISS);
    return rc;
}

/* The allow-list step: the client address (req->client_addr) in one of k's blocks. */
static bool client_allowed(const struct request *req, const struct api_key *k)
{
    struct ipnet a;

    return k->nips == 0 || (ipnet_addr_parse(req->client_addr, &a) == 0 && keys_ip_allowed(k, &a));
}

void auth_rate_headers(struct response *res, const struct ratelimit_verdict *v)
{
    char n[16];

    snprintf(n, sizeof n, "%u", (unsigned)v->limit);
    http_header_add(res, "RateLimit-Limit", n);
    snprintf(n, sizeof n, "%u", (unsigned)v->remaining);
    http_header_add(res, "RateLimit-Remaining", n);
    snprintf(n, sizeof n, "%u", (unsigned)v->reset_s);
    http_header_add(res, "RateLimit-Reset", n);
    if (v->allowed)
        return;
    snprintf(n, sizeof n, "%u", (unsigned)v->retry_after_s);
    http_header_add(res, "Retry-After", n);
}

/* The rate-limit step: counts the request and adds the RateLimit-* headers (and Retry-After
 * when refused). Returns 0, or -1 with err set to rate_limited. */
static int rate_take(const struct api_key *k, int64_t now, struct response *res,
                     struct app_error *err)
{
    struct ratelimit_verdict v;

    ratelimit_take(k->id, k->rate.requests, k->rate.per_seconds, now, &v);
    auth_rate_headers(res, &v);
    if (v.allowed)
        return 0;
    metrics_rate_limited();
    return error_set(err, ERR_RATE_LIMITED,
                     "This API key allows %u requests per %u seconds; retry in %u seconds.",
                     (unsigned)k->rate.requests, (unsigned)k->rate.per_seconds,
                     (unsigned)v.retry_after_s);
}

int auth_key_verify(struct store *st, struct request *req, enum scope_access access,
                    struct principal *p, struct response *res, struct app_error *err)
{
    const struct api_key *k = &p->ka.key;
    char when[UTIL_TIME_LEN], sunset[UTIL_HTTP_DATE_LEN];
    int64_t now, ends;
    uint64_t need;
    int rc;

    p->known = false;
    if (req->api_key == NULL || req->api_key[0] == '\0') {
        metrics_key_check(METRICS_KEY_REFUSED);
        return error_set(err, ERR_MISSING_API_KEY, NULL);
    }
    if (!auth_key_well_formed(req->api_key)) {
        metrics_key_check(METRICS_KEY_REFUSED);
        return error_set(err, ERR_INVALID_API_KEY, NULL);
    }
    rc = auth_key_digest(req->api_key, p->ka.digest);
    /* The raw key is not needed past this point: wipe it in the library's buffer. */
    auth_wipe(req->api_key, strlen(req->api_key));
    if (rc != 0) {
        error_set(err, ERR_INTERNAL, NULL);
        return error_log(err, "auth: HMAC failed");
    }
    rc = key_lookup(st, p, err);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return error_set(err, ERR_INVALID_API_KEY, NULL);

    p->known = true;
    req->key = k;
    if (k->expires_at)
        http_header_add(res, "Looped-Key-Expires-At", util_time_format(k->expires_at, when));
    if (k->revoked_at)
        return error_set(err, ERR_REVOKED_API_KEY, NULL);
    now = util_now_ms();
    if (k->expires_at && k->expires_at <= now)
        return error_set(err, ERR_EXPIRED_API_KEY, NULL);
    /* Still working, but not for long: a rotation's grace period, or an expiry within 7 days. */
    if ((ends = keys_sunset(k, now)) != 0)
        http_header_add(res, "Sunset", util_http_date(ends, sunset));
    if (k->rotated_to[0])
        http_header_add(res, "Looped-Key-Rotated-To", k->rotated_to_hint);
    /* A request from elsewhere neither spends the key's budget nor counts as its use. */
    if (!client_allowed(req, k))
        return error_set(err, ERR_IP_NOT_ALLOWED, NULL);
    if (k->rate.requests && rate_take(k, now, res, err) != 0)
        return -1;
    audit_touch(k->id, now, req->client_addr, k->last_used_at == 0);

    if (access == SCOPE_NONE)
        return 0;
    if (req->resource == NULL) /* a route that names a scope without a {resource}: refuse */
        return error_set(err, ERR_INTERNAL, NULL);
    need = catalog_scope_bit(req->resource, access);
    if (!auth_key_grants(k, need)) {
        snprintf(err->required, sizeof err->required, "%s:%s", req->resource->name,
                 access == SCOPE_WRITE ? "write" : "read");
        return error_set(err, ERR_INSUFFICIENT_SCOPE, "This API key does not have the scope %s.",
                         err->required);
    }
    return 0;
}
