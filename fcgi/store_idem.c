/* store_idem.c: the idempotency records (idempotency.h) in MongoDB: claim, read, complete,
 * drop, purge. Every change but the first insert is conditional on the record's owner, so that
 * a request that lost its record (taken over as stale) can no longer change it. */
#include <stdlib.h>
#include <string.h>

#include "idempotency.h"
#include "store_priv.h"

#define IDEM_COLLECTION "idempotency_keys"

static void idem_to_bson(const struct idem_rec *r, bson_t *doc)
{
    BSON_APPEND_UTF8(doc, "_id", r->id);
    BSON_APPEND_UTF8(doc, "key_id", r->key_id);
    BSON_APPEND_UTF8(doc, "team_id", r->team_id);
    BSON_APPEND_UTF8(doc, "fingerprint", r->fingerprint);
    BSON_APPEND_UTF8(doc, "owner", r->owner);
    BSON_APPEND_UTF8(doc, "state", r->done ? "done" : "pending");
    BSON_APPEND_DATE_TIME(doc, "at", r->at);
    if (!r->done)
        return;
    BSON_APPEND_INT32(doc, "status", r->status);
    BSON_APPEND_UTF8(doc, "headers", r->headers);
    if (r->body)
        bson_append_utf8(doc, "body", -1, r->body, (int)r->body_len);
    if (r->error)
        store_append_json(doc, "error", r->error);
}

int store_idem_insert(struct store *st, const struct idem_rec *r, struct app_error *err)
{
    bson_t doc = BSON_INITIALIZER;
    int rc;

    idem_to_bson(r, &doc);
    rc = store_insert(st, IDEM_COLLECTION, &doc, err);
    bson_destroy(&doc);
    return rc;
}

static void copy_utf8(const bson_t *doc, const char *key, char *out, size_t len)
{
    const char *s = store_utf8(doc, key);
    size_t n = strlen(s);

    if (n >= len)
        n = len - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* A subdocument as JSON (a new reference), or NULL. */
static json_t *subdoc_json(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    const uint8_t *data;
    uint32_t len;
    bson_t sub;
    char *text;
    json_t *out = NULL;

    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return NULL;
    bson_iter_document(&it, &len, &data);
    if (!bson_init_static(&sub, data, len))
        return NULL;
    text = bson_as_relaxed_extended_json(&sub, NULL);
    if (text)
        out = json_loads(text, 0, NULL);
    bson_free(text);
    return out;
}

struct idem_row {
    struct idem_rec *out;
    bool found;
};

static int idem_row(const bson_t *doc, void *ctx)
{
    struct idem_row *row = ctx;
    struct idem_rec *r = row->out;
    bson_iter_t it;

    row->found = true;
    copy_utf8(doc, "_id", r->id, sizeof r->id);
    copy_utf8(doc, "key_id", r->key_id, sizeof r->key_id);
    copy_utf8(doc, "team_id", r->team_id, sizeof r->team_id);
    copy_utf8(doc, "fingerprint", r->fingerprint, sizeof r->fingerprint);
    copy_utf8(doc, "owner", r->owner, sizeof r->owner);
    r->at = store_date(doc, "at");
    r->done = strcmp(store_utf8(doc, "state"), "done") == 0;
    if (!r->done)
        return 0;
    r->status = bson_iter_init_find(&it, doc, "status") ? (int)bson_iter_as_int64(&it) : 0;
    copy_utf8(doc, "headers", r->headers, sizeof r->headers);
    if (bson_iter_init_find(&it, doc, "body") && BSON_ITER_HOLDS_UTF8(&it)) {
        uint32_t len;
        const char *s = bson_iter_utf8(&it, &len);

        r->body = malloc((size_t)len + 1);
        if (r->body == NULL)
            return -1;
        memcpy(r->body, s, len);
        r->body[len] = '\0';
        r->body_len = len;
    }
    r->error = subdoc_json(doc, "error");
    return 0;
}

int store_idem_get(struct store *st, const char *id, struct idem_rec *out, struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    struct idem_row row = {out, false};
    int rc;

    memset(out, 0, sizeof *out);
    /* {_id} alone: every store answers it from the primary key (store_find_by_id). */
    rc = store_find_each(st, IDEM_COLLECTION, filter, NULL, idem_row, &row, err);
    bson_destroy(filter);
    if (rc != 0) {
        idem_rec_clear(out);
        return -1;
    }
    return row.found ? 0 : 1;
}

int store_idem_replace(struct store *st, const char *owner, const struct idem_rec *r,
                       struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(r->id), "owner", BCON_UTF8(owner));
    bson_t doc = BSON_INITIALIZER;
    int rc;

    idem_to_bson(r, &doc);
    rc = store_replace_one(st, IDEM_COLLECTION, filter, &doc, false, err);
    bson_destroy(filter);
    bson_destroy(&doc);
    return rc;
}

int store_idem_delete(struct store *st, const char *id, const char *owner, struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "owner", BCON_UTF8(owner));
    int64_t n = 0;
    int rc = store_delete(st, IDEM_COLLECTION, filter, false, &n, err);

    bson_destroy(filter);
    return rc < 0 ? -1 : n == 0;
}

int store_idem_purge(struct store *st, int64_t before, int64_t *deleted, struct app_error *err)
{
    bson_t *filter = BCON_NEW("at", "{", "$lt", BCON_DATE_TIME(before), "}");
    int rc = store_delete(st, IDEM_COLLECTION, filter, true, deleted, err);

    bson_destroy(filter);
    return rc;
}
