/* policy.c: a team's key policy (policy.h): its PATCH, its JSON, and what a key breaks of it. */
#include "policy.h"

#include <stdio.h>
#include <string.h>

#define DAY_MS (86400LL * 1000)

static json_t *days_json(uint32_t days)
{
    return days ? json_integer(days) : json_null();
}

int policy_patch(struct key_policy *p, json_t *body, json_t *changes, struct app_error *err)
{
    struct key_policy next = *p;
    const char *field;
    json_t *v;

    if (!json_is_object(body)) {
        error_detail(err, "(body)", "must be a JSON object");
        return error_invalid(err, "request");
    }
    json_object_foreach (body, field, v) {
        if (strcmp(field, "max_lifetime_days") == 0) {
            if (json_is_null(v))
                next.max_lifetime_days = 0;
            else if (json_is_integer(v) && json_integer_value(v) >= 1 &&
                     json_integer_value(v) <= POLICY_LIFETIME_MAX_DAYS)
                next.max_lifetime_days = (uint32_t)json_integer_value(v);
            else
                error_detail(err, field, "must be null or an integer from 1 to 3650");
        } else if (strcmp(field, "require_expiry") == 0) {
            if (json_is_boolean(v))
                next.require_expiry = json_is_true(v);
            else
                error_detail(err, field, "must be true or false");
        } else if (strcmp(field, "default_rate_limit") == 0) {
            (void)keys_rate_parse(v, field, &next.default_rate, err);
        } else {
            char name[72];

            snprintf(name, sizeof name, "%.64s", field);
            error_detail(err, name, "is not a known field");
        }
    }
    if (err->details)
        return error_invalid(err, "request");
    keys_change(changes, "max_lifetime_days", days_json(p->max_lifetime_days),
                days_json(next.max_lifetime_days));
    keys_change(changes, "require_expiry", json_boolean(p->require_expiry),
                json_boolean(next.require_expiry));
    keys_change(changes, "default_rate_limit", keys_rate_json(&p->default_rate),
                keys_rate_json(&next.default_rate));
    *p = next;
    return 0;
}

json_t *policy_to_json(const struct key_policy *p)
{
    return json_pack("{s:o, s:b, s:o, s:o, s:o}", "max_lifetime_days",
                     days_json(p->max_lifetime_days), "require_expiry", p->require_expiry,
                     "default_rate_limit", keys_rate_json(&p->default_rate), "updated_at",
                     keys_time_json(p->updated_at), "updated_by",
                     p->updated_by[0] ? json_string(p->updated_by) : json_null());
}

/* Calls fn(message) for each rule of p that k breaks; returns how many. */
static int broken(const struct key_policy *p, const struct api_key *k,
                  void (*fn)(const char *message, void *ctx), void *ctx)
{
    char msg[160];
    int n = 0;

    if (!k->expires_at && (p->require_expiry || p->max_lifetime_days)) {
        fn("is required by the team's key policy", ctx);
        n++;
    }
    if (k->expires_at && p->max_lifetime_days &&
        k->expires_at - k->created_at > p->max_lifetime_days * DAY_MS) {
        snprintf(msg, sizeof msg,
                 "must be at most %u days after the key was made (the team's key policy)",
                 (unsigned)p->max_lifetime_days);
        fn(msg, ctx);
        n++;
    }
    return n;
}

static void detail(const char *message, void *ctx)
{
    error_detail(ctx, "expires_at", message);
}

int policy_check(const struct key_policy *p, const struct api_key *k, struct app_error *err)
{
    return broken(p, k, detail, err) ? error_invalid(err, "request") : 0;
}

static void violation(const char *message, void *ctx)
{
    json_array_append_new(ctx, json_pack("{s:s, s:s}", "field", "expires_at", "message", message));
}

json_t *policy_violations(const struct key_policy *p, const struct api_key *k, int64_t now)
{
    json_t *out = json_array();

    if (out && keys_status(k, now) == KEY_ACTIVE)
        (void)broken(p, k, violation, out);
    return out;
}
