/* resources.c: list, create, get, merge-patch and delete for every resource of the catalog
 * (api.md §4). The schema decides validation, filters, read-only fields, references and the
 * computed sum; nothing here names a resource. */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "../fcgi/auth.h"
#include "../fcgi/catalog.h"
#include "../fcgi/cursor.h"
#include "../fcgi/keys.h"
#include "../fcgi/store.h"
#include "../fcgi/util.h"
#include "../fcgi/worker.h"

/* The router matched {resource} against the catalog and kept what it found. */
static const struct resource *resource_of(const struct request *req)
{
    return req->resource;
}

static bool is_readonly(const struct resource *r, const char *field)
{
    for (size_t i = 0; i < r->nreadonly; i++) {
        if (strcmp(r->readonly[i], field) == 0)
            return true;
    }
    return false;
}

/* Input may not set what the server owns. */
static int reject_readonly(const struct resource *r, json_t *body, struct app_error *err)
{
    const char *k;
    json_t *v;

    if (!json_is_object(body)) {
        error_detail(err, "(body)", "must be a JSON object");
        return error_invalid(err, "request");
    }
    json_object_foreach (body, k, v) {
        if (is_readonly(r, k))
            error_detail(err, k, "is read-only");
    }
    return err->details ? error_invalid(err, "request") : 0;
}

/* Fills in "default" values of absent top-level fields (create only). */
static void apply_defaults(const struct resource *r, json_t *doc)
{
    json_t *props = json_object_get(r->schema, "properties"), *p, *def;
    const char *k;

    json_object_foreach (props, k, p) {
        if (json_object_get(doc, k) == NULL && (def = json_object_get(p, "default")) != NULL)
            json_object_set(doc, k, def);
    }
}

/* x-sum (catalog_sum), computed after validation, so every factor is a bounded integer. */
static int compute_sum(const struct resource *r, json_t *doc, struct app_error *err)
{
    json_int_t total;

    if (r->sum_field == NULL)
        return 0;
    if (catalog_sum(r, doc, &total) != 0) {
        error_detail(err, r->sum_field, "is too large");
        return error_invalid(err, "request");
    }
    json_object_set_new(doc, r->sum_field, json_integer(total));
    return 0;
}

/* Every reference must name an object of the same team. */
static int check_references(const struct request *req, const struct resource *r, json_t *doc,
                            struct app_error *err)
{
    json_t *refs = json_array(), *ref;
    size_t i;
    int ret = 0;

    catalog_references(r, doc, refs);
    json_array_foreach (refs, i, ref) {
        const char *target = json_string_value(json_object_get(ref, "resource"));
        int rc = store_doc_exists(req->ctx->store, target, req->key->team_id,
                                  json_string_value(json_object_get(ref, "id")), err);

        if (rc < 0) {
            ret = -1;
            break;
        }
        if (rc == 0) {
            char msg[96];

            snprintf(msg, sizeof msg, "does not name one of the team's %s", target);
            error_detail(err, json_string_value(json_object_get(ref, "field")), msg);
        }
    }
    json_decref(refs);
    if (ret == 0 && err->details)
        return error_set(err, ERR_UNKNOWN_REFERENCE,
                         "The request refers to objects that do "
                         "not exist: see details.");
    return ret;
}

/* Validation, references and computed fields: the steps create and patch share. */
static int prepare(const struct request *req, const struct resource *r, json_t *doc,
                   struct app_error *err)
{
    int rc;

    /* Validate without the server-owned fields, which the schema marks read-only. */
    for (size_t i = 0; i < r->nreadonly; i++)
        json_object_del(doc, r->readonly[i]);
    if (!schema_validate(catalog_schemas(), r->schema, r->schema, doc, "", err))
        return error_invalid(err, "request");
    schema_coerce_integers(catalog_schemas(), r->schema, r->schema, doc);
    if ((rc = check_references(req, r, doc, err)) != 0)
        return rc;
    return compute_sum(r, doc, err);
}

static void location(struct response *res, const struct resource *r, const char *id)
{
    char loc[160];

    snprintf(loc, sizeof loc, "/v1/%s/%s", r->name, id);
    http_header_add(res, "Location", loc);
}

int handle_resource_create(struct request *req, struct response *res, struct app_error *err)
{
    const struct resource *r = resource_of(req);
    json_t *doc = NULL;
    char id[48], prefix[24], now[UTIL_TIME_LEN];
    struct doc_times t;
    int ret = -1;

    if (reject_readonly(r, req->body, err) != 0)
        return -1;
    doc = json_deep_copy(req->body);
    apply_defaults(r, doc);
    if (prepare(req, r, doc, err) != 0)
        goto done;
    snprintf(prefix, sizeof prefix, "%s_", r->id_prefix);
    auth_id_generate(prefix, id, sizeof id);
    t.created_ms = t.updated_ms = util_now_ms();
    util_time_format(t.created_ms, now);
    json_object_set_new(doc, "id", json_string(id));
    json_object_set_new(doc, "created_at", json_string(now));
    json_object_set_new(doc, "updated_at", json_string(now));
    if (store_doc_insert(req->ctx->store, r->name, req->key->team_id, doc, &t, err) != 0)
        goto done;
    location(res, r, id);
    res->status = 201;
    res->body = json_incref(doc);
    ret = 0;
done:
    json_decref(doc);
    return ret;
}

int handle_resource_get(struct request *req, struct response *res, struct app_error *err)
{
    const struct resource *r = resource_of(req);

    res->body =
        store_doc_get(req->ctx->store, r->name, req->key->team_id, req->params[1], NULL, err);
    res->status = 200;
    return res->body ? 0 : -1;
}

/* RFC 7396 JSON merge patch of patch onto target (both objects). */
static void merge_patch(json_t *target, json_t *patch)
{
    const char *k;
    json_t *v;

    json_object_foreach (patch, k, v) {
        if (json_is_null(v)) {
            json_object_del(target, k);
        } else if (json_is_object(v)) {
            json_t *t = json_object_get(target, k);

            if (!json_is_object(t)) {
                t = json_object();
                json_object_set_new(target, k, t);
            }
            merge_patch(t, v);
        } else {
            json_object_set(target, k, v);
        }
    }
}

int handle_resource_update(struct request *req, struct response *res, struct app_error *err)
{
    const struct resource *r = resource_of(req);
    json_t *doc = NULL, *created;
    char now[UTIL_TIME_LEN];
    struct doc_times t;
    int rc, ret = -1;

    if (reject_readonly(r, req->body, err) != 0)
        return -1;
    doc = store_doc_get(req->ctx->store, r->name, req->key->team_id, req->params[1], &t, err);
    if (doc == NULL)
        return -1;
    created = json_incref(json_object_get(doc, "created_at"));
    merge_patch(doc, req->body);
    /* The result, not the patch, must satisfy the schema. */
    if (prepare(req, r, doc, err) != 0)
        goto done;
    json_object_set_new(doc, "id", json_string(req->params[1]));
    json_object_set(doc, "created_at", created);
    t.updated_ms = util_now_ms();
    json_object_set_new(doc, "updated_at", json_string(util_time_format(t.updated_ms, now)));
    rc = store_doc_replace(req->ctx->store, r->name, req->key->team_id, doc, &t, err);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        error_set(err, ERR_NOT_FOUND, NULL);
        goto done;
    }
    res->status = 200;
    res->body = json_incref(doc);
    ret = 0;
done:
    json_decref(created);
    json_decref(doc);
    return ret;
}

int handle_resource_delete(struct request *req, struct response *res, struct app_error *err)
{
    const struct resource *r = resource_of(req);
    int rc = store_doc_delete(req->ctx->store, r->name, req->key->team_id, req->params[1], err);

    if (rc < 0)
        return -1;
    if (rc == 1)
        return error_set(err, ERR_NOT_FOUND, NULL);
    res->status = 204;
    return 0;
}

/* A filter value from the query string, typed by the field's schema and validated by it. */
static json_t *filter_value(const struct resource *r, const char *field, const char *text,
                            struct app_error *err)
{
    json_t *s = catalog_field_schema(r, field), *v = NULL;
    const char *type = json_string_value(json_object_get(s, "type"));
    long long n;

    if (type && strcmp(type, "boolean") == 0) {
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
            v = json_boolean(text[0] == 't');
    } else if (type && strcmp(type, "integer") == 0) {
        if (util_strtonum(text, -(1LL << 53), 1LL << 53, &n) == 0)
            v = json_integer(n);
    } else {
        v = json_string(text); /* NULL for invalid UTF-8 */
    }
    if (v == NULL || !schema_validate(catalog_schemas(), r->schema, s, v, field, err)) {
        if (v == NULL)
            error_detail(err, field,
                         type && strcmp(type, "boolean") == 0   ? "must be true or false"
                         : type && strcmp(type, "integer") == 0 ? "must be a whole number"
                                                                : "is not valid UTF-8");
        json_decref(v);
        return NULL;
    }
    return v;
}

int handle_resource_list(struct request *req, struct response *res, struct app_error *err)
{
    const struct resource *r = resource_of(req);
    json_t *filters = json_object(), *rows = NULL;
    const char *cursor = http_query_get(req, "cursor");
    char after[64];
    int64_t after_at = 0;
    size_t limit;
    int ret = -1;

    /* The router let through only limit, cursor and the schema's filterable fields. */
    for (size_t i = 0; i < req->nquery; i++) {
        const char *name = req->query[i].name;
        json_t *v;

        if (strcmp(name, "limit") == 0 || strcmp(name, "cursor") == 0)
            continue;
        if ((v = filter_value(r, name, req->query[i].value, err)) == NULL) {
            error_invalid(err, "query");
            goto done;
        }
        json_object_set_new(filters, name, v);
    }
    if (cursor_limit(http_query_get(req, "limit"), &limit) != 0) {
        error_detail(err, "limit", "must be a whole number from 1 to 100");
        error_invalid(err, "query");
        goto done;
    }
    if (cursor &&
        cursor_decode(r->name, req->key->team_id, cursor, &after_at, after, sizeof after) != 0) {
        error_set(err, ERR_INVALID_CURSOR, NULL);
        goto done;
    }
    rows = store_doc_list(req->ctx->store, r->name, req->key->team_id, filters, after_at,
                          cursor ? after : NULL, limit + 1, err);
    if (rows == NULL)
        goto done;
    res->status = 200;
    res->body = cursor_page(rows, limit, r->name, req->key->team_id, "created_at", err);
    rows = NULL;
    ret = res->body ? 0 : -1;
done:
    json_decref(rows);
    json_decref(filters);
    return ret;
}
