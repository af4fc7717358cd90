/* ratesync.c: one process per host (the holder of the table's lease) reports the host's
 * counts when they changed (one document per host) and reads the other hosts' sums; the
 * request path never waits for it. */
#include "ratesync.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define PURGE_MS 60000 /* how often the reporter deletes counts whose windows passed */

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool started, stopping;
    struct store *store;
    const char *host;
    struct ratelimit_count *buf; /* RATELIMIT_SLOTS entries */
} rs = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* One round: report, then read. Returns 0, or -1 with err set. */
static int sync_once(int64_t *next_purge, struct app_error *err)
{
    int64_t now = util_now_ms();
    bool changed;
    size_t n = ratelimit_counts(rs.buf, RATELIMIT_SLOTS, now, &changed);

    /* Nothing moved: the document written last still tells the others (until its windows
     * pass, when there is nothing left to tell). */
    if (changed && store_rate_report(rs.store, rs.host, rs.buf, n, now, err) != 0)
        return -1;
    if (store_rate_remote(rs.store, rs.host, now, rs.buf, RATELIMIT_SLOTS, &n, err) != 0)
        return -1;
    ratelimit_remote_set(rs.buf, n, now);
    if (util_mono_ms() >= *next_purge) {
        *next_purge = util_mono_ms() + PURGE_MS;
        return store_rate_purge(rs.store, now, err);
    }
    return 0;
}

static void *run(void *arg)
{
    int64_t next_purge = 0;
    bool failing = false;
    int32_t pid = (int32_t)getpid();

    (void)arg;
    store_use_background();
    pthread_mutex_lock(&rs.lock);
    while (!rs.stopping) {
        struct timespec until;
        struct app_error err = {0};

        pthread_mutex_unlock(&rs.lock);
        if (ratelimit_lease(pid, util_now_ms(), RATESYNC_STALE_MS)) {
            if (sync_once(&next_purge, &err) == 0) {
                if (failing)
                    log_info("ratesync: sharing rate-limit counts again");
                failing = false;
            } else if (!failing) {
                /* Meanwhile each host counts its own requests and the others' last sums. */
                log_warn("ratesync: cannot share rate-limit counts: %s", err.log);
                failing = true;
            }
        }
        error_clear(&err);
        util_deadline(&until, RATESYNC_EVERY_MS);
        pthread_mutex_lock(&rs.lock);
        if (!rs.stopping)
            pthread_cond_timedwait(&rs.wake, &rs.lock, &until);
    }
    pthread_mutex_unlock(&rs.lock);
    return NULL;
}

int ratesync_start(struct store *st, const char *host)
{
    if (!ratelimit_attached())
        return -1;
    rs.buf = malloc(RATELIMIT_SLOTS * sizeof *rs.buf);
    if (rs.buf == NULL)
        return -1;
    rs.store = st;
    rs.host = host;
    rs.stopping = false;
    if (pthread_create(&rs.thread, NULL, run, NULL) != 0) {
        free(rs.buf);
        rs.buf = NULL;
        return -1;
    }
    rs.started = true;
    return 0;
}

void ratesync_stop(void)
{
    if (!rs.started)
        return;
    pthread_mutex_lock(&rs.lock);
    rs.stopping = true;
    pthread_cond_signal(&rs.wake);
    pthread_mutex_unlock(&rs.lock);
    pthread_join(rs.thread, NULL);
    rs.started = false;
    free(rs.buf);
    rs.buf = NULL;
}
