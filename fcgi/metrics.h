/* metrics.h: the host's counters for operators (api.md §6.9): one table shared by every worker
 * process of a host, updated lock-free, and its Prometheus text exposition (0.0.4). */
#ifndef LOOPED_METRICS_H
#define LOOPED_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct route;

/* The table lives in a shared mapping, like the rate-limit table (ratelimit.h): anonymous and
 * made by the pool's supervisor before it forks, or a file under the state directory that every
 * process the web server spawns maps. Each process counts in a slot of its own (no cache line
 * bounces between processes); a slot's counters stay when its process dies, so a scrape sums
 * every process the host ran, a SIGKILLed one included. Gauges are summed over live processes
 * only. Labels are bounded: a route is an entry of the route table (its pattern and method,
 * never the raw path), statuses and methods come from fixed lists. */

/* Route-table entries counted by pattern (routes.c asserts it has no more); processes counted
 * in slots of their own (more share a slot); the file under the state directory. */
#define METRICS_ROUTES_MAX 40
#define METRICS_SLOTS      256
#define METRICS_FILE       "metrics.table"

enum metrics_key_result {
    METRICS_KEY_HIT,     /* the key came from the process's cache */
    METRICS_KEY_MISS,    /* not cached: read from the store (or the store failed) */
    METRICS_KEY_UNKNOWN, /* no key has this digest (cached as unknown, or the store said so) */
    METRICS_KEY_REFUSED, /* missing, or refused on its shape and checksum, before any lookup */
    METRICS_KEY__COUNT
};

/* Maps an anonymous shared table (the pool's supervisor, before fork). 0, or -1 (errno). */
int metrics_attach_anon(void);

/* Maps (creating it if needed) the table in file path, shared with every process that maps it; a
 * file of another layout is reset. 0, or -1 with a reason in err (256 bytes). */
int metrics_attach_file(const char *path, char *err);

/* True once a table is attached in this process. */
bool metrics_attached(void);

/* Takes a slot for this process (a free one, or one whose process is gone: its counters are
 * kept and added to). supervised: the pool's supervisor counts restarts (metrics_worker_restart);
 * otherwise a process that finds slots of processes that died without stopping counts each as a
 * restart. Call once after attaching, before the threads start. Cannot fail: without a slot of
 * its own the process counts in a shared one and reports no gauges. */
void metrics_worker_start(bool supervised);

/* Gives the slot back at a clean exit (its counters stay in the table). */
void metrics_worker_stop(void);

/* Counts one answered request: route is the index of its entry in the route table, or -1 when
 * none matched (404, 405); method is the request's (bounded to a fixed list), status what was
 * sent, usec how long it took. Lock-free, no system call; no-op without a table. */
void metrics_request(int route, const char *method, int status, int64_t usec);

void metrics_key_check(enum metrics_key_result r);
void metrics_rate_limited(void);
void metrics_audit_written(uint64_t records);
void metrics_audit_write_failed(void);
/* The process's audit queue now: records and bytes waiting, and its size in bytes. */
void metrics_audit_queue(int64_t records, int64_t bytes, int64_t capacity);
/* The supervisor replaced a worker that died without being asked to. */
void metrics_worker_restart(void);

/* The whole host's table as Prometheus text (version 0.0.4), labelled with the n entries of
 * routes (the same table the processes count with), store_up (1 or 0) and version. Returns a
 * malloc'd, NUL-terminated text the caller frees, with its length in *len; NULL when out of
 * memory or n > METRICS_ROUTES_MAX. Without a table, the counters read zero. */
char *metrics_render(const struct route *routes, size_t n, int store_up, const char *version,
                     size_t *len);

#endif
