/* routes.c: every endpoint of the API: method, path, handler, caller, scope, query; and the
 * app (app.h) that hands them to the runtime. */
#include "handlers.h"

#include "../fcgi/app.h"
#include "../fcgi/metrics.h"

#define KEYS_ADMIN (ROUTE_USER | ROUTE_TEAM | ROUTE_ADMIN)

static const char *const keys_list_params[] = {
    "status", "q", "expiring_within_days", "unused_for_days", "limit", "cursor", NULL};
static const char *const audit_params[] = {"key_id", "actor", "action", "since",
                                           "until",  "limit", "cursor", NULL};
static const char *const usage_params[] = {"interval", "since", "until", NULL};
static const char *const page_params[] = {"limit", "cursor", NULL};
static const char *const sleep_params[] = {"ms", NULL};
static const char *const hello_params[] = {"bytes", NULL};

static const struct route routes[] = {
    {"GET", "/v1/health", handle_health, 0, SCOPE_NONE, NULL},
    {"GET", "/v1/me", handle_me, ROUTE_USER, SCOPE_NONE, NULL},
    {"GET", "/v1/scopes", handle_scopes, 0, SCOPE_NONE, NULL},
    {"GET", "/v1/key", handle_key_self, ROUTE_KEY, SCOPE_NONE, NULL},
    {"GET", "/openapi.json", handle_openapi, 0, SCOPE_NONE, NULL},
    {"GET", "/v1/openapi.json", handle_openapi, 0, SCOPE_NONE, NULL},
    /* To LOOPED_METRICS_ALLOW only; 404 to anyone else. */
    {"GET", "/metrics", handle_metrics, 0, SCOPE_NONE, NULL},

    {"POST", "/v1/teams/{team_id}/api-keys", handle_keys_create, KEYS_ADMIN | ROUTE_BODY,
     SCOPE_NONE, NULL},
    {"GET", "/v1/teams/{team_id}/api-keys", handle_keys_list, KEYS_ADMIN, SCOPE_NONE,
     keys_list_params},
    {"GET", "/v1/teams/{team_id}/api-keys/{key_id}", handle_keys_get, KEYS_ADMIN, SCOPE_NONE, NULL},
    {"PATCH", "/v1/teams/{team_id}/api-keys/{key_id}", handle_keys_update, KEYS_ADMIN | ROUTE_BODY,
     SCOPE_NONE, NULL},
    {"DELETE", "/v1/teams/{team_id}/api-keys/{key_id}", handle_keys_delete, KEYS_ADMIN, SCOPE_NONE,
     NULL},
    {"POST", "/v1/teams/{team_id}/api-keys/{key_id}/revoke", handle_keys_revoke, KEYS_ADMIN,
     SCOPE_NONE, NULL},
    /* The body is optional ({"grace_period_hours"}): the handler reads it when there is one. */
    {"POST", "/v1/teams/{team_id}/api-keys/{key_id}/rotate", handle_keys_rotate, KEYS_ADMIN,
     SCOPE_NONE, NULL},
    {"GET", "/v1/teams/{team_id}/api-keys/{key_id}/usage", handle_keys_usage, KEYS_ADMIN,
     SCOPE_NONE, usage_params},
    /* Secret scanners (no authentication); the body is read by the handler, after its rate
     * limit. */
    {"POST", "/v1/key-leaks", handle_key_leaks, 0, SCOPE_NONE, NULL},
    /* Admins read the team's key policy; the handler lets only owners change it. */
    {"GET", "/v1/teams/{team_id}/api-key-policy", handle_policy_get, KEYS_ADMIN, SCOPE_NONE, NULL},
    {"PATCH", "/v1/teams/{team_id}/api-key-policy", handle_policy_update, KEYS_ADMIN | ROUTE_BODY,
     SCOPE_NONE, NULL},
    {"GET", "/v1/teams/{team_id}/audit", handle_audit_list, KEYS_ADMIN, SCOPE_NONE, audit_params},

    /* The resources of the catalog (schemas/): {resource} matches only their names, and a
     * list also takes the fields its schema marks filterable. */
    {"GET", "/v1/{resource}", handle_resource_list, ROUTE_KEY | ROUTE_FILTERS, SCOPE_READ,
     page_params},
    {"POST", "/v1/{resource}", handle_resource_create, ROUTE_KEY | ROUTE_BODY | ROUTE_IDEMPOTENT,
     SCOPE_WRITE, NULL},
    {"GET", "/v1/{resource}/{id}", handle_resource_get, ROUTE_KEY, SCOPE_READ, NULL},
    {"PATCH", "/v1/{resource}/{id}", handle_resource_update, ROUTE_KEY | ROUTE_BODY, SCOPE_WRITE,
     NULL},
    {"DELETE", "/v1/{resource}/{id}", handle_resource_delete, ROUTE_KEY, SCOPE_WRITE, NULL},

    /* Test builds only (LOOPED_TEST_ROUTES=1): the benchmark's baseline and a slow request. */
    {"GET", "/v1/_test/hello", handle_test_hello, ROUTE_TEST, SCOPE_NONE, hello_params},
    {"GET", "/v1/_test/sleep", handle_test_sleep, ROUTE_TEST, SCOPE_NONE, sleep_params},
};

_Static_assert(sizeof routes / sizeof routes[0] <= METRICS_ROUTES_MAX,
               "every route is counted by its pattern (metrics.h)");

const struct app looped_app = {
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
    .init = openapi_build,
    .fini = openapi_free,
};
