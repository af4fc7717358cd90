/* cursor.c: list cursors as base64url("<at>:<id>") "." base64url(MAC). */
#include "cursor.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "util.h"

#define MAC_LEN 12

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of n bytes into out; returns the length written. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;

        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* Decodes n characters of unpadded base64url into out (cap bytes). Returns the length or -1. */
static long b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    uint32_t v = 0;
    size_t o = 0;
    int bits = 0;

    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(b64, in[i], 64);

        if (p == NULL || in[i] == '\0')
            return -1;
        v = v << 6 | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    /* Leftover bits must be zero, or two encodings would decode alike. */
    if (v & ((1u << bits) - 1))
        return -1;
    return (long)o;
}

/* The MAC's purpose string binds a cursor to its list and team. */
static int purpose_of(const char *list, const char *team, char *out, size_t len)
{
    int n = snprintf(out, len, "cursor:%s:%s", list, team);

    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int cursor_encode(const char *list, const char *team, int64_t at, const char *id, char *out)
{
    char purpose[160];
    char payload[96];
    unsigned char mac[MAC_LEN];
    int n = snprintf(payload, sizeof payload, "%lld:%s", (long long)at, id);
    size_t o;

    if (n < 0 || (size_t)n >= sizeof payload || purpose_of(list, team, purpose, sizeof purpose) ||
        auth_mac(purpose, payload, (size_t)n, mac, sizeof mac) != 0)
        return -1;
    o = b64_encode((const unsigned char *)payload, (size_t)n, out);
    out[o++] = '.';
    b64_encode(mac, sizeof mac, out + o);
    return 0;
}

int cursor_decode(const char *list, const char *team, const char *cursor, int64_t *at, char *id,
                  size_t id_len)
{
    char purpose[160];
    unsigned char payload[96], mac[MAC_LEN], want[MAC_LEN];
    const char *dot = strchr(cursor, '.'), *colon;
    long n, m;
    long long v;
    char num[24];

    if (dot == NULL || strlen(cursor) >= CURSOR_MAX ||
        purpose_of(list, team, purpose, sizeof purpose))
        return -1;
    n = b64_decode(cursor, (size_t)(dot - cursor), payload, sizeof payload - 1);
    m = b64_decode(dot + 1, strlen(dot + 1), mac, sizeof mac);
    if (n <= 0 || m != MAC_LEN || auth_mac(purpose, payload, (size_t)n, want, sizeof want) != 0 ||
        !auth_equal(mac, want, MAC_LEN))
        return -1;
    payload[n] = '\0';
    colon = memchr(payload, ':', (size_t)n);
    if (colon == NULL || (size_t)(colon - (char *)payload) >= sizeof num)
        return -1;
    memcpy(num, payload, (size_t)(colon - (char *)payload));
    num[colon - (char *)payload] = '\0';
    if (util_strtonum(num, 0, 1LL << 53, &v) != 0 || strlen(colon + 1) >= id_len ||
        strlen(colon + 1) != (size_t)(n - (colon + 1 - (char *)payload)))
        return -1;
    *at = v;
    strcpy(id, colon + 1);
    return 0;
}

int cursor_limit(const char *s, size_t *limit)
{
    long long v = 20;

    if (s && util_strtonum(s, 1, 100, &v) != 0)
        return -1;
    *limit = (size_t)v;
    return 0;
}

json_t *cursor_page_at(json_t *rows, size_t limit, const char *list, const char *team,
                       int64_t last_at, struct app_error *err)
{
    char next[CURSOR_MAX];
    bool more = json_array_size(rows) > limit;
    json_t *page;

    if (more) {
        json_t *last = json_array_get(rows, limit - 1);

        if (cursor_encode(list, team, last_at, json_string_value(json_object_get(last, "id")),
                          next) != 0) {
            json_decref(rows);
            error_set(err, ERR_INTERNAL, NULL);
            return NULL;
        }
        while (json_array_size(rows) > limit)
            json_array_remove(rows, limit);
    }
    page = json_pack("{s:o, s:b, s:o}", "data", rows, "has_more", more, "next_cursor",
                     more ? json_string(next) : json_null());
    if (page == NULL)
        error_set(err, ERR_INTERNAL, NULL);
    return page;
}

json_t *cursor_page(json_t *rows, size_t limit, const char *list, const char *team,
                    const char *time_field, struct app_error *err)
{
    int64_t at = 0;

    if (json_array_size(rows) > limit) {
        const char *at_text =
            json_string_value(json_object_get(json_array_get(rows, limit - 1), time_field));

        if (at_text == NULL || util_time_parse(at_text, &at) != 0) {
            json_decref(rows);
            error_set(err, ERR_INTERNAL, NULL);
            return NULL;
        }
    }
    return cursor_page_at(rows, limit, list, team, at, err);
}
