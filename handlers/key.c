/* key.c: GET /v1/key (the calling key's own object and team) and GET /v1/scopes. */
#include "handlers.h"

#include "../fcgi/catalog.h"
#include "../fcgi/jsonw.h"
#include "../fcgi/keys.h"
#include "../fcgi/util.h"
#include "../fcgi/worker.h"

int handle_key_self(struct request *req, struct response *res, struct app_error *err)
{
    /* From the key cache (kept current by keysync.c), no store round trip. This very request
     * is the key's latest use, which the store shows within a minute. The body is written as
     * text: this is the benchmark's A0 and every integration's "who am I" call. */
    struct api_key k = *req->key;
    struct jsonw w = {0};
    int64_t now = util_now_ms();

    k.last_used_at = now;
    snprintf(k.last_used_ip, sizeof k.last_used_ip, "%s", req->client_addr);
    JSONW_LIT(&w, "{\"key\":");
    keys_write(&w, &k, now);
    JSONW_LIT(&w, ",\"team\":{\"id\":");
    jsonw_str(&w, k.team_id);
    JSONW_LIT(&w, "}}");
    res->status = 200;
    res->text = jsonw_finish(&w, &res->text_len);
    return res->text ? 0 : error_set(err, ERR_INTERNAL, NULL);
}

int handle_scopes(struct request *req, struct response *res, struct app_error *err)
{
    res->status = 200;
    res->body = catalog_json();
    return res->body ? 0 : error_set(err, ERR_INTERNAL, NULL);
}
