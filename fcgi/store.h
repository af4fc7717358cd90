/* store.h: the only door to MongoDB. One store per process, opened after the fork. */
#ifndef LOOPED_STORE_H
#define LOOPED_STORE_H

#include <jansson.h>

#include "config.h"
#include "error.h"

struct store;

/* Opens a client pool for cfg's URI and database; nothing is contacted yet. Returns 0 and
 * *out (the caller owns it: store_close), or -1 with err set (a URI that cannot be used). */
int store_open(struct store **out, const struct config *cfg, struct app_error *err);

/* Destroys the pool; accepts NULL. No client may be in use. */
void store_close(struct store *st);

/* Round trip to the server. 0 when it answers; -1 with err unavailable otherwise, within
 * about LOOPED_DB_TIMEOUT_MS. */
int store_ping(struct store *st, struct app_error *err);

/* The teams of user, sorted by name: a new array of {"id", "name", "role"} (caller owns),
 * or NULL with err set. A user unknown to the store has no teams (an empty array). */
json_t *store_user_teams(struct store *st, const char *user, struct app_error *err);

/* Creates the collections' indexes; idempotent. Returns 0 or -1 with err set. */
int store_indexes_create(struct store *st, struct app_error *err);

/* Teams, users, memberships (looped-admin). Each returns 0, or -1 with err set: conflict when
 * the team or user exists already, not_found when a team, user or membership is missing. */
int store_team_create(struct store *st, const char *id, const char *name, struct app_error *err);
int store_user_add(struct store *st, const char *user, struct app_error *err);
int store_member_set(struct store *st, const char *team, const char *user, const char *role,
                     struct app_error *err);
int store_member_remove(struct store *st, const char *team, const char *user,
                        struct app_error *err);

/* Lists (caller owns the array, or NULL with err set): teams as {"id","name"}, users as
 * {"user"}, members of team as {"user","role"}, each sorted. */
json_t *store_team_list(struct store *st, struct app_error *err);
json_t *store_user_list(struct store *st, struct app_error *err);
json_t *store_member_list(struct store *st, const char *team, struct app_error *err);

#endif
