/* test_jsonw.c: the JSON writer against jansson, which is the reference: for every string
 * jansson accepts the bytes must be the same as json_dumps(JSON_COMPACT) writes, and every
 * string it refuses must fail the writer too; the key object must equal the one jansson
 * builds from the same fields. */
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/catalog.h"
#include "../../fcgi/jsonw.h"
#include "../../fcgi/keys.h"
#include "../../fcgi/util.h"
#include "tap.h"

/* 1 if the writer and jansson agree on s (same text, or both refuse it). */
static int same_as_jansson(const char *s)
{
    struct jsonw w = {0};
    json_t *v = json_string(s);
    char *want = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *got;
    size_t len;
    int same;

    jsonw_str(&w, s);
    got = jsonw_finish(&w, &len);
    same = want == NULL ? got == NULL : got && strlen(want) == len && strcmp(got, want) == 0;
    if (!same)
        printf("# string %s: jansson %s, jsonw %s\n", s, want ? want : "(refused)",
               got ? got : "(refused)");
    free(want);
    free(got);
    json_decref(v);
    return same;
}

static json_t *time_json(int64_t ms)
{
    char buf[UTIL_TIME_LEN];

    return ms ? json_string(util_time_format(ms, buf)) : json_null();
}

/* The key object as jansson builds it field by field (api.md §3.2). */
static json_t *key_reference(const struct api_key *k, int64_t now)
{
    json_t *ips = json_array();
    char buf[IPNET_TEXT_MAX];

    for (uint32_t i = 0; i < k->nips; i++)
        json_array_append_new(ips, json_string(ipnet_format(&k->ips[i], buf)));
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
        k->id, "name", k->name, "permission", keys_permission_name(k->permission), "scopes",
        json_loads(k->permission == PERM_RESTRICTED ? "[\"customers:read\",\"tasks:write\"]" : "[]",
                   0, NULL),
        "status", keys_status_name(keys_status(k, now)), "hint", k->hint, "expires_at",
        time_json(k->expires_at), "created_at", time_json(k->created_at), "created_by",
        k->created_by, "updated_at", time_json(k->updated_at), "last_used_at",
        time_json(k->last_used_at), "last_used_ip",
        k->last_used_ip[0] ? json_string(k->last_used_ip) : json_null(), "revoked_at",
        time_json(k->revoked_at), "revoked_by",
        k->revoked_by[0] ? json_string(k->revoked_by) : json_null(), "rate_limit",
        k->rate.requests ? json_pack("{s:i, s:i}", "requests", (int)k->rate.requests, "per_seconds",
                                     (int)k->rate.per_seconds)
                         : json_null(),
        "allowed_ips", ips);

    json_object_set_new(o, "rotated_from",
                        k->rotated_from[0] ? json_string(k->rotated_from) : json_null());
    json_object_set_new(o, "rotated_to",
                        k->rotated_to[0] ? json_string(k->rotated_to) : json_null());
    return o;
}

/* keys_write's text is the reference object's compact dump, and keys_to_json equals it. */
static int key_same(const struct api_key *k, int64_t now)
{
    struct jsonw w = {0};
    json_t *ref = key_reference(k, now), *obj = keys_to_json(k, now);
    char *want = json_dumps(ref, JSON_COMPACT), *got;
    size_t len;
    int same;

    keys_write(&w, k, now);
    got = jsonw_finish(&w, &len);
    same = got && want && strcmp(got, want) == 0 && strlen(got) == len && json_equal(obj, ref);
    if (!same)
        printf("# key: jansson %s\n#      jsonw   %s\n", want ? want : "-", got ? got : "-");
    free(want);
    free(got);
    json_decref(ref);
    json_decref(obj);
    return same;
}

int main(void)
{
    static const char *const strings[] = {
        "", "plain", "quote \" and backslash \\", "slash / stays", "\b\f\n\r\t", "\x01\x1f\x7f",
        "caf\xc3\xa9", "\xe2\x80\xa8 line separator", "\xf0\x9f\x94\x91 key", "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf",
        /* refused: lone continuation, overlong, surrogate, beyond U+10FFFF, cut short */
        "\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
        "\xc3", "\xe2\x80", "caf\xc3"};
    struct api_key k;
    char msg[256], buf[64];
    struct jsonw w = {0};
    size_t len, agree = 0;
    char *text;
    unsigned seed = 20261201;

    ok(catalog_load(getenv("LOOPED_SCHEMA_DIR"), msg) == 0, "catalog loads: %s", msg);
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        ok(same_as_jansson(strings[i]), "string %zu agrees with jansson", i);

    /* Random byte strings, biased to the interesting bytes: the writer and jansson agree on
     * every one, accepted or refused. */
    for (int i = 0; i < 20000; i++) {
        static const unsigned char pick[] = {'a',  '"',  '\\', 0x01, 0x1f, 0x7f, 0x80, 0xbf, 0xc2,
                                             0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
        size_t n = (size_t)(rand_r(&seed) % 8);

        for (size_t j = 0; j < n; j++)
            buf[j] = (char)pick[rand_r(&seed) % sizeof pick];
        buf[n] = '\0';
        agree += same_as_jansson(buf);
    }
    ok(agree == 20000, "20000 random strings: jsonw and jansson agree on %zu", agree);

    /* The buffer grows past its first size and keeps every byte. */
    for (int i = 0; i < 1000; i++)
        JSONW_LIT(&w, "0123456789");
    text = jsonw_finish(&w, &len);
    ok(text && len == 10000 && text[9999] == '9' && text[10000] == '\0', "10000 bytes written");
    free(text);

    /* A refused string fails the whole text, and leaves the writer empty for reuse. */
    JSONW_LIT(&w, "{\"a\":");
    jsonw_str(&w, "\xc0\xaf");
    JSONW_LIT(&w, "}");
    ok(w.failed, "a refused string marks the writer failed");
    ok(jsonw_finish(&w, &len) == NULL && w.buf == NULL && !w.failed, "no text; writer reset");
    JSONW_LIT(&w, "{\"a\":");
    jsonw_str(&w, "\xc0\xaf");
    JSONW_LIT(&w, "}");
    ok(jsonw_to_json(&w) == NULL && w.buf == NULL, "no value from a failed writer either");
    {
        json_t *v, *want = json_pack("{s:s}", "a", "caf\xc3\xa9 \"q\"");

        JSONW_LIT(&w, "{\"a\":");
        jsonw_str(&w, "caf\xc3\xa9 \"q\"");
        JSONW_LIT(&w, "}");
        v = jsonw_to_json(&w);
        ok(v && json_equal(v, want), "jsonw_to_json parses the text back");
        json_decref(v);
        json_decref(want);
    }

    /* A jansson body in one walk: the same bytes as json_dumps, for a nested value. */
    {
        json_t *v =
            json_loads("{\"a\":[1,-2.5,true,null,\"caf\\u00e9\\n\"],\"b\":{\"c\":{}}}", 0, NULL);
        char *want = json_dumps(v, JSON_COMPACT), *got;

        JSONW_LIT(&w, "[");
        jsonw_json(&w, v);
        JSONW_LIT(&w, "]");
        got = jsonw_finish(&w, &len);
        ok(got && want && len == strlen(want) + 2 && strncmp(got + 1, want, len - 2) == 0,
           "jsonw_json writes what json_dumps writes: %s", got ? got : "(null)");
        free(got);
        free(want);
        json_decref(v);
    }

    /* The key object: every status, permissions, times set and unset, escaped names. */
    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "key_0123456789abcdefghij");
    snprintf(k.team_id, sizeof k.team_id, "team_1");
    snprintf(k.name, sizeof k.name, "Zapier \"prod\" \\ caf\xc3\xa9");
    snprintf(k.hint, sizeof k.hint, "looped_ab12\xe2\x80\xa6yz89");
    snprintf(k.created_by, sizeof k.created_by, "owner@example.com");
    k.permission = PERM_READ_ALL;
    k.created_at = k.updated_at = 1700000000123;
    ok(key_same(&k, 1700000001000), "active read_all key, never used");
    k.last_used_at = 1700000000999;
    snprintf(k.last_used_ip, sizeof k.last_used_ip, "2001:db8::1");
    k.expires_at = 1700000000500;
    ok(key_same(&k, 1700000001000), "expired key, used");
    k.permission = PERM_RESTRICTED;
    ok(catalog_scope_parse("customers:read", &k.scopes) == 0, "customers:read is a scope");
    {
        uint64_t b = 0;

        ok(catalog_scope_parse("tasks:write", &b) == 0, "tasks:write is a scope");
        k.scopes |= b;
    }
    k.revoked_at = 1700000000700;
    snprintf(k.revoked_by, sizeof k.revoked_by, "admin");
    ok(key_same(&k, 1700000001000), "revoked restricted key");
    k.permission = PERM_WRITE_ALL;
    ok(key_same(&k, 1700000001000), "write_all key: scopes are [] whatever the bits say");
    {
        const char *why;

        k.rate.requests = 1000000;
        k.rate.per_seconds = 86400;
        ok(ipnet_parse("203.0.113.7/24", &k.ips[0], &why) == 0 &&
               ipnet_parse("2001:db8::/32", &k.ips[1], &why) == 0,
           "two blocks parse");
        k.nips = 2;
        ok(key_same(&k, 1700000001000), "a key with a rate limit and an allow-list");
    }
    snprintf(k.name, sizeof k.name, "bad \xff");
    keys_write(&w, &k, 1700000001000);
    ok(jsonw_finish(&w, &len) == NULL && keys_to_json(&k, 1700000001000) == NULL,
       "a stored name that is not UTF-8 is refused, as jansson refuses it");
    catalog_free();
    return tap_done();
}
