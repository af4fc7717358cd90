/* idempotency.h: idempotent resource creates (api.md §6.6): the first answer to a request with
 * an Idempotency-Key is kept, per API key and idempotency key, and given again to the same
 * request instead of running it twice. */
#ifndef LOOPED_IDEMPOTENCY_H
#define LOOPED_IDEMPOTENCY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "error.h"
#include "http.h"
#include "keys.h"

#define IDEM_KEY_MAX     255                                 /* characters of an Idempotency-Key */
#define IDEM_ID_MAX      (KEY_ID_LEN + 1 + IDEM_KEY_MAX + 1) /* "<key id>:<idempotency key>" */
#define IDEM_OWNER_LEN   33                                  /* 16 random bytes in hex, + NUL */
#define IDEM_HEADERS_MAX 256                                 /* the kept header lines */
#define IDEM_KEEP_MS     (24 * 3600 * 1000LL)                /* how long an answer is kept */
#define IDEM_STALE_MS    60000 /* a pending record this old was left by a request that died */

/* One record of the store's idempotency_keys collection. A pending record is held by the
 * request whose random owner it names, which alone may complete or drop it; a done record
 * holds the answer: status and either the body (JSON text, sent again byte for byte) with the
 * header lines that matter, or the error ({code, message, details?, required?}), whose
 * envelope is written again with the request id of the request that gets it. */
struct idem_rec {
    char id[IDEM_ID_MAX];
    char key_id[KEY_ID_LEN];
    char team_id[KEY_TEAM_MAX];
    char fingerprint[AUTH_DIGEST_HEX]; /* idem_fingerprint() of the request */
    char owner[IDEM_OWNER_LEN];
    int64_t at; /* wall ms: taken, or answered; the purge and the staleness go by it */
    bool done;
    int status;
    char headers[IDEM_HEADERS_MAX]; /* "Name: value\r\n" lines (idem_headers_kept) */
    char *body;                     /* owned (free), or NULL */
    size_t body_len;
    json_t *error; /* owned, or NULL */
};

/* Frees what r owns (body, error) and zeroes it; accepts NULL. */
void idem_rec_clear(struct idem_rec *r);

/* True if value may be an Idempotency-Key: 1 to IDEM_KEY_MAX printable ASCII characters
 * (0x20-0x7e). */
bool idem_key_valid(const char *value);

/* The request's fingerprint, SHA-256 in hex of method, NUL, path, NUL and the body as compact
 * JSON with sorted keys (body NULL: nothing), into out: a retry is the same request even if its
 * client orders the fields or spaces the JSON differently. Returns 0, or -1 (out of memory, or
 * libgcrypt failed). */
int idem_fingerprint(const char *method, const char *path, const json_t *body,
                     char out[AUTH_DIGEST_HEX]);

/* Copies into out (len bytes, always NUL-terminated) the lines of headers ("Name: value\r\n"
 * lines) that belong to the answer itself and are given again on a replay (Location), not
 * those that describe the request that gets it (X-Worker, the key's own headers). Returns the
 * length copied; a line that does not fit is left out. */
size_t idem_headers_kept(const char *headers, char *out, size_t len);

/* What a request holds between idem_begin and idem_finish. */
struct idem {
    bool active;         /* the pending record is ours: idem_finish must run */
    struct idem_rec rec; /* as claimed (pending; owns nothing) */
};

struct store;

/* Before the handler of a ROUTE_IDEMPOTENT route (after the key check and the body). Without
 * an Idempotency-Key (or without a key: req->key NULL) it does nothing and returns 0. Else
 * it validates the header and claims the record, returning:
 *   0  run the handler, then idem_finish (idem->active);
 *   1  the kept answer is in res (status, body text, headers, Idempotent-Replayed: true);
 *  -1  err is set: validation_failed (the header), idempotency_key_reused (another request
 *      had the key), conflict (the first is still running; Retry-After in res), unavailable
 *      or internal_error, or the kept error answer (Idempotent-Replayed in res).
 * Whatever it adds to res is the caller's to send and clear. */
int idem_begin(struct store *st, const struct request *req, struct idem *idem, struct response *res,
               struct app_error *err);

/* After the handler, given its result (rc 0 with res, or -1 with err): keeps a 2xx or 4xx
 * answer in the record (res's body becomes res->text, the bytes sent now and on every
 * replay), or drops the record after a 5xx so that the client may retry. A store failure is
 * logged and drops the record (best effort); the answer goes out unchanged. Leaves err as it
 * was. */
void idem_finish(struct store *st, struct idem *idem, int rc, struct response *res,
                 const struct app_error *err);

/* Deletes the records older than IDEM_KEEP_MS before now; logs what it did. Called on the audit
 * retention purge's schedule (audit.c). */
void idem_purge(struct store *st, int64_t now);

#endif
