/* test_schema_suite.c: our validator against the official JSON-Schema-Test-Suite (Debian's
 * json-schema-test-suite, draft 7 files), for every keyword it supports. A group whose schema
 * uses anything else must be refused by schema_check and is reported as skipped. */
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/schema.h"
#include "tap.h"

static const char *const files[] = {
    "type.json",
    "enum.json",
    "const.json",
    "properties.json",
    "required.json",
    "additionalProperties.json",
    "items.json",
    "minItems.json",
    "maxItems.json",
    "minLength.json",
    "maxLength.json",
    "minimum.json",
    "maximum.json",
    "exclusiveMinimum.json",
    "exclusiveMaximum.json",
    "ref.json",
    "boolean_schema.json",
    "default.json",
    "definitions.json",
    "optional/format/date.json",
    "optional/format/date-time.json",
    "optional/format/email.json",
    NULL,
};

/* Groups where draft 7 and draft 2020-12 (what our schemas use) disagree. */
static const char *const semantic_differences[] = {
    /* Draft 7 ignores keywords beside $ref; 2020-12 applies them. */
    "ref overrides any sibling keywords",
    NULL,
};

static int skipped;

static void run_file(const char *dir, const char *file)
{
    char path[4096], err[SCHEMA_ERR_LEN];
    json_error_t je;
    json_t *groups, *group, *test;
    size_t i, j;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    groups = json_load_file(path, 0, &je);
    ok(groups != NULL, "%s loads", file);
    json_array_foreach (groups, i, group) {
        json_t *schema = json_object_get(group, "schema");
        const char *desc = json_string_value(json_object_get(group, "description"));
        bool differs = false;

        for (const char *const *d = semantic_differences; *d; d++)
            differs |= strcmp(desc, *d) == 0;
        if (differs) {
            printf("ok %d # SKIP %s: %s (draft 7 semantics differ from 2020-12)\n", ++tap_n, file,
                   desc);
            skipped++;
            continue;
        }
        if (schema_check(NULL, schema, err) != 0) {
            printf("ok %d # SKIP %s: %s (%s)\n", ++tap_n, file, desc, err);
            skipped++;
            continue;
        }
        json_array_foreach (json_object_get(group, "tests"), j, test) {
            bool want = json_is_true(json_object_get(test, "valid"));
            bool got =
                schema_validate(NULL, schema, schema, json_object_get(test, "data"), "", NULL);

            ok(got == want, "%s: %s: %s", file, desc,
               json_string_value(json_object_get(test, "description")));
        }
    }
    json_decref(groups);
}

int main(void)
{
    const char *dir = getenv("LOOPED_SCHEMA_SUITE");

    if (dir == NULL)
        dir = "/usr/share/json-schema-test-suite/tests/draft7";
    for (const char *const *f = files; *f; f++)
        run_file(dir, *f);
    printf("# %d groups skipped: they use keywords we do not support\n", skipped);
    return tap_done();
}
