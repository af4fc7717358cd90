/* routes.c: every endpoint of the API: method, path, handler, caller, scope, query. */
#include "handlers.h"

static const char *const sleep_params[] = {"ms", NULL};

const struct route routes[] = {
    {"GET", "/v1/health", handle_health, 0, NULL, NULL},
    {"GET", "/v1/me", handle_me, ROUTE_USER, NULL, NULL},
    /* Test builds only (LOOPED_TEST_ROUTES=1): the benchmark's baseline and a slow request. */
    {"GET", "/v1/_test/hello", handle_test_hello, ROUTE_TEST, NULL, NULL},
    {"GET", "/v1/_test/sleep", handle_test_sleep, ROUTE_TEST, NULL, sleep_params},
};

const size_t routes_count = sizeof routes / sizeof routes[0];
