/* router.h: the route table's shape, and matching a method and path against it. */
#ifndef LOOPED_ROUTER_H
#define LOOPED_ROUTER_H

#include <stddef.h>

#include "catalog.h"
#include "error.h"
#include "http.h"

/* A handler fills res and returns 0, or sets err and returns -1. */
typedef int (*handler_fn)(struct request *req, struct response *res, struct app_error *err);

enum route_flags {
    ROUTE_USER = 1 << 0,    /* a person: needs REMOTE_USER from the web server */
    ROUTE_KEY = 1 << 1,     /* an integration: needs X-API-Key */
    ROUTE_BODY = 1 << 2,    /* takes a JSON body */
    ROUTE_TEST = 1 << 3,    /* exists only with LOOPED_TEST_ROUTES=1 */
    ROUTE_TEAM = 1 << 4,    /* {team_id} is the first capture: the user must be a member */
    ROUTE_ADMIN = 1 << 5,   /* ... and an OWNER or ADMIN of it */
    ROUTE_FILTERS = 1 << 6, /* the filterable fields of the {resource}'s schema are query
                             * parameters too (catalog.h) */
    /* ROUTE_KEY only: honours Idempotency-Key (idempotency.h) */
    ROUTE_IDEMPOTENT = 1 << 7,
};

/* One endpoint. A table of them is the application's (handlers/routes.c), handed to the
 * worker (worker.h); the worker checks caller, scope and query against it before the
 * handler runs. */
struct route {
    const char *method;
    const char *pattern; /* "/v1/teams/{team_id}/api-keys"; {name} captures one segment, and
                          * {resource} only the name of a resource of the catalog */
    handler_fn handler;
    unsigned flags;
    enum scope_access access; /* what an API key needs on the {resource} of the path, or
                               * SCOPE_NONE */
    const char *const *query; /* allowed query parameters, NULL-terminated, or NULL */
};

enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

/* Finds the route for method and path among n routes (skipping ROUTE_TEST routes unless
 * with_test). On ROUTER_FOUND sets *route, copies the captured segments into
 * req->path_buf/params and sets req->resource for a {resource} capture. On
 * ROUTER_METHOD_NOT_ALLOWED writes the methods of the path
 * ("GET, POST") into allow (allow_len bytes). Cannot fail otherwise. */
enum router_result router_match(const struct route *table, size_t n, bool with_test,
                                struct request *req, const struct route **route, char *allow,
                                size_t allow_len);

/* Checks that every query parameter of req is one the route allows (its list, and with
 * ROUTE_FILTERS the filterable fields of req->resource). Returns 0, or -1 with err set to
 * unknown_parameter naming the first stranger. */
int router_check_query(const struct route *route, const struct request *req, struct app_error *err);

#endif
