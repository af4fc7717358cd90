/* catalog.c: the resource catalog and scope bits. */
#include "catalog.h"

#include <stdio.h>
#include <string.h>

/* The order is part of the stored bit sets' meaning only within one process: keys store
 * scope strings, never bits. */
static const struct resource resources[] = {
    {"customers", "billing", "customers"}, {"products", "billing", "products"},
    {"invoices", "billing", "invoices"},   {"projects", "projects", "projects"},
    {"tasks", "projects", "tasks"},        {"time_entries", "time", "time entries"},
};

#define NRES (sizeof resources / sizeof resources[0])

const struct resource *catalog_resources(size_t *n)
{
    *n = NRES;
    return resources;
}

int catalog_scope_parse(const char *scope, uint64_t *bit)
{
    const char *colon = strchr(scope, ':');

    if (colon == NULL)
        return -1;
    for (size_t i = 0; i < NRES; i++) {
        size_t len = strlen(resources[i].name);

        if ((size_t)(colon - scope) != len || strncmp(scope, resources[i].name, len) != 0)
            continue;
        if (strcmp(colon + 1, "read") == 0)
            *bit = 1ULL << (2 * i);
        else if (strcmp(colon + 1, "write") == 0)
            *bit = 1ULL << (2 * i + 1);
        else
            return -1;
        return 0;
    }
    return -1;
}

json_t *catalog_scopes_json(uint64_t scopes)
{
    json_t *a = json_array();
    char buf[64];

    for (size_t i = 0; a && i < NRES; i++) {
        for (int w = 0; w < 2; w++) {
            if (scopes & (1ULL << (2 * i + w))) {
                snprintf(buf, sizeof buf, "%s:%s", resources[i].name, w ? "write" : "read");
                json_array_append_new(a, json_string(buf));
            }
        }
    }
    return a;
}

bool catalog_scopes_grant(uint64_t scopes, uint64_t need)
{
    /* Spread each write bit onto the read bit below it: write implies read. */
    uint64_t writes = scopes & 0xAAAAAAAAAAAAAAAAULL;

    return ((scopes | (writes >> 1)) & need) == need;
}

json_t *catalog_json(void)
{
    json_t *data = json_array();
    char scope[64], desc[128];

    for (size_t i = 0; data && i < NRES; i++) {
        for (int w = 0; w < 2; w++) {
            snprintf(scope, sizeof scope, "%s:%s", resources[i].name, w ? "write" : "read");
            snprintf(desc, sizeof desc,
                     w ? "Create, change and delete %s (includes read)." : "Read %s.",
                     resources[i].title);
            json_array_append_new(data,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s}", "scope", scope, "resource",
                                            resources[i].name, "app", resources[i].app, "access",
                                            w ? "write" : "read", "description", desc));
        }
    }
    return json_pack("{s:o}", "data", data);
}
