/* test_router.c: matching, captures, 404 versus 405 with Allow, test routes, query check,
 * {resource} captures and their schema filters. */
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/catalog.h"
#include "../../fcgi/router.h"
#include "tap.h"

static int h(struct request *req, struct response *res, struct app_error *err)
{
    return 0;
}

static const char *const list_params[] = {"limit", "cursor", NULL};

static const struct route table[] = {
    {"GET", "/v1/health", h, 0, SCOPE_NONE, NULL},
    {"GET", "/v1/teams/{team_id}/api-keys", h, ROUTE_USER, SCOPE_NONE, list_params},
    {"POST", "/v1/teams/{team_id}/api-keys", h, ROUTE_USER | ROUTE_BODY, SCOPE_NONE, NULL},
    {"GET", "/v1/teams/{team_id}/api-keys/{key_id}", h, ROUTE_USER, SCOPE_NONE, NULL},
    {"PATCH", "/v1/teams/{team_id}/api-keys/{key_id}", h, ROUTE_USER, SCOPE_NONE, NULL},
    {"DELETE", "/v1/teams/{team_id}/api-keys/{key_id}", h, ROUTE_USER, SCOPE_NONE, NULL},
    {"GET", "/v1/_test/hello", h, ROUTE_TEST, SCOPE_NONE, NULL},
    {"GET", "/v1/{resource}", h, ROUTE_KEY | ROUTE_FILTERS, SCOPE_READ, list_params},
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

    {
        char msg[256] = "";

        ok(catalog_load(getenv("LOOPED_SCHEMA_DIR"), msg) == 0, "catalog loads: %s", msg);
    }
    ok(match(&req, "GET", "/v1/invoicez", &r, allow, false) == ROUTER_NOT_FOUND,
       "{resource} matches only the catalog's names");
    ok(match(&req, "GET", "/v1/invoices", &r, allow, false) == ROUTER_FOUND && r == &table[7] &&
           req.resource == catalog_find("invoices"),
       "{resource} keeps the catalog's resource");
    req.nquery = 2;
    req.query[0].name = "status";
    req.query[0].value = "open";
    req.query[1].name = "limit";
    req.query[1].value = "5";
    ok(router_check_query(r, &req, &err) == 0, "a schema filter and a page parameter");
    req.query[0].name = "total";
    ok(router_check_query(r, &req, &err) != 0 && err.code == ERR_UNKNOWN_PARAMETER,
       "a field that is not filterable is unknown");
    error_clear(&err);
    match(&req, "GET", "/v1/customers", &r, allow, false);
    req.nquery = 1;
    req.query[0].name = "status";
    ok(router_check_query(r, &req, &err) != 0, "another resource, other filters");
    error_clear(&err);
    catalog_free();
    return tap_done();
}
