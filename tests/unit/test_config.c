/* test_config.c: defaults, environment, file, flags and the one-line errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../fcgi/config.h"
#include "tap.h"

static char dir[4096];

static const char *write_file(const char *name, const char *text)
{
    static char path[4200];
    FILE *fp;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

int main(void)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    const char *path;
    unsigned char *pepper;
    size_t plen;

    snprintf(dir, sizeof dir, "/tmp/looped-test-config-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    unsetenv("LOOPED_DB");
    unsetenv("LOOPED_WORKERS");

    ok(config_load(&cfg, NULL, err) == 0, "defaults load");
    is_str(cfg.db, "looped", "default db");
    is_str(cfg.mongodb_uri, "mongodb://127.0.0.1:27017", "default uri");
    ok(cfg.max_body == 1048576, "default body limit is 1 MiB");
    ok(cfg.listen == NULL, "spawned mode by default");
    ok(cfg.key_cache_ttl_ms == 3600000 && cfg.audit_retention_days == 365, "key cache and audit");
    ok(!cfg.test_routes, "test routes off by default");
    config_free(&cfg);

    setenv("LOOPED_DB", "fromenv", 1);
    setenv("LOOPED_WORKERS", "3", 1);
    ok(config_load(&cfg, NULL, err) == 0, "environment loads");
    is_str(cfg.db, "fromenv", "environment overrides the default");
    ok(cfg.workers == 3, "numbers from the environment");
    config_free(&cfg);

    path = write_file("ok.conf", "# comment\n\n LOOPED_DB = \"fromfile\" \nLOOPED_LOG_LEVEL=debug\n"
                                 "LOOPED_TEST_ROUTES=true\nLOOPED_LISTEN=unix:/run/x.sock\n");
    ok(config_load(&cfg, path, err) == 0, "file loads: %s", err);
    is_str(cfg.db, "fromfile", "file overrides the environment, quotes and spaces trimmed");
    ok(cfg.workers == 3, "settings absent from the file keep the environment's");
    ok(cfg.log_level == LOG_DEBUG && cfg.test_routes, "log level and boolean");
    is_str(cfg.listen, "unix:/run/x.sock", "listen");
    ok(config_set(&cfg, "LOOPED_WORKERS", "8", err) == 0 && cfg.workers == 8, "flag overrides");
    config_free(&cfg);

    setenv("LOOPED_WORKERS", "0", 1);
    ok(config_load(&cfg, NULL, err) != 0, "workers 0 rejected");
    ok(strncmp(err, "LOOPED_WORKERS: ", 16) == 0 && strchr(err, '\n') == NULL,
       "one line naming the setting: %s", err);
    config_free(&cfg);
    setenv("LOOPED_WORKERS", "2x", 1);
    ok(config_load(&cfg, NULL, err) != 0, "trailing garbage rejected");
    config_free(&cfg);
    unsetenv("LOOPED_WORKERS");

    path = write_file("bad.conf", "LOOPED_NOPE=1\n");
    ok(config_load(&cfg, path, err) != 0 && strstr(err, "bad.conf:1: LOOPED_NOPE: unknown"),
       "unknown setting in file: %s", err);
    config_free(&cfg);
    path = write_file("bad2.conf", "just words\n");
    ok(config_load(&cfg, path, err) != 0 && strstr(err, "expected NAME=value"),
       "line without '=': %s", err);
    config_free(&cfg);
    path = write_file("bad3.conf", "LOOPED_LOG_LEVEL=loud\n");
    ok(config_load(&cfg, path, err) != 0 && strstr(err, "LOOPED_LOG_LEVEL"), "bad level: %s", err);
    config_free(&cfg);
    path = write_file("bad4.conf", "LOOPED_DB=\n");
    ok(config_load(&cfg, path, err) != 0 && strstr(err, "must not be empty"), "empty db: %s", err);
    config_free(&cfg);
    ok(config_load(&cfg, "/nonexistent/looped.conf", err) != 0 && strstr(err, "No such file"),
       "missing file: %s", err);
    config_free(&cfg);

    ok(config_pepper_read("/nonexistent/pepper", &pepper, &plen, err) != 0 &&
           strncmp(err, "LOOPED_PEPPER_FILE: ", 20) == 0,
       "missing pepper: %s", err);
    path = write_file("short", "0123456789");
    ok(config_pepper_read(path, &pepper, &plen, err) != 0 && strstr(err, "32 to 1024"),
       "short pepper: %s", err);
    path = write_file("pepper", "0123456789abcdef0123456789abcdef!!");
    ok(config_pepper_read(path, &pepper, &plen, err) == 0 && plen == 34 &&
           memcmp(pepper, "0123456789abcdef", 16) == 0,
       "pepper read whole");
    config_pepper_free(pepper, plen);
    config_pepper_free(NULL, 0);
    config_free(NULL);
    return tap_done();
}
