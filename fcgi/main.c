/* main.c: looped-fcgi, the FastCGI application: spawned by the web server, or its own pool. */
#include "config.h"

#include <fcgiapp.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "catalog.h"
#include "log.h"
#include "pool.h"
#include "store.h"
#include "worker.h"

static const char usage[] =
    "usage: looped-fcgi [--config FILE] [--listen unix:PATH|HOST:PORT] [--workers N]\n"
    "                   [--threads T]\n"
    "Without --listen, serves FastCGI on the socket inherited as fd 0 (lighttpd bin-path,\n"
    "Apache mod_fcgid). Settings come from LOOPED_* environment variables (README.md).\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const struct app *app = &looped_app;
    const char *config_file = NULL, *flag_listen = NULL, *flag_workers = NULL, *flag_threads = NULL;
    struct config cfg;
    struct app_error err = {0};
    struct store *probe = NULL;
    unsigned char *pepper = NULL;
    size_t pepper_len = 0;
    char msg[CONFIG_ERR_LEN];
    int c, status = 1;

    while ((c = getopt_long(argc, argv, "c:l:w:t:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_file = optarg;
            break;
        case 'l':
            flag_listen = optarg;
            break;
        case 'w':
            flag_workers = optarg;
            break;
        case 't':
            flag_threads = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            puts(PACKAGE_STRING);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (config_load(&cfg, config_file, msg) != 0 ||
        (flag_listen && config_set(&cfg, "LOOPED_LISTEN", flag_listen, msg) != 0) ||
        (flag_workers && config_set(&cfg, "LOOPED_WORKERS", flag_workers, msg) != 0) ||
        (flag_threads && config_set(&cfg, "LOOPED_THREADS", flag_threads, msg) != 0) ||
        config_finish(&cfg, msg) != 0) {
        fprintf(stderr, "looped-fcgi: %s\n", msg);
        goto done;
    }
    log_set_level(cfg.log_level);
    /* Fail at start-up, in one line, rather than on the first request. */
    if (config_pepper_read(cfg.pepper_file, &pepper, &pepper_len, msg) != 0) {
        fprintf(stderr, "looped-fcgi: %s\n", msg);
        goto done;
    }
    if (catalog_load(cfg.schema_dir, msg) != 0) {
        fprintf(stderr, "looped-fcgi: %s\n", msg);
        goto done;
    }
    if (app->init && app->init(cfg.schema_dir, msg) != 0) {
        fprintf(stderr, "looped-fcgi: %s\n", msg);
        goto done;
    }
    if (store_open(&probe, &cfg, &err) != 0) {
        fprintf(stderr, "looped-fcgi: %s\n", err.log);
        goto done;
    }
    store_close(probe);
    if (auth_init(pepper, pepper_len) != 0) {
        fprintf(stderr, "looped-fcgi: libgcrypt could not be initialised\n");
        goto done;
    }
    if (cfg.listen) {
        status = pool_run(&cfg, app, config_file);
    } else if (FCGX_IsCGI()) {
        fprintf(stderr, "looped-fcgi: fd 0 is not a FastCGI socket: start me from the web "
                        "server, or give --listen\n");
        status = 2;
    } else {
        status = worker_run(&cfg, app, 0, cfg.threads ? (int)cfg.threads : 1);
    }
done:
    auth_shutdown();
    if (app->fini)
        app->fini();
    catalog_free();
    config_pepper_free(pepper, pepper_len);
    error_clear(&err);
    config_free(&cfg);
    return status;
}
