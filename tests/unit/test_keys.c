/* test_keys.c: key status, permissions and scope implication, input validation, cursors,
 * RFC 3339 parsing. */
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/auth.h"
#include "../../fcgi/auth_check.h"
#include "../../fcgi/catalog.h"
#include "../../fcgi/cursor.h"
#include "../../fcgi/keys.h"
#include "../../fcgi/util.h"
#include "tap.h"

static uint64_t scope(const char *s)
{
    uint64_t b = 0;

    catalog_scope_parse(s, &b);
    return b;
}

/* Whether a key of permission p with scope set scopes may use need. */
static bool grants(enum key_permission p, uint64_t scopes, uint64_t need)
{
    struct api_key k;

    memset(&k, 0, sizeof k);
    k.permission = p;
    k.scopes = scopes;
    return auth_key_grants(&k, need);
}

static int parse(const char *json, bool create, struct key_input *in, struct app_error *err)
{
    json_t *body = json_loads(json, JSON_DECODE_ANY, NULL);
    int rc;

    memset(err, 0, sizeof *err);
    rc = keys_input_parse(body, create, 1000000, in, err);
    json_decref(body);
    return rc;
}

static bool detail_is(const struct app_error *err, const char *field)
{
    size_t i;
    json_t *d;

    json_array_foreach (err->details, i, d) {
        if (strcmp(json_string_value(json_object_get(d, "field")), field) == 0)
            return true;
    }
    return false;
}

int main(void)
{
    static const unsigned char pepper[] = "0123456789abcdef0123456789abcdef";
    struct api_key k;
    struct key_input in;
    struct app_error err = {0};
    int64_t ms, at;
    char cur[CURSOR_MAX], id[32];
    size_t limit;

    char msg[SCHEMA_ERR_LEN];

    auth_init(pepper, 32);
    ok(catalog_load(getenv("LOOPED_SCHEMA_DIR"), msg) == 0, "catalog loads: %s", msg);

    /* Status: revoked beats expired beats active. */
    memset(&k, 0, sizeof k);
    ok(keys_status(&k, 1000) == KEY_ACTIVE, "no expiry: active");
    k.expires_at = 2000;
    ok(keys_status(&k, 1999) == KEY_ACTIVE, "before expiry: active");
    ok(keys_status(&k, 2000) == KEY_EXPIRED, "at expiry: expired");
    k.revoked_at = 1500;
    ok(keys_status(&k, 1000) == KEY_REVOKED, "revoked wins");

    /* Scopes: write implies read, for that resource only. */
    ok(scope("invoices:read") && scope("invoices:write") && !scope("invoices:delete") &&
           !scope("nope:read") && !scope("invoices") && !scope(":read"),
       "scope parsing");
    ok(grants(PERM_RESTRICTED, scope("invoices:write"), scope("invoices:read")), "write => read");
    ok(!grants(PERM_RESTRICTED, scope("invoices:read"), scope("invoices:write")), "read !=> write");
    ok(!grants(PERM_RESTRICTED, scope("invoices:write"), scope("customers:read")),
       "no spill to other resources");
    ok(grants(PERM_READ_ALL, 0, scope("tasks:read")) &&
           !grants(PERM_READ_ALL, 0, scope("tasks:write")),
       "read_all reads everything, writes nothing");
    ok(grants(PERM_WRITE_ALL, 0, scope("tasks:write")), "write_all writes");
    ok(!grants(PERM_RESTRICTED, 0, scope("tasks:read")), "restricted without scopes: nothing");
    ok(!grants(PERM_NONE, ~0ULL, scope("tasks:read")), "no permission: nothing");
    ok(scope("tasks:write") == catalog_scope_bit(catalog_find("tasks"), SCOPE_WRITE) &&
           (scope("tasks:write") & SCOPE_WRITE_BITS) && !(scope("tasks:read") & SCOPE_WRITE_BITS),
       "write bits are the named mask");
    {
        json_t *a = catalog_scopes_json(scope("tasks:write") | scope("customers:read"));

        ok(json_array_size(a) == 2 &&
               strcmp(json_string_value(json_array_get(a, 0)), "customers:read") == 0,
           "scope list in catalog order");
        json_decref(a);
        a = catalog_json();
        ok(json_array_size(json_object_get(a, "data")) == 12, "12 scopes in the catalog");
        json_decref(a);
    }

    /* Validation. */
    ok(parse("{\"name\":\" Zapier \",\"permission\":\"restricted\",\"scopes\":[\"invoices:read\"]}",
             true, &in, &err) == 0,
       "valid create");
    is_str(in.name, "Zapier", "name trimmed");
    ok(parse("{}", true, &in, &err) != 0 && detail_is(&err, "name") &&
           detail_is(&err, "permission"),
       "required fields");
    error_clear(&err);
    ok(parse("{\"name\":\"   \",\"permission\":\"read_all\"}", true, &in, &err) != 0 &&
           detail_is(&err, "name"),
       "blank name");
    error_clear(&err);
    {
        char body[512];

        snprintf(body, sizeof body, "{\"name\":\"%0101d\",\"permission\":\"read_all\"}", 0);
        ok(parse(body, true, &in, &err) != 0 && detail_is(&err, "name"), "101 characters");
        error_clear(&err);
        /* 100 characters of 3 bytes each are fine. */
        strcpy(body, "{\"name\":\"");
        for (int i = 0; i < 100; i++)
            strcat(body, "\xe2\x82\xac");
        strcat(body, "\",\"permission\":\"read_all\"}");
        ok(parse(body, true, &in, &err) == 0, "100 multi-byte characters");
    }
    ok(parse("{\"name\":1,\"permission\":\"admin\"}", true, &in, &err) != 0 &&
           detail_is(&err, "name") && detail_is(&err, "permission"),
       "wrong types and values");
    error_clear(&err);
    ok(parse("{\"name\":\"a\",\"permission\":\"restricted\",\"scopes\":[\"x:read\",3]}", true, &in,
             &err) != 0 &&
           detail_is(&err, "scopes[0]") && detail_is(&err, "scopes[1]"),
       "bad scopes named by index");
    error_clear(&err);
    ok(parse("{\"name\":\"a\",\"permission\":\"read_all\",\"colour\":1}", true, &in, &err) != 0 &&
           detail_is(&err, "colour"),
       "unknown field");
    error_clear(&err);
    ok(parse("[1]", true, &in, &err) != 0, "not an object");
    error_clear(&err);
    ok(parse("{\"expires_at\":\"1970-01-01T00:00:01Z\"}", false, &in, &err) != 0 &&
           detail_is(&err, "expires_at"),
       "expiry in the past");
    error_clear(&err);
    ok(parse("{\"expires_at\":\"tomorrow\"}", false, &in, &err) != 0, "expiry not a time");
    error_clear(&err);
    ok(parse("{\"expires_at\":null}", false, &in, &err) == 0 && in.has_expires &&
           in.expires_at == 0,
       "null clears the expiry");

    /* Apply: the combination rules. */
    memset(&k, 0, sizeof k);
    parse("{\"name\":\"a\",\"permission\":\"restricted\"}", true, &in, &err);
    ok(keys_apply(&k, &in, 1, NULL, &err) != 0 && detail_is(&err, "scopes"),
       "restricted needs a scope");
    error_clear(&err);
    parse("{\"name\":\"a\",\"permission\":\"read_all\",\"scopes\":[\"tasks:read\"]}", true, &in,
          &err);
    ok(keys_apply(&k, &in, 1, NULL, &err) != 0, "read_all takes no scopes");
    error_clear(&err);
    parse("{\"name\":\"a\",\"permission\":\"restricted\",\"scopes\":[\"tasks:read\"]}", true, &in,
          &err);
    ok(keys_apply(&k, &in, 1, NULL, &err) == 0 && k.permission == PERM_RESTRICTED, "applied");
    {
        json_t *changes = json_object();

        parse("{\"name\":\"b\",\"permission\":\"write_all\"}", false, &in, &err);
        ok(keys_apply(&k, &in, 2, changes, &err) == 0 && k.scopes == 0,
           "moving to write_all drops the scopes");
        ok(json_object_get(changes, "name") && json_object_get(changes, "permission") &&
               json_object_get(changes, "scopes") && !json_object_get(changes, "expires_at"),
           "changes list exactly what changed");
        is_str(json_string_value(json_object_get(json_object_get(changes, "name"), "old")), "a",
               "old value");
        json_decref(changes);
    }

    /* RFC 3339. */
    ok(util_time_parse("2026-11-29T17:19:48Z", &ms) == 0 && ms == 1795972788000LL, "Z time");
    ok(util_time_parse("2026-11-29T17:19:48.123Z", &ms) == 0 && ms == 1795972788123LL,
       "milliseconds");
    ok(util_time_parse("2026-11-29T18:19:48+01:00", &ms) == 0 && ms == 1795972788000LL, "offset");
    ok(util_time_parse("2024-02-29T00:00:00Z", &ms) == 0, "leap day");
    ok(util_time_parse("2026-02-29T00:00:00Z", &ms) != 0, "no leap day in 2026");
    ok(util_time_parse("2026-11-29 17:19:48Z", &ms) != 0, "space separator");
    ok(util_time_parse("2026-11-29T17:19:48", &ms) != 0, "no zone");
    ok(util_time_parse("2026-11-29", &ms) != 0, "date only");
    ok(util_time_parse("2026-13-01T00:00:00Z", &ms) != 0, "month 13");
    ok(util_time_parse("2026-11-29T24:00:00Z", &ms) != 0, "hour 24");
    ok(util_time_parse("2026-11-29T17:19:48Zjunk", &ms) != 0, "trailing junk");
    ok(util_time_parse("1998-12-31T23:59:60Z", &ms) == 0 && ms == 915148799999LL,
       "a leap second is the last millisecond before the next day");
    ok(util_time_parse("1998-12-31T23:58:60Z", &ms) != 0, "60 seconds elsewhere");
    ok(util_time_parse("1969-12-31T23:59:59Z", &ms) == 0 && ms == -1000, "before 1970");
    ok(util_time_parse("0000-01-01T00:00:00Z", &ms) == 0, "year 0000");

    /* Cursors. */
    ok(cursor_encode("api_keys", "acme", 1795972788123LL, "key_abc", cur) == 0, "encode");
    ok(cursor_decode("api_keys", "acme", cur, &at, id, sizeof id) == 0 && at == 1795972788123LL &&
           strcmp(id, "key_abc") == 0,
       "round trip");
    ok(cursor_decode("audit", "acme", cur, &at, id, sizeof id) != 0, "bound to its list");
    ok(cursor_decode("api_keys", "globex", cur, &at, id, sizeof id) != 0, "bound to its team");
    cur[3] = cur[3] == 'A' ? 'B' : 'A';
    ok(cursor_decode("api_keys", "acme", cur, &at, id, sizeof id) != 0, "tampered payload");
    ok(cursor_decode("api_keys", "acme", "garbage", &at, id, sizeof id) != 0, "garbage");
    ok(cursor_decode("api_keys", "acme", "", &at, id, sizeof id) != 0, "empty");
    ok(cursor_limit(NULL, &limit) == 0 && limit == 20, "default limit");
    ok(cursor_limit("100", &limit) == 0 && limit == 100, "limit 100");
    ok(cursor_limit("0", &limit) != 0 && cursor_limit("101", &limit) != 0 &&
           cursor_limit("5x", &limit) != 0,
       "limit out of range");
    auth_thread_done();
    auth_shutdown();
    catalog_free();
    return tap_done();
}
