/* util.c: bounded number parsing, time formatting and randomness. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int util_strtonum(const char *s, long long min, long long max, long long *out)
{
    long long v = 0;
    int neg = 0;

    if (s == NULL || *s == '\0')
        return -1;
    if (*s == '-') {
        if (min >= 0)
            return -1;
        neg = 1;
        s++;
    }
    if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return -1; /* empty after the sign, or a leading zero */
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        /* Accumulate negatively: LLONG_MIN has no positive counterpart. */
        if (v < (-9223372036854775807LL - 1 + (*s - '0')) / 10)
            return -1;
        v = v * 10 - (*s - '0');
    }
    if (!neg) {
        if (v == -9223372036854775807LL - 1)
            return -1;
        v = -v;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int64_t util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ms = ms > 0 ? ms : 0;
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Writes v as n decimal digits (leading zeros) at p. */
static void put_digits(char *p, int v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

char *util_time_format(int64_t ms, char *buf)
{
    time_t sec = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    struct tm tm;

    if (milli < 0) {
        milli += 1000;
        sec -= 1;
    }
    /* Four-digit years only, as util_time_parse reads them: anything else is clamped. */
    if (gmtime_r(&sec, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
        memcpy(buf, ms < 0 ? "0000-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z",
               UTIL_TIME_LEN);
        return buf;
    }
    /* By hand rather than snprintf: this runs for every time in every key object. */
    memcpy(buf, "0000-00-00T00:00:00.000Z", UTIL_TIME_LEN);
    put_digits(buf, tm.tm_year + 1900, 4);
    put_digits(buf + 5, tm.tm_mon + 1, 2);
    put_digits(buf + 8, tm.tm_mday, 2);
    put_digits(buf + 11, tm.tm_hour, 2);
    put_digits(buf + 14, tm.tm_min, 2);
    put_digits(buf + 17, tm.tm_sec, 2);
    put_digits(buf + 20, milli, 3);
    return buf;
}

char *util_http_date(int64_t ms, char *buf)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;

    /* Not strftime: %a and %b follow the locale, the header is always in English. */
    if (gmtime_r(&sec, &tm) == NULL || tm.tm_year < 0 || tm.tm_year > 9999 - 1900) {
        sec = 0; /* out of the header's range: never expected for a key's expiry */
        gmtime_r(&sec, &tm);
    }
    snprintf(buf, UTIL_HTTP_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/* Reads exactly n digits at *s into *v; advances *s. */
static int digits(const char **s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (**s < '0' || **s > '9')
            return -1;
        *v = *v * 10 + (**s - '0');
    }
    return 0;
}

/* Reads a full-date "YYYY-MM-DD" at *s (advancing it) that names a day of the calendar. */
static int full_date(const char **s, int *y, int *mo, int *d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap;

    if (digits(s, 4, y) || *(*s)++ != '-' || digits(s, 2, mo) || *(*s)++ != '-' ||
        digits(s, 2, d) || *mo < 1 || *mo > 12)
        return -1;
    leap = (*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0;
    return *d >= 1 && *d <= mdays[*mo - 1] + (*mo == 2 && leap) ? 0 : -1;
}

bool util_date_valid(const char *s)
{
    int y, mo, d;

    return full_date(&s, &y, &mo, &d) == 0 && *s == '\0';
}

int util_time_parse(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
    struct tm tm;
    time_t t;

    if (full_date(&s, &y, &mo, &d) || (*s != 'T' && *s != 't') || !*s++ || digits(&s, 2, &h) ||
        *s++ != ':' || digits(&s, 2, &mi) || *s++ != ':' || digits(&s, 2, &sec))
        return -1;
    if (*s == '.') {
        int n = 0;

        s++;
        if (*s < '0' || *s > '9')
            return -1;
        for (; *s >= '0' && *s <= '9'; s++, n++) {
            if (n < 3)
                frac = frac * 10 + (*s - '0');
        }
        for (; n < 3; n++)
            frac *= 10;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om) || oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    if (*s != '\0' || h > 23 || mi > 59 || sec > 60)
        return -1;
    if (sec == 60) {
        /* A leap second (RFC 3339 §5.7) is only ever the last second of a UTC day. The epoch
         * has no leap seconds: it counts as the last millisecond of the second before. */
        int utc = ((h * 60 + mi - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;

        if (utc != 23 * 60 + 59)
            return -1;
        sec = 59;
        frac = 999;
    }
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    *ms = ((int64_t)t - sign * (oh * 3600 + om * 60)) * 1000 + frac;
    return 0;
}

int util_random(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int util_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];

    if (n > sizeof raw || util_random(raw, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}
