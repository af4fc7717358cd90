/* jsonw.h: JSON text written straight into a growing buffer. The hot paths (GET /v1/key and
 * every error envelope, error_write) write their values here directly, rather than building
 * jansson's tree of allocated values and walking it; other bodies are jansson values dumped
 * here (jsonw_json), openapi.json once at start-up. The output is byte for byte what
 * json_dumps(JSON_COMPACT) writes for the same values (tests/unit/test_jsonw.c compares). */
#ifndef LOOPED_JSONW_H
#define LOOPED_JSONW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw {
    char *buf; /* owned, NUL-terminated once jsonw_finish has returned it */
    size_t len, cap;
    bool failed; /* out of memory, or a string that is not UTF-8: finish returns NULL */
};

/* Text written as it is: JSONW_LIT(w, "{\"id\":"). */
#define JSONW_LIT(w, lit) jsonw_raw((w), (lit), sizeof(lit) - 1)

void jsonw_raw(struct jsonw *w, const char *s, size_t n);

/* s as a JSON string: quoted, '"', '\\' and control characters escaped as jansson does,
 * other UTF-8 as it is. Not UTF-8 (overlong, surrogate, beyond U+10FFFF, cut short): failed. */
void jsonw_str(struct jsonw *w, const char *s);

/* null for "" (an unset fixed-size field), else jsonw_str. */
void jsonw_str_or_null(struct jsonw *w, const char *s);

/* null for 0, else the RFC 3339 time of util_time_format, quoted. */
void jsonw_time(struct jsonw *w, int64_t ms);

/* v in jansson's compact form (a body composed with jansson, in one walk of its tree). */
void jsonw_json(struct jsonw *w, const json_t *v);

/* The text (caller frees) and its length, or NULL (and the buffer freed) if anything failed. */
char *jsonw_finish(struct jsonw *w, size_t *len);

/* The text parsed back into a new jansson value (for responses composed with jansson), or
 * NULL; the buffer is freed either way. */
json_t *jsonw_to_json(struct jsonw *w);

#endif
