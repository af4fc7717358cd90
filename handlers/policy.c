/* policy.c: GET|PATCH /v1/teams/{team_id}/api-key-policy (api.md §6.4): owners and admins read
 * the team's key policy, owners change it; every change is audited. */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "../fcgi/audit.h"
#include "../fcgi/policy.h"
#include "../fcgi/store.h"
#include "../fcgi/util.h"
#include "../fcgi/worker.h"

static int respond(struct response *res, const struct key_policy *p, struct app_error *err)
{
    res->status = 200;
    res->body = policy_to_json(p);
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}

int handle_policy_get(struct request *req, struct response *res, struct app_error *err)
{
    struct key_policy p;

    if (store_policy_get(req->ctx->store, req->params[0], &p, err) != 0)
        return -1;
    return respond(res, &p, err);
}

int handle_policy_update(struct request *req, struct response *res, struct app_error *err)
{
    struct key_policy p;
    struct audit_rec rec;
    json_t *changes;
    int ret = -1;

    if (strcmp(req->role, "OWNER") != 0)
        return error_set(err, ERR_FORBIDDEN,
                         "Only an owner of the team can change its key policy.");
    if (store_policy_get(req->ctx->store, req->params[0], &p, err) != 0)
        return -1;
    if ((changes = json_object()) == NULL)
        return error_set(err, ERR_INTERNAL, NULL);
    if (policy_patch(&p, req->body, changes, err) != 0)
        goto done;
    p.updated_at = util_now_ms();
    snprintf(p.updated_by, sizeof p.updated_by, "%s", req->remote_user);
    if (store_policy_put(req->ctx->store, req->params[0], &p, err) != 0)
        goto done;
    if (respond(res, &p, err) != 0)
        goto done;
    audit_from_request(&rec, req, "api_key_policy.updated");
    snprintf(rec.team_id, sizeof rec.team_id, "%s", req->params[0]);
    snprintf(rec.actor_type, sizeof rec.actor_type, "user");
    snprintf(rec.actor_id, sizeof rec.actor_id, "%s", req->remote_user);
    rec.status = 200;
    rec.changes = json_incref(changes);
    audit_submit(&rec);
    ret = 0;
done:
    json_decref(changes);
    return ret;
}
