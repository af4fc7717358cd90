/* http.h: one FastCGI request as the handlers see it, and the response they fill. */
#ifndef LOOPED_HTTP_H
#define LOOPED_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define HTTP_MAX_PARAMS 4  /* captured path segments, e.g. {team_id} and {key_id} */
#define HTTP_MAX_QUERY  16 /* query parameters; more is a 400 */
#define HTTP_PATH_MAX   1024
#define HTTP_REQID_MAX  64

struct worker_ctx; /* the thread's resources (store, caches): worker.h */
struct api_key;    /* the authenticated API key: keys.h */
struct resource;   /* a resource of the catalog: catalog.h */

struct query_param {
    char *name; /* percent-decoded, NUL-terminated, inside request.query_buf */
    char *value;
};

/* Everything comes from the FastCGI parameters; the strings are the library's and live until
 * the request is finished. Unset parameters are "" (never NULL), except where noted. */
struct request {
    void *fcgx; /* FCGX_Request *, used by http.c only */
    struct worker_ctx *ctx;
    const char *method;
    char path[HTTP_PATH_MAX + 1]; /* REQUEST_URI without the query string */
    const char *remote_user;      /* "" when the web server authenticated nobody */
    const char *remote_addr;      /* REMOTE_ADDR: the peer, maybe a proxy */
    const char *client_addr;      /* the client (api.md §6.2): REMOTE_ADDR, or the address a
                                   * trusted proxy forwarded (http_client_resolve) */
    const char *forwarded_for;    /* X-Forwarded-For */
    const char *user_agent;
    const char *origin;
    const char *host;
    const char *sec_fetch_site;
    const char *scheme; /* "https" (HTTPS=on or REQUEST_SCHEME), else "http" */
    const char *content_type;
    char *api_key; /* X-API-Key in the library's buffer (wiped once digested), or NULL */
    const char *idempotency_key; /* Idempotency-Key, or NULL when absent (idempotency.h) */
    long long content_length;
    char request_id[HTTP_REQID_MAX + 1];
    const char *params[HTTP_MAX_PARAMS]; /* path captures, into path_buf */
    const struct resource *resource;     /* the {resource} of the path, or NULL */
    char path_buf[HTTP_PATH_MAX + 1];
    struct query_param query[HTTP_MAX_QUERY];
    size_t nquery;
    char *query_buf;           /* owned */
    json_t *body;              /* parsed JSON body, owned, or NULL */
    char role[16];             /* ROUTE_TEAM: the user's role in params[0] */
    const struct api_key *key; /* ROUTE_KEY: the calling key */
    char client_buf[48];       /* client_addr when it is not remote_addr */
};

/* A response: status, a JSON body (or none) and extra header lines. */
struct response {
    int status;
    json_t *body; /* owned; NULL for no body (204) */
    char *text;   /* owned JSON text sent instead of body (jsonw.h), or NULL */
    size_t text_len;
    const char *content_type; /* static; the type of text when it is not JSON, or NULL */
    char headers[1024];       /* "Name: value\r\n" lines */
    size_t headers_len;
    /* Run by the request thread once the answer is out (FCGX_Finish_r), for work the client
     * must neither wait for nor be able to time (leaks.h); NULL: none. Only on success. */
    void (*after)(void);
};

/* Reads the parameters of an accepted request into req (zeroed first). Returns 0, or -1 with
 * err set (a query string that cannot be parsed). The request id is always set. */
int http_request_init(struct request *req, void *fcgx, struct app_error *err);

/* Sets req->client_addr from X-Forwarded-For when REMOTE_ADDR is one of the n trusted
 * proxies (ipnet_client); otherwise it stays REMOTE_ADDR. Cannot fail. */
struct ipnet;
void http_client_resolve(struct request *req, const struct ipnet *trusted, size_t n);

/* Releases what req owns; accepts NULL. */
void http_request_free(struct request *req);

/* The value of query parameter name, or NULL. */
const char *http_query_get(const struct request *req, const char *name);

/* True if content_type is application/json, with or without parameters. */
bool http_is_json_type(const char *content_type);

/* True if s is a request id the caller may choose: 1..64 of [A-Za-z0-9._-]. */
bool http_request_id_is_sane(const char *s);

/* Reads the body (at most max bytes) and parses it as JSON into req->body. Returns 0, or -1
 * with err set (payload_too_large, invalid_json, validation_failed naming the fields for keys
 * with '$', '.' or NUL, strings with NUL, or nesting too deep, or internal_error on a read
 * failure). */
int http_body_read(struct request *req, long long max, struct app_error *err);

/* Adds a header line; fails (-1) only when the header buffer is full. */
int http_header_add(struct response *res, const char *name, const char *value);

/* Sends res (status, headers, JSON body) on the request's stream. Returns 0 or -1 when the
 * client went away. Does not free res. */
int http_response_send(struct request *req, const struct response *res);

/* Builds and sends the error envelope for err (with extra headers in res, if any). */
int http_error_send(struct request *req, struct response *res, const struct app_error *err);

/* Frees the body (or text) of res and resets it; accepts NULL. */
void http_response_clear(struct response *res);

#endif
