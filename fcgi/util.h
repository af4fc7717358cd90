/* util.h: small helpers shared by every module: bounded number parsing, time, randomness. */
#ifndef LOOPED_UTIL_H
#define LOOPED_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a whole decimal integer in [min, max] (no sign for min >= 0, no spaces, no
 * trailing characters). Returns 0 and sets *out, or -1 (errno untouched). */
int util_strtonum(const char *s, long long min, long long max, long long *out);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t util_now_ms(void);

/* Monotonic milliseconds, for timeouts and cache ages. */
int64_t util_mono_ms(void);

/* Sets *ts to ms from now on CLOCK_REALTIME: the deadline of a pthread_cond_timedwait. */
struct timespec;
void util_deadline(struct timespec *ts, int64_t ms);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds, "2026-11-29T17:19:48.123Z".
 * buf must hold UTIL_TIME_LEN bytes. Returns buf. */
#define UTIL_TIME_LEN 25
char *util_time_format(int64_t ms, char *buf);

/* Formats ms since the epoch (seconds kept) as an HTTP date (RFC 9110 IMF-fixdate), "Sun, 06
 * Nov 1994 08:49:37 GMT", as Sunset (RFC 8594) wants it. buf must hold UTIL_HTTP_DATE_LEN
 * bytes. Returns buf. */
#define UTIL_HTTP_DATE_LEN 32
char *util_http_date(int64_t ms, char *buf);

/* The one RFC 3339 parser (the JSON Schema formats use it too). Parses a date-time
 * ("2026-11-29T17:19:48Z"; "t"/"z" in lower case, fractions of any length (milliseconds kept)
 * and "+02:00" offsets allowed; years 0000-9999) into ms since the epoch, UTC (negative
 * before 1970). A leap second, 23:59:60 UTC only, reads as 23:59:59.999. Returns 0, or -1 for
 * anything else, including impossible dates such as February 30. */
int util_time_parse(const char *s, int64_t *ms);

/* True if s is exactly an RFC 3339 full-date, "YYYY-MM-DD", of a day that exists. */
bool util_date_valid(const char *s);

/* Fills buf with n bytes from the kernel's CSPRNG (getrandom). Returns 0 or -1. */
int util_random(void *buf, size_t n);

/* Writes n random bytes as 2n lowercase hex characters plus NUL into out (2n+1 bytes).
 * Returns 0 or -1. */
int util_random_hex(char *out, size_t n);

#endif
