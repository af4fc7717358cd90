/* keys.c: the key-management endpoints of api.md §3.3 (people; OWNER/ADMIN of the team). */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "../fcgi/audit.h"
#include "../fcgi/auth.h"
#include "../fcgi/cursor.h"
#include "../fcgi/keysync.h"
#include "../fcgi/keys.h"
#include "../fcgi/log.h"
#include "../fcgi/policy.h"
#include "../fcgi/config.h"
#include "../fcgi/store.h"
#include "../fcgi/usage.h"
#include "../fcgi/util.h"
#include "../fcgi/worker.h"

#define PAGE_MAX 100

/* A management action's audit record: the person is the actor. */
static void audit_action(const struct request *req, const struct api_key *k, const char *action,
                         int status, json_t *changes, json_t *rotation)
{
    struct audit_rec rec;

    audit_from_request(&rec, req, action);
    snprintf(rec.team_id, sizeof rec.team_id, "%s", req->params[0]);
    snprintf(rec.actor_type, sizeof rec.actor_type, "user");
    snprintf(rec.actor_id, sizeof rec.actor_id, "%s", req->remote_user);
    snprintf(rec.key_id, sizeof rec.key_id, "%s", k->id);
    snprintf(rec.key_name, sizeof rec.key_name, "%s", k->name);
    rec.status = status;
    rec.changes = changes ? json_incref(changes) : NULL;
    rec.rotation = rotation;
    audit_submit(&rec);
}

static int key_load(const struct request *req, struct api_key *k, struct app_error *err)
{
    int rc = store_key_get(req->ctx->store, req->params[0], req->params[1], k, err);

    if (rc == 1)
        return error_set(err, ERR_NOT_FOUND, "No API key %.40s in this team.", req->params[1]);
    return rc;
}

/* The key object with what it breaks of the team's policy (api.md §6.4): lists and GET. */
static json_t *key_with_violations(const struct api_key *k, const struct key_policy *p, int64_t now)
{
    json_t *o = keys_to_json(k, now);

    if (o && json_object_set_new(o, "policy_violations", policy_violations(p, k, now)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Every key object a management endpoint answers carries its policy_violations (policy NULL:
 * the key is known to break nothing, as a revoked one). */
static int respond_key(struct response *res, int status, const struct api_key *k,
                       const struct key_policy *policy, struct app_error *err)
{
    static const struct key_policy none;

    res->status = status;
    res->body = key_with_violations(k, policy ? policy : &none, util_now_ms());
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}

/* Makes k (its settings the caller's) a new key of the caller: an id, its creator, a new raw
 * value into raw (the caller wipes it), its digest and hint; then stores it. Returns 0, or -1
 * with err set. */
static int key_mint(const struct request *req, struct api_key *k, char raw[AUTH_KEY_LEN + 1],
                    struct app_error *err)
{
    unsigned char digest[AUTH_DIGEST_LEN];
    int rc;

    auth_id_generate("key_", k->id, sizeof k->id);
    snprintf(k->created_by, sizeof k->created_by, "%s", req->remote_user);
    auth_key_generate(raw);
    rc = auth_key_digest(raw, digest);
    auth_hex(digest, k->hash);
    auth_wipe(digest, sizeof digest);
    if (rc != 0) {
        error_set(err, ERR_INTERNAL, NULL);
        return error_log(err, "auth: HMAC failed");
    }
    auth_key_hint(raw, k->hint);
    return store_key_insert(req->ctx->store, k, err);
}

int handle_keys_create(struct request *req, struct response *res, struct app_error *err)
{
    struct key_input in;
    struct key_policy policy;
    struct api_key k;
    char raw[AUTH_KEY_LEN + 1], location[160];
    int64_t now = util_now_ms();
    int ret = -1;

    if (keys_input_parse(req->body, true, now, &in, err) != 0)
        return -1;
    if (store_policy_get(req->ctx->store, req->params[0], &policy, err) != 0)
        return -1;
    memset(&k, 0, sizeof k);
    if (keys_apply(&k, &in, now, NULL, err) != 0)
        return -1;
    if (!in.has_rate)
        k.rate = policy.default_rate; /* none asked for: the team's default, if any */
    k.created_at = k.updated_at = now;
    if (policy_check(&policy, &k, err) != 0)
        return -1;
    snprintf(k.team_id, sizeof k.team_id, "%s", req->params[0]);
    if (key_mint(req, &k, raw, err) != 0)
        goto done;
    if (respond_key(res, 201, &k, &policy, err) != 0)
        goto done;
    /* The one and only time the raw key leaves the server. */
    json_object_set_new(res->body, "key", json_string(raw));
    snprintf(location, sizeof location, "/v1/teams/%s/api-keys/%s", k.team_id, k.id);
    http_header_add(res, "Location", location);
    audit_action(req, &k, "api_key.created", 201, NULL, NULL);
    ret = 0;
done:
    auth_wipe(raw, sizeof raw);
    return ret;
}

int handle_keys_list(struct request *req, struct response *res, struct app_error *err)
{
    static const size_t cap = PAGE_MAX + 1;
    struct key_policy policy;
    struct api_key *page = NULL;
    struct key_query q = {.team = req->params[0], .status = -1, .now = util_now_ms()};
    const char *status = http_query_get(req, "status"), *cursor = http_query_get(req, "cursor");
    const char *within = http_query_get(req, "expiring_within_days");
    const char *unused = http_query_get(req, "unused_for_days");
    const char *list = "api_keys";
    char after[KEY_ID_LEN];
    size_t limit, n = 0;
    json_t *data = NULL;
    int rc, ret = -1;

    if (cursor_limit(http_query_get(req, "limit"), &limit) != 0) {
        error_detail(err, "limit", "must be a whole number from 1 to 100");
        return error_invalid(err, "query");
    }
    if (status && keys_status_parse(status, (enum key_status *)&q.status) != 0) {
        error_detail(err, "status", "must be active, expired or revoked");
        return error_invalid(err, "query");
    }
    if (within) {
        long long days;

        if (util_strtonum(within, 1, 365, &days) != 0) {
            error_detail(err, "expiring_within_days", "must be a whole number from 1 to 365");
            return error_invalid(err, "query");
        }
        q.expires_by = q.now + days * 86400 * 1000;
    }
    if (unused) {
        long long days;

        if (util_strtonum(unused, 1, 3650, &days) != 0) {
            error_detail(err, "unused_for_days", "must be a whole number from 1 to 3650");
            return error_invalid(err, "query");
        }
        q.unused_before = q.now - days * 86400 * 1000;
        list = "api_keys_unused"; /* another order: the other list's cursors do not fit */
    }
    q.q = http_query_get(req, "q");
    if (q.q && strlen(q.q) > 100) {
        error_detail(err, "q", "must be at most 100 characters");
        return error_invalid(err, "query");
    }
    if (cursor) {
        if (cursor_decode(list, q.team, cursor, &q.after_at, after, sizeof after) != 0)
            return error_set(err, ERR_INVALID_CURSOR, NULL);
        q.after_id = after;
    }
    q.limit = limit + 1; /* one more tells whether there is a next page */
    page = calloc(cap, sizeof *page);
    data = json_array();
    if (page == NULL || data == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        goto done;
    }
    if (store_policy_get(req->ctx->store, q.team, &policy, err) != 0)
        goto done;
    rc = store_key_list(req->ctx->store, &q, page, &n, err);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        error_detail(err, "unused_for_days",
                     "the team has more than 10000 active keys this old: narrow the list with q");
        error_invalid(err, "query");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, key_with_violations(&page[i], &policy, q.now));
    res->status = 200;
    if (unused) {
        /* The stalest first: the cursor is at the last use (or creation) of the page's last. */
        const struct api_key *last = &page[n > limit ? limit - 1 : 0];

        res->body = cursor_page_at(
            data, limit, list, q.team,
            last->last_used_at > last->created_at ? last->last_used_at : last->created_at, err);
    } else {
        res->body = cursor_page(data, limit, "api_keys", q.team, "created_at", err);
    }
    data = NULL;
    ret = res->body ? 0 : -1;
done:
    json_decref(data);
    free(page);
    return ret;
}

int handle_keys_get(struct request *req, struct response *res, struct app_error *err)
{
    struct key_policy policy;
    struct api_key k;

    if (key_load(req, &k, err) != 0)
        return -1;
    if (store_policy_get(req->ctx->store, k.team_id, &policy, err) != 0)
        return -1;
    return respond_key(res, 200, &k, &policy, err);
}

int handle_keys_update(struct request *req, struct response *res, struct app_error *err)
{
    struct key_policy policy;
    struct key_input in;
    struct api_key k;
    int64_t now = util_now_ms();
    json_t *changes = NULL;
    int rc, ret = -1;

    if (keys_input_parse(req->body, false, now, &in, err) != 0)
        return -1;
    if (key_load(req, &k, err) != 0)
        return -1;
    if (k.revoked_at)
        return error_set(err, ERR_KEY_REVOKED, NULL);
    changes = json_object();
    if (keys_apply(&k, &in, now, changes, err) != 0)
        goto done;
    /* A new expiry must keep the policy; an edit of anything else leaves a key made before the
     * policy as it is (listed with its policy_violations). */
    if (store_policy_get(req->ctx->store, k.team_id, &policy, err) != 0 ||
        (in.has_expires && policy_check(&policy, &k, err) != 0))
        goto done;
    rc = store_key_update(req->ctx->store, &k, err);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        /* Revoked (or deleted) between our read and our write. */
        if (key_load(req, &k, err) == 0)
            error_set(err, ERR_KEY_REVOKED, NULL);
        goto done;
    }
    keysync_changed(req->ctx->store, k.id);
    if (respond_key(res, 200, &k, &policy, err) != 0)
        goto done;
    audit_action(req, &k, "api_key.updated", 200, changes, NULL);
    ret = 0;
done:
    json_decref(changes);
    return ret;
}

int handle_keys_revoke(struct request *req, struct response *res, struct app_error *err)
{
    struct api_key k;
    int rc = store_key_revoke(req->ctx->store, req->params[0], req->params[1], req->remote_user,
                              util_now_ms(), err);

    if (rc < 0)
        return -1;
    /* Revoked now or before: either way answer with the stored row (the first revoked_at). */
    if (key_load(req, &k, err) != 0)
        return -1;
    keysync_changed(req->ctx->store, k.id);
    if (rc == 0)
        audit_action(req, &k, "api_key.revoked", 200, NULL, NULL);
    return respond_key(res, 200, &k, NULL, err); /* revoked: it breaks no rule */
}

int handle_keys_delete(struct request *req, struct response *res, struct app_error *err)
{
    struct api_key k;
    int rc;

    if (key_load(req, &k, err) != 0)
        return -1;
    rc = store_key_delete(req->ctx->store, req->params[0], req->params[1], err);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return error_set(err, ERR_NOT_FOUND, NULL);
    keysync_changed(req->ctx->store, k.id);
    audit_action(req, &k, "api_key.deleted", 204, NULL, NULL);
    res->status = 204;
    return 0;
}

struct usage_ctx {
    const struct usage_range *range;
    struct usage_counts *counts;
};

static void usage_add(int64_t at, int status, void *ctx)
{
    struct usage_ctx *u = ctx;

    usage_count(u->range, u->counts, at, status);
}

/* api.md §6.8: the key's requests per bucket, counted from its api.request audit records. */
int handle_keys_usage(struct request *req, struct response *res, struct app_error *err)
{
    struct usage_range range;
    struct usage_ctx u = {&range, NULL};
    struct api_key k;
    int rc, ret = -1;

    if (usage_range_parse(http_query_get(req, "interval"), http_query_get(req, "since"),
                          http_query_get(req, "until"), util_now_ms(), &range, err) != 0)
        return -1;
    if (key_load(req, &k, err) != 0)
        return -1;
    u.counts = calloc(range.n, sizeof *u.counts);
    if (u.counts == NULL)
        return error_set(err, ERR_INTERNAL, NULL);
    rc = store_audit_usage(req->ctx->store, k.team_id, k.id, range.since, range.until,
                           USAGE_RECORDS_MAX, usage_add, &u, err);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        /* Never a count short of the audit: a shorter range is counted in full. */
        error_detail(err, "since",
                     "the range holds more than 100000 requests of this key: ask for a shorter "
                     "one");
        error_invalid(err, "query");
        goto done;
    }
    res->status = 200;
    res->body = usage_to_json(&range, u.counts);
    if (res->body == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        goto done;
    }
    ret = 0;
done:
    free(u.counts);
    return ret;
}

/* The hint as an HTTP header value can carry it: ASCII, "..." for the ellipsis (same length). */
static const char *header_hint(const char *hint, char out[AUTH_HINT_LEN])
{
    const char *dots = strstr(hint, "\xe2\x80\xa6");

    snprintf(out, AUTH_HINT_LEN, "%s", hint);
    if (dots)
        snprintf(out, AUTH_HINT_LEN, "%.*s...%s", (int)(dots - hint), hint, dots + 3);
    return out;
}

/* api.md §6.3: a new key with the old one's settings; the old one works until the grace period
 * ends (none: revoked at once). The new key is stored first and the old one claimed after it,
 * conditionally: of two rotations racing, or a rotation racing a revoke, one wins and the
 * loser's new key is deleted again. */
int handle_keys_rotate(struct request *req, struct response *res, struct app_error *err)
{
    struct key_policy policy;
    struct api_key old, k;
    char raw[AUTH_KEY_LEN + 1], location[160], hint[AUTH_HINT_LEN];
    int64_t now = util_now_ms(), until = 0;
    json_t *changes = NULL, *rotation = NULL;
    int hours, rc, ret = -1;

    if (req->content_length > 0 && http_body_read(req, req->ctx->cfg->max_body, err) != 0)
        return -1;
    if (keys_rotate_parse(req->body, &hours, err) != 0)
        return -1;
    if (key_load(req, &old, err) != 0)
        return -1;
    if (old.revoked_at)
        return error_set(err, ERR_KEY_REVOKED, "A revoked API key cannot be rotated.");
    if (old.rotated_to[0])
        return error_set(err, ERR_CONFLICT, "This API key was already rotated (to %s).",
                         old.rotated_to);
    if (keys_status(&old, now) == KEY_EXPIRED)
        return error_set(err, ERR_CONFLICT,
                         "An expired API key cannot be rotated: give it a new expiry first.");
    if (hours > 0) {
        until = now + (int64_t)hours * 3600 * 1000;
        if (old.expires_at && old.expires_at < until)
            until = old.expires_at; /* the grace period never outlives the key */
    }
    keys_rotate_copy(&old, &k);
    k.created_at = k.updated_at = now;
    /* The new key keeps the old one's expiry: made now, it must keep the policy with it. */
    if (store_policy_get(req->ctx->store, old.team_id, &policy, err) != 0 ||
        policy_check(&policy, &k, err) != 0)
        return -1;
    if (key_mint(req, &k, raw, err) != 0)
        goto done;
    rc = store_key_rotate(req->ctx->store, old.team_id, old.id, k.id, header_hint(k.hint, hint),
                          until, req->remote_user, now, err);
    if (rc != 0) {
        struct app_error e = {0};

        if (store_key_delete(req->ctx->store, k.team_id, k.id, &e) < 0)
            log_warn("keys: new key %s of a failed rotation left behind: %s", k.id, e.log);
        error_clear(&e);
        if (rc == 1 && key_load(req, &old, err) == 0)
            error_set(err, old.revoked_at ? ERR_KEY_REVOKED : ERR_CONFLICT,
                      old.revoked_at ? "A revoked API key cannot be rotated."
                                     : "This API key was already rotated.");
        goto done;
    }
    keysync_changed(req->ctx->store, old.id);
    if (respond_key(res, 201, &k, &policy, err) != 0)
        goto done;
    /* The one and only time the new raw key leaves the server. */
    json_object_set_new(res->body, "key", json_string(raw));
    snprintf(location, sizeof location, "/v1/teams/%s/api-keys/%s", k.team_id, k.id);
    http_header_add(res, "Location", location);
    changes = json_pack("{s:{s:n, s:s}}", "rotated_to", "old", "new", k.id);
    if (changes && until)
        json_object_set_new(changes, "expires_at",
                            json_pack("{s:o, s:o}", "old", keys_time_json(old.expires_at), "new",
                                      keys_time_json(until)));
    else if (changes)
        json_object_set_new(changes, "revoked_at",
                            json_pack("{s:n, s:o}", "old", "new", keys_time_json(now)));
    rotation =
        json_pack("{s:s, s:s, s:i}", "from", old.id, "to", k.id, "grace_period_hours", hours);
    audit_action(req, &old, "api_key.rotated", 201, changes, rotation);
    ret = 0;
done:
    json_decref(changes);
    auth_wipe(raw, sizeof raw);
    return ret;
}
