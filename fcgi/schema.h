/* schema.h: the JSON Schema subset Looped's resource schemas use: loading with a strict
 * keyword check, and validation with precise details (field path + reason). */
#ifndef LOOPED_SCHEMA_H
#define LOOPED_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define SCHEMA_ERR_LEN   256
#define SCHEMA_MAX_DEPTH 64 /* nested schemas checked or validated: bounds $ref cycles */

/* The schema documents of one directory, each by file name ("invoices.json"). */
struct schema_set;

/* Checks that doc only uses supported keywords (anything starting with "x-" is an
 * annotation) with values of the right type, and that every $ref resolves within doc or, if
 * set is not NULL, within set's documents. Returns 0, or -1 with one line in err. */
int schema_check(const struct schema_set *set, json_t *doc, char *err);

/* Loads every *.json of dir and checks it (schema_check). Returns 0 and *out (the caller
 * owns it: schema_set_free), or -1 with one line naming the file in err. */
int schema_set_load(const char *dir, struct schema_set **out, char *err);
void schema_set_free(struct schema_set *set);

/* The documents of a set, in file-name order; *n is their number. Borrowed references. */
json_t *schema_set_doc(const struct schema_set *set, size_t i, const char **name);
size_t schema_set_count(const struct schema_set *set);

/* Resolves a $ref ("#/a/b" within doc, "file.json#/a" within set). Borrowed, or NULL. On
 * success *doc_out is the document the target lives in (for its own "#" refs). */
json_t *schema_resolve(const struct schema_set *set, json_t *doc, const char *ref,
                       json_t **doc_out);

/* Validates instance against schema (a node of doc). Returns true if valid. With err not
 * NULL, each failure adds a detail {"field": "lines[0].quantity", "message": "must be >= 1"}
 * (at most 25), prefixed by path (may be ""). */
bool schema_validate(const struct schema_set *set, json_t *doc, json_t *schema, json_t *instance,
                     const char *path, struct app_error *err);

/* Rewrites, in place, every number of instance that schema types as "integer" (such as 1999.0,
 * which JSON Schema counts as an integer) into a JSON integer, so that what is stored and
 * returned is what the schema promises. Call on a valid instance. */
void schema_coerce_integers(const struct schema_set *set, json_t *doc, json_t *schema,
                            json_t *instance);

/* JSON equality as JSON Schema defines it: 1 and 1.0 are equal, true and 1 are not. */
bool schema_json_equal(json_t *a, json_t *b);

/* The formats we assert. */
bool schema_format_email(const char *s);

#endif
