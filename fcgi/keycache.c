/* keycache.c: a 16-way set-associative table of recently seen keys by digest, and a smaller
 * 8-way one of digests the store did not know, under one mutex per process. Wide sets keep
 * conflict misses rare at high load (10,000 keys in 16,384 entries: with 4 ways, 3% of the
 * sets overflowed and their keys kept evicting each other), and fill each set's ways in order,
 * so resident memory grows with the keys cached, not with the table; a per-set array of tags
 * keeps a lookup to one cache line plus the entry it finds.
 *
 * Unknown digests have a table of their own so that they never compete with keys for a way:
 * when they shared one, two unknown digests in a set full of keys evicted each other on every
 * request, and each request went to the store (benchmark T8); and a flood of unknown keys
 * could push out the keys of the integrations that are using the API.
 *
 * How long a positive entry may be trusted is what bounds the delay of a revoke in other
 * processes. While keysync.c keeps applying the store's feed of key changes (at least once
 * per grace period), an entry lives up to ttl: a change reaches it through keycache_forget
 * well within grace. When the feed cannot be read, every entry older than grace is stale,
 * exactly as if the cache had a grace-long TTL. */
#include "keycache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define KEYCACHE_SETS 1024 /* power of two */
#define KEYCACHE_WAYS 16   /* 16,384 entries of ~1 KB, touched as they fill */
#define UNKNOWN_SETS  512  /* power of two */
#define UNKNOWN_WAYS  8    /* 4,096 entries of 40 bytes */

struct slot {
    struct key_auth key;
    int64_t stored; /* monotonic ms when the lookup that read it started; 0: empty */
};

struct unknown {
    unsigned char digest[AUTH_DIGEST_LEN];
    int64_t stored; /* as in struct slot */
};

#define INFLIGHT_MAX 64 /* digests being looked up at once; more just look up unshared */

struct inflight {
    unsigned char digest[AUTH_DIGEST_LEN];
    bool used;
};

static struct slot slots[KEYCACHE_SETS * KEYCACHE_WAYS];
/* Digest bytes 4-7 of each entry with the low bit set; 0 for a way never used or forgotten,
 * so that keycache_forget reads this array, not the table's untouched pages. */
static uint32_t tags[KEYCACHE_SETS * KEYCACHE_WAYS];
static struct unknown unknowns[UNKNOWN_SETS * UNKNOWN_WAYS];
static struct inflight inflight[INFLIGHT_MAX];
static size_t inflight_n; /* entries in use are below this index: lookups take the lowest free */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t landed = PTHREAD_COND_INITIALIZER; /* a lookup ended */
static int64_t ttl_pos, ttl_neg, ttl_grace;
static int64_t forgot_at;  /* last keycache_forget */
static int64_t sync_last;  /* start of the last poll of the change feed; 0: none yet */
static int64_t sync_since; /* since when no change can have been missed */

void keycache_init(int64_t ttl, int64_t neg_ttl, int64_t grace)
{
    ttl_pos = ttl;
    ttl_neg = neg_ttl;
    ttl_grace = grace < ttl ? grace : ttl;
}

/* The digest is an HMAC output: its first bytes are already uniformly distributed. Bytes 0-3
 * choose the set, bytes 4-7 are the tag. */
static size_t set_of(const unsigned char *digest)
{
    uint32_t h;

    memcpy(&h, digest, sizeof h);
    return (h & (KEYCACHE_SETS - 1)) * KEYCACHE_WAYS;
}

static struct unknown *unknown_set_of(const unsigned char *digest)
{
    uint32_t h;

    memcpy(&h, digest, sizeof h);
    return &unknowns[(h & (UNKNOWN_SETS - 1)) * UNKNOWN_WAYS];
}

static uint32_t tag_of(const unsigned char *digest)
{
    uint32_t t;

    memcpy(&t, digest + 4, sizeof t);
    return t | 1;
}

/* Whether the key may still be used at now (called with the lock held). */
static bool fresh(const struct slot *s, int64_t now)
{
    int64_t age = now - s->stored;

    if (s->stored == 0)
        return false;
    if (age < ttl_grace)
        return true;
    return age < ttl_pos && s->stored >= sync_since && now - sync_last < ttl_grace;
}

static bool unknown_fresh(const struct unknown *u, int64_t now)
{
    return u->stored != 0 && now - u->stored < ttl_neg;
}

/* The way that holds digest, or NULL (called with the lock held). */
static struct slot *find(const unsigned char *digest)
{
    size_t set = set_of(digest);
    uint32_t tag = tag_of(digest);

    for (size_t i = set; i < set + KEYCACHE_WAYS; i++) {
        if (tags[i] == tag && slots[i].stored &&
            memcmp(slots[i].key.digest, digest, AUTH_DIGEST_LEN) == 0)
            return &slots[i];
    }
    return NULL;
}

static struct unknown *unknown_find(const unsigned char *digest)
{
    struct unknown *set = unknown_set_of(digest);

    for (struct unknown *u = set; u < set + UNKNOWN_WAYS; u++) {
        if (u->stored && memcmp(u->digest, digest, AUTH_DIGEST_LEN) == 0)
            return u;
    }
    return NULL;
}

/* Looks digest up (called with the lock held). A digest is in at most one of the tables. */
static enum keycache_result lookup(const unsigned char *digest, struct key_auth *out)
{
    int64_t now = util_mono_ms();
    struct slot *s = find(digest);
    struct unknown *u;

    if (s) {
        /* A stale entry stays: while the feed is late, it may become good again. */
        if (!fresh(s, now))
            return KEYCACHE_MISS;
        /* Only the allowed_ips in use: most keys have none, and the array is 1.8 KB. */
        memcpy(out, &s->key, offsetof(struct key_auth, key) + KEYS_SIZE(&s->key.key));
        return KEYCACHE_HIT;
    }
    u = unknown_find(digest);
    return u && unknown_fresh(u, now) ? KEYCACHE_UNKNOWN : KEYCACHE_MISS;
}

static struct inflight *inflight_of(const unsigned char *digest)
{
    for (struct inflight *f = inflight; f < inflight + inflight_n; f++) {
        if (f->used && memcmp(f->digest, digest, AUTH_DIGEST_LEN) == 0)
            return f;
    }
    return NULL;
}

enum keycache_result keycache_get(const unsigned char digest[AUTH_DIGEST_LEN], struct key_auth *out)
{
    enum keycache_result r;
    struct timespec until;
    bool waited = false;

    if (ttl_pos <= 0)
        return KEYCACHE_MISS;
    pthread_mutex_lock(&lock);
    while ((r = lookup(digest, out)) == KEYCACHE_MISS) {
        struct inflight *f = inflight_of(digest);

        if (f == NULL) {
            /* This thread looks it up; a full table only means no sharing. */
            for (f = inflight; f < inflight + INFLIGHT_MAX && f->used; f++)
                ;
            if (f < inflight + INFLIGHT_MAX) {
                memcpy(f->digest, digest, AUTH_DIGEST_LEN);
                f->used = true;
                if ((size_t)(f - inflight) >= inflight_n)
                    inflight_n = (size_t)(f - inflight) + 1;
            }
            break;
        }
        if (!waited) {
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += KEYCACHE_WAIT_MS / 1000;
            waited = true;
        }
        if (pthread_cond_timedwait(&landed, &lock, &until) != 0)
            break; /* the other lookup is slow: look it up too */
    }
    pthread_mutex_unlock(&lock);
    return r;
}

/* Ends the lookup of digest, if it was shared (called with the lock held). */
static void landed_one(const unsigned char *digest)
{
    struct inflight *f = inflight_of(digest);

    if (f) {
        f->used = false;
        while (inflight_n > 0 && !inflight[inflight_n - 1].used)
            inflight_n--;
        pthread_cond_broadcast(&landed);
    }
}

void keycache_done(const unsigned char digest[AUTH_DIGEST_LEN])
{
    pthread_mutex_lock(&lock);
    landed_one(digest);
    pthread_mutex_unlock(&lock);
}

/* Stores a key (called with the lock held): in the way that had its digest, else the first
 * free way, else a stale one, else the oldest. Of two reads of a digest, the later one wins. */
static void put_key(const struct key_auth *k, int64_t read_started, int64_t now)
{
    struct slot *set = &slots[set_of(k->digest)], *s = find(k->digest);
    struct unknown *u = unknown_find(k->digest);

    if ((s && s->stored > read_started) || (u && u->stored > read_started))
        return;
    if (u)
        u->stored = 0;
    for (int w = 0; w < KEYCACHE_WAYS && s == NULL; w++) {
        if (set[w].stored == 0)
            s = &set[w];
    }
    for (int w = 0; w < KEYCACHE_WAYS && s == NULL; w++) {
        if (!fresh(&set[w], now))
            s = &set[w];
    }
    if (s == NULL) {
        s = set;
        for (struct slot *c = set + 1; c < set + KEYCACHE_WAYS; c++) {
            if (c->stored < s->stored)
                s = c;
        }
    }
    memcpy(&s->key, k, offsetof(struct key_auth, key) + KEYS_SIZE(&k->key));
    s->stored = read_started;
    tags[s - slots] = tag_of(k->digest);
}

/* Stores an unknown digest (called with the lock held): in the way that had it, else the
 * first free or expired way, else the oldest; as in put_key, the later read wins. */
static void put_unknown(const unsigned char *digest, int64_t read_started, int64_t now)
{
    struct unknown *set = unknown_set_of(digest), *u = unknown_find(digest);
    struct slot *s = find(digest);

    if ((s && s->stored > read_started) || (u && u->stored > read_started))
        return;
    if (s) {
        s->stored = 0;
        tags[s - slots] = 0;
    }
    for (int w = 0; w < UNKNOWN_WAYS && u == NULL; w++) {
        if (!unknown_fresh(&set[w], now))
            u = &set[w];
    }
    if (u == NULL) {
        u = set;
        for (struct unknown *c = set + 1; c < set + UNKNOWN_WAYS; c++) {
            if (c->stored < u->stored)
                u = c;
        }
    }
    memcpy(u->digest, digest, AUTH_DIGEST_LEN);
    u->stored = read_started;
}

void keycache_put(const struct key_auth *k, int64_t read_started)
{
    int64_t now;

    if (ttl_pos <= 0)
        return;
    now = util_mono_ms();
    pthread_mutex_lock(&lock);
    landed_one(k->digest);
    if (read_started > forgot_at) {
        if (k->key.id[0] == '\0')
            put_unknown(k->digest, read_started, now);
        else
            put_key(k, read_started, now);
    }
    pthread_mutex_unlock(&lock);
}

static int id_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void keycache_forget(const char *const *ids, size_t n)
{
    const char *one[1], **sorted;

    if (n == 0)
        return;
    sorted = n == 1 ? one : malloc(n * sizeof *sorted);
    /* Out of memory: forgetting every positive entry is always correct. */
    if (sorted)
        memcpy(sorted, ids, n * sizeof *sorted);
    if (sorted && n > 1)
        qsort(sorted, n, sizeof *sorted, id_cmp);
    /* One scan of the tags, and of the entries in use: changes are rare. */
    pthread_mutex_lock(&lock);
    forgot_at = util_mono_ms();
    for (size_t i = 0; i < KEYCACHE_SETS * KEYCACHE_WAYS; i++) {
        struct slot *s = &slots[i];
        const char *id = s->key.key.id;

        if (tags[i] != 0 && s->stored &&
            (sorted == NULL || bsearch(&id, sorted, n, sizeof *sorted, id_cmp))) {
            s->stored = 0;
            tags[i] = 0;
        }
    }
    pthread_mutex_unlock(&lock);
    if (sorted != one)
        free(sorted);
}

void keycache_synced(int64_t poll_started, bool missed)
{
    pthread_mutex_lock(&lock);
    if (sync_last == 0 || missed)
        sync_since = poll_started;
    sync_last = poll_started;
    pthread_mutex_unlock(&lock);
}
