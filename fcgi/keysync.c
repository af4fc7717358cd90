/* keysync.c: one thread per worker process reads the whole feed of key changes
 * (api_key_changes, a few records a minute in practice) every KEYSYNC_EVERY_MS, forgets the
 * keys named by records it has not seen before, and tells the key cache how recent its view
 * is. That lets positive cache entries live minutes while a revoke still reaches every
 * process within a fraction of a second (bench.md T5 and T7 at once). */
#include "keysync.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keycache.h"
#include "leaks.h"
#include "log.h"
#include "util.h"

#define KEEP_MS     600000 /* records older than this are pruned */
#define RESYNC_MS   60000  /* a longer gap between reads may have missed pruned records */
#define PRUNE_MS    60000  /* how often each process prunes */
#define RETRY_SLOTS 256    /* changes waiting to be published again */

struct change {
    char id[25]; /* the record's ObjectId, hex */
    char key[KEY_ID_LEN];
};

/* The records seen at the last read, sorted by id; the one being read. */
struct changes {
    struct change *v;
    size_t n, cap;
};

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool started, stopping;
    bool woken; /* keysync_wake since the last turn began */
    struct store *store;
    struct changes seen;
    int64_t last_read; /* start of the last successful read of the feed (monotonic ms) */
    char retry[RETRY_SLOTS][KEY_ID_LEN]; /* under lock */
    size_t nretry;
} ks = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static int change_cmp(const void *a, const void *b)
{
    return strcmp(((const struct change *)a)->id, ((const struct change *)b)->id);
}

static int collect(const char *change_id, const char *key_id, void *ctx)
{
    struct changes *c = ctx;

    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct change *v = realloc(c->v, cap * sizeof *v);

        if (v == NULL)
            return -1;
        c->v = v;
        c->cap = cap;
    }
    snprintf(c->v[c->n].id, sizeof c->v[c->n].id, "%s", change_id);
    snprintf(c->v[c->n].key, sizeof c->v[c->n].key, "%s", key_id);
    c->n++;
    return 0;
}

/* Reads the feed once; forgets the keys of records not seen before. */
static int poll_once(void)
{
    struct changes now = {0};
    struct app_error err = {0};
    const char **ids = NULL;
    size_t n = 0;
    int64_t started = util_mono_ms();
    int ret = -1;

    if (store_key_changes(ks.store, collect, &now, &err) != 0)
        goto done;
    if (now.n > 1)
        qsort(now.v, now.n, sizeof *now.v, change_cmp);
    ids = malloc((now.n ? now.n : 1) * sizeof *ids);
    if (ids == NULL)
        goto done;
    for (size_t i = 0; i < now.n; i++) {
        if (ks.seen.n == 0 || !bsearch(&now.v[i], ks.seen.v, ks.seen.n, sizeof *now.v, change_cmp))
            ids[n++] = now.v[i].key;
    }
    keycache_forget(ids, n);
    /* After a gap longer than RESYNC_MS records may have been pruned unseen. */
    keycache_synced(started, ks.last_read == 0 || started - ks.last_read > RESYNC_MS);
    ks.last_read = started;
    free(ks.seen.v);
    ks.seen = now;
    now.v = NULL;
    ret = 0;
done:
    if (ret != 0 && err.log[0] == '\0')
        snprintf(err.log, sizeof err.log, "out of memory");
    if (ret != 0)
        log_debug("keysync: feed not read: %s", err.log);
    free(ids);
    free(now.v);
    error_clear(&err);
    return ret;
}

/* Publishes the changes whose record could not be written before. */
static void retry_publish(void)
{
    struct app_error err = {0};
    char id[KEY_ID_LEN];

    for (;;) {
        pthread_mutex_lock(&ks.lock);
        if (ks.nretry == 0) {
            pthread_mutex_unlock(&ks.lock);
            return;
        }
        snprintf(id, sizeof id, "%s", ks.retry[ks.nretry - 1]);
        pthread_mutex_unlock(&ks.lock);
        if (store_key_changed(ks.store, id, &err) != 0) {
            error_clear(&err);
            return;
        }
        pthread_mutex_lock(&ks.lock);
        ks.nretry--;
        pthread_mutex_unlock(&ks.lock);
        log_info("keysync: change of %s published", id);
    }
}

static void *run(void *arg)
{
    int64_t next_prune = util_mono_ms() + PRUNE_MS;
    bool failing = false, digests = false;

    store_use_background();
    for (;;) {
        int64_t started = util_mono_ms();
        struct timespec until;

        retry_publish();
        leaks_work(ks.store);
        if (!digests)
            digests = store_key_digests_check(ks.store);
        if (poll_once() == 0) {
            if (failing)
                log_info("keysync: reading the key-change feed again");
            failing = false;
        } else if (!failing) {
            /* Until it works again, cached keys live KEYSYNC_GRACE_MS. */
            log_warn("keysync: cannot read the key-change feed; retrying");
            failing = true;
        }
        if (!failing && started >= next_prune) {
            struct app_error err = {0};

            if (store_key_changes_prune(ks.store, util_now_ms() - KEEP_MS, &err) != 0)
                log_debug("keysync: prune: %s", err.log);
            error_clear(&err);
            next_prune = started + PRUNE_MS;
        }
        util_deadline(&until, started + KEYSYNC_EVERY_MS - util_mono_ms());
        pthread_mutex_lock(&ks.lock);
        if (!ks.stopping && !ks.woken) /* a spurious wake-up only reads the feed early */
            pthread_cond_timedwait(&ks.wake, &ks.lock, &until);
        ks.woken = false;
        if (ks.stopping) {
            pthread_mutex_unlock(&ks.lock);
            break;
        }
        pthread_mutex_unlock(&ks.lock);
    }
    return NULL;
}

int keysync_start(struct store *st)
{
    ks.store = st;
    ks.stopping = false;
    if (pthread_create(&ks.thread, NULL, run, NULL) != 0)
        return -1;
    ks.started = true;
    return 0;
}

void keysync_wake(void)
{
    pthread_mutex_lock(&ks.lock);
    ks.woken = true;
    pthread_cond_signal(&ks.wake);
    pthread_mutex_unlock(&ks.lock);
}

void keysync_stop(void)
{
    if (!ks.started)
        return;
    pthread_mutex_lock(&ks.lock);
    ks.stopping = true;
    pthread_cond_signal(&ks.wake);
    pthread_mutex_unlock(&ks.lock);
    pthread_join(ks.thread, NULL);
    ks.started = false;
    free(ks.seen.v);
    ks.seen = (struct changes){0};
}

void keysync_changed(struct store *st, const char *id)
{
    struct app_error err = {0};

    keycache_forget(&id, 1);
    if (store_key_changed(st, id, &err) == 0)
        return;
    log_warn("keysync: change of %s not published yet: %s", id, err.log);
    error_clear(&err);
    pthread_mutex_lock(&ks.lock);
    if (ks.nretry == RETRY_SLOTS) {
        /* Every slot holds an unpublished change: the store has refused writes for a while,
         * so other processes cannot read the feed either and keep keys only the grace time. */
        memmove(ks.retry[0], ks.retry[1], (RETRY_SLOTS - 1) * sizeof ks.retry[0]);
        ks.nretry--;
    }
    snprintf(ks.retry[ks.nretry++], KEY_ID_LEN, "%s", id);
    pthread_mutex_unlock(&ks.lock);
}
