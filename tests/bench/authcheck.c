/* authcheck.c: the in-process cost of the API-key check of design.md §3 steps 1-3 (shape and
 * checksum, HMAC-SHA-256 with the pepper, key-cache lookup) for a cache hit, a cache miss
 * (the store is not asked: only what happens before the query), a malformed key (bad
 * checksum) and a hit on a key with a rate limit and an allow-list of 10 blocks ("limited").
 * Target T4 of bench.md: p50 <= 2 us, p99 <= 10 us on a hit; "limited" within 15% of a hit.
 *
 *   authcheck [--iters N]          time every check with clock_gettime; prints JSON
 *   authcheck --count N MODE       N checks of MODE (hit|miss|malformed|limited) and nothing else:
 *                                  run it under `valgrind --tool=callgrind
 *                                  --toggle-collect=authcheck_run` and divide Ir by N
 *
 * Built by tests/bench/run against the project's liblooped.a with the flags of the unit tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../../fcgi/auth.h"
#include "../../fcgi/ipnet.h"
#include "../../fcgi/keycache.h"
#include "../../fcgi/keys.h"
#include "../../fcgi/ratelimit.h"
#include "../../fcgi/util.h"

#define NKEYS 64 /* distinct keys cycled through: a few hot keys, as with a skewed load */

/* limited: a hit on a key with a rate limit it never reaches and an allow-list of 10 blocks,
 * the client in the last (bench.md variant L): what the two steps of api.md §6.1-§6.2 add. */
enum mode { MODE_HIT, MODE_MISS, MODE_MALFORMED, MODE_LIMITED, NMODES };
static const char *const mode_names[NMODES] = {"hit", "miss", "malformed", "limited"};

static char keys[NMODES][NKEYS][AUTH_KEY_LEN + 1];

/* One check as auth_key_verify (fcgi/auth_check.c) makes it, up to the key cache and minus the
 * store (a miss ends its lookup at once), then for a key with limits the allow-list (the client
 * address parsed as auth_check.c parses it) and the rate limit:
 * returns 0 malformed, else 1 + the keycache result (-1: a limit refused it). */
static int64_t check_now; /* auth_key_verify reads the clock for the expiry check anyway */

static int check(const char *key, struct key_auth *ka)
{
    enum keycache_result r;

    if (!auth_key_well_formed(key))
        return 0;
    if (auth_key_digest(key, ka->digest) != 0) {
        fprintf(stderr, "authcheck: HMAC failed\n");
        exit(1);
    }
    r = keycache_get(ka->digest, ka);
    if (r == KEYCACHE_MISS)
        keycache_done(ka->digest);
    if (r == KEYCACHE_HIT && (ka->key.nips || ka->key.rate.requests)) {
        struct ipnet client;
        struct ratelimit_verdict v;

        if (ka->key.nips &&
            (ipnet_addr_parse("127.0.0.1", &client) != 0 || !keys_ip_allowed(&ka->key, &client)))
            return -1;
        if (ka->key.rate.requests) {
            ratelimit_take(ka->key.id, ka->key.rate.requests, ka->key.rate.per_seconds, check_now,
                           &v);
            if (!v.allowed)
                return -1;
        }
    }
    return 1 + (int)r;
}

static int expected(enum mode m)
{
    return m == MODE_HIT || m == MODE_LIMITED ? 1 + KEYCACHE_HIT
           : m == MODE_MISS                   ? 1 + KEYCACHE_MISS
                                              : 0;
}

/* The only function callgrind collects in (--toggle-collect=authcheck_run). */
__attribute__((noinline)) int authcheck_run(enum mode m, long n);
__attribute__((noinline)) int authcheck_run(enum mode m, long n)
{
    struct key_auth ka;
    int bad = 0;

    for (long i = 0; i < n; i++)
        bad += check(keys[m][i % NKEYS], &ka) != expected(m);
    return bad;
}

static int64_t ns_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void setup(void)
{
    unsigned char pepper[48];
    static unsigned char used[4096];
    struct key_auth ka;

    for (size_t i = 0; i < sizeof pepper; i++)
        pepper[i] = (unsigned char)(i * 7 + 1);
    if (ratelimit_attach_anon() != 0) {
        fprintf(stderr, "authcheck: no rate-limit table\n");
        exit(1);
    }
    if (auth_init(pepper, sizeof pepper) != 0) {
        fprintf(stderr, "authcheck: auth_init failed\n");
        exit(1);
    }
    /* Entries must outlive a slow callgrind run without a key-change feed: the grace time is
     * the TTL here. Which of the two lifetimes admits an entry is one comparison more or less
     * on the hit path, so it does not change the cost measured. */
    keycache_init(3600 * 1000, 5000, 3600 * 1000);
    check_now = util_now_ms();
    for (int m = 0; m < NMODES; m++) {
        for (int i = 0; i < NKEYS; i++) {
            char *k = keys[m][i];
            uint32_t slot;

            auth_key_generate(k);
            if (m == MODE_MALFORMED) {
                /* Right shape, wrong checksum: the most expensive way to be malformed. */
                char *c = &k[AUTH_KEY_LEN - 1];

                *c = *c == 'A' ? 'B' : 'A';
                continue;
            }
            /* keycache.c has 1024 sets of 16 ways chosen by the digest's first 4 bytes: keep at
             * most 16 keys of this run in a set, or hits would evict each other. */
            auth_key_digest(k, ka.digest);
            memcpy(&slot, ka.digest, sizeof slot);
            slot &= 1023;
            if (used[slot] == 16) {
                i--;
                continue;
            }
            used[slot]++;
            if (m == MODE_HIT || m == MODE_LIMITED) {
                memset(&ka.key, 0, sizeof ka.key);
                snprintf(ka.key.id, sizeof ka.key.id, "key_bench%d%010d", m, i);
                snprintf(ka.key.team_id, sizeof ka.key.team_id, "bench");
                snprintf(ka.key.name, sizeof ka.key.name, "bench key %d", i);
                ka.key.permission = PERM_WRITE_ALL;
                if (m == MODE_LIMITED) {
                    const char *why;
                    char net[32];

                    ka.key.rate.requests = RATELIMIT_MAX;
                    ka.key.rate.per_seconds = 1;
                    for (int b = 0; b < 9; b++) {
                        snprintf(net, sizeof net, "10.%d.0.0/16", b);
                        ipnet_parse(net, &ka.key.ips[b], &why);
                    }
                    ipnet_parse("127.0.0.0/8", &ka.key.ips[9], &why);
                    ka.key.nips = 10;
                }
                keycache_put(&ka, util_mono_ms());
            }
        }
    }
}

/* Median of n timings of batch calls of a step, per call (clock overhead amortised). */
static double step_ns(int which, long n)
{
    enum { BATCH = 256 };
    int64_t *t = malloc((size_t)n * sizeof *t);
    struct key_auth ka;
    volatile int sink = 0;
    double r;

    auth_key_digest(keys[MODE_HIT][0], ka.digest);
    for (long i = 0; i < n; i++) {
        int64_t t0 = ns_now();

        for (int j = 0; j < BATCH; j++) {
            const char *k = keys[MODE_HIT][j % NKEYS];

            switch (which) {
            case 0:
                sink += auth_key_well_formed(k);
                break;
            case 1:
                sink += auth_key_digest(k, ka.digest);
                break;
            default:
                auth_key_digest(k, ka.digest); /* (subtracted below) */
                sink += (int)keycache_get(ka.digest, &ka);
                break;
            }
        }
        t[i] = ns_now() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp64);
    r = (double)t[n / 2] / BATCH;
    free(t);
    return r;
}

/* The body work of GET /v1/key (handle_key_self + the json_dumps of http_response_send) and of
 * the H baseline (handle_test_hello), per call: what A0 adds to H once the key is cached. */
static void body_ns(long n, double *key_self, double *hello)
{
    struct api_key k;
    int64_t now = 1764400000000;
    size_t sink = 0;

    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "key_4fQ9zLk2Xw8RtBn1Vc7M");
    snprintf(k.team_id, sizeof k.team_id, "bench");
    snprintf(k.name, sizeof k.name, "bench-00042");
    snprintf(k.hint, sizeof k.hint,
             "looped_Ab3x\xe2\x80\xa6"
             "9fQz");
    snprintf(k.created_by, sizeof k.created_by, "bench-owner");
    k.permission = PERM_WRITE_ALL;
    k.created_at = k.updated_at = now - 86400000;
    k.last_used_at = now - 1000;
    snprintf(k.last_used_ip, sizeof k.last_used_ip, "127.0.0.1");
    for (int pass = 0; pass < 2; pass++) {
        int64_t t0 = ns_now();

        for (long i = 0; i < n; i++) {
            json_t *j;
            char *out;

            if (pass == 0) {
                j = json_pack("{s:o, s:{s:s}}", "key", keys_to_json(&k, now), "team", "id",
                              k.team_id);
            } else {
                char pad[400];

                memset(pad, 'x', 380);
                pad[380] = '\0';
                j = json_pack("{s:s%}", "hello", pad, (size_t)380);
            }
            out = json_dumps(j, JSON_COMPACT);
            sink += strlen(out);
            free(out);
            json_decref(j);
        }
        *(pass == 0 ? key_self : hello) = (double)(ns_now() - t0) / (double)n;
    }
    if (sink == 0)
        exit(1);
}

static void timed(long iters)
{
    int64_t *t = malloc((size_t)iters * sizeof *t), overhead;
    struct key_auth ka;
    double digest_ns;

    if (t == NULL)
        exit(1);
    /* What a clock_gettime pair costs alone, subtracted from every sample. */
    for (long i = 0; i < iters; i++) {
        int64_t t0 = ns_now();

        t[i] = ns_now() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp64);
    overhead = t[iters / 2];
    printf("{\n  \"clock_overhead_ns\": %lld,\n  \"iters\": %ld,\n", (long long)overhead, iters);
    for (int m = 0; m < NMODES; m++) {
        int bad = 0;

        for (long i = 0; i < 1000; i++) /* warm-up: the thread's MAC handle, caches */
            bad += check(keys[m][i % NKEYS], &ka) != expected(m);
        for (long i = 0; i < iters; i++) {
            int64_t t0 = ns_now();
            int r = check(keys[m][i % NKEYS], &ka);

            t[i] = ns_now() - t0 - overhead;
            bad += r != expected(m);
        }
        qsort(t, (size_t)iters, sizeof *t, cmp64);
        printf(
            "  \"%s\": {\"p50_ns\": %lld, \"p90_ns\": %lld, \"p99_ns\": %lld, \"p999_ns\": %lld, "
            "\"max_ns\": %lld, \"unexpected\": %d},\n",
            mode_names[m], (long long)t[iters / 2], (long long)t[iters * 9 / 10],
            (long long)t[iters * 99 / 100], (long long)t[iters * 999 / 1000],
            (long long)t[iters - 1], bad);
    }
    digest_ns = step_ns(1, iters / 256 + 1);
    {
        double ks = 0, he = 0;

        body_ns(iters / 4, &ks, &he);
        printf("  \"steps_p50_ns\": {\"well_formed\": %.1f, \"digest\": %.1f, \"keycache_get\": "
               "%.1f},\n  \"body_mean_ns\": {\"key_self\": %.0f, \"hello\": %.0f}\n}\n",
               step_ns(0, iters / 256 + 1), digest_ns, step_ns(2, iters / 256 + 1) - digest_ns, ks,
               he);
    }
    free(t);
}

int main(int argc, char **argv)
{
    long iters = 200000;

    setup();
    if (argc == 4 && strcmp(argv[1], "--count") == 0) {
        long n = strtol(argv[2], NULL, 10);

        for (int m = 0; m < NMODES; m++) {
            if (strcmp(argv[3], mode_names[m]) == 0) {
                int bad;

                check(keys[m][0], &(struct key_auth){0}); /* open the MAC handle outside */
                bad = authcheck_run((enum mode)m, n);
                printf("{\"mode\": \"%s\", \"count\": %ld, \"unexpected\": %d}\n", mode_names[m], n,
                       bad);
                return bad != 0;
            }
        }
        fprintf(stderr, "authcheck: mode is hit, miss or malformed\n");
        return 2;
    }
    if (argc == 3 && strcmp(argv[1], "--iters") == 0)
        iters = strtol(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: authcheck [--iters N] | --count N hit|miss|malformed\n");
        return 2;
    }
    if (iters < 1000)
        iters = 1000;
    timed(iters);
    auth_shutdown();
    return 0;
}
