/* config.h: the settings of both binaries, from defaults, the environment, a file and flags. */
#ifndef LOOPED_CONFIG_H
#define LOOPED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "ipnet.h"
#include "log.h"

#define CONFIG_TRUSTED_MAX 64
#define CONFIG_METRICS_MAX 64

struct config {
    char *mongodb_uri;       /* LOOPED_MONGODB_URI */
    char *db;                /* LOOPED_DB */
    char *pepper_file;       /* LOOPED_PEPPER_FILE */
    char *schema_dir;        /* LOOPED_SCHEMA_DIR */
    char *listen;            /* LOOPED_LISTEN; NULL: spawned, accept on fd 0 */
    char *socket_group;      /* LOOPED_SOCKET_GROUP; group of the unix socket, or NULL */
    long long max_body;      /* LOOPED_MAX_BODY, bytes */
    long long workers;       /* LOOPED_WORKERS */
    long long threads;       /* LOOPED_THREADS; 0 means "the default of the mode" */
    long long db_timeout_ms; /* LOOPED_DB_TIMEOUT_MS */
    long long key_cache_ttl_ms;
    long long audit_retention_days;
    enum log_level log_level; /* LOOPED_LOG_LEVEL */
    bool test_routes;         /* LOOPED_TEST_ROUTES */
    bool audit;               /* LOOPED_AUDIT: off only to measure its cost (benchmarks) */
    char *state_dir;          /* LOOPED_STATE_DIR: the spawned processes' shared files, or NULL */
    char *host_id;            /* LOOPED_HOST_ID: this host among those sharing the store */
    struct ipnet trusted[CONFIG_TRUSTED_MAX]; /* LOOPED_TRUSTED_PROXIES */
    size_t ntrusted;
    struct ipnet
        metrics_allow[CONFIG_METRICS_MAX]; /* LOOPED_METRICS_ALLOW: who may read /metrics */
    size_t nmetrics_allow;
};

#define CONFIG_ERR_LEN 256

/* Fills cfg with the defaults, then the LOOPED_* environment variables, then the lines
 * NAME=value of file (if not NULL). Returns 0, or -1 with one line "NAME: reason" in err
 * (CONFIG_ERR_LEN bytes). The caller owns cfg's strings: release them with config_free(),
 * also after a failure. */
int config_load(struct config *cfg, const char *file, char *err);

/* Derives what defaults to other settings once all are read (LOOPED_HOST_ID: the host name
 * and where the pool listens, or its state directory). 0, or -1 with a reason in err. */
int config_finish(struct config *cfg, char *err);

/* Sets one setting by its variable name (e.g. "LOOPED_WORKERS") from text, as the
 * environment or a flag would. Returns 0, or -1 with "NAME: reason" in err. */
int config_set(struct config *cfg, const char *name, const char *value, char *err);

/* Reads the pepper file: at least 32 and at most 1024 bytes. Returns 0 and a malloc'd
 * buffer the caller owns (wipe it with config_pepper_free), or -1 with a reason in err. */
int config_pepper_read(const char *path, unsigned char **pepper, size_t *len, char *err);

/* Wipes and frees a pepper buffer; accepts NULL. */
void config_pepper_free(unsigned char *pepper, size_t len);

/* Releases the strings of cfg; accepts a zeroed or partly loaded cfg. */
void config_free(struct config *cfg);

#endif
