/* schema.c: a JSON Schema validator for the keywords our schemas use, nothing more. No C
 * validator is packaged in Debian; this one is tested against the official test suite for
 * every keyword it accepts, and refuses schemas with any other keyword at load time. */
#include "schema.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DOCS    64
#define MAX_DETAILS 25
#define MAX_DEPTH   64 /* nested validations: bounds $ref cycles */

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
static const char *const formats[] = {"date", "date-time", "email", NULL};

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
    json_object_foreach(map, k, v)
    {
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

    if (depth > MAX_DEPTH) {
        snprintf(err, SCHEMA_ERR_LEN, "nested too deeply at %.60s", where);
        return -1;
    }
    if (json_is_boolean(s))
        return 0;
    if (!json_is_object(s)) {
        snprintf(err, SCHEMA_ERR_LEN, "%.60s: a schema must be an object or a boolean", where);
        return -1;
    }
    json_object_foreach(s, k, v)
    {
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
            json_array_foreach(v, i, t)
            {
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
            json_array_foreach(v, i, r)
            {
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

/* ---- formats ---- */

static bool digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

static int days_in(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return d[m - 1] + (m == 2 && leap);
}

bool schema_format_date(const char *s)
{
    int y, m, d;

    return strlen(s) == 10 && digits(s, 4, &y) && s[4] == '-' && digits(s + 5, 2, &m) &&
           s[7] == '-' && digits(s + 8, 2, &d) && m >= 1 && m <= 12 && d >= 1 && d <= days_in(y, m);
}

bool schema_format_date_time(const char *s)
{
    int h, mi, sec, oh = 0, om = 0, sign = 0, utc;
    const char *p = s + 11;

    if (strlen(s) < 20 || (s[10] != 'T' && s[10] != 't'))
        return false;
    {
        char date[11];

        memcpy(date, s, 10);
        date[10] = '\0';
        if (!schema_format_date(date))
            return false;
    }
    if (!digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi) || p[5] != ':' ||
        !digits(p + 6, 2, &sec))
        return false;
    p += 8;
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9')
            return false;
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        p += 6;
    } else {
        return false;
    }
    if (*p || h > 23 || mi > 59 || sec > 60)
        return false;
    /* A leap second is only ever 23:59:60 UTC. */
    utc = ((h * 60 + mi - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
    return sec < 60 || utc == 23 * 60 + 59;
}

static bool atext(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool hostname(const char *s, size_t n)
{
    size_t label = 0;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-';
}

/* RFC 5321 mailbox: dot-atom or quoted local part, then a host name or an address literal. */
bool schema_format_email(const char *s)
{
    const char *at = strrchr(s, '@'), *p;
    size_t dlen;

    if (at == NULL || at == s)
        return false;
    if (s[0] == '"') {
        for (p = s + 1; p < at - 1; p++) {
            if (*p == '\\' && p + 1 < at - 1)
                p++;
            else if (*p == '"' || (unsigned char)*p < 0x20)
                return false;
        }
        if (at - s < 2 || at[-1] != '"')
            return false;
    } else {
        for (p = s; p < at; p++) {
            if (*p == '.') {
                if (p == s || p + 1 == at || p[1] == '.')
                    return false;
            } else if (!atext(*p)) {
                return false;
            }
        }
    }
    at++;
    dlen = strlen(at);
    if (dlen > 2 && at[0] == '[' && at[dlen - 1] == ']') {
        char lit[64];
        unsigned char buf[16];

        if (dlen - 2 >= sizeof lit)
            return false;
        memcpy(lit, at + 1, dlen - 2);
        lit[dlen - 2] = '\0';
        if (strncmp(lit, "IPv6:", 5) == 0)
            return inet_pton(AF_INET6, lit + 5, buf) == 1;
        return inet_pton(AF_INET, lit, buf) == 1;
    }
    return hostname(at, dlen);
}

/* ---- validation ---- */

struct vctx {
    const struct schema_set *set;
    struct app_error *err;
    int details;
    int depth;
};

static void fail(struct vctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct vctx *c, const char *path, const char *fmt, ...)
{
    char msg[160];
    va_list ap;

    if (c->err == NULL || c->details >= MAX_DETAILS)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    error_detail(c->err, path, msg);
    c->details++;
}

bool schema_json_equal(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!schema_json_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        }
        return true;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *v;

        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_foreach(a, k, v)
        {
            json_t *w = json_object_get(b, k);

            if (w == NULL || !schema_json_equal(v, w))
                return false;
        }
        return true;
    }
    return json_equal(a, b);
}

static bool is_integer(json_t *v)
{
    double d;

    if (json_is_integer(v))
        return true;
    if (!json_is_real(v))
        return false;
    d = json_real_value(v);
    return isfinite(d) && floor(d) == d;
}

static bool type_is(json_t *v, const char *t)
{
    switch (t[0]) {
    case 'n':
        return strcmp(t, "null") == 0 ? json_is_null(v) : json_is_number(v);
    case 'b':
        return json_is_boolean(v);
    case 'o':
        return json_is_object(v);
    case 'a':
        return json_is_array(v);
    case 's':
        return json_is_string(v);
    case 'i':
        return is_integer(v);
    default:
        return false;
    }
}

static const char *type_word(const char *t)
{
    return strcmp(t, "object") == 0 || strcmp(t, "array") == 0 || strcmp(t, "integer") == 0
               ? (t[0] == 'o'   ? "an object"
                  : t[0] == 'a' ? "an array"
                                : "an integer")
           : strcmp(t, "null") == 0    ? "null"
           : strcmp(t, "boolean") == 0 ? "a boolean"
           : strcmp(t, "number") == 0  ? "a number"
                                       : "a string";
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

static void join(char *out, size_t len, const char *path, const char *key, long index)
{
    if (key)
        snprintf(out, len, "%s%s%s", path, path[0] ? "." : "", key);
    else
        snprintf(out, len, "%s[%ld]", path, index);
}

static bool v_node(struct vctx *c, json_t *doc, json_t *s, json_t *inst, const char *path);

static bool v_number(struct vctx *c, json_t *s, json_t *inst, const char *path)
{
    static const struct {
        const char *kw;
        int sign; /* the instance must be >= (1), > (2), <= (-1), < (-2) the bound */
    } bounds[] = {
        {"minimum", 1}, {"exclusiveMinimum", 2}, {"maximum", -1}, {"exclusiveMaximum", -2}};
    bool ok = true;
    double x = json_number_value(inst);

    for (size_t i = 0; i < 4; i++) {
        json_t *b = json_object_get(s, bounds[i].kw);
        double lim;
        bool good;

        if (b == NULL)
            continue;
        lim = json_number_value(b);
        if (json_is_integer(inst) && json_is_integer(b)) {
            json_int_t xi = json_integer_value(inst), li = json_integer_value(b);

            good = bounds[i].sign == 1    ? xi >= li
                   : bounds[i].sign == 2  ? xi > li
                   : bounds[i].sign == -1 ? xi <= li
                                          : xi < li;
        } else {
            good = bounds[i].sign == 1    ? x >= lim
                   : bounds[i].sign == 2  ? x > lim
                   : bounds[i].sign == -1 ? x <= lim
                                          : x < lim;
        }
        if (!good) {
            ok = false;
            fail(c, path, "must be %s %.15g",
                 bounds[i].sign == 1    ? ">="
                 : bounds[i].sign == 2  ? ">"
                 : bounds[i].sign == -1 ? "<="
                                        : "<",
                 lim);
        }
    }
    return ok;
}

static bool v_object(struct vctx *c, json_t *doc, json_t *s, json_t *inst, const char *path)
{
    json_t *props = json_object_get(s, "properties"),
           *addl = json_object_get(s, "additionalProperties");
    json_t *req = json_object_get(s, "required"), *v, *r;
    const char *k;
    char sub[512];
    size_t i;
    bool ok = true;

    json_array_foreach(req, i, r)
    {
        if (json_object_get(inst, json_string_value(r)) == NULL) {
            join(sub, sizeof sub, path, json_string_value(r), 0);
            fail(c, sub, "is required");
            ok = false;
        }
    }
    json_object_foreach(inst, k, v)
    {
        json_t *ps = props ? json_object_get(props, k) : NULL;

        join(sub, sizeof sub, path, k, 0);
        if (ps) {
            ok &= v_node(c, doc, ps, v, sub);
        } else if (json_is_false(addl)) {
            fail(c, sub, "is not a known field");
            ok = false;
        } else if (json_is_object(addl)) {
            ok &= v_node(c, doc, addl, v, sub);
        }
    }
    return ok;
}

static bool v_node(struct vctx *c, json_t *doc, json_t *s, json_t *inst, const char *path)
{
    json_t *kw;
    bool ok = true;

    if (json_is_boolean(s)) {
        if (json_is_false(s))
            fail(c, path, "is not allowed");
        return json_is_true(s);
    }
    if (++c->depth > MAX_DEPTH) {
        c->depth--;
        fail(c, path, "is nested too deeply");
        return false;
    }
    if ((kw = json_object_get(s, "$ref")) != NULL) {
        json_t *tdoc = doc, *target = schema_resolve(c->set, doc, json_string_value(kw), &tdoc);

        ok = target ? v_node(c, tdoc, target, inst, path) : false;
    }
    if ((kw = json_object_get(s, "type")) != NULL) {
        bool match = false;

        if (json_is_string(kw)) {
            match = type_is(inst, json_string_value(kw));
            if (!match)
                fail(c, path, "must be %s", type_word(json_string_value(kw)));
        } else {
            size_t i;
            json_t *t;

            json_array_foreach(kw, i, t) match |= type_is(inst, json_string_value(t));
            if (!match)
                fail(c, path, "has the wrong type");
        }
        if (!match) {
            c->depth--;
            return false; /* the other keywords would only repeat the complaint */
        }
    }
    if ((kw = json_object_get(s, "enum")) != NULL) {
        bool found = false;
        size_t i;
        json_t *e;

        json_array_foreach(kw, i, e) found |= schema_json_equal(e, inst);
        if (!found) {
            char list[160] = "";
            size_t used = 0;

            json_array_foreach(kw, i, e)
            {
                if (i >= 8 || !json_is_string(e))
                    break;
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                         json_string_value(e));
                if (used >= sizeof list)
                    break;
            }
            if (json_array_size(kw) <= 8 && list[0])
                fail(c, path, "must be one of: %s", list);
            else
                fail(c, path, "is not one of the allowed values");
            ok = false;
        }
    }
    if ((kw = json_object_get(s, "const")) != NULL && !schema_json_equal(kw, inst)) {
        fail(c, path, "must be the constant value");
        ok = false;
    }
    if (json_is_string(inst)) {
        size_t len = utf8_chars(json_string_value(inst), json_string_length(inst));
        const char *f;

        if ((kw = json_object_get(s, "minLength")) && (json_int_t)len < json_integer_value(kw)) {
            fail(c, path, "must be at least %lld characters", (long long)json_integer_value(kw));
            ok = false;
        }
        if ((kw = json_object_get(s, "maxLength")) && (json_int_t)len > json_integer_value(kw)) {
            fail(c, path, "must be at most %lld characters", (long long)json_integer_value(kw));
            ok = false;
        }
        if ((kw = json_object_get(s, "format")) && (f = json_string_value(kw)) != NULL) {
            const char *v = json_string_value(inst);
            bool good = strlen(v) == json_string_length(inst) &&
                        (strcmp(f, "date") == 0        ? schema_format_date(v)
                         : strcmp(f, "date-time") == 0 ? schema_format_date_time(v)
                                                       : schema_format_email(v));

            if (!good) {
                fail(c, path, "must be %s",
                     strcmp(f, "date") == 0        ? "a date (YYYY-MM-DD)"
                     : strcmp(f, "date-time") == 0 ? "an RFC 3339 date-time"
                                                   : "an email address");
                ok = false;
            }
        }
    } else if (json_is_number(inst)) {
        ok &= v_number(c, s, inst, path);
    } else if (json_is_object(inst)) {
        ok &= v_object(c, doc, s, inst, path);
    } else if (json_is_array(inst)) {
        size_t n = json_array_size(inst), i;
        json_t *e;
        char sub[512];

        if ((kw = json_object_get(s, "minItems")) && (json_int_t)n < json_integer_value(kw)) {
            fail(c, path, "must have at least %lld items", (long long)json_integer_value(kw));
            ok = false;
        }
        if ((kw = json_object_get(s, "maxItems")) && (json_int_t)n > json_integer_value(kw)) {
            fail(c, path, "must have at most %lld items", (long long)json_integer_value(kw));
            ok = false;
        }
        if ((kw = json_object_get(s, "items")) != NULL) {
            json_array_foreach(inst, i, e)
            {
                join(sub, sizeof sub, path, NULL, (long)i);
                ok &= v_node(c, doc, kw, e, sub);
            }
        }
    }
    c->depth--;
    return ok;
}

bool schema_validate(const struct schema_set *set, json_t *doc, json_t *schema, json_t *instance,
                     const char *path, struct app_error *err)
{
    struct vctx c = {set, err, 0, 0};

    return v_node(&c, doc, schema, instance, path ? path : "");
}

static json_t *coerce(const struct schema_set *set, json_t *doc, json_t *s, json_t *inst, int depth)
{
    json_t *kw, *t;

    if (depth > MAX_DEPTH || !json_is_object(s))
        return NULL;
    if ((kw = json_object_get(s, "$ref")) != NULL) {
        json_t *tdoc = doc, *target = schema_resolve(set, doc, json_string_value(kw), &tdoc);
        json_t *r = target ? coerce(set, tdoc, target, inst, depth + 1) : NULL;

        if (r)
            return r;
    }
    t = json_object_get(s, "type");
    if (json_is_real(inst) && json_is_string(t) && strcmp(json_string_value(t), "integer") == 0)
        return json_integer((json_int_t)json_real_value(inst));
    if (json_is_object(inst)) {
        json_t *props = json_object_get(s, "properties"),
               *addl = json_object_get(s, "additionalProperties");
        const char *k;
        json_t *v;

        json_object_foreach(inst, k, v)
        {
            json_t *ps = props ? json_object_get(props, k) : NULL;
            json_t *r = coerce(set, doc, ps ? ps : addl, v, depth + 1);

            if (r)
                json_object_set_new(inst, k, r);
        }
    } else if (json_is_array(inst) && (kw = json_object_get(s, "items")) != NULL) {
        size_t i;
        json_t *v;

        json_array_foreach(inst, i, v)
        {
            json_t *r = coerce(set, doc, kw, v, depth + 1);

            if (r)
                json_array_set_new(inst, i, r);
        }
    }
    return NULL;
}

void schema_coerce_integers(const struct schema_set *set, json_t *doc, json_t *schema,
                            json_t *instance)
{
    json_decref(coerce(set, doc, schema, instance, 0)); /* a bare top-level number: nothing */
}
