/* spool.h: the audit queue's bytes in a file under the state directory, so that the records a
 * process had queued survive its crash: a later process (its replacement or a sibling) sends
 * what it had not. Records are BSON documents with their _id already set, so one that was
 * sent just before the crash is refused as a duplicate, not stored twice. Not thread-safe:
 * the caller locks. */
#ifndef LOOPED_SPOOL_H
#define LOOPED_SPOOL_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool;

/* This process's spool: dir/audit-<pid>.spool, locked (flock) for the process's life, of
 * `bytes` (a multiple of 8); records a dead process with the same pid left are kept. With dir
 * NULL, or when the file cannot be made (err says why, 256 bytes), the same ring in memory
 * only. NULL only when out of memory. */
struct spool *spool_open(const char *dir, size_t bytes, char *err);

/* Unmaps; removes the file if nothing is left in it (else the next process sends it). */
void spool_close(struct spool *s);

/* True if the spool lives in a file (survives the process). */
bool spool_durable(const struct spool *s);

/* Appends doc. False when there is no room now (the caller waits for spool_commit), or never
 * will be (spool_fits). */
bool spool_put(struct spool *s, const bson_t *doc);
bool spool_fits(const struct spool *s, const bson_t *doc);

/* Up to max of the oldest records not yet committed, as static views into the spool (valid
 * until they are committed); *end is the position after them for spool_commit. */
size_t spool_peek(struct spool *s, bson_t *docs, size_t max, uint64_t *end);
void spool_commit(struct spool *s, uint64_t end);

/* True if no record waits. */
bool spool_empty(const struct spool *s);

/* Bytes in use by records waiting, and the ring's size (for the metrics). */
size_t spool_used(const struct spool *s);
size_t spool_size(const struct spool *s);

/* The spool of a process that is gone (its lock is free), other than own, locked for the
 * caller; NULL if there is none. */
struct spool *spool_adopt(const char *dir, const struct spool *own);

#endif
