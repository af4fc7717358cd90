/* store_audit.c: audit records in MongoDB: batched inserts, filtered pages, retention. */
#include <string.h>

#include "store_priv.h"
#include "util.h"

static void append_str_or_null(bson_t *doc, const char *key, const char *s)
{
    if (s[0])
        bson_append_utf8(doc, key, -1, s, -1);
    else
        bson_append_null(doc, key, -1);
}

void store_audit_bson(const struct audit_rec *r, bson_t *doc)
{
    bson_t actor;
    bson_oid_t oid;

    bson_oid_init(&oid, NULL);
    BSON_APPEND_OID(doc, "_id", &oid);
    BSON_APPEND_DATE_TIME(doc, "at", r->at);
    BSON_APPEND_UTF8(doc, "team_id", r->team_id);
    BSON_APPEND_DOCUMENT_BEGIN(doc, "actor", &actor);
    BSON_APPEND_UTF8(&actor, "type", r->actor_type);
    BSON_APPEND_UTF8(&actor, "id", r->actor_id);
    if (r->actor_name[0])
        BSON_APPEND_UTF8(&actor, "name", r->actor_name);
    bson_append_document_end(doc, &actor);
    append_str_or_null(doc, "key_id", r->key_id);
    if (r->key_name[0])
        BSON_APPEND_UTF8(doc, "key_name", r->key_name);
    BSON_APPEND_UTF8(doc, "action", r->action);
    BSON_APPEND_UTF8(doc, "method", r->method);
    BSON_APPEND_UTF8(doc, "path", r->path);
    BSON_APPEND_INT32(doc, "status", r->status);
    BSON_APPEND_UTF8(doc, "ip", r->ip);
    BSON_APPEND_UTF8(doc, "user_agent", r->user_agent);
    BSON_APPEND_UTF8(doc, "request_id", r->request_id);
    if (r->changes)
        store_append_json(doc, "changes", r->changes);
    if (r->rotation)
        store_append_json(doc, "rotation", r->rotation);
    if (r->reason[0])
        BSON_APPEND_UTF8(doc, "reason", r->reason);
    if (r->source)
        BSON_APPEND_UTF8(doc, "source", r->source);
}

/* True if every write error of an insert's reply is a duplicate _id. */
static bool only_duplicates(const bson_t *reply)
{
    bson_iter_t it, e, code;
    bool any = false;

    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &e))
        return false;
    while (bson_iter_next(&e)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&e) || !bson_iter_recurse(&e, &code) ||
            !bson_iter_find(&code, "code") || bson_iter_as_int64(&code) != 11000)
            return false;
        any = true;
    }
    return any && !bson_iter_init_find(&it, reply, "writeConcernErrors");
}

int store_audit_insert(struct store *st, const bson_t *docs, size_t n, struct app_error *err)
{
    mongoc_client_t *c;
    mongoc_collection_t *coll;
    const bson_t **ptrs;
    bson_t *opts, reply;
    bson_error_t be;
    int ret = 0;

    if (n == 0)
        return 0;
    c = store_pop(st, err);
    if (c == NULL)
        return -1;
    ptrs = bson_malloc(n * sizeof *ptrs);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &docs[i];
    /* Acknowledged (the default write concern), never w:0: a record counts once stored.
     * Unordered: the duplicates of a resent spool do not stop the records after them. */
    opts = BCON_NEW("ordered", BCON_BOOL(false));
    coll = mongoc_client_get_collection(c, st->db, "audit");
    if (!mongoc_collection_insert_many(coll, ptrs, n, opts, &reply, &be) &&
        !only_duplicates(&reply))
        ret = store_fail(err, &be, "audit");
    bson_destroy(&reply);
    bson_destroy(opts);
    bson_free(ptrs);
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return ret;
}

/* Copies the sub-document field of d, if there is one, into o as JSON. */
static void doc_json(const bson_t *d, const char *field, json_t *o)
{
    const uint8_t *data;
    uint32_t len;
    bson_iter_t it;
    bson_t sub;
    char *text;

    if (!bson_iter_init_find(&it, d, field) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return;
    bson_iter_document(&it, &len, &data);
    if (!bson_init_static(&sub, data, len))
        return;
    text = bson_as_relaxed_extended_json(&sub, NULL);
    if (text)
        json_object_set_new(o, field, json_loads(text, 0, NULL));
    bson_free(text);
}

/* Converts one stored record to the JSON of api.md §3.4. */
static json_t *audit_to_json(const bson_t *d)
{
    bson_iter_t it, sub;
    json_t *o, *actor = json_object();
    char oid[25] = "";
    char at[UTIL_TIME_LEN];

    if (bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_OID(&it))
        bson_oid_to_string(bson_iter_oid(&it), oid);
    if (bson_iter_init_find(&it, d, "actor") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub)) {
            if (BSON_ITER_HOLDS_UTF8(&sub))
                json_object_set_new(actor, bson_iter_key(&sub),
                                    json_string(bson_iter_utf8(&sub, NULL)));
        }
    }
    o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "id", oid, "at",
                  util_time_format(store_date(d, "at"), at), "team_id", store_utf8(d, "team_id"),
                  "actor", actor, "action", store_utf8(d, "action"), "method",
                  store_utf8(d, "method"), "path", store_utf8(d, "path"), "status",
                  (json_int_t)(bson_iter_init_find(&it, d, "status") ? bson_iter_as_int64(&it) : 0),
                  "ip", store_utf8(d, "ip"), "user_agent", store_utf8(d, "user_agent"),
                  "request_id", store_utf8(d, "request_id"));
    if (o && store_utf8(d, "key_id")[0])
        json_object_set_new(o, "key_id", json_string(store_utf8(d, "key_id")));
    if (o && store_utf8(d, "key_name")[0])
        json_object_set_new(o, "key_name", json_string(store_utf8(d, "key_name")));
    if (o && store_utf8(d, "reason")[0])
        json_object_set_new(o, "reason", json_string(store_utf8(d, "reason")));
    if (o && store_utf8(d, "source")[0])
        json_object_set_new(o, "source", json_string(store_utf8(d, "source")));
    if (o) {
        doc_json(d, "changes", o);
        doc_json(d, "rotation", o);
    }
    return o;
}

json_t *store_audit_list(struct store *st, const struct audit_query *q, struct app_error *err)
{
    bson_t filter = BSON_INITIALIZER, range;
    bson_t *opts = BCON_NEW("sort", "{", "at", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "limit",
                            BCON_INT64((int64_t)q->limit));
    json_t *out;

    BSON_APPEND_UTF8(&filter, "team_id", q->team);
    if (q->key_id)
        BSON_APPEND_UTF8(&filter, "key_id", q->key_id);
    if (q->actor)
        BSON_APPEND_UTF8(&filter, "actor.id", q->actor);
    if (q->action)
        BSON_APPEND_UTF8(&filter, "action", q->action);
    if (q->since || q->until) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "at", &range);
        if (q->since)
            BSON_APPEND_DATE_TIME(&range, "$gte", q->since);
        if (q->until)
            BSON_APPEND_DATE_TIME(&range, "$lte", q->until);
        bson_append_document_end(&filter, &range);
    }
    /* The only $or of this filter: it can stand at the top. */
    if (q->after_id)
        store_append_after(&filter, "at", q->after_at, q->after_id, true);
    out = store_find(st, "audit", &filter, opts, audit_to_json, err);
    bson_destroy(&filter);
    bson_destroy(opts);
    return out;
}

struct usage_rows {
    store_usage_fn fn;
    void *ctx;
    size_t max, n;
};

static int usage_row(const bson_t *doc, void *ctx)
{
    struct usage_rows *u = ctx;
    bson_iter_t it;

    /* The query's limit is max + 1: the one more only says that there are more. */
    if (u->n++ == u->max)
        return 0;
    u->fn(store_date(doc, "at"),
          bson_iter_init_find(&it, doc, "status") && BSON_ITER_HOLDS_NUMBER(&it)
              ? (int)bson_iter_as_int64(&it)
              : 0,
          u->ctx);
    return 0;
}

int store_audit_usage(struct store *st, const char *team, const char *key_id, int64_t since,
                      int64_t until, size_t max, store_usage_fn fn, void *ctx,
                      struct app_error *err)
{
    /* {team_id, key_id, at range}: the index team_key_at, which FerretDB's SQLite backend
     * SEARCHes too (tests/ferretdb/sqlite-pushdown.patch); action is checked on the rows it
     * gives (explain: SEARCH ... USING INDEX ..._team_key_at). Only at and status come back;
     * no sort, the counts do not need one. Batches of 1,000: FerretDB decodes every document in
     * Go, measured 0.5 ms each on a loaded 2-core machine, so a getMore stays well within the
     * socket timeout (LOOPED_DB_TIMEOUT_MS, 2 s); a real MongoDB reads them from the index. */
    bson_t *filter = BCON_NEW("team_id", BCON_UTF8(team), "key_id", BCON_UTF8(key_id), "action",
                              BCON_UTF8("api.request"), "at", "{", "$gte", BCON_DATE_TIME(since),
                              "$lt", BCON_DATE_TIME(until), "}");
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "at", BCON_INT32(1), "status",
                            BCON_INT32(1), "}", "limit", BCON_INT64((int64_t)max + 1), "batchSize",
                            BCON_INT32(1000));
    struct usage_rows u = {fn, ctx, max, 0};
    int rc = store_find_each(st, "audit", filter, opts, usage_row, &u, err);

    bson_destroy(filter);
    bson_destroy(opts);
    return rc != 0 ? -1 : u.n > max;
}

int store_audit_purge_claim(struct store *st, int64_t now, int64_t every_ms, struct app_error *err)
{
    /* Taken if the lease is at most every_ms old: then nothing matches, and the upsert's
     * insert fails on the _id that exists. */
    bson_t *filter =
        BCON_NEW("_id", "audit_purge", "at", "{", "$lte", BCON_DATE_TIME(now - every_ms), "}");
    bson_t *update = BCON_NEW("$set", "{", "at", BCON_DATE_TIME(now), "}");
    int64_t matched = 0;
    int rc = store_update_one(st, "meta", filter, update, true, &matched, err);

    if (rc != 0 && err->code == ERR_CONFLICT) {
        error_clear(err);
        rc = 1;
    }
    bson_destroy(filter);
    bson_destroy(update);
    return rc;
}

int store_audit_purge(struct store *st, int64_t before, int64_t *deleted, struct app_error *err)
{
    bson_t *filter = BCON_NEW("at", "{", "$lt", BCON_DATE_TIME(before), "}");
    int rc = store_delete(st, "audit", filter, true, deleted, err);

    bson_destroy(filter);
    return rc;
}
