/* test_keycache.c: the key cache's lifetimes, the change feed's effect, and eviction. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "../../fcgi/keycache.h"
#include "../../fcgi/util.h"
#include "tap.h"

#define TTL   400 /* ms, scaled down from minutes: the rules, not the figures, are tested */
#define GRACE 100
#define NEG   150

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* A key whose digest lands in set `set`, distinguished within it by `tag`. */
static struct key_auth key(uint32_t set, unsigned char tag, const char *id)
{
    struct key_auth k;

    memset(&k, 0, sizeof k);
    memcpy(k.digest, &set, sizeof set);
    k.digest[AUTH_DIGEST_LEN - 1] = tag;
    snprintf(k.key.id, sizeof k.key.id, "%s", id);
    snprintf(k.key.team_id, sizeof k.key.team_id, "acme");
    return k;
}

static enum keycache_result get(const struct key_auth *k)
{
    struct key_auth out;

    return keycache_get(k->digest, &out);
}

/* A second request thread missing on the same digest. */
struct waiter {
    const struct key_auth *k;
    enum keycache_result r;
    volatile int finished;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;

    w->r = get(w->k);
    w->finished = 1;
    return NULL;
}

int main(void)
{
    struct key_auth a = key(1, 1, "key_a"), b = key(2, 1, "key_b"), unknown = key(3, 1, "");
    struct key_auth out;
    const char *ids[2];
    int64_t t;

    keycache_init(TTL, NEG, GRACE);

    /* Hits, misses and a negative entry. */
    ok(get(&a) == KEYCACHE_MISS, "an empty cache misses");
    keycache_put(&a, util_mono_ms());
    memset(&out, 0, sizeof out);
    ok(keycache_get(a.digest, &out) == KEYCACHE_HIT && strcmp(out.key.id, "key_a") == 0,
       "a stored key is found with its data");
    keycache_put(&unknown, util_mono_ms());
    ok(get(&unknown) == KEYCACHE_UNKNOWN, "an unknown digest is remembered as unknown");

    /* Not following the feed: a positive entry lives only the grace time. */
    sleep_ms(GRACE + 30);
    ok(get(&a) == KEYCACHE_MISS, "without the change feed, entries live only the grace time");
    ok(get(&unknown) == KEYCACHE_UNKNOWN, "negative entries keep their own lifetime");
    sleep_ms(NEG);
    ok(get(&unknown) == KEYCACHE_MISS, "negative entries expire");

    /* Following the feed: entries read since the run of polls began live up to ttl. */
    keycache_synced(util_mono_ms(), false);
    keycache_put(&a, util_mono_ms());
    keycache_put(&b, util_mono_ms());
    for (int i = 0; i < 4; i++) {
        sleep_ms(GRACE / 2);
        keycache_synced(util_mono_ms(), false);
    }
    ok(get(&a) == KEYCACHE_HIT, "synced: an entry older than the grace time is still used");
    ids[0] = "key_a";
    keycache_forget(ids, 1);
    ok(get(&a) == KEYCACHE_MISS, "a key named by the feed is forgotten at once");
    ok(get(&b) == KEYCACHE_HIT, "other keys stay");

    /* A lookup that started before a forget may have read the old key: not stored. */
    t = util_mono_ms();
    sleep_ms(2);
    ids[0] = "key_zz";
    keycache_forget(ids, 1);
    keycache_put(&a, t);
    ok(get(&a) == KEYCACHE_MISS, "a read older than the last forget is not cached");
    sleep_ms(2); /* same millisecond as the forget counts as older */
    keycache_put(&a, util_mono_ms());
    ok(get(&a) == KEYCACHE_HIT, "a read after it is");

    /* The feed stops being read: after the grace time, old entries are stale... */
    keycache_put(&b, util_mono_ms());
    sleep_ms(GRACE + 30);
    ok(get(&a) == KEYCACHE_MISS,
       "feed not read for longer than the grace time: entries older than it are stale");
    /* ...until a read applies every change made meanwhile. */
    keycache_synced(util_mono_ms(), false);
    ok(get(&b) == KEYCACHE_HIT, "a late read of the feed makes them good again");
    keycache_put(&a, util_mono_ms() - GRACE - 20);
    keycache_synced(util_mono_ms(), true);
    ok(get(&a) == KEYCACHE_MISS && get(&b) == KEYCACHE_MISS,
       "after changes may have been missed, entries read before are never trusted again");
    keycache_put(&a, util_mono_ms());
    for (int i = 0; i < 10; i++) {
        sleep_ms(GRACE / 2);
        keycache_synced(util_mono_ms(), false);
    }
    ok(get(&a) == KEYCACHE_MISS, "an entry lives no longer than ttl, synced or not");

    /* 16 ways per set: a 17th key evicts the oldest. Unknown digests have their own table. */
    {
        struct key_auth w[17], u1 = key(7, 101, ""), u2 = key(7, 102, "");
        char id[KEY_ID_LEN];
        int hits = 0, refused = 0;

        for (int i = 0; i < 17; i++) {
            snprintf(id, sizeof id, "key_w%d", i);
            w[i] = key(7, (unsigned char)(i + 1), id);
        }
        keycache_synced(util_mono_ms(), false);
        for (int i = 0; i < 16; i++) {
            keycache_put(&w[i], util_mono_ms());
            sleep_ms(1);
        }
        keycache_synced(util_mono_ms(), false); /* (a loaded machine may be slow here) */
        for (int i = 0; i < 16; i++)
            hits += get(&w[i]) == KEYCACHE_HIT;
        ok(hits == 16, "sixteen keys of one set are all kept (%d)", hits);
        /* Two unknown digests of a set full of keys: they used to evict each other. */
        keycache_put(&u1, util_mono_ms());
        keycache_put(&u2, util_mono_ms());
        for (int i = 0; i < 10; i++)
            refused += get(i % 2 ? &u1 : &u2) == KEYCACHE_UNKNOWN;
        keycache_synced(util_mono_ms(), false);
        hits = 0;
        for (int i = 0; i < 16; i++)
            hits += get(&w[i]) == KEYCACHE_HIT;
        ok(refused == 10 && hits == 16,
           "unknown digests in a full set are remembered (%d of 10) and evict no key (%d)", refused,
           hits);
        keycache_put(&w[16], util_mono_ms());
        keycache_synced(util_mono_ms(), false);
        ok(get(&w[0]) == KEYCACHE_MISS && get(&w[1]) == KEYCACHE_HIT && get(&w[16]) == KEYCACHE_HIT,
           "a 17th key evicts the oldest");
        ids[0] = "key_w4";
        ids[1] = "key_w1";
        keycache_forget(ids, 2);
        ok(get(&w[4]) == KEYCACHE_MISS && get(&w[1]) == KEYCACHE_MISS &&
               get(&w[16]) == KEYCACHE_HIT && get(&u1) == KEYCACHE_UNKNOWN,
           "forgetting several ids at once, and no unknown digest");
        sleep_ms(2); /* a read must start after the forget to be cached */
        keycache_put(&w[0], util_mono_ms());
        keycache_synced(util_mono_ms(), false);
        ok(get(&w[0]) == KEYCACHE_HIT && get(&w[3]) == KEYCACHE_HIT,
           "a forgotten entry's way is reused first");
    }

    /* The table of unknown digests: 8 ways per set, the oldest goes. */
    {
        struct key_auth u[9];
        int refused = 0;

        for (int i = 0; i < 9; i++) {
            u[i] = key(11, (unsigned char)(i + 1), "");
            keycache_put(&u[i], util_mono_ms());
            sleep_ms(1);
        }
        for (int i = 1; i < 9; i++)
            refused += get(&u[i]) == KEYCACHE_UNKNOWN;
        ok(get(&u[0]) == KEYCACHE_MISS && refused == 8,
           "a 9th unknown digest of a set evicts the oldest (%d kept)", refused);
    }

    /* A digest is a key or unknown, whichever the last lookup found. */
    {
        struct key_auth k = key(12, 1, "key_k"), gone = key(12, 1, "");

        keycache_put(&gone, util_mono_ms());
        keycache_put(&k, util_mono_ms());
        ok(get(&k) == KEYCACHE_HIT, "a key found after its digest was unknown is used");
        keycache_put(&gone, util_mono_ms());
        ok(get(&k) == KEYCACHE_UNKNOWN, "a key the store no longer knows is refused");
        keycache_put(&k, util_mono_ms() - 50);
        ok(get(&k) == KEYCACHE_UNKNOWN, "a read that started before the last one is not stored");
        keycache_put(&gone, util_mono_ms() - 50);
        keycache_put(&k, util_mono_ms());
        keycache_put(&gone, util_mono_ms() - 50);
        ok(get(&k) == KEYCACHE_HIT, "whether it found the key or not");
    }

    /* Single flight: a second miss on a digest being looked up waits for that lookup. */
    {
        struct key_auth c = key(9, 1, "key_c"), e = key(10, 1, "key_e");
        struct waiter w = {&c, KEYCACHE_MISS, 0};
        pthread_t th;

        ok(get(&c) == KEYCACHE_MISS, "the first miss looks the key up");
        pthread_create(&th, NULL, wait_thread, &w);
        sleep_ms(50);
        ok(!w.finished, "a second miss on the same digest waits");
        keycache_put(&c, util_mono_ms());
        pthread_join(th, NULL);
        ok(w.finished && w.r == KEYCACHE_HIT, "and gets the key the first one stored");

        w = (struct waiter){&e, KEYCACHE_MISS, 0};
        ok(get(&e) == KEYCACHE_MISS, "a lookup that will fail");
        pthread_create(&th, NULL, wait_thread, &w);
        sleep_ms(50);
        ok(!w.finished, "waits as well");
        keycache_done(e.digest);
        pthread_join(th, NULL);
        ok(w.r == KEYCACHE_MISS, "a failed lookup lets the waiter look the key up itself");
        keycache_done(e.digest);
        ok(get(&e) == KEYCACHE_MISS, "and then the next one");
        keycache_done(e.digest);

        /* Two lookups at once; the first to start ends first. */
        keycache_forget((const char *[]){"key_c"}, 1);
        sleep_ms(2);
        ok(get(&c) == KEYCACHE_MISS && get(&e) == KEYCACHE_MISS, "two lookups at once");
        keycache_done(c.digest);
        w = (struct waiter){&e, KEYCACHE_MISS, 0};
        pthread_create(&th, NULL, wait_thread, &w);
        sleep_ms(50);
        ok(!w.finished, "a miss on the second still waits once the first has ended");
        keycache_put(&e, util_mono_ms());
        pthread_join(th, NULL);
        ok(w.r == KEYCACHE_HIT, "and gets its key");
    }

    /* ttl 0 disables the cache. */
    keycache_init(0, NEG, GRACE);
    keycache_put(&b, util_mono_ms());
    ok(get(&b) == KEYCACHE_MISS, "ttl 0: nothing is cached");
    return tap_done();
}
