/* test_http.c: request parameters, request ids, media types, query strings, bodies, responses. */
#include <fcgiapp.h>
#include <string.h>

#include "../../fcgi/http.h"
#include "tap.h"

static int init(struct request *req, char **env, struct app_error *err)
{
    static FCGX_Request r;

    memset(&r, 0, sizeof r);
    r.envp = env;
    memset(err, 0, sizeof *err);
    return http_request_init(req, &r, err);
}

/* libfcgi refills a stream through fillBuffProc: an in-memory body has nothing more. */
static void no_more_input(FCGX_Stream *s)
{
    s->isClosed = 1;
}

/* Reads text (len bytes) as the body of a POST of that Content-Length: http_body_read's result,
 * with req->body and err for the caller to check and release. */
static int body(struct request *req, const char *text, size_t len, struct app_error *err)
{
    static unsigned char buf[512];
    static FCGX_Stream in;
    static FCGX_Request r;

    memcpy(buf, text, len);
    memset(&in, 0, sizeof in);
    in.rdNext = in.stopUnget = buf;
    in.stop = buf + len;
    in.isReader = 1;
    in.fillBuffProc = no_more_input;
    memset(&r, 0, sizeof r);
    r.in = &in;
    memset(req, 0, sizeof *req);
    memset(err, 0, sizeof *err);
    req->fcgx = &r;
    req->content_length = (long long)len;
    return http_body_read(req, 1024, err);
}

/* The field of the first detail, or "". */
static const char *detail_field(const struct app_error *err)
{
    json_t *d = json_array_get(err->details, 0);

    return d ? json_string_value(json_object_get(d, "field")) : "";
}

static void test_bodies(void)
{
    struct request req;
    struct app_error err;
    /* JSON text as sent: \u0000 is the six characters of the escape. */
    const char nul_value[] = "{\"name\": \"a\\u0000b\"}";
    const char nul_nested[] = "{\"address\": {\"city\": \"x\"}, \"tags\": [\"ok\", \"\\u0000\"]}";
    const char nul_key[] = "{\"na\\u0000me\": \"x\"}";
    const char plain[] = "{\"name\": \"caf\\u00e9 \\u0001\"}";

    ok(body(&req, plain, sizeof plain - 1, &err) == 0 &&
           strcmp(json_string_value(json_object_get(req.body, "name")), "caf\xc3\xa9 \x01") == 0,
       "escapes other than NUL decoded, the body taken");
    http_request_free(&req);
    error_clear(&err);

    ok(body(&req, nul_value, sizeof nul_value - 1, &err) != 0, "a NUL inside a string refused");
    ok(err.code == ERR_VALIDATION_FAILED, "as validation_failed, not invalid_json");
    is_str(detail_field(&err), "name", "the detail names the field");
    http_request_free(&req);
    error_clear(&err);

    ok(body(&req, nul_nested, sizeof nul_nested - 1, &err) != 0 &&
           err.code == ERR_VALIDATION_FAILED,
       "a NUL in an array of a nested body refused");
    is_str(detail_field(&err), "tags[1]", "named by its path");
    http_request_free(&req);
    error_clear(&err);

    ok(body(&req, nul_key, sizeof nul_key - 1, &err) != 0 &&
           (err.code == ERR_VALIDATION_FAILED || err.code == ERR_INVALID_JSON),
       "a NUL in a key refused");
    http_request_free(&req);
    error_clear(&err);

    ok(body(&req, "{\"a\": }", 7, &err) != 0 && err.code == ERR_INVALID_JSON,
       "bad JSON is still invalid_json");
    http_request_free(&req);
    error_clear(&err);
}

int main(void)
{
    struct request req;
    struct app_error err;
    struct response res = {0};
    char long_id[80];

    ok(http_request_id_is_sane("abc-DEF_1.2"), "sane id");
    ok(!http_request_id_is_sane(""), "empty id");
    ok(!http_request_id_is_sane("a b"), "space");
    ok(!http_request_id_is_sane("a\r\nX-Evil: 1"), "header injection");
    ok(!http_request_id_is_sane("ü"), "non-ASCII");
    memset(long_id, 'a', 64);
    long_id[64] = '\0';
    ok(http_request_id_is_sane(long_id), "64 characters");
    long_id[64] = 'a';
    long_id[65] = '\0';
    ok(!http_request_id_is_sane(long_id), "65 characters");

    ok(http_is_json_type("application/json"), "json");
    ok(http_is_json_type("application/json; charset=utf-8"), "json with charset");
    ok(http_is_json_type("Application/JSON"), "case-insensitive");
    ok(!http_is_json_type("application/jsonx"), "longer type");
    ok(http_is_json_type("application/merge-patch+json"), "merge patch");
    ok(!http_is_json_type("application/+json"), "suffix only");
    ok(!http_is_json_type("text/plain"), "text");
    ok(!http_is_json_type(""), "none");

    {
        char *env[] = {"REQUEST_METHOD=GET",        "REQUEST_URI=/v1/x?limit=5&q=a%20b+c&flag",
                       "HTTP_X_REQUEST_ID=my-id.1", "CONTENT_LENGTH=12",
                       "REMOTE_USER=alice",         NULL};

        ok(init(&req, env, &err) == 0, "request parsed");
        is_str(req.method, "GET", "method");
        is_str(req.path, "/v1/x", "path without the query");
        is_str(req.request_id, "my-id.1", "caller's request id kept");
        ok(req.content_length == 12, "content length");
        is_str(req.remote_user, "alice", "remote user");
        ok(req.api_key == NULL, "no api key");
        is_str(http_query_get(&req, "limit"), "5", "query value");
        is_str(http_query_get(&req, "q"), "a b c", "percent and plus decoded");
        is_str(http_query_get(&req, "flag"), "", "parameter without value");
        ok(http_query_get(&req, "nope") == NULL, "absent parameter");
        http_request_free(&req);
    }
    {
        char *env[] = {"REQUEST_URI=/v1/health", "HTTP_X_REQUEST_ID=bad id!", NULL};

        ok(init(&req, env, &err) == 0, "no method still parses");
        ok(strlen(req.request_id) == 32 && strcmp(req.request_id, "bad id!") != 0,
           "insane request id replaced by a generated one");
        is_str(req.remote_user, "", "no user is empty, not NULL");
        http_request_free(&req);
    }
    {
        /* Every parameter read, in any order; the first of two wins (as FCGX_GetParam);
         * longer or shorter names and entries without '=' are not mistaken for them. */
        char *env[] = {"NOEQUALS",
                       "HTTP_X_API_KEY_EXTRA=no",
                       "REMOTE_USE=no",
                       "CONTENT_TYPE=application/json",
                       "HTTP_SEC_FETCH_SITE=same-origin",
                       "HTTP_ORIGIN=http://a.example",
                       "HTTP_X_REQUEST_ID=first",
                       "HTTP_X_REQUEST_ID=second",
                       "HTTP_X_API_KEY=",
                       "HTTP_IDEMPOTENCY_KEY=",
                       "HTTP_USER_AGENT=ua/1",
                       "HTTP_HOST=a.example",
                       "REMOTE_USER=bob",
                       "REMOTE_USER=mallory",
                       "REMOTE_ADDR=::1",
                       "REQUEST_URI=/v1/y",
                       "REQUEST_METHOD=PATCH",
                       "CONTENT_LENGTH=7",
                       NULL};

        ok(init(&req, env, &err) == 0, "all parameters parsed");
        ok(strcmp(req.method, "PATCH") == 0 && strcmp(req.path, "/v1/y") == 0 &&
               strcmp(req.remote_addr, "::1") == 0 && strcmp(req.host, "a.example") == 0 &&
               strcmp(req.user_agent, "ua/1") == 0 && strcmp(req.origin, "http://a.example") == 0 &&
               strcmp(req.sec_fetch_site, "same-origin") == 0 &&
               strcmp(req.content_type, "application/json") == 0 && req.content_length == 7,
           "each parameter in its field");
        is_str(req.remote_user, "bob", "the first of two same-named parameters wins");
        is_str(req.request_id, "first", "the first request id wins");
        ok(req.api_key && req.api_key[0] == '\0', "an empty X-API-Key is \"\", not absent");
        ok(req.idempotency_key && req.idempotency_key[0] == '\0',
           "an empty Idempotency-Key is \"\", not absent");
        http_request_free(&req);
    }
    {
        char *env[] = {NULL};

        ok(init(&req, env, &err) == 0 && req.method[0] == '\0' && req.remote_addr[0] == '\0' &&
               req.api_key == NULL && req.idempotency_key == NULL && req.path[0] == '\0',
           "no parameters at all: every field empty, no key");
        http_request_free(&req);
    }
    {
        char *env[] = {"REQUEST_URI=/v1/x?a=1&a=2", NULL};

        ok(init(&req, env, &err) != 0 && err.code == ERR_VALIDATION_FAILED,
           "duplicate parameter rejected");
        http_request_free(&req);
        error_clear(&err);
    }
    {
        char *env[] = {"REQUEST_URI=/v1/x?a=%zz", NULL};

        ok(init(&req, env, &err) != 0, "bad escape rejected");
        http_request_free(&req);
        error_clear(&err);
    }
    {
        char *env[] = {"REQUEST_URI=/v1/x?a=%00", NULL};

        ok(init(&req, env, &err) != 0, "encoded NUL rejected");
        http_request_free(&req);
        error_clear(&err);
    }
    {
        char *env[] = {"REQUEST_URI=/v1/x?a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1"
                       "&n=1&o=1&p=1&q=1",
                       NULL};

        ok(init(&req, env, &err) != 0, "17 parameters rejected");
        http_request_free(&req);
        error_clear(&err);
    }
    {
        char *env[] = {"REQUEST_URI=/v1/x", "CONTENT_LENGTH=-1", NULL};

        ok(init(&req, env, &err) != 0, "negative content length rejected");
        http_request_free(&req);
        error_clear(&err);
    }

    test_bodies();

    ok(http_header_add(&res, "Allow", "GET, POST") == 0, "header added");
    is_str(res.headers, "Allow: GET, POST\r\n", "header line");
    for (int i = 0; i < 100; i++)
        http_header_add(&res, "X-Filler", "0123456789");
    ok(res.headers_len < sizeof res.headers && strlen(res.headers) == res.headers_len,
       "header buffer never overflows");
    http_response_clear(&res);
    return tap_done();
}
