/* app.h: what an application hands the runtime: its route table and its start-up work. The
 * runtime (fcgi/) names no endpoint; the API's own app is defined in handlers/routes.c. */
#ifndef LOOPED_APP_H
#define LOOPED_APP_H

#include <stddef.h>

#include "router.h"

struct app {
    const struct route *routes; /* static, for the life of the process */
    size_t nroutes;
    /* Once per process before any worker starts, after the catalog is loaded (NULL: none).
     * Returns 0, or -1 with one line in err (SCHEMA_ERR_LEN bytes). */
    int (*init)(const char *schema_dir, char *err);
    /* Releases what init made; called once at exit, also after a failed init (NULL: none). */
    void (*fini)(void);
};

/* The Looped API (handlers/routes.c). */
extern const struct app looped_app;

#endif
