/* usage.c: the range, buckets and counts of a key's usage (api.md §6.8). */
#include "usage.h"

#include <string.h>

#include "util.h"

#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL

static const char *const class_names[USAGE_CLASSES] = {"2xx", "3xx", "4xx", "429", "5xx"};

static int bad(struct app_error *err, const char *field, const char *why)
{
    error_detail(err, field, why);
    return error_invalid(err, "query");
}

/* Rounds down to a multiple of step, also before 1970 (C's division truncates toward 0). */
static int64_t floor_to(int64_t ms, int64_t step)
{
    int64_t r = ms % step;

    return r < 0 ? ms - r - step : ms - r;
}

int usage_range_parse(const char *interval, const char *since, const char *until, int64_t now,
                      struct usage_range *r, struct app_error *err)
{
    int64_t s, u;
    size_t max;

    memset(r, 0, sizeof *r);
    if (interval == NULL || strcmp(interval, "hour") == 0) {
        r->interval = "hour";
        r->step = HOUR_MS;
        max = USAGE_HOURS_MAX;
    } else if (strcmp(interval, "day") == 0) {
        r->interval = "day";
        r->step = DAY_MS;
        max = USAGE_DAYS_MAX;
    } else {
        return bad(err, "interval", "must be hour or day");
    }
    if (until && util_time_parse(until, &u) != 0)
        return bad(err, "until", "must be an RFC 3339 date-time");
    if (since && util_time_parse(since, &s) != 0)
        return bad(err, "since", "must be an RFC 3339 date-time");
    /* The end of the bucket that holds until (until itself on a boundary): exclusive. */
    u = until ? u : now;
    r->until = floor_to(u, r->step);
    if (r->until != u || until == NULL)
        r->until += r->step;
    r->since = since ? floor_to(s, r->step)
                     : r->until - r->step * (r->step == HOUR_MS ? USAGE_HOURS_DEF : USAGE_DAYS_DEF);
    if (r->since >= r->until)
        return bad(err, "until", "must be after since");
    /* Both are years 0000-9999 (util_time_parse): the difference cannot overflow. */
    if ((r->until - r->since) / r->step > (int64_t)max)
        return bad(err, "since",
                   r->step == HOUR_MS ? "the range may hold at most 2200 hourly buckets"
                                      : "the range may hold at most 90 days");
    r->n = (size_t)((r->until - r->since) / r->step);
    return 0;
}

int usage_class_of(int status)
{
    if (status == 429)
        return USAGE_429;
    switch (status / 100) {
    case 2:
        return USAGE_2XX;
    case 3:
        return USAGE_3XX;
    case 4:
        return USAGE_4XX;
    case 5:
        return USAGE_5XX;
    default:
        return -1;
    }
}

void usage_count(const struct usage_range *r, struct usage_counts *counts, int64_t at, int status)
{
    struct usage_counts *b;
    int c;

    if (at < r->since || at >= r->until)
        return;
    b = &counts[(at - r->since) / r->step];
    b->requests++;
    c = usage_class_of(status);
    if (c >= 0)
        b->by_class[c]++;
}

json_t *usage_to_json(const struct usage_range *r, const struct usage_counts *counts)
{
    char since[UTIL_TIME_LEN], until[UTIL_TIME_LEN], start[UTIL_TIME_LEN];
    json_t *data = json_array(), *out;

    for (size_t i = 0; data && i < r->n; i++) {
        json_t *by = json_object(), *bucket;

        for (int c = 0; by && c < USAGE_CLASSES; c++) {
            if (json_object_set_new(by, class_names[c], json_integer(counts[i].by_class[c]))) {
                json_decref(by);
                goto oom;
            }
        }
        bucket = json_pack("{s:s, s:I, s:o}", "start",
                           util_time_format(r->since + (int64_t)i * r->step, start), "requests",
                           (json_int_t)counts[i].requests, "by_status", by);
        if (bucket == NULL || json_array_append_new(data, bucket) != 0)
            goto oom;
    }
    out = json_pack("{s:s, s:s, s:s, s:o}", "interval", r->interval, "since",
                    util_time_format(r->since, since), "until", util_time_format(r->until, until),
                    "data", data);
    return out;
oom:
    json_decref(data);
    return NULL;
}
