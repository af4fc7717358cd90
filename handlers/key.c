/* key.c: GET /v1/key (the calling key's own object and team) and GET /v1/scopes. */
#include "handlers.h"

#include "../fcgi/catalog.h"
#include "../fcgi/keys.h"
#include "../fcgi/util.h"
#include "../fcgi/worker.h"

int handle_key_self(struct request *req, struct response *res, struct app_error *err)
{
    /* From the key cache (kept current by keysync.c), no store round trip. This very request
     * is the key's latest use, which the store shows within a minute. */
    struct api_key k = *req->key;
    int64_t now = util_now_ms();

    k.last_used_at = now;
    snprintf(k.last_used_ip, sizeof k.last_used_ip, "%s", req->remote_addr);
    res->status = 200;
    res->body = json_pack("{s:o, s:{s:s}}", "key", keys_to_json(&k, now), "team", "id", k.team_id);
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}

int handle_scopes(struct request *req, struct response *res, struct app_error *err)
{
    res->status = 200;
    res->body = catalog_json();
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}
