/* schema.c: a JSON Schema validator for the keywords our schemas use, nothing more. No C
 * validator is packaged in Debian; this one is tested against the official test suite for
 * every keyword it accepts (schema_set.c refuses schemas with any other keyword at load time). */
#include "schema.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_DETAILS 25

/* ---- formats ---- */

/* date and date-time are RFC 3339's, read by the one parser the API uses for times. */
static bool format_date_time(const char *s)
{
    int64_t ms;

    return util_time_parse(s, &ms) == 0;
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
        json_object_foreach (a, k, v) {
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

    json_array_foreach (req, i, r) {
        if (json_object_get(inst, json_string_value(r)) == NULL) {
            join(sub, sizeof sub, path, json_string_value(r), 0);
            fail(c, sub, "is required");
            ok = false;
        }
    }
    json_object_foreach (inst, k, v) {
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
    if (++c->depth > SCHEMA_MAX_DEPTH) {
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

            json_array_foreach (kw, i, t)
                match |= type_is(inst, json_string_value(t));
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

        json_array_foreach (kw, i, e)
            found |= schema_json_equal(e, inst);
        if (!found) {
            char list[160] = "";
            size_t used = 0;

            json_array_foreach (kw, i, e) {
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
                        (strcmp(f, "date") == 0        ? util_date_valid(v)
                         : strcmp(f, "date-time") == 0 ? format_date_time(v)
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
            json_array_foreach (inst, i, e) {
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

    if (depth > SCHEMA_MAX_DEPTH || !json_is_object(s))
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

        json_object_foreach (inst, k, v) {
            json_t *ps = props ? json_object_get(props, k) : NULL;
            json_t *r = coerce(set, doc, ps ? ps : addl, v, depth + 1);

            if (r)
                json_object_set_new(inst, k, r);
        }
    } else if (json_is_array(inst) && (kw = json_object_get(s, "items")) != NULL) {
        size_t i;
        json_t *v;

        json_array_foreach (inst, i, v) {
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
