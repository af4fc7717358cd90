/* usage.h: a key's requests per hour or day by status class (api.md §6.8): the range of a
 * usage query, its buckets, their counts and their JSON. The counts come from the key's
 * api.request audit records (store_audit_usage), not from counters of their own: no store
 * write per request, and nothing to disagree with the audit. */
#ifndef LOOPED_USAGE_H
#define LOOPED_USAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define USAGE_HOURS_MAX 2200 /* buckets of an hourly range (about 91 days) */
#define USAGE_DAYS_MAX  90   /* buckets of a daily range */
#define USAGE_HOURS_DEF 24   /* without since: the last 24 hours ... */
#define USAGE_DAYS_DEF  30   /* ... or the last 30 days */
/* The most audit records one usage query reads: past it the answer is a 400 naming since
 * (a shorter range), never counts short of the audit. */
#define USAGE_RECORDS_MAX 100000

/* The status classes of by_status, in the order of usage_counts.by_class. */
enum usage_class { USAGE_2XX, USAGE_3XX, USAGE_4XX, USAGE_429, USAGE_5XX, USAGE_CLASSES };

/* [since, until) in ms, both on bucket boundaries (UTC), n buckets of step ms. */
struct usage_range {
    const char *interval; /* "hour" or "day" (static) */
    int64_t since, until, step;
    size_t n;
};

struct usage_counts {
    int64_t requests; /* every record, whatever its status */
    int64_t by_class[USAGE_CLASSES];
};

/* Reads ?interval= ("hour" default, "day"), ?since= and ?until= (RFC 3339; NULL when absent)
 * at now into *r: until rounded up to a bucket boundary (default: the end of the bucket that
 * holds now), since rounded down (default: 24 hourly or 30 daily buckets before until).
 * Returns 0, or -1 with err validation_failed naming the field (interval, since, until; since
 * for a range of more than USAGE_HOURS_MAX hours or USAGE_DAYS_MAX days). Cannot fail
 * otherwise. */
int usage_range_parse(const char *interval, const char *since, const char *until, int64_t now,
                      struct usage_range *r, struct app_error *err);

/* The class of an HTTP status, or -1 for none (below 200, above 599). */
int usage_class_of(int status);

/* Counts one record (at in ms, its status) into counts (r->n of them, the caller's); a record
 * outside the range is ignored. Cannot fail. */
void usage_count(const struct usage_range *r, struct usage_counts *counts, int64_t at, int status);

/* {"interval", "since", "until", "data": [{"start", "requests", "by_status"}]}, every bucket
 * oldest first: a new object (caller owns), or NULL out of memory. */
json_t *usage_to_json(const struct usage_range *r, const struct usage_counts *counts);

#endif
