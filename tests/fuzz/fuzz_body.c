/* fuzz_body.c: a JSON request body through the body reader (size, JSON, the checks every
 * body gets) and, when it is JSON, the schema validator against every resource of the
 * catalog, with the integer coercion a valid one gets: an error always names what failed,
 * nothing crashes, and what the validator accepts stays valid after the coercion. */
#include <stdio.h>

#include "../../fcgi/catalog.h"
#include "../../fcgi/http.h"
#include "../../fcgi/schema.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[SCHEMA_ERR_LEN];

    (void)argc;
    (void)argv;
    if (catalog_load(fuzz_schema_dir(), err) != 0) {
        fprintf(stderr, "fuzz_body: %s (run from the checkout, or set LOOPED_SCHEMA_DIR)\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char cl[32], *env[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/v1/customers",
                           "CONTENT_TYPE=application/json", cl, NULL};
    FCGX_Request fcgx;
    FCGX_Stream in;
    struct request req;
    struct app_error err = {0};
    const struct resource *rs;
    size_t nres;

    snprintf(cl, sizeof cl, "CONTENT_LENGTH=%zu", n);
    memset(&fcgx, 0, sizeof fcgx);
    fcgx.envp = env;
    fuzz_stream(&in, data, n);
    fcgx.in = &in;
    if (http_request_init(&req, &fcgx, &err) != 0)
        abort();
    if (http_body_read(&req, 1 << 20, &err) != 0) {
        if (err.code == ERR_NONE)
            abort(); /* a refusal always says why */
    } else {
        rs = catalog_resources(&nres);
        for (size_t i = 0; i < nres; i++) {
            struct app_error verr = {0};
            json_t *copy = json_deep_copy(req.body);

            if (copy == NULL)
                continue;
            if (schema_validate(catalog_schemas(), rs[i].schema, rs[i].schema, copy, "", &verr)) {
                if (verr.details)
                    abort(); /* valid, yet with failures */
                schema_coerce_integers(catalog_schemas(), rs[i].schema, rs[i].schema, copy);
                if (!schema_validate(catalog_schemas(), rs[i].schema, rs[i].schema, copy, "", NULL))
                    abort();
            } else if (json_array_size(verr.details) == 0) {
                abort(); /* refused without a detail naming the field */
            }
            error_clear(&verr);
            json_decref(copy);
        }
    }
    error_clear(&err);
    http_request_free(&req);
    return 0;
}
