/* keycache.c: a direct-mapped table of recently seen key digests, one mutex per process.
 * Positive entries live at most the configured TTL (<= 1 s): that bounds how long another
 * worker may still accept a revoked key. */
#include "keycache.h"

#include <pthread.h>
#include <string.h>

#include "util.h"

#define KEYCACHE_SLOTS 4096 /* power of two; ~4.5 MB, touched lazily */

struct slot {
    struct key_auth key;
    int64_t stored; /* monotonic ms; 0: empty */
};

static struct slot slots[KEYCACHE_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t ttl_pos, ttl_neg;

void keycache_init(int64_t ttl_ms, int64_t neg_ttl_ms)
{
    ttl_pos = ttl_ms;
    ttl_neg = neg_ttl_ms;
}

/* The digest is an HMAC output: its first bytes are already uniformly distributed. */
static struct slot *slot_of(const unsigned char *digest)
{
    uint32_t h;

    memcpy(&h, digest, sizeof h);
    return &slots[h & (KEYCACHE_SLOTS - 1)];
}

enum keycache_result keycache_get(const unsigned char digest[AUTH_DIGEST_LEN], struct key_auth *out)
{
    enum keycache_result r = KEYCACHE_MISS;
    struct slot *s = slot_of(digest);
    int64_t now;

    if (ttl_pos <= 0)
        return KEYCACHE_MISS;
    now = util_mono_ms();
    pthread_mutex_lock(&lock);
    if (s->stored && memcmp(s->key.digest, digest, AUTH_DIGEST_LEN) == 0) {
        bool negative = s->key.key.id[0] == '\0';

        if (now - s->stored < (negative ? ttl_neg : ttl_pos)) {
            r = negative ? KEYCACHE_UNKNOWN : KEYCACHE_HIT;
            if (!negative)
                *out = s->key;
        } else {
            s->stored = 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}

void keycache_put(const struct key_auth *k)
{
    struct slot *s = slot_of(k->digest);

    if (ttl_pos <= 0)
        return;
    pthread_mutex_lock(&lock);
    s->key = *k;
    s->stored = util_mono_ms();
    pthread_mutex_unlock(&lock);
}

void keycache_forget(const char *key_id)
{
    /* A linear scan: revoke and delete are rare, and the table is small. */
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < KEYCACHE_SLOTS; i++) {
        if (slots[i].stored && strcmp(slots[i].key.key.id, key_id) == 0)
            slots[i].stored = 0;
    }
    pthread_mutex_unlock(&lock);
}
