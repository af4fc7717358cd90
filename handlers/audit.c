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
    return error_invalid(err, "query");
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
    char after[32];
    bool bad = false;
    json_t *rows;

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
    q.limit++; /* one more tells whether there is a next page */
    rows = store_audit_list(req->ctx->store, &q, err);
    if (rows == NULL)
        return -1;
    res->status = 200;
    res->body = cursor_page(rows, q.limit - 1, "audit", q.team, "at", err);
    return res->body ? 0 : -1;
}
