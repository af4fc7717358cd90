/* policy.h: a team's key policy (api.md §6.4): a maximum lifetime, an expiry required, a
 * default rate limit. Keys made, edited or rotated against it are refused; keys made before it
 * are listed with their policy_violations and never changed. */
#ifndef LOOPED_POLICY_H
#define LOOPED_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "keys.h"

#define POLICY_LIFETIME_MAX_DAYS 3650

struct key_policy {
    uint32_t max_lifetime_days; /* 0: null (no maximum) */
    bool require_expiry;
    struct key_rate default_rate; /* requests 0: null */
    int64_t updated_at;           /* 0: never set (the default policy) */
    char updated_by[KEY_USER_MAX];
};

/* Applies a PATCH body (a JSON merge patch of the three fields) to p, recording each field
 * that changed in changes ({"field": {"old", "new"}}, may be NULL). Every problem is one entry
 * of err's details; returns 0, or -1 with err validation_failed (p unchanged). */
int policy_patch(struct key_policy *p, json_t *body, json_t *changes, struct app_error *err);

/* The policy object of api.md §6.4: a new object, NULL out of memory. */
json_t *policy_to_json(const struct key_policy *p);

/* Whether k, made at k->created_at and expiring at k->expires_at, keeps p: each rule it breaks
 * is one entry of err's details on "expires_at" (the only field a rule is about). Returns 0, or
 * -1 with err validation_failed. */
int policy_check(const struct key_policy *p, const struct api_key *k, struct app_error *err);

/* What an active key breaks of p, as [{"field", "message"}] (empty when nothing, or when the
 * key is expired or revoked): a new array, NULL out of memory. */
json_t *policy_violations(const struct key_policy *p, const struct api_key *k, int64_t now);

#endif
