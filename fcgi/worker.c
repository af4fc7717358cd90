/* worker.c: the accept loop of a worker process and the pipeline every request goes through. */
#include "worker.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "audit.h"
#include "auth_check.h"
#include "http.h"
#include "idempotency.h"
#include "keysync.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "ratesync.h"
#include "router.h"
#include "store.h"

struct worker {
    struct worker_ctx ctx;
    const struct app *app;
    int listen_fd;
    int wake[2];                  /* readable once the worker is asked to stop */
    pthread_mutex_t accept_mutex; /* one thread at a time in poll + accept */
};

/* A state-changing request from a browser page of another site (api.md §2): its Origin names
 * another scheme or host, or the browser says so in Sec-Fetch-Site. Requests without Origin (curl,
 * scripts) are not cross-origin. */
static bool worker_cross_origin(const struct request *req)
{
    const char *host;

    if (strcmp(req->method, "GET") == 0)
        return false;
    if (strcmp(req->sec_fetch_site, "cross-site") == 0)
        return true;
    if (req->origin[0] == '\0')
        return false;
    /* The whole origin: scheme too (https://host is not the page of http://host). */
    host = strstr(req->origin, "://");
    return host == NULL || (size_t)(host - req->origin) != strlen(req->scheme) ||
           strncasecmp(req->origin, req->scheme, strlen(req->scheme)) != 0 ||
           strcasecmp(host + 3, req->host) != 0;
}

/* A person on a team's endpoint: a member, and an OWNER or ADMIN where the route says so.
 * Non-members get 404: the team does not exist for them. */
static int worker_team_check(struct worker_ctx *ctx, struct request *req, const struct route *route,
                             struct app_error *err)
{
    int rc = store_member_role(ctx->store, req->params[0], req->remote_user, req->role, err);

    if (rc < 0)
        return -1;
    if (rc == 1)
        return error_set(err, ERR_NOT_FOUND, NULL);
    if ((route->flags & ROUTE_ADMIN) && strcmp(req->role, "OWNER") != 0 &&
        strcmp(req->role, "ADMIN") != 0)
        return error_set(err, ERR_FORBIDDEN, "Only owners and admins of the team can do this.");
    return 0;
}

static int64_t worker_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* the vDSO: no system call */
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Every request: gate on size and media type, route, check query and caller, read the body,
 * run the handler, answer. Every failure becomes the error envelope; 5xx are logged with
 * their internal detail, which never reaches the client. Returns the work to run once the
 * answer is out (response.after), or NULL. */
typedef void (*after_fn)(void);
static after_fn worker_handle(struct worker *w, FCGX_Request *fcgx)
{
    struct worker_ctx *ctx = &w->ctx;
    struct request req;
    struct response res;
    struct app_error err;
    struct principal who;
    struct idem idem;
    const struct route *route = NULL;
    char allow[64];
    int rc = -1, kept, status;
    int64_t started = worker_usec();
    after_fn after;

    memset(&res, 0, sizeof res);
    memset(&err, 0, sizeof err);
    who.known = false;
    idem.active = false;
    if (http_request_init(&req, fcgx, &err) != 0)
        goto answer;
    req.ctx = ctx;
    http_client_resolve(&req, ctx->cfg->trusted, ctx->cfg->ntrusted);
    if (ctx->cfg->test_routes)
        http_header_add(&res, "X-Worker", ctx->pid);
    if (req.content_length > ctx->cfg->max_body) {
        error_set(&err, ERR_PAYLOAD_TOO_LARGE, "The request body is larger than %lld bytes.",
                  ctx->cfg->max_body);
        goto answer;
    }
    if (req.content_length > 0 && !http_is_json_type(req.content_type)) {
        error_set(&err, ERR_UNSUPPORTED_MEDIA_TYPE, NULL);
        goto answer;
    }
    switch (router_match(w->app->routes, w->app->nroutes, ctx->cfg->test_routes, &req, &route,
                         allow, sizeof allow)) {
    case ROUTER_FOUND:
        break;
    case ROUTER_METHOD_NOT_ALLOWED:
        http_header_add(&res, "Allow", allow);
        error_set(&err, ERR_METHOD_NOT_ALLOWED, NULL);
        goto answer;
    case ROUTER_NOT_FOUND:
        error_set(&err, ERR_NOT_FOUND, NULL);
        goto answer;
    }
    if ((route->flags & ROUTE_KEY) &&
        auth_key_verify(ctx->store, &req, route->access, &who, &res, &err) != 0)
        goto answer;
    if (router_check_query(route, &req, &err) != 0)
        goto answer;
    if (route->flags & ROUTE_USER) {
        if (req.remote_user[0] == '\0') {
            error_set(&err, ERR_UNAUTHENTICATED, NULL);
            goto answer;
        }
        if (worker_cross_origin(&req)) {
            error_set(&err, ERR_CROSS_ORIGIN_REQUEST, NULL);
            goto answer;
        }
        if ((route->flags & ROUTE_TEAM) && worker_team_check(ctx, &req, route, &err) != 0)
            goto answer;
    }
    if ((route->flags & ROUTE_BODY) && http_body_read(&req, ctx->cfg->max_body, &err) != 0)
        goto answer;
    /* A request seen before gets its first answer again (1: in res; -1: in err). */
    if ((route->flags & ROUTE_IDEMPOTENT) &&
        (kept = idem_begin(ctx->store, &req, &idem, &res, &err)) != 0) {
        rc = kept > 0 ? 0 : -1;
        goto answer;
    }
    rc = route->handler(&req, &res, &err);
    idem_finish(ctx->store, &idem, rc, &res, &err);
answer:
    status = rc == 0 ? res.status : error_status(err.code);
    if (who.known)
        audit_key_request(&req, &who.ka.key, status);
    if (rc == 0) {
        if (http_response_send(&req, &res) != 0)
            log_debug("request %s: client went away", req.request_id);
    } else {
        if (error_status(err.code) >= 500)
            log_error("request %s %s %s: %s: %s", req.request_id, req.method ? req.method : "-",
                      req.path, error_code_name(err.code), err.log[0] ? err.log : "-");
        if (err.code == ERR_UNAVAILABLE)
            http_header_add(&res, "Retry-After", "5");
        if (http_error_send(&req, &res, &err) != 0)
            log_debug("request %s: client went away", req.request_id);
    }
    /* Counted before FCGX_Finish_r flushes the answer: a client that has it sees it counted. */
    metrics_request(route ? (int)(route - w->app->routes) : -1, req.method, status,
                    worker_usec() - started);
    after = rc == 0 ? res.after : NULL;
    error_clear(&err);
    http_response_clear(&res);
    http_request_free(&req);
    return after;
}

/* Waits for a connection or the stop signal. Returns 0 with a request accepted, 1 when the
 * worker is stopping and nothing is queued, -1 on a listening socket that cannot be used. The
 * listening socket is non-blocking: another process may take the connection between poll and
 * accept. */
static int worker_accept(struct worker *w, FCGX_Request *fcgx)
{
    for (;;) {
        struct pollfd p[2] = {{w->listen_fd, POLLIN, 0}, {w->wake[0], POLLIN, 0}};
        int rc;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("poll: %s", strerror(errno));
            return -1;
        }
        /* Stopping: serve what is already queued (the supervisor has unlinked a Unix socket, so
         * nothing new arrives there), then stop; a connection left in the backlog would be
         * reset when the last process closes the socket. */
        if (p[1].revents)
            return FCGX_Accept_r(fcgx) == 0 ? 0 : 1;
        if (!(p[0].revents & POLLIN)) {
            log_error("listening socket failed (revents %#x)", (unsigned)p[0].revents);
            return -1;
        }
        rc = FCGX_Accept_r(fcgx);
        if (rc == 0)
            return 0;
        if (rc == -EBADF || rc == -EINVAL || rc == -ENOTSOCK) {
            log_error("accept: %s", strerror(-rc));
            return -1;
        }
        /* EAGAIN: another worker won the race; anything else: a peer that hung up or spoke
         * no FastCGI. Either way, wait for the next one. */
    }
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    FCGX_Request fcgx;
    after_fn after;
    int rc;

    if (FCGX_InitRequest(&fcgx, w->listen_fd, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&w->accept_mutex);
        rc = worker_accept(w, &fcgx);
        pthread_mutex_unlock(&w->accept_mutex);
        if (rc != 0)
            break;
        after = worker_handle(w, &fcgx);
        FCGX_Finish_r(&fcgx);
        if (after)
            after();
        /* One request per connection: a kept-alive connection would hold this thread and delay
         * a graceful stop (mod_proxy_fcgi: leave enablereuse off). */
        FCGX_Free(&fcgx, 1);
    }
    FCGX_Free(&fcgx, 1);
    auth_check_thread_done();
    if (rc < 0)
        kill(getpid(), SIGTERM); /* the socket is gone: stop the others, let the parent respawn */
    return NULL;
}

/* The metrics table, like the rate-limit table below: the supervisor's, or the file in the state
 * directory, or (spawned without one) this process's alone. */
static void worker_metrics_attach(const struct config *cfg)
{
    char path[4096], err[256];
    bool supervised = metrics_attached();

    if (!supervised && cfg->state_dir) {
        snprintf(path, sizeof path, "%s/%s", cfg->state_dir, METRICS_FILE);
        if (metrics_attach_file(path, err) != 0)
            log_error("metrics: %s; /metrics shows this process only", err);
    } else if (!supervised) {
        log_warn("metrics: no LOOPED_STATE_DIR; /metrics shows this process only");
    }
    if (!metrics_attached() && metrics_attach_anon() != 0)
        log_error("metrics: cannot map a table; nothing is counted");
    metrics_worker_start(supervised);
}

/* A pool's supervisor mapped the shared table before the fork. A process the web server
 * spawned maps the file its siblings map, under the state directory; without one it counts
 * alone (and says so). */
static void worker_ratelimit_attach(const struct config *cfg)
{
    char path[4096], err[256];

    if (ratelimit_attached())
        return;
    if (cfg->state_dir) {
        snprintf(path, sizeof path, "%s/ratelimit.table", cfg->state_dir);
        if (ratelimit_attach_file(path, err) == 0)
            return;
        log_error("rate limits: %s; counting in this process only", err);
    } else {
        log_warn("rate limits: no LOOPED_STATE_DIR; counting in this process only");
    }
    if (ratelimit_attach_anon() != 0)
        log_error("rate limits: cannot map a table; requests are not limited");
}

int worker_run(const struct config *cfg, const struct app *app, int listen_fd, int nthreads)
{
    struct worker w;
    struct app_error err;
    pthread_t threads[256];
    sigset_t stop;
    int started = 0, sig = 0, status = 1, flags;

    memset(&w, 0, sizeof w);
    memset(&err, 0, sizeof err);
    w.ctx.cfg = cfg;
    w.app = app;
    w.listen_fd = listen_fd;
    w.wake[0] = w.wake[1] = -1;
    snprintf(w.ctx.pid, sizeof w.ctx.pid, "%ld", (long)getpid());
    pthread_mutex_init(&w.accept_mutex, NULL);

    /* The threads inherit this mask; only the main thread takes the stop signals. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        goto done;
    }
    flags = fcntl(listen_fd, F_GETFL);
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        log_error("listening socket: %s", strerror(errno));
        goto done;
    }
    if (pipe2(w.wake, O_CLOEXEC) != 0) {
        log_error("pipe: %s", strerror(errno));
        goto done;
    }
    worker_metrics_attach(cfg);
    if (store_open(&w.ctx.store, cfg, &err) != 0) {
        log_error("%s", err.log);
        goto done;
    }
    if (store_circuit_start(w.ctx.store) != 0)
        log_warn("store: no circuit; requests wait out the store's timeouts");
    auth_check_init(cfg);
    if (audit_start(w.ctx.store, cfg) != 0) {
        log_error("audit: cannot start the writer thread");
        goto done;
    }
    if (keysync_start(w.ctx.store) != 0)
        log_warn("keysync: no thread; cached keys live %d ms", KEYSYNC_GRACE_MS);
    worker_ratelimit_attach(cfg);
    if (ratesync_start(w.ctx.store, cfg->host_id) != 0)
        log_warn("ratesync: no thread; rate limits count this host's requests only");
    if (nthreads < 1 || nthreads > 256)
        nthreads = 1;
    for (; started < nthreads; started++) {
        if (pthread_create(&threads[started], NULL, worker_thread, &w) != 0) {
            log_error("pthread_create: %s", strerror(errno));
            break;
        }
    }
    if (started == 0)
        goto done;
    log_debug("worker ready with %d threads", started);
    while (sigwait(&stop, &sig) != 0)
        ;
    log_debug("worker stopping on signal %d", sig);
    status = 0;
done:
    if (w.wake[1] >= 0)
        (void)!write(w.wake[1], "x", 1);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    /* The request threads are gone: write what they left in the audit queue, then close. */
    ratesync_stop();
    keysync_stop();
    audit_stop();
    metrics_worker_stop();
    store_close(w.ctx.store);
    if (w.wake[0] >= 0) {
        close(w.wake[0]);
        close(w.wake[1]);
    }
    pthread_mutex_destroy(&w.accept_mutex);
    error_clear(&err);
    return status;
}
