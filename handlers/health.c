/* health.c: GET /v1/health, whether the store answers. */
#include "handlers.h"

#include "../fcgi/log.h"
#include "../fcgi/store.h"
#include "../fcgi/worker.h"

int handle_health(struct request *req, struct response *res, struct app_error *err)
{
    struct app_error ping = {0};

    if (store_ping(req->ctx->store, &ping) != 0) {
        /* Not an error of the request: the contract's body is {"status": "unavailable"}. */
        log_warn("request %s: health: %s", req->request_id, ping.log);
        error_clear(&ping);
        res->status = 503;
        http_header_add(res, "Retry-After", "5");
        res->body = json_pack("{s:s}", "status", "unavailable");
        return 0;
    }
    res->status = 200;
    res->body = json_pack("{s:s}", "status", "ok");
    return 0;
}
