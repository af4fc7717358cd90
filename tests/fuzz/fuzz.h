/* fuzz.h: what the libFuzzer targets share: the schema directory and a FastCGI request made
 * of an environment and a body in memory. */
#ifndef LOOPED_FUZZ_H
#define LOOPED_FUZZ_H

#include <fcgiapp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The catalog's schemas: LOOPED_SCHEMA_DIR, else schemas/ of the checkout (tests/fuzz/run). */
static inline const char *fuzz_schema_dir(void)
{
    const char *d = getenv("LOOPED_SCHEMA_DIR");

    return d && *d ? d : "schemas";
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
