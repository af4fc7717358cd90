/* leaks.c: POST /v1/key-leaks, reports of leaked keys from secret scanners (api.md §6.5). No
 * authentication, and no oracle: whatever the keys are, the answer is the same 202 {"received":
 * N}, given after the same work (a rate-limit count, a digest per well-formed key, one store
 * write); the keys are looked up and revoked behind it (fcgi/leaks.c). */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "../fcgi/auth.h"
#include "../fcgi/auth_check.h"
#include "../fcgi/keysync.h"
#include "../fcgi/leaks.h"
#include "../fcgi/ratelimit.h"
#include "../fcgi/store.h"
#include "../fcgi/util.h"
#include "../fcgi/worker.h"

#define KEY_TEXT_MAX 256 /* a reported string longer than this is no key and no typo of one */

/* The client address's budget, counted in the host's shared table under a name no key id can
 * take ("leak:" and a keyed digest of the address). Returns 0, or -1 with err rate_limited. */
static int rate_take(const struct request *req, struct response *res, struct app_error *err)
{
    unsigned char mac[8];
    char id[24];
    struct ratelimit_verdict v;

    if (auth_mac("leak-rate", req->client_addr, strlen(req->client_addr), mac, sizeof mac) != 0)
        return error_set(err, ERR_INTERNAL, NULL);
    memcpy(id, "leak:", 5);
    for (size_t i = 0; i < sizeof mac; i++)
        snprintf(id + 5 + 2 * i, 3, "%02x", mac[i]);
    ratelimit_take(id, LEAKS_PER_MINUTE, 60, util_now_ms(), &v);
    auth_rate_headers(res, &v);
    if (v.allowed)
        return 0;
    return error_set(err, ERR_RATE_LIMITED,
                     "At most %d leak reports a minute from one address; retry in %u seconds.",
                     LEAKS_PER_MINUTE, (unsigned)v.retry_after_s);
}

static bool source_ok(const char *s)
{
    if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
        return false;
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

/* The body into r: {"keys": [1-100 strings], "source": null | "http(s)://..." (≤ 2048)}. The
 * digests of the well-formed keys only: any other string names no key. Returns the number of
 * keys reported, or -1 with err set. */
static int report_parse(json_t *body, struct leak_report *r, struct app_error *err)
{
    json_t *keys = json_is_object(body) ? json_object_get(body, "keys") : NULL;
    json_t *source = json_is_object(body) ? json_object_get(body, "source") : NULL;
    const char *field;
    json_t *v;
    size_t i;

    if (!json_is_object(body)) {
        error_detail(err, "(body)", "must be a JSON object");
        return error_invalid(err, "request");
    }
    json_object_foreach (body, field, v) {
        if (strcmp(field, "keys") != 0 && strcmp(field, "source") != 0) {
            char name[72];

            snprintf(name, sizeof name, "%.64s", field);
            error_detail(err, name, "is not a known field");
        }
    }
    if (!json_is_array(keys) || json_array_size(keys) < 1 ||
        json_array_size(keys) > LEAKS_KEYS_MAX) {
        error_detail(err, "keys", "must be an array of 1 to 100 strings");
        return error_invalid(err, "request");
    }
    json_array_foreach (keys, i, v) {
        const char *s = json_string_value(v);
        char name[16];

        if (s && json_string_length(v) <= KEY_TEXT_MAX && strlen(s) == json_string_length(v))
            continue;
        snprintf(name, sizeof name, "keys[%zu]", i);
        error_detail(err, name, "must be a string of at most 256 characters");
    }
    if (source && !json_is_null(source) &&
        (!json_is_string(source) || json_string_length(source) > LEAKS_SOURCE_MAX ||
         strlen(json_string_value(source)) != json_string_length(source) ||
         !source_ok(json_string_value(source))))
        error_detail(err, "source", "must be null or an http(s) URL of at most 2048 characters");
    if (err->details)
        return error_invalid(err, "request");
    if (json_is_string(source))
        snprintf(r->source, sizeof r->source, "%s", json_string_value(source));
    json_array_foreach (keys, i, v) {
        unsigned char digest[AUTH_DIGEST_LEN];

        if (!auth_key_well_formed(json_string_value(v)))
            continue;
        if (auth_key_digest(json_string_value(v), digest) != 0)
            return error_set(err, ERR_INTERNAL, NULL);
        auth_hex(digest, r->digests[r->ndigests++]);
    }
    return (int)json_array_size(keys);
}

int handle_key_leaks(struct request *req, struct response *res, struct app_error *err)
{
    /* About 9 KiB, on the request thread's stack (the default 8 MiB). */
    struct leak_report r = {0};
    int n;

    if (rate_take(req, res, err) != 0)
        return -1;
    if (http_body_read(req, req->ctx->cfg->max_body, err) != 0)
        return -1;
    if ((n = report_parse(req->body, &r, err)) < 0)
        return -1;
    r.at = util_now_ms();
    snprintf(r.ip, sizeof r.ip, "%s", req->client_addr);
    snprintf(r.user_agent, sizeof r.user_agent, "%s", req->user_agent ? req->user_agent : "");
    snprintf(r.request_id, sizeof r.request_id, "%s", req->request_id);
    if (leaks_submit(req->ctx->store, &r, err) != 0)
        return -1;
    res->after = keysync_wake;
    res->status = 202;
    res->body = json_pack("{s:i}", "received", n);
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}
