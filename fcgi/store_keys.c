/* store_keys.c: API keys in MongoDB, with their digests, last uses and change feed. */
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "log.h"
#include "store_priv.h"
#include "util.h"

/* rate_limit {requests, per_seconds} | null and allowed_ips [normal forms]; what does not
 * read back as valid is left out (no limit, or one entry fewer: never a wider limit than
 * stored is the concern of the writer, which validated them). */
static void limits_from_bson(const bson_t *d, struct api_key *k)
{
    bson_iter_t it, sub;
    const char *why;

    if (bson_iter_init_find(&it, d, "rate_limit") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &sub)) {
        int64_t req = 0, per = 0;

        while (bson_iter_next(&sub)) {
            if (strcmp(bson_iter_key(&sub), "requests") == 0 && BSON_ITER_HOLDS_NUMBER(&sub))
                req = bson_iter_as_int64(&sub);
            else if (strcmp(bson_iter_key(&sub), "per_seconds") == 0 &&
                     BSON_ITER_HOLDS_NUMBER(&sub))
                per = bson_iter_as_int64(&sub);
        }
        if (req >= 1 && req <= 1000000 && per >= 1 && per <= 86400) {
            k->rate.requests = (uint32_t)req;
            k->rate.per_seconds = (uint32_t)per;
        }
    }
    if (bson_iter_init_find(&it, d, "allowed_ips") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub) && k->nips < KEY_IPS_MAX) {
            if (BSON_ITER_HOLDS_UTF8(&sub) &&
                ipnet_parse(bson_iter_utf8(&sub, NULL), &k->ips[k->nips], &why) == 0)
                k->nips++;
        }
    }
}

static void append_limits(bson_t *doc, const struct api_key *k)
{
    char buf[IPNET_TEXT_MAX], idx[16];
    const char *key;
    bson_t sub;

    if (k->rate.requests) {
        BSON_APPEND_DOCUMENT_BEGIN(doc, "rate_limit", &sub);
        BSON_APPEND_INT32(&sub, "requests", (int32_t)k->rate.requests);
        BSON_APPEND_INT32(&sub, "per_seconds", (int32_t)k->rate.per_seconds);
        bson_append_document_end(doc, &sub);
    } else {
        BSON_APPEND_NULL(doc, "rate_limit");
    }
    BSON_APPEND_ARRAY_BEGIN(doc, "allowed_ips", &sub);
    for (uint32_t i = 0; i < k->nips; i++) {
        bson_uint32_to_string(i, &key, idx, sizeof idx);
        bson_append_utf8(&sub, key, -1, ipnet_format(&k->ips[i], buf), -1);
    }
    bson_append_array_end(doc, &sub);
}

static void key_from_bson(const bson_t *d, struct api_key *k)
{
    bson_iter_t it, arr;

    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", store_utf8(d, "_id"));
    snprintf(k->team_id, sizeof k->team_id, "%s", store_utf8(d, "team_id"));
    snprintf(k->name, sizeof k->name, "%s", store_utf8(d, "name"));
    keys_permission_parse(store_utf8(d, "permission"), &k->permission);
    if (bson_iter_init_find(&it, d, "scopes") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            uint64_t bit;

            /* A scope of a resource this build does not know grants nothing. */
            if (BSON_ITER_HOLDS_UTF8(&arr) &&
                catalog_scope_parse(bson_iter_utf8(&arr, NULL), &bit) == 0)
                k->scopes |= bit;
        }
    }
    snprintf(k->hint, sizeof k->hint, "%s", store_utf8(d, "hint"));
    snprintf(k->hash, sizeof k->hash, "%s", store_utf8(d, "hash"));
    k->expires_at = store_date(d, "expires_at");
    k->created_at = store_date(d, "created_at");
    k->updated_at = store_date(d, "updated_at");
    k->last_used_at = store_date(d, "last_used_at");
    k->revoked_at = store_date(d, "revoked_at");
    snprintf(k->created_by, sizeof k->created_by, "%s", store_utf8(d, "created_by"));
    snprintf(k->revoked_by, sizeof k->revoked_by, "%s", store_utf8(d, "revoked_by"));
    snprintf(k->last_used_ip, sizeof k->last_used_ip, "%s", store_utf8(d, "last_used_ip"));
    snprintf(k->rotated_from, sizeof k->rotated_from, "%s", store_utf8(d, "rotated_from"));
    snprintf(k->rotated_to, sizeof k->rotated_to, "%s", store_utf8(d, "rotated_to"));
    snprintf(k->rotated_to_hint, sizeof k->rotated_to_hint, "%s", store_utf8(d, "rotated_to_hint"));
    limits_from_bson(d, k);
}

static void append_scopes(bson_t *doc, const struct api_key *k)
{
    json_t *list = catalog_scopes_json(k->permission == PERM_RESTRICTED ? k->scopes : 0);
    bson_t arr;
    size_t i;
    json_t *s;
    char key[16];

    bson_append_array_begin(doc, "scopes", -1, &arr);
    json_array_foreach (list, i, s) {
        const char *k2;

        bson_uint32_to_string((uint32_t)i, &k2, key, sizeof key);
        bson_append_utf8(&arr, k2, -1, json_string_value(s), -1);
    }
    bson_append_array_end(doc, &arr);
    json_decref(list);
}

/* api_key_digests: {_id: hash, key_id, team_id}, one per key. A lookup by digest is then a
 * lookup by _id, which every store answers from its primary key; FerretDB's embedded SQLite
 * backend does not use the unique index on api_keys.hash and scans the collection instead
 * (about 400 ms for 10,000 keys against about 2 ms by _id, tests/bench). The _id also
 * keeps digests unique. */
static int digest_insert(struct store *st, const char *hash, const char *key_id, const char *team,
                         struct app_error *err)
{
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(hash), "key_id", BCON_UTF8(key_id), "team_id", BCON_UTF8(team));
    int rc = store_insert(st, "api_key_digests", doc, err);

    bson_destroy(doc);
    return rc;
}

/* Best effort: an orphan digest document points at no key and is ignored by the lookup. */
static void digest_delete(struct store *st, const char *hash)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(hash));
    struct app_error err = {0};
    int64_t n;

    if (store_delete(st, "api_key_digests", filter, false, &n, &err) != 0)
        log_warn("store: digest document of a removed key left behind: %s", err.log);
    error_clear(&err);
    bson_destroy(filter);
}

int store_key_insert(struct store *st, const struct api_key *k, struct app_error *err)
{
    bson_t doc = BSON_INITIALIZER;
    int rc;

    BSON_APPEND_UTF8(&doc, "_id", k->id);
    BSON_APPEND_UTF8(&doc, "team_id", k->team_id);
    BSON_APPEND_UTF8(&doc, "name", k->name);
    BSON_APPEND_UTF8(&doc, "permission", keys_permission_name(k->permission));
    append_scopes(&doc, k);
    BSON_APPEND_UTF8(&doc, "hash", k->hash);
    BSON_APPEND_INT32(&doc, "hash_version", AUTH_HASH_VERSION);
    BSON_APPEND_UTF8(&doc, "hint", k->hint);
    store_append_date(&doc, "expires_at", k->expires_at);
    store_append_date(&doc, "created_at", k->created_at);
    BSON_APPEND_UTF8(&doc, "created_by", k->created_by);
    store_append_date(&doc, "updated_at", k->updated_at);
    store_append_date(&doc, "revoked_at", 0);
    BSON_APPEND_NULL(&doc, "revoked_by");
    append_limits(&doc, k);
    if (k->rotated_from[0])
        BSON_APPEND_UTF8(&doc, "rotated_from", k->rotated_from);
    else
        BSON_APPEND_NULL(&doc, "rotated_from");
    BSON_APPEND_NULL(&doc, "rotated_to");
    /* The digest document first: a key is never findable by _id without it. */
    rc = digest_insert(st, k->hash, k->id, k->team_id, err);
    if (rc == 0 && (rc = store_insert(st, "api_keys", &doc, err)) != 0)
        digest_delete(st, k->hash);
    bson_destroy(&doc);
    return rc;
}

struct key_rows {
    struct api_key *out;
    size_t limit, n;
};

static int key_row(const bson_t *doc, void *ctx)
{
    struct key_rows *r = ctx;

    if (r->n < r->limit)
        key_from_bson(doc, &r->out[r->n++]);
    return 0;
}

static int usage_row(const bson_t *doc, void *ctx)
{
    struct key_rows *r = ctx;
    const char *id = store_utf8(doc, "_id");

    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->out[i].id, id) == 0) {
            r->out[i].last_used_at = store_date(doc, "last_used_at");
            snprintf(r->out[i].last_used_ip, sizeof r->out[i].last_used_ip, "%s",
                     store_utf8(doc, "last_used_ip"));
        }
    }
    return 0;
}

/* Adds the last use of the r->n keys found. Returns 0 or -1.
 *
 * Last-used times live in api_key_usage, not in the key's document: FerretDB applies an
 * update by rewriting the whole document, so a last-used write racing a revoke or an edit
 * of the same document could undo it. Nothing automatic ever writes to api_keys. */
static int key_usage(struct store *st, struct key_rows *r, struct app_error *err)
{
    bson_t ufilter = BSON_INITIALIZER, in, ids;
    char idx[16];
    const char *key;
    int rc;

    if (r->n == 0)
        return 0;
    if (r->n == 1) {
        /* Exactly {_id}: the one filter FerretDB's SQLite backend answers from an index. */
        BSON_APPEND_UTF8(&ufilter, "_id", r->out[0].id);
    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&ufilter, "_id", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
        for (size_t i = 0; i < r->n; i++) {
            bson_uint32_to_string((uint32_t)i, &key, idx, sizeof idx);
            bson_append_utf8(&ids, key, -1, r->out[i].id, -1);
        }
        bson_append_array_end(&in, &ids);
        bson_append_document_end(&ufilter, &in);
    }
    rc = store_find_each(st, "api_key_usage", &ufilter, NULL, usage_row, r, err);
    bson_destroy(&ufilter);
    return rc;
}

/* Finds at most limit keys matching filter with opts into out, with their last use. */
static int key_find(struct store *st, const bson_t *filter, const bson_t *opts, struct api_key *out,
                    size_t limit, size_t *n, struct app_error *err)
{
    struct key_rows r = {out, limit, 0};
    int rc = store_find_each(st, "api_keys", filter, opts, key_row, &r, err);

    *n = r.n;
    return rc != 0 ? rc : key_usage(st, &r, err);
}

/* The one key matching filter (which it destroys): 0 and *out, 1 if none, -1. */
static int key_find_one(struct store *st, bson_t *filter, struct api_key *out,
                        struct app_error *err)
{
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    size_t n;
    int rc = key_find(st, filter, opts, out, 1, &n, err);

    bson_destroy(filter);
    bson_destroy(opts);
    return rc < 0 ? -1 : n == 0;
}

/* The key a digest document names. */
struct digest_ref {
    char key_id[KEY_ID_LEN];
    char team_id[KEY_TEAM_MAX];
};

static int digest_row(const bson_t *doc, void *ctx)
{
    struct digest_ref *d = ctx;

    snprintf(d->key_id, sizeof d->key_id, "%s", store_utf8(doc, "key_id"));
    snprintf(d->team_id, sizeof d->team_id, "%s", store_utf8(doc, "team_id"));
    return 0;
}

static int exists_row(const bson_t *doc, void *ctx)
{
    *(bool *)ctx = true;
    return 0;
}

bool store_key_digests_check(struct store *st)
{
    bson_t *filter;
    struct app_error err = {0};
    bool found = false;

    if (atomic_load(&st->digests_complete))
        return true;
    filter = BCON_NEW("_id", BCON_UTF8("api_key_digests"), "complete", BCON_BOOL(true));
    if (store_find_each(st, "meta", filter, NULL, exists_row, &found, &err) == 0 && found)
        atomic_store(&st->digests_complete, true);
    error_clear(&err);
    bson_destroy(filter);
    return found;
}

int store_key_by_hash(struct store *st, const char *hash, struct api_key *out,
                      struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(hash));
    struct digest_ref d = {"", ""};
    int rc = store_find_each(st, "api_key_digests", filter, NULL, digest_row, &d, err);

    bson_destroy(filter);
    if (rc != 0)
        return -1;
    if (d.key_id[0] == '\0') {
        /* Unknown, once looped-admin init has given every key its document. */
        if (atomic_load(&st->digests_complete))
            return 1;
        /* A key made before the digest documents: found by its hash, and given one. */
        rc = key_find_one(st, BCON_NEW("hash", BCON_UTF8(hash)), out, err);
        if (rc == 0 && digest_insert(st, hash, out->id, out->team_id, err) != 0)
            error_clear(err); /* a concurrent lookup added it, or it is added next time */
        return rc;
    }
    /* With its last use: whether the key was ever used decides how soon a use is written. */
    rc = store_key_get(st, d.team_id, d.key_id, out, err);
    /* An orphan (its key deleted) or, never expected, a digest naming another key. */
    return rc == 0 && strcmp(out->hash, hash) != 0 ? 1 : rc;
}

/* Adds the digest documents keys made before them lack, then the marker that says so. */
struct backfill {
    struct store *st;
    struct app_error *err;
    size_t added;
};

static int backfill_row(const bson_t *doc, void *ctx)
{
    struct backfill *b = ctx;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(store_utf8(doc, "hash")));
    bson_t *update = BCON_NEW("$set", "{", "key_id", BCON_UTF8(store_utf8(doc, "_id")), "team_id",
                              BCON_UTF8(store_utf8(doc, "team_id")), "}");
    int64_t matched = 0;
    int rc = store_update_one(b->st, "api_key_digests", filter, update, true, &matched, b->err);

    bson_destroy(filter);
    bson_destroy(update);
    b->added += rc == 0 && matched == 0;
    return rc == 0 ? 0 : -1;
}

int store_key_digests_backfill(struct store *st, size_t *added, struct app_error *err)
{
    bson_t *opts =
        BCON_NEW("projection", "{", "hash", BCON_INT32(1), "team_id", BCON_INT32(1), "}");
    bson_t *filter = BCON_NEW("_id", BCON_UTF8("api_key_digests"));
    bson_t *update = BCON_NEW("$set", "{", "complete", BCON_BOOL(true), "at",
                              BCON_DATE_TIME(util_now_ms()), "}");
    bson_t all = BSON_INITIALIZER;
    struct backfill b = {st, err, 0};
    int64_t matched;
    int rc = store_find_each(st, "api_keys", &all, opts, backfill_row, &b, err);

    if (rc == 0)
        rc = store_update_one(st, "meta", filter, update, true, &matched, err);
    *added = b.added;
    bson_destroy(opts);
    bson_destroy(filter);
    bson_destroy(update);
    return rc;
}

int store_key_get(struct store *st, const char *team, const char *id, struct api_key *out,
                  struct app_error *err)
{
    struct key_rows r = {out, 1, 0};
    int rc = store_find_by_id(st, "api_keys", team, id, NULL, key_row, &r, err);

    /* With its last use, which the management views show. */
    return rc == 0 ? key_usage(st, &r, err) : rc;
}

/* Active: not revoked, and no expiry or one after now. */
static void append_active(bson_t *cond, int64_t now)
{
    bson_t or, alt, sub;

    BSON_APPEND_NULL(cond, "revoked_at");
    BSON_APPEND_ARRAY_BEGIN(cond, "$or", & or);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "0", &alt);
    BSON_APPEND_NULL(&alt, "expires_at");
    bson_append_document_end(& or, &alt);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "1", &alt);
    BSON_APPEND_DOCUMENT_BEGIN(&alt, "expires_at", &sub);
    BSON_APPEND_DATE_TIME(&sub, "$gt", now);
    bson_append_document_end(&alt, &sub);
    bson_append_document_end(& or, &alt);
    bson_append_array_end(cond, & or);
}

/* The filter of a list: every condition of q but the cursor's (the caller adds it to and, which
 * it finishes into filter). */
static void list_filter(const struct key_query *q, bson_t *filter, struct store_and *and)
{
    bson_t sub;

    /* Plain conditions on the filter; the ones that need an $or go into the $and. */
    BSON_APPEND_UTF8(filter, "team_id", q->team);
    if (q->status == KEY_REVOKED) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, "revoked_at", &sub);
        BSON_APPEND_NULL(&sub, "$ne");
        bson_append_document_end(filter, &sub);
    } else if (q->status == KEY_EXPIRED) {
        BSON_APPEND_NULL(filter, "revoked_at");
        BSON_APPEND_DOCUMENT_BEGIN(filter, "expires_at", &sub);
        BSON_APPEND_DATE_TIME(&sub, "$lte", q->now);
        bson_append_document_end(filter, &sub);
    } else if (q->status == KEY_ACTIVE) {
        append_active(store_and_next(and), q->now);
        store_and_done(and);
    }
    if (q->expires_by > 0) {
        /* Expiring soon: active (not revoked, not yet expired) and expiring by then. */
        bson_t *cond = store_and_next(and);

        BSON_APPEND_NULL(cond, "revoked_at");
        BSON_APPEND_DOCUMENT_BEGIN(cond, "expires_at", &sub);
        BSON_APPEND_DATE_TIME(&sub, "$gt", q->now);
        BSON_APPEND_DATE_TIME(&sub, "$lte", q->expires_by);
        bson_append_document_end(cond, &sub);
        store_and_done(and);
    }
    if (q->unused_before > 0) {
        /* Unused: active and made before then (last use is checked by key_list_unused). */
        bson_t *cond = store_and_next(and);

        append_active(cond, q->now);
        BSON_APPEND_DOCUMENT_BEGIN(cond, "created_at", &sub);
        BSON_APPEND_DATE_TIME(&sub, "$lt", q->unused_before);
        bson_append_document_end(cond, &sub);
        store_and_done(and);
    }
    if (q->q && q->q[0])
        store_append_contains(filter, "name", q->q);
}

/* A key that may be unused: its id and its last use, or its creation if never used. */
struct stale {
    char id[KEY_ID_LEN];
    int64_t at;
};

struct stale_rows {
    struct stale *v;
    size_t n, max, from, to; /* the usage batch: v[from..to) */
};

static int stale_row(const bson_t *doc, void *ctx)
{
    struct stale_rows *r = ctx;

    /* The query's limit is max + 1: the one more only says that there are more. */
    if (r->n < r->max) {
        snprintf(r->v[r->n].id, sizeof r->v[r->n].id, "%s", store_utf8(doc, "_id"));
        r->v[r->n].at = store_date(doc, "created_at");
    }
    r->n++;
    return 0;
}

static int stale_usage_row(const bson_t *doc, void *ctx)
{
    struct stale_rows *r = ctx;
    const char *id = store_utf8(doc, "_id");
    int64_t at = store_date(doc, "last_used_at");

    for (size_t i = r->from; i < r->to; i++) {
        if (strcmp(r->v[i].id, id) == 0 && at > r->v[i].at)
            r->v[i].at = at;
    }
    return 0;
}

/* $in of the ids of v[from..to) (or of the ids given) under "_id" of filter. */
static void append_ids(bson_t *filter, const struct stale *v, size_t from, size_t to)
{
    bson_t in, ids;
    char idx[16];
    const char *key;

    BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
    for (size_t i = from; i < to; i++) {
        bson_uint32_to_string((uint32_t)(i - from), &key, idx, sizeof idx);
        bson_append_utf8(&ids, key, -1, v[i].id, -1);
    }
    bson_append_array_end(&in, &ids);
    bson_append_document_end(filter, &in);
}

static int stale_cmp(const void *a, const void *b)
{
    const struct stale *x = a, *y = b;

    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return strcmp(x->id, y->id);
}

#define STALE_BATCH 200 /* ids of one $in */

/* The page of a stale-key list (q->unused_before): the candidates, the keys made before then
 * (at most KEYS_UNUSED_SCAN; their ids and dates only), then their last uses in batches by _id,
 * then the page in the order of that time ascending, then id, after the cursor; then the page's
 * keys in full. Last uses live in another collection than the keys (see key_usage), so one
 * query cannot do it. Returns 0, 1 (more candidates than the scan takes), -1 with err set. */
static int key_list_unused(struct store *st, const struct key_query *q, bson_t *filter,
                           struct api_key *out, size_t *n, struct app_error *err)
{
    bson_t *opts = BCON_NEW("projection", "{", "created_at", BCON_INT32(1), "}", "sort", "{",
                            "created_at", BCON_INT32(1), "_id", BCON_INT32(1), "}", "limit",
                            BCON_INT64(KEYS_UNUSED_SCAN + 1));
    struct stale_rows r = {NULL, 0, KEYS_UNUSED_SCAN, 0, 0};
    struct api_key *found = NULL;
    size_t keep = 0, nfound = 0;
    int rc = -1;

    *n = 0;
    r.v = calloc(KEYS_UNUSED_SCAN, sizeof *r.v);
    found = calloc(q->limit, sizeof *found);
    if (r.v == NULL || found == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        goto done;
    }
    if (store_find_each(st, "api_keys", filter, opts, stale_row, &r, err) != 0)
        goto done;
    if (r.n > r.max) {
        rc = 1;
        goto done;
    }
    for (r.from = 0; r.from < r.n; r.from = r.to) {
        bson_t ufilter = BSON_INITIALIZER;

        r.to = r.from + STALE_BATCH < r.n ? r.from + STALE_BATCH : r.n;
        append_ids(&ufilter, r.v, r.from, r.to);
        rc = store_find_each(st, "api_key_usage", &ufilter, NULL, stale_usage_row, &r, err);
        bson_destroy(&ufilter);
        if (rc != 0)
            goto done;
    }
    rc = -1;
    /* Unused since before then, and after the cursor in (at, id) ascending. */
    for (size_t i = 0; i < r.n; i++) {
        if (r.v[i].at >= q->unused_before ||
            (q->after_id && (r.v[i].at < q->after_at ||
                             (r.v[i].at == q->after_at && strcmp(r.v[i].id, q->after_id) <= 0))))
            continue;
        r.v[keep++] = r.v[i];
    }
    qsort(r.v, keep, sizeof *r.v, stale_cmp);
    if (keep > q->limit)
        keep = q->limit;
    if (keep > 0) {
        bson_t kfilter = BSON_INITIALIZER;

        BSON_APPEND_UTF8(&kfilter, "team_id", q->team);
        append_ids(&kfilter, r.v, 0, keep);
        rc = key_find(st, &kfilter, NULL, found, q->limit, &nfound, err);
        bson_destroy(&kfilter);
        if (rc != 0)
            goto done;
    }
    /* In the page's order; a key deleted meanwhile is left out. */
    for (size_t i = 0; i < keep; i++) {
        for (size_t j = 0; j < nfound; j++) {
            if (strcmp(found[j].id, r.v[i].id) == 0) {
                out[(*n)++] = found[j];
                break;
            }
        }
    }
    rc = 0;
done:
    free(r.v);
    free(found);
    bson_destroy(opts);
    return rc;
}

int store_key_list(struct store *st, const struct key_query *q, struct api_key *out, size_t *n,
                   struct app_error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(-1), "_id", BCON_INT32(-1), "}",
                            "limit", BCON_INT64((int64_t)q->limit));
    struct store_and and;
    int rc;

    store_and_begin(&and);
    list_filter(q, &filter, &and);
    if (q->after_id && q->unused_before == 0) {
        store_append_after(store_and_next(&and), "created_at", q->after_at, q->after_id, false);
        store_and_done(&and);
    }
    store_and_finish(&and, &filter);
    if (q->unused_before > 0)
        rc = key_list_unused(st, q, &filter, out, n, err);
    else
        rc = key_find(st, &filter, opts, out, q->limit, n, err);
    bson_destroy(&filter);
    bson_destroy(opts);
    return rc;
}

int store_key_update(struct store *st, const struct api_key *k, struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(k->id), "team_id", BCON_UTF8(k->team_id),
                              "revoked_at", BCON_NULL);
    bson_t update = BSON_INITIALIZER, set;
    int64_t matched = 0;
    int rc;

    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_UTF8(&set, "name", k->name);
    BSON_APPEND_UTF8(&set, "permission", keys_permission_name(k->permission));
    append_scopes(&set, k);
    store_append_date(&set, "expires_at", k->expires_at);
    store_append_date(&set, "updated_at", k->updated_at);
    append_limits(&set, k);
    bson_append_document_end(&update, &set);
    rc = store_update_one(st, "api_keys", filter, &update, false, &matched, err);
    bson_destroy(filter);
    bson_destroy(&update);
    return rc < 0 ? -1 : matched == 0;
}

int store_key_revoke(struct store *st, const char *team, const char *id, const char *user,
                     int64_t now, struct app_error *err)
{
    bson_t *filter =
        BCON_NEW("_id", BCON_UTF8(id), "team_id", BCON_UTF8(team), "revoked_at", BCON_NULL);
    bson_t *update = BCON_NEW("$set", "{", "revoked_at", BCON_DATE_TIME(now), "revoked_by",
                              BCON_UTF8(user), "updated_at", BCON_DATE_TIME(now), "}");
    int64_t matched = 0;
    int rc = store_update_one(st, "api_keys", filter, update, false, &matched, err);

    bson_destroy(filter);
    bson_destroy(update);
    return rc < 0 ? -1 : matched == 0;
}

int store_key_rotate(struct store *st, const char *team, const char *id, const char *new_id,
                     const char *new_hint, int64_t until, const char *user, int64_t now,
                     struct app_error *err)
{
    /* rotated_to null also matches keys made before rotation existed (no such field): the one
     * conditional write settles two rotations racing, and a rotate racing a revoke. */
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "team_id", BCON_UTF8(team), "revoked_at",
                              BCON_NULL, "rotated_to", BCON_NULL);
    bson_t update = BSON_INITIALIZER, set;
    int64_t matched = 0;
    int rc;

    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_UTF8(&set, "rotated_to", new_id);
    BSON_APPEND_UTF8(&set, "rotated_to_hint", new_hint);
    if (until > 0) {
        BSON_APPEND_DATE_TIME(&set, "expires_at", until);
    } else {
        BSON_APPEND_DATE_TIME(&set, "revoked_at", now);
        BSON_APPEND_UTF8(&set, "revoked_by", user);
    }
    BSON_APPEND_DATE_TIME(&set, "updated_at", now);
    bson_append_document_end(&update, &set);
    rc = store_update_one(st, "api_keys", filter, &update, false, &matched, err);
    bson_destroy(filter);
    bson_destroy(&update);
    return rc < 0 ? -1 : matched == 0;
}

int store_key_delete(struct store *st, const char *team, const char *id, struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "team_id", BCON_UTF8(team));
    bson_t *usage = BCON_NEW("_id", BCON_UTF8(id));
    int64_t deleted = 0, ignored;
    struct api_key k;
    struct key_rows r = {&k, 1, 0};
    int rc = store_find_by_id(st, "api_keys", team, id, NULL, key_row, &r, err);

    if (rc == 0)
        rc = store_delete(st, "api_keys", filter, false, &deleted, err);
    /* The usage row is only read beside its key, the digest document only to find the key:
     * a failure here leaves an orphan, no harm. */
    if (rc == 0 && deleted > 0) {
        digest_delete(st, k.hash);
        if (store_delete(st, "api_key_usage", usage, false, &ignored, err) != 0)
            error_clear(err);
    }
    bson_destroy(filter);
    bson_destroy(usage);
    return rc < 0 ? -1 : deleted == 0;
}

int store_key_touch(struct store *st, const char *id, int64_t at, const char *ip,
                    struct app_error *err)
{
    /* $max keeps the time from going back when workers race; filtering on _id alone lets
     * every store find the row by its primary key. */
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *update = BCON_NEW("$max", "{", "last_used_at", BCON_DATE_TIME(at), "}", "$set", "{",
                              "last_used_ip", BCON_UTF8(ip), "}");
    int64_t matched = 0;
    int rc = store_update_one(st, "api_key_usage", filter, update, true, &matched, err);

    bson_destroy(filter);
    bson_destroy(update);
    return rc;
}

int store_key_changed(struct store *st, const char *id, struct app_error *err)
{
    bson_t *doc = BCON_NEW("key_id", BCON_UTF8(id), "at", BCON_DATE_TIME(util_now_ms()));
    int rc = store_insert(st, "api_key_changes", doc, err);

    bson_destroy(doc);
    return rc;
}

struct change_rows {
    store_key_change_fn fn;
    void *ctx;
};

static int change_row(const bson_t *doc, void *ctx)
{
    struct change_rows *r = ctx;
    bson_iter_t it;
    char oid[25];

    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
        return 0;
    bson_oid_to_string(bson_iter_oid(&it), oid);
    return r->fn(oid, store_utf8(doc, "key_id"), r->ctx);
}

int store_key_changes(struct store *st, store_key_change_fn fn, void *ctx, struct app_error *err)
{
    bson_t all = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("projection", "{", "key_id", BCON_INT32(1), "}");
    struct change_rows r = {fn, ctx};
    int rc = store_find_each(st, "api_key_changes", &all, opts, change_row, &r, err);

    bson_destroy(opts);
    return rc;
}

int store_key_changes_prune(struct store *st, int64_t before, struct app_error *err)
{
    bson_t *filter = BCON_NEW("at", "{", "$lt", BCON_DATE_TIME(before), "}");
    int64_t n;
    int rc = store_delete(st, "api_key_changes", filter, true, &n, err);

    bson_destroy(filter);
    return rc;
}
