/* keys.h: the API key object (api.md §3.2): its fields, status, permissions and the
 * validation of what people send to create or edit one. */
#ifndef LOOPED_KEYS_H
#define LOOPED_KEYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "error.h"
#include "ipnet.h"
#include "jsonw.h"

enum key_permission { PERM_NONE = 0, PERM_READ_ALL, PERM_WRITE_ALL, PERM_RESTRICTED };
enum key_status { KEY_ACTIVE, KEY_EXPIRED, KEY_REVOKED };

#define KEY_ID_LEN   32  /* "key_" + 20 base62 + NUL, with room */
#define KEY_NAME_MAX 404 /* 100 characters of up to 4 UTF-8 bytes, + NUL */
#define KEY_USER_MAX 132 /* a web-server user name: 128 bytes + NUL */
#define KEY_TEAM_MAX 64
#define KEY_IP_MAX   64
#define KEY_IPS_MAX  100 /* allowed_ips entries (api.md §6.2) */

#define KEYS_GRACE_MAX_HOURS     720 /* a rotation's grace period: 0 to 30 days (api.md §6.3) */
#define KEYS_GRACE_DEFAULT_HOURS 24
#define KEYS_SUNSET_WITHIN_MS    (7LL * 86400 * 1000) /* Sunset on keys this close to expiry */

/* A rate limit (api.md §6.1): requests per per_seconds; requests 0 is null (none). */
struct key_rate {
    uint32_t requests, per_seconds;
};

/* Times are ms since the epoch; 0 means null. */
struct api_key {
    char id[KEY_ID_LEN];
    char team_id[KEY_TEAM_MAX];
    char name[KEY_NAME_MAX];
    enum key_permission permission;
    uint64_t scopes; /* catalog.h bits; only for PERM_RESTRICTED */
    char hint[AUTH_HINT_LEN];
    char hash[AUTH_DIGEST_HEX];
    int64_t expires_at, created_at, updated_at, last_used_at, revoked_at;
    char created_by[KEY_USER_MAX];
    char revoked_by[KEY_USER_MAX];
    char last_used_ip[KEY_IP_MAX];
    struct key_rate rate;
    /* Rotation (api.md §6.3): the key this one replaced, and the key that replaced it with
     * its hint (for Looped-Key-Rotated-To without a second read); "" when none. */
    char rotated_from[KEY_ID_LEN];
    char rotated_to[KEY_ID_LEN];
    char rotated_to_hint[AUTH_HINT_LEN];
    uint32_t nips;                 /* allowed_ips: 0 is anywhere */
    struct ipnet ips[KEY_IPS_MAX]; /* last: copies stop at ips[nips] (KEYS_SIZE) */
};

/* The bytes of k that hold something: copies of keys (the cache) take only these. */
#define KEYS_SIZE(k) (offsetof(struct api_key, ips) + (k)->nips * sizeof(struct ipnet))

/* What a create or edit request asked for; has_* tell which fields it carried. */
struct key_input {
    bool has_name, has_permission, has_scopes, has_expires, has_rate, has_ips;
    char name[KEY_NAME_MAX];
    enum key_permission permission;
    uint64_t scopes;
    int64_t expires_at; /* 0: null (never) */
    struct key_rate rate;
    uint32_t nips;
    struct ipnet ips[KEY_IPS_MAX];
};

/* revoked if revoked_at is set, else expired if expires_at <= now, else active. */
enum key_status keys_status(const struct api_key *k, int64_t now);
const char *keys_status_name(enum key_status s);
int keys_status_parse(const char *s, enum key_status *out);
const char *keys_permission_name(enum key_permission p);
int keys_permission_parse(const char *s, enum key_permission *out);

/* The key object of api.md §3.2 (never the secret): written to w (the hot path, GET /v1/key),
 * or as a new jansson object (NULL on failure) for responses composed with jansson. */
void keys_write(struct jsonw *w, const struct api_key *k, int64_t now);
json_t *keys_to_json(const struct api_key *k, int64_t now);

/* Reads body (a JSON object) into in. create: name and permission are required. Every
 * problem is one entry of err's details (field + reason); returns 0, or -1 with err set
 * to validation_failed. */
int keys_input_parse(json_t *body, bool create, int64_t now, struct key_input *in,
                     struct app_error *err);

/* Adds {"old", "new"} under field to changes (an audit record's "changes") when they differ and
 * changes is not NULL; takes both references either way. */
void keys_change(json_t *changes, const char *field, json_t *old, json_t *new);

/* Applies in to k and checks the result: restricted needs at least one scope, the others
 * none. If changes is not NULL, adds {"field": {"old", "new"}} for each field that changed.
 * Returns 0, or -1 with err set (validation_failed). */
int keys_apply(struct api_key *k, const struct key_input *in, int64_t now, json_t *changes,
               struct app_error *err);

/* Reads the body of a rotate request: NULL (none) or {"grace_period_hours": 0..720}, default
 * KEYS_GRACE_DEFAULT_HOURS. Returns 0 with *hours set, or -1 with err set (validation_failed). */
int keys_rotate_parse(json_t *body, int *hours, struct app_error *err);

/* The key that replaces old in a rotation, in out: every setting of old (name, permission,
 * scopes, expiry, rate limit, allowed IPs), none of its identity, times or uses; rotated_from
 * names old. The caller gives it an id, a value (hash, hint), created_* and updated_at. */
void keys_rotate_copy(const struct api_key *old, struct api_key *out);

/* The time a response to k announces in Sunset (api.md §6.3, §6.4): its expiry while it is in
 * a rotation's grace period or expires within KEYS_SUNSET_WITHIN_MS; else 0 (no Sunset). */
int64_t keys_sunset(const struct api_key *k, int64_t now);

/* A time as JSON: an RFC 3339 string, or null for 0. */
json_t *keys_time_json(int64_t ms);

/* rate_limit as JSON ({"requests", "per_seconds"} or null) and allowed_ips (an array of the
 * normal forms). New references, NULL only when out of memory. */
json_t *keys_rate_json(const struct key_rate *r);
json_t *keys_ips_json(const struct ipnet *ips, uint32_t n);

/* A rate limit from JSON: null (none: requests 0) or {"requests": 1-1000000, "per_seconds":
 * 1-86400}, its problems as err's details named after field ("rate_limit.requests"). 0, or -1
 * (out zeroed). */
int keys_rate_parse(json_t *v, const char *field, struct key_rate *out, struct app_error *err);

/* True if the client address may use k (its allow-list is empty, or holds the address). */
bool keys_ip_allowed(const struct api_key *k, const struct ipnet *client);

#endif
