/* catalog.h: the resources of the API and the scopes they define (api.md §4). */
#ifndef LOOPED_CATALOG_H
#define LOOPED_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct resource {
    const char *name; /* "invoices": the path segment and the scope prefix */
    const char *app;  /* "billing" */
    const char *title;
};

#define CATALOG_MAX 32 /* scopes are two bits per resource in a uint64_t */

/* The resources, in catalog order; *n is set to their number. */
const struct resource *catalog_resources(size_t *n);

/* Parses "invoices:read" / "invoices:write" into a scope bit. Returns 0 or -1 (unknown). */
int catalog_scope_parse(const char *scope, uint64_t *bit);

/* The scope strings of a bit set, as a new JSON array in catalog order (read before write). */
json_t *catalog_scopes_json(uint64_t scopes);

/* True if the set grants scope bit `need`; a write scope implies the read scope of the same
 * resource. */
bool catalog_scopes_grant(uint64_t scopes, uint64_t need);

/* GET /v1/scopes: {"data": [{"scope", "resource", "app", "access", "description"}]}. */
json_t *catalog_json(void);

#endif
