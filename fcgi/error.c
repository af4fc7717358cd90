/* error.c: the table of error codes (api.md §1) and the error envelope. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"

struct err_info {
    int status;
    const char *code;
    const char *message;
};

static const struct err_info err_table[ERR__COUNT] = {
    [ERR_NONE] = {200, "ok", "OK."},
    [ERR_INVALID_JSON] = {400, "invalid_json", "The request body is not valid JSON."},
    [ERR_VALIDATION_FAILED] = {400, "validation_failed", "The request is not valid."},
    [ERR_UNKNOWN_PARAMETER] = {400, "unknown_parameter", "Unknown query parameter."},
    [ERR_INVALID_CURSOR] = {400, "invalid_cursor", "The cursor is not valid."},
    [ERR_MISSING_API_KEY] = {401, "missing_api_key", "Send an API key in the X-API-Key header."},
    [ERR_INVALID_API_KEY] = {401, "invalid_api_key", "The API key is not valid."},
    [ERR_EXPIRED_API_KEY] = {401, "expired_api_key", "The API key has expired."},
    [ERR_REVOKED_API_KEY] = {401, "revoked_api_key", "The API key has been revoked."},
    [ERR_UNAUTHENTICATED] = {401, "unauthenticated", "Sign in to use this endpoint."},
    [ERR_INSUFFICIENT_SCOPE] = {403, "insufficient_scope",
                                "The API key does not have the scope this request needs."},
    [ERR_FORBIDDEN] = {403, "forbidden", "Your role does not allow this."},
    [ERR_CROSS_ORIGIN_REQUEST] = {403, "cross_origin_request",
                                  "Cross-origin requests may not change anything."},
    [ERR_IP_NOT_ALLOWED] = {403, "ip_not_allowed",
                            "This API key may not be used from this address."},
    [ERR_NOT_FOUND] = {404, "not_found", "Not found."},
    [ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed",
                                "This method is not allowed on this path."},
    [ERR_KEY_REVOKED] = {409, "key_revoked", "A revoked API key cannot be changed."},
    [ERR_CONFLICT] = {409, "conflict", "The request conflicts with the current state."},
    [ERR_PAYLOAD_TOO_LARGE] = {413, "payload_too_large", "The request body is too large."},
    [ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type",
                                    "The request body must be application/json."},
    [ERR_UNKNOWN_REFERENCE] = {422, "unknown_reference",
                               "The request refers to an object that does not exist."},
    [ERR_IDEMPOTENCY_KEY_REUSED] =
        {422, "idempotency_key_reused",
         "This Idempotency-Key was used with another method, path or body."},
    [ERR_RATE_LIMITED] = {429, "rate_limited", "Too many requests; retry later."},
    [ERR_INTERNAL] = {500, "internal_error", "Something went wrong on our side."},
    [ERR_UNAVAILABLE] = {503, "unavailable",
                         "The service is temporarily unavailable; retry later."},
};

int error_set(struct app_error *e, enum err_code code, const char *fmt, ...)
{
    va_list ap;

    e->code = code;
    e->message[0] = '\0';
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int error_invalid(struct app_error *e, const char *what)
{
    return error_set(e, ERR_VALIDATION_FAILED, "The %s is not valid: see details.", what);
}

int error_log(struct app_error *e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e->log, sizeof e->log, fmt, ap);
    va_end(ap);
    return -1;
}

void error_detail(struct app_error *e, const char *field, const char *message)
{
    if (e->details == NULL)
        e->details = json_array();
    if (e->details)
        json_array_append_new(e->details,
                              json_pack("{s:s, s:s}", "field", field, "message", message));
}

int error_status(enum err_code code)
{
    return code > ERR_NONE && code < ERR__COUNT ? err_table[code].status : 500;
}

const char *error_code_name(enum err_code code)
{
    return code > ERR_NONE && code < ERR__COUNT ? err_table[code].code : "internal_error";
}

const char *error_default_message(enum err_code code)
{
    return code > ERR_NONE && code < ERR__COUNT ? err_table[code].message
                                                : err_table[ERR_INTERNAL].message;
}

enum err_code error_code_parse(const char *name)
{
    for (int c = ERR_NONE + 1; c < ERR__COUNT; c++) {
        if (strcmp(err_table[c].code, name) == 0)
            return (enum err_code)c;
    }
    return ERR_NONE;
}

const char *error_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

void error_write(struct jsonw *w, const struct app_error *e, const char *request_id)
{
    enum err_code code = e->code > ERR_NONE && e->code < ERR__COUNT ? e->code : ERR_INTERNAL;

    JSONW_LIT(w, "{\"error\":{\"code\":");
    jsonw_str(w, error_code_name(code));
    JSONW_LIT(w, ",\"message\":");
    jsonw_str(w, e->message[0] ? e->message : error_default_message(code));
    JSONW_LIT(w, ",\"request_id\":");
    jsonw_str(w, request_id);
    if (e->details && json_array_size(e->details) > 0) {
        JSONW_LIT(w, ",\"details\":");
        jsonw_json(w, e->details);
    }
    if (code == ERR_INSUFFICIENT_SCOPE && e->required[0]) {
        JSONW_LIT(w, ",\"required\":");
        jsonw_str(w, e->required);
    }
    JSONW_LIT(w, "}}");
}

json_t *error_body(const struct app_error *e, const char *request_id)
{
    struct jsonw w = {0};

    error_write(&w, e, request_id);
    return jsonw_to_json(&w);
}

void error_clear(struct app_error *e)
{
    if (e == NULL)
        return;
    json_decref(e->details);
    memset(e, 0, sizeof *e);
}
