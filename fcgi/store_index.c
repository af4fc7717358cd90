/* store_index.c: the indexes of every collection, created by looped-admin init. */
#include <stdio.h>

#include "catalog.h"
#include "store_priv.h"

/* Runs a command against the database (createIndexes). */
static int store_command(struct store *st, const bson_t *cmd, const char *what,
                         struct app_error *err)
{
    mongoc_client_t *c = store_pop(st, err);
    mongoc_database_t *db = NULL;
    bson_error_t be;
    int ret = -1;

    if (c == NULL)
        return -1;
    db = mongoc_client_get_database(c, st->db);
    if (!mongoc_database_write_command_with_opts(db, cmd, NULL, NULL, &be)) {
        store_fail(err, &be, what);
        goto done;
    }
    ret = 0;
done:
    mongoc_database_destroy(db);
    store_push(st, c);
    return ret;
}

struct index_spec {
    const char *collection;
    const char *name;
    const char *keys[4]; /* field names; a leading '-' means descending */
    bool unique;
};

/* design.md §4: the fixed collections. The resources' indexes follow from the catalog. */
static const struct index_spec indexes[] = {
    {"memberships", "team_user", {"team_id", "user"}, true},
    {"memberships", "user", {"user"}, false},
    {"api_keys", "hash", {"hash"}, true},
    {"api_keys", "team_created", {"team_id", "-created_at", "-_id"}, false},
    {"audit", "team_at", {"team_id", "-at"}, false},
    {"audit", "team_key_at", {"team_id", "key_id", "-at"}, false},
    {"audit", "team_actor_at", {"team_id", "actor.id", "-at"}, false}, /* the list by actor */
    {"audit", "at", {"at"}, false}, /* the retention purge: {at < cutoff} across teams */
    {"rate_counts", "until", {"until"}, false}, /* the hosts' reads and the purge */
    /* The purge of kept idempotent answers (idempotency.h), the same way. */
    {"idempotency_keys", "at", {"at"}, false},
};

/* Creates one index (createIndexes of a single spec); an existing one with the same
 * definition is no error. */
static int index_create(struct store *st, const struct index_spec *ix, struct app_error *err)
{
    bson_t cmd = BSON_INITIALIZER, arr, spec, key;
    int rc;

    BSON_APPEND_UTF8(&cmd, "createIndexes", ix->collection);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &spec);
    BSON_APPEND_DOCUMENT_BEGIN(&spec, "key", &key);
    for (size_t k = 0; k < 4 && ix->keys[k]; k++) {
        const char *f = ix->keys[k];

        BSON_APPEND_INT32(&key, f[0] == '-' ? f + 1 : f, f[0] == '-' ? -1 : 1);
    }
    bson_append_document_end(&spec, &key);
    BSON_APPEND_UTF8(&spec, "name", ix->name);
    if (ix->unique)
        BSON_APPEND_BOOL(&spec, "unique", true);
    bson_append_document_end(&arr, &spec);
    bson_append_array_end(&cmd, &arr);
    rc = store_command(st, &cmd, ix->collection, err);
    bson_destroy(&cmd);
    return rc;
}

/* The fixed indexes, then per resource {team_id, created_at, _id} for pages and
 * {team_id, field, created_at, _id} for each filterable field: a new schema brings its own
 * indexes. */
int store_indexes_create(struct store *st, struct app_error *err)
{
    const struct resource *res;
    size_t n;

    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        if (index_create(st, &indexes[i], err) != 0)
            return -1;
    }
    res = catalog_resources(&n);
    for (size_t i = 0; i < n; i++) {
        struct index_spec page = {
            res[i].name, "team_created", {"team_id", "-created_at", "-_id"}, false};

        if (index_create(st, &page, err) != 0)
            return -1;
        for (size_t f = 0; f < res[i].nfilterable; f++) {
            char name[80];
            struct index_spec ix = {
                res[i].name, name, {"team_id", res[i].filterable[f], "-created_at", "-_id"}, false};

            /* The list's order after the filter: a filtered page reads only its rows. */
            snprintf(name, sizeof name, "team_%s_created", res[i].filterable[f]);
            if (index_create(st, &ix, err) != 0)
                return -1;
        }
    }
    return 0;
}
