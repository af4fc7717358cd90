/* store.c: the MongoDB client pool and every query Looped makes. */
#include "store_priv.h"

#include <pthread.h>
#include <string.h>

#include "catalog.h"
#include "log.h"
#include "util.h"

static pthread_once_t store_once = PTHREAD_ONCE_INIT;

/* The driver's own messages join our log at a matching level. Its debug chatter (connection
 * retries every heartbeat) stays out unless LOOPED_LOG_LEVEL=debug. */
static void store_log_handler(mongoc_log_level_t level, const char *domain, const char *message,
                              void *data)
{
    enum log_level to = LOG_DEBUG;

    if (level <= MONGOC_LOG_LEVEL_CRITICAL)
        to = LOG_ERROR;
    else if (level == MONGOC_LOG_LEVEL_WARNING)
        to = LOG_WARN;
    /* The test store does not know endSessions: harmless, said at every pool shutdown. */
    if (strstr(message, "endSessions"))
        to = LOG_DEBUG;
    log_msg(to, "mongoc %s: %s", domain, message);
}

static void store_global_init(void)
{
    mongoc_init();
    mongoc_log_set_handler(store_log_handler, NULL);
}

/* Maps a driver error to the client's code; the driver's text goes to the log only. A server
 * that cannot be reached is "unavailable" (503, retry); anything else is internal. */
int store_fail(struct app_error *err, const bson_error_t *be, const char *what)
{
    enum err_code code = ERR_INTERNAL;

    if (be->domain == MONGOC_ERROR_SERVER_SELECTION || be->domain == MONGOC_ERROR_STREAM ||
        be->domain == MONGOC_ERROR_CLIENT)
        code = ERR_UNAVAILABLE;
    else if (be->code == 11000)
        code = ERR_CONFLICT;
    error_set(err, code, NULL);
    return error_log(err, "store: %s: %s (domain %u, code %u)", what, be->message, be->domain,
                     be->code);
}

static __thread bool background; /* this thread uses st->bg */

void store_use_background(void)
{
    background = true;
}

mongoc_client_t *store_pop(struct store *st, struct app_error *err)
{
    mongoc_client_t *c;
    bson_error_t be;

    if (background) {
        pthread_mutex_lock(&st->bg_lock);
        if (st->bg == NULL) {
            st->bg = mongoc_client_new_from_uri_with_error(st->uri, &be);
            if (st->bg == NULL) {
                pthread_mutex_unlock(&st->bg_lock);
                store_fail(err, &be, "background client");
                return NULL;
            }
            mongoc_client_set_error_api(st->bg, MONGOC_ERROR_API_VERSION_2);
        }
        return st->bg;
    }
    c = mongoc_client_pool_pop(st->pool);
    if (c == NULL) {
        error_set(err, ERR_UNAVAILABLE, NULL);
        error_log(err, "store: no client free within waitQueueTimeoutMS");
    }
    return c;
}

void store_push(struct store *st, mongoc_client_t *c)
{
    if (c == st->bg)
        pthread_mutex_unlock(&st->bg_lock);
    else
        mongoc_client_pool_push(st->pool, c);
}

static void uri_default(mongoc_uri_t *uri, const char *option, int32_t value)
{
    if (!mongoc_uri_has_option(uri, option))
        mongoc_uri_set_option_as_int32(uri, option, value);
}

int store_open(struct store **out, const struct config *cfg, struct app_error *err)
{
    struct store *st = NULL;
    bson_error_t be;
    int32_t t = (int32_t)cfg->db_timeout_ms;

    pthread_once(&store_once, store_global_init);
    *out = NULL;
    st = bson_malloc0(sizeof *st);
    {
        pthread_mutexattr_t a;

        /* Recursive: a store function may read while the calling thread holds the client. */
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&st->bg_lock, &a);
        pthread_mutexattr_destroy(&a);
    }
    st->uri = mongoc_uri_new_with_error(cfg->mongodb_uri, &be);
    if (st->uri == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        error_log(err, "LOOPED_MONGODB_URI: %s", be.message);
        goto fail;
    }
    /* Nothing may block a worker for long: bound server selection, connecting, the wait for a
     * pooled client and every socket read, unless the URI says otherwise. */
    uri_default(st->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, t);
    uri_default(st->uri, MONGOC_URI_CONNECTTIMEOUTMS, t);
    uri_default(st->uri, MONGOC_URI_WAITQUEUETIMEOUTMS, t);
    uri_default(st->uri, MONGOC_URI_SOCKETTIMEOUTMS, t * 5 > 10000 ? t * 5 : 10000);
    uri_default(st->uri, MONGOC_URI_HEARTBEATFREQUENCYMS, 2000);
    /* Each popped client holds its own connection: a small pool keeps the store's connection
     * count at 4 per worker process (2 clients and the pool's monitor for the request threads
     * and the hourly retention purge, and the background client of the audit writer and the
     * key-change feed). The request
     * threads rarely need the store at once (keys come from the cache), and a thread that
     * finds the pool empty waits at most waitQueueTimeoutMS. */
    uri_default(st->uri, MONGOC_URI_MAXPOOLSIZE, 2);
    if (!mongoc_uri_has_option(st->uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(st->uri, "looped");
    st->pool = mongoc_client_pool_new_with_error(st->uri, &be);
    if (st->pool == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        error_log(err, "LOOPED_MONGODB_URI: %s", be.message);
        goto fail;
    }
    mongoc_client_pool_set_error_api(st->pool, MONGOC_ERROR_API_VERSION_2);
    st->db = bson_strdup(cfg->db);
    *out = st;
    return 0;
fail:
    store_close(st);
    return -1;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    mongoc_client_destroy(st->bg);
    pthread_mutex_destroy(&st->bg_lock);
    mongoc_client_pool_destroy(st->pool);
    mongoc_uri_destroy(st->uri);
    bson_free(st->db);
    bson_free(st);
}

int store_ping(struct store *st, struct app_error *err)
{
    mongoc_client_t *c = NULL;
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t be;
    int ret = -1;

    c = store_pop(st, err);
    if (c == NULL)
        goto done;
    /* A connection that died with the previous server fails once, then the driver reconnects:
     * one retry keeps a store that is back from looking down for another request. */
    if (!mongoc_client_command_simple(c, "admin", cmd, NULL, NULL, &be) &&
        (be.domain != MONGOC_ERROR_STREAM ||
         !mongoc_client_command_simple(c, "admin", cmd, NULL, NULL, &be))) {
        store_fail(err, &be, "ping");
        err->code = ERR_UNAVAILABLE; /* any failure to answer a ping means "not available" */
        goto done;
    }
    ret = 0;
done:
    if (c)
        store_push(st, c);
    bson_destroy(cmd);
    return ret;
}

const char *store_utf8(const bson_t *doc, const char *key)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return "";
}

int64_t store_date(const bson_t *doc, const char *key)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it))
        return bson_iter_date_time(&it);
    return 0;
}

void store_append_date(bson_t *doc, const char *key, int64_t ms)
{
    if (ms)
        bson_append_date_time(doc, key, -1, ms);
    else
        bson_append_null(doc, key, -1);
}

/* Converts a JSON value (strings, numbers, booleans, null, arrays, objects) into doc[key]. */
void store_append_json(bson_t *doc, const char *key, json_t *v)
{
    bson_t sub;
    char idx[16];
    const char *k;
    size_t i;
    json_t *e;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        bson_append_document_begin(doc, key, -1, &sub);
        json_object_foreach(v, k, e) store_append_json(&sub, k, e);
        bson_append_document_end(doc, &sub);
        break;
    case JSON_ARRAY:
        bson_append_array_begin(doc, key, -1, &sub);
        json_array_foreach(v, i, e)
        {
            bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
            store_append_json(&sub, k, e);
        }
        bson_append_array_end(doc, &sub);
        break;
    case JSON_STRING:
        bson_append_utf8(doc, key, -1, json_string_value(v), (int)json_string_length(v));
        break;
    case JSON_INTEGER:
        bson_append_int64(doc, key, -1, json_integer_value(v));
        break;
    case JSON_REAL:
        bson_append_double(doc, key, -1, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        bson_append_bool(doc, key, -1, json_is_true(v));
        break;
    default:
        bson_append_null(doc, key, -1);
    }
}

/* Converts one BSON value to JSON: dates become RFC 3339 strings, ObjectIds hex strings. */
static json_t *bson_value_json(const bson_iter_t *it, int depth)
{
    bson_iter_t child;
    char buf[UTIL_TIME_LEN > 25 ? UTIL_TIME_LEN : 25];

    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);

        return json_stringn(s, len);
    }
    case BSON_TYPE_INT32:
        return json_integer(bson_iter_int32(it));
    case BSON_TYPE_INT64:
        return json_integer(bson_iter_int64(it));
    case BSON_TYPE_DOUBLE:
        return json_real(bson_iter_double(it));
    case BSON_TYPE_BOOL:
        return json_boolean(bson_iter_bool(it));
    case BSON_TYPE_DATE_TIME:
        return json_string(util_time_format(bson_iter_date_time(it), buf));
    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(it), buf);
        return json_string(buf);
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bool arr = bson_iter_type(it) == BSON_TYPE_ARRAY;
        json_t *out = arr ? json_array() : json_object();

        if (depth > 32 || !bson_iter_recurse(it, &child))
            return out;
        while (bson_iter_next(&child)) {
            json_t *v = bson_value_json(&child, depth + 1);

            if (arr)
                json_array_append_new(out, v);
            else
                json_object_set_new(out, bson_iter_key(&child), v);
        }
        return out;
    }
    default:
        return json_null();
    }
}

json_t *store_doc_json(const bson_t *doc)
{
    json_t *out = json_object();
    bson_iter_t it;

    if (out == NULL || !bson_iter_init(&it, doc))
        return out;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);

        if (strcmp(k, "team_id") == 0)
            continue; /* implied by the caller: never shown */
        json_object_set_new(out, strcmp(k, "_id") == 0 ? "id" : k, bson_value_json(&it, 0));
    }
    return out;
}

void store_append_contains(bson_t *doc, const char *key, const char *s)
{
    bson_t sub;
    char *re = bson_malloc(2 * strlen(s) + 1), *o = re;

    for (; *s; s++) {
        if (strchr("\\^$.|?*+()[]{}-/", *s))
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    bson_append_document_begin(doc, key, -1, &sub);
    BSON_APPEND_UTF8(&sub, "$regex", re);
    BSON_APPEND_UTF8(&sub, "$options", "i");
    bson_append_document_end(doc, &sub);
    bson_free(re);
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

static json_t *row_membership(const bson_t *doc)
{
    return json_pack("{s:s, s:s, s:s}", "id", store_utf8(doc, "team_id"), "name", "", "role",
                     store_utf8(doc, "role"));
}

static json_t *row_team(const bson_t *doc)
{
    return json_pack("{s:s, s:s}", "id", store_utf8(doc, "_id"), "name", store_utf8(doc, "name"));
}

static json_t *row_user(const bson_t *doc)
{
    return json_pack("{s:s}", "user", store_utf8(doc, "_id"));
}

static json_t *row_member(const bson_t *doc)
{
    return json_pack("{s:s, s:s}", "user", store_utf8(doc, "user"), "role",
                     store_utf8(doc, "role"));
}

static int team_name_cmp(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));

    return strcmp(x ? x : "", y ? y : "");
}

json_t *store_user_teams(struct store *st, const char *user, struct app_error *err)
{
    bson_t *filter = BCON_NEW("user", BCON_UTF8(user));
    bson_t in = BSON_INITIALIZER, ids, *tfilter = NULL;
    json_t *members = NULL, *teams = NULL, *out = NULL, *m, *t;
    json_t *sorted[256];
    size_t i, j, n = 0;
    char key[16];

    members = store_find(st, "memberships", filter, NULL, row_membership, err);
    if (members == NULL)
        goto done;
    if (json_array_size(members) == 0) {
        out = json_array();
        goto done;
    }
    /* Two finds instead of a $lookup: both MongoDB and the test store answer them fast. */
    BSON_APPEND_DOCUMENT_BEGIN(&in, "_id", &ids);
    {
        bson_t arr;

        bson_append_array_begin(&ids, "$in", -1, &arr);
        json_array_foreach(members, i, m)
        {
            const char *k;

            bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
            bson_append_utf8(&arr, k, -1, json_string_value(json_object_get(m, "id")), -1);
        }
        bson_append_array_end(&ids, &arr);
    }
    bson_append_document_end(&in, &ids);
    tfilter = &in;
    teams = store_find(st, "teams", tfilter, NULL, row_team, err);
    if (teams == NULL)
        goto done;
    /* A membership whose team is gone is skipped rather than shown half. */
    json_array_foreach(members, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));

        json_array_foreach(teams, j, t)
        {
            if (n < sizeof sorted / sizeof sorted[0] &&
                strcmp(id, json_string_value(json_object_get(t, "id"))) == 0) {
                json_object_set(m, "name", json_object_get(t, "name"));
                sorted[n++] = m;
                break;
            }
        }
    }
    qsort(sorted, n, sizeof sorted[0], team_name_cmp);
    out = json_array();
    for (i = 0; out && i < n; i++)
        json_array_append(out, sorted[i]);
    if (out == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        error_log(err, "store: out of memory");
    }
done:
    json_decref(members);
    json_decref(teams);
    bson_destroy(filter);
    bson_destroy(&in);
    return out;
}

/* Runs a command against the database (createIndexes). */
static int store_command(struct store *st, const bson_t *cmd, const char *what,
                         struct app_error *err)
{
    mongoc_client_t *c = store_pop(st, err);
    mongoc_database_t *db = NULL;
    bson_error_t be;
    int ret = -1;

    if (c == NULL)
        return -1;
    db = mongoc_client_get_database(c, st->db);
    if (!mongoc_database_write_command_with_opts(db, cmd, NULL, NULL, &be)) {
        store_fail(err, &be, what);
        goto done;
    }
    ret = 0;
done:
    mongoc_database_destroy(db);
    store_push(st, c);
    return ret;
}

struct index_spec {
    const char *collection;
    const char *name;
    const char *keys[4]; /* field names; a leading '-' means descending */
    bool unique;
};

/* design.md §4. Each resource collection adds its own rows (later issues). */
static const struct index_spec indexes[] = {
    {"memberships", "team_user", {"team_id", "user"}, true},
    {"memberships", "user", {"user"}, false},
    {"api_keys", "hash", {"hash"}, true},
    {"api_keys", "team_created", {"team_id", "-created_at", "-_id"}, false},
    {"audit", "team_at", {"team_id", "-at"}, false},
    {"audit", "team_key_at", {"team_id", "key_id", "-at"}, false},
    {"audit", "at", {"at"}, false}, /* the retention purge: {at < cutoff} across teams */
};

static int index_create(struct store *st, const struct index_spec *ix, struct app_error *err);

/* The fixed indexes, then per resource {team_id, created_at, _id} for pages and
 * {team_id, field} for each filterable field: a new schema brings its own indexes. */
int store_indexes_create(struct store *st, struct app_error *err)
{
    const struct resource *res;
    size_t n;

    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        if (index_create(st, &indexes[i], err) != 0)
            return -1;
    }
    res = catalog_resources(&n);
    for (size_t i = 0; i < n; i++) {
        struct index_spec page = {
            res[i].name, "team_created", {"team_id", "-created_at", "-_id"}, false};

        if (index_create(st, &page, err) != 0)
            return -1;
        for (size_t f = 0; f < res[i].nfilterable; f++) {
            char name[80];
            struct index_spec ix = {res[i].name, name, {"team_id", res[i].filterable[f]}, false};

            snprintf(name, sizeof name, "team_%s", res[i].filterable[f]);
            if (index_create(st, &ix, err) != 0)
                return -1;
        }
    }
    return 0;
}

static int index_create(struct store *st, const struct index_spec *ix, struct app_error *err)
{
    {
        bson_t cmd = BSON_INITIALIZER, arr, spec, key;
        int rc;

        BSON_APPEND_UTF8(&cmd, "createIndexes", ix->collection);
        BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &spec);
        BSON_APPEND_DOCUMENT_BEGIN(&spec, "key", &key);
        for (size_t k = 0; k < 4 && ix->keys[k]; k++) {
            const char *f = ix->keys[k];

            BSON_APPEND_INT32(&key, f[0] == '-' ? f + 1 : f, f[0] == '-' ? -1 : 1);
        }
        bson_append_document_end(&spec, &key);
        BSON_APPEND_UTF8(&spec, "name", ix->name);
        if (ix->unique)
            BSON_APPEND_BOOL(&spec, "unique", true);
        bson_append_document_end(&arr, &spec);
        bson_append_array_end(&cmd, &arr);
        rc = store_command(st, &cmd, ix->collection, err);
        bson_destroy(&cmd);
        return rc;
    }
}

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

/* Counts the documents matching filter (0 or 1 for the lookups here). -1 on failure. */
static int64_t store_count(struct store *st, const char *collection, const bson_t *filter,
                           struct app_error *err)
{
    mongoc_client_t *c = store_pop(st, err);
    mongoc_collection_t *coll = NULL;
    bson_error_t be;
    int64_t n;

    if (c == NULL)
        return -1;
    coll = mongoc_client_get_collection(c, st->db, collection);
    n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &be);
    if (n < 0)
        store_fail(err, &be, collection);
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return n;
}

int store_team_create(struct store *st, const char *id, const char *name, struct app_error *err)
{
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "name", BCON_UTF8(name), "created_at",
                           BCON_DATE_TIME(util_now_ms()));
    int rc = store_insert(st, "teams", doc, err);

    bson_destroy(doc);
    if (rc != 0 && err->code == ERR_CONFLICT)
        error_set(err, ERR_CONFLICT, "team %s already exists", id);
    return rc;
}

int store_user_add(struct store *st, const char *user, struct app_error *err)
{
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(user), "created_at", BCON_DATE_TIME(util_now_ms()));
    int rc = store_insert(st, "users", doc, err);

    bson_destroy(doc);
    if (rc != 0 && err->code == ERR_CONFLICT)
        error_set(err, ERR_CONFLICT, "user %s already exists", user);
    return rc;
}

static int store_exists(struct store *st, const char *collection, const char *id,
                        struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    int64_t n = store_count(st, collection, filter, err);

    bson_destroy(filter);
    return n < 0 ? -1 : n > 0;
}

int store_member_set(struct store *st, const char *team, const char *user, const char *role,
                     struct app_error *err)
{
    mongoc_client_t *c = NULL;
    mongoc_collection_t *coll = NULL;
    bson_t *filter = NULL, *update = NULL, *opts = NULL;
    bson_error_t be;
    int rc, ret = -1;

    if ((rc = store_exists(st, "teams", team, err)) <= 0)
        return rc < 0 ? -1 : error_set(err, ERR_NOT_FOUND, "no team %s", team);
    if ((rc = store_exists(st, "users", user, err)) <= 0)
        return rc < 0 ? -1 : error_set(err, ERR_NOT_FOUND, "no user %s", user);
    c = store_pop(st, err);
    if (c == NULL)
        return -1;
    filter = BCON_NEW("team_id", BCON_UTF8(team), "user", BCON_UTF8(user));
    update = BCON_NEW("$set", "{", "role", BCON_UTF8(role), "}", "$setOnInsert", "{", "created_at",
                      BCON_DATE_TIME(util_now_ms()), "}");
    opts = BCON_NEW("upsert", BCON_BOOL(true));
    coll = mongoc_client_get_collection(c, st->db, "memberships");
    if (!mongoc_collection_update_one(coll, filter, update, opts, NULL, &be)) {
        store_fail(err, &be, "memberships");
        goto done;
    }
    ret = 0;
done:
    bson_destroy(filter);
    bson_destroy(update);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return ret;
}

int store_member_remove(struct store *st, const char *team, const char *user, struct app_error *err)
{
    bson_t *filter = BCON_NEW("team_id", BCON_UTF8(team), "user", BCON_UTF8(user));
    int64_t n = 0;
    int rc = store_delete(st, "memberships", filter, false, &n, err);

    bson_destroy(filter);
    if (rc == 0 && n == 0)
        return error_set(err, ERR_NOT_FOUND, "%s is not a member of %s", user, team);
    return rc;
}

json_t *store_team_list(struct store *st, struct app_error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    json_t *out = store_find(st, "teams", &filter, opts, row_team, err);

    bson_destroy(opts);
    return out;
}

json_t *store_user_list(struct store *st, struct app_error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    json_t *out = store_find(st, "users", &filter, opts, row_user, err);

    bson_destroy(opts);
    return out;
}

json_t *store_member_list(struct store *st, const char *team, struct app_error *err)
{
    bson_t *filter = BCON_NEW("team_id", BCON_UTF8(team));
    bson_t *opts = BCON_NEW("sort", "{", "user", BCON_INT32(1), "}");
    json_t *out = NULL;
    int rc = store_exists(st, "teams", team, err);

    if (rc == 0)
        error_set(err, ERR_NOT_FOUND, "no team %s", team);
    else if (rc > 0)
        out = store_find(st, "memberships", filter, opts, row_member, err);
    bson_destroy(filter);
    bson_destroy(opts);
    return out;
}
