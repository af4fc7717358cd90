/* test_schema.c: our own schemas load; validation details; formats; load-time refusals. */
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/catalog.h"
#include "../../fcgi/schema.h"
#include "../../fcgi/util.h"
#include "tap.h"

static struct app_error err;

static bool valid(const struct resource *r, const char *json)
{
    json_t *doc = json_loads(json, 0, NULL);
    bool v;

    error_clear(&err);
    v = schema_validate(catalog_schemas(), r->schema, r->schema, doc, "", &err);
    json_decref(doc);
    return v;
}

static bool has_detail(const char *field, const char *msg)
{
    size_t i;
    json_t *d;

    json_array_foreach (err.details, i, d) {
        if (strcmp(json_string_value(json_object_get(d, "field")), field) == 0 &&
            strstr(json_string_value(json_object_get(d, "message")), msg))
            return true;
    }
    return false;
}

static bool refused(const char *schema_text)
{
    json_t *s = json_loads(schema_text, 0, NULL);
    char why[SCHEMA_ERR_LEN];
    bool r = schema_check(NULL, s, why) != 0;

    json_decref(s);
    return r;
}

int main(void)
{
    char msg[SCHEMA_ERR_LEN];
    const struct resource *inv, *cus, *res;
    size_t n;

    ok(catalog_load(getenv("LOOPED_SCHEMA_DIR"), msg) == 0, "schemas load: %s", msg);
    res = catalog_resources(&n);
    ok(n == 6, "six resources");
    is_str(res[0].app, "billing", "ordered by app");
    inv = catalog_find("invoices");
    cus = catalog_find("customers");
    ok(inv && cus && !catalog_find("nope"), "find");
    ok(inv->sum_field && strcmp(inv->sum_field, "total") == 0, "invoices.total is computed");
    ok(inv->nreadonly == 4, "invoice read-only fields: id, total, created_at, updated_at (%zu)",
       inv->nreadonly);
    for (size_t i = 0; i < n; i++) {
        json_t *example = json_array_get(json_object_get(res[i].schema, "examples"), 0);

        error_clear(&err);
        ok(example &&
               schema_validate(catalog_schemas(), res[i].schema, res[i].schema, example, "", &err),
           "the documented example of %s is valid", res[i].name);
    }
    ok(cus->nfilterable == 3, "customer filters (%zu)", cus->nfilterable);

    ok(valid(cus, "{\"name\":\"Acme\",\"email\":\"a@example.com\","
                  "\"address\":{\"country\":\"DE\"}}"),
       "a valid customer");
    ok(!valid(cus, "{\"email\":\"nope\",\"address\":{\"country\":\"XX\",\"zip\":1}}"), "invalid");
    ok(has_detail("name", "is required"), "missing required field named");
    ok(has_detail("email", "email"), "bad email named");
    ok(has_detail("address.country", "allowed values"), "nested enum named");
    ok(has_detail("address.zip", "not a known field"), "unknown nested field");
    ok(!valid(cus, "{\"name\":\"\"}") && has_detail("name", "at least 1"), "too short");
    ok(!valid(cus, "{\"name\":7}") && has_detail("name", "must be a string"), "wrong type");

    ok(valid(inv, "{\"customer_id\":\"cus_1\",\"currency\":\"EUR\",\"lines\":[{\"description\":"
                  "\"x\",\"quantity\":2,\"unit_price\":150}],\"issue_date\":\"2026-02-28\"}"),
       "a valid invoice");
    ok(!valid(inv, "{\"customer_id\":\"cus_1\",\"currency\":\"EUR\",\"lines\":[{\"description\":"
                   "\"x\",\"quantity\":0,\"unit_price\":-1}],\"due_date\":\"2026-02-30\","
                   "\"status\":\"late\"}"),
       "an invalid invoice");
    ok(has_detail("lines[0].quantity", ">= 1"), "array item path");
    ok(has_detail("lines[0].unit_price", ">= 0"), "money is not negative");
    ok(has_detail("due_date", "date"), "impossible date");
    ok(has_detail("status", "one of: draft, open, paid, void"), "enum listed");
    ok(!valid(inv, "{\"customer_id\":\"c\",\"currency\":\"EUR\",\"lines\":[]}") &&
           has_detail("lines", "at least 1"),
       "at least one line");
    ok(!valid(inv, "{\"customer_id\":\"c\",\"currency\":\"EUR\",\"lines\":[{\"description\":\"x\","
                   "\"quantity\":1.5,\"unit_price\":1}]}") &&
           has_detail("lines[0].quantity", "integer"),
       "a fraction is not an integer");
    {
        json_t *doc = json_loads("{\"customer_id\":\"cus_1\",\"lines\":[{\"product_id\":\"p\"},"
                                 "{\"description\":\"x\"}]}",
                                 0, NULL);
        json_t *refs = json_array();

        catalog_references(inv, doc, refs);
        ok(json_array_size(refs) == 2, "references found");
        is_str(json_string_value(json_object_get(json_array_get(refs, 1), "field")),
               "lines[0].product_id", "nested reference path");
        json_decref(refs);
        json_decref(doc);
    }

    {
        json_t *doc = json_loads("{\"customer_id\":\"c\",\"currency\":\"EUR\",\"lines\":[{"
                                 "\"description\":\"x\",\"quantity\":2.0,\"unit_price\":1e3}]}",
                                 0, NULL);
        json_t *line = json_array_get(json_object_get(doc, "lines"), 0);

        schema_coerce_integers(catalog_schemas(), inv->schema, inv->schema, doc);
        ok(json_is_integer(json_object_get(line, "quantity")) &&
               json_integer_value(json_object_get(line, "unit_price")) == 1000,
           "integral floats become integers where the schema says integer");
        json_decref(doc);
    }
    ok(util_date_valid("2024-02-29") && !util_date_valid("2023-02-29") &&
           !util_date_valid("2024-2-29") && !util_date_valid("2024-02-29T00:00:00Z"),
       "date format");
    {
        /* The schema's date-time format and the API's times are read by one parser. */
        struct {
            const char *s;
            bool valid;
        } dt[] = {
            {"1998-12-31T23:59:60Z", true},   {"1998-12-31T15:59:60.123-08:00", true},
            {"1998-12-31T23:58:60Z", false},  {"2026-11-29T17:19:48", false},
            {"2026-11-29t17:19:48.5z", true}, {"1963-06-19T08:30:06.283185Z", true},
            {"2026-02-29T00:00:00Z", false},  {"2026-11-29T17:19:48Zjunk", false},
        };

        for (size_t i = 0; i < sizeof dt / sizeof dt[0]; i++) {
            json_t *inst = json_string(dt[i].s);
            json_t *sch = json_pack("{s:s, s:s}", "type", "string", "format", "date-time");
            struct app_error e = {0};
            int64_t ms;

            ok(schema_validate(catalog_schemas(), sch, sch, inst, "t", &e) == dt[i].valid &&
                   (util_time_parse(dt[i].s, &ms) == 0) == dt[i].valid,
               "date-time %s: %s for the schema and the API alike", dt[i].s,
               dt[i].valid ? "valid" : "invalid");
            error_clear(&e);
            json_decref(sch);
            json_decref(inst);
        }
    }
    ok(schema_format_email("joe.bloggs@example.com") && schema_format_email("\"a b\"@x.io") &&
           schema_format_email("x@[127.0.0.1]") && schema_format_email("x@[IPv6:::1]") &&
           !schema_format_email("x@[127.0.0.300]") && !schema_format_email("a..b@x.io") &&
           !schema_format_email(".a@x.io") && !schema_format_email("no-at") &&
           !schema_format_email("a@bad=domain.com"),
       "email format");

    ok(refused("{\"pattern\":\"^a\"}"), "unsupported keyword refused");
    ok(refused("{\"format\":\"uri\"}"), "unsupported format refused");
    ok(refused("{\"$ref\":\"#/nowhere\"}"), "dangling $ref refused");
    ok(refused("{\"$ref\":\"http://example.com/s.json\"}"), "remote $ref refused");
    ok(refused("{\"items\":[{\"type\":\"string\"}]}"), "tuple items refused");
    ok(refused("{\"type\":\"float\"}"), "unknown type refused");
    ok(!refused("{\"x-anything\":{\"pattern\":1},\"type\":\"string\"}"), "x- annotations pass");
    {
        json_t *one = json_integer(1), *one_f = json_real(1.0);

        ok(schema_json_equal(one, one_f) && !schema_json_equal(json_true(), one),
           "JSON Schema equality");
        json_decref(one);
        json_decref(one_f);
    }
    error_clear(&err);
    catalog_free();
    return tap_done();
}
