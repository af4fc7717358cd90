/* test_spool.c: the audit spool's ring (order, wrap, full, commit), and what a process that dies
 * without closing leaves for the next one: its records, in order, adopted once. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../fcgi/spool.h"
#include "tap.h"

static void rec(bson_t *b, int i, size_t pad)
{
    char *p = malloc(pad + 1);

    memset(p, 'x', pad);
    p[pad] = '\0';
    bson_init(b);
    BSON_APPEND_INT32(b, "i", i);
    BSON_APPEND_UTF8(b, "pad", p);
    free(p);
}

static int num(const bson_t *b)
{
    bson_iter_t it;

    return bson_iter_init_find(&it, b, "i") ? bson_iter_int32(&it) : -1;
}

/* Takes everything from s in batches of up to 7; returns how many came in order from `from`. */
static int drain(struct spool *s, int from)
{
    bson_t docs[7];
    uint64_t end;
    size_t n;
    int next = from;

    while ((n = spool_peek(s, docs, 7, &end)) > 0) {
        for (size_t i = 0; i < n; i++)
            if (num(&docs[i]) == next)
                next++;
        spool_commit(s, end);
    }
    spool_commit(s, end);
    return next - from;
}

static int files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".spool") != NULL;
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/looped-spool-XXXXXX", err[256];
    struct spool *s, *o;
    bson_t b, docs[4];
    uint64_t end;
    int put = 0, status;
    pid_t child;

    ok(mkdtemp(dir) != NULL, "a state directory");

    s = spool_open(NULL, 4096, err);
    ok(s && !spool_durable(s) && err[0] == '\0', "without a directory: in memory");
    rec(&b, 0, 100);
    for (put = 0; spool_put(s, &b); put++)
        ;
    ok(put == 4096 / 128, "a full ring refuses (%d records of 128 bytes fit)", put);
    ok(spool_peek(s, docs, 4, &end) == 4 && num(&docs[0]) == 0, "the oldest come first");
    spool_commit(s, end);
    ok(spool_put(s, &b), "committed records make room");
    bson_destroy(&b);
    rec(&b, 1, 2000);
    ok(!spool_fits(s, &b) && !spool_put(s, &b), "a record over a quarter of the ring never fits");
    bson_destroy(&b);
    spool_close(s);

    /* Records of changing sizes around the end of the ring, many times over. */
    s = spool_open(dir, 4096, err);
    ok(s && spool_durable(s) && err[0] == '\0', "in the directory: a file (%s)", err);
    {
        int next = 0, got = 0, sizes[] = {10, 300, 37, 700, 5, 123};

        for (int round = 0; round < 200; round++) {
            for (int k = 0; k < 3; k++) {
                rec(&b, next, (size_t)sizes[(next + round) % 6]);
                if (spool_put(s, &b))
                    next++;
                bson_destroy(&b);
            }
            got += drain(s, got);
        }
        ok(got == next && next > 500, "%d records through the ring, each once and in order", got);
    }
    ok(spool_empty(s), "empty after the commits");
    spool_close(s);
    ok(files(dir) == 0, "an empty spool's file is removed at close");

    /* A process dies (no close) with records queued: they are there for the next one. */
    child = fork();
    if (child == 0) {
        struct spool *c = spool_open(dir, 8192, err);

        for (int i = 0; i < 20; i++) {
            rec(&b, i, 50);
            if (c == NULL || !spool_put(c, &b))
                _exit(1);
            bson_destroy(&b);
        }
        /* Three were sent and committed before it died. */
        spool_peek(c, docs, 3, &end);
        spool_commit(c, end);
        _exit(0);
    }
    waitpid(child, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a child queued 20 records and died");
    s = spool_open(dir, 8192, err);
    ok(files(dir) == 2, "its file stays beside this process's own");
    o = spool_adopt(dir, s);
    ok(o != NULL, "a dead process's spool is adopted");
    ok(spool_adopt(dir, s) == NULL, "... by one taker only (its lock is held)");
    ok(o && drain(o, 3) == 17, "its 17 records not sent, in order from the fourth");
    spool_close(o);
    ok(files(dir) == 1 && spool_adopt(dir, s) == NULL, "sent: its file is gone");
    ok(spool_adopt(dir, s) == NULL, "this process's own spool is never adopted");
    spool_close(s);
    rmdir(dir);
    return tap_done();
}
