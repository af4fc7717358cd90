/* error.h: the one error type of the application and the table of its codes. */
#ifndef LOOPED_ERROR_H
#define LOOPED_ERROR_H

#include <jansson.h>

/* Every error the API can answer with (api.md §1). The order matches the table in error.c. */
enum err_code {
    ERR_NONE = 0,
    ERR_INVALID_JSON,
    ERR_VALIDATION_FAILED,
    ERR_UNKNOWN_PARAMETER,
    ERR_INVALID_CURSOR,
    ERR_MISSING_API_KEY,
    ERR_INVALID_API_KEY,
    ERR_EXPIRED_API_KEY,
    ERR_REVOKED_API_KEY,
    ERR_UNAUTHENTICATED,
    ERR_INSUFFICIENT_SCOPE,
    ERR_FORBIDDEN,
    ERR_CROSS_ORIGIN_REQUEST,
    ERR_IP_NOT_ALLOWED,
    ERR_NOT_FOUND,
    ERR_METHOD_NOT_ALLOWED,
    ERR_KEY_REVOKED,
    ERR_CONFLICT,
    ERR_PAYLOAD_TOO_LARGE,
    ERR_UNSUPPORTED_MEDIA_TYPE,
    ERR_UNKNOWN_REFERENCE,
    ERR_IDEMPOTENCY_KEY_REUSED,
    ERR_RATE_LIMITED,
    ERR_INTERNAL,
    ERR_UNAVAILABLE,
    ERR__COUNT
};

/* An error on its way to the client. `message` is sent; `log` is only ever logged.
 * Start it zeroed; release `details` with error_clear(). */
struct app_error {
    enum err_code code;
    char message[256]; /* client text; empty: the table's default for the code */
    char log[512];     /* internal detail (driver text, errno); never sent */
    json_t *details;   /* array of {"field", "message"}, owned, or NULL */
    char required[96]; /* the missing scope of insufficient_scope */
};

/* Sets code and an optional client message (printf format, NULL for the default). Returns -1
 * so that callers can write `return error_set(...)`. */
int error_set(struct app_error *e, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* validation_failed with "The <what> is not valid: see details." (what: "request", "query"),
 * for errors whose details say what is wrong. Returns -1. */
int error_invalid(struct app_error *e, const char *what);

/* Records internal detail for the log (printf format). Returns -1. */
int error_log(struct app_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends {"field", "message"} to details; never fails visibly (out of memory drops it). */
void error_detail(struct app_error *e, const char *field, const char *message);

/* The HTTP status, the code string ("not_found") and the default sentence of a code. */
int error_status(enum err_code code);
const char *error_code_name(enum err_code code);
const char *error_default_message(enum err_code code);

/* The code whose string is name ("not_found"), or ERR_NONE for none: for errors kept as text
 * (idempotency.h), which must not depend on the enum's numbering. */
enum err_code error_code_parse(const char *name);

/* The reason phrase of an HTTP status ("Not Found"); "Unknown" for others. */
const char *error_reason(int status);

struct jsonw;

/* The error body of api.md §1, {"error": {code, message, request_id, details?, required?}},
 * written as text (every error response: a flood of bad keys costs no allocated tree). The
 * writer fails if the message or a detail is not UTF-8. */
void error_write(struct jsonw *w, const struct app_error *e, const char *request_id);

/* The same as a jansson value (a new reference), or NULL. */
json_t *error_body(const struct app_error *e, const char *request_id);

/* Frees details and zeroes e; accepts NULL. */
void error_clear(struct app_error *e);

#endif
