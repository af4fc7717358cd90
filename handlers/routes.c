/* routes.c: every endpoint of the API: method, path, handler, caller, scope, query. */
#include "handlers.h"

#define KEYS_ADMIN (ROUTE_USER | ROUTE_TEAM | ROUTE_ADMIN)

static const char *const keys_list_params[] = {"status", "q", "limit", "cursor", NULL};
static const char *const audit_params[] = {"key_id", "actor", "action", "since",
                                           "until",  "limit", "cursor", NULL};
static const char *const sleep_params[] = {"ms", NULL};
static const char *const hello_params[] = {"bytes", NULL};

const struct route routes[] = {
    {"GET", "/v1/health", handle_health, 0, NULL, NULL},
    {"GET", "/v1/me", handle_me, ROUTE_USER, NULL, NULL},
    {"GET", "/v1/scopes", handle_scopes, 0, NULL, NULL},
    {"GET", "/v1/key", handle_key_self, ROUTE_KEY, NULL, NULL},
    {"GET", "/openapi.json", handle_openapi, 0, NULL, NULL},
    {"GET", "/v1/openapi.json", handle_openapi, 0, NULL, NULL},

    {"POST", "/v1/teams/{team_id}/api-keys", handle_keys_create, KEYS_ADMIN | ROUTE_BODY, NULL,
     NULL},
    {"GET", "/v1/teams/{team_id}/api-keys", handle_keys_list, KEYS_ADMIN, NULL, keys_list_params},
    {"GET", "/v1/teams/{team_id}/api-keys/{key_id}", handle_keys_get, KEYS_ADMIN, NULL, NULL},
    {"PATCH", "/v1/teams/{team_id}/api-keys/{key_id}", handle_keys_update, KEYS_ADMIN | ROUTE_BODY,
     NULL, NULL},
    {"DELETE", "/v1/teams/{team_id}/api-keys/{key_id}", handle_keys_delete, KEYS_ADMIN, NULL, NULL},
    {"POST", "/v1/teams/{team_id}/api-keys/{key_id}/revoke", handle_keys_revoke, KEYS_ADMIN, NULL,
     NULL},
    {"GET", "/v1/teams/{team_id}/audit", handle_audit_list, KEYS_ADMIN, NULL, audit_params},

    /* The resources of the catalog (schemas/): {resource} matches only their names. */
    {"GET", "/v1/{resource}", handle_resource_list, ROUTE_KEY | ROUTE_OWN_QUERY, ":read", NULL},
    {"POST", "/v1/{resource}", handle_resource_create, ROUTE_KEY | ROUTE_BODY, ":write", NULL},
    {"GET", "/v1/{resource}/{id}", handle_resource_get, ROUTE_KEY, ":read", NULL},
    {"PATCH", "/v1/{resource}/{id}", handle_resource_update, ROUTE_KEY | ROUTE_BODY, ":write",
     NULL},
    {"DELETE", "/v1/{resource}/{id}", handle_resource_delete, ROUTE_KEY, ":write", NULL},

    /* Test builds only (LOOPED_TEST_ROUTES=1): the benchmark's baseline and a slow request. */
    {"GET", "/v1/_test/hello", handle_test_hello, ROUTE_TEST, NULL, hello_params},
    {"GET", "/v1/_test/sleep", handle_test_sleep, ROUTE_TEST, NULL, sleep_params},
};

const size_t routes_count = sizeof routes / sizeof routes[0];
