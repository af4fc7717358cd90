/* store.c: the MongoDB client pool and its clients: open, close, pop, push, ping, errors. */
#include "store_priv.h"

#include <pthread.h>
#include <string.h>

#include "log.h"

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
