/* key.c: GET /v1/key (the calling key's own object and team) and GET /v1/scopes. */
#include "handlers.h"

#include "../fcgi/catalog.h"
#include "../fcgi/keycache.h"
#include "../fcgi/util.h"
#include "../fcgi/worker.h"

int handle_key_self(struct request *req, struct response *res, struct app_error *err)
{
    /* From the key cache: at most LOOPED_KEY_CACHE_TTL_MS old, no store round trip. */
    res->status = 200;
    res->body = json_pack("{s:o, s:{s:s}}", "key", keys_to_json(req->key, util_now_ms()), "team",
                          "id", req->key->team_id);
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}

int handle_scopes(struct request *req, struct response *res, struct app_error *err)
{
    res->status = 200;
    res->body = catalog_json();
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}
