/* store_leaks.c: leaked-key reports waiting to be worked (key_leak_reports, leaks.h). A report
 * lives from its answer until its keys are revoked: seconds, or until a sweep after a crash. */
#include <string.h>

#include "store_priv.h"

#define LEAKS_COLLECTION "key_leak_reports"

int store_leak_insert(struct store *st, const struct leak_report *r, struct app_error *err)
{
    bson_t doc = BSON_INITIALIZER, digests;
    char i[16];
    int rc;

    BSON_APPEND_UTF8(&doc, "_id", r->id);
    BSON_APPEND_DATE_TIME(&doc, "at", r->at);
    BSON_APPEND_ARRAY_BEGIN(&doc, "digests", &digests);
    for (size_t n = 0; n < r->ndigests; n++) {
        const char *key;

        bson_uint32_to_string((uint32_t)n, &key, i, sizeof i);
        BSON_APPEND_UTF8(&digests, key, r->digests[n]);
    }
    bson_append_array_end(&doc, &digests);
    BSON_APPEND_UTF8(&doc, "source", r->source);
    BSON_APPEND_UTF8(&doc, "ip", r->ip);
    BSON_APPEND_UTF8(&doc, "user_agent", r->user_agent);
    BSON_APPEND_UTF8(&doc, "request_id", r->request_id);
    rc = store_insert(st, LEAKS_COLLECTION, &doc, err);
    bson_destroy(&doc);
    return rc;
}

struct pending {
    store_leak_fn fn;
    void *ctx;
    struct leak_report r;
};

static int pending_row(const bson_t *doc, void *ctx)
{
    struct pending *p = ctx;
    struct leak_report *r = &p->r;
    bson_iter_t it, d;

    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", store_utf8(doc, "_id"));
    r->at = store_date(doc, "at");
    if (bson_iter_init_find(&it, doc, "digests") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &d)) {
        while (bson_iter_next(&d) && r->ndigests < LEAKS_KEYS_MAX) {
            if (BSON_ITER_HOLDS_UTF8(&d))
                snprintf(r->digests[r->ndigests++], AUTH_DIGEST_HEX, "%s",
                         bson_iter_utf8(&d, NULL));
        }
    }
    snprintf(r->source, sizeof r->source, "%s", store_utf8(doc, "source"));
    snprintf(r->ip, sizeof r->ip, "%s", store_utf8(doc, "ip"));
    snprintf(r->user_agent, sizeof r->user_agent, "%s", store_utf8(doc, "user_agent"));
    snprintf(r->request_id, sizeof r->request_id, "%s", store_utf8(doc, "request_id"));
    p->fn(r, p->ctx);
    return 0;
}

int store_leak_pending(struct store *st, const char *id, int64_t before, store_leak_fn fn,
                       void *ctx, struct app_error *err)
{
    /* A report is about 9 KiB at most: on the heap, not on the key-change thread's stack. */
    struct pending *p = bson_malloc(sizeof *p);
    bson_t *filter = id ? BCON_NEW("_id", BCON_UTF8(id))
                        : BCON_NEW("at", "{", "$lt", BCON_DATE_TIME(before), "}");
    bson_t *opts = BCON_NEW("sort", "{", "at", BCON_INT32(1), "}", "limit", BCON_INT64(100));
    int rc;

    p->fn = fn;
    p->ctx = ctx;
    rc = store_find_each(st, LEAKS_COLLECTION, filter, id ? NULL : opts, pending_row, p, err);
    bson_destroy(opts);
    bson_destroy(filter);
    bson_free(p);
    return rc;
}

int store_leak_done(struct store *st, const char *id, struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    int64_t n = 0;
    int rc = store_delete(st, LEAKS_COLLECTION, filter, false, &n, err);

    bson_destroy(filter);
    return rc;
}
