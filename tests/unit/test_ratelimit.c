/* test_ratelimit.c: the sliding window, its headers' numbers, remote sums and the file table
 * shared by processes (forked children count against one budget). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../fcgi/ratelimit.h"
#include "tap.h"

#define T0 1800000000000LL /* a window start for every per_seconds used below */

/* How many of n requests at now pass. */
static int passes(const char *key, uint32_t req, uint32_t per, int64_t now, int n)
{
    struct ratelimit_verdict v;
    int ok_n = 0;

    for (int i = 0; i < n; i++) {
        ratelimit_take(key, req, per, now, &v);
        ok_n += v.allowed;
    }
    return ok_n;
}

int main(void)
{
    struct ratelimit_verdict v;
    struct ratelimit_count c[4];
    char path[] = "/tmp/looped-rl-XXXXXX", err[256];
    int fd, status, total = 0;

    ratelimit_take("key_a", 5, 10, T0, &v);
    ok(v.allowed && v.remaining == 5, "no table: allowed, full budget");

    ok(ratelimit_attach_anon() == 0 && ratelimit_attached(), "an anonymous table");
    ratelimit_take("key_a", 5, 10, T0 + 1000, &v);
    ok(v.allowed && v.limit == 5 && v.remaining == 4 && v.reset_s == 9, "first request: 4 left");
    ok(passes("key_a", 5, 10, T0 + 1000, 10) == 4, "then exactly 4 more pass");
    ratelimit_take("key_a", 5, 10, T0 + 2000, &v);
    ok(!v.allowed && v.remaining == 0, "the sixth is refused");
    /* 5 counted in this window: the next starts at +10 s with 5 weighted by what overlaps;
     * one more passes once 5 * (1 - e/10) <= 4, e >= 2 s: 8 + 2 = 10 s from +2 s. */
    ok(v.retry_after_s == 10, "Retry-After %u is when one more passes", v.retry_after_s);
    ok(passes("key_a", 5, 10, T0 + 10000 + 1999, 1) == 0, "not before that");
    ok(passes("key_a", 5, 10, T0 + 10000 + 2000, 1) == 1, "and then one passes");
    ok(passes("key_a", 5, 10, T0 + 40000, 5) == 5, "the whole budget is back two windows on");
    ok(passes("key_b", 5, 10, T0 + 1000, 5) == 5, "keys have budgets of their own");
    ok(passes("key_a", 3, 1, T0 + 50000, 9) == 3, "a changed limit counts afresh");

    /* Other hosts' sums count against the budget. */
    memset(c, 0, sizeof c);
    snprintf(c[0].key_id, sizeof c[0].key_id, "key_r");
    c[0].per_ms = 10000;
    c[0].window = (T0 + 60000) / 10000;
    c[0].cur = 7;
    ratelimit_remote_set(c, 1, T0 + 60000);
    ok(passes("key_r", 10, 10, T0 + 60000, 10) == 3, "7 counted elsewhere leave 3 here");
    {
        bool changed;
        size_t n = ratelimit_counts(c, 4, T0 + 60000, &changed), i;

        ok(changed && n >= 1, "this host's counts are reported when they changed");
        for (i = 0; i < n && strcmp(c[i].key_id, "key_r") != 0; i++)
            ;
        ok(i < n && c[i].cur == 3 && c[i].window == (T0 + 60000) / 10000,
           "... its own 3, not the 7 counted elsewhere");
        ok(ratelimit_counts(c, 4, T0 + 60000, &changed) == n && !changed,
           "... then the same counts, unchanged");
        ok(ratelimit_counts(c, 4, T0 + 60000 + 3600000, &changed) == 0,
           "counts whose windows have passed are not reported");
    }
    ratelimit_remote_set(NULL, 0, T0 + 60000);
    ok(passes("key_r", 10, 10, T0 + 60000, 10) == 7, "sums no longer reported count nothing");

    {
        pid_t gone = fork(); /* a pid that no longer runs */

        if (gone == 0)
            _exit(0);
        waitpid(gone, &status, 0);
        ok(ratelimit_lease((int32_t)gone, T0, 2000), "a free lease is taken");
        ok(ratelimit_lease((int32_t)getpid(), T0 + 100, 2000),
           "a holder that is gone loses it at once");
        ok(!ratelimit_lease((int32_t)getppid(), T0 + 200, 2000),
           "a live holder that beats keeps it");
        ok(ratelimit_lease((int32_t)getppid(), T0 + 3000, 2000), "a silent holder loses it");
        ok(!ratelimit_lease((int32_t)getpid(), T0 + 3100, 2000), "... to the next one only");
    }

    /* Processes mapping one file share one budget. */
    fd = mkstemp(path);
    close(fd);
    for (int p = 0; p < 4; p++) {
        pid_t pid = fork();

        if (pid == 0) {
            if (ratelimit_attach_file(path, err) != 0)
                _exit(100);
            _exit(passes("key_f", 20, 10, T0 + 1000, 10));
        }
    }
    while (wait(&status) > 0)
        total += WIFEXITED(status) ? WEXITSTATUS(status) : 100;
    ok(total == 20, "4 processes, 40 requests, one budget of 20: %d passed", total);
    ok(ratelimit_attach_file(path, err) == 0 && passes("key_f", 20, 10, T0 + 1000, 1) == 0,
       "the file keeps the count for a process that maps it later");
    unlink(path);
    ok(ratelimit_attach_file("/nonexistent/dir/table", err) == -1 && err[0],
       "a file that cannot be made: an error with a reason");
    return tap_done();
}
