/* test_error.c: the code table and the error envelope of api.md §1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/error.h"
#include "../../fcgi/jsonw.h"
#include "tap.h"

/* error_write's text against jansson's compact dump of the same envelope built as a tree. */
static int same_as_jansson(const struct app_error *e, const char *rid)
{
    enum err_code code = e->code;
    json_t *inner = json_pack("{s:s, s:s, s:s}", "code", error_code_name(code), "message",
                              e->message[0] ? e->message : error_default_message(code),
                              "request_id", rid),
           *ref;
    struct jsonw w = {0};
    char *want, *got;
    size_t len;
    int same;

    if (e->details && json_array_size(e->details) > 0)
        json_object_set(inner, "details", e->details);
    if (code == ERR_INSUFFICIENT_SCOPE && e->required[0])
        json_object_set_new(inner, "required", json_string(e->required));
    ref = json_pack("{s:o}", "error", inner);
    want = json_dumps(ref, JSON_COMPACT);
    error_write(&w, e, rid);
    got = jsonw_finish(&w, &len);
    same = want && got && strcmp(want, got) == 0 && len == strlen(want);
    if (!same)
        fprintf(stderr, "# want %s\n#  got %s\n", want ? want : "(null)", got ? got : "(null)");
    free(want);
    free(got);
    json_decref(ref);
    return same;
}

int main(void)
{
    struct app_error e = {0};
    json_t *body, *inner;
    int bad = 0;

    for (int c = ERR_NONE + 1; c < ERR__COUNT; c++) {
        int s = error_status((enum err_code)c);

        if (s < 400 || s > 599 || strlen(error_code_name((enum err_code)c)) == 0 ||
            strlen(error_default_message((enum err_code)c)) == 0 ||
            strcmp(error_reason(s), "Unknown") == 0)
            bad++;
    }
    ok(bad == 0, "every code has a status, a name, a message and a reason phrase");
    ok(error_status(ERR_NOT_FOUND) == 404 && error_status(ERR_UNAVAILABLE) == 503 &&
           error_status(ERR_METHOD_NOT_ALLOWED) == 405 &&
           error_status(ERR_PAYLOAD_TOO_LARGE) == 413 &&
           error_status(ERR_UNSUPPORTED_MEDIA_TYPE) == 415 &&
           error_status(ERR_UNAUTHENTICATED) == 401,
       "statuses of api.md");
    is_str(error_code_name(ERR_CROSS_ORIGIN_REQUEST), "cross_origin_request", "code name");
    is_str(error_code_name((enum err_code)999), "internal_error", "out of range is internal");
    ok(error_status(ERR_IDEMPOTENCY_KEY_REUSED) == 422, "idempotency_key_reused is a 422");
    bad = 0;
    for (int c = ERR_NONE + 1; c < ERR__COUNT; c++)
        bad += error_code_parse(error_code_name((enum err_code)c)) != (enum err_code)c;
    ok(bad == 0 && error_code_parse("nope") == ERR_NONE && error_code_parse("") == ERR_NONE,
       "error_code_parse: every code's name back to the code, ERR_NONE for others");

    ok(error_set(&e, ERR_VALIDATION_FAILED, "Bad %s.", "input") == -1, "error_set returns -1");
    error_log(&e, "driver said: secret detail");
    error_detail(&e, "lines[0].quantity", "must be >= 1");
    body = error_body(&e, "rid-1");
    inner = json_object_get(body, "error");
    is_str(json_string_value(json_object_get(inner, "code")), "validation_failed", "code");
    is_str(json_string_value(json_object_get(inner, "message")), "Bad input.", "message");
    is_str(json_string_value(json_object_get(inner, "request_id")), "rid-1", "request id");
    is_str(json_string_value(
               json_object_get(json_array_get(json_object_get(inner, "details"), 0), "field")),
           "lines[0].quantity", "details field");
    {
        char *text = json_dumps(body, 0);

        ok(strstr(text, "secret") == NULL, "the log detail is never in the body");
        free(text);
    }
    json_decref(body);
    error_clear(&e);

    error_set(&e, ERR_INSUFFICIENT_SCOPE, NULL);
    strcpy(e.required, "invoices:write");
    body = error_body(&e, "r");
    inner = json_object_get(body, "error");
    is_str(json_string_value(json_object_get(inner, "required")), "invoices:write", "required");
    is_str(json_string_value(json_object_get(inner, "message")),
           error_default_message(ERR_INSUFFICIENT_SCOPE), "default message");
    ok(json_object_get(inner, "details") == NULL, "no empty details");
    json_decref(body);
    ok(same_as_jansson(&e, "r"), "as text: the bytes jansson writes (required)");
    error_clear(&e);

    error_set(&e, ERR_VALIDATION_FAILED, "Caf\xc3\xa9 \"quoted\"\n\t%s", "\\");
    error_detail(&e, "name", "must be \xe2\x89\xa4 200 characters");
    error_detail(&e, "lines", "must not be empty");
    ok(same_as_jansson(&e, "rid-\x01"), "as text: the bytes jansson writes (details, escapes)");
    error_clear(&e);
    error_set(&e, ERR_INVALID_API_KEY, NULL);
    ok(same_as_jansson(&e, "rid-2"), "as text: the bytes jansson writes (default message)");
    error_clear(&e);
    {
        struct jsonw w = {0};
        size_t len;

        error_set(&e, ERR_VALIDATION_FAILED, "not UTF-8: \xff");
        error_write(&w, &e, "r");
        ok(jsonw_finish(&w, &len) == NULL, "a message that is not UTF-8 fails the writer");
        error_clear(&e);
    }
    error_clear(NULL);
    return tap_done();
}
