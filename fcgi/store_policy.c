/* store_policy.c: the teams' key policies (api_key_policies, policy.h): one document per team,
 * {_id: team, max_lifetime_days, require_expiry, default_rate_limit, updated_at, updated_by};
 * a team without one has the default policy (no rule). */
#include <string.h>

#include "store_priv.h"

#define POLICY_COLLECTION "api_key_policies"

static int policy_row(const bson_t *doc, void *ctx)
{
    struct key_policy *p = ctx;
    bson_iter_t it, r;

    if (bson_iter_init_find(&it, doc, "max_lifetime_days") && BSON_ITER_HOLDS_NUMBER(&it))
        p->max_lifetime_days = (uint32_t)bson_iter_as_int64(&it);
    p->require_expiry = bson_iter_init_find(&it, doc, "require_expiry") && bson_iter_as_bool(&it);
    if (bson_iter_init_find(&it, doc, "default_rate_limit") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &r)) {
        while (bson_iter_next(&r)) {
            if (strcmp(bson_iter_key(&r), "requests") == 0 && BSON_ITER_HOLDS_NUMBER(&r))
                p->default_rate.requests = (uint32_t)bson_iter_as_int64(&r);
            else if (strcmp(bson_iter_key(&r), "per_seconds") == 0 && BSON_ITER_HOLDS_NUMBER(&r))
                p->default_rate.per_seconds = (uint32_t)bson_iter_as_int64(&r);
        }
        if (!p->default_rate.requests || !p->default_rate.per_seconds)
            memset(&p->default_rate, 0, sizeof p->default_rate);
    }
    p->updated_at = store_date(doc, "updated_at");
    snprintf(p->updated_by, sizeof p->updated_by, "%s", store_utf8(doc, "updated_by"));
    return 0;
}

int store_policy_get(struct store *st, const char *team, struct key_policy *out,
                     struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(team));
    int rc;

    memset(out, 0, sizeof *out);
    rc = store_find_each(st, POLICY_COLLECTION, filter, NULL, policy_row, out, err);
    bson_destroy(filter);
    return rc;
}

int store_policy_put(struct store *st, const char *team, const struct key_policy *p,
                     struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(team));
    bson_t doc = BSON_INITIALIZER, rate;
    int rc;

    BSON_APPEND_UTF8(&doc, "_id", team);
    if (p->max_lifetime_days)
        BSON_APPEND_INT32(&doc, "max_lifetime_days", (int32_t)p->max_lifetime_days);
    else
        BSON_APPEND_NULL(&doc, "max_lifetime_days");
    BSON_APPEND_BOOL(&doc, "require_expiry", p->require_expiry);
    if (p->default_rate.requests) {
        BSON_APPEND_DOCUMENT_BEGIN(&doc, "default_rate_limit", &rate);
        BSON_APPEND_INT32(&rate, "requests", (int32_t)p->default_rate.requests);
        BSON_APPEND_INT32(&rate, "per_seconds", (int32_t)p->default_rate.per_seconds);
        bson_append_document_end(&doc, &rate);
    } else {
        BSON_APPEND_NULL(&doc, "default_rate_limit");
    }
    BSON_APPEND_DATE_TIME(&doc, "updated_at", p->updated_at);
    BSON_APPEND_UTF8(&doc, "updated_by", p->updated_by);
    rc = store_replace_one(st, POLICY_COLLECTION, filter, &doc, true, err);
    bson_destroy(filter);
    bson_destroy(&doc);
    return rc < 0 ? -1 : 0;
}
