/* handlers.h: the endpoint handlers; routes.c binds them to paths (the app of app.h). */
#ifndef LOOPED_HANDLERS_H
#define LOOPED_HANDLERS_H

#include <stddef.h>

#include "../fcgi/router.h"

/* Each handler fills res and returns 0, or sets err and returns -1 (router.h). */
int handle_health(struct request *req, struct response *res, struct app_error *err);
int handle_me(struct request *req, struct response *res, struct app_error *err);
int handle_scopes(struct request *req, struct response *res, struct app_error *err);
int handle_key_self(struct request *req, struct response *res, struct app_error *err);
int handle_keys_create(struct request *req, struct response *res, struct app_error *err);
int handle_keys_list(struct request *req, struct response *res, struct app_error *err);
int handle_keys_get(struct request *req, struct response *res, struct app_error *err);
int handle_keys_update(struct request *req, struct response *res, struct app_error *err);
int handle_keys_revoke(struct request *req, struct response *res, struct app_error *err);
int handle_keys_rotate(struct request *req, struct response *res, struct app_error *err);
int handle_keys_delete(struct request *req, struct response *res, struct app_error *err);
int handle_keys_usage(struct request *req, struct response *res, struct app_error *err);
int handle_resource_list(struct request *req, struct response *res, struct app_error *err);
int handle_resource_create(struct request *req, struct response *res, struct app_error *err);
int handle_resource_get(struct request *req, struct response *res, struct app_error *err);
int handle_resource_update(struct request *req, struct response *res, struct app_error *err);
int handle_resource_delete(struct request *req, struct response *res, struct app_error *err);
int handle_openapi(struct request *req, struct response *res, struct app_error *err);
int handle_policy_get(struct request *req, struct response *res, struct app_error *err);
int handle_policy_update(struct request *req, struct response *res, struct app_error *err);
int handle_key_leaks(struct request *req, struct response *res, struct app_error *err);
int handle_metrics(struct request *req, struct response *res, struct app_error *err);

/* Builds the OpenAPI document from schema_dir/openapi/base.json and the loaded catalog, once
 * at start-up. Returns 0, or -1 with one line in err (SCHEMA_ERR_LEN bytes). */
int openapi_build(const char *schema_dir, char *err);
void openapi_free(void);

int handle_audit_list(struct request *req, struct response *res, struct app_error *err);
int handle_test_hello(struct request *req, struct response *res, struct app_error *err);
int handle_test_sleep(struct request *req, struct response *res, struct app_error *err);

#endif
