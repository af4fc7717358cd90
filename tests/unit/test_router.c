/* test_router.c: matching, captures, 404 versus 405 with Allow, test routes, query check. */
#include <string.h>

#include "../../fcgi/router.h"
#include "tap.h"

static int h(struct request *req, struct response *res, struct app_error *err)
{
    return 0;
}

static const char *const list_params[] = {"limit", "cursor", NULL};

static const struct route table[] = {
    {"GET", "/v1/health", h, 0, NULL, NULL},
    {"GET", "/v1/teams/{team_id}/api-keys", h, ROUTE_USER, NULL, list_params},
    {"POST", "/v1/teams/{team_id}/api-keys", h, ROUTE_USER | ROUTE_BODY, NULL, NULL},
    {"GET", "/v1/teams/{team_id}/api-keys/{key_id}", h, ROUTE_USER, NULL, NULL},
    {"PATCH", "/v1/teams/{team_id}/api-keys/{key_id}", h, ROUTE_USER, NULL, NULL},
    {"DELETE", "/v1/teams/{team_id}/api-keys/{key_id}", h, ROUTE_USER, NULL, NULL},
    {"GET", "/v1/_test/hello", h, ROUTE_TEST, NULL, NULL},
};

static enum router_result match(struct request *req, const char *method, const char *path,
                                const struct route **r, char *allow, bool test)
{
    memset(req, 0, sizeof *req);
    req->method = method;
    strcpy(req->path, path);
    return router_match(table, sizeof table / sizeof table[0], test, req, r, allow, 64);
}

int main(void)
{
    struct request req;
    const struct route *r = NULL;
    struct app_error err = {0};
    char allow[64];

    ok(match(&req, "GET", "/v1/health", &r, allow, false) == ROUTER_FOUND && r == &table[0],
       "static path");
    ok(match(&req, "GET", "/v1/health/", &r, allow, false) == ROUTER_NOT_FOUND,
       "trailing slash is another path");
    ok(match(&req, "GET", "/v1/healthz", &r, allow, false) == ROUTER_NOT_FOUND, "longer path");
    ok(match(&req, "GET", "/v1", &r, allow, false) == ROUTER_NOT_FOUND, "prefix only");
    ok(match(&req, "GET", "/v1/teams/acme/api-keys/key_1", &r, allow, false) == ROUTER_FOUND &&
           r == &table[3],
       "two captures");
    is_str(req.params[0], "acme", "first capture");
    is_str(req.params[1], "key_1", "second capture");
    ok(match(&req, "POST", "/v1/teams/acme/api-keys", &r, allow, false) == ROUTER_FOUND &&
           r == &table[2],
       "method selects the route");
    ok(match(&req, "PUT", "/v1/teams/acme/api-keys/key_1", &r, allow, false) ==
           ROUTER_METHOD_NOT_ALLOWED,
       "405 for a known path");
    is_str(allow, "GET, PATCH, DELETE", "Allow lists the path's methods");
    ok(match(&req, "DELETE", "/v1/health", &r, allow, false) == ROUTER_METHOD_NOT_ALLOWED,
       "405 on health");
    is_str(allow, "GET", "Allow: GET");
    ok(match(&req, "GET", "/v1/teams//api-keys", &r, allow, false) == ROUTER_NOT_FOUND,
       "empty capture");
    ok(match(&req, "GET", "/v1/teams/a%2Fb/api-keys", &r, allow, false) == ROUTER_NOT_FOUND,
       "encoded characters never reach a capture");
    ok(match(&req, "GET", "/v1/teams/../api-keys", &r, allow, false) == ROUTER_NOT_FOUND,
       "dot-dot capture");
    ok(match(&req, "GET", "/v1/teams/acme/api-keys/key_1/x", &r, allow, false) == ROUTER_NOT_FOUND,
       "extra segment");
    ok(match(&req, "GET", "/v1/_test/hello", &r, allow, false) == ROUTER_NOT_FOUND,
       "test routes hidden by default");
    ok(match(&req, "GET", "/v1/_test/hello", &r, allow, true) == ROUTER_FOUND,
       "test routes when enabled");

    match(&req, "GET", "/v1/teams/acme/api-keys", &r, allow, false);
    req.nquery = 1;
    req.query[0].name = "limit";
    req.query[0].value = "5";
    ok(router_check_query(r, &req, &err) == 0, "allowed query parameter");
    req.query[0].name = "colour";
    ok(router_check_query(r, &req, &err) != 0 && err.code == ERR_UNKNOWN_PARAMETER,
       "unknown query parameter");
    ok(json_array_size(err.details) == 1, "details name the parameter");
    error_clear(&err);
    match(&req, "GET", "/v1/health", &r, allow, false);
    req.nquery = 1;
    req.query[0].name = "x";
    req.query[0].value = "";
    ok(router_check_query(r, &req, &err) != 0, "a route without parameters takes none");
    error_clear(&err);
    return tap_done();
}
