/* metrics.c: the host's shared table of request counters, and its Prometheus exposition. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "router.h"

#define M_MAGIC 0x4c4f4f504d543031ull /* "LOOPMT01": the layout below, version 1 */

/* The label values. A status outside the list counts as "other"; so does a method outside the
 * list on a path no route matched (a route's own method is its entry's). */
static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405,
                               409, 413, 415, 422, 429, 500, 503};
#define NSTATUS (sizeof statuses / sizeof statuses[0] + 1) /* + "other" */
static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
#define NMETHOD (sizeof methods / sizeof methods[0] + 1) /* + "other" */
#define NROUTES (METRICS_ROUTES_MAX + NMETHOD)           /* + "unmatched", by method */
/* Upper bounds in microseconds; the last bucket is +Inf. */
static const int64_t buckets_us[] = {1000,   2500,   5000,    10000,   25000,   50000,   100000,
                                     250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define NBUCKET (sizeof buckets_us / sizeof buckets_us[0] + 1)

static const char *const key_results[METRICS_KEY__COUNT] = {"hit", "miss", "unknown", "refused"};

struct m_slot {
    _Atomic int32_t owner; /* the pid counting here; 0: none */
    int32_t pad;
    _Atomic int64_t audit_records, audit_bytes, audit_capacity; /* the owner's gauges */
    _Atomic uint64_t key_checks[METRICS_KEY__COUNT];
    _Atomic uint64_t rate_limited, audit_written, audit_failures;
    _Atomic uint64_t requests[NROUTES][NSTATUS];
    _Atomic uint64_t hist[NROUTES][NBUCKET]; /* per bucket, not cumulative */
    _Atomic uint64_t hist_sum_us[NROUTES];
};

struct m_table {
    uint64_t magic;
    uint32_t nslots, slot_size;
    _Atomic uint32_t used; /* slots ever taken: a scrape reads these */
    uint32_t pad;
    _Atomic uint64_t worker_restarts;
    struct m_slot slots[METRICS_SLOTS];
};

static struct m_table *table;
static struct m_slot *mine; /* this process's slot */
static bool own_gauges;     /* the slot is ours alone: its gauges are ours */

static void table_init(struct m_table *t)
{
    t->nslots = METRICS_SLOTS;
    t->slot_size = sizeof(struct m_slot);
    t->magic = M_MAGIC;
}

int metrics_attach_anon(void)
{
    void *p = mmap(NULL, sizeof *table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -1;
    table = p;
    table_init(table);
    return 0;
}

int metrics_attach_file(const char *path, char *err)
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
    if (((struct m_table *)p)->magic != M_MAGIC ||
        ((struct m_table *)p)->slot_size != sizeof(struct m_slot)) {
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

bool metrics_attached(void)
{
    return table != NULL;
}

/* A process that exists (EPERM: it does, under another user). */
static bool pid_alive(int32_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void gauges_clear(struct m_slot *s)
{
    atomic_store(&s->audit_records, 0);
    atomic_store(&s->audit_bytes, 0);
    atomic_store(&s->audit_capacity, 0);
}

void metrics_worker_start(bool supervised)
{
    int32_t me = (int32_t)getpid();
    uint32_t used;

    if (table == NULL || mine)
        return;
    /* Slots of processes that died without giving theirs back: free them (their counters stay),
     * and, with no supervisor to count it, count each as a process the web server replaced. */
    used = atomic_load(&table->used);
    for (uint32_t i = 0; i < used && i < METRICS_SLOTS; i++) {
        struct m_slot *s = &table->slots[i];
        int32_t owner = atomic_load(&s->owner);

        if (owner != 0 && owner != me && !pid_alive(owner) &&
            atomic_compare_exchange_strong(&s->owner, &owner, 0)) {
            gauges_clear(s);
            if (!supervised)
                atomic_fetch_add(&table->worker_restarts, 1);
        }
    }
    for (uint32_t i = 0; i < METRICS_SLOTS; i++) {
        struct m_slot *s = &table->slots[i];
        int32_t free_ = 0;

        if (atomic_compare_exchange_strong(&s->owner, &free_, me)) {
            gauges_clear(s);
            mine = s;
            own_gauges = true;
            /* Publish the slot to scrapes: used only grows. */
            used = atomic_load(&table->used);
            while (used < i + 1 && !atomic_compare_exchange_weak(&table->used, &used, i + 1))
                ;
            return;
        }
    }
    /* More live processes than slots: count in one that is shared (counters are atomic). */
    mine = &table->slots[(uint32_t)me % METRICS_SLOTS];
    own_gauges = false;
}

void metrics_worker_stop(void)
{
    if (mine && own_gauges) {
        gauges_clear(mine);
        atomic_store(&mine->owner, 0);
    }
    mine = NULL;
    own_gauges = false;
}

static size_t status_index(int status)
{
    for (size_t i = 0; i < NSTATUS - 1; i++) {
        if (statuses[i] == status)
            return i;
    }
    return NSTATUS - 1;
}

static size_t method_index(const char *method)
{
    for (size_t i = 0; method && i < NMETHOD - 1; i++) {
        if (strcmp(methods[i], method) == 0)
            return i;
    }
    return NMETHOD - 1;
}

void metrics_request(int route, const char *method, int status, int64_t usec)
{
    size_t r, b = 0;

    if (mine == NULL)
        return;
    if (route >= 0 && route < METRICS_ROUTES_MAX)
        r = (size_t)route;
    else
        r = METRICS_ROUTES_MAX + method_index(method);
    if (usec < 0)
        usec = 0;
    while (b < NBUCKET - 1 && usec > buckets_us[b])
        b++;
    atomic_fetch_add_explicit(&mine->requests[r][status_index(status)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&mine->hist[r][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&mine->hist_sum_us[r], (uint64_t)usec, memory_order_relaxed);
}

void metrics_key_check(enum metrics_key_result r)
{
    if (mine && r >= 0 && r < METRICS_KEY__COUNT)
        atomic_fetch_add_explicit(&mine->key_checks[r], 1, memory_order_relaxed);
}

void metrics_rate_limited(void)
{
    if (mine)
        atomic_fetch_add_explicit(&mine->rate_limited, 1, memory_order_relaxed);
}

void metrics_audit_written(uint64_t records)
{
    if (mine)
        atomic_fetch_add_explicit(&mine->audit_written, records, memory_order_relaxed);
}

void metrics_audit_write_failed(void)
{
    if (mine)
        atomic_fetch_add_explicit(&mine->audit_failures, 1, memory_order_relaxed);
}

void metrics_audit_queue(int64_t records, int64_t bytes, int64_t capacity)
{
    if (mine == NULL || !own_gauges)
        return;
    atomic_store_explicit(&mine->audit_records, records, memory_order_relaxed);
    atomic_store_explicit(&mine->audit_bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&mine->audit_capacity, capacity, memory_order_relaxed);
}

void metrics_worker_restart(void)
{
    if (table)
        atomic_fetch_add_explicit(&table->worker_restarts, 1, memory_order_relaxed);
}

/* ---- exposition */

/* A growing text buffer; a failed append marks it failed and the render returns NULL. */
struct out {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->failed)
        return;
    for (;;) {
        size_t room = o->cap - o->len;

        va_start(ap, fmt);
        n = vsnprintf(o->buf ? o->buf + o->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 16384;
        while (cap - o->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(o->buf, cap);
        if (p == NULL) {
            o->failed = true;
            return;
        }
        o->buf = p;
        o->cap = cap;
    }
}

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static void out_label(struct out *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            out_printf(o, "\\%c", *v);
        else if (*v == '\n')
            out_printf(o, "\\n");
        else
            out_printf(o, "%c", *v);
    }
}

static void out_head(struct out *o, const char *name, const char *type, const char *help)
{
    out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The route and method labels of route index r. */
static void out_route(struct out *o, const struct route *routes, size_t r)
{
    out_printf(o, "route=\"");
    if (r < METRICS_ROUTES_MAX) {
        out_label(o, routes[r].pattern);
        out_printf(o, "\",method=\"%s\"", routes[r].method);
    } else {
        size_t m = r - METRICS_ROUTES_MAX;

        out_printf(o, "unmatched\",method=\"%s\"", m < NMETHOD - 1 ? methods[m] : "other");
    }
}

/* Every route index the table names: the n routes, then "unmatched" by method. */
static bool route_shown(size_t r, size_t n)
{
    return r < n || r >= METRICS_ROUTES_MAX;
}

char *metrics_render(const struct route *routes, size_t n, int store_up, const char *version,
                     size_t *len)
{
    /* No table: every count is zero. */
    uint32_t used = table ? atomic_load(&table->used) : 0;
    uint64_t restarts = table ? atomic_load(&table->worker_restarts) : 0;
    struct out o = {0};
    uint64_t keys[METRICS_KEY__COUNT] = {0}, limited = 0, written = 0, failures = 0;
    int64_t queue_records = 0, queue_bytes = 0, queue_capacity = 0, live = 0;
    uint64_t(*req)[NSTATUS] = NULL, (*hist)[NBUCKET] = NULL, *sum = NULL;

    if (n > METRICS_ROUTES_MAX)
        return NULL;
    if (used > METRICS_SLOTS)
        used = METRICS_SLOTS;
    req = calloc(NROUTES, sizeof *req);
    hist = calloc(NROUTES, sizeof *hist);
    sum = calloc(NROUTES, sizeof *sum);
    if (req == NULL || hist == NULL || sum == NULL)
        goto done;
    /* Sum over every slot: a dead process's counters count; its gauges do not. */
    for (uint32_t i = 0; i < used; i++) {
        struct m_slot *s = &table->slots[i];
        int32_t owner = atomic_load(&s->owner);

        for (size_t k = 0; k < METRICS_KEY__COUNT; k++)
            keys[k] += atomic_load_explicit(&s->key_checks[k], memory_order_relaxed);
        limited += atomic_load_explicit(&s->rate_limited, memory_order_relaxed);
        written += atomic_load_explicit(&s->audit_written, memory_order_relaxed);
        failures += atomic_load_explicit(&s->audit_failures, memory_order_relaxed);
        for (size_t r = 0; r < NROUTES; r++) {
            for (size_t c = 0; c < NSTATUS; c++)
                req[r][c] += atomic_load_explicit(&s->requests[r][c], memory_order_relaxed);
            for (size_t b = 0; b < NBUCKET; b++)
                hist[r][b] += atomic_load_explicit(&s->hist[r][b], memory_order_relaxed);
            sum[r] += atomic_load_explicit(&s->hist_sum_us[r], memory_order_relaxed);
        }
        if (pid_alive(owner)) {
            live++;
            queue_records += atomic_load_explicit(&s->audit_records, memory_order_relaxed);
            queue_bytes += atomic_load_explicit(&s->audit_bytes, memory_order_relaxed);
            queue_capacity += atomic_load_explicit(&s->audit_capacity, memory_order_relaxed);
        }
    }

    out_head(&o, "looped_build_info", "gauge", "The version of looped-fcgi that answered.");
    out_printf(&o, "looped_build_info{version=\"");
    out_label(&o, version);
    out_printf(&o, "\"} 1\n");

    out_head(&o, "looped_requests_total", "counter",
             "Requests answered by the host's workers, by route pattern, method and status.");
    for (size_t r = 0; r < NROUTES; r++) {
        for (size_t c = 0; route_shown(r, n) && c < NSTATUS; c++) {
            if (req[r][c] == 0)
                continue;
            out_printf(&o, "looped_requests_total{");
            out_route(&o, routes, r);
            if (c < NSTATUS - 1)
                out_printf(&o, ",status=\"%d\"} %llu\n", statuses[c],
                           (unsigned long long)req[r][c]);
            else
                out_printf(&o, ",status=\"other\"} %llu\n", (unsigned long long)req[r][c]);
        }
    }

    out_head(&o, "looped_request_duration_seconds", "histogram",
             "Time from accepting a request to its answer, by route pattern and method.");
    for (size_t r = 0; r < NROUTES; r++) {
        uint64_t cum = 0;

        if (!route_shown(r, n))
            continue;
        for (size_t b = 0; b < NBUCKET; b++)
            cum += hist[r][b];
        if (cum == 0)
            continue;
        cum = 0;
        for (size_t b = 0; b < NBUCKET; b++) {
            cum += hist[r][b];
            out_printf(&o, "looped_request_duration_seconds_bucket{");
            out_route(&o, routes, r);
            if (b < NBUCKET - 1)
                out_printf(&o, ",le=\"%g\"} %llu\n", (double)buckets_us[b] / 1e6,
                           (unsigned long long)cum);
            else
                out_printf(&o, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        out_printf(&o, "looped_request_duration_seconds_sum{");
        out_route(&o, routes, r);
        out_printf(&o, "} %llu.%06llu\n", (unsigned long long)(sum[r] / 1000000),
                   (unsigned long long)(sum[r] % 1000000));
        out_printf(&o, "looped_request_duration_seconds_count{");
        out_route(&o, routes, r);
        out_printf(&o, "} %llu\n", (unsigned long long)cum);
    }

    out_head(&o, "looped_key_checks_total", "counter",
             "API-key checks by how the key was found: hit (cache), miss (read from the store), "
             "unknown (no such key), refused (missing or malformed, no lookup).");
    for (size_t k = 0; k < METRICS_KEY__COUNT; k++)
        out_printf(&o, "looped_key_checks_total{result=\"%s\"} %llu\n", key_results[k],
                   (unsigned long long)keys[k]);

    out_head(&o, "looped_rate_limited_total", "counter",
             "Requests refused with 429 by a key's rate limit.");
    out_printf(&o, "looped_rate_limited_total %llu\n", (unsigned long long)limited);

    out_head(&o, "looped_audit_queue_depth", "gauge",
             "Audit records queued in the live workers, not yet written to the store.");
    out_printf(&o, "looped_audit_queue_depth %lld\n", (long long)queue_records);
    out_head(&o, "looped_audit_queue_bytes", "gauge",
             "Bytes of the live workers' audit queues in use; requests wait when one is full.");
    out_printf(&o, "looped_audit_queue_bytes %lld\n", (long long)queue_bytes);
    out_head(&o, "looped_audit_queue_capacity_bytes", "gauge",
             "Size of the live workers' audit queues, summed.");
    out_printf(&o, "looped_audit_queue_capacity_bytes %lld\n", (long long)queue_capacity);
    out_head(&o, "looped_audit_records_written_total", "counter",
             "Audit records written to the store.");
    out_printf(&o, "looped_audit_records_written_total %llu\n", (unsigned long long)written);
    out_head(&o, "looped_audit_write_failures_total", "counter",
             "Audit batches the store refused or did not answer (they are retried).");
    out_printf(&o, "looped_audit_write_failures_total %llu\n", (unsigned long long)failures);

    out_head(&o, "looped_store_up", "gauge",
             "1 while the store answers (the circuit is closed), 0 while requests fail fast.");
    out_printf(&o, "looped_store_up %d\n", store_up ? 1 : 0);

    out_head(&o, "looped_worker_processes", "gauge", "Live worker processes counted.");
    out_printf(&o, "looped_worker_processes %lld\n", (long long)live);
    out_head(&o, "looped_worker_restarts_total", "counter",
             "Worker processes that died without being asked to and were replaced.");
    out_printf(&o, "looped_worker_restarts_total %llu\n", (unsigned long long)restarts);
done:
    free(req);
    free(hist);
    free(sum);
    if (o.failed || o.buf == NULL) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
