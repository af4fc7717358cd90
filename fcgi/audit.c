/* audit.c: the bounded audit queue (a spool that survives a crash, spool.h), its writer
 * thread, and the coalesced last-used times. */
#include "audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "http.h"
#include "idempotency.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "store.h"
#include "util.h"

#define SPOOL_BYTES     (2u << 20) /* ~4,000 records; a full queue makes requests wait */
#define ADOPT_EVERY_MS  2000       /* how often the writer looks for a dead process's spool */
#define BATCH_MAX       256        /* records per insert_many */
#define TOUCH_SLOTS     16384      /* keys whose last use this process remembers */
#define TOUCH_EVERY_MS  60000      /* at most one last-used write per key per process per minute */
#define TOUCH_BATCH     16         /* last-used writes between two audit batches */
#define PURGE_EVERY_MS  3600000    /* one purge per hour per deployment (a lease in meta) */
#define PURGE_FIRST_MS  60000      /* after start */
#define RETRY_MAX_MS    5000
#define STOP_GIVE_UP_MS 30000 /* at shutdown, how long to keep retrying a store that is down */

struct touch {
    char key_id[KEY_ID_LEN]; /* "": free */
    int64_t written;         /* monotonic ms of the last write; 0: never */
    int64_t pending_at;      /* a use not written yet (wall ms); 0: none */
    char pending_ip[KEY_IP_MAX];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full, purge_wake;
    struct spool *spool;
    const char *spool_dir; /* LOOPED_STATE_DIR: where the spools live, or NULL */
    struct touch *touches;
    size_t touches_due; /* a first use waits to be written */
    bool stopping, started;
    bool disabled; /* LOOPED_AUDIT=0: nothing is recorded (benchmarks only) */
    int64_t depth; /* records this process queued and has not written yet (the metrics) */
    pthread_t thread, purger;
    bool purging; /* the purger thread runs */
    struct store *store;
    int64_t retention_ms;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .not_empty = PTHREAD_COND_INITIALIZER,
       .not_full = PTHREAD_COND_INITIALIZER,
       .purge_wake = PTHREAD_COND_INITIALIZER};

void audit_from_request(struct audit_rec *rec, const struct request *req, const char *action)
{
    memset(rec, 0, sizeof *rec);
    rec->at = util_now_ms();
    snprintf(rec->action, sizeof rec->action, "%s", action);
    snprintf(rec->method, sizeof rec->method, "%s", req->method);
    snprintf(rec->path, sizeof rec->path, "%s", req->path);
    snprintf(rec->ip, sizeof rec->ip, "%s", req->client_addr);
    snprintf(rec->user_agent, sizeof rec->user_agent, "%s", req->user_agent);
    snprintf(rec->request_id, sizeof rec->request_id, "%s", req->request_id);
}

/* The queue's gauges for the metrics; under q.lock. */
static void queue_report(void)
{
    metrics_audit_queue(q.depth, (int64_t)spool_used(q.spool), (int64_t)spool_size(q.spool));
}

void audit_key_request(const struct request *req, const struct api_key *k, int status)
{
    struct audit_rec rec;

    audit_from_request(&rec, req, "api.request");
    snprintf(rec.team_id, sizeof rec.team_id, "%s", k->team_id);
    snprintf(rec.actor_type, sizeof rec.actor_type, "api_key");
    snprintf(rec.actor_id, sizeof rec.actor_id, "%s", k->id);
    snprintf(rec.actor_name, sizeof rec.actor_name, "%s", k->name);
    snprintf(rec.key_id, sizeof rec.key_id, "%s", k->id);
    snprintf(rec.key_name, sizeof rec.key_name, "%s", k->name);
    rec.status = status;
    audit_submit(&rec);
}

void audit_submit(struct audit_rec *rec)
{
    bson_t doc = BSON_INITIALIZER;

    if (q.disabled) {
        json_decref(rec->changes);
        json_decref(rec->rotation);
        rec->changes = rec->rotation = NULL;
        return;
    }
    /* The stored document, _id included, before the answer: in the spool it outlives a crash. */
    store_audit_bson(rec, &doc);
    json_decref(rec->changes);
    json_decref(rec->rotation);
    rec->changes = rec->rotation = NULL;
    pthread_mutex_lock(&q.lock);
    while (q.started && spool_fits(q.spool, &doc) && !spool_put(q.spool, &doc))
        pthread_cond_wait(&q.not_full, &q.lock);
    if (!q.started || !spool_fits(q.spool, &doc)) {
        /* No writer (a tool, or a failed start), or a record bigger than any batch: say so
         * rather than lose it silently. */
        pthread_mutex_unlock(&q.lock);
        log_error("audit: %s; record %s %s lost", q.started ? "record too large" : "no writer",
                  rec->action, rec->request_id);
        bson_destroy(&doc);
        return;
    }
    q.depth++;
    queue_report();
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    bson_destroy(&doc);
}

static struct touch *touch_slot(const char *key_id)
{
    size_t h = 5381;

    for (const char *p = key_id; *p; p++)
        h = h * 33 + (unsigned char)*p;
    /* Linear probing over a bounded window: a full window means "no room", not a long scan. */
    for (size_t i = 0; i < 32; i++) {
        struct touch *t = &q.touches[(h + i) % TOUCH_SLOTS];

        if (t->key_id[0] == '\0' || strcmp(t->key_id, key_id) == 0)
            return t;
    }
    return NULL;
}

void audit_touch(const char *key_id, int64_t at, const char *ip, bool never_used)
{
    struct touch *t;

    if (q.disabled)
        return;
    pthread_mutex_lock(&q.lock);
    if (!q.started) {
        pthread_mutex_unlock(&q.lock);
        return;
    }
    t = touch_slot(key_id);
    if (t == NULL) {
        pthread_mutex_unlock(&q.lock);
        log_warn("audit: last-used table full; %s not recorded this time", key_id);
        return;
    }
    if (t->key_id[0] == '\0') {
        snprintf(t->key_id, sizeof t->key_id, "%s", key_id);
        if (!never_used) {
            /* As if written between 0 and 60 s ago: due within the next 60 s. */
            int64_t h = (int64_t)((size_t)(t - q.touches) * 2654435761u % TOUCH_EVERY_MS);

            t->written = util_mono_ms() - h;
            if (t->written <= 0)
                t->written = 1;
        }
    }
    if (at > t->pending_at) {
        t->pending_at = at;
        snprintf(t->pending_ip, sizeof t->pending_ip, "%s", ip);
    }
    if (t->written == 0) {
        /* The first use in this process is written at once (visible within 2 s). */
        q.touches_due++;
        pthread_cond_signal(&q.not_empty);
    }
    pthread_mutex_unlock(&q.lock);
}

/* Writes at most `budget` of the last-used times that are due (all pending ones when flushing
 * at stop), resuming the scan where the previous call stopped. Returns true if it ran out of
 * budget, i.e. more may be due. */
static bool touches_write(bool all, size_t budget)
{
    static size_t pos;
    int64_t now = util_mono_ms();

    for (size_t scanned = 0; scanned < TOUCH_SLOTS; scanned++, pos = (pos + 1) % TOUCH_SLOTS) {
        struct touch *t = &q.touches[pos], copy;
        struct app_error err = {0};

        if (budget == 0)
            return true;
        pthread_mutex_lock(&q.lock);
        if (t->key_id[0] == '\0' || t->pending_at == 0 ||
            (!all && t->written && now - t->written < TOUCH_EVERY_MS)) {
            pthread_mutex_unlock(&q.lock);
            continue;
        }
        copy = *t;
        t->pending_at = 0;
        t->written = now;
        pthread_mutex_unlock(&q.lock);
        budget--;
        if (store_key_touch(q.store, copy.key_id, copy.pending_at, copy.pending_ip, &err) != 0)
            log_warn("audit: last used of %s not written: %s", copy.key_id, err.log);
        error_clear(&err);
    }
    return false;
}

/* The retention purge, on its own thread and the request pool's clients: on a store without
 * a usable {at} index (FerretDB on SQLite scans the whole collection) it takes seconds, and
 * neither the audit queue nor keysync's feed polls on the background client may wait for it.
 * Each worker tries once an hour; the lease in meta lets one of them purge. */
static void purge(void)
{
    struct app_error err = {0};
    int64_t deleted = 0, now = util_now_ms();
    int rc = store_audit_purge_claim(q.store, now, PURGE_EVERY_MS, &err);
    bool leased = rc == 0;

    if (rc == 0 && store_audit_purge(q.store, now - q.retention_ms, &deleted, &err) != 0)
        rc = -1;
    if (rc < 0)
        log_warn("audit: retention purge failed: %s", err.log);
    else if (deleted)
        log_info("audit: purged %lld records older than the retention period", (long long)deleted);
    /* Kept answers of idempotent requests (24 h) go on the same lease and schedule. */
    if (leased)
        idem_purge(q.store, now);
    error_clear(&err);
}

static void *purger(void *arg)
{
    int64_t next = util_mono_ms() + PURGE_FIRST_MS;

    store_use_own_client();
    pthread_mutex_lock(&q.lock);
    while (!q.stopping) {
        struct timespec ts;

        if (util_mono_ms() >= next) {
            pthread_mutex_unlock(&q.lock);
            purge();
            store_own_client_done(); /* its connection is not held for the hour in between */
            next = util_mono_ms() + PURGE_EVERY_MS;
            pthread_mutex_lock(&q.lock);
            continue;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&q.purge_wake, &q.lock, &ts);
    }
    pthread_mutex_unlock(&q.lock);
    store_own_client_done();
    return NULL;
}

/* One batch of a dead process's spool (spool.h), found every ADOPT_EVERY_MS: its records go
 * out with their own _id, so those it had sent just before it died are not stored twice.
 * Returns the spool still being sent, or NULL. */
static struct spool *adopt_step(struct spool *orphan, bson_t *batch, int64_t *next_adopt,
                                size_t *sent)
{
    struct app_error err = {0};
    uint64_t end;
    size_t n;

    if (orphan == NULL) {
        if (util_mono_ms() < *next_adopt)
            return NULL;
        *next_adopt = util_mono_ms() + ADOPT_EVERY_MS;
        if ((orphan = spool_adopt(q.spool_dir, q.spool)) == NULL)
            return NULL;
        *sent = 0;
    }
    n = spool_peek(orphan, batch, BATCH_MAX, &end);
    if (n > 0 && store_audit_insert(q.store, batch, n, &err) != 0) {
        metrics_audit_write_failed();
        /* Kept in its file for the next look (by this process or another). */
        log_warn("audit: %zu records of a stopped process not written yet (%s)", n, err.log);
        error_clear(&err);
        spool_close(orphan);
        return NULL;
    }
    spool_commit(orphan, end);
    metrics_audit_written(n);
    *sent += n;
    if (n > 0)
        return orphan;
    log_info("audit: wrote the %zu records a stopped process had queued", *sent);
    spool_close(orphan); /* empty: its file goes */
    return NULL;
}

static void *writer(void *arg)
{
    static bson_t batch[BATCH_MAX];
    struct spool *orphan = NULL;
    int64_t next_touch = 0, next_adopt = 0, retry = 0, stop_since = 0;
    size_t orphan_sent = 0;

    (void)arg;
    store_use_background();
    for (;;) {
        size_t n = 0;
        uint64_t end;
        bool stopping, touch_now;
        struct app_error err = {0};

        pthread_mutex_lock(&q.lock);
        while (spool_empty(q.spool) && q.touches_due == 0 && !q.stopping && orphan == NULL &&
               util_mono_ms() < next_touch &&
               (q.spool_dir == NULL || util_mono_ms() < next_adopt)) {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&q.not_empty, &q.lock, &ts);
        }
        stopping = q.stopping;
        touch_now = q.touches_due > 0 || util_mono_ms() >= next_touch || stopping;
        q.touches_due = 0;
        /* A batch of views into the spool; its records stay there until the insert succeeds. */
        n = spool_peek(q.spool, batch, BATCH_MAX, &end);
        if (n == 0)
            spool_commit(q.spool, end); /* past a wrap mark */
        pthread_mutex_unlock(&q.lock);

        /* Audit records first: requests wait on a full queue, last-used times can wait. */
        if (n > 0) {
            if (store_audit_insert(q.store, batch, n, &err) == 0) {
                pthread_mutex_lock(&q.lock);
                spool_commit(q.spool, end);
                /* (records a dead process with our pid left are not in depth) */
                q.depth = q.depth > (int64_t)n ? q.depth - (int64_t)n : 0;
                queue_report();
                pthread_cond_broadcast(&q.not_full);
                pthread_mutex_unlock(&q.lock);
                metrics_audit_written(n);
                retry = 0;
            } else {
                metrics_audit_write_failed();
                /* Keep the records and try again: the queue fills, requests wait. */
                retry = retry ? (retry * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry * 2) : 100;
                log_warn("audit: %zu records not written yet (%s); retrying in %lld ms", n, err.log,
                         (long long)retry);
                if (stopping) {
                    if (stop_since == 0)
                        stop_since = util_mono_ms();
                    if (util_mono_ms() - stop_since > STOP_GIVE_UP_MS) {
                        if (spool_durable(q.spool))
                            log_error("audit: store unavailable at shutdown; the records left "
                                      "stay in the spool for the next process");
                        else
                            log_error("audit: store unavailable at shutdown; records lost");
                        error_clear(&err);
                        break;
                    }
                }
                struct timespec ts = {retry / 1000, (retry % 1000) * 1000000};
                nanosleep(&ts, NULL);
            }
            error_clear(&err);
        }
        /* A bounded number of last-used writes per pass, so that a burst of first uses (or a
         * slow store) never holds the audit queue up; at stop, once the queue is empty, all. */
        if (touch_now && (!stopping || n == 0)) {
            bool more = touches_write(stopping, stopping ? TOUCH_SLOTS : TOUCH_BATCH);

            if (more) {
                pthread_mutex_lock(&q.lock);
                q.touches_due++;
                pthread_mutex_unlock(&q.lock);
            } else {
                next_touch = util_mono_ms() + 1000;
            }
        }
        if (q.spool_dir && !stopping && retry == 0)
            orphan = adopt_step(orphan, batch, &next_adopt, &orphan_sent);
        if (n == 0 && stopping)
            break;
    }
    spool_close(orphan); /* what is left of it stays in its file */
    return NULL;
}

int audit_start(struct store *st, const struct config *cfg)
{
    char err[256];

    q.touches = calloc(TOUCH_SLOTS, sizeof *q.touches);
    if (q.touches == NULL)
        return -1;
    q.store = st;
    q.retention_ms = cfg->audit_retention_days * 86400000LL;
    q.disabled = !cfg->audit;
    if (q.disabled)
        log_warn("LOOPED_AUDIT=0: no audit records and no last-used times are written");
    q.spool_dir = q.disabled ? NULL : cfg->state_dir;
    q.spool = spool_open(q.spool_dir, SPOOL_BYTES, err);
    if (q.spool == NULL)
        goto fail;
    if (err[0]) {
        q.spool_dir = NULL;
        log_error("audit: spool %s; records a crash catches in the queue are lost", err);
    } else if (q.spool_dir == NULL && !q.disabled) {
        log_warn("audit: no LOOPED_STATE_DIR; records a crash catches in the queue are lost");
    }
    q.stopping = false;
    q.started = true;
    q.depth = 0;
    queue_report();
    if (pthread_create(&q.thread, NULL, writer, NULL) != 0) {
        q.started = false;
        goto fail;
    }
    /* Without it the audit still works: only old records stay longer. */
    q.purging = q.retention_ms > 0 && pthread_create(&q.purger, NULL, purger, NULL) == 0;
    if (q.retention_ms > 0 && !q.purging)
        log_warn("audit: no purge thread: records older than the retention period stay");
    return 0;
fail:
    spool_close(q.spool);
    q.spool = NULL;
    free(q.touches);
    q.touches = NULL;
    return -1;
}

void audit_stop(void)
{
    pthread_mutex_lock(&q.lock);
    if (!q.started) {
        pthread_mutex_unlock(&q.lock);
        return;
    }
    q.stopping = true;
    pthread_cond_signal(&q.not_empty);
    pthread_cond_signal(&q.purge_wake);
    pthread_mutex_unlock(&q.lock);
    pthread_join(q.thread, NULL);
    if (q.purging)
        pthread_join(q.purger, NULL); /* a purge in flight ends within the socket timeout */
    q.purging = false;
    pthread_mutex_lock(&q.lock);
    q.started = false;
    pthread_cond_broadcast(&q.not_full);
    pthread_mutex_unlock(&q.lock);
    spool_close(q.spool); /* removes the file unless the store kept records from being sent */
    q.spool = NULL;
    free(q.touches);
    q.touches = NULL;
}
