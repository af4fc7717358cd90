/* test_metrics.c: the exposition writer (labels from the route table, bounded statuses and
 * methods, cumulative histogram buckets) and the shared table (processes that count in one file,
 * a killed one's counts kept, its gauges not). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../fcgi/metrics.h"
#include "../../fcgi/router.h"
#include "tap.h"

static const struct route routes[] = {
    {"GET", "/v1/health", NULL, 0, SCOPE_NONE, NULL},
    {"GET", "/v1/{resource}/{id}", NULL, 0, SCOPE_NONE, NULL},
    {"PATCH", "/v1/{resource}/{id}", NULL, 0, SCOPE_NONE, NULL},
    {"GET", "/odd\"\\path", NULL, 0, SCOPE_NONE, NULL},
};
#define NR (sizeof routes / sizeof routes[0])

static char *render(int store_up)
{
    size_t len = 0;
    char *t = metrics_render(routes, NR, store_up, "1.2.3", &len);

    if (t && strlen(t) != len) {
        free(t);
        return NULL;
    }
    return t;
}

static bool has(const char *text, const char *line)
{
    return text && strstr(text, line) != NULL;
}

/* The value of the series whose line starts with name (its labels included), or -1. */
static long long value(const char *text, const char *series)
{
    char want[512];
    const char *p;

    snprintf(want, sizeof want, "\n%s ", series);
    p = text ? strstr(text, want) : NULL;
    return p ? strtoll(p + strlen(want), NULL, 10) : -1;
}

int main(void)
{
    char path[] = "/tmp/looped-metrics-XXXXXX", err[256], *t;
    int fd, status;
    pid_t kids[3];

    t = render(1);
    ok(t != NULL, "no table: renders");
    ok(has(t, "# TYPE looped_requests_total counter\n") &&
           has(t, "looped_key_checks_total{result=\"refused\"} 0\n") &&
           has(t, "looped_build_info{version=\"1.2.3\"} 1\n") && has(t, "looped_store_up 1\n"),
       "no table: every family, counters zero");
    free(t);

    ok(metrics_attach_anon() == 0 && metrics_attached(), "an anonymous table");
    metrics_worker_start(true);
    metrics_request(0, "GET", 200, 300);
    metrics_request(0, "GET", 200, 7000);
    metrics_request(0, "GET", 503, 20000000);
    metrics_request(2, "PATCH", 422, 1000);
    metrics_request(-1, "BREW", 404, 10);
    metrics_request(-1, "DELETE", 405, 10);
    metrics_request(1, "GET", 418, 10);
    metrics_request(3, "GET", 200, 10);
    metrics_key_check(METRICS_KEY_HIT);
    metrics_key_check(METRICS_KEY_HIT);
    metrics_key_check(METRICS_KEY_UNKNOWN);
    metrics_rate_limited();
    metrics_audit_written(256);
    metrics_audit_write_failed();
    metrics_audit_queue(3, 1200, 2097152);
    metrics_worker_restart();
    t = render(0);
    ok(value(t, "looped_requests_total{route=\"/v1/health\",method=\"GET\",status=\"200\"}") == 2,
       "a route's label is its pattern and method");
    ok(value(t, "looped_requests_total{route=\"/v1/{resource}/{id}\",method=\"PATCH\","
                "status=\"422\"}") == 1,
       "a pattern with captures, not a path");
    ok(value(t, "looped_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"}") ==
               1 &&
           value(t,
                 "looped_requests_total{route=\"unmatched\",method=\"DELETE\",status=\"405\"}") ==
               1,
       "no route: \"unmatched\", a method outside the list is \"other\"");
    ok(value(t, "looped_requests_total{route=\"/v1/{resource}/{id}\",method=\"GET\","
                "status=\"other\"}") == 1,
       "a status outside the list is \"other\"");
    ok(!has(t, "status=\"201\""), "series that never counted are not written");
    ok(has(t, "route=\"/odd\\\"\\\\path\""), "label values are escaped");
    ok(value(t, "looped_request_duration_seconds_bucket{route=\"/v1/health\",method=\"GET\","
                "le=\"0.001\"}") == 1 &&
           value(t, "looped_request_duration_seconds_bucket{route=\"/v1/health\",method=\"GET\","
                    "le=\"0.01\"}") == 2 &&
           value(t, "looped_request_duration_seconds_bucket{route=\"/v1/health\",method=\"GET\","
                    "le=\"10\"}") == 2 &&
           value(t, "looped_request_duration_seconds_bucket{route=\"/v1/health\",method=\"GET\","
                    "le=\"+Inf\"}") == 3 &&
           value(t, "looped_request_duration_seconds_count{route=\"/v1/health\",method=\"GET\"}") ==
               3,
       "histogram buckets are cumulative, +Inf is the count");
    ok(has(t, "looped_request_duration_seconds_sum{route=\"/v1/health\",method=\"GET\"} "
              "20.007300\n"),
       "the sum in seconds, to the microsecond");
    ok(value(t, "looped_key_checks_total{result=\"hit\"}") == 2 &&
           value(t, "looped_key_checks_total{result=\"unknown\"}") == 1 &&
           value(t, "looped_key_checks_total{result=\"miss\"}") == 0,
       "key checks by result");
    ok(value(t, "looped_rate_limited_total") == 1 &&
           value(t, "looped_audit_records_written_total") == 256 &&
           value(t, "looped_audit_write_failures_total") == 1 &&
           value(t, "looped_worker_restarts_total") == 1,
       "the plain counters");
    ok(value(t, "looped_audit_queue_depth") == 3 && value(t, "looped_audit_queue_bytes") == 1200 &&
           value(t, "looped_audit_queue_capacity_bytes") == 2097152 &&
           value(t, "looped_worker_processes") == 1,
       "this live process's gauges");
    ok(has(t, "looped_store_up 0\n"), "store_up as given");
    ok(t && t[strlen(t) - 1] == '\n' && !has(t, "\n\n"), "lines end with a newline, none empty");
    free(t);
    ok(metrics_render(routes, METRICS_ROUTES_MAX + 1, 1, "x", &(size_t){0}) == NULL,
       "a route table larger than the layout is refused");

    /* Processes sharing a file: each counts in its own slot; the one killed keeps its counts. */
    fd = mkstemp(path);
    close(fd);
    unlink(path);
    metrics_worker_stop();
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            if (metrics_attach_file(path, err) != 0)
                _exit(2);
            metrics_worker_start(false);
            for (int n = 0; n < 1000; n++)
                metrics_request(0, "GET", 200, 50);
            metrics_audit_queue(5, 500, 1000);
            if (i == 2) { /* killed: never gives its slot back */
                kill(getpid(), SIGSTOP);
                pause();
            }
            metrics_worker_stop();
            _exit(0);
        }
    }
    waitpid(kids[0], &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child 1 counted");
    waitpid(kids[1], &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child 2 counted");
    waitpid(kids[2], &status, WUNTRACED);
    ok(metrics_attach_file(path, err) == 0, "the parent maps the same file");
    metrics_worker_start(false);
    t = render(1);
    ok(value(t, "looped_requests_total{route=\"/v1/health\",method=\"GET\",status=\"200\"}") ==
           3000,
       "the sum over every process");
    ok(value(t, "looped_audit_queue_depth") == 5 && value(t, "looped_worker_processes") == 2,
       "gauges of live processes only (the stopped one and this one)");
    free(t);
    kill(kids[2], SIGKILL);
    waitpid(kids[2], &status, 0);
    t = render(1);
    ok(value(t, "looped_requests_total{route=\"/v1/health\",method=\"GET\",status=\"200\"}") ==
           3000,
       "a SIGKILLed process's counts stay");
    ok(value(t, "looped_audit_queue_depth") == 0 && value(t, "looped_worker_processes") == 1,
       "its gauges do not");
    free(t);
    metrics_worker_stop();
    kids[0] = fork();
    if (kids[0] == 0) {
        if (metrics_attach_file(path, err) != 0)
            _exit(2);
        metrics_worker_start(false); /* finds the killed one's slot */
        metrics_request(0, "GET", 200, 50);
        metrics_worker_stop();
        _exit(0);
    }
    waitpid(kids[0], &status, 0);
    t = render(1);
    ok(value(t, "looped_requests_total{route=\"/v1/health\",method=\"GET\",status=\"200\"}") ==
               3001 &&
           value(t, "looped_worker_restarts_total") == 1,
       "unsupervised: the next process counts the dead one as a restart, and counts on");
    free(t);
    unlink(path);
    return tap_done();
}
