/* fuzz_request.c: a request's line and headers as the web server hands them over (method,
 * REQUEST_URI with its query string, X-API-Key, Content-Type, Content-Length, X-Request-Id,
 * one per input line) through the parameter reader, the query parser, the router with the
 * API's real route table and the query check: every input gets a route or an error, and
 * nothing reads or writes out of bounds. */
#include <stdio.h>

#include "../../fcgi/app.h"
#include "../../fcgi/auth.h"
#include "../../fcgi/catalog.h"
#include "../../fcgi/http.h"
#include "../../fcgi/router.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[SCHEMA_ERR_LEN];

    (void)argc;
    (void)argv;
    fuzz_auth_init();
    if (catalog_load(fuzz_schema_dir(), err) != 0 ||
        (looped_app.init && looped_app.init(fuzz_schema_dir(), err) != 0)) {
        fprintf(stderr, "fuzz_request: %s (run from the checkout, or set LOOPED_SCHEMA_DIR)\n",
                err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    static const char *const names[] = {
        "REQUEST_METHOD=", "REQUEST_URI=",       "HTTP_X_API_KEY=",      "CONTENT_TYPE=",
        "CONTENT_LENGTH=", "HTTP_X_REQUEST_ID=", "HTTP_X_FORWARDED_FOR="};
    enum { NFIELDS = sizeof names / sizeof *names };
    char *env[NFIELDS + 2], *buf = malloc(n + NFIELDS * 24 + 32), *p = buf;
    const uint8_t *at = data, *end = data + n;
    FCGX_Request fcgx;
    FCGX_Stream in;
    struct request req;
    struct app_error err = {0};
    const struct route *route = NULL;
    char allow[128];
    size_t k = 0;

    if (buf == NULL)
        return 0;
    for (; k < NFIELDS && at <= end; k++) {
        const uint8_t *nl = memchr(at, '\n', (size_t)(end - at));
        size_t len = (size_t)((nl ? nl : end) - at);

        env[k] = p;
        memcpy(p, names[k], strlen(names[k]));
        p += strlen(names[k]);
        memcpy(p, at, len);
        p[len] = '\0';
        p += len + 1;
        at += len + 1;
    }
    env[k++] = "REMOTE_ADDR=127.0.0.1";
    env[k] = NULL;
    memset(&fcgx, 0, sizeof fcgx);
    fcgx.envp = env;
    fuzz_stream(&in, NULL, 0);
    fcgx.in = &in;
    if (http_request_init(&req, &fcgx, &err) == 0) {
        enum router_result rr = router_match(looped_app.routes, looped_app.nroutes, true, &req,
                                             &route, allow, sizeof allow);

        if (rr == ROUTER_FOUND) {
            if (route == NULL)
                abort();
            if (router_check_query(route, &req, &err) != 0 && err.code == ERR_NONE)
                abort(); /* a refusal always says why */
        }
        if (req.api_key)
            (void)auth_key_well_formed(req.api_key);
        if (strlen(req.request_id) == 0)
            abort(); /* every request has an id, even a broken one */
    } else if (err.code == ERR_NONE) {
        abort();
    }
    error_clear(&err);
    http_request_free(&req);
    free(buf);
    return 0;
}
