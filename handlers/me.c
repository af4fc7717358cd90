/* me.c: GET /v1/me, the signed-in person and the teams they belong to. */
#include "handlers.h"

#include "../fcgi/store.h"
#include "../fcgi/worker.h"

int handle_me(struct request *req, struct response *res, struct app_error *err)
{
    json_t *teams = store_user_teams(req->ctx->store, req->remote_user, err);

    if (teams == NULL)
        return -1;
    res->status = 200;
    res->body = json_pack("{s:s, s:o}", "user", req->remote_user, "teams", teams);
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}
