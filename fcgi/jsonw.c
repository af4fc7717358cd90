/* jsonw.c: JSON text written straight into a buffer (see jsonw.h). */
#include "jsonw.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Room for n more bytes and a NUL; the buffer at least doubles, so appends are amortised. */
static bool reserve(struct jsonw *w, size_t n)
{
    size_t cap;
    char *p;

    if (w->failed)
        return false;
    if (w->len + n < w->cap)
        return true;
    cap = w->cap ? w->cap : 512;
    while (cap <= w->len + n)
        cap *= 2;
    p = realloc(w->buf, cap);
    if (p == NULL) {
        w->failed = true;
        return false;
    }
    w->buf = p;
    w->cap = cap;
    return true;
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* The length of the UTF-8 sequence at s (its lead byte is >= 0x80), or 0 if it is not
 * one that jansson accepts. */
static size_t utf8_seq(const unsigned char *s)
{
    uint32_t c;
    size_t n;

    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2, c = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3, c = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4, c = s[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10FFFF ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

void jsonw_str(struct jsonw *w, const char *str)
{
    /* jansson's two-character escapes; the other control characters are written \u00XX. */
    static const char short_esc[0x20] = {
        ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str, *run;
    char esc[6] = {'\\', 'u', '0', '0'};

    JSONW_LIT(w, "\"");
    for (;;) {
        /* The run of bytes that go out as they are. */
        for (run = s; *s >= 0x20 && *s != '"' && *s != '\\'; s++) {
            if (*s >= 0x80) {
                size_t n = utf8_seq(s);

                if (n == 0) {
                    w->failed = true;
                    return;
                }
                s += n - 1;
            }
        }
        jsonw_raw(w, (const char *)run, (size_t)(s - run));
        if (*s == '\0')
            break;
        esc[1] = *s == '"' || *s == '\\' ? (char)*s : short_esc[*s];
        if (esc[1]) {
            jsonw_raw(w, esc, 2);
        } else {
            esc[1] = 'u';
            esc[4] = hex[*s >> 4];
            esc[5] = hex[*s & 0xF];
            jsonw_raw(w, esc, 6);
        }
        s++;
    }
    JSONW_LIT(w, "\"");
}

void jsonw_str_or_null(struct jsonw *w, const char *s)
{
    if (s[0])
        jsonw_str(w, s);
    else
        JSONW_LIT(w, "null");
}

void jsonw_time(struct jsonw *w, int64_t ms)
{
    char buf[UTIL_TIME_LEN];

    if (ms == 0) {
        JSONW_LIT(w, "null");
        return;
    }
    util_time_format(ms, buf);
    JSONW_LIT(w, "\"");
    jsonw_raw(w, buf, strlen(buf));
    JSONW_LIT(w, "\"");
}

char *jsonw_finish(struct jsonw *w, size_t *len)
{
    char *buf;

    if (!reserve(w, 0) || w->buf == NULL) {
        free(w->buf);
        *w = (struct jsonw){0};
        return NULL;
    }
    w->buf[w->len] = '\0';
    buf = w->buf;
    *len = w->len;
    *w = (struct jsonw){0};
    return buf;
}

static int append(const char *buf, size_t n, void *data)
{
    struct jsonw *w = data;

    jsonw_raw(w, buf, n);
    return w->failed ? -1 : 0;
}

void jsonw_json(struct jsonw *w, const json_t *v)
{
    if (!w->failed && json_dump_callback(v, append, w, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        w->failed = true;
}

json_t *jsonw_to_json(struct jsonw *w)
{
    size_t len;
    char *text = jsonw_finish(w, &len);
    json_t *v = text ? json_loadb(text, len, 0, NULL) : NULL;

    free(text);
    return v;
}
