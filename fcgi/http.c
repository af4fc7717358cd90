/* http.c: reads a FastCGI request's parameters and body, writes the response. */
#include "http.h"

#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipnet.h"
#include "jsonw.h"
#include "util.h"

/* The parameters a request is read from, found in one pass over the FastCGI environment:
 * FCGX_GetParam walks the whole list, with a strncmp per entry, for every name (5% of a
 * worker's CPU with a dozen names). The first of two same-named entries wins, as there. */
struct param_want {
    const char *name;
    size_t len;
    const char **out; /* where the value goes ("" when absent), or NULL: the caller reads val */
    char *val;        /* the value found, in the library's buffer, or NULL */
};

static void params_read(FCGX_Request *r, struct param_want *want, size_t n)
{
    for (char **e = r->envp; e && *e; e++) {
        char *eq = strchr(*e, '=');
        size_t len;

        if (eq == NULL)
            continue;
        len = (size_t)(eq - *e);
        for (size_t i = 0; i < n; i++) {
            if (want[i].len == len && want[i].val == NULL && memcmp(*e, want[i].name, len) == 0) {
                want[i].val = eq + 1;
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (want[i].out)
            *want[i].out = want[i].val ? want[i].val : "";
    }
}

bool http_request_id_is_sane(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];

        if (n >= HTTP_REQID_MAX)
            return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

bool http_is_json_type(const char *ct)
{
    const char *end;

    /* application/json, or a JSON-based type such as application/merge-patch+json. */
    if (strncasecmp(ct, "application/", 12) != 0)
        return false;
    ct += 12;
    end = ct + strcspn(ct, "; \t");
    if (!((end - ct == 4 && strncasecmp(ct, "json", 4) == 0) ||
          (end - ct > 5 && strncasecmp(end - 5, "+json", 5) == 0)))
        return false;
    while (*end == ' ' || *end == '\t')
        end++;
    return *end == '\0' || *end == ';';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded text in place. Returns -1 on a bad escape or
 * an encoded NUL. */
static int url_decode(char *s)
{
    char *out = s;

    for (; *s; s++) {
        if (*s == '+') {
            *out++ = ' ';
        } else if (*s == '%') {
            int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            *out++ = (char)(hi * 16 + lo);
            s += 2;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
    return 0;
}

static int query_parse(struct request *req, const char *qs, struct app_error *err)
{
    char *p, *next;

    if (*qs == '\0')
        return 0;
    req->query_buf = strdup(qs);
    if (req->query_buf == NULL)
        return error_set(err, ERR_INTERNAL, NULL);
    for (p = req->query_buf; p; p = next) {
        char *eq;

        next = strchr(p, '&');
        if (next)
            *next++ = '\0';
        if (*p == '\0')
            continue;
        if (req->nquery == HTTP_MAX_QUERY) {
            error_set(err, ERR_VALIDATION_FAILED, "Too many query parameters (at most %d).",
                      HTTP_MAX_QUERY);
            error_detail(err, "query", "too many parameters");
            return -1;
        }
        eq = strchr(p, '=');
        if (eq)
            *eq++ = '\0';
        if (url_decode(p) != 0 || (eq && url_decode(eq) != 0)) {
            error_set(err, ERR_VALIDATION_FAILED, "The query string is not valid.");
            error_detail(err, "query", "bad percent-encoding");
            return -1;
        }
        for (size_t i = 0; i < req->nquery; i++) {
            if (strcmp(req->query[i].name, p) == 0) {
                error_set(err, ERR_VALIDATION_FAILED, "Query parameter given twice.");
                error_detail(err, p, "given more than once");
                return -1;
            }
        }
        req->query[req->nquery].name = p;
        req->query[req->nquery].value = eq ? eq : "";
        req->nquery++;
    }
    return 0;
}

int http_request_init(struct request *req, void *fcgx, struct app_error *err)
{
    FCGX_Request *r = fcgx;
    const char *q;
    size_t plen;

#define WANT(name, out)                                                                            \
    {                                                                                              \
        name, sizeof(name) - 1, out, NULL                                                          \
    }
    const char *rid, *cl, *uri, *https, *rscheme;
    struct param_want want[] = {
        /* First, without an out: the key stays writable (auth_key_verify wipes it), and NULL
         * tells "no X-API-Key" from an empty one. */
        WANT("HTTP_X_API_KEY", NULL),
        WANT("HTTP_IDEMPOTENCY_KEY", NULL), /* NULL too: absent is not empty */
        WANT("REQUEST_METHOD", &req->method),
        WANT("REQUEST_URI", &uri),
        WANT("REMOTE_ADDR", &req->remote_addr),
        WANT("REMOTE_USER", &req->remote_user),
        WANT("HTTP_HOST", &req->host),
        WANT("HTTP_USER_AGENT", &req->user_agent),
        WANT("HTTP_X_REQUEST_ID", &rid),
        WANT("HTTP_ORIGIN", &req->origin),
        WANT("HTTP_SEC_FETCH_SITE", &req->sec_fetch_site),
        WANT("CONTENT_TYPE", &req->content_type),
        WANT("CONTENT_LENGTH", &cl),
        WANT("HTTP_X_FORWARDED_FOR", &req->forwarded_for),
        WANT("HTTPS", &https),
        WANT("REQUEST_SCHEME", &rscheme),
    };
#undef WANT

    memset(req, 0, sizeof *req);
    req->fcgx = r;
    params_read(r, want, sizeof want / sizeof *want);
    req->api_key = want[0].val;
    req->client_addr = req->remote_addr;
    req->scheme =
        strcasecmp(https, "on") == 0 || strcasecmp(rscheme, "https") == 0 ? "https" : "http";
    req->idempotency_key = want[1].val;
    if (http_request_id_is_sane(rid)) {
        memcpy(req->request_id, rid, strlen(rid) + 1);
    } else if (util_random_hex(req->request_id, 16) != 0) {
        /* The kernel refused randomness: a request id is not worth failing for. */
        snprintf(req->request_id, sizeof req->request_id, "req-%lld", (long long)util_now_ms());
    }

    if (*cl && util_strtonum(cl, 0, (1LL << 62), &req->content_length) != 0) {
        error_set(err, ERR_VALIDATION_FAILED, "The Content-Length header is not valid.");
        return -1;
    }

    q = strchr(uri, '?');
    plen = q ? (size_t)(q - uri) : strlen(uri);
    if (plen > HTTP_PATH_MAX)
        return error_set(err, ERR_NOT_FOUND, NULL);
    memcpy(req->path, uri, plen);
    req->path[plen] = '\0';
    return q ? query_parse(req, q + 1, err) : 0;
}

void http_request_free(struct request *req)
{
    if (req == NULL)
        return;
    free(req->query_buf);
    req->query_buf = NULL;
    json_decref(req->body);
    req->body = NULL;
}

const char *http_query_get(const struct request *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++) {
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    }
    return NULL;
}

#define BODY_DEPTH_MAX 16

/* api.md §1: keys beginning with '$' or containing '.' or NUL are refused (they mean
 * something to MongoDB), and so is nesting deeper than any of our schemas goes. A NUL inside a
 * string value is valid JSON (the parser takes it), but no field of ours wants one and every
 * string goes on as a C string (schema checks, the store, the audit): refused here, naming the
 * field, rather than cut short somewhere behind. */
static void body_check(json_t *v, const char *path, int depth, struct app_error *err)
{
    char sub[256];
    const char *k;
    size_t i;
    json_t *e;

    if (depth > BODY_DEPTH_MAX) {
        error_detail(err, path[0] ? path : "(body)", "is nested too deeply");
        return;
    }
    if (json_is_object(v)) {
        void *iter;

        for (iter = json_object_iter(v); iter; iter = json_object_iter_next(v, iter)) {
            size_t klen;

            k = json_object_iter_key(iter);
            klen = strlen(k);
            e = json_object_iter_value(iter);
            snprintf(sub, sizeof sub, "%s%s%.64s", path, path[0] ? "." : "", k);
            if (k[0] == '$' || strchr(k, '.') || klen != json_object_iter_key_len(iter))
                error_detail(err, sub, "field names may not start with '$' or contain '.' or NUL");
            else
                body_check(e, sub, depth + 1, err);
        }
    } else if (json_is_array(v)) {
        json_array_foreach (v, i, e) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            body_check(e, sub, depth + 1, err);
        }
    } else if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v)) {
        error_detail(err, path[0] ? path : "(body)", "may not contain NUL (\\u0000)");
    }
}

int http_body_read(struct request *req, long long max, struct app_error *err)
{
    FCGX_Request *r = req->fcgx;
    json_error_t jerr;
    size_t cap, len = 0;
    char *buf;
    int ret = -1;

    if (req->content_length > max)
        return error_set(err, ERR_PAYLOAD_TOO_LARGE, "The request body is larger than %lld bytes.",
                         max);
    /* Without a Content-Length, read until the end, but never past the limit. */
    cap = (size_t)(req->content_length > 0 ? req->content_length : max) + 1;
    buf = malloc(cap);
    if (buf == NULL)
        return error_set(err, ERR_INTERNAL, NULL);
    for (;;) {
        int got = FCGX_GetStr(buf + len, (int)(cap - len), r->in);

        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == cap)
            break;
    }
    if ((long long)len > max) {
        error_set(err, ERR_PAYLOAD_TOO_LARGE, "The request body is larger than %lld bytes.", max);
        goto done;
    }
    /* Any JSON value: a scalar where an object belongs is a validation error, not bad JSON;
     * likewise "\u0000" in a string (body_check refuses it with the field's name). */
    req->body =
        json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (req->body == NULL) {
        /* The parser's own text names library options: only the position is ours to say. */
        error_set(err, ERR_INVALID_JSON,
                  "The request body is not valid JSON (near line %d, column %d).", jerr.line,
                  jerr.column);
        goto done;
    }
    body_check(req->body, "", 0, err);
    if (err->details) {
        error_invalid(err, "request body");
        goto done;
    }
    ret = 0;
done:
    free(buf);
    return ret;
}

void http_client_resolve(struct request *req, const struct ipnet *trusted, size_t n)
{
    struct ipnet a;

    if (n == 0 || ipnet_client(req->remote_addr, req->forwarded_for[0] ? req->forwarded_for : NULL,
                               trusted, n, &a) != 0)
        return;
    ipnet_format(&a, req->client_buf);
    req->client_addr = req->client_buf;
}

int http_header_add(struct response *res, const char *name, const char *value)
{
    size_t room = sizeof res->headers - res->headers_len;
    int n = snprintf(res->headers + res->headers_len, room, "%s: %s\r\n", name, value);

    if (n < 0 || (size_t)n >= room) {
        res->headers[res->headers_len] = '\0';
        return -1;
    }
    res->headers_len += (size_t)n;
    return 0;
}

int http_response_send(struct request *req, const struct response *res)
{
    FCGX_Request *r = req->fcgx;
    char head[1024];
    const char *body = res->text;
    const char *type = res->content_type ? res->content_type : "application/json; charset=utf-8";
    char *dumped = NULL;
    size_t blen = res->text_len;
    int n, ret = -1;

    if (body == NULL && res->body) {
        struct jsonw w = {0};

        jsonw_json(&w, res->body);
        body = dumped = jsonw_finish(&w, &blen);
        if (body == NULL)
            return -1;
    }
    n = snprintf(head, sizeof head,
                 "Status: %d %s\r\n"
                 "X-Request-Id: %s\r\n"
                 "Cache-Control: no-store\r\n"
                 "X-Content-Type-Options: nosniff\r\n"
                 "%s%s%s"
                 "%s"
                 "Content-Length: %zu\r\n\r\n",
                 res->status, error_reason(res->status), req->request_id,
                 body ? "Content-Type: " : "", body ? type : "", body ? "\r\n" : "", res->headers,
                 blen);
    if (n < 0 || (size_t)n >= sizeof head)
        goto done;
    if (FCGX_PutStr(head, n, r->out) != n)
        goto done;
    if (blen && FCGX_PutStr(body, (int)blen, r->out) != (int)blen)
        goto done;
    ret = 0;
done:
    free(dumped);
    return ret;
}

int http_error_send(struct request *req, struct response *res, const struct app_error *err)
{
    struct jsonw w = {0};

    json_decref(res->body);
    res->body = NULL;
    free(res->text);
    res->text_len = 0;
    res->content_type = NULL;
    res->status = error_status(err->code);
    error_write(&w, err, req->request_id);
    res->text = jsonw_finish(&w, &res->text_len);
    if (res->text == NULL) {
        /* A message or detail that is not UTF-8: the code's own sentence, no details. */
        struct app_error plain = {.code = err->code};

        w = (struct jsonw){0};
        error_write(&w, &plain, req->request_id);
        res->text = jsonw_finish(&w, &res->text_len);
    }
    return http_response_send(req, res);
}

void http_response_clear(struct response *res)
{
    if (res == NULL)
        return;
    json_decref(res->body);
    free(res->text);
    memset(res, 0, sizeof *res);
}
