/* catalog.c: the resource catalog built from the schema files, and scope bits. */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

static struct schema_set *schemas;
static struct resource resources[CATALOG_MAX];
static size_t nres;

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Follows $ref until a schema without one (bounded). */
static json_t *deref(json_t *doc, json_t *s, json_t **doc_out)
{
    for (int i = 0; i < 8 && json_is_object(s) && json_object_get(s, "$ref"); i++)
        s = schema_resolve(schemas, doc, str(s, "$ref"), &doc);
    if (doc_out)
        *doc_out = doc;
    return s;
}

static bool flag(json_t *doc, json_t *prop, const char *key)
{
    /* Either on the property itself or on what it refers to. */
    return json_is_true(json_object_get(prop, key)) ||
           json_is_true(json_object_get(deref(doc, prop, NULL), key));
}

static int resource_cmp(const void *a, const void *b)
{
    const struct resource *x = a, *y = b;
    int c = strcmp(x->app, y->app);

    return c ? c : strcmp(x->name, y->name);
}

static int resource_build(json_t *doc, struct resource *r, char *err)
{
    json_t *props = json_object_get(doc, "properties"), *p;
    const char *k;

    memset(r, 0, sizeof *r);
    r->schema = doc;
    r->name = str(doc, "x-resource");
    r->app = str(doc, "x-app");
    r->id_prefix = str(doc, "x-id-prefix");
    r->title = str(doc, "title");
    r->description = str(doc, "description");
    if (!r->app || !r->id_prefix || !r->title || !json_is_object(props) ||
        strspn(r->name, "abcdefghijklmnopqrstuvwxyz_") != strlen(r->name) ||
        strcmp(str(doc, "type") ? str(doc, "type") : "", "object") != 0) {
        snprintf(err, SCHEMA_ERR_LEN,
                 "%.40s: a resource needs x-app, x-id-prefix, title, type object, properties "
                 "and a lowercase name",
                 r->name);
        return -1;
    }
    json_object_foreach (props, k, p) {
        if (flag(doc, p, "x-filterable") && r->nfilterable < CATALOG_FIELDS)
            r->filterable[r->nfilterable++] = k;
        if (flag(doc, p, "readOnly") && r->nreadonly < CATALOG_FIELDS)
            r->readonly[r->nreadonly++] = k;
        if (json_object_get(p, "x-sum")) {
            r->sum_field = k;
            r->sum = json_object_get(p, "x-sum");
        }
    }
    return 0;
}

int catalog_load(const char *dir, char *err)
{
    catalog_free();
    if (schema_set_load(dir, &schemas, err) != 0)
        return -1;
    for (size_t i = 0; i < schema_set_count(schemas); i++) {
        json_t *doc = schema_set_doc(schemas, i, NULL);

        if (!json_is_string(json_object_get(doc, "x-resource")))
            continue; /* a library of shared definitions */
        if (nres == CATALOG_MAX) {
            snprintf(err, SCHEMA_ERR_LEN, "more than %d resources", CATALOG_MAX);
            goto fail;
        }
        if (resource_build(doc, &resources[nres], err) != 0)
            goto fail;
        nres++;
    }
    qsort(resources, nres, sizeof resources[0], resource_cmp);
    return 0;
fail:
    catalog_free();
    return -1;
}

void catalog_free(void)
{
    schema_set_free(schemas);
    schemas = NULL;
    nres = 0;
}

const struct resource *catalog_resources(size_t *n)
{
    *n = nres;
    return resources;
}

const struct resource *catalog_find(const char *name)
{
    for (size_t i = 0; i < nres; i++) {
        if (strcmp(resources[i].name, name) == 0)
            return &resources[i];
    }
    return NULL;
}

const struct schema_set *catalog_schemas(void)
{
    return schemas;
}

json_t *catalog_field_schema(const struct resource *r, const char *field)
{
    json_t *p = json_object_get(json_object_get(r->schema, "properties"), field);

    return p ? deref(r->schema, p, NULL) : NULL;
}

int catalog_sum(const struct resource *r, const json_t *doc, json_int_t *total)
{
    json_t *items, *item, *factors = json_object_get(r->sum, "multiply"), *f;
    size_t i, j;

    *total = 0;
    items = json_object_get(doc, json_string_value(json_object_get(r->sum, "of")));
    json_array_foreach (items, i, item) {
        json_int_t product = 1;

        json_array_foreach (factors, j, f) {
            json_t *v = json_object_get(item, json_string_value(f));
            json_int_t x =
                json_is_integer(v) ? json_integer_value(v) : (json_int_t)json_number_value(v);

            if (__builtin_mul_overflow(product, x, &product))
                return -1;
        }
        if (__builtin_add_overflow(*total, product, total))
            return -1;
    }
    return 0;
}

uint64_t catalog_scope_bit(const struct resource *r, enum scope_access access)
{
    return 1ULL << (2 * (size_t)(r - resources) + (access == SCOPE_WRITE));
}

int catalog_scope_parse(const char *scope, uint64_t *bit)
{
    const char *colon = strchr(scope, ':');

    if (colon == NULL)
        return -1;
    for (size_t i = 0; i < nres; i++) {
        size_t len = strlen(resources[i].name);

        if ((size_t)(colon - scope) != len || strncmp(scope, resources[i].name, len) != 0)
            continue;
        if (strcmp(colon + 1, "read") == 0)
            *bit = catalog_scope_bit(&resources[i], SCOPE_READ);
        else if (strcmp(colon + 1, "write") == 0)
            *bit = catalog_scope_bit(&resources[i], SCOPE_WRITE);
        else
            return -1;
        return 0;
    }
    return -1;
}

void catalog_scopes_write(struct jsonw *w, uint64_t scopes)
{
    const char *sep = "";

    JSONW_LIT(w, "[");
    for (size_t i = 0; i < nres; i++) {
        for (int a = 0; a < 2; a++) {
            if (scopes & (1ULL << (2 * i + a))) {
                /* Resource names are [a-z_]+ (resource_build), so nothing needs escaping. */
                jsonw_raw(w, sep, strlen(sep));
                JSONW_LIT(w, "\"");
                jsonw_raw(w, resources[i].name, strlen(resources[i].name));
                if (a)
                    JSONW_LIT(w, ":write\"");
                else
                    JSONW_LIT(w, ":read\"");
                sep = ",";
            }
        }
    }
    JSONW_LIT(w, "]");
}

json_t *catalog_scopes_json(uint64_t scopes)
{
    struct jsonw w = {0};

    catalog_scopes_write(&w, scopes);
    return jsonw_to_json(&w);
}

json_t *catalog_json(void)
{
    json_t *data = json_array();
    char scope[64], desc[160];

    for (size_t i = 0; data && i < nres; i++) {
        for (int w = 0; w < 2; w++) {
            snprintf(scope, sizeof scope, "%s:%s", resources[i].name, w ? "write" : "read");
            snprintf(desc, sizeof desc,
                     w ? "Create, change and delete %s (includes read)." : "Read %s.",
                     resources[i].name);
            json_array_append_new(data,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s}", "scope", scope, "resource",
                                            resources[i].name, "app", resources[i].app, "access",
                                            w ? "write" : "read", "description", desc));
        }
    }
    return json_pack("{s:o}", "data", data);
}

static void refs_walk(json_t *doc, json_t *s, json_t *inst, const char *path, json_t *out,
                      int depth)
{
    const char *target, *k;
    json_t *v;
    char sub[512];

    if (depth > 16 || !json_is_object(s))
        return;
    target = str(s, "x-references");
    s = deref(doc, s, &doc);
    if (target && json_is_string(inst)) {
        json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "field", path, "resource", target,
                                             "id", json_string_value(inst)));
        return;
    }
    if (json_is_object(inst)) {
        json_t *props = json_object_get(s, "properties");

        json_object_foreach (inst, k, v) {
            snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", k);
            refs_walk(doc, json_object_get(props, k), v, sub, out, depth + 1);
        }
    } else if (json_is_array(inst)) {
        size_t i;

        json_array_foreach (inst, i, v) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            refs_walk(doc, json_object_get(s, "items"), v, sub, out, depth + 1);
        }
    }
}

void catalog_references(const struct resource *r, json_t *instance, json_t *out)
{
    refs_walk(r->schema, r->schema, instance, "", out, 0);
}
