/* fuzz_cursor.c: list cursors and ?limit= as a client sends them: a made-up or altered
 * cursor is refused, never decoded into a position; a real one decodes to what it encoded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/auth.h"
#include "../../fcgi/cursor.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_auth_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1), id[64], enc[CURSOR_MAX], back[64];
    int64_t at, at2;
    size_t limit;

    if (s == NULL)
        return 0;
    memcpy(s, data, n);
    s[n] = '\0';
    if (cursor_limit(s, &limit) == 0 && (limit < 1 || limit > 100))
        abort();
    if (cursor_decode("audit", "acme", s, &at, id, sizeof id) == 0) {
        /* Only a cursor this process made decodes; it must say the same again. */
        if (cursor_encode("audit", "acme", at, id, enc) != 0 ||
            cursor_decode("audit", "acme", enc, &at2, back, sizeof back) != 0 || at2 != at ||
            strcmp(back, id) != 0)
            abort();
        /* ... for its own list and team only. */
        if (cursor_decode("invoices", "acme", s, &at2, back, sizeof back) == 0 ||
            cursor_decode("audit", "other", s, &at2, back, sizeof back) == 0)
            abort();
    }
    /* Something that decodes, made from the input, to reach past the MAC check. */
    memcpy(id, s, n < sizeof id - 1 ? n : sizeof id - 1);
    id[n < sizeof id - 1 ? n : sizeof id - 1] = '\0';
    if (cursor_encode("audit", "acme", (int64_t)n * 1000, id, enc) == 0 &&
        (cursor_decode("audit", "acme", enc, &at2, back, sizeof back) != 0 ||
         strcmp(back, id) != 0))
        abort();
    free(s);
    return 0;
}
