/* metrics.c: GET /metrics, the host's counters for Prometheus (api.md §6.9), to the allow-list. */
#include "handlers.h"

#include "../fcgi/app.h"
#include "../fcgi/config.h"
#include "../fcgi/ipnet.h"
#include "../fcgi/metrics.h"
#include "../fcgi/store.h"
#include "../fcgi/worker.h"

int handle_metrics(struct request *req, struct response *res, struct app_error *err)
{
    const struct config *cfg = req->ctx->cfg;
    struct app_error ping = {0};
    struct ipnet a;
    int store_up;

    /* Anyone else is told nothing exists here (api.md §6.9): the same 404 as any unknown path. */
    if (ipnet_addr_parse(req->client_addr, &a) != 0 ||
        !ipnet_any(cfg->metrics_allow, cfg->nmetrics_allow, &a))
        return error_set(err, ERR_NOT_FOUND, NULL);
    /* With the circuit (store.h) this is its last check: no round trip. */
    store_up = store_ping(req->ctx->store, &ping) == 0;
    error_clear(&ping);
    res->text = metrics_render(looped_app.routes, looped_app.nroutes, store_up, PACKAGE_VERSION,
                               &res->text_len);
    if (res->text == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        return error_log(err, "metrics: out of memory");
    }
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return 0;
}
