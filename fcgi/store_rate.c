/* store_rate.c: the hosts' per-key request counts (rate_counts), one document per host and
 * key, each telling its window and until when its counts matter. */
#include <string.h>

#include "store_priv.h"

#define HOST_MAX 200

/* One document per host, replaced whole on each report: a single write whatever the number of
 * keys (FerretDB's SQLite backend also holds one connection per statement of a multi-statement
 * update until the command ends, and stalls every client past 100 of them). */
int store_rate_report(struct store *st, const char *host, const struct ratelimit_count *c, size_t n,
                      int64_t now, struct app_error *err)
{
    bson_t doc = BSON_INITIALIZER, counts, *filter;
    int64_t until = now;
    char idx[16];
    const char *k;
    int rc;

    for (size_t i = 0; i < n; i++) {
        if ((c[i].window + 2) * c[i].per_ms > until)
            until = (c[i].window + 2) * c[i].per_ms;
    }
    BSON_APPEND_UTF8(&doc, "_id", host);
    BSON_APPEND_UTF8(&doc, "host", host);
    BSON_APPEND_DATE_TIME(&doc, "at", now);
    BSON_APPEND_DATE_TIME(&doc, "until", until);
    BSON_APPEND_ARRAY_BEGIN(&doc, "counts", &counts);
    for (size_t i = 0; i < n; i++) {
        bson_t e;

        bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
        BSON_APPEND_DOCUMENT_BEGIN(&counts, k, &e);
        BSON_APPEND_UTF8(&e, "key_id", c[i].key_id);
        BSON_APPEND_INT64(&e, "per_ms", c[i].per_ms);
        BSON_APPEND_INT64(&e, "window", c[i].window);
        BSON_APPEND_INT64(&e, "cur", c[i].cur);
        BSON_APPEND_INT64(&e, "prev", c[i].prev);
        bson_append_document_end(&counts, &e);
    }
    bson_append_array_end(&doc, &counts);
    filter = BCON_NEW("_id", BCON_UTF8(host));
    rc = store_replace_one(st, "rate_counts", filter, &doc, true, err);
    bson_destroy(filter);
    bson_destroy(&doc);
    return rc;
}

/* Calls fn(entry, ctx) for each entry of a host document's counts. */
static int each_count(const bson_t *doc, int (*fn)(const bson_t *e, const char *host, void *ctx),
                      void *ctx)
{
    bson_iter_t it, a;
    const char *host = store_utf8(doc, "host");

    if (!bson_iter_init_find(&it, doc, "counts") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &a))
        return 0;
    while (bson_iter_next(&a)) {
        const uint8_t *data;
        uint32_t len;
        bson_t e;

        if (!BSON_ITER_HOLDS_DOCUMENT(&a))
            continue;
        bson_iter_document(&a, &len, &data);
        if (bson_init_static(&e, data, len) && fn(&e, host, ctx) != 0)
            return -1;
    }
    return 0;
}

struct remote_rows {
    struct ratelimit_count *out;
    size_t max, n;
    int64_t now;
};

/* Adds one host's count of a key to the key's sum, both aligned to the window of now. */
static int remote_count(const bson_t *doc, const char *host, void *ctx)
{
    struct remote_rows *r = ctx;
    bson_iter_t it;
    int64_t per = 0, window = 0, cur = 0, prev = 0, w;
    const char *key = store_utf8(doc, "key_id");
    struct ratelimit_count *c = NULL;

    (void)host;
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

static int remote_host(const bson_t *doc, void *ctx)
{
    return each_count(doc, remote_count, ctx);
}

int store_rate_remote(struct store *st, const char *host, int64_t now, struct ratelimit_count *out,
                      size_t max, size_t *n, struct app_error *err)
{
    bson_t *filter = BCON_NEW("until", "{", "$gt", BCON_DATE_TIME(now), "}", "host", "{", "$ne",
                              BCON_UTF8(host), "}");
    struct remote_rows r = {out, max, 0, now};
    int rc = store_find_each(st, "rate_counts", filter, NULL, remote_host, &r, err);

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

struct list_rows {
    json_t *rows;
    int64_t now;
};

static int list_count(const bson_t *e, const char *host, void *ctx)
{
    struct list_rows *l = ctx;
    bson_iter_t it;
    int64_t v[4] = {0, 0, 0, 0};
    static const char *const names[4] = {"per_ms", "window", "cur", "prev"};
    json_t *row;

    if (json_array_size(l->rows) >= 10000)
        return 0;
    for (int i = 0; i < 4; i++) {
        if (bson_iter_init_find(&it, e, names[i]) && BSON_ITER_HOLDS_NUMBER(&it))
            v[i] = bson_iter_as_int64(&it);
    }
    if (v[0] <= 0 || (v[1] + 2) * v[0] <= l->now)
        return 0; /* both of its windows have passed */
    row = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "key_id", store_utf8(e, "key_id"), "host",
                    host, "per_seconds", (json_int_t)(v[0] / 1000), "window", (json_int_t)v[1],
                    "cur", (json_int_t)v[2], "prev", (json_int_t)v[3]);
    return row && json_array_append_new(l->rows, row) == 0 ? 0 : -1;
}

static int list_host(const bson_t *doc, void *ctx)
{
    return each_count(doc, list_count, ctx);
}

static int by_key_then_host(const void *a, const void *b)
{
    json_t *const *x = a, *const *y = b;
    int c = strcmp(json_string_value(json_object_get(*x, "key_id")),
                   json_string_value(json_object_get(*y, "key_id")));

    return c ? c
             : strcmp(json_string_value(json_object_get(*x, "host")),
                      json_string_value(json_object_get(*y, "host")));
}

json_t *store_rate_list(struct store *st, int64_t now, struct app_error *err)
{
    bson_t *filter = BCON_NEW("until", "{", "$gt", BCON_DATE_TIME(now), "}");
    struct list_rows l = {json_array(), now};
    json_t **v = NULL, *sorted = NULL;
    size_t n;

    if (l.rows == NULL || store_find_each(st, "rate_counts", filter, NULL, list_host, &l, err) != 0)
        goto done;
    n = json_array_size(l.rows);
    if ((v = malloc((n ? n : 1) * sizeof *v)) == NULL || (sorted = json_array()) == NULL)
        goto done;
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(l.rows, i);
    qsort(v, n, sizeof *v, by_key_then_host);
    for (size_t i = 0; i < n; i++)
        json_array_append(sorted, v[i]);
done:
    if (sorted == NULL && err->code == ERR_NONE)
        error_set(err, ERR_INTERNAL, NULL);
    free(v);
    json_decref(l.rows);
    bson_destroy(filter);
    return sorted;
}
