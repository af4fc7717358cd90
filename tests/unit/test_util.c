/* test_util.c: bounded number parsing, time formatting, random hex. */
#include <limits.h>
#include <string.h>

#include "../../fcgi/util.h"
#include "tap.h"

int main(void)
{
    long long v = 42;
    char buf[UTIL_TIME_LEN], hex[33];

    ok(util_strtonum("0", 0, 10, &v) == 0 && v == 0, "zero");
    ok(util_strtonum("10", 0, 10, &v) == 0 && v == 10, "upper bound is inclusive");
    ok(util_strtonum("11", 0, 10, &v) != 0, "above max");
    ok(util_strtonum("-1", 0, 10, &v) != 0, "negative when min >= 0");
    ok(util_strtonum("-5", -10, 10, &v) == 0 && v == -5, "negative within range");
    ok(util_strtonum("", 0, 10, &v) != 0, "empty");
    ok(util_strtonum(NULL, 0, 10, &v) != 0, "NULL");
    ok(util_strtonum(" 1", 0, 10, &v) != 0, "leading space");
    ok(util_strtonum("1 ", 0, 10, &v) != 0, "trailing space");
    ok(util_strtonum("01", 0, 10, &v) != 0, "leading zero");
    ok(util_strtonum("1e3", 0, 10000, &v) != 0, "exponent");
    ok(util_strtonum("0x10", 0, 100, &v) != 0, "hex");
    ok(util_strtonum("+1", 0, 10, &v) != 0, "plus sign");
    ok(util_strtonum("-", -10, 10, &v) != 0, "sign only");
    ok(util_strtonum("9223372036854775807", 0, LLONG_MAX, &v) == 0 && v == LLONG_MAX, "LLONG_MAX");
    ok(util_strtonum("9223372036854775808", 0, LLONG_MAX, &v) != 0, "overflow");
    ok(util_strtonum("-9223372036854775808", LLONG_MIN, 0, &v) == 0 && v == LLONG_MIN, "LLONG_MIN");
    ok(util_strtonum("99999999999999999999999", 0, LLONG_MAX, &v) != 0, "far overflow");
    v = 7;
    util_strtonum("x", 0, 10, &v);
    ok(v == 7, "output untouched on failure");

    is_str(util_time_format(0, buf), "1970-01-01T00:00:00.000Z", "epoch");
    is_str(util_time_format(1795972788123LL, buf), "2026-11-29T17:19:48.123Z", "a 2026 time");
    is_str(util_time_format(-1, buf), "1969-12-31T23:59:59.999Z", "before the epoch");
    is_str(util_time_format(253402300799999LL, buf), "9999-12-31T23:59:59.999Z", "the last time");
    is_str(util_time_format(253402300800000LL, buf), "9999-12-31T23:59:59.999Z",
           "after year 9999: clamped");
    is_str(util_time_format(INT64_MAX, buf), "9999-12-31T23:59:59.999Z", "INT64_MAX: clamped");
    is_str(util_time_format(-62167219200000LL, buf), "0000-01-01T00:00:00.000Z", "year 0");
    is_str(util_time_format(INT64_MIN, buf), "0000-01-01T00:00:00.000Z", "INT64_MIN: clamped");

    ok(util_random_hex(hex, 16) == 0 && strlen(hex) == 32 && strspn(hex, "0123456789abcdef") == 32,
       "random hex has 32 lowercase hex digits");
    {
        char other[33];

        util_random_hex(other, 16);
        ok(strcmp(hex, other) != 0, "two random ids differ");
    }
    ok(util_mono_ms() > 0 && util_now_ms() > 1700000000000LL, "clocks");
    return tap_done();
}
