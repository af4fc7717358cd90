/* test_usage.c: the range of a usage query (defaults, rounding, limits), status classes,
 * bucket counts and the JSON (api.md §6.8). */
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/usage.h"
#include "../../fcgi/util.h"
#include "tap.h"

static int64_t t(const char *s)
{
    int64_t ms = 0;

    util_time_parse(s, &ms);
    return ms;
}

/* usage_range_parse into *r; on failure the first detail's field into field (else ""). */
static int range(const char *interval, const char *since, const char *until, int64_t now,
                 struct usage_range *r, char field[32])
{
    struct app_error err = {0};
    int rc = usage_range_parse(interval, since, until, now, r, &err);

    field[0] = '\0';
    if (rc != 0 && json_array_size(err.details) > 0)
        snprintf(field, 32, "%s",
                 json_string_value(json_object_get(json_array_get(err.details, 0), "field")));
    error_clear(&err);
    return rc;
}

int main(void)
{
    int64_t now = t("2026-12-06T10:17:42.123Z");
    struct usage_range r;
    struct usage_counts c[24];
    char f[32];
    json_t *j;

    ok(range(NULL, NULL, NULL, now, &r, f) == 0, "no parameters");
    is_str(r.interval, "hour", "hourly by default");
    ok(r.n == 24, "24 buckets by default");
    ok(r.until == t("2026-12-06T11:00:00Z"), "ending with the hour that holds now");
    ok(r.since == t("2026-12-05T11:00:00Z"), "starting 24 hours before");

    ok(range("day", NULL, NULL, now, &r, f) == 0 && r.n == 30, "30 days by default");
    ok(r.until == t("2026-12-07T00:00:00Z") && r.since == t("2026-11-07T00:00:00Z"),
       "daily buckets at UTC midnight");

    ok(range("hour", "2026-12-06T08:30:00+02:00", "2026-12-06T09:00:00Z", now, &r, f) == 0,
       "an offset");
    ok(r.since == t("2026-12-06T06:00:00Z") && r.until == t("2026-12-06T09:00:00Z") && r.n == 3,
       "since rounded down, until on a boundary kept");
    ok(range("hour", "2026-12-06T06:00:00Z", "2026-12-06T09:00:00.001Z", now, &r, f) == 0 &&
           r.n == 4,
       "until past a boundary rounded up");
    ok(range("hour", "1969-12-31T22:30:00Z", "1970-01-01T00:00:00Z", now, &r, f) == 0 &&
           r.since == t("1969-12-31T22:00:00Z") && r.n == 2,
       "rounding before 1970");

    ok(range("week", NULL, NULL, now, &r, f) != 0 && strcmp(f, "interval") == 0, "interval");
    ok(range("Hour", NULL, NULL, now, &r, f) != 0 && strcmp(f, "interval") == 0, "case matters");
    ok(range(NULL, "yesterday", NULL, now, &r, f) != 0 && strcmp(f, "since") == 0, "bad since");
    ok(range(NULL, NULL, "2026-02-30T00:00:00Z", now, &r, f) != 0 && strcmp(f, "until") == 0,
       "bad until");
    ok(range(NULL, "2026-12-06T10:00:00Z", "2026-12-06T10:00:00Z", now, &r, f) != 0 &&
           strcmp(f, "until") == 0,
       "an empty range");
    ok(range(NULL, "2026-12-07T00:00:00Z", "2026-12-06T00:00:00Z", now, &r, f) != 0 &&
           strcmp(f, "until") == 0,
       "until before since");
    ok(range("hour", "2026-09-09T08:00:00Z", "2026-12-10T00:00:00Z", now, &r, f) == 0 &&
           r.n == 2200,
       "2200 hourly buckets");
    ok(range("hour", "2026-09-09T07:59:59Z", "2026-12-10T00:00:00Z", now, &r, f) != 0 &&
           strcmp(f, "since") == 0,
       "2201 hourly buckets");
    ok(range("day", "2026-09-08T00:00:00Z", "2026-12-07T00:00:00Z", now, &r, f) == 0 && r.n == 90,
       "90 days");
    ok(range("day", "2026-09-07T23:00:00Z", "2026-12-07T00:00:00Z", now, &r, f) != 0 &&
           strcmp(f, "since") == 0,
       "91 days");

    ok(usage_class_of(200) == USAGE_2XX && usage_class_of(204) == USAGE_2XX, "2xx");
    ok(usage_class_of(304) == USAGE_3XX, "3xx");
    ok(usage_class_of(403) == USAGE_4XX && usage_class_of(404) == USAGE_4XX, "4xx");
    ok(usage_class_of(429) == USAGE_429, "429 apart from 4xx");
    ok(usage_class_of(503) == USAGE_5XX, "5xx");
    ok(usage_class_of(0) == -1 && usage_class_of(600) == -1 && usage_class_of(199) == -1,
       "no class");

    range(NULL, NULL, NULL, now, &r, f);
    memset(c, 0, sizeof c);
    usage_count(&r, c, r.since, 200);
    usage_count(&r, c, r.since - 1, 200);
    usage_count(&r, c, r.until, 200);
    usage_count(&r, c, r.until - 1, 429);
    usage_count(&r, c, r.until - 1, 404);
    usage_count(&r, c, r.until - 1, 500);
    ok(c[0].requests == 1 && c[0].by_class[USAGE_2XX] == 1, "the first bucket, since included");
    ok(c[23].requests == 3 && c[23].by_class[USAGE_429] == 1 && c[23].by_class[USAGE_4XX] == 1 &&
           c[23].by_class[USAGE_5XX] == 1,
       "the last bucket, until excluded");
    j = usage_to_json(&r, c);
    ok(j && json_array_size(json_object_get(j, "data")) == 24, "every bucket in the JSON");
    is_str(json_string_value(json_object_get(j, "since")), "2026-12-05T11:00:00.000Z", "since");
    is_str(json_string_value(json_object_get(j, "until")), "2026-12-06T11:00:00.000Z", "until");
    is_str(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 1), "start")),
        "2026-12-05T12:00:00.000Z", "oldest first");
    ok(json_integer_value(json_object_get(
           json_object_get(json_array_get(json_object_get(j, "data"), 23), "by_status"), "429")) ==
           1,
       "by_status");
    json_decref(j);
    return tap_done();
}
