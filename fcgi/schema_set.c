/* schema_set.c: the schema files of a directory, $ref resolution, and the load-time check that
 * refuses any keyword the validator (schema.c) does not implement. */
#include "schema.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DOCS 64

struct schema_set {
    size_t n;
    char *names[MAX_DOCS];
    json_t *docs[MAX_DOCS];
};

/* Keywords that change validation, and annotations that do not. */
static const char *const keywords[] = {
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "format",
    "$ref",
    "$defs",
    "definitions",
    "$schema",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    NULL,
};
static const char *const types[] = {"null",   "boolean", "object",  "array",
                                    "number", "string",  "integer", NULL};
static const char *const formats[] = {"date", "date-time", "email", NULL}; /* schema.c's */

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++) {
        if (strcmp(*list, s) == 0)
            return true;
    }
    return false;
}

/* ---- references ---- */

static json_t *pointer_get(json_t *doc, const char *ptr)
{
    char tok[256];

    if (*ptr == '\0')
        return doc;
    if (*ptr != '/')
        return NULL;
    while (*ptr == '/' && doc) {
        size_t n = 0;

        ptr++;
        while (*ptr && *ptr != '/') {
            char c = *ptr++;

            if (c == '~' && (*ptr == '0' || *ptr == '1'))
                c = *ptr++ == '0' ? '~' : '/';
            else if (c == '%' && ptr[0] && ptr[1]) {
                char hex[3] = {ptr[0], ptr[1], 0};
                char *end;
                long v = strtol(hex, &end, 16);

                if (*end)
                    return NULL;
                c = (char)v;
                ptr += 2;
            }
            if (n + 1 >= sizeof tok)
                return NULL;
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (json_is_object(doc)) {
            doc = json_object_get(doc, tok);
        } else if (json_is_array(doc)) {
            char *end;
            long i = strtol(tok, &end, 10);

            doc = (*end || n == 0 || i < 0) ? NULL : json_array_get(doc, (size_t)i);
        } else {
            doc = NULL;
        }
    }
    return doc;
}

json_t *schema_resolve(const struct schema_set *set, json_t *doc, const char *ref, json_t **doc_out)
{
    const char *hash = strchr(ref, '#');
    size_t flen = hash ? (size_t)(hash - ref) : strlen(ref);

    if (flen > 0) {
        /* Only sibling files of our own set: no network, no paths. */
        json_t *other = NULL;

        for (size_t i = 0; set && i < set->n; i++) {
            if (strlen(set->names[i]) == flen && strncmp(set->names[i], ref, flen) == 0)
                other = set->docs[i];
        }
        if (other == NULL)
            return NULL;
        doc = other;
    }
    if (doc_out)
        *doc_out = doc;
    return pointer_get(doc, hash ? hash + 1 : "");
}

/* ---- load-time check ---- */

static int check_node(const struct schema_set *set, json_t *doc, json_t *s, const char *where,
                      char *err, int depth);

static int check_map(const struct schema_set *set, json_t *doc, json_t *map, const char *kw,
                     char *err, int depth)
{
    const char *k;
    json_t *v;

    if (!json_is_object(map)) {
        snprintf(err, SCHEMA_ERR_LEN, "%s must be an object", kw);
        return -1;
    }
    json_object_foreach (map, k, v) {
        if (check_node(set, doc, v, k, err, depth + 1) != 0)
            return -1;
    }
    return 0;
}

static int check_node(const struct schema_set *set, json_t *doc, json_t *s, const char *where,
                      char *err, int depth)
{
    const char *k;
    json_t *v;

    if (depth > SCHEMA_MAX_DEPTH) {
        snprintf(err, SCHEMA_ERR_LEN, "nested too deeply at %.60s", where);
        return -1;
    }
    if (json_is_boolean(s))
        return 0;
    if (!json_is_object(s)) {
        snprintf(err, SCHEMA_ERR_LEN, "%.60s: a schema must be an object or a boolean", where);
        return -1;
    }
    json_object_foreach (s, k, v) {
        if (strncmp(k, "x-", 2) == 0)
            continue;
        if (!in_list(keywords, k)) {
            snprintf(err, SCHEMA_ERR_LEN, "%.60s: unsupported keyword \"%.40s\"", where, k);
            return -1;
        }
        if (strcmp(k, "properties") == 0 || strcmp(k, "$defs") == 0 ||
            strcmp(k, "definitions") == 0) {
            if (check_map(set, doc, v, k, err, depth) != 0)
                return -1;
        } else if (strcmp(k, "items") == 0 || strcmp(k, "additionalProperties") == 0) {
            /* items as an array (tuples) is not supported: only one schema for all items. */
            if (check_node(set, doc, v, k, err, depth + 1) != 0)
                return -1;
        } else if (strcmp(k, "type") == 0) {
            size_t i;
            json_t *t;

            if (json_is_string(v) && in_list(types, json_string_value(v)))
                continue;
            if (!json_is_array(v) || json_array_size(v) == 0)
                goto bad_value;
            json_array_foreach (v, i, t) {
                if (!json_is_string(t) || !in_list(types, json_string_value(t)))
                    goto bad_value;
            }
        } else if (strcmp(k, "enum") == 0) {
            if (!json_is_array(v))
                goto bad_value;
        } else if (strcmp(k, "required") == 0) {
            size_t i;
            json_t *r;

            if (!json_is_array(v))
                goto bad_value;
            json_array_foreach (v, i, r) {
                if (!json_is_string(r))
                    goto bad_value;
            }
        } else if (strcmp(k, "format") == 0) {
            if (!json_is_string(v) || !in_list(formats, json_string_value(v))) {
                snprintf(err, SCHEMA_ERR_LEN, "%.60s: unsupported format %.40s", where,
                         json_is_string(v) ? json_string_value(v) : "(not a string)");
                return -1;
            }
        } else if (strcmp(k, "$ref") == 0) {
            if (!json_is_string(v) ||
                schema_resolve(set, doc, json_string_value(v), NULL) == NULL) {
                snprintf(err, SCHEMA_ERR_LEN, "%.60s: $ref %.80s does not resolve", where,
                         json_is_string(v) ? json_string_value(v) : "(not a string)");
                return -1;
            }
        } else if (strncmp(k, "min", 3) == 0 || strncmp(k, "max", 3) == 0 ||
                   strncmp(k, "exclusive", 9) == 0) {
            if (!json_is_number(v))
                goto bad_value;
            if ((strstr(k, "Length") || strstr(k, "Items")) &&
                (!json_is_integer(v) || json_integer_value(v) < 0))
                goto bad_value;
        }
        continue;
    bad_value:
        snprintf(err, SCHEMA_ERR_LEN, "%.60s: bad value for \"%s\"", where, k);
        return -1;
    }
    return 0;
}

int schema_check(const struct schema_set *set, json_t *doc, char *err)
{
    return check_node(set, doc, doc, "(root)", err, 0);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int schema_set_load(const char *dir, struct schema_set **out, char *err)
{
    struct schema_set *set = calloc(1, sizeof *set);
    char *names[MAX_DOCS];
    size_t n = 0;
    struct dirent *de;
    DIR *d;

    *out = NULL;
    if (set == NULL) {
        snprintf(err, SCHEMA_ERR_LEN, "out of memory");
        return -1;
    }
    d = opendir(dir);
    if (d == NULL) {
        snprintf(err, SCHEMA_ERR_LEN, "LOOPED_SCHEMA_DIR: cannot open %.200s", dir);
        goto fail;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0 && de->d_name[0] != '.') {
            if (n == MAX_DOCS) {
                snprintf(err, SCHEMA_ERR_LEN, "LOOPED_SCHEMA_DIR: more than %d files", MAX_DOCS);
                closedir(d);
                goto fail_names;
            }
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof names[0], name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        json_error_t je;

        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        set->names[i] = names[i];
        set->docs[i] = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        set->n = i + 1;
        if (set->docs[i] == NULL) {
            snprintf(err, SCHEMA_ERR_LEN, "%.100s:%d: %.100s", names[i], je.line, je.text);
            goto fail;
        }
    }
    n = 0;
    for (size_t i = 0; i < set->n; i++) {
        char why[SCHEMA_ERR_LEN];

        if (schema_check(set, set->docs[i], why) != 0) {
            snprintf(err, SCHEMA_ERR_LEN, "%.60s: %s", set->names[i], why);
            goto fail;
        }
    }
    *out = set;
    return 0;
fail_names:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    n = 0;
fail:
    schema_set_free(set);
    return -1;
}

void schema_set_free(struct schema_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->names[i]);
        json_decref(set->docs[i]);
    }
    free(set);
}

size_t schema_set_count(const struct schema_set *set)
{
    return set->n;
}

json_t *schema_set_doc(const struct schema_set *set, size_t i, const char **name)
{
    if (name)
        *name = set->names[i];
    return set->docs[i];
}
