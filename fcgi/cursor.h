/* cursor.h: opaque, tamper-proof list cursors: a position (time, id) under a MAC. */
#ifndef LOOPED_CURSOR_H
#define LOOPED_CURSOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CURSOR_MAX 192 /* encoded length limit, with the NUL */

/* Encodes (at, id) for one list ("api_keys", "audit", "invoices", ...) of one team into out
 * (CURSOR_MAX bytes). Returns 0, or -1 (id too long, MAC failure). */
int cursor_encode(const char *list, const char *team, int64_t at, const char *id, char *out);

/* Decodes a cursor made by cursor_encode for the same list and team into *at and id (id_len
 * bytes). Returns 0, or -1 for anything tampered, truncated, or made for another list or
 * team. */
int cursor_decode(const char *list, const char *team, const char *cursor, int64_t *at, char *id,
                  size_t id_len);

/* Parses ?limit= (NULL: the default 20) into 1..100. Returns 0 or -1. */
int cursor_limit(const char *s, size_t *limit);

/* The list page of api.md §1, {"data": [...], "has_more", "next_cursor"}, from rows: the
 * items fetched for a page of limit, newest first, with one more if there is a next page.
 * Takes over rows (a reference), drops the surplus and makes next_cursor continue after the
 * page's last item, at the RFC 3339 time in its time_field and its "id". Returns a new object,
 * or NULL with err set (internal_error). */
json_t *cursor_page(json_t *rows, size_t limit, const char *list, const char *team,
                    const char *time_field, struct app_error *err);

/* cursor_page for a list ordered by a time the rows do not show as one field (the stale keys:
 * last use, or creation): last_at is the time of the page's last item, rows[limit - 1]. */
json_t *cursor_page_at(json_t *rows, size_t limit, const char *list, const char *team,
                       int64_t last_at, struct app_error *err);

#endif
