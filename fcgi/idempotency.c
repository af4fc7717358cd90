/* idempotency.c: Idempotency-Key on resource creates: the header's check, the request's
 * fingerprint, claiming the record before the handler, and keeping the answer after it. */
#include "idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonw.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* Claim attempts: a record may vanish (purged, dropped) or be taken over between our insert
 * and our read; past this, answer as if the other request were still running. */
#define CLAIM_TRIES 3

/* The header lines that are part of the answer (Content-Type follows from the body). */
static const char *const kept_headers[] = {"Location", NULL};

void idem_rec_clear(struct idem_rec *r)
{
    if (r == NULL)
        return;
    free(r->body);
    json_decref(r->error);
    memset(r, 0, sizeof *r);
}

bool idem_key_valid(const char *value)
{
    size_t n = 0;

    for (; value[n]; n++) {
        unsigned char c = (unsigned char)value[n];

        if (n >= IDEM_KEY_MAX || c < 0x20 || c > 0x7e)
            return false;
    }
    return n > 0;
}

int idem_fingerprint(const char *method, const char *path, const json_t *body,
                     char out[AUTH_DIGEST_HEX])
{
    unsigned char digest[AUTH_DIGEST_LEN];
    struct auth_chunk chunks[3];
    char *text = NULL;
    int rc;

    if (body) {
        text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (text == NULL)
            return -1;
    }
    /* The NULs keep ("POST", "/v1/a") and ("POS", "T/v1/a") apart. */
    chunks[0] = (struct auth_chunk){method, strlen(method) + 1};
    chunks[1] = (struct auth_chunk){path, strlen(path) + 1};
    chunks[2] = (struct auth_chunk){text ? text : "", text ? strlen(text) : 0};
    rc = auth_sha256(chunks, 3, digest);
    free(text);
    if (rc == 0)
        auth_hex(digest, out);
    return rc;
}

static bool is_kept(const char *name, size_t len)
{
    for (size_t i = 0; kept_headers[i]; i++) {
        if (strlen(kept_headers[i]) == len && strncasecmp(name, kept_headers[i], len) == 0)
            return true;
    }
    return false;
}

size_t idem_headers_kept(const char *headers, char *out, size_t len)
{
    size_t o = 0;

    if (len == 0)
        return 0;
    out[0] = '\0';
    while (*headers) {
        const char *end = strstr(headers, "\r\n"), *colon = strchr(headers, ':');
        size_t n;

        if (end == NULL)
            break; /* not a whole line */
        n = (size_t)(end - headers) + 2;
        if (colon && colon < end && is_kept(headers, (size_t)(colon - headers)) && o + n < len) {
            memcpy(out + o, headers, n);
            o += n;
            out[o] = '\0';
        }
        headers += n;
    }
    return o;
}

/* Adds the kept lines ("Name: value\r\n", as http_header_add wrote them) to res. */
static void headers_restore(struct response *res, const char *lines)
{
    while (*lines) {
        const char *end = strstr(lines, "\r\n"), *colon = strchr(lines, ':');
        char name[64], value[IDEM_HEADERS_MAX];
        size_t nlen;

        if (end == NULL || colon == NULL || colon > end)
            return;
        nlen = (size_t)(colon - lines);
        if (nlen < sizeof name) {
            const char *v = colon + 1 + (colon[1] == ' ');

            memcpy(name, lines, nlen);
            name[nlen] = '\0';
            snprintf(value, sizeof value, "%.*s", (int)(end - v), v);
            http_header_add(res, name, value);
        }
        lines = end + 2;
    }
}

/* A string member of o, or "" when it is absent or not a string. */
static const char *member(const json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));

    return s ? s : "";
}

static int in_progress(struct response *res, struct app_error *err)
{
    http_header_add(res, "Retry-After", "1");
    return error_set(err, ERR_CONFLICT,
                     "A request with this Idempotency-Key is still in progress; retry later.");
}

/* The kept answer of done record r (whose body it takes): 1 with res filled, or -1 with the
 * kept error in err. */
static int replay(struct idem_rec *r, struct response *res, struct app_error *err)
{
    json_t *e = r->error;
    enum err_code code;

    http_header_add(res, "Idempotent-Replayed", "true");
    if (e == NULL) {
        headers_restore(res, r->headers);
        res->status = r->status;
        res->text = r->body;
        res->text_len = r->body_len;
        r->body = NULL;
        return 1;
    }
    code = error_code_parse(member(e, "code"));
    if (code == ERR_NONE) {
        error_set(err, ERR_INTERNAL, NULL);
        return error_log(err, "idempotency: record %s keeps an unknown error code", r->id);
    }
    error_set(err, code, "%s", member(e, "message"));
    if (json_array_size(json_object_get(e, "details")) > 0)
        err->details = json_incref(json_object_get(e, "details"));
    snprintf(err->required, sizeof err->required, "%s", member(e, "required"));
    return -1;
}

/* Decides what to do with the record found in the way of ours: 0 take it over (expired, or
 * left pending by a request that died), or the answer (idem_begin's 1 or -1). */
static int judge(struct idem_rec *found, const struct idem_rec *ours, struct response *res,
                 struct app_error *err)
{
    if (found->at <= ours->at - IDEM_KEEP_MS)
        return 0;
    if (strcmp(found->fingerprint, ours->fingerprint) != 0)
        return error_set(err, ERR_IDEMPOTENCY_KEY_REUSED, NULL);
    if (!found->done)
        return found->at <= ours->at - IDEM_STALE_MS ? 0 : in_progress(res, err);
    return replay(found, res, err);
}

int idem_begin(struct store *st, const struct request *req, struct idem *idem, struct response *res,
               struct app_error *err)
{
    struct idem_rec *rec = &idem->rec, found;
    int ret = -1;

    memset(idem, 0, sizeof *idem);
    memset(&found, 0, sizeof found);
    if (req->idempotency_key == NULL || req->key == NULL)
        return 0;
    if (!idem_key_valid(req->idempotency_key)) {
        error_detail(err, "Idempotency-Key", "must be 1 to 255 printable ASCII characters");
        return error_set(err, ERR_VALIDATION_FAILED,
                         "The Idempotency-Key header is not valid: see details.");
    }
    snprintf(rec->id, sizeof rec->id, "%s:%s", req->key->id, req->idempotency_key);
    snprintf(rec->key_id, sizeof rec->key_id, "%s", req->key->id);
    snprintf(rec->team_id, sizeof rec->team_id, "%s", req->key->team_id);
    if (idem_fingerprint(req->method, req->path, req->body, rec->fingerprint) != 0 ||
        util_random_hex(rec->owner, (IDEM_OWNER_LEN - 1) / 2) != 0) {
        error_set(err, ERR_INTERNAL, NULL);
        return error_log(err, "idempotency: no fingerprint or owner for %s", req->request_id);
    }
    for (int tries = 0; tries < CLAIM_TRIES; tries++) {
        int rc;

        rec->at = util_now_ms();
        if (store_idem_insert(st, rec, err) == 0)
            goto claimed;
        if (err->code != ERR_CONFLICT)
            goto done;
        error_clear(err);
        rc = store_idem_get(st, rec->id, &found, err);
        if (rc < 0)
            goto done;
        if (rc == 1)
            continue; /* gone meanwhile: insert again */
        rc = judge(&found, rec, res, err);
        if (rc != 0) {
            ret = rc;
            goto done;
        }
        /* Ours unless another request takes it first (the owner is the version). */
        rc = store_idem_replace(st, found.owner, rec, err);
        if (rc < 0)
            goto done;
        if (rc == 0)
            goto claimed;
        idem_rec_clear(&found);
    }
    ret = in_progress(res, err);
    goto done;
claimed:
    idem->active = true;
    ret = 0;
done:
    idem_rec_clear(&found);
    return ret;
}

/* Deletes our pending record so that the client may try again (best effort: if the store does
 * not answer, the record is taken over once stale). */
static void drop(struct store *st, const struct idem_rec *r)
{
    struct app_error e = {0};

    if (store_idem_delete(st, r->id, r->owner, &e) < 0)
        log_warn("idempotency: pending record of key %s not dropped (%s); taken over after %d s",
                 r->key_id, e.log, IDEM_STALE_MS / 1000);
    error_clear(&e);
}

void idem_finish(struct store *st, struct idem *idem, int rc, struct response *res,
                 const struct app_error *err)
{
    struct idem_rec rec;
    struct app_error e = {0};
    int status = rc == 0 ? res->status : error_status(err->code), stored;

    if (!idem->active)
        return;
    idem->active = false;
    if (status < 200 || status >= 500) {
        drop(st, &idem->rec);
        return;
    }
    rec = idem->rec;
    rec.done = true;
    rec.status = status;
    rec.at = util_now_ms();
    if (rc == 0) {
        /* The text sent now is the text kept: every replay is the same bytes. */
        if (res->text == NULL && res->body) {
            struct jsonw w = {0};

            jsonw_json(&w, res->body);
            res->text = jsonw_finish(&w, &res->text_len);
            if (res->text == NULL) {
                drop(st, &idem->rec);
                return;
            }
            json_decref(res->body);
            res->body = NULL;
        }
        rec.body = res->text; /* borrowed */
        rec.body_len = res->text_len;
        idem_headers_kept(res->headers, rec.headers, sizeof rec.headers);
    } else {
        rec.error =
            json_pack("{s:s, s:s}", "code", error_code_name(err->code), "message", err->message);
        if (rec.error && json_array_size(err->details) > 0)
            json_object_set(rec.error, "details", err->details);
        if (rec.error && err->required[0])
            json_object_set_new(rec.error, "required", json_string(err->required));
        if (rec.error == NULL) { /* a message that is not UTF-8: nothing to keep */
            drop(st, &idem->rec);
            return;
        }
    }
    stored = store_idem_replace(st, rec.owner, &rec, &e);
    if (stored < 0) {
        log_warn("idempotency: answer for key %s not kept (%s)", rec.key_id, e.log);
        drop(st, &idem->rec);
    } else if (stored == 1) {
        log_warn("idempotency: record of key %s was taken over before its answer was kept",
                 rec.key_id);
    }
    json_decref(rec.error);
    error_clear(&e);
}

void idem_purge(struct store *st, int64_t now)
{
    struct app_error err = {0};
    int64_t deleted = 0;

    if (store_idem_purge(st, now - IDEM_KEEP_MS, &deleted, &err) != 0)
        log_warn("idempotency: purge failed: %s", err.log);
    else if (deleted)
        log_info("idempotency: purged %lld records older than 24 hours", (long long)deleted);
    error_clear(&err);
}
