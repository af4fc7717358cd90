/* audit.c: GET /v1/teams/{team_id}/audit, the team's audit trail with filters and pages. */
#include "handlers.h"

#include <string.h>

#include "../fcgi/cursor.h"
#include "../fcgi/store.h"
#include "../fcgi/util.h"
#include "../fcgi/worker.h"

static int bad_query(struct app_error *err, const char *field, const char *why)
{
    error_detail(err, field, why);
    return error_set(err, ERR_VALIDATION_FAILED, "The query is not valid: see details.");
}

static int time_param(const struct request *req, const char *name, int64_t *ms,
                      struct app_error *err)
{
    const char *v = http_query_get(req, name);

    *ms = 0;
    if (v && util_time_parse(v, ms) != 0)
        return bad_query(err, name, "must be an RFC 3339 date-time");
    return 0;
}

static const char *short_param(const struct request *req, const char *name, bool *bad)
{
    const char *v = http_query_get(req, name);

    if (v && (v[0] == '\0' || strlen(v) > 128))
        *bad = true;
    return v;
}

int handle_audit_list(struct request *req, struct response *res, struct app_error *err)
{
    struct audit_query q = {.team = req->params[0]};
    const char *cursor = http_query_get(req, "cursor");
    char after[32], next[CURSOR_MAX];
    bool bad = false;
    json_t *rows, *data = NULL;
    size_t n;

    if (cursor_limit(http_query_get(req, "limit"), &q.limit) != 0)
        return bad_query(err, "limit", "must be a whole number from 1 to 100");
    q.key_id = short_param(req, "key_id", &bad);
    q.actor = short_param(req, "actor", &bad);
    q.action = short_param(req, "action", &bad);
    if (bad)
        return bad_query(err, "query", "filters must be 1 to 128 characters");
    if (time_param(req, "since", &q.since, err) != 0 || time_param(req, "until", &q.until, err))
        return -1;
    if (cursor) {
        if (cursor_decode("audit", q.team, cursor, &q.after_at, after, sizeof after) != 0 ||
            strlen(after) != 24 || strspn(after, "0123456789abcdef") != 24)
            return error_set(err, ERR_INVALID_CURSOR, NULL);
        q.after_id = after;
    }
    q.limit++;
    rows = store_audit_list(req->ctx->store, &q, err);
    if (rows == NULL)
        return -1;
    n = json_array_size(rows);
    q.limit--;
    if (n > q.limit) {
        json_t *last = json_array_get(rows, q.limit - 1);
        int64_t at = 0;

        util_time_parse(json_string_value(json_object_get(last, "at")), &at);
        if (cursor_encode("audit", q.team, at, json_string_value(json_object_get(last, "id")),
                          next) != 0) {
            json_decref(rows);
            return error_set(err, ERR_INTERNAL, NULL);
        }
        json_array_remove(rows, q.limit);
    }
    data = rows;
    res->status = 200;
    res->body = json_pack("{s:o, s:b, s:o}", "data", data, "has_more", n > q.limit, "next_cursor",
                          n > q.limit ? json_string(next) : json_null());
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}
