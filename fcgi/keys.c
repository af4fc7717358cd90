/* keys.c: the API key object, its status and the validation of create and edit requests. */
#include "keys.h"

#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "util.h"

static const char *const status_names[] = {"active", "expired", "revoked"};
static const char *const permission_names[] = {"", "read_all", "write_all", "restricted"};

enum key_status keys_status(const struct api_key *k, int64_t now)
{
    if (k->revoked_at)
        return KEY_REVOKED;
    if (k->expires_at && k->expires_at <= now)
        return KEY_EXPIRED;
    return KEY_ACTIVE;
}

const char *keys_status_name(enum key_status s)
{
    return status_names[s];
}

int keys_status_parse(const char *s, enum key_status *out)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *out = (enum key_status)i;
            return 0;
        }
    }
    return -1;
}

const char *keys_permission_name(enum key_permission p)
{
    return p > PERM_NONE && p <= PERM_RESTRICTED ? permission_names[p] : "";
}

int keys_permission_parse(const char *s, enum key_permission *out)
{
    for (int i = PERM_READ_ALL; i <= PERM_RESTRICTED; i++) {
        if (strcmp(s, permission_names[i]) == 0) {
            *out = (enum key_permission)i;
            return 0;
        }
    }
    return -1;
}

json_t *keys_time_json(int64_t ms)
{
    char buf[UTIL_TIME_LEN];

    return ms ? json_string(util_time_format(ms, buf)) : json_null();
}

json_t *keys_rate_json(const struct key_rate *r)
{
    if (r->requests == 0)
        return json_null();
    return json_pack("{s:I, s:I}", "requests", (json_int_t)r->requests, "per_seconds",
                     (json_int_t)r->per_seconds);
}

json_t *keys_ips_json(const struct ipnet *ips, uint32_t n)
{
    json_t *a = json_array();
    char buf[IPNET_TEXT_MAX];

    for (uint32_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(ipnet_format(&ips[i], buf)));
    return a;
}

bool keys_ip_allowed(const struct api_key *k, const struct ipnet *client)
{
    return k->nips == 0 || ipnet_any(k->ips, k->nips, client);
}

static void write_limits(struct jsonw *w, const struct api_key *k)
{
    char buf[IPNET_TEXT_MAX];

    if (k->rate.requests) {
        snprintf(buf, sizeof buf, "%u", (unsigned)k->rate.requests);
        JSONW_LIT(w, ",\"rate_limit\":{\"requests\":");
        jsonw_raw(w, buf, strlen(buf));
        snprintf(buf, sizeof buf, "%u", (unsigned)k->rate.per_seconds);
        JSONW_LIT(w, ",\"per_seconds\":");
        jsonw_raw(w, buf, strlen(buf));
        JSONW_LIT(w, "}");
    } else {
        JSONW_LIT(w, ",\"rate_limit\":null");
    }
    JSONW_LIT(w, ",\"allowed_ips\":[");
    for (uint32_t i = 0; i < k->nips; i++) {
        if (i)
            JSONW_LIT(w, ",");
        jsonw_str(w, ipnet_format(&k->ips[i], buf));
    }
    JSONW_LIT(w, "]");
}

void keys_write(struct jsonw *w, const struct api_key *k, int64_t now)
{
    const char *status = keys_status_name(keys_status(k, now));
    const char *perm = keys_permission_name(k->permission);

    JSONW_LIT(w, "{\"id\":");
    jsonw_str(w, k->id);
    JSONW_LIT(w, ",\"name\":");
    jsonw_str(w, k->name);
    JSONW_LIT(w, ",\"permission\":\"");
    jsonw_raw(w, perm, strlen(perm));
    JSONW_LIT(w, "\",\"scopes\":");
    catalog_scopes_write(w, k->permission == PERM_RESTRICTED ? k->scopes : 0);
    JSONW_LIT(w, ",\"status\":\"");
    jsonw_raw(w, status, strlen(status));
    JSONW_LIT(w, "\",\"hint\":");
    jsonw_str(w, k->hint);
    JSONW_LIT(w, ",\"expires_at\":");
    jsonw_time(w, k->expires_at);
    JSONW_LIT(w, ",\"created_at\":");
    jsonw_time(w, k->created_at);
    JSONW_LIT(w, ",\"created_by\":");
    jsonw_str(w, k->created_by);
    JSONW_LIT(w, ",\"updated_at\":");
    jsonw_time(w, k->updated_at);
    JSONW_LIT(w, ",\"last_used_at\":");
    jsonw_time(w, k->last_used_at);
    JSONW_LIT(w, ",\"last_used_ip\":");
    jsonw_str_or_null(w, k->last_used_ip);
    JSONW_LIT(w, ",\"revoked_at\":");
    jsonw_time(w, k->revoked_at);
    JSONW_LIT(w, ",\"revoked_by\":");
    jsonw_str_or_null(w, k->revoked_by);
    write_limits(w, k);
    JSONW_LIT(w, ",\"rotated_from\":");
    jsonw_str_or_null(w, k->rotated_from);
    JSONW_LIT(w, ",\"rotated_to\":");
    jsonw_str_or_null(w, k->rotated_to);
    JSONW_LIT(w, "}");
}

json_t *keys_to_json(const struct api_key *k, int64_t now)
{
    struct jsonw w = {0};

    keys_write(&w, k, now);
    return jsonw_to_json(&w);
}

/* Counts UTF-8 code points (jansson has checked the encoding). */
static size_t utf8_len(const char *s, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

static int parse_name(json_t *v, struct key_input *in, struct app_error *err)
{
    const char *s, *end;
    size_t n;

    if (!json_is_string(v)) {
        error_detail(err, "name", "must be a string");
        return -1;
    }
    s = json_string_value(v);
    end = s + json_string_length(v);
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    n = (size_t)(end - s);
    if (n == 0) {
        error_detail(err, "name", "must not be empty");
        return -1;
    }
    if (utf8_len(s, n) > 100 || n >= KEY_NAME_MAX) {
        error_detail(err, "name", "must be at most 100 characters");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            error_detail(err, "name", "must not contain control characters");
            return -1;
        }
    }
    memcpy(in->name, s, n);
    in->name[n] = '\0';
    return 0;
}

static int parse_scopes(json_t *v, struct key_input *in, struct app_error *err)
{
    size_t i;
    json_t *s;
    char field[32];
    int bad = 0;

    if (!json_is_array(v)) {
        error_detail(err, "scopes", "must be an array of scope strings");
        return -1;
    }
    if (json_array_size(v) > 2 * CATALOG_MAX) {
        error_detail(err, "scopes", "has too many entries");
        return -1;
    }
    in->scopes = 0;
    json_array_foreach (v, i, s) {
        uint64_t bit;

        snprintf(field, sizeof field, "scopes[%zu]", i);
        if (!json_is_string(s)) {
            error_detail(err, field, "must be a string");
            bad = -1;
        } else if (catalog_scope_parse(json_string_value(s), &bit) != 0) {
            error_detail(err, field, "is not a known scope (see GET /v1/scopes)");
            bad = -1;
        } else {
            in->scopes |= bit;
        }
    }
    return bad;
}

/* A whole number in [lo, hi] from JSON (no fraction, no string). */
static bool json_uint_in(json_t *v, json_int_t lo, json_int_t hi, uint32_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return false;
    *out = (uint32_t)json_integer_value(v);
    return true;
}

int keys_rate_parse(json_t *v, const char *field, struct key_rate *out, struct app_error *err)
{
    char name[96];
    const char *k;
    json_t *f;
    int bad = 0;

    memset(out, 0, sizeof *out);
    if (json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        error_detail(err, field, "must be null or {\"requests\", \"per_seconds\"}");
        return -1;
    }
    json_object_foreach (v, k, f) {
        if (strcmp(k, "requests") != 0 && strcmp(k, "per_seconds") != 0) {
            snprintf(name, sizeof name, "%s.%.64s", field, k);
            error_detail(err, name, "is not a known field");
            bad = -1;
        }
    }
    if (!json_uint_in(json_object_get(v, "requests"), 1, 1000000, &out->requests)) {
        snprintf(name, sizeof name, "%s.requests", field);
        error_detail(err, name, "must be an integer from 1 to 1000000");
        bad = -1;
    }
    if (!json_uint_in(json_object_get(v, "per_seconds"), 1, 86400, &out->per_seconds)) {
        snprintf(name, sizeof name, "%s.per_seconds", field);
        error_detail(err, name, "must be an integer from 1 to 86400");
        bad = -1;
    }
    if (bad)
        memset(out, 0, sizeof *out);
    return bad;
}

/* allowed_ips: up to KEY_IPS_MAX addresses or CIDR blocks, kept normalised and without
 * duplicates (in the order given). */
static int parse_ips(json_t *v, struct key_input *in, struct app_error *err)
{
    size_t i;
    json_t *s;
    char field[32];
    int bad = 0;

    in->nips = 0;
    if (!json_is_array(v)) {
        error_detail(err, "allowed_ips", "must be an array of IP addresses or CIDR blocks");
        return -1;
    }
    if (json_array_size(v) > KEY_IPS_MAX) {
        error_detail(err, "allowed_ips", "must have at most 100 entries");
        return -1;
    }
    json_array_foreach (v, i, s) {
        struct ipnet n;
        const char *why = "must be a string";
        bool dup = false;

        snprintf(field, sizeof field, "allowed_ips[%zu]", i);
        if (!json_is_string(s) || ipnet_parse(json_string_value(s), &n, &why) != 0) {
            error_detail(err, field, why);
            bad = -1;
            continue;
        }
        for (uint32_t j = 0; j < in->nips && !dup; j++)
            dup = memcmp(&in->ips[j], &n, sizeof n) == 0;
        if (!dup)
            in->ips[in->nips++] = n;
    }
    return bad;
}

int keys_input_parse(json_t *body, bool create, int64_t now, struct key_input *in,
                     struct app_error *err)
{
    const char *field;
    json_t *v;

    memset(in, 0, sizeof *in);
    if (!json_is_object(body)) {
        error_detail(err, "(body)", "must be a JSON object");
        goto fail;
    }
    json_object_foreach (body, field, v) {
        if (strcmp(field, "name") == 0) {
            in->has_name = parse_name(v, in, err) == 0;
        } else if (strcmp(field, "permission") == 0) {
            if (!json_is_string(v) ||
                keys_permission_parse(json_string_value(v), &in->permission) != 0)
                error_detail(err, "permission", "must be read_all, write_all or restricted");
            else
                in->has_permission = true;
        } else if (strcmp(field, "scopes") == 0) {
            in->has_scopes = parse_scopes(v, in, err) == 0;
        } else if (strcmp(field, "expires_at") == 0) {
            if (json_is_null(v)) {
                in->expires_at = 0;
                in->has_expires = true;
            } else if (!json_is_string(v) ||
                       util_time_parse(json_string_value(v), &in->expires_at) != 0) {
                error_detail(err, "expires_at", "must be an RFC 3339 date-time or null");
            } else if (in->expires_at <= now) {
                error_detail(err, "expires_at", "must be in the future");
            } else {
                in->has_expires = true;
            }
        } else if (strcmp(field, "rate_limit") == 0) {
            in->has_rate = keys_rate_parse(v, "rate_limit", &in->rate, err) == 0;
        } else if (strcmp(field, "allowed_ips") == 0) {
            in->has_ips = parse_ips(v, in, err) == 0;
        } else {
            /* Not echoed verbatim beyond a sane length: it may be anything. */
            char name[72];

            snprintf(name, sizeof name, "%.64s", field);
            error_detail(err, name, "is not a known field");
        }
    }
    if (create && !in->has_name && !json_object_get(body, "name"))
        error_detail(err, "name", "is required");
    if (create && !in->has_permission && !json_object_get(body, "permission"))
        error_detail(err, "permission", "is required");
    if (err->details == NULL)
        return 0;
fail:
    return error_invalid(err, "request");
}

void keys_change(json_t *changes, const char *field, json_t *old, json_t *new)
{
    if (changes == NULL || json_equal(old, new)) {
        json_decref(old);
        json_decref(new);
        return;
    }
    json_object_set_new(changes, field, json_pack("{s:o, s:o}", "old", old, "new", new));
}

int keys_apply(struct api_key *k, const struct key_input *in, int64_t now, json_t *changes,
               struct app_error *err)
{
    enum key_permission perm = in->has_permission ? in->permission : k->permission;
    uint64_t scopes = in->has_scopes ? in->scopes : k->scopes;

    /* Moving away from restricted drops the scopes; given scopes must fit the permission. */
    if (perm != PERM_RESTRICTED) {
        if (in->has_scopes && in->scopes) {
            error_detail(err, "scopes", "must be empty unless permission is restricted");
            return error_invalid(err, "request");
        }
        scopes = 0;
    } else if (scopes == 0) {
        error_detail(err, "scopes", "restricted keys need at least one scope");
        return error_invalid(err, "request");
    }
    if (in->has_name) {
        keys_change(changes, "name", json_string(k->name), json_string(in->name));
        memcpy(k->name, in->name, sizeof k->name);
    }
    keys_change(changes, "permission", json_string(keys_permission_name(k->permission)),
                json_string(keys_permission_name(perm)));
    keys_change(changes, "scopes", catalog_scopes_json(k->scopes), catalog_scopes_json(scopes));
    k->permission = perm;
    k->scopes = scopes;
    /* A rotated key's grace period may be moved, not ended never: it must stop some day. */
    if (in->has_expires && in->expires_at == 0 && k->rotated_to[0]) {
        error_detail(err, "expires_at",
                     "cannot be null for a rotated key: its grace period ends then");
        return error_invalid(err, "request");
    }
    if (in->has_expires) {
        keys_change(changes, "expires_at", keys_time_json(k->expires_at),
                    keys_time_json(in->expires_at));
        k->expires_at = in->expires_at;
    }
    if (in->has_rate) {
        keys_change(changes, "rate_limit", keys_rate_json(&k->rate), keys_rate_json(&in->rate));
        k->rate = in->rate;
    }
    if (in->has_ips) {
        keys_change(changes, "allowed_ips", keys_ips_json(k->ips, k->nips),
                    keys_ips_json(in->ips, in->nips));
        memcpy(k->ips, in->ips, in->nips * sizeof *in->ips);
        k->nips = in->nips;
    }
    k->updated_at = now;
    return 0;
}

int keys_rotate_parse(json_t *body, int *hours, struct app_error *err)
{
    const char *field;
    json_t *v;
    uint32_t h;

    *hours = KEYS_GRACE_DEFAULT_HOURS;
    if (body == NULL)
        return 0;
    if (!json_is_object(body)) {
        error_detail(err, "(body)", "must be a JSON object");
        return error_invalid(err, "request");
    }
    json_object_foreach (body, field, v) {
        if (strcmp(field, "grace_period_hours") == 0) {
            if (json_uint_in(v, 0, KEYS_GRACE_MAX_HOURS, &h))
                *hours = (int)h;
            else
                error_detail(err, "grace_period_hours", "must be an integer from 0 to 720");
        } else {
            char name[72];

            snprintf(name, sizeof name, "%.64s", field);
            error_detail(err, name, "is not a known field");
        }
    }
    return err->details ? error_invalid(err, "request") : 0;
}

void keys_rotate_copy(const struct api_key *old, struct api_key *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->team_id, old->team_id, sizeof out->team_id);
    memcpy(out->name, old->name, sizeof out->name);
    out->permission = old->permission;
    out->scopes = old->scopes;
    out->expires_at = old->expires_at;
    out->rate = old->rate;
    out->nips = old->nips;
    memcpy(out->ips, old->ips, old->nips * sizeof *old->ips);
    memcpy(out->rotated_from, old->id, sizeof out->rotated_from);
}

int64_t keys_sunset(const struct api_key *k, int64_t now)
{
    if (k->revoked_at || k->expires_at == 0 || k->expires_at <= now)
        return 0;
    if (k->rotated_to[0] || k->expires_at - now <= KEYS_SUNSET_WITHIN_MS)
        return k->expires_at;
    return 0;
}
