/* test.c: routes that exist only with LOOPED_TEST_ROUTES=1, for the tests and the benchmark. */
#include "handlers.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../fcgi/jsonw.h"
#include "../fcgi/util.h"

/* ?bytes=N pads the greeting so that the benchmark's baseline answers as many bytes as the
 * request it is compared with. Written with jsonw, as GET /v1/key is, so that the baseline
 * pays for its body what the compared request pays. */
int handle_test_hello(struct request *req, struct response *res, struct app_error *err)
{
    const char *v = http_query_get(req, "bytes");
    struct jsonw w = {0};
    long long n = 5;
    char *pad;

    if (v && util_strtonum(v, 0, 65536, &n) != 0) {
        error_detail(err, "bytes", "must be a whole number from 0 to 65536");
        return error_invalid(err, "query");
    }
    pad = malloc((size_t)n + 1);
    if (pad == NULL)
        return error_set(err, ERR_INTERNAL, NULL);
    memset(pad, 'x', (size_t)n);
    pad[n] = '\0';
    JSONW_LIT(&w, "{\"hello\":");
    jsonw_str(&w, pad);
    JSONW_LIT(&w, "}");
    free(pad);
    res->status = 200;
    res->text = jsonw_finish(&w, &res->text_len);
    return res->text ? 0 : error_set(err, ERR_INTERNAL, NULL);
}

/* Holds the request for ?ms= milliseconds (1..10000): an in-flight request that a graceful
 * stop must let finish. */
int handle_test_sleep(struct request *req, struct response *res, struct app_error *err)
{
    const char *v = http_query_get(req, "ms");
    long long ms;
    struct timespec ts;

    if (v == NULL || util_strtonum(v, 1, 10000, &ms) != 0) {
        error_set(err, ERR_VALIDATION_FAILED, "The query parameter ms must be 1 to 10000.");
        error_detail(err, "ms", "must be a whole number from 1 to 10000");
        return -1;
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0)
        ;
    res->status = 200;
    res->body = json_pack("{s:I}", "slept_ms", (json_int_t)ms);
    return 0;
}
