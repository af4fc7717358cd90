/* config.c: one table of settings, read from defaults, the environment and a file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#ifndef LOOPED_SCHEMA_DIR_DEFAULT
#define LOOPED_SCHEMA_DIR_DEFAULT "/usr/local/share/looped/schemas"
#endif

enum setting_type { SET_STRING, SET_OPT_STRING, SET_INT, SET_BOOL, SET_LOG_LEVEL, SET_NETS };

struct setting {
    const char *name;
    enum setting_type type;
    size_t offset;
    const char *def;    /* NULL: unset */
    long long min, max; /* SET_INT: the range; SET_NETS: max is the room in the array */
};

#define F(field) offsetof(struct config, field)

/* Every setting of Looped; README.md documents the same list. */
static const struct setting settings[] = {
    {"LOOPED_MONGODB_URI", SET_STRING, F(mongodb_uri), "mongodb://127.0.0.1:27017", 0, 0},
    {"LOOPED_DB", SET_STRING, F(db), "looped", 0, 0},
    {"LOOPED_PEPPER_FILE", SET_STRING, F(pepper_file), "/etc/looped/pepper", 0, 0},
    {"LOOPED_SCHEMA_DIR", SET_STRING, F(schema_dir), LOOPED_SCHEMA_DIR_DEFAULT, 0, 0},
    {"LOOPED_LISTEN", SET_OPT_STRING, F(listen), NULL, 0, 0},
    {"LOOPED_SOCKET_GROUP", SET_OPT_STRING, F(socket_group), NULL, 0, 0},
    {"LOOPED_MAX_BODY", SET_INT, F(max_body), "1048576", 1024, 64LL * 1024 * 1024},
    {"LOOPED_WORKERS", SET_INT, F(workers), "2", 1, 256},
    {"LOOPED_THREADS", SET_INT, F(threads), "0", 0, 256},
    {"LOOPED_DB_TIMEOUT_MS", SET_INT, F(db_timeout_ms), "2000", 100, 60000},
    {"LOOPED_KEY_CACHE_TTL_MS", SET_INT, F(key_cache_ttl_ms), "3600000", 0, 86400000},
    {"LOOPED_AUDIT_RETENTION_DAYS", SET_INT, F(audit_retention_days), "365", 1, 36500},
    {"LOOPED_LOG_LEVEL", SET_LOG_LEVEL, F(log_level), "info", 0, 0},
    {"LOOPED_TEST_ROUTES", SET_BOOL, F(test_routes), "0", 0, 0},
    {"LOOPED_AUDIT", SET_BOOL, F(audit), "1", 0, 0},
    {"LOOPED_STATE_DIR", SET_OPT_STRING, F(state_dir), NULL, 0, 0},
    {"LOOPED_HOST_ID", SET_OPT_STRING, F(host_id), NULL, 0, 0},
    {"LOOPED_TRUSTED_PROXIES", SET_NETS, F(trusted), "", 0, CONFIG_TRUSTED_MAX},
    {"LOOPED_METRICS_ALLOW", SET_NETS, F(metrics_allow), "127.0.0.1/32,::1/128", 0,
     CONFIG_METRICS_MAX},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

/* Where a SET_NETS setting's number of blocks goes. */
static size_t *nets_count(struct config *cfg, const struct setting *s)
{
    return s->offset == F(trusted) ? &cfg->ntrusted : &cfg->nmetrics_allow;
}

static int setting_apply(struct config *cfg, const struct setting *s, const char *value, char *err)
{
    char *base = (char *)cfg + s->offset;
    long long n;

    switch (s->type) {
    case SET_STRING:
    case SET_OPT_STRING: {
        char *copy;

        if (*value == '\0' && s->type == SET_STRING) {
            snprintf(err, CONFIG_ERR_LEN, "%s: must not be empty", s->name);
            return -1;
        }
        copy = *value ? strdup(value) : NULL;
        if (*value && copy == NULL) {
            snprintf(err, CONFIG_ERR_LEN, "%s: out of memory", s->name);
            return -1;
        }
        free(*(char **)base);
        *(char **)base = copy;
        return 0;
    }
    case SET_INT:
        if (util_strtonum(value, s->min, s->max, &n) != 0) {
            snprintf(err, CONFIG_ERR_LEN, "%s: \"%.40s\" is not a whole number from %lld to %lld",
                     s->name, value, s->min, s->max);
            return -1;
        }
        *(long long *)base = n;
        return 0;
    case SET_BOOL:
        if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
            *(bool *)base = true;
        else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
            *(bool *)base = false;
        else {
            snprintf(err, CONFIG_ERR_LEN, "%s: \"%.40s\" is not one of 1, 0, true, false", s->name,
                     value);
            return -1;
        }
        return 0;
    case SET_LOG_LEVEL:
        if (log_parse_level(value, (enum log_level *)base) != 0) {
            snprintf(err, CONFIG_ERR_LEN, "%s: \"%.40s\" is not one of error, warn, info, debug",
                     s->name, value);
            return -1;
        }
        return 0;
    case SET_NETS: {
        char bad[64];
        int count = ipnet_list_parse(value, (struct ipnet *)base, (size_t)s->max, bad, sizeof bad);

        if (count < 0) {
            snprintf(err, CONFIG_ERR_LEN,
                     "%s: \"%.48s\" is not an IP address or CIDR block (or more than %lld)",
                     s->name, bad, s->max);
            return -1;
        }
        *nets_count(cfg, s) = (size_t)count;
        return 0;
    }
    }
    return -1;
}

int config_set(struct config *cfg, const char *name, const char *value, char *err)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (strcmp(settings[i].name, name) == 0)
            return setting_apply(cfg, &settings[i], value, err);
    }
    snprintf(err, CONFIG_ERR_LEN, "%.64s: unknown setting", name);
    return -1;
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

/* Lines "NAME=value"; blank lines and "#" comments are skipped. The same file can serve as
 * a systemd EnvironmentFile, so values may be wrapped in double quotes. */
static int config_read_file(struct config *cfg, const char *file, char *err)
{
    char line[4096], prefixed[CONFIG_ERR_LEN];
    FILE *fp;
    int lineno = 0, ret = -1;

    fp = fopen(file, "r");
    if (fp == NULL) {
        snprintf(err, CONFIG_ERR_LEN, "%.200s: %s", file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, fp) != NULL) {
        char *s, *eq, *value;
        size_t vlen;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(fp)) {
            snprintf(err, CONFIG_ERR_LEN, "%.200s:%d: line too long", file, lineno);
            goto done;
        }
        s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, CONFIG_ERR_LEN, "%.200s:%d: expected NAME=value", file, lineno);
            goto done;
        }
        *eq = '\0';
        value = trim(eq + 1);
        vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        if (config_set(cfg, trim(s), value, prefixed) != 0) {
            snprintf(err, CONFIG_ERR_LEN, "%.100s:%d: %s", file, lineno, prefixed);
            goto done;
        }
    }
    if (ferror(fp)) {
        snprintf(err, CONFIG_ERR_LEN, "%.200s: read error", file);
        goto done;
    }
    ret = 0;
done:
    fclose(fp);
    return ret;
}

/* hostname plus where this host's pool listens (or its state directory): two pools on one
 * machine are two hosts to the store's shared counters. */
int config_finish(struct config *cfg, char *err)
{
    char name[256], id[384];

    if (cfg->host_id)
        return 0;
    if (gethostname(name, sizeof name) != 0)
        snprintf(name, sizeof name, "localhost");
    name[sizeof name - 1] = '\0';
    snprintf(id, sizeof id, "%.200s:%.150s", name,
             cfg->listen      ? cfg->listen
             : cfg->state_dir ? cfg->state_dir
                              : "spawned");
    cfg->host_id = strdup(id);
    if (cfg->host_id == NULL) {
        snprintf(err, CONFIG_ERR_LEN, "LOOPED_HOST_ID: out of memory");
        return -1;
    }
    return 0;
}

int config_load(struct config *cfg, const char *file, char *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *env = getenv(settings[i].name);

        if (settings[i].def && setting_apply(cfg, &settings[i], settings[i].def, err) != 0)
            return -1;
        if (env && setting_apply(cfg, &settings[i], env, err) != 0)
            return -1;
    }
    if (file && config_read_file(cfg, file, err) != 0)
        return -1;
#ifdef LOOPED_SCHEMA_DIR_SOURCE
    /* Not installed yet (a build tree, deploy/dev): use the schemas of the source tree, unless
     * a directory was named explicitly. */
    if (strcmp(cfg->schema_dir, LOOPED_SCHEMA_DIR_DEFAULT) == 0 &&
        access(LOOPED_SCHEMA_DIR_DEFAULT, F_OK) != 0) {
        free(cfg->schema_dir);
        cfg->schema_dir = strdup(LOOPED_SCHEMA_DIR_SOURCE);
        if (cfg->schema_dir == NULL) {
            snprintf(err, CONFIG_ERR_LEN, "LOOPED_SCHEMA_DIR: out of memory");
            return -1;
        }
    }
#endif
    return 0;
}

int config_pepper_read(const char *path, unsigned char **pepper, size_t *len, char *err)
{
    unsigned char buf[1025];
    size_t n = 0;
    int fd, ret = -1;

    *pepper = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, CONFIG_ERR_LEN, "LOOPED_PEPPER_FILE: %.200s: %s", path, strerror(errno));
        return -1;
    }
    while (n < sizeof buf) {
        ssize_t got = read(fd, buf + n, sizeof buf - n);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, CONFIG_ERR_LEN, "LOOPED_PEPPER_FILE: %.200s: %s", path, strerror(errno));
            goto done;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n < 32 || n > 1024) {
        snprintf(err, CONFIG_ERR_LEN,
                 "LOOPED_PEPPER_FILE: %.200s: must hold 32 to 1024 bytes (run looped-admin init)",
                 path);
        goto done;
    }
    *pepper = malloc(n);
    if (*pepper == NULL) {
        snprintf(err, CONFIG_ERR_LEN, "LOOPED_PEPPER_FILE: out of memory");
        goto done;
    }
    memcpy(*pepper, buf, n);
    *len = n;
    ret = 0;
done:
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return ret;
}

void config_pepper_free(unsigned char *pepper, size_t len)
{
    if (pepper == NULL)
        return;
    explicit_bzero(pepper, len);
    free(pepper);
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].type == SET_STRING || settings[i].type == SET_OPT_STRING) {
            char **p = (char **)((char *)cfg + settings[i].offset);

            free(*p);
            *p = NULL;
        }
    }
}
