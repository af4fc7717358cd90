/* pool.c: the supervisor of the self-managed pool (design.md §2). */
#include "pool.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "util.h"
#include "worker.h"

#define POOL_SLOTS       512   /* room for two generations of the largest pool */
#define POOL_STOP_WAIT   30000 /* ms a draining worker gets before SIGKILL */
#define POOL_BACKOFF_MAX 5000  /* ms between restarts of a worker that keeps dying */

struct slot {
    pid_t pid;           /* 0: free */
    unsigned generation; /* workers of an older generation are retiring */
    int64_t started;     /* monotonic ms */
    int64_t stop_sent;   /* monotonic ms of the SIGTERM, 0 if none */
};

struct pool {
    struct config *cfg;
    const struct app *app;
    int listen_fd;
    unsigned generation;
    struct slot slots[POOL_SLOTS];
    int64_t respawn_at; /* when a crashed worker's place is filled again; 0: now */
    int64_t backoff;
    bool unlinked; /* the Unix socket's name is removed (pool_unlink) */
};

static int listen_unix(const char *path, const char *group, char *err)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd = -1;

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, CONFIG_ERR_LEN, "LOOPED_LISTEN: socket path too long");
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, CONFIG_ERR_LEN, "LOOPED_LISTEN: %.200s exists and is not a socket", path);
            close(fd);
            return -1;
        }
        /* Someone answering means another pool is running there: leave it alone. */
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            snprintf(err, CONFIG_ERR_LEN, "LOOPED_LISTEN: %.200s is in use by a running server",
                     path);
            close(fd);
            return -1;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            goto fail;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto fail;
    /* Whoever can connect can claim any REMOTE_USER: only the web server's group may. */
    if (chmod(path, 0660) != 0)
        goto fail;
    if (group) {
        struct group *g = getgrnam(group);

        if (g == NULL) {
            snprintf(err, CONFIG_ERR_LEN, "LOOPED_SOCKET_GROUP: no group %.64s", group);
            close(fd);
            unlink(path);
            return -1;
        }
        if (chown(path, (uid_t)-1, g->gr_gid) != 0)
            goto fail;
    }
    if (listen(fd, 1024) != 0)
        goto fail;
    return fd;
fail:
    snprintf(err, CONFIG_ERR_LEN, "LOOPED_LISTEN: %.200s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static int listen_tcp(const char *spec, char *err)
{
    char host[256];
    const char *colon = strrchr(spec, ':'), *h = spec;
    size_t hlen;
    struct addrinfo hints, *ai = NULL;
    int fd = -1, one = 1, rc;

    if (colon == NULL || colon == spec || colon[1] == '\0') {
        snprintf(err, CONFIG_ERR_LEN, "LOOPED_LISTEN: \"%.100s\" is not unix:PATH or HOST:PORT",
                 spec);
        return -1;
    }
    hlen = (size_t)(colon - spec);
    if (spec[0] == '[' && colon[-1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) {
        snprintf(err, CONFIG_ERR_LEN, "LOOPED_LISTEN: host name too long");
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, CONFIG_ERR_LEN, "LOOPED_LISTEN: %.100s: %s", spec, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, CONFIG_ERR_LEN, "LOOPED_LISTEN: %.100s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

int pool_listen(const char *spec, const char *group, char *err)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return listen_unix(spec + 5, group, err);
    return listen_tcp(spec, err);
}

static pid_t pool_spawn(struct pool *p, struct slot *s)
{
    pid_t pid = fork();

    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        sigset_t none;

        /* A worker must not outlive its supervisor: it drains and exits with it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            _exit(0);
        signal(SIGCHLD, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        _exit(worker_run(p->cfg, p->app, p->listen_fd, (int)p->cfg->threads));
    }
    s->pid = pid;
    s->generation = p->generation;
    s->started = util_mono_ms();
    s->stop_sent = 0;
    return pid;
}

/* Starts workers of the current generation until there are cfg->workers of them, unless a
 * crash loop is being waited out. */
static void pool_fill(struct pool *p)
{
    long long have = 0;

    if (p->respawn_at && util_mono_ms() < p->respawn_at)
        return;
    p->respawn_at = 0;
    for (int i = 0; i < POOL_SLOTS; i++)
        have += p->slots[i].pid && p->slots[i].generation == p->generation;
    for (int i = 0; i < POOL_SLOTS && have < p->cfg->workers; i++) {
        if (p->slots[i].pid == 0) {
            if (pool_spawn(p, &p->slots[i]) < 0)
                return;
            have++;
        }
    }
}

static int pool_live(const struct pool *p)
{
    int n = 0;

    for (int i = 0; i < POOL_SLOTS; i++)
        n += p->slots[i].pid != 0;
    return n;
}

static void pool_reap(struct pool *p, bool stopping)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < POOL_SLOTS; i++) {
            struct slot *s = &p->slots[i];
            int64_t lived;

            if (s->pid != pid)
                continue;
            lived = util_mono_ms() - s->started;
            s->pid = 0;
            if (stopping || s->generation != p->generation || s->stop_sent)
                break; /* asked to go */
            if (WIFSIGNALED(status))
                log_error("worker %ld killed by signal %d; starting another", (long)pid,
                          WTERMSIG(status));
            else
                log_error("worker %ld exited with status %d; starting another", (long)pid,
                          WEXITSTATUS(status));
            metrics_worker_restart();
            /* A worker that dies at once will die again: back off instead of spinning. */
            if (lived < 1000) {
                p->backoff = p->backoff ? p->backoff * 2 : 100;
                if (p->backoff > POOL_BACKOFF_MAX)
                    p->backoff = POOL_BACKOFF_MAX;
                p->respawn_at = util_mono_ms() + p->backoff;
            } else {
                p->backoff = 0;
            }
            break;
        }
    }
}

static void pool_signal_old(struct pool *p, bool all)
{
    int64_t now = util_mono_ms();

    for (int i = 0; i < POOL_SLOTS; i++) {
        struct slot *s = &p->slots[i];

        if (s->pid == 0 || (!all && s->generation == p->generation))
            continue;
        if (s->stop_sent == 0) {
            kill(s->pid, SIGTERM);
            s->stop_sent = now;
        } else if (now - s->stop_sent > POOL_STOP_WAIT) {
            log_error("worker %ld did not drain in %d ms; killing it", (long)s->pid,
                      POOL_STOP_WAIT);
            kill(s->pid, SIGKILL);
        }
    }
}

/* A stop first removes a Unix socket's name: the web server's new connections fail at once
 * (it answers 503, or tries another backend) instead of queueing where no worker will take
 * them, while the workers serve what is already queued (worker.c) and the socket stays open
 * until they have. Once only: the name may belong to the next pool by the time this one
 * exits. */
static void pool_unlink(struct pool *p)
{
    if (!p->unlinked && p->cfg->listen && strncmp(p->cfg->listen, "unix:", 5) == 0)
        unlink(p->cfg->listen + 5);
    p->unlinked = true;
}

/* SIGHUP: re-read the settings (not the listening socket) and start a new generation; the
 * old one drains, so no request is dropped: the socket stays open all along. */
static void pool_reload(struct pool *p, const char *config_file)
{
    struct config fresh;
    char err[CONFIG_ERR_LEN];

    if (config_load(&fresh, config_file, err) != 0) {
        log_error("reload: %s; keeping the current settings", err);
        config_free(&fresh);
    } else {
        if (fresh.listen && strcmp(fresh.listen, p->cfg->listen) != 0)
            log_warn("reload: LOOPED_LISTEN changes only with a restart");
        free(fresh.listen);
        fresh.listen = p->cfg->listen;
        p->cfg->listen = NULL;
        /* Flags given on the command line are not re-applied: keep the pool's shape. */
        fresh.workers = p->cfg->workers;
        fresh.threads = p->cfg->threads;
        if (config_finish(&fresh, err) != 0)
            log_error("reload: %s", err); /* out of memory: the host id stays unset */
        config_free(p->cfg);
        *p->cfg = fresh;
        log_set_level(p->cfg->log_level);
    }
    p->generation++;
    p->respawn_at = 0;
    p->backoff = 0;
    log_info("reload: starting generation %u", p->generation);
    pool_fill(p);
    pool_signal_old(p, false);
}

int pool_run(struct config *cfg, const struct app *app, const char *config_file)
{
    struct pool *p;
    char err[CONFIG_ERR_LEN];
    sigset_t set;
    bool stopping = false;
    int status = 1;

    p = calloc(1, sizeof *p);
    if (p == NULL)
        return 1;
    p->cfg = cfg;
    p->app = app;
    if (cfg->threads == 0)
        cfg->threads = 4;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    /* The workers' shared rate-limit counters outlive each of them, and every reload. */
    if (ratelimit_attach_anon() != 0) {
        fprintf(stderr, "looped-fcgi: cannot map the rate-limit table: %s\n", strerror(errno));
        goto done;
    }
    /* So do the workers' metrics: a scrape sees every worker, a dead one's counts too. */
    if (metrics_attach_anon() != 0) {
        fprintf(stderr, "looped-fcgi: cannot map the metrics table: %s\n", strerror(errno));
        goto done;
    }
    p->listen_fd = pool_listen(cfg->listen, cfg->socket_group, err);
    if (p->listen_fd < 0) {
        fprintf(stderr, "looped-fcgi: %s\n", err);
        goto done;
    }
    log_info("listening on %s with %lld workers of %lld threads", cfg->listen, cfg->workers,
             cfg->threads);
    pool_fill(p);
    for (;;) {
        struct timespec tick = {0, 200 * 1000000};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &tick);

        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                log_info("stopping: draining %d workers", pool_live(p));
                pool_unlink(p);
            }
            stopping = true;
        } else if (sig == SIGHUP && !stopping) {
            pool_reload(p, config_file);
        }
        pool_reap(p, stopping);
        if (stopping) {
            pool_signal_old(p, true);
            if (pool_live(p) == 0)
                break;
        } else {
            pool_fill(p);
            pool_signal_old(p, false);
        }
    }
    status = 0;
    log_info("stopped");
done:
    if (p->listen_fd >= 0) {
        close(p->listen_fd);
        pool_unlink(p);
    }
    free(p);
    return status;
}
