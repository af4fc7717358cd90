/* store_query.c: the generic queries (find, insert, update, delete) and filter pieces. */
#include <string.h>

#include "store_priv.h"

int store_insert(struct store *st, const char *collection, const bson_t *doc, struct app_error *err)
{
    mongoc_client_t *c = store_pop(st, err);
    mongoc_collection_t *coll = NULL;
    bson_error_t be;
    int ret = -1;

    if (c == NULL)
        return -1;
    coll = mongoc_client_get_collection(c, st->db, collection);
    if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &be)) {
        store_fail(err, &be, collection);
        goto done;
    }
    ret = 0;
done:
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return ret;
}

int store_update_one(struct store *st, const char *collection, const bson_t *filter,
                     const bson_t *update, bool upsert, int64_t *matched, struct app_error *err)
{
    bson_t opts = BSON_INITIALIZER;
    mongoc_client_t *c = store_pop(st, err);
    mongoc_collection_t *coll = NULL;
    bson_t reply;
    bson_iter_t it;
    bson_error_t be;
    int ret = -1;

    if (c == NULL)
        return -1;
    BSON_APPEND_BOOL(&opts, "upsert", upsert);
    coll = mongoc_client_get_collection(c, st->db, collection);
    if (!mongoc_collection_update_one(coll, filter, update, &opts, &reply, &be)) {
        store_fail(err, &be, collection);
        goto done;
    }
    *matched = bson_iter_init_find(&it, &reply, "matchedCount") ? bson_iter_as_int64(&it) : 0;
    ret = 0;
done:
    bson_destroy(&opts);
    bson_destroy(&reply);
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return ret;
}

int store_delete(struct store *st, const char *collection, const bson_t *filter, bool many,
                 int64_t *deleted, struct app_error *err)
{
    mongoc_client_t *c = store_pop(st, err);
    mongoc_collection_t *coll = NULL;
    bson_t reply;
    bson_iter_t it;
    bson_error_t be;
    bool ok;
    int ret = -1;

    if (c == NULL)
        return -1;
    coll = mongoc_client_get_collection(c, st->db, collection);
    ok = many ? mongoc_collection_delete_many(coll, filter, NULL, &reply, &be)
              : mongoc_collection_delete_one(coll, filter, NULL, &reply, &be);
    if (!ok) {
        store_fail(err, &be, collection);
        goto done;
    }
    *deleted = bson_iter_init_find(&it, &reply, "deletedCount") ? bson_iter_as_int64(&it) : 0;
    ret = 0;
done:
    bson_destroy(&reply);
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return ret;
}

int store_find_each(struct store *st, const char *collection, const bson_t *filter,
                    const bson_t *opts, store_each_fn fn, void *ctx, struct app_error *err)
{
    mongoc_client_t *c = store_pop(st, err);
    mongoc_collection_t *coll = NULL;
    mongoc_cursor_t *cur = NULL;
    const bson_t *doc;
    bson_error_t be;
    int ret = -1;

    if (c == NULL)
        return -1;
    coll = mongoc_client_get_collection(c, st->db, collection);
    cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (fn(doc, ctx) != 0) {
            error_set(err, ERR_INTERNAL, NULL);
            error_log(err, "store: out of memory reading %s", collection);
            goto done;
        }
    }
    if (mongoc_cursor_error(cur, &be)) {
        store_fail(err, &be, collection);
        goto done;
    }
    ret = 0;
done:
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return ret;
}

struct by_id {
    const char *team;
    store_each_fn fn;
    void *ctx;
    bool found;
};

static int by_id_row(const bson_t *doc, void *ctx)
{
    struct by_id *b = ctx;

    if (b->found || strcmp(store_utf8(doc, "team_id"), b->team) != 0)
        return 0;
    b->found = true;
    return b->fn(doc, b->ctx);
}

int store_find_by_id(struct store *st, const char *collection, const char *team, const char *id,
                     const bson_t *opts, store_each_fn fn, void *ctx, struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    struct by_id b = {team, fn, ctx, false};
    int rc = store_find_each(st, collection, filter, opts, by_id_row, &b, err);

    bson_destroy(filter);
    return rc != 0 ? -1 : !b.found;
}

struct find_json {
    store_row_fn row;
    json_t *out;
};

static int append_row(const bson_t *doc, void *ctx)
{
    struct find_json *f = ctx;
    json_t *o = f->row(doc);

    return o == NULL || json_array_append_new(f->out, o) != 0 ? -1 : 0;
}

json_t *store_find(struct store *st, const char *collection, const bson_t *filter,
                   const bson_t *opts, store_row_fn row, struct app_error *err)
{
    struct find_json f = {row, json_array()};

    if (f.out == NULL)
        return NULL;
    if (store_find_each(st, collection, filter, opts, append_row, &f, err) != 0) {
        json_decref(f.out);
        return NULL;
    }
    return f.out;
}

void store_and_begin(struct store_and *a)
{
    bson_init(&a->array);
    a->n = 0;
}

bson_t *store_and_next(struct store_and *a)
{
    char idx[16];
    const char *key;

    bson_uint32_to_string(a->n++, &key, idx, sizeof idx);
    bson_append_document_begin(&a->array, key, -1, &a->cond);
    return &a->cond;
}

void store_and_done(struct store_and *a)
{
    bson_append_document_end(&a->array, &a->cond);
}

void store_and_finish(struct store_and *a, bson_t *filter)
{
    /* $and may not be empty: without conditions, leave it out. */
    if (a->n > 0)
        bson_append_array(filter, "$and", -1, &a->array);
    bson_destroy(&a->array);
}

void store_append_after(bson_t *doc, const char *time_field, int64_t at, const char *id,
                        bool id_is_oid)
{
    bson_t or, alt, sub;
    bson_oid_t oid;

    BSON_APPEND_ARRAY_BEGIN(doc, "$or", & or);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "0", &alt);
    BSON_APPEND_DOCUMENT_BEGIN(&alt, time_field, &sub);
    BSON_APPEND_DATE_TIME(&sub, "$lt", at);
    bson_append_document_end(&alt, &sub);
    bson_append_document_end(& or, &alt);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "1", &alt);
    BSON_APPEND_DATE_TIME(&alt, time_field, at);
    BSON_APPEND_DOCUMENT_BEGIN(&alt, "_id", &sub);
    if (id_is_oid) {
        bson_oid_init_from_string(&oid, id);
        BSON_APPEND_OID(&sub, "$lt", &oid);
    } else {
        BSON_APPEND_UTF8(&sub, "$lt", id);
    }
    bson_append_document_end(&alt, &sub);
    bson_append_document_end(& or, &alt);
    bson_append_array_end(doc, & or);
}

int store_replace_one(struct store *st, const char *collection, const bson_t *filter,
                      const bson_t *doc, bool upsert, struct app_error *err)
{
    mongoc_client_t *c = store_pop(st, err);
    mongoc_collection_t *coll;
    bson_t opts, reply;
    bson_iter_t it;
    bson_error_t be;
    int ret;

    if (c == NULL)
        return -1;
    bson_init(&opts);
    BSON_APPEND_BOOL(&opts, "upsert", upsert);
    coll = mongoc_client_get_collection(c, st->db, collection);
    if (!mongoc_collection_replace_one(coll, filter, doc, &opts, &reply, &be))
        ret = store_fail(err, &be, collection);
    else if (upsert)
        ret = 0;
    else
        ret =
            bson_iter_init_find(&it, &reply, "matchedCount") && bson_iter_as_int64(&it) > 0 ? 0 : 1;
    bson_destroy(&reply);
    bson_destroy(&opts);
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return ret;
}
