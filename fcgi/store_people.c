/* store_people.c: teams, users and memberships (looped-admin, /me, a request's role). */
#include <string.h>

#include "store_priv.h"
#include "util.h"

static json_t *row_membership(const bson_t *doc)
{
    return json_pack("{s:s, s:s, s:s}", "id", store_utf8(doc, "team_id"), "name", "", "role",
                     store_utf8(doc, "role"));
}

static json_t *row_team(const bson_t *doc)
{
    return json_pack("{s:s, s:s}", "id", store_utf8(doc, "_id"), "name", store_utf8(doc, "name"));
}

static json_t *row_user(const bson_t *doc)
{
    return json_pack("{s:s}", "user", store_utf8(doc, "_id"));
}

static json_t *row_member(const bson_t *doc)
{
    return json_pack("{s:s, s:s}", "user", store_utf8(doc, "user"), "role",
                     store_utf8(doc, "role"));
}

static int team_name_cmp(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));

    return strcmp(x ? x : "", y ? y : "");
}

/* Counts the documents matching filter (0 or 1 for the lookups here). -1 on failure. */
static int64_t store_count(struct store *st, const char *collection, const bson_t *filter,
                           struct app_error *err)
{
    mongoc_client_t *c = store_pop(st, err);
    mongoc_collection_t *coll = NULL;
    bson_error_t be;
    int64_t n;

    if (c == NULL)
        return -1;
    coll = mongoc_client_get_collection(c, st->db, collection);
    n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &be);
    if (n < 0)
        store_fail(err, &be, collection);
    mongoc_collection_destroy(coll);
    store_push(st, c);
    return n;
}

static int store_exists(struct store *st, const char *collection, const char *id,
                        struct app_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    int64_t n = store_count(st, collection, filter, err);

    bson_destroy(filter);
    return n < 0 ? -1 : n > 0;
}

int store_team_create(struct store *st, const char *id, const char *name, struct app_error *err)
{
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "name", BCON_UTF8(name), "created_at",
                           BCON_DATE_TIME(util_now_ms()));
    int rc = store_insert(st, "teams", doc, err);

    bson_destroy(doc);
    if (rc != 0 && err->code == ERR_CONFLICT)
        error_set(err, ERR_CONFLICT, "team %s already exists", id);
    return rc;
}

int store_user_add(struct store *st, const char *user, struct app_error *err)
{
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(user), "created_at", BCON_DATE_TIME(util_now_ms()));
    int rc = store_insert(st, "users", doc, err);

    bson_destroy(doc);
    if (rc != 0 && err->code == ERR_CONFLICT)
        error_set(err, ERR_CONFLICT, "user %s already exists", user);
    return rc;
}

json_t *store_user_teams(struct store *st, const char *user, struct app_error *err)
{
    bson_t *filter = BCON_NEW("user", BCON_UTF8(user));
    bson_t in = BSON_INITIALIZER, ids, *tfilter = NULL;
    json_t *members = NULL, *teams = NULL, *out = NULL, *m, *t;
    json_t *sorted[256];
    size_t i, j, n = 0;
    char key[16];

    members = store_find(st, "memberships", filter, NULL, row_membership, err);
    if (members == NULL)
        goto done;
    if (json_array_size(members) == 0) {
        out = json_array();
        goto done;
    }
    /* Two finds instead of a $lookup: both MongoDB and the test store answer them fast. */
    BSON_APPEND_DOCUMENT_BEGIN(&in, "_id", &ids);
    {
        bson_t arr;

        bson_append_array_begin(&ids, "$in", -1, &arr);
        json_array_foreach (members, i, m) {
            const char *k;

            bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
            bson_append_utf8(&arr, k, -1, json_string_value(json_object_get(m, "id")), -1);
        }
        bson_append_array_end(&ids, &arr);
    }
    bson_append_document_end(&in, &ids);
    tfilter = &in;
    teams = store_find(st, "teams", tfilter, NULL, row_team, err);
    if (teams == NULL)
        goto done;
    /* A membership whose team is gone is skipped rather than shown half. */
    json_array_foreach (members, i, m) {
        const char *id = json_string_value(json_object_get(m, "id"));

        json_array_foreach (teams, j, t) {
            if (n < sizeof sorted / sizeof sorted[0] &&
                strcmp(id, json_string_value(json_object_get(t, "id"))) == 0) {
                json_object_set(m, "name", json_object_get(t, "name"));
                sorted[n++] = m;
                break;
            }
        }
    }
    qsort(sorted, n, sizeof sorted[0], team_name_cmp);
    out = json_array();
    for (i = 0; out && i < n; i++)
        json_array_append(out, sorted[i]);
    if (out == NULL) {
        error_set(err, ERR_INTERNAL, NULL);
        error_log(err, "store: out of memory");
    }
done:
    json_decref(members);
    json_decref(teams);
    bson_destroy(filter);
    bson_destroy(&in);
    return out;
}

int store_member_set(struct store *st, const char *team, const char *user, const char *role,
                     struct app_error *err)
{
    bson_t *filter, *update;
    int64_t matched;
    int rc;

    if ((rc = store_exists(st, "teams", team, err)) <= 0)
        return rc < 0 ? -1 : error_set(err, ERR_NOT_FOUND, "no team %s", team);
    if ((rc = store_exists(st, "users", user, err)) <= 0)
        return rc < 0 ? -1 : error_set(err, ERR_NOT_FOUND, "no user %s", user);
    filter = BCON_NEW("team_id", BCON_UTF8(team), "user", BCON_UTF8(user));
    update = BCON_NEW("$set", "{", "role", BCON_UTF8(role), "}", "$setOnInsert", "{", "created_at",
                      BCON_DATE_TIME(util_now_ms()), "}");
    rc = store_update_one(st, "memberships", filter, update, true, &matched, err);
    bson_destroy(filter);
    bson_destroy(update);
    return rc;
}

int store_member_remove(struct store *st, const char *team, const char *user, struct app_error *err)
{
    bson_t *filter = BCON_NEW("team_id", BCON_UTF8(team), "user", BCON_UTF8(user));
    int64_t n = 0;
    int rc = store_delete(st, "memberships", filter, false, &n, err);

    bson_destroy(filter);
    if (rc == 0 && n == 0)
        return error_set(err, ERR_NOT_FOUND, "%s is not a member of %s", user, team);
    return rc;
}

static json_t *member_role_row(const bson_t *doc)
{
    return json_string(store_utf8(doc, "role"));
}

int store_member_role(struct store *st, const char *team, const char *user, char *role,
                      struct app_error *err)
{
    bson_t *filter = BCON_NEW("team_id", BCON_UTF8(team), "user", BCON_UTF8(user));
    bson_t *opts = BCON_NEW("projection", "{", "role", BCON_INT32(1), "}", "limit", BCON_INT64(1));
    json_t *rows = store_find(st, "memberships", filter, opts, member_role_row, err);
    int ret = rows ? json_array_size(rows) == 0 : -1;

    if (ret == 0)
        snprintf(role, 16, "%s", json_string_value(json_array_get(rows, 0)));
    json_decref(rows);
    bson_destroy(filter);
    bson_destroy(opts);
    return ret;
}

/* Every document of collection, sorted by _id, as rows made by row(). */
static json_t *list_by_id(struct store *st, const char *collection, store_row_fn row,
                          struct app_error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    json_t *out = store_find(st, collection, &filter, opts, row, err);

    bson_destroy(opts);
    return out;
}

json_t *store_team_list(struct store *st, struct app_error *err)
{
    return list_by_id(st, "teams", row_team, err);
}

json_t *store_user_list(struct store *st, struct app_error *err)
{
    return list_by_id(st, "users", row_user, err);
}

json_t *store_member_list(struct store *st, const char *team, struct app_error *err)
{
    bson_t *filter = BCON_NEW("team_id", BCON_UTF8(team));
    bson_t *opts = BCON_NEW("sort", "{", "user", BCON_INT32(1), "}");
    json_t *out = NULL;
    int rc = store_exists(st, "teams", team, err);

    if (rc == 0)
        error_set(err, ERR_NOT_FOUND, "no team %s", team);
    else if (rc > 0)
        out = store_find(st, "memberships", filter, opts, row_member, err);
    bson_destroy(filter);
    bson_destroy(opts);
    return out;
}
