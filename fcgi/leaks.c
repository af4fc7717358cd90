/* leaks.c: leaked-key reports (leaks.h): stored by the request, worked by this process's
 * key-change thread (keysync.c) right after, swept by every process now and then. */
#include "leaks.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "audit.h"
#include "keysync.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define QUEUED_MAX 64 /* reports submitted and not worked yet; more wait for the sweep */

static struct {
    pthread_mutex_t lock;
    char queued[QUEUED_MAX][KEY_ID_LEN];
    size_t nqueued;
    bool overflow; /* a report did not fit: sweep at the next turn */
    int64_t next_sweep;
} lk = {.lock = PTHREAD_MUTEX_INITIALIZER};

int leaks_submit(struct store *st, struct leak_report *r, struct app_error *err)
{
    auth_id_generate("leak_", r->id, sizeof r->id);
    if (store_leak_insert(st, r, err) != 0)
        return -1;
    pthread_mutex_lock(&lk.lock);
    if (lk.nqueued < QUEUED_MAX)
        snprintf(lk.queued[lk.nqueued++], KEY_ID_LEN, "%s", r->id);
    else
        lk.overflow = true;
    pthread_mutex_unlock(&lk.lock);
    return 0;
}

/* The revoke's audit record: the key's team, the reporter's request, the reason and source. */
static void audit_revoked(const struct leak_report *r, const struct api_key *k)
{
    struct audit_rec rec = {0};

    rec.at = util_now_ms();
    snprintf(rec.team_id, sizeof rec.team_id, "%s", k->team_id);
    snprintf(rec.actor_type, sizeof rec.actor_type, "system");
    snprintf(rec.actor_id, sizeof rec.actor_id, "%s", LEAKS_REVOKED_BY);
    snprintf(rec.key_id, sizeof rec.key_id, "%s", k->id);
    snprintf(rec.key_name, sizeof rec.key_name, "%s", k->name);
    snprintf(rec.action, sizeof rec.action, "api_key.revoked");
    snprintf(rec.method, sizeof rec.method, "POST");
    snprintf(rec.path, sizeof rec.path, "/v1/key-leaks");
    rec.status = 202;
    snprintf(rec.ip, sizeof rec.ip, "%s", r->ip);
    snprintf(rec.user_agent, sizeof rec.user_agent, "%s", r->user_agent);
    snprintf(rec.request_id, sizeof rec.request_id, "%s", r->request_id);
    snprintf(rec.reason, sizeof rec.reason, "leaked");
    rec.source = r->source[0] ? r->source : NULL;
    audit_submit(&rec);
}

struct work {
    struct store *st;
    bool failed; /* a report's work failed: it stays in the store */
};

static void work_one(const struct leak_report *r, void *ctx)
{
    struct work *w = ctx;
    struct store *st = w->st;
    struct app_error err = {0};
    bool ok = true;

    for (size_t i = 0; i < r->ndigests; i++) {
        struct api_key k;
        int rc = store_key_by_hash(st, r->digests[i], &k, &err);

        if (rc == 0 && !k.revoked_at)
            rc = store_key_revoke(st, k.team_id, k.id, LEAKS_REVOKED_BY, util_now_ms(), &err);
        else if (rc == 0)
            rc = 1; /* revoked before: nothing to do */
        if (rc < 0) {
            ok = false;
            log_warn("leaks: report %s: %s", r->id, err.log);
            error_clear(&err);
            continue;
        }
        if (rc == 0) {
            keysync_changed(st, k.id);
            audit_revoked(r, &k);
            log_info("leaks: key %s of team %s revoked: reported leaked (%s)", k.id, k.team_id,
                     r->request_id);
        }
    }
    /* Not removed: the next sweep works it again, which revokes and audits nothing twice. */
    if (ok && store_leak_done(st, r->id, &err) != 0)
        log_debug("leaks: report %s worked, not removed yet: %s", r->id, err.log);
    w->failed |= !ok;
    error_clear(&err);
}

/* Puts back the reports of this process whose work failed, for the next turn (a store that
 * has just come back may answer the request threads before this thread's client). */
static void requeue(char ids[][KEY_ID_LEN], size_t n)
{
    pthread_mutex_lock(&lk.lock);
    for (size_t i = 0; i < n; i++) {
        if (lk.nqueued < QUEUED_MAX)
            snprintf(lk.queued[lk.nqueued++], KEY_ID_LEN, "%s", ids[i]);
        else
            lk.overflow = true;
    }
    pthread_mutex_unlock(&lk.lock);
}

void leaks_work(struct store *st)
{
    char ids[QUEUED_MAX][KEY_ID_LEN];
    struct work w = {st, false};
    struct app_error err = {0};
    int64_t now = util_mono_ms();
    size_t n, nfailed = 0;
    bool overflow, sweep;

    pthread_mutex_lock(&lk.lock);
    n = lk.nqueued;
    memcpy(ids, lk.queued, n * sizeof ids[0]);
    lk.nqueued = 0;
    overflow = lk.overflow;
    sweep = overflow || now >= lk.next_sweep;
    lk.overflow = false;
    pthread_mutex_unlock(&lk.lock);

    for (size_t i = 0; i < n; i++) {
        w.failed = false;
        if (store_leak_pending(st, ids[i], 0, work_one, &w, &err) != 0 || w.failed) {
            log_debug("leaks: report %s: retrying: %s", ids[i], err.log[0] ? err.log : "-");
            memmove(ids[nfailed++], ids[i], KEY_ID_LEN);
        }
        error_clear(&err);
    }
    requeue(ids, nfailed);
    if (!sweep)
        return;
    lk.next_sweep = now + LEAKS_SWEEP_MS; /* this thread's alone */
    /* Reports older than a sweep (a live process has long worked its own by then), or after
     * an overflow every report, the ones of this process that did not fit included. */
    if (store_leak_pending(st, NULL, util_now_ms() - (overflow ? 0 : LEAKS_SWEEP_MS), work_one, &w,
                           &err) != 0)
        log_debug("leaks: sweep: %s", err.log);
    error_clear(&err);
}
