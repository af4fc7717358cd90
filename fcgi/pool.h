/* pool.h: the self-managed pool: a supervisor that forks, watches and replaces workers. */
#ifndef LOOPED_POOL_H
#define LOOPED_POOL_H

#include "config.h"

struct app;

/* Opens the listening socket of spec ("unix:/path" or "host:port", "[v6]:port"). A unix
 * socket gets mode 0660 and, if group is not NULL, that group; a stale socket file is
 * replaced, a live one is an error. Returns the descriptor, or -1 with one line in err
 * (CONFIG_ERR_LEN bytes). */
int pool_listen(const char *spec, const char *group, char *err);

/* Runs the supervisor in the foreground: listens on cfg->listen, keeps cfg->workers worker
 * processes of cfg->threads threads serving app (worker.h), restarts one that dies, replaces
 * them all gracefully on SIGHUP (re-reading config_file, if any), and on SIGTERM/SIGINT lets
 * them drain, removes the socket and returns 0. Returns 1 if it could not start. cfg and app
 * stay the caller's. */
int pool_run(struct config *cfg, const struct app *app, const char *config_file);

#endif
