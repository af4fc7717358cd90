/* catalog.h: the resources of the API, read from the JSON Schemas in LOOPED_SCHEMA_DIR, and
 * the scopes they define (api.md §4). Loaded once at start-up; read-only afterwards. */
#ifndef LOOPED_CATALOG_H
#define LOOPED_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "jsonw.h"
#include "schema.h"

#define CATALOG_MAX    32 /* scopes are two bits per resource in a uint64_t */
#define CATALOG_FIELDS 16

/* One resource: a schema file with "x-resource". Strings are borrowed from the schema. */
struct resource {
    const char *name; /* "invoices": the path segment, scope prefix and collection */
    const char *app;  /* "billing" */
    const char *title;
    const char *description;
    const char *id_prefix; /* "inv": ids are "inv_" + 20 base62 characters */
    json_t *schema;        /* the document (the schema of one object) */
    const char *filterable[CATALOG_FIELDS];
    size_t nfilterable;
    const char *readonly[CATALOG_FIELDS];
    size_t nreadonly;
    const char *sum_field; /* a field computed as x-sum, or NULL */
    json_t *sum;           /* {"of": "lines", "multiply": ["quantity", "unit_price"]} */
};

/* The x-sum field of doc: over the items of its array "of", the sum of the products of their
 * "multiply" fields (a missing one counts 0). Returns 0, or -1 when that overflows a
 * json_int_t. r must have a sum_field. Cannot fail otherwise. */
int catalog_sum(const struct resource *r, const json_t *doc, json_int_t *total);

/* Loads and checks every schema of dir and builds the catalog. Returns 0, or -1 with one
 * line in err (SCHEMA_ERR_LEN bytes). Call before any thread starts. */
int catalog_load(const char *dir, char *err);

/* Releases the catalog; the resources must not be used afterwards. */
void catalog_free(void);

/* The resources, ordered by app then name; *n is set to their number. */
const struct resource *catalog_resources(size_t *n);

/* The resource called name, or NULL. */
const struct resource *catalog_find(const char *name);

/* The schema set the resources were read from (for $ref resolution). */
const struct schema_set *catalog_schemas(void);

/* The schema of one top-level field of r (with $ref resolved), or NULL. */
json_t *catalog_field_schema(const struct resource *r, const char *field);

/* Scopes are bits of a uint64_t, two per resource in catalog order: bit 2i is "read" of
 * resource i, bit 2i + 1 its "write". */
enum scope_access { SCOPE_NONE = 0, SCOPE_READ, SCOPE_WRITE };
#define SCOPE_WRITE_BITS 0xAAAAAAAAAAAAAAAAULL /* the write bit of every resource */

/* The bit of access (SCOPE_READ or SCOPE_WRITE) to r, a resource of the catalog. */
uint64_t catalog_scope_bit(const struct resource *r, enum scope_access access);

/* Parses "invoices:read" / "invoices:write" into a scope bit. Returns 0 or -1 (unknown). */
int catalog_scope_parse(const char *scope, uint64_t *bit);

/* The scope strings of a bit set, as a JSON array in catalog order (read before write):
 * written to w, or as a new array. */
void catalog_scopes_write(struct jsonw *w, uint64_t scopes);
json_t *catalog_scopes_json(uint64_t scopes);

/* GET /v1/scopes: {"data": [{"scope", "resource", "app", "access", "description"}]}. */
json_t *catalog_json(void);

/* Walks instance along r's schema and appends {"field", "resource", "id"} to out for every
 * value of a property marked "x-references". */
void catalog_references(const struct resource *r, json_t *instance, json_t *out);

#endif
