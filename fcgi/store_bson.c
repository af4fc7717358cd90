/* store_bson.c: BSON to JSON and back, and the small readers and appenders the queries use. */
#include <string.h>

#include "store_priv.h"
#include "util.h"

const char *store_utf8(const bson_t *doc, const char *key)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return "";
}

int64_t store_date(const bson_t *doc, const char *key)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it))
        return bson_iter_date_time(&it);
    return 0;
}

void store_append_date(bson_t *doc, const char *key, int64_t ms)
{
    if (ms)
        bson_append_date_time(doc, key, -1, ms);
    else
        bson_append_null(doc, key, -1);
}

/* Converts a JSON value (strings, numbers, booleans, null, arrays, objects) into doc[key]. */
void store_append_json(bson_t *doc, const char *key, json_t *v)
{
    bson_t sub;
    char idx[16];
    const char *k;
    size_t i;
    json_t *e;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        bson_append_document_begin(doc, key, -1, &sub);
        json_object_foreach (v, k, e)
            store_append_json(&sub, k, e);
        bson_append_document_end(doc, &sub);
        break;
    case JSON_ARRAY:
        bson_append_array_begin(doc, key, -1, &sub);
        json_array_foreach (v, i, e) {
            bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
            store_append_json(&sub, k, e);
        }
        bson_append_array_end(doc, &sub);
        break;
    case JSON_STRING:
        bson_append_utf8(doc, key, -1, json_string_value(v), (int)json_string_length(v));
        break;
    case JSON_INTEGER:
        bson_append_int64(doc, key, -1, json_integer_value(v));
        break;
    case JSON_REAL:
        bson_append_double(doc, key, -1, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        bson_append_bool(doc, key, -1, json_is_true(v));
        break;
    default:
        bson_append_null(doc, key, -1);
    }
}

/* Converts one BSON value to JSON: dates become RFC 3339 strings, ObjectIds hex strings. */
static json_t *bson_value_json(const bson_iter_t *it, int depth)
{
    bson_iter_t child;
    char buf[UTIL_TIME_LEN > 25 ? UTIL_TIME_LEN : 25];

    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);

        return json_stringn(s, len);
    }
    case BSON_TYPE_INT32:
        return json_integer(bson_iter_int32(it));
    case BSON_TYPE_INT64:
        return json_integer(bson_iter_int64(it));
    case BSON_TYPE_DOUBLE:
        return json_real(bson_iter_double(it));
    case BSON_TYPE_BOOL:
        return json_boolean(bson_iter_bool(it));
    case BSON_TYPE_DATE_TIME:
        return json_string(util_time_format(bson_iter_date_time(it), buf));
    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(it), buf);
        return json_string(buf);
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bool arr = bson_iter_type(it) == BSON_TYPE_ARRAY;
        json_t *out = arr ? json_array() : json_object();

        if (depth > 32 || !bson_iter_recurse(it, &child))
            return out;
        while (bson_iter_next(&child)) {
            json_t *v = bson_value_json(&child, depth + 1);

            if (arr)
                json_array_append_new(out, v);
            else
                json_object_set_new(out, bson_iter_key(&child), v);
        }
        return out;
    }
    default:
        return json_null();
    }
}

json_t *store_doc_json(const bson_t *doc)
{
    json_t *out = json_object();
    bson_iter_t it;

    if (out == NULL || !bson_iter_init(&it, doc))
        return out;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);

        if (strcmp(k, "team_id") == 0)
            continue; /* implied by the caller: never shown */
        json_object_set_new(out, strcmp(k, "_id") == 0 ? "id" : k, bson_value_json(&it, 0));
    }
    return out;
}

void store_append_contains(bson_t *doc, const char *key, const char *s)
{
    bson_t sub;
    char *re = bson_malloc(2 * strlen(s) + 1), *o = re;

    for (; *s; s++) {
        if (strchr("\\^$.|?*+()[]{}-/", *s))
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    bson_append_document_begin(doc, key, -1, &sub);
    BSON_APPEND_UTF8(&sub, "$regex", re);
    BSON_APPEND_UTF8(&sub, "$options", "i");
    bson_append_document_end(doc, &sub);
    bson_free(re);
}
