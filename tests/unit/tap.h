/* tap.h: a minimal Test Anything Protocol emitter for the unit tests. */
#ifndef LOOPED_TAP_H
#define LOOPED_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

/* Records one test point; prints the failing expression's location when it fails. */
#define ok(cond, ...)                                                                              \
    do {                                                                                           \
        int tap_ok_ = !!(cond); /* evaluated once: cond may have side effects */                   \
        tap_n++;                                                                                   \
        tap_failed += !tap_ok_;                                                                    \
        printf("%sok %d - ", tap_ok_ ? "" : "not ", tap_n);                                        \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        if (!tap_ok_)                                                                              \
            printf("# failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                          \
    } while (0)

#define is_str(got, want, ...) ok((got) != NULL && strcmp((got), (want)) == 0, __VA_ARGS__)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
