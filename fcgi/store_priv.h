/* store_priv.h: what the store's own files share; nothing else includes it or mongoc.h.
 * Those files: store.c, store_audit.c, store_bson.c, store_docs.c, store_idem.c, store_index.c,
 * store_keys.c, store_people.c, store_query.c, store_rate.c. */
#ifndef LOOPED_STORE_PRIV_H
#define LOOPED_STORE_PRIV_H

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>

#include "store.h"

/* store.c: the client pool and its clients */

#define STORE_SERVERS_MAX 16 /* servers of a URI the circuit follows */

struct store {
    mongoc_client_pool_t *pool;
    mongoc_uri_t *uri;
    mongoc_uri_t *bg_uri; /* uri with the background threads' longer socket timeout */
    char *db;
    mongoc_client_t *bg;          /* the background threads' client, made on first use */
    pthread_mutex_t bg_lock;      /* held from store_pop to store_push of bg */
    atomic_bool digests_complete; /* every key has its digest document (keysync.c checks) */
    /* The circuit (store.c): down while the pool monitor's last check of every server failed,
     * or since a request's driver error said the server cannot be reached; request threads
     * then fail at once, unless another process of the host has seen it answer since down_at
     * (wall ms). */
    atomic_bool down;
    _Atomic int64_t down_at;
    atomic_bool probing; /* the circuit runs (the monitor's reports count) */
    atomic_bool probed;  /* the monitor has reported once: store_ping answers from its state */
    pthread_mutex_t seen_lock; /* servers: written from the driver's monitor threads */
    struct {
        char host[BSON_HOST_NAME_MAX + 8];
        bool up;
    } servers[STORE_SERVERS_MAX];
    size_t nservers;
};

/* Sets err from a driver error (unavailable, conflict or internal) with the driver's text
 * in err->log only. Returns -1. */
int store_fail(struct app_error *err, const bson_error_t *be, const char *what);

/* Pops a pooled client (bounded by waitQueueTimeoutMS), or in a background thread takes the
 * background client (made on first use) and its lock; NULL with err set (unavailable when no
 * client is free). The caller holds the client until it gives it back with store_push, before
 * the request is answered; store_push cannot fail. */
mongoc_client_t *store_pop(struct store *st, struct app_error *err);
void store_push(struct store *st, mongoc_client_t *c);

/* store_bson.c: BSON to JSON and back */

/* The string at key (doc's own, valid as long as doc), or "" if absent or not a string. */
const char *store_utf8(const bson_t *doc, const char *key);

/* The date-time at key in ms, or 0 if absent, null or not a date. */
int64_t store_date(const bson_t *doc, const char *key);

/* Appends a date-time, or null for 0. */
void store_append_date(bson_t *doc, const char *key, int64_t ms);

/* Appends a JSON value (the caller's) under key, objects and arrays recursively. */
void store_append_json(bson_t *doc, const char *key, json_t *v);

/* A stored document as JSON: "_id" becomes "id", team_id is dropped, dates become RFC 3339
 * strings, ObjectIds hex strings. New reference (caller owns), NULL only out of memory. */
json_t *store_doc_json(const bson_t *doc);

/* Appends {"$regex": <s with metacharacters escaped>, "$options": "i"} under key. */
void store_append_contains(bson_t *doc, const char *key, const char *s);

/* store_query.c: generic queries and the pieces of their filters */

/* Calls fn(doc, ctx) for each document find(filter, opts) returns (doc is valid only during
 * the call); fn returns -1 to stop (out of memory). Returns 0, or -1 with err set. */
typedef int (*store_each_fn)(const bson_t *doc, void *ctx);
int store_find_each(struct store *st, const char *collection, const bson_t *filter,
                    const bson_t *opts, store_each_fn fn, void *ctx, struct app_error *err);

/* The document of team with this _id: calls fn(doc, ctx) and returns 0, or returns 1 if there
 * is none (or it belongs to another team), or -1 with err set. The filter is {_id} alone and
 * the team is compared here: every store answers that from its primary key, while FerretDB's
 * SQLite backend scans the whole collection for any other filter. */
int store_find_by_id(struct store *st, const char *collection, const char *team, const char *id,
                     const bson_t *opts, store_each_fn fn, void *ctx, struct app_error *err);

/* The documents of find(filter, opts) as a new JSON array (caller owns), each made by row()
 * (a new reference, NULL out of memory); NULL with err set. */
typedef json_t *(*store_row_fn)(const bson_t *doc);
json_t *store_find(struct store *st, const char *collection, const bson_t *filter,
                   const bson_t *opts, store_row_fn row, struct app_error *err);

/* Inserts one document (acknowledged). 0, or -1 with err set (conflict on a duplicate key). */
int store_insert(struct store *st, const char *collection, const bson_t *doc,
                 struct app_error *err);

/* store_update_one updates one document (with upsert, inserts it when none matches) and sets
 * *matched to the matched count; store_delete deletes one document, or with many every one
 * matching, and sets *deleted. Each returns 0, or -1 with err set (conflict on a duplicate
 * key). */
int store_update_one(struct store *st, const char *collection, const bson_t *filter,
                     const bson_t *update, bool upsert, int64_t *matched, struct app_error *err);
int store_delete(struct store *st, const char *collection, const bson_t *filter, bool many,
                 int64_t *deleted, struct app_error *err);

/* Replaces the one document matching filter with doc (inserting it if none matched and
 * upsert). 0, 1 when none matched and not upsert, -1 with err set. */
int store_replace_one(struct store *st, const char *collection, const bson_t *filter,
                      const bson_t *doc, bool upsert, struct app_error *err);

/* Conditions joined with $and, for filters that need more than one $or:
 *   store_and_begin(&a); cond = store_and_next(&a); ...append to cond...; store_and_done(&a);
 *   store_and_finish(&a, filter);   (adds "$and" to filter only if there was a condition)
 * None of them can fail; store_and_finish frees what store_and_begin took. */
struct store_and {
    bson_t array, cond;
    uint32_t n;
};
void store_and_begin(struct store_and *a);
bson_t *store_and_next(struct store_and *a);
void store_and_done(struct store_and *a);
void store_and_finish(struct store_and *a, bson_t *filter);

/* Appends the "$or" of a page that continues after (at, id) in the order time_field desc,
 * _id desc: {time_field < at} or {time_field == at, _id < id}. */
void store_append_after(bson_t *doc, const char *time_field, int64_t at, const char *id,
                        bool id_is_oid);

#endif
