/* worker.h: one worker process: T threads accepting FastCGI requests on a shared socket. */
#ifndef LOOPED_WORKER_H
#define LOOPED_WORKER_H

#include "config.h"

struct store;
struct app;

/* What a request's handler may use; shared by the threads of a worker process. */
struct worker_ctx {
    const struct config *cfg;
    struct store *store;
    char pid[16]; /* this process's id, for the X-Worker header of test builds */
};

/* Serves app's routes (app.h; the caller's, for the life of the call) on listen_fd (a
 * listening socket, made non-blocking here) with nthreads threads until SIGTERM, SIGINT or
 * SIGHUP, then lets the requests in flight finish and returns the process exit status (0, or
 * 1 when the store could not be set up). Must run in a process of its own: it blocks signals
 * and opens the store (after any fork). */
int worker_run(const struct config *cfg, const struct app *app, int listen_fd, int nthreads);

#endif
