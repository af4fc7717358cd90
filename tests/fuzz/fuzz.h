/* fuzz.h: what the libFuzzer targets share: the pepper, the schema directory, and a FastCGI
 * request made of an environment and a body in memory. */
#ifndef LOOPED_FUZZ_H
#define LOOPED_FUZZ_H

#include <fcgiapp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/auth.h"

/* The catalog's schemas: LOOPED_SCHEMA_DIR, else schemas/ of the checkout (tests/fuzz/run). */
static inline const char *fuzz_schema_dir(void)
{
    const char *d = getenv("LOOPED_SCHEMA_DIR");

    return d && *d ? d : "schemas";
}

/* libgcrypt with a fixed pepper (digests, cursor MACs), or the target stops. */
static inline void fuzz_auth_init(void)
{
    static const unsigned char pepper[32] = "fuzzing pepper, 32 bytes long..";

    if (auth_init(pepper, sizeof pepper) != 0)
        abort();
}

/* An input stream over a buffer: at its end the stream says so, as libfcgi's does. */
static inline void fuzz_fill(FCGX_Stream *s)
{
    s->isClosed = 1;
}

static inline void fuzz_stream(FCGX_Stream *s, const uint8_t *data, size_t n)
{
    static unsigned char none[1];

    memset(s, 0, sizeof *s);
    s->rdNext = s->stop = s->stopUnget = data ? (unsigned char *)data : none;
    s->stop += n;
    s->isReader = 1;
    s->fillBuffProc = fuzz_fill;
}

#endif
