/* store.c: the MongoDB client pool and its clients: open, close, pop, push, ping, errors. */
#include "store_priv.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "ratelimit.h"
#include "util.h"

#define MONITOR_EVERY_MS   500  /* the pool's monitor checks each server this often */
#define MONITOR_TIMEOUT_MS 1000 /* ... and waits this long (connectTimeoutMS) for an answer */
/* A process yet to hear its monitor goes by the host's view while it is this new: monitors
 * write it at least every MONITOR_EVERY_MS + MONITOR_TIMEOUT_MS. */
#define PROBE_STATE_MAX_AGE_MS 5000

static pthread_once_t store_once = PTHREAD_ONCE_INIT;
static struct store *circuit; /* the process's store, once its circuit runs (one per process) */
static bool circuit_down(struct store *st);
static bool circuit_open(struct store *st);
static __thread bool background;      /* this thread uses st->bg */
static __thread bool own_wanted;      /* this thread uses a client of its own (slow work) */
static __thread mongoc_client_t *own; /* ... made on first use from bg_uri */

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
    /* A request that finds no server to talk to opens the circuit at once: the next ones fail
     * in microseconds instead of each waiting out server selection, until the monitor gets in.
     * A read that timed out does not: it may only have been slow; the monitor judges that. */
    if (be->domain == MONGOC_ERROR_SERVER_SELECTION && !background && !own_wanted && circuit &&
        circuit_open(circuit))
        log_warn("store: not answering (%s); failing fast until the monitor reaches it", what);
    return error_log(err, "store: %s: %s (domain %u, code %u)", what, be->message, be->domain,
                     be->code);
}

void store_use_background(void)
{
    background = true;
}

void store_use_own_client(void)
{
    own_wanted = true;
}

void store_own_client_done(void)
{
    mongoc_client_destroy(own);
    own = NULL;
}

mongoc_client_t *store_pop(struct store *st, struct app_error *err)
{
    mongoc_client_t *c;
    bson_error_t be;

    if (own_wanted) {
        if (own == NULL) {
            own = mongoc_client_new_from_uri_with_error(st->bg_uri, &be);
            if (own == NULL) {
                store_fail(err, &be, "own client");
                return NULL;
            }
            mongoc_client_set_error_api(own, MONGOC_ERROR_API_VERSION_2);
        }
        return own;
    }

    if (background) {
        pthread_mutex_lock(&st->bg_lock);
        if (st->bg == NULL) {
            st->bg = mongoc_client_new_from_uri_with_error(st->bg_uri, &be);
            if (st->bg == NULL) {
                pthread_mutex_unlock(&st->bg_lock);
                store_fail(err, &be, "background client");
                return NULL;
            }
            mongoc_client_set_error_api(st->bg, MONGOC_ERROR_API_VERSION_2);
        }
        return st->bg;
    }
    if (circuit_down(st)) {
        error_set(err, ERR_UNAVAILABLE, NULL);
        error_log(err, "store: down (not answering the pool's monitor since it stopped)");
        return NULL;
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
    if (c == own)
        return;
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
    bool user_socket, user_heartbeat;

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
        pthread_mutex_init(&st->seen_lock, NULL);
    }
    st->uri = mongoc_uri_new_with_error(cfg->mongodb_uri, &be);
    if (st->uri == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        error_log(err, "LOOPED_MONGODB_URI: %s", be.message);
        goto fail;
    }
    /* Nothing may block a worker for long: bound server selection, connecting, the wait for a
     * pooled client and every socket read, unless the URI says otherwise. */
    user_heartbeat = mongoc_uri_has_option(st->uri, MONGOC_URI_HEARTBEATFREQUENCYMS);
    uri_default(st->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, t);
    /* Also how long the pool's monitor waits for a server's answer (the circuit, below). */
    uri_default(st->uri, MONGOC_URI_CONNECTTIMEOUTMS,
                t < MONITOR_TIMEOUT_MS ? t : MONITOR_TIMEOUT_MS);
    uri_default(st->uri, MONGOC_URI_WAITQUEUETIMEOUTMS, t);
    /* Request threads wait for a reply at most t (a frozen store costs a request t, then the
     * circuit answers at once); the background threads' batches may take longer (below). */
    user_socket = mongoc_uri_has_option(st->uri, MONGOC_URI_SOCKETTIMEOUTMS);
    uri_default(st->uri, MONGOC_URI_SOCKETTIMEOUTMS, t);
    uri_default(st->uri, MONGOC_URI_HEARTBEATFREQUENCYMS, 2000);
    /* A read that timed out is not tried again on a request thread (that would double the
     * wait): the client gets 503 with Retry-After and the circuit takes over. */
    if (!mongoc_uri_has_option(st->uri, MONGOC_URI_RETRYREADS))
        mongoc_uri_set_option_as_bool(st->uri, MONGOC_URI_RETRYREADS, false);
    /* Each popped client holds its own connection: a small pool keeps the store's connection
     * count at 4 per worker process (2 clients and the pool's monitor for the request threads,
     * and the background client of the audit writer and the key-change feed; the hourly
     * retention purge's own client only while it runs). The request threads rarely need the
     * store at once (keys come from the cache), and a thread that finds the pool empty waits at
     * most waitQueueTimeoutMS. */
    uri_default(st->uri, MONGOC_URI_MAXPOOLSIZE, 2);
    if (!mongoc_uri_has_option(st->uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(st->uri, "looped");
    st->bg_uri = mongoc_uri_copy(st->uri);
    if (!user_socket)
        mongoc_uri_set_option_as_int32(st->bg_uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                       t * 5 > 10000 ? t * 5 : 10000);
    /* The pool's monitor (a thread of the driver) checks the server every MONITOR_EVERY_MS: the
     * circuit's probe. The background client keeps the slower pace: a single-threaded client
     * checks before an operation, and its operations come seconds apart. */
    if (!user_heartbeat)
        mongoc_uri_set_option_as_int32(st->uri, MONGOC_URI_HEARTBEATFREQUENCYMS, MONITOR_EVERY_MS);
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
    store_circuit_stop(st);
    mongoc_client_destroy(st->bg);
    pthread_mutex_destroy(&st->bg_lock);
    mongoc_client_pool_destroy(st->pool); /* its monitor stops: no callback after this */
    pthread_mutex_destroy(&st->seen_lock);
    mongoc_uri_destroy(st->uri);
    mongoc_uri_destroy(st->bg_uri);
    bson_free(st->db);
    bson_free(st);
}

/* The circuit's probe is the pool's own monitor: every MONITOR_EVERY_MS it checks each server
 * with MONITOR_TIMEOUT_MS to answer, and reports each check here (SDAM heartbeat events, on the
 * driver's monitor threads) — no connection and no thread of ours. The store is down while the
 * last check of every server it knows failed (one member of a replica set that stops answering
 * is not an outage). Each answer also goes to the host's shared view (ratelimit.h). */
static void monitor_seen(struct store *st, const mongoc_host_list_t *h, bool ok,
                         const bson_error_t *be)
{
    bool any_up = false;
    size_t i;

    if (!atomic_load(&st->probing))
        return;
    pthread_mutex_lock(&st->seen_lock);
    for (i = 0; i < st->nservers && strcmp(st->servers[i].host, h->host_and_port) != 0; i++)
        ;
    if (i == st->nservers && i < STORE_SERVERS_MAX) {
        snprintf(st->servers[i].host, sizeof st->servers[i].host, "%s", h->host_and_port);
        st->nservers++;
    }
    if (i < st->nservers)
        st->servers[i].up = ok;
    for (i = 0; i < st->nservers; i++)
        any_up = any_up || st->servers[i].up;
    pthread_mutex_unlock(&st->seen_lock);
    ratelimit_store_seen(any_up, util_now_ms());
    if (any_up && atomic_exchange(&st->down, false))
        log_info("store: answering again");
    else if (!any_up && circuit_open(st))
        log_warn("store: not answering the pool's monitor (%s); failing fast",
                 be ? be->message : "no answer");
    atomic_store(&st->probed, true);
}

static void heartbeat_ok(const mongoc_apm_server_heartbeat_succeeded_t *e)
{
    monitor_seen(mongoc_apm_server_heartbeat_succeeded_get_context(e),
                 mongoc_apm_server_heartbeat_succeeded_get_host(e), true, NULL);
}

static void heartbeat_failed(const mongoc_apm_server_heartbeat_failed_t *e)
{
    bson_error_t be;

    mongoc_apm_server_heartbeat_failed_get_error(e, &be);
    monitor_seen(mongoc_apm_server_heartbeat_failed_get_context(e),
                 mongoc_apm_server_heartbeat_failed_get_host(e), false, &be);
}

/* Opens the circuit; true if it was closed. */
static bool circuit_open(struct store *st)
{
    atomic_store(&st->down_at, util_now_ms());
    return !atomic_exchange(&st->down, true);
}

/* Down by the monitor's last checks, unless another process's monitor has seen the store
 * answer since (so that a store that is back is back for every process of the host at once,
 * not one check interval later for each); before it has reported, by the host's view. */
static bool circuit_down(struct store *st)
{
    if (atomic_load_explicit(&st->probed, memory_order_relaxed))
        return atomic_load_explicit(&st->down, memory_order_relaxed) &&
               ratelimit_store_up_at() <= atomic_load_explicit(&st->down_at, memory_order_relaxed);
    return atomic_load_explicit(&st->probing, memory_order_relaxed) &&
           ratelimit_store_state(util_now_ms(), PROBE_STATE_MAX_AGE_MS) == 0;
}

int store_circuit_start(struct store *st)
{
    mongoc_apm_callbacks_t *cb = mongoc_apm_callbacks_new();
    bool ok;

    mongoc_apm_set_server_heartbeat_succeeded_cb(cb, heartbeat_ok);
    mongoc_apm_set_server_heartbeat_failed_cb(cb, heartbeat_failed);
    atomic_store(&st->probing, true);
    /* Before the first pop (the monitor starts with it); once per pool. */
    ok = mongoc_client_pool_set_apm_callbacks(st->pool, cb, st);
    mongoc_apm_callbacks_destroy(cb);
    if (!ok) {
        atomic_store(&st->probing, false);
        return -1;
    }
    circuit = st;
    return 0;
}

void store_circuit_stop(struct store *st)
{
    if (st == NULL || !atomic_load(&st->probing))
        return;
    circuit = NULL;
    atomic_store(&st->probing, false);
    atomic_store(&st->probed, false);
    atomic_store(&st->down, false);
}

int store_ping(struct store *st, struct app_error *err)
{
    mongoc_client_t *c = NULL;
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t be;
    int ret = -1;

    /* With a monitor that has reported once, the answer is its last check: instant, whatever the
     * store does. */
    if (atomic_load(&st->probed) ||
        (atomic_load(&st->probing) &&
         ratelimit_store_state(util_now_ms(), PROBE_STATE_MAX_AGE_MS) >= 0)) {
        bson_destroy(cmd);
        if (!circuit_down(st))
            return 0;
        error_set(err, ERR_UNAVAILABLE, NULL);
        return error_log(err, "store: the monitor's last check failed");
    }
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
