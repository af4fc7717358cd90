/* ratelimit.c: the host's shared table of per-key request counts (a sliding window of two
 * fixed windows), updated lock-free by every process that maps it. */
#include "ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RL_MAGIC    0x4c4f4f50524c3032ull /* "LOOPRL02": the layout below, version 2 */
#define RL_PROBE    16                    /* slots looked at for a key before one is evicted */
#define RL_RESERVED 1u                    /* a tag being written */

/* One 64-bit word per count pair so a request is one compare-and-swap: the low 24 bits of the
 * window's index, the current window's count (20 bits) and the previous one's (20 bits). */
#define W_BITS 24
#define C_BITS 20
#define W_MASK ((1ull << W_BITS) - 1)
#define C_MASK ((1ull << C_BITS) - 1)
#define PACK(w, cur, prev)                                                                         \
    ((((uint64_t)(w)&W_MASK) << (2 * C_BITS)) | (((uint64_t)(cur)&C_MASK) << C_BITS) |             \
     ((uint64_t)(prev)&C_MASK))
#define P_WIN(s)  ((s) >> (2 * C_BITS))
#define P_CUR(s)  (((s) >> C_BITS) & C_MASK)
#define P_PREV(s) ((s)&C_MASK)

struct rl_slot {
    _Atomic uint64_t tag;      /* 0 free, RL_RESERVED being filled, else hash(key_id) | 2 */
    _Atomic uint64_t state;    /* this host's counts */
    _Atomic uint64_t remote;   /* the other hosts' sums, as last read from the store */
    _Atomic uint64_t reported; /* state as last reported to the store */
    _Atomic int64_t per_ms;    /* the window the counts are in */
    _Atomic int64_t touched_ms;
    char key_id[32];
    char pad[128 - 6 * 8 - 32];
};

struct rl_table {
    uint64_t magic;
    uint32_t nslots, slot_size;
    _Atomic int32_t reporter;      /* pid holding the reporter lease, 0 none */
    _Atomic int64_t reporter_beat; /* its last heartbeat (wall ms) */
    _Atomic int64_t store_seen;    /* wall ms of the last probe's answer, negative if down */
    char pad[128 - 8 - 8 - 4 - 8 - 8 - 4];
    struct rl_slot slots[RATELIMIT_SLOTS];
};

_Static_assert(sizeof(struct rl_slot) == 128, "one slot, two cache lines");

static struct rl_table *table;

static void table_init(struct rl_table *t)
{
    t->nslots = RATELIMIT_SLOTS;
    t->slot_size = sizeof(struct rl_slot);
    atomic_store(&t->reporter, 0);
    t->magic = RL_MAGIC;
}

int ratelimit_attach_anon(void)
{
    void *p = mmap(NULL, sizeof *table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -1;
    table = p;
    table_init(table);
    return 0;
}

int ratelimit_attach_file(const char *path, char *err)
{
    struct stat st;
    void *p = MAP_FAILED;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        snprintf(err, 256, "%.200s: %s", path, strerror(errno));
        return -1;
    }
    /* One process sizes and stamps a new file; the others wait on the lock and find it done. */
    if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0)
        goto fail;
    if ((size_t)st.st_size != sizeof *table && ftruncate(fd, 0) == 0 &&
        ftruncate(fd, (off_t)sizeof *table) != 0)
        goto fail;
    p = mmap(NULL, sizeof *table, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto fail;
    if (((struct rl_table *)p)->magic != RL_MAGIC ||
        ((struct rl_table *)p)->slot_size != sizeof(struct rl_slot)) {
        memset(p, 0, sizeof *table);
        table_init(p);
    }
    flock(fd, LOCK_UN);
    close(fd);
    table = p;
    return 0;
fail:
    snprintf(err, 256, "%.200s: %s", path, strerror(errno));
    close(fd);
    return -1;
}

bool ratelimit_attached(void)
{
    return table != NULL;
}

/* FNV-1a over 8 bytes at a time (key ids are 24 random-looking characters). */
static uint64_t key_tag(const char *key_id)
{
    uint64_t h = 1469598103934665603ull, word;
    size_t n = strnlen(key_id, 31), i = 0;

    for (; i + 8 <= n; i += 8) {
        memcpy(&word, key_id + i, 8);
        h = (h ^ word) * 1099511628211ull;
    }
    for (; i < n; i++)
        h = (h ^ (unsigned char)key_id[i]) * 1099511628211ull;
    h ^= h >> 29; /* the probe start uses high bits: mix the last word into them */
    return h | 2; /* never 0 or RL_RESERVED */
}

/* The counts of word s as of window w: the current and previous windows' counts. */
static void align(uint64_t s, int64_t w, uint32_t *cur, uint32_t *prev)
{
    uint64_t sw = P_WIN(s), ww = (uint64_t)w & W_MASK;

    if (s == 0) {
        *cur = *prev = 0;
    } else if (sw == ww) {
        *cur = (uint32_t)P_CUR(s);
        *prev = (uint32_t)P_PREV(s);
    } else if (sw == ((ww - 1) & W_MASK)) {
        *prev = (uint32_t)P_CUR(s);
        *cur = 0;
    } else {
        *cur = *prev = 0;
    }
}

/* One look along key_id's probe run: its slot (*found), or the slot to claim for it (the first
 * free one, else the least recently touched). *busy: a slot being claimed was passed, which
 * may be key_id's own about to appear. */
static struct rl_slot *slot_scan(const char *key_id, uint64_t tag, bool *found, bool *busy,
                                 int64_t *oldest)
{
    size_t start = (size_t)(tag >> 8) % RATELIMIT_SLOTS;
    struct rl_slot *victim = NULL;

    *found = *busy = false;
    *oldest = INT64_MAX;
    for (size_t i = 0; i < RL_PROBE; i++) {
        struct rl_slot *s = &table->slots[(start + i) % RATELIMIT_SLOTS];
        uint64_t t = atomic_load_explicit(&s->tag, memory_order_acquire);
        int64_t touched;

        if (t == tag && strncmp(s->key_id, key_id, sizeof s->key_id) == 0) {
            *found = true;
            return s;
        }
        if (t == RL_RESERVED) {
            *busy = true;
            continue;
        }
        touched = t == 0 ? INT64_MIN : atomic_load_explicit(&s->touched_ms, memory_order_relaxed);
        if (touched < *oldest) {
            *oldest = touched;
            victim = s;
        }
    }
    return victim;
}

/* The slot of key_id, claimed if it has none (evicting the least recently touched slot of its
 * probe run when all are taken); NULL if none could be had this time. Two processes claiming
 * for one key pick the same slot (the first free one), so one wins and the other, looking
 * again, finds it: a key never gets two slots, and a lost race is never a request uncounted. */
static struct rl_slot *slot_of(const char *key_id, int64_t per_ms, int64_t now_ms, bool create)
{
    uint64_t tag = key_tag(key_id);

    /* A claim is published within nanoseconds; a claimer that died in between leaves its slot
     * reserved, so the waiting is bounded. */
    for (int attempt = 0; attempt < 1000; attempt++) {
        bool found, busy;
        int64_t oldest;
        struct rl_slot *victim = slot_scan(key_id, tag, &found, &busy, &oldest);
        uint64_t t;

        if (found)
            return victim;
        if (busy && attempt < 999) {
            sched_yield();
            continue;
        }
        if (!create || victim == NULL)
            return NULL;
        t = atomic_load(&victim->tag);
        /* A live slot is taken over only once its counts no longer matter. */
        if (t != 0 && oldest + 2 * atomic_load(&victim->per_ms) > now_ms)
            return NULL;
        if (t == RL_RESERVED || !atomic_compare_exchange_strong(&victim->tag, &t, RL_RESERVED))
            continue; /* another claim won: look again */
        atomic_store(&victim->state, 0);
        atomic_store(&victim->remote, 0);
        atomic_store(&victim->reported, 0);
        atomic_store(&victim->per_ms, per_ms);
        atomic_store(&victim->touched_ms, now_ms);
        snprintf(victim->key_id, sizeof victim->key_id, "%s", key_id);
        atomic_store_explicit(&victim->tag, tag, memory_order_release);
        return victim;
    }
    return NULL;
}

/* Seconds (at least 1) from now until est, made of prev weighted by the rest of the window and
 * cur, falls to limit - 1 so that one more request passes. e: ms into the window. */
static uint32_t retry_after(double prev, double cur, double limit, int64_t e, int64_t per_ms)
{
    double room = limit - 1 - cur, t;

    if (prev > 0 && room >= 0) {
        /* Within this window: prev * (per - e - t) / per <= room. */
        t = (double)per_ms * (1 - room / prev) - (double)e;
        if (t < (double)(per_ms - e))
            return t <= 1000 ? 1 : (uint32_t)((t + 999) / 1000);
    }
    /* In the next window: what is counted now becomes its prev; cur * (per - e') / per <=
     * limit - 1, e' ms into it. */
    prev += cur;
    t = (double)(per_ms - e) + (prev > limit - 1 ? (double)per_ms * (1 - (limit - 1) / prev) : 0);
    return t <= 1000 ? 1 : (uint32_t)((t + 999) / 1000);
}

void ratelimit_take(const char *key_id, uint32_t requests, uint32_t per_seconds, int64_t now_ms,
                    struct ratelimit_verdict *v)
{
    int64_t per_ms = (int64_t)per_seconds * 1000, w = now_ms / per_ms, e = now_ms % per_ms;
    struct rl_slot *s = table ? slot_of(key_id, per_ms, now_ms, true) : NULL;
    uint64_t old, new;
    uint32_t cur, prev, rcur, rprev;
    int64_t room; /* per_ms * (requests - estimate): integers, no division on the way */

    v->allowed = true;
    v->limit = requests;
    v->remaining = requests;
    v->reset_s = (uint32_t)((per_ms - e + 999) / 1000);
    v->retry_after_s = 0;
    if (s == NULL)
        return;
    if (atomic_load_explicit(&s->per_ms, memory_order_relaxed) != per_ms) {
        /* The key's limit changed its window: count afresh in the new one. */
        atomic_store(&s->per_ms, per_ms);
        atomic_store(&s->state, 0);
        atomic_store(&s->remote, 0);
    }
    align(atomic_load_explicit(&s->remote, memory_order_relaxed), w, &rcur, &rprev);
    old = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        align(old, w, &cur, &prev);
        /* estimate = (prev + rprev) * (per - e) / per + cur + rcur; one more must fit. */
        room = (int64_t)requests * per_ms - (int64_t)(prev + rprev) * (per_ms - e) -
               (int64_t)(cur + rcur + 1) * per_ms;
        if (room < 0) {
            v->allowed = false;
            v->remaining = 0;
            v->retry_after_s = retry_after(prev + rprev, cur + rcur, requests, e, per_ms);
            break;
        }
        new = PACK(w, cur + 1 > C_MASK ? C_MASK : cur + 1, prev);
        if (atomic_compare_exchange_weak_explicit(&s->state, &old, new, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            v->remaining = (uint32_t)(room / per_ms);
            break;
        }
    }
    atomic_store_explicit(&s->touched_ms, now_ms, memory_order_relaxed);
}

size_t ratelimit_counts(struct ratelimit_count *out, size_t max, int64_t now_ms, bool *changed)
{
    size_t n = 0;

    *changed = false;
    if (table == NULL)
        return 0;
    for (size_t i = 0; i < RATELIMIT_SLOTS && n < max; i++) {
        struct rl_slot *s = &table->slots[i];
        uint64_t t = atomic_load_explicit(&s->tag, memory_order_acquire), st;
        int64_t per_ms, w;

        if (t == 0 || t == RL_RESERVED)
            continue;
        st = atomic_load(&s->state);
        if (atomic_exchange(&s->reported, st) != st)
            *changed = true;
        per_ms = atomic_load(&s->per_ms);
        if (st == 0 || per_ms <= 0)
            continue;
        w = now_ms / per_ms;
        align(st, w, &out[n].cur, &out[n].prev);
        if (out[n].cur == 0 && out[n].prev == 0)
            continue; /* both windows have passed: nothing left to count */
        snprintf(out[n].key_id, sizeof out[n].key_id, "%s", s->key_id);
        out[n].per_ms = per_ms;
        out[n].window = w;
        n++;
    }
    return n;
}

void ratelimit_remote_set(const struct ratelimit_count *in, size_t n, int64_t now_ms)
{
    static uint8_t seen[RATELIMIT_SLOTS / 8]; /* only the lease holder's thread calls this */

    if (table == NULL)
        return;
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < n; i++) {
        struct rl_slot *s = slot_of(in[i].key_id, in[i].per_ms, now_ms, true);
        size_t at;

        if (s == NULL || atomic_load(&s->per_ms) != in[i].per_ms)
            continue;
        atomic_store(&s->remote, PACK(in[i].window, in[i].cur > C_MASK ? C_MASK : in[i].cur,
                                      in[i].prev > C_MASK ? C_MASK : in[i].prev));
        at = (size_t)(s - table->slots);
        seen[at / 8] |= (uint8_t)(1u << (at % 8));
    }
    /* Keys the others no longer report (their windows passed) count nothing remote. */
    for (size_t i = 0; i < RATELIMIT_SLOTS; i++) {
        if (!(seen[i / 8] & (1u << (i % 8))) && atomic_load(&table->slots[i].remote) != 0)
            atomic_store(&table->slots[i].remote, 0);
    }
}

void ratelimit_store_seen(bool up, int64_t now_ms)
{
    if (table)
        atomic_store_explicit(&table->store_seen, up ? now_ms : -now_ms, memory_order_relaxed);
}

int ratelimit_store_state(int64_t now_ms, int64_t max_age_ms)
{
    int64_t seen = table ? atomic_load_explicit(&table->store_seen, memory_order_relaxed) : 0;
    int64_t at = seen < 0 ? -seen : seen;

    if (seen == 0 || now_ms - at > max_age_ms)
        return -1;
    return seen > 0;
}

int64_t ratelimit_store_up_at(void)
{
    int64_t seen = table ? atomic_load_explicit(&table->store_seen, memory_order_relaxed) : 0;

    return seen > 0 ? seen : 0;
}

bool ratelimit_lease(int32_t pid, int64_t now_ms, int64_t stale_ms)
{
    int32_t holder;

    if (table == NULL)
        return false;
    holder = atomic_load(&table->reporter);
    if (holder != pid) {
        bool gone = holder == 0 || (kill(holder, 0) != 0 && errno == ESRCH);

        if (!gone && now_ms - atomic_load(&table->reporter_beat) < stale_ms)
            return false;
        if (!atomic_compare_exchange_strong(&table->reporter, &holder, pid))
            return false;
    }
    atomic_store(&table->reporter_beat, now_ms);
    return true;
}
