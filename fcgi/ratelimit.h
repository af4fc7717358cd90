/* ratelimit.h: per-key request budgets (api.md §6.1), counted in one table shared by every
 * worker process of a host, and summed with what the other hosts report through the store. */
#ifndef LOOPED_RATELIMIT_H
#define LOOPED_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The table lives in a shared mapping: anonymous and created by the pool's supervisor before
 * it forks (so it outlives worker restarts and reloads), or a file under the state directory
 * for processes the web server spawns (each maps the same file). Counting is a sliding window
 * of two fixed windows aligned to multiples of per_seconds since the epoch: the previous
 * window's count weighted by how much of it still overlaps, plus the current one's. */

#define RATELIMIT_SLOTS 16384 /* keys counted at once per host (each slot 128 bytes) */
#define RATELIMIT_MAX   1000000

/* Maps an anonymous shared table (the pool, before fork). 0, or -1 (errno). */
int ratelimit_attach_anon(void);

/* Maps (creating it if needed) the table in file path, shared with every process that maps it.
 * 0, or -1 with a reason in err (256 bytes). */
int ratelimit_attach_file(const char *path, char *err);

/* True once a table is attached in this process. */
bool ratelimit_attached(void);

/* What a request did to its key's budget: the RateLimit-* headers' values. */
struct ratelimit_verdict {
    bool allowed;
    uint32_t limit, remaining;
    uint32_t reset_s;       /* seconds until the current window ends */
    uint32_t retry_after_s; /* when refused: seconds until one more request would pass */
};

/* Counts one request of key_id against requests per per_seconds at now_ms (wall clock), across
 * every process of the host and the others' last reported counts. Lock-free; never blocks,
 * never fails: with no table attached, or no room in the table, the request is allowed and
 * the verdict says the full budget remains. */
void ratelimit_take(const char *key_id, uint32_t requests, uint32_t per_seconds, int64_t now_ms,
                    struct ratelimit_verdict *v);

/* The host's counts for the store, and the others' back (the sync thread, ratelimit_sync.c). */
struct ratelimit_count {
    char key_id[32];
    int64_t per_ms;
    int64_t window; /* the index of the current window: start = window * per_ms */
    uint32_t cur, prev;
};

/* Fills up to max of this host's counts that still matter at now_ms (its own, not the remote
 * sums), for a report; *changed tells whether any moved since the last call. Returns how
 * many. */
size_t ratelimit_counts(struct ratelimit_count *out, size_t max, int64_t now_ms, bool *changed);

/* Replaces the other hosts' sums with these (one entry per key, already summed over hosts). */
void ratelimit_remote_set(const struct ratelimit_count *in, size_t n, int64_t now_ms);

/* The host's view of the store, kept in the same shared table: each process's probe writes
 * what its last ping saw (up or not, at now_ms); ratelimit_store_state tells a process that has
 * not pinged yet: 1 up, 0 down, -1 unknown (no table, or no answer within max_age_ms). */
void ratelimit_store_seen(bool up, int64_t now_ms);
int ratelimit_store_state(int64_t now_ms, int64_t max_age_ms);
/* When the host's last answer was up, its wall ms; 0 otherwise. */
int64_t ratelimit_store_up_at(void);

/* Claims the host's reporter lease for pid unless a live other process holds it (heartbeat
 * within stale_ms); true if pid holds it now. */
bool ratelimit_lease(int32_t pid, int64_t now_ms, int64_t stale_ms);

#endif
