/* router.c: segment-by-segment matching of paths against the route table. */
#include "router.h"

#include <string.h>

#include "catalog.h"

/* Matches path against pattern. Captures go into buf (a copy of path) as NUL-terminated
 * segments. A capture must be non-empty and made of [A-Za-z0-9._~-]: ids never need more,
 * and this keeps encoded slashes, dots-only segments and NULs out of the handlers. */
static bool pattern_match(const char *pattern, const char *path, char *buf, const char **params,
                          const struct resource **resource)
{
    size_t np = 0;
    const char *p = pattern, *s = path;
    char *b = buf;

    while (*p && *s) {
        if (*p == '{') {
            const char *start = s;
            const char *close = strchr(p, '}');

            if (close == NULL || np == HTTP_MAX_PARAMS)
                return false;
            while (*s && *s != '/') {
                char c = *s;

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '~' || c == '-'))
                    return false;
                s++;
            }
            if (s == start || (s - start <= 2 && start[0] == '.' && start[s - start - 1] == '.'))
                return false;
            if (strncmp(p, "{resource}", 10) == 0) {
                const struct resource *r;
                char name[64];

                if ((size_t)(s - start) >= sizeof name)
                    return false;
                memcpy(name, start, (size_t)(s - start));
                name[s - start] = '\0';
                if ((r = catalog_find(name)) == NULL)
                    return false;
                if (resource)
                    *resource = r;
            }
            if (buf) {
                memcpy(b, start, (size_t)(s - start));
                params[np] = b;
                b += s - start;
                *b++ = '\0';
            }
            np++;
            p = close + 1;
        } else {
            if (*p != *s)
                return false;
            p++;
            s++;
        }
    }
    return *p == '\0' && *s == '\0';
}

enum router_result router_match(const struct route *table, size_t n, bool with_test,
                                struct request *req, const struct route **route, char *allow,
                                size_t allow_len)
{
    size_t used = 0;
    bool path_known = false;

    if (allow_len)
        allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct route *r = &table[i];

        if ((r->flags & ROUTE_TEST) && !with_test)
            continue;
        if (strcmp(r->method, req->method) == 0) {
            if (pattern_match(r->pattern, req->path, req->path_buf, req->params, &req->resource)) {
                *route = r;
                return ROUTER_FOUND;
            }
        } else if (pattern_match(r->pattern, req->path, NULL, NULL, NULL)) {
            size_t ml = strlen(r->method);

            path_known = true;
            if (used + ml + 3 <= allow_len && strstr(allow, r->method) == NULL) {
                if (used) {
                    memcpy(allow + used, ", ", 2);
                    used += 2;
                }
                memcpy(allow + used, r->method, ml + 1);
                used += ml;
            }
        }
    }
    return path_known ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}

/* True if name is one of the route's query parameters. */
static bool query_known(const struct route *route, const struct request *req, const char *name)
{
    const struct resource *r = req->resource;

    for (const char *const *p = route->query; p && *p; p++) {
        if (strcmp(*p, name) == 0)
            return true;
    }
    if ((route->flags & ROUTE_FILTERS) && r) {
        for (size_t f = 0; f < r->nfilterable; f++) {
            if (strcmp(r->filterable[f], name) == 0)
                return true;
        }
    }
    return false;
}

int router_check_query(const struct route *route, const struct request *req, struct app_error *err)
{
    for (size_t i = 0; i < req->nquery; i++) {
        if (!query_known(route, req, req->query[i].name)) {
            error_set(err, ERR_UNKNOWN_PARAMETER, "Unknown query parameter \"%.64s\".",
                      req->query[i].name);
            error_detail(err, req->query[i].name, "unknown parameter");
            return -1;
        }
    }
    return 0;
}
