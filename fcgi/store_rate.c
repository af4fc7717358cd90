/* store_rate.c: the hosts' per-key request counts (rate_counts), one document per host and
 * key, each telling its window and until when its counts matter. */
#include <string.h>

#include "store_priv.h"

#define HOST_MAX 200

int store_rate_report(struct store *st, const char *host, const struct ratelimit_count *c, size_t n,
                      struct app_error *err)
{
    mongoc_client_t *cl;
    mongoc_collection_t *coll = NULL;
    mongoc_bulk_operation_t *bulk = NULL;
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t be;
    int ret = -1;

    if (n == 0) {
        bson_destroy(opts);
        return 0;
    }
    if ((cl = store_pop(st, err)) == NULL) {
        bson_destroy(opts);
        return -1;
    }
    coll = mongoc_client_get_collection(cl, st->db, "rate_counts");
    bulk = mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
    for (size_t i = 0; i < n; i++) {
        char id[HOST_MAX + 40];
        bson_t *sel, *doc;

        snprintf(id, sizeof id, "%.*s|%s", HOST_MAX, host, c[i].key_id);
        sel = BCON_NEW("_id", BCON_UTF8(id));
        doc = BCON_NEW("_id", BCON_UTF8(id), "host", BCON_UTF8(host), "key_id",
                       BCON_UTF8(c[i].key_id), "per_ms", BCON_INT64(c[i].per_ms), "window",
                       BCON_INT64(c[i].window), "cur", BCON_INT64(c[i].cur), "prev",
                       BCON_INT64(c[i].prev), "until",
                       BCON_DATE_TIME((c[i].window + 2) * c[i].per_ms));
        if (!mongoc_bulk_operation_replace_one_with_opts(bulk, sel, doc, opts, &be)) {
            bson_destroy(sel);
            bson_destroy(doc);
            store_fail(err, &be, "rate_counts");
            goto done;
        }
        bson_destroy(sel);
        bson_destroy(doc);
    }
    if (!mongoc_bulk_operation_execute(bulk, NULL, &be)) {
        store_fail(err, &be, "rate_counts");
        goto done;
    }
    ret = 0;
done:
    mongoc_bulk_operation_destroy(bulk);
    mongoc_collection_destroy(coll);
    bson_destroy(opts);
    store_push(st, cl);
    return ret;
}

struct remote_rows {
    struct ratelimit_count *out;
    size_t max, n;
    int64_t now;
};

/* Adds one host's counts to the key's sum, both aligned to the window of now. */
static int remote_row(const bson_t *doc, void *ctx)
{
    struct remote_rows *r = ctx;
    bson_iter_t it;
    int64_t per = 0, window = 0, cur = 0, prev = 0, w;
    const char *key = store_utf8(doc, "key_id");
    struct ratelimit_count *c = NULL;

    if (bson_iter_init_find(&it, doc, "per_ms") && BSON_ITER_HOLDS_NUMBER(&it))
        per = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, doc, "window") && BSON_ITER_HOLDS_NUMBER(&it))
        window = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, doc, "cur") && BSON_ITER_HOLDS_NUMBER(&it))
        cur = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, doc, "prev") && BSON_ITER_HOLDS_NUMBER(&it))
        prev = bson_iter_as_int64(&it);
    if (per <= 0 || *key == '\0' || strlen(key) >= sizeof c->key_id || cur < 0 || prev < 0)
        return 0;
    w = r->now / per;
    if (window == w - 1) {
        prev = cur;
        cur = 0;
    } else if (window != w) {
        return 0;
    }
    for (size_t i = 0; i < r->n && c == NULL; i++) {
        if (r->out[i].per_ms == per && strcmp(r->out[i].key_id, key) == 0)
            c = &r->out[i];
    }
    if (c == NULL) {
        if (r->n == r->max)
            return 0;
        c = &r->out[r->n++];
        memset(c, 0, sizeof *c);
        snprintf(c->key_id, sizeof c->key_id, "%s", key);
        c->per_ms = per;
        c->window = w;
    }
    c->cur += (uint32_t)(cur > RATELIMIT_MAX ? RATELIMIT_MAX : cur);
    c->prev += (uint32_t)(prev > RATELIMIT_MAX ? RATELIMIT_MAX : prev);
    return 0;
}

int store_rate_remote(struct store *st, const char *host, int64_t now, struct ratelimit_count *out,
                      size_t max, size_t *n, struct app_error *err)
{
    bson_t *filter = BCON_NEW("until", "{", "$gt", BCON_DATE_TIME(now), "}", "host", "{", "$ne",
                              BCON_UTF8(host), "}");
    struct remote_rows r = {out, max, 0, now};
    int rc = store_find_each(st, "rate_counts", filter, NULL, remote_row, &r, err);

    bson_destroy(filter);
    *n = r.n;
    return rc;
}

int store_rate_purge(struct store *st, int64_t now, struct app_error *err)
{
    bson_t *filter = BCON_NEW("until", "{", "$lte", BCON_DATE_TIME(now), "}");
    int64_t deleted;
    int rc = store_delete(st, "rate_counts", filter, true, &deleted, err);

    bson_destroy(filter);
    return rc;
}

static json_t *count_row(const bson_t *doc)
{
    bson_iter_t it;
    int64_t v[4] = {0, 0, 0, 0};
    static const char *const names[4] = {"per_ms", "window", "cur", "prev"};

    for (int i = 0; i < 4; i++) {
        if (bson_iter_init_find(&it, doc, names[i]) && BSON_ITER_HOLDS_NUMBER(&it))
            v[i] = bson_iter_as_int64(&it);
    }
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "key_id", store_utf8(doc, "key_id"), "host",
                     store_utf8(doc, "host"), "per_seconds", (json_int_t)(v[0] / 1000), "window",
                     (json_int_t)v[1], "cur", (json_int_t)v[2], "prev", (json_int_t)v[3]);
}

json_t *store_rate_list(struct store *st, int64_t now, struct app_error *err)
{
    bson_t *filter = BCON_NEW("until", "{", "$gt", BCON_DATE_TIME(now), "}");
    bson_t *opts = BCON_NEW("sort", "{", "key_id", BCON_INT32(1), "host", BCON_INT32(1), "}",
                            "limit", BCON_INT64(10000));
    json_t *rows = store_find(st, "rate_counts", filter, opts, count_row, err);

    bson_destroy(filter);
    bson_destroy(opts);
    return rows;
}
