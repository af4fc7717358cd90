/* admin.c: looped-admin, the operator's command line: store set-up, teams, users, members. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "store.h"
#include "util.h"

static const char usage[] =
    "usage: looped-admin [--config FILE] COMMAND\n"
    "  init                              create indexes and the pepper file (idempotent)\n"
    "  team create TEAM_ID --name NAME   add a team\n"
    "  team list                         list teams (id, name)\n"
    "  user add USER                     add a user (the web server's user name)\n"
    "  user list                         list users\n"
    "  member add TEAM_ID USER ROLE      add or change a membership; ROLE: OWNER|ADMIN|MEMBER\n"
    "  member remove TEAM_ID USER        remove a membership\n"
    "  member list TEAM_ID               list members (user, role)\n"
    "  rate list                         the rate-limited keys' counts, per host, in their\n"
    "                                    current windows (key, host, limit window, now, before)\n"
    "  policy show TEAM_ID               the team's key policy (JSON, as the API answers it)\n"
    "  leaks pending                     leak reports not worked yet (id, at, keys, source)\n";

/* One leak report waiting to be worked (leaks pending): id, at, how many keys, source. */
static void print_leak(const struct leak_report *r, void *ctx)
{
    char at[UTIL_TIME_LEN];

    (void)ctx;
    printf("%s\t%s\t%zu keys\t%s\n", r->id, util_time_format(r->at, at), r->ndigests,
           r->source[0] ? r->source : "-");
}

static int usage_error(const char *what)
{
    fprintf(stderr, "looped-admin: %s\n%s", what, usage);
    return 2;
}

static bool valid_team_id(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 63 || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    }
    return true;
}

static bool valid_user(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c == 0x7f || c == ':')
            return false;
    }
    return true;
}

static bool valid_role(const char *s)
{
    return strcmp(s, "OWNER") == 0 || strcmp(s, "ADMIN") == 0 || strcmp(s, "MEMBER") == 0;
}

/* Creates the pepper file if it does not exist: 48 random bytes, mode 0600, written to a
 * temporary file and linked into place so a reader never sees half a pepper. */
static int pepper_create(const char *path)
{
    unsigned char pepper[48];
    char tmp[4096], dir[4096];
    int fd = -1, ret = -1;
    struct stat st;

    if (stat(path, &st) == 0)
        return 0;
    if (errno != ENOENT) {
        fprintf(stderr, "looped-admin: LOOPED_PEPPER_FILE: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir ||
        snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        fprintf(stderr, "looped-admin: LOOPED_PEPPER_FILE: path too long\n");
        return -1;
    }
    if (mkdir(dirname(dir), 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "looped-admin: LOOPED_PEPPER_FILE: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (util_random(pepper, sizeof pepper) != 0) {
        fprintf(stderr, "looped-admin: no randomness: %s\n", strerror(errno));
        goto done;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, pepper, sizeof pepper) != (ssize_t)sizeof pepper || fsync(fd) != 0) {
        fprintf(stderr, "looped-admin: %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    /* link() fails if another init won the race: theirs is kept, ours discarded. */
    if (link(tmp, path) != 0 && errno != EEXIST) {
        fprintf(stderr, "looped-admin: %s: %s\n", path, strerror(errno));
        goto done;
    }
    printf("created pepper file %s\n", path);
    ret = 0;
done:
    explicit_bzero(pepper, sizeof pepper);
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    return ret;
}

static void print_rows(json_t *rows, const char *f1, const char *f2)
{
    size_t i;
    json_t *r;

    json_array_foreach (rows, i, r) {
        if (f2)
            printf("%s\t%s\n", json_string_value(json_object_get(r, f1)),
                   json_string_value(json_object_get(r, f2)));
        else
            printf("%s\n", json_string_value(json_object_get(r, f1)));
    }
}

static int run(struct store *st, const struct config *cfg, int argc, char **argv,
               struct app_error *err)
{
    const char *cmd = argv[0], *sub = argc > 1 ? argv[1] : "";
    json_t *rows = NULL;

    if (strcmp(cmd, "init") == 0 && argc == 1) {
        if (pepper_create(cfg->pepper_file) != 0)
            return 1;
        size_t added;

        if (store_indexes_create(st, err) != 0)
            return -1;
        printf("indexes ready in database %s\n", cfg->db);
        if (store_key_digests_backfill(st, &added, err) != 0)
            return -1;
        if (added > 0)
            printf("digest documents added for %zu keys\n", added);
        return 0;
    }
    if (strcmp(cmd, "team") == 0 && strcmp(sub, "create") == 0) {
        if (argc != 5 || strcmp(argv[3], "--name") != 0)
            return usage_error("team create needs TEAM_ID --name NAME");
        if (!valid_team_id(argv[2]))
            return usage_error("TEAM_ID: 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
        if (strlen(argv[4]) < 1 || strlen(argv[4]) > 100)
            return usage_error("NAME: 1 to 100 characters");
        if (store_team_create(st, argv[2], argv[4], err) != 0)
            return -1;
        printf("%s\n", argv[2]);
        return 0;
    }
    if (strcmp(cmd, "team") == 0 && strcmp(sub, "list") == 0 && argc == 2) {
        if ((rows = store_team_list(st, err)) == NULL)
            return -1;
        print_rows(rows, "id", "name");
        json_decref(rows);
        return 0;
    }
    if (strcmp(cmd, "user") == 0 && strcmp(sub, "add") == 0) {
        if (argc != 3)
            return usage_error("user add needs USER");
        if (!valid_user(argv[2]))
            return usage_error("USER: 1 to 128 printable characters, no spaces or ':'");
        return store_user_add(st, argv[2], err);
    }
    if (strcmp(cmd, "user") == 0 && strcmp(sub, "list") == 0 && argc == 2) {
        if ((rows = store_user_list(st, err)) == NULL)
            return -1;
        print_rows(rows, "user", NULL);
        json_decref(rows);
        return 0;
    }
    if (strcmp(cmd, "member") == 0 && strcmp(sub, "add") == 0) {
        if (argc != 5)
            return usage_error("member add needs TEAM_ID USER ROLE");
        if (!valid_team_id(argv[2]) || !valid_user(argv[3]))
            return usage_error("bad TEAM_ID or USER");
        if (!valid_role(argv[4]))
            return usage_error("ROLE must be OWNER, ADMIN or MEMBER");
        return store_member_set(st, argv[2], argv[3], argv[4], err);
    }
    if (strcmp(cmd, "member") == 0 && strcmp(sub, "remove") == 0) {
        if (argc != 4)
            return usage_error("member remove needs TEAM_ID USER");
        return store_member_remove(st, argv[2], argv[3], err);
    }
    if (strcmp(cmd, "member") == 0 && strcmp(sub, "list") == 0) {
        if (argc != 3)
            return usage_error("member list needs TEAM_ID");
        if ((rows = store_member_list(st, argv[2], err)) == NULL)
            return -1;
        print_rows(rows, "user", "role");
        json_decref(rows);
        return 0;
    }
    if (strcmp(cmd, "rate") == 0 && strcmp(sub, "list") == 0 && argc == 2) {
        size_t i;
        json_t *r;

        if ((rows = store_rate_list(st, util_now_ms(), err)) == NULL)
            return -1;
        json_array_foreach (rows, i, r) {
            printf("%s\t%s\tper %llds\t%lld\t%lld\n",
                   json_string_value(json_object_get(r, "key_id")),
                   json_string_value(json_object_get(r, "host")),
                   (long long)json_integer_value(json_object_get(r, "per_seconds")),
                   (long long)json_integer_value(json_object_get(r, "cur")),
                   (long long)json_integer_value(json_object_get(r, "prev")));
        }
        json_decref(rows);
        return 0;
    }
    if (strcmp(cmd, "policy") == 0 && strcmp(sub, "show") == 0) {
        struct key_policy p;
        char *text;

        if (argc != 3 || !valid_team_id(argv[2]))
            return usage_error("policy show needs TEAM_ID");
        if (store_policy_get(st, argv[2], &p, err) != 0)
            return -1;
        if ((rows = policy_to_json(&p)) == NULL ||
            (text = json_dumps(rows, JSON_SORT_KEYS)) == NULL) {
            json_decref(rows);
            return error_set(err, ERR_INTERNAL, "out of memory");
        }
        printf("%s\n", text);
        free(text);
        json_decref(rows);
        return 0;
    }
    if (strcmp(cmd, "leaks") == 0 && strcmp(sub, "pending") == 0 && argc == 2)
        return store_leak_pending(st, NULL, INT64_MAX, print_leak, NULL, err);
    return usage_error("unknown command");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL;
    struct config cfg;
    struct store *st = NULL;
    struct app_error err = {0};
    char msg[CONFIG_ERR_LEN];
    int c, rc = 1;

    /* "+": stop at the command, so "team create x --name y" keeps its own --name. */
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_file = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind >= argc)
        return usage_error("no command");
    if (config_load(&cfg, config_file, msg) != 0) {
        fprintf(stderr, "looped-admin: %s\n", msg);
        goto done;
    }
    log_set_level(LOG_ERROR);
    if (catalog_load(cfg.schema_dir, msg) != 0) {
        fprintf(stderr, "looped-admin: %s\n", msg);
        goto done;
    }
    if (store_open(&st, &cfg, &err) != 0) {
        fprintf(stderr, "looped-admin: %s\n", err.log);
        goto done;
    }
    rc = run(st, &cfg, argc - optind, argv + optind, &err);
    if (rc < 0) {
        /* The operator may see the detail: this is their own terminal, not an API client. */
        if (err.code == ERR_UNAVAILABLE)
            fprintf(stderr, "looped-admin: the store at LOOPED_MONGODB_URI is unavailable (%s)\n",
                    err.log);
        else
            fprintf(stderr, "looped-admin: %s\n", err.message[0] ? err.message : err.log);
        rc = 1;
    }
done:
    store_close(st);
    catalog_free();
    error_clear(&err);
    config_free(&cfg);
    return rc;
}
