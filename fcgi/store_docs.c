/* store_docs.c: the documents of the schema-defined resources in MongoDB. */
#include <string.h>

#include "store_priv.h"

static bool is_time_field(const char *k)
{
    return strcmp(k, "created_at") == 0 || strcmp(k, "updated_at") == 0;
}

/* The stored form: _id, team_id, the fields, and created_at/updated_at as dates taken from t
 * (the document's text forms of them are for the client, never parsed back). */
static void doc_to_bson(const char *team, json_t *doc, const struct doc_times *t, bson_t *out)
{
    const char *k;
    json_t *v;

    BSON_APPEND_UTF8(out, "_id", json_string_value(json_object_get(doc, "id")));
    BSON_APPEND_UTF8(out, "team_id", team);
    json_object_foreach (doc, k, v) {
        if (strcmp(k, "id") != 0 && !is_time_field(k))
            store_append_json(out, k, v);
    }
    store_append_date(out, "created_at", t->created_ms);
    store_append_date(out, "updated_at", t->updated_ms);
}

int store_doc_insert(struct store *st, const char *collection, const char *team, json_t *doc,
                     const struct doc_times *t, struct app_error *err)
{
    bson_t b = BSON_INITIALIZER;
    int rc;

    doc_to_bson(team, doc, t, &b);
    rc = store_insert(st, collection, &b, err);
    bson_destroy(&b);
    return rc;
}

static json_t *doc_find(struct store *st, const char *collection, const bson_t *filter,
                        const bson_t *opts, struct app_error *err)
{
    return store_find(st, collection, filter, opts, store_doc_json, err);
}

struct doc_row {
    json_t *doc;
    struct doc_times *times;
};

static int doc_row(const bson_t *doc, void *ctx)
{
    struct doc_row *row = ctx;

    row->doc = store_doc_json(doc);
    if (row->times) {
        row->times->created_ms = store_date(doc, "created_at");
        row->times->updated_ms = store_date(doc, "updated_at");
    }
    return row->doc ? 0 : -1;
}

json_t *store_doc_get(struct store *st, const char *collection, const char *team, const char *id,
                      struct doc_times *times, struct app_error *err)
{
    struct doc_row row = {NULL, times};
    int rc = store_find_by_id(st, collection, team, id, NULL, doc_row, &row, err);
    json_t *doc = row.doc;

    if (rc == 1)
        error_set(err, ERR_NOT_FOUND, NULL);
    return doc;
}

json_t *store_doc_list(struct store *st, const char *collection, const char *team, json_t *filters,
                       int64_t after_at, const char *after_id, size_t limit, struct app_error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(-1), "_id", BCON_INT32(-1), "}",
                            "limit", BCON_INT64((int64_t)limit));
    const char *k;
    json_t *v, *out;

    BSON_APPEND_UTF8(&filter, "team_id", team);
    /* Field names come from the schema's filterable list, values were validated. */
    json_object_foreach (filters, k, v)
        store_append_json(&filter, k, v);
    if (after_id)
        store_append_after(&filter, "created_at", after_at, after_id, false);
    out = doc_find(st, collection, &filter, opts, err);
    bson_destroy(&filter);
    bson_destroy(opts);
    return out;
}

int store_doc_replace(struct store *st, const char *collection, const char *team, json_t *doc,
                      const struct doc_times *t, struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(json_string_value(json_object_get(doc, "id"))),
                              "team_id", BCON_UTF8(team));
    bson_t b = BSON_INITIALIZER;
    int rc;

    doc_to_bson(team, doc, t, &b);
    rc = store_replace_one(st, collection, filter, &b, false, err);
    bson_destroy(filter);
    bson_destroy(&b);
    return rc;
}

int store_doc_delete(struct store *st, const char *collection, const char *team, const char *id,
                     struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "team_id", BCON_UTF8(team));
    int64_t n = 0;
    int rc = store_delete(st, collection, filter, false, &n, err);

    bson_destroy(filter);
    return rc < 0 ? -1 : n == 0;
}

static int exists_row(const bson_t *doc, void *ctx)
{
    return 0;
}

int store_doc_exists(struct store *st, const char *collection, const char *team, const char *id,
                     struct app_error *err)
{
    bson_t *opts = BCON_NEW("projection", "{", "team_id", BCON_INT32(1), "}");
    int rc = store_find_by_id(st, collection, team, id, opts, exists_row, NULL, err);

    bson_destroy(opts);
    return rc < 0 ? -1 : rc == 0;
}
