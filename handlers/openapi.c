/* openapi.c: the OpenAPI 3.1 document: the hand-written parts (schemas/openapi/base.json) plus
 * the paths and schemas of every resource of the catalog, built once at start-up. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fcgi/catalog.h"
#include "../fcgi/jsonw.h"

/* The document as text, dumped once at start-up: a request copies its 84 KB (94,000
 * instructions under callgrind) instead of walking the tree again (9.3 M). */
static char *openapi_text;
static size_t openapi_len;

/* Rewrites $refs of a schema node for its new home in components.schemas:
 * "defs.json#/$defs/x" -> "#/components/schemas/x", "#/$defs/x" -> ".../<resource>.x". */
static void rewrite_refs(json_t *node, const char *resource, const char *self)
{
    const char *k;
    json_t *v;
    size_t i;

    if (json_is_array(node)) {
        json_array_foreach (node, i, v)
            rewrite_refs(v, resource, self);
        return;
    }
    if (!json_is_object(node))
        return;
    json_object_foreach (node, k, v) {
        if (strcmp(k, "$ref") == 0 && json_is_string(v)) {
            const char *ref = json_string_value(v), *hash = strchr(ref, '#');
            char out[256];

            if (strcmp(ref, "#") == 0)
                snprintf(out, sizeof out, "#/components/schemas/%s", self);
            else if (hash && strncmp(hash, "#/$defs/", 8) == 0 && hash == ref)
                snprintf(out, sizeof out, "#/components/schemas/%s.%s", resource, hash + 8);
            else if (hash && strncmp(hash, "#/$defs/", 8) == 0)
                snprintf(out, sizeof out, "#/components/schemas/%s", hash + 8);
            else
                continue;
            json_object_set_new(node, k, json_string(out));
        } else {
            rewrite_refs(v, resource, self);
        }
    }
}

static json_t *ref(const char *kind, const char *name)
{
    char buf[160];

    snprintf(buf, sizeof buf, "#/components/%s/%s", kind, name);
    return json_pack("{s:s}", "$ref", buf);
}

/* "Time entry" -> "TimeEntry". */
static void component_name(const char *title, char *out, size_t len)
{
    size_t o = 0;
    bool up = true;

    for (; *title && o + 1 < len; title++) {
        if (*title == ' ' || *title == '_') {
            up = true;
            continue;
        }
        out[o++] = up && *title >= 'a' && *title <= 'z' ? (char)(*title - 32) : *title;
        up = false;
    }
    out[o] = '\0';
}

/* The error responses an operation declares, plus "default" for anything else. */
static json_t *responses(const char *codes, json_t *ok_status_and_body)
{
    static const struct {
        const char *code, *name;
    } map[] = {{"400", "BadRequest"},
               {"401", "Unauthorized"},
               {"403", "Forbidden"},
               {"404", "NotFound"},
               {"413", "PayloadTooLarge"},
               {"415", "UnsupportedMediaType"},
               {"422", "UnprocessableContent"},
               {"429", "TooManyRequests"},
               {"500", "InternalError"},
               {"503", "Unavailable"}};
    json_t *r = ok_status_and_body;

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strstr(codes, map[i].code))
            json_object_set_new(r, map[i].code, ref("responses", map[i].name));
    }
    json_object_set_new(r, "default", ref("responses", "Error"));
    return r;
}

/* A success to an API key: the headers every such answer may carry. */
static json_t *ok_response(const char *desc, json_t *schema, bool location)
{
    json_t *headers =
        json_pack("{s:o, s:o, s:o, s:o, s:o}", "X-Request-Id", ref("headers", "X-Request-Id"),
                  "Looped-Key-Expires-At", ref("headers", "Looped-Key-Expires-At"),
                  "RateLimit-Limit", ref("headers", "RateLimit-Limit"), "RateLimit-Remaining",
                  ref("headers", "RateLimit-Remaining"), "RateLimit-Reset",
                  ref("headers", "RateLimit-Reset"));

    if (location)
        json_object_set_new(headers, "Location", ref("headers", "Location"));
    if (schema == NULL)
        return json_pack("{s:s, s:o}", "description", desc, "headers", headers);
    return json_pack("{s:s, s:o, s:{s:{s:o}}}", "description", desc, "headers", headers, "content",
                     "application/json", "schema", schema);
}

/* The merge-patch form (RFC 7396) of an object schema: every property optional, null removes
 * an optional one (not a required one: the result would be invalid), and a nested object is
 * itself a merge patch, so that {"address": {"line2": null}} removes line2 alone. Arrays are
 * replaced whole, so their items keep their schema. r: leave out its read-only fields (the top
 * level), or NULL. */
static json_t *patch_of(const struct resource *r, json_t *obj)
{
    json_t *props = json_object(), *p, *required = json_object_get(obj, "required"), *out;
    const char *k, *desc = json_string_value(json_object_get(obj, "description"));

    json_object_foreach (json_object_get(obj, "properties"), k, p) {
        bool is_required = false, readonly = false;
        size_t i;
        json_t *q, *v;

        for (i = 0; r && i < r->nreadonly; i++)
            readonly |= strcmp(r->readonly[i], k) == 0;
        if (readonly)
            continue;
        json_array_foreach (required, i, q)
            is_required |= strcmp(json_string_value(q), k) == 0;
        v = json_is_object(json_object_get(p, "properties")) ? patch_of(NULL, p)
                                                             : json_deep_copy(p);
        json_object_set_new(
            props, k, is_required ? v : json_pack("{s:[o, {s:s}]}", "anyOf", v, "type", "null"));
    }
    out = json_pack("{s:s, s:b, s:o}", "type", "object", "additionalProperties", 0, "properties",
                    props);
    if (desc)
        json_object_set_new(out, "description", json_string(desc));
    return out;
}

/* PATCH bodies are JSON merge patches; the server validates the merged result against the
 * full schema. */
static json_t *patch_schema(const struct resource *r, json_t *full)
{
    json_t *s = patch_of(r, full);

    json_object_set_new(s, "description",
                        json_string("A JSON merge patch (RFC 7396): only the fields to change. "
                                    "null removes an optional field, also inside a nested object "
                                    "({\"address\": {\"line2\": null}} removes line2 alone); "
                                    "an array is replaced whole. The result must be valid."));
    return s;
}

/* A request body: application/json, and for a PATCH also application/merge-patch+json (the
 * same merge patch under its own media type). */
static json_t *body(json_t *schema, json_t *examples, bool merge_patch)
{
    json_t *media = json_pack("{s:o}", "schema", schema), *content;

    if (json_is_array(examples) && json_array_size(examples) > 0)
        json_object_set(media, "example", json_array_get(examples, 0));
    content = json_pack("{s:O}", "application/json", media);
    if (merge_patch)
        json_object_set(content, "application/merge-patch+json", media);
    json_decref(media);
    return json_pack("{s:b, s:o}", "required", 1, "content", content);
}

/* The request example as the server answers it, with the read-only fields it adds (an id of
 * the resource's prefix, the timestamps, the computed sum): the response schema requires them.
 * Returns a new reference, or NULL for no example. */
static json_t *response_example(const struct resource *r, json_t *examples)
{
    json_t *ex = json_deep_copy(json_array_get(examples, 0));

    for (size_t i = 0; ex && i < r->nreadonly; i++) {
        const char *k = r->readonly[i];
        const char *fmt = json_string_value(json_object_get(catalog_field_schema(r, k), "format"));
        json_int_t total;
        char id[64];

        if (json_object_get(ex, k))
            continue;
        if (strcmp(k, "id") == 0) {
            snprintf(id, sizeof id, "%s_7Hq2Nc9Wd4Lx1Vb8Kz3R", r->id_prefix);
            json_object_set_new(ex, k, json_string(id));
        } else if (fmt && strcmp(fmt, "date-time") == 0) {
            json_object_set_new(ex, k, json_string("2026-11-29T17:19:48Z"));
        } else if (r->sum_field && strcmp(k, r->sum_field) == 0 &&
                   catalog_sum(r, ex, &total) == 0) {
            json_object_set_new(ex, k, json_integer(total));
        }
    }
    return ex;
}

/* POST /v1/{resource}: idempotent with an Idempotency-Key (api.md §6.6), hence its header, the
 * Idempotent-Replayed of a replay and the 409 of a request still in progress. */
static json_t *create_operation(const struct resource *r, const char *opid, const char *summary,
                                json_t *sec, const char *name, const char *input, json_t *examples)
{
    json_t *created = ok_response("Created.", ref("schemas", name), true), *res;

    json_object_set_new(json_object_get(created, "headers"), "Idempotent-Replayed",
                        ref("headers", "Idempotent-Replayed"));
    res = responses("400 401 403 413 415 422 429 500 503", json_pack("{s:o}", "201", created));
    json_object_set_new(res, "409", ref("responses", "IdempotencyInProgress"));
    return json_pack("{s:s, s:[s], s:s, s:O, s:[o], s:o, s:o}", "operationId", opid, "tags",
                     r->name, "summary", summary, "security", sec, "parameters",
                     ref("parameters", "Idempotency-Key"), "requestBody",
                     body(ref("schemas", input), examples, false), "responses", res);
}

static void add_resource(json_t *doc, const struct resource *r)
{
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    json_t *paths = json_object_get(doc, "paths"), *full, *defs, *d, *params, *ops, *sec;
    json_t *examples = json_object_get(r->schema, "examples");
    char name[64], plural[64], patch[80], list[80], input[80], item[160], coll[160], summary[160];
    char opid[96];
    const char *k;

    component_name(r->title, name, sizeof name);
    component_name(r->name, plural, sizeof plural);
    snprintf(patch, sizeof patch, "%sPatch", name);
    snprintf(list, sizeof list, "%sList", name);
    snprintf(input, sizeof input, "%sInput", name);
    full = json_deep_copy(r->schema);
    defs = json_object_get(full, "$defs");
    json_object_foreach (defs, k, d) {
        char dn[128];
        json_t *c = json_deep_copy(d);

        snprintf(dn, sizeof dn, "%s.%s", r->name, k);
        rewrite_refs(c, r->name, name);
        json_object_set_new(schemas, dn, c);
    }
    json_object_del(full, "$defs");
    json_object_del(full, "$schema");
    rewrite_refs(full, r->name, name);
    json_object_set_new(schemas, patch, patch_schema(r, full));
    /* Requests use the schema as written; responses always carry the server's fields. */
    json_object_set_new(schemas, input, full);
    full = json_deep_copy(full);
    for (size_t i = 0; i < r->nreadonly; i++)
        json_array_append_new(json_object_get(full, "required"), json_string(r->readonly[i]));
    if ((d = response_example(r, examples)) != NULL)
        json_object_set_new(full, "examples", json_pack("[o]", d));
    json_object_set_new(schemas, list,
                        json_pack("{s:s, s:[s,s,s], s:b, s:{s:{s:s, s:o}, s:{s:s}, s:{s:[s,s]}}}",
                                  "type", "object", "required", "data", "has_more", "next_cursor",
                                  "additionalProperties", 0, "properties", "data", "type", "array",
                                  "items", ref("schemas", name), "has_more", "type", "boolean",
                                  "next_cursor", "type", "string", "null"));

    sec = json_pack("[{s:[]}]", "ApiKey");
    params = json_pack("[o, o]", ref("parameters", "limit"), ref("parameters", "cursor"));
    for (size_t i = 0; i < r->nfilterable; i++) {
        json_t *fs = json_deep_copy(catalog_field_schema(r, r->filterable[i]));

        rewrite_refs(fs, r->name, name);
        json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:o}", "name", r->filterable[i],
                                                "in", "query", "description",
                                                "Only objects with this value.", "schema", fs));
    }
    snprintf(coll, sizeof coll, "/v1/%s", r->name);
    snprintf(item, sizeof item, "/v1/%s/{id}", r->name);
    ops = json_object();
    snprintf(summary, sizeof summary, "List %s", r->name);
    snprintf(opid, sizeof opid, "list%s", plural);
    json_object_set_new(
        ops, "get",
        json_pack(
            "{s:s, s:[s], s:s, s:s, s:O, s:o, s:o}", "operationId", opid, "tags", r->name,
            "summary", summary, "description",
            "Newest first; equality filters on the fields listed as parameters.", "security", sec,
            "parameters", params, "responses",
            responses("400 401 403 429 500 503",
                      json_pack("{s:o}", "200",
                                ok_response("A page of objects.", ref("schemas", list), false)))));
    snprintf(summary, sizeof summary, "Create %s", r->name);
    snprintf(opid, sizeof opid, "create%s", name);
    json_object_set_new(ops, "post",
                        create_operation(r, opid, summary, sec, name, input, examples));
    json_object_set_new(paths, coll, ops);

    ops = json_pack("{s:[o]}", "parameters", ref("parameters", "id"));
    snprintf(summary, sizeof summary, "Get %s", r->name);
    snprintf(opid, sizeof opid, "get%s", name);
    json_object_set_new(
        ops, "get",
        json_pack("{s:s, s:[s], s:s, s:O, s:o}", "operationId", opid, "tags", r->name, "summary",
                  summary, "security", sec, "responses",
                  responses("400 401 403 404 429 500 503",
                            json_pack("{s:o}", "200",
                                      ok_response("The object.", ref("schemas", name), false)))));
    snprintf(summary, sizeof summary, "Update %s", r->name);
    snprintf(opid, sizeof opid, "update%s", name);
    json_object_set_new(ops, "patch",
                        json_pack("{s:s, s:[s], s:s, s:O, s:o, s:o}", "operationId", opid, "tags",
                                  r->name, "summary", summary, "security", sec, "requestBody",
                                  body(ref("schemas", patch), NULL, true), "responses",
                                  responses("400 401 403 404 413 415 422 429 500 503",
                                            json_pack("{s:o}", "200",
                                                      ok_response("The changed object.",
                                                                  ref("schemas", name), false)))));
    snprintf(summary, sizeof summary, "Delete %s", r->name);
    snprintf(opid, sizeof opid, "delete%s", name);
    json_object_set_new(
        ops, "delete",
        json_pack("{s:s, s:[s], s:s, s:O, s:o}", "operationId", opid, "tags", r->name, "summary",
                  summary, "security", sec, "responses",
                  responses("400 401 403 404 429 500 503",
                            json_pack("{s:o}", "204", ok_response("Deleted.", NULL, false)))));
    json_object_set_new(paths, item, ops);
    json_object_set_new(schemas, name, full);
    json_array_append_new(json_object_get(doc, "tags"),
                          json_pack("{s:s, s:s}", "name", r->name, "description",
                                    r->description ? r->description : r->title));
    json_decref(sec);
}

/* One tag group per app, in catalog order. */
static void add_tag_groups(json_t *doc, const struct resource *res, size_t n)
{
    json_t *groups = json_object_get(doc, "x-tagGroups");

    for (size_t i = 0; i < n; i++) {
        json_t *g = NULL, *e;
        size_t j;

        json_array_foreach (groups, j, e) {
            if (strcmp(json_string_value(json_object_get(e, "name")), res[i].app) == 0)
                g = e;
        }
        if (g == NULL) {
            g = json_pack("{s:s, s:[]}", "name", res[i].app, "tags");
            /* Apps first, then the hand-written groups. */
            json_array_insert_new(groups, i == 0 ? 0 : json_array_size(groups) - 2, g);
        }
        json_array_append_new(json_object_get(g, "tags"), json_string(res[i].name));
    }
}

int openapi_build(const char *schema_dir, char *err)
{
    char path[4096];
    json_error_t je;
    const struct resource *res;
    const struct schema_set *set = catalog_schemas();
    json_t *doc, *schemas;
    struct jsonw w = {0};
    size_t n;

    snprintf(path, sizeof path, "%s/openapi/base.json", schema_dir);
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        snprintf(err, SCHEMA_ERR_LEN, "%.200s:%d: %.40s", path, je.line, je.text);
        return -1;
    }
    schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    /* Shared definitions (files without x-resource) become components of their own name. */
    for (size_t i = 0; set && i < schema_set_count(set); i++) {
        json_t *file = schema_set_doc(set, i, NULL), *d;
        const char *k;

        if (json_object_get(file, "x-resource"))
            continue;
        json_object_foreach (json_object_get(file, "$defs"), k, d) {
            json_t *c = json_deep_copy(d);

            rewrite_refs(c, "", k);
            json_object_set_new(schemas, k, c);
        }
    }
    res = catalog_resources(&n);
    for (size_t i = 0; i < n; i++)
        add_resource(doc, &res[i]);
    add_tag_groups(doc, res, n);
    jsonw_json(&w, doc);
    json_decref(doc);
    openapi_free();
    openapi_text = jsonw_finish(&w, &openapi_len);
    if (openapi_text == NULL) {
        snprintf(err, SCHEMA_ERR_LEN, "%.200s: not written (out of memory)", path);
        return -1;
    }
    return 0;
}

void openapi_free(void)
{
    free(openapi_text);
    openapi_text = NULL;
    openapi_len = 0;
}

int handle_openapi(struct request *req, struct response *res, struct app_error *err)
{
    if (openapi_text == NULL || (res->text = malloc(openapi_len)) == NULL)
        return error_set(err, ERR_INTERNAL, NULL);
    memcpy(res->text, openapi_text, openapi_len);
    res->text_len = openapi_len;
    res->status = 200;
    http_header_add(res, "Access-Control-Allow-Origin", "*");
    return 0;
}
