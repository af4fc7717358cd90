/* log.h: one-line log records on stderr, filtered by level; never given secrets. */
#ifndef LOOPED_LOG_H
#define LOOPED_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the lowest level that is written (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug". Returns 0, or -1 for anything else. */
int log_parse_level(const char *s, enum log_level *out);

/* Writes "<time> looped[<pid>] <level>: <message>\n" to stderr in one write(2), so lines
 * from concurrent threads and processes do not interleave. Cannot fail visibly. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
