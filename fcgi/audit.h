/* audit.h: the audit trail (api.md §3.4) and last-used times, written behind the request by
 * one writer thread per process from a bounded queue (design.md §3 step 6). */
#ifndef LOOPED_AUDIT_H
#define LOOPED_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "keys.h"

struct store;
struct config;

/* One record. actor_type is "api_key" (actor_id the key id, actor_name its name) or "user"
 * (actor_id the user name). key_id and key_name: the key the record is about, if any. */
struct audit_rec {
    int64_t at;
    char team_id[KEY_TEAM_MAX];
    char actor_type[8];
    char actor_id[KEY_USER_MAX];
    char actor_name[KEY_NAME_MAX];
    char key_id[KEY_ID_LEN];
    char key_name[KEY_NAME_MAX]; /* kept so records stay readable after the key is deleted */
    char action[24];
    char method[8];
    char path[256];
    int status;
    char ip[KEY_IP_MAX];
    char user_agent[256];
    char request_id[72];
    json_t *changes;    /* api_key.updated: {"field": {"old", "new"}}; owned by the record */
    json_t *rotation;   /* api_key.rotated: {"from", "to", "grace_period_hours"}; likewise */
    char reason[16];    /* api_key.revoked by a leak report: "leaked"; "" otherwise */
    const char *source; /* and the report's source URL, or NULL; only for audit_submit */
};

/* Starts the writer thread of this process over st. Returns 0 or -1. */
int audit_start(struct store *st, const struct config *cfg);

/* Queues a copy of rec (taking over rec->changes and rec->rotation). Blocks while the queue is
 * full: a record is never dropped (back-pressure). Cannot fail after audit_start. */
void audit_submit(struct audit_rec *rec);

/* Notes a use of key_id at `at` from ip; at most one write per key every 60 s (design.md §3
 * step 6). never_used says the store had no use of the key when it was read: that first use is
 * written at once (api.md: visible within 2 s). Otherwise this process's first write of the
 * key comes within 60 s, at a point that depends on the key, so that a restart does not write
 * every key at once. */
void audit_touch(const char *key_id, int64_t at, const char *ip, bool never_used);

/* Writes everything queued and pending, then stops the writer thread. Call after the request
 * threads have stopped. */
void audit_stop(void);

/* Sets up a record's common fields from a request: at, method, path, ip, user agent, id. */
struct request;
void audit_from_request(struct audit_rec *rec, const struct request *req, const char *action);

/* Queues the api.request record of a request made with key k (recognised by the key check,
 * whatever its verdict), answered with status. Blocks like audit_submit. */
void audit_key_request(const struct request *req, const struct api_key *k, int status);

#endif
