/* leaks.h: leaked-key reports (api.md §6.5). A report is stored before it is answered, so that
 * a crash loses none, and the keys it names are revoked behind the answer: the answer (status,
 * body, time) is the same whether a key exists or not. */
#ifndef LOOPED_LEAKS_H
#define LOOPED_LEAKS_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "keys.h"

#define LEAKS_KEYS_MAX   100  /* keys per report */
#define LEAKS_SOURCE_MAX 2048 /* bytes of the source URL */
#define LEAKS_PER_MINUTE 60   /* reports a client address may make a minute */
#define LEAKS_SWEEP_MS   5000 /* how often a process looks for reports left unfinished */
#define LEAKS_REVOKED_BY "leak-report"

struct store;

/* A report as stored (key_leak_reports): the digests of its well-formed keys, never the keys. */
struct leak_report {
    char id[KEY_ID_LEN]; /* "leak_" + 20 base62; set by leaks_submit */
    int64_t at;
    size_t ndigests;
    char digests[LEAKS_KEYS_MAX][AUTH_DIGEST_HEX];
    char source[LEAKS_SOURCE_MAX + 1]; /* "" when none */
    char ip[KEY_IP_MAX];
    char user_agent[256];
    char request_id[72];
};

/* Stores r and queues it for this process's key-change thread, which the caller wakes
 * (keysync_wake) once the answer is out: the lookups must not overlap the answer, or a real
 * key's would take longer. Returns 0, or -1 with err set (unavailable when the store does not
 * take it: nothing was accepted). */
int leaks_submit(struct store *st, struct leak_report *r, struct app_error *err);

/* The key-change thread's turn (keysync.c): works the reports this process submitted since the
 * last turn, and every LEAKS_SWEEP_MS any report of any process left unfinished (a crash): each
 * named key not revoked yet is revoked by "leak-report", published to every process and
 * audited, then the report is removed. A report whose work fails stays for the next sweep;
 * working one twice revokes and audits nothing twice. */
void leaks_work(struct store *st);

#endif
