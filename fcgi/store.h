/* store.h: the only door to MongoDB. One store per process, opened after the fork. */
#ifndef LOOPED_STORE_H
#define LOOPED_STORE_H

#include <bson/bson.h>
#include <jansson.h>

#include "audit.h"
#include "config.h"
#include "error.h"
#include "keys.h"
#include "leaks.h"
#include "policy.h"
#include "ratelimit.h"

struct store;

/* store.c: the client pool and its clients */

/* Opens a client pool for cfg's URI and database; nothing is contacted yet. Returns 0 and
 * *out (the caller owns it: store_close), or -1 with err set (a URI that cannot be used). */
int store_open(struct store **out, const struct config *cfg, struct app_error *err);

/* The calling thread (the audit writer, the key-change feed) uses the store's background
 * client from now on: one connection those threads share under a lock, so that they never
 * wait for, or hold up, the request threads' pool (a revoke must reach every process in time,
 * whatever the request threads are doing). Cannot fail: the client is made on first use. */
void store_use_background(void);

/* The calling thread (the hourly retention purge) uses a client of its own from now on, with
 * the background threads' longer socket timeout: its deletes may take long, and must neither
 * hold a request client nor the background lock. store_own_client_done, before the thread
 * exits, destroys it. Neither can fail (the client is made on first use). */
void store_use_own_client(void);
void store_own_client_done(void);

/* The circuit (a worker's store): the pool's own monitor checks the server every 500 ms,
 * waiting 1 s for an answer (heartbeatFrequencyMS and connectTimeoutMS, unless the URI sets
 * them), and reports each check. While the last check of every server failed, or since a
 * request thread's call found the server unreachable, request threads fail at once with
 * unavailable, and store_ping answers from that state without a round trip; the first check
 * that works closes it. store_circuit_start, before the store's first use, returns 0 or -1
 * (then every call waits out its own timeouts, as without a circuit); store_circuit_stop
 * accepts a store without one. */
int store_circuit_start(struct store *st);
void store_circuit_stop(struct store *st);

/* Destroys the pool; accepts NULL. No client may be in use. */
void store_close(struct store *st);

/* Round trip to the server (or, with a circuit, its monitor's last answer, at once). 0 when it
 * answers; -1 with err unavailable otherwise, within about LOOPED_DB_TIMEOUT_MS. */
int store_ping(struct store *st, struct app_error *err);

/* store_index.c: the collections' indexes */

/* Creates the collections' indexes; idempotent. Returns 0 or -1 with err set. */
int store_indexes_create(struct store *st, struct app_error *err);

/* store_people.c: teams, users, memberships */

/* The teams of user, sorted by name (at most 256): a new array of {"id", "name", "role"}
 * (caller owns), or NULL with err set. A user unknown to the store has no teams (an empty
 * array). */
json_t *store_user_teams(struct store *st, const char *user, struct app_error *err);

/* Teams, users, memberships (looped-admin). Each returns 0, or -1 with err set: conflict when
 * the team or user exists already, not_found when a team, user or membership is missing. */
int store_team_create(struct store *st, const char *id, const char *name, struct app_error *err);
int store_user_add(struct store *st, const char *user, struct app_error *err);
int store_member_set(struct store *st, const char *team, const char *user, const char *role,
                     struct app_error *err);
int store_member_remove(struct store *st, const char *team, const char *user,
                        struct app_error *err);

/* Lists (caller owns the array, or NULL with err set): teams as {"id","name"}, users as
 * {"user"}, members of team as {"user","role"}, each sorted. store_member_list fails with
 * not_found when there is no such team. */
json_t *store_team_list(struct store *st, struct app_error *err);
json_t *store_user_list(struct store *st, struct app_error *err);
json_t *store_member_list(struct store *st, const char *team, struct app_error *err);

/* The role ("OWNER", "ADMIN", "MEMBER") of user in team into role (16 bytes, the caller's).
 * Returns 0, 1 when the user is not a member (or the team does not exist), -1 with err set. */
int store_member_role(struct store *st, const char *team, const char *user, char *role,
                      struct app_error *err);

/* store_keys.c: API keys, their digest documents, last uses and the key-change feed */

/* API keys (api_keys collection). store_key_insert writes k (which stays the caller's) and its
 * digest document: 0, or -1 with err set (conflict when the id or hash exists). Lookups return
 * 0 and fill *out (the caller's), 1 when there is no such key (in that team), -1 with err
 * set. */
int store_key_insert(struct store *st, const struct api_key *k, struct app_error *err);
int store_key_by_hash(struct store *st, const char *hash, struct api_key *out,
                      struct app_error *err);
int store_key_get(struct store *st, const char *team, const char *id, struct api_key *out,
                  struct app_error *err);

/* Gives every key that lacks one its digest document (api_key_digests), then records that all
 * keys have one, so that a digest without one is known to be unknown (looped-admin init;
 * idempotent). *added counts the documents added. Returns 0, or -1 with err set. */
int store_key_digests_backfill(struct store *st, size_t *added, struct app_error *err);

/* Looks for the mark the back-fill leaves; true once it was found (it stays true). Until
 * then, a digest without its document falls back to the hash index. Cannot fail: a store that
 * does not answer counts as no mark yet. Called by keysync.c, off the request path. */
bool store_key_digests_check(struct store *st);

/* The feed of key changes (api_key_changes): a record {key_id, at} for every edit, revoke and
 * delete, which each worker process reads in full a few times a second (keysync.c) to forget
 * those keys. store_key_changes calls fn(change_id, key_id, ctx) for every record (both
 * strings only for the call; fn returns -1 to stop: out of memory); prune removes the records
 * older than before (wall ms). Each returns 0, or -1 with err set. */
typedef int (*store_key_change_fn)(const char *change_id, const char *key_id, void *ctx);
int store_key_changed(struct store *st, const char *id, struct app_error *err);
int store_key_changes(struct store *st, store_key_change_fn fn, void *ctx, struct app_error *err);
int store_key_changes_prune(struct store *st, int64_t before, struct app_error *err);

/* A page of a team's keys, newest first (created_at, then id, descending), into out (the
 * caller's, room for limit) with *n set: 0, or -1 with err set. With unused_before, the stale
 * keys (api.md §6.8), stalest first: (last use, or creation if never used; then id) ascending,
 * the cursor in that order; 1 when the team has more than KEYS_UNUSED_SCAN active keys made
 * before then (nothing in out: narrow the list with q). */
#define KEYS_UNUSED_SCAN 10000
struct key_query {
    const char *team;
    int status;            /* enum key_status, or -1 for any */
    const char *q;         /* name contains, case-insensitive, or NULL */
    int64_t now;           /* for the status filter */
    int64_t expires_by;    /* > 0: only active keys expiring in (now, expires_by] */
    int64_t unused_before; /* > 0: only active keys last used (or made, if never) before */
    int64_t after_at;      /* cursor: strictly after (created_at, after_id) in the order */
    const char *after_id;  /* NULL: from the start */
    size_t limit;          /* at most this many into out */
};
int store_key_list(struct store *st, const struct key_query *q, struct api_key *out, size_t *n,
                   struct app_error *err);

/* Writes name, permission, scopes, expires_at and updated_at of k, unless the key has been
 * revoked or deleted meanwhile: returns 0, 1 (nothing matched), or -1 with err set. */
int store_key_update(struct store *st, const struct api_key *k, struct app_error *err);

/* Sets revoked_at/revoked_by if not set yet. Returns 0 (revoked now), 1 (was revoked or gone),
 * -1 with err set. */
int store_key_revoke(struct store *st, const char *team, const char *id, const char *user,
                     int64_t now, struct app_error *err);

/* The old key's half of a rotation (api.md §6.3), unless it is revoked or rotated already:
 * rotated_to = new_id (with new_hint, as Looped-Key-Rotated-To sends it), and then either
 * expires_at = until (until > 0) or, for no grace period (until 0), revoked_at = now by user.
 * Returns 0 (done), 1 (revoked, rotated or gone meanwhile: nothing written), -1 with err set. */
int store_key_rotate(struct store *st, const char *team, const char *id, const char *new_id,
                     const char *new_hint, int64_t until, const char *user, int64_t now,
                     struct app_error *err);

/* Deletes the key, then its digest document and last use (best effort: an orphan does no
 * harm). Returns 0, 1 (no such key), -1 with err set. */
int store_key_delete(struct store *st, const char *team, const char *id, struct app_error *err);

/* last_used_at = max(last_used_at, at) and last_used_ip = ip when at is newer (api_key_usage).
 * 0, or -1 with err set. */
int store_key_touch(struct store *st, const char *id, int64_t at, const char *ip,
                    struct app_error *err);

/* store_leaks.c: leaked-key reports waiting to be worked (key_leak_reports, leaks.h) */

/* Stores r (its id set). 0, or -1 with err set. */
int store_leak_insert(struct store *st, const struct leak_report *r, struct app_error *err);

/* Calls fn(r, ctx) for the report with this id, or with id NULL for the oldest 100 made before
 * `before` (wall ms); r is valid only during the call. 0, or -1 with err set. store_leak_done
 * removes a report once worked: 0, or -1 with err set. */
typedef void (*store_leak_fn)(const struct leak_report *r, void *ctx);
int store_leak_pending(struct store *st, const char *id, int64_t before, store_leak_fn fn,
                       void *ctx, struct app_error *err);
int store_leak_done(struct store *st, const char *id, struct app_error *err);

/* store_policy.c: the teams' key policies (api_key_policies, policy.h) */

/* The team's policy into *out (the default, every rule off, when it has none): 0, or -1 with
 * err set. store_policy_put replaces it with p: 0, or -1 with err set. */
int store_policy_get(struct store *st, const char *team, struct key_policy *out,
                     struct app_error *err);
int store_policy_put(struct store *st, const char *team, const struct key_policy *p,
                     struct app_error *err);

/* store_audit.c: audit records: batched inserts, filtered pages, retention */

/* The stored document of an audit record into doc (initialised by the caller), its _id made
 * now: a copy written twice (a spool sent again after a crash) is refused as a duplicate. */
void store_audit_bson(const struct audit_rec *r, bson_t *doc);

/* Writes n audit documents in one acknowledged, unordered insert_many; one already stored
 * (the same _id) counts as written. 0, or -1 with err set. */
int store_audit_insert(struct store *st, const bson_t *docs, size_t n, struct app_error *err);

/* A page of a team's audit records, newest first (at, then id, descending). */
struct audit_query {
    const char *team;
    const char *key_id, *actor, *action; /* NULL: any */
    int64_t since, until;                /* inclusive bounds, 0: none */
    int64_t after_at;                    /* cursor */
    const char *after_id;
    size_t limit;
};

/* Returns a new array (caller owns) of at most q->limit records as JSON (each with "id"), or
 * NULL with err set. */
json_t *store_audit_list(struct store *st, const struct audit_query *q, struct app_error *err);

/* A key's usage (usage.h): calls fn(at, status, ctx) for each api.request record of key_id in
 * team with since <= at < until (ms), reading at most max of them, in no particular order.
 * Returns 0, 1 when the range holds more than max (fn saw max of them), -1 with err set. */
typedef void (*store_usage_fn)(int64_t at, int status, void *ctx);
int store_audit_usage(struct store *st, const char *team, const char *key_id, int64_t since,
                      int64_t until, size_t max, store_usage_fn fn, void *ctx,
                      struct app_error *err);

/* The retention purge's lease (meta {_id: "audit_purge", at}): 0 if this process took it
 * (no purge for every_ms before now), 1 if another did, -1 with err set. */
int store_audit_purge_claim(struct store *st, int64_t now, int64_t every_ms, struct app_error *err);

/* Deletes the records older than before; sets *deleted. 0, or -1 with err set. */
int store_audit_purge(struct store *st, int64_t before, int64_t *deleted, struct app_error *err);

/* store_idem.c: idempotency records (idempotency.h), in idempotency_keys by _id */

struct idem_rec;

/* Inserts r (pending: id, key_id, team_id, fingerprint, owner, at). 0, or -1 with err set:
 * conflict when a record with its id exists. */
int store_idem_insert(struct store *st, const struct idem_rec *r, struct app_error *err);

/* Reads record id into out (zeroed first; the caller releases it with idem_rec_clear): 0, 1
 * when there is none, -1 with err set. */
int store_idem_get(struct store *st, const char *id, struct idem_rec *out, struct app_error *err);

/* Replaces record r->id with r if owner still holds it (compare and set): 0, 1 when it does
 * not (taken over or gone), -1 with err set. */
int store_idem_replace(struct store *st, const char *owner, const struct idem_rec *r,
                       struct app_error *err);

/* Deletes record id if owner still holds it: 0, 1 when it does not, -1 with err set. */
int store_idem_delete(struct store *st, const char *id, const char *owner, struct app_error *err);

/* Deletes the records whose at is older than before; sets *deleted. 0, or -1 with err set. */
int store_idem_purge(struct store *st, int64_t before, int64_t *deleted, struct app_error *err);

/* store_docs.c: the schema-defined resources' documents */

/* Resource documents (one collection per resource). doc is the object as the API shows it,
 * with "id" (it stays the caller's); its created_at/updated_at are stored from times (as
 * dates, never parsed from the document's text). Every call is confined to team.
 * store_doc_insert returns 0, or -1 with err set (conflict when the id exists). */
struct doc_times {
    int64_t created_ms, updated_ms;
};
int store_doc_insert(struct store *st, const char *collection, const char *team, json_t *doc,
                     const struct doc_times *times, struct app_error *err);

/* The document (caller owns), or NULL with err set (not_found when the team has no such id);
 * times, when not NULL, gets its stored dates. */
json_t *store_doc_get(struct store *st, const char *collection, const char *team, const char *id,
                      struct doc_times *times, struct app_error *err);

/* A page, newest first: equality filters (field -> JSON value), after the cursor position
 * (after_id NULL: from the start), at most limit documents. New array (caller owns), or NULL
 * with err set. */
json_t *store_doc_list(struct store *st, const char *collection, const char *team, json_t *filters,
                       int64_t after_at, const char *after_id, size_t limit, struct app_error *err);

/* Replaces the document (same id and team; the dates from times). 0, 1 when it is gone, -1
 * with err set. */
int store_doc_replace(struct store *st, const char *collection, const char *team, json_t *doc,
                      const struct doc_times *times, struct app_error *err);

/* 0 deleted, 1 no such document, -1 with err set. */
int store_doc_delete(struct store *st, const char *collection, const char *team, const char *id,
                     struct app_error *err);

/* 1 if the team has a document id in collection, 0 if not, -1 with err set. */
int store_doc_exists(struct store *st, const char *collection, const char *team, const char *id,
                     struct app_error *err);

/* store_rate.c: the hosts' request counts per key (ratesync.c) */

/* Writes this host's counts that still matter at now (one document per host, replaced).
 * 0, or -1 with err set. */
int store_rate_report(struct store *st, const char *host, const struct ratelimit_count *c, size_t n,
                      int64_t now, struct app_error *err);

/* The other hosts' counts that still matter at now, summed per key and aligned to now's
 * window, into out (at most max; *n of them). 0, or -1 with err set. */
int store_rate_remote(struct store *st, const char *host, int64_t now, struct ratelimit_count *out,
                      size_t max, size_t *n, struct app_error *err);

/* Every host's counts that still matter at now (at most 10,000), by key then host: a new array
 * of {key_id, host, per_seconds, window, cur, prev} (caller owns), or NULL with err set. */
json_t *store_rate_list(struct store *st, int64_t now, struct app_error *err);

/* Deletes the hosts' documents whose windows have all passed. 0, or -1 with err set. */
int store_rate_purge(struct store *st, int64_t now, struct app_error *err);

#endif
