/* auth.h: API key material (api.md §3.1): generation, shape and checksum, HMAC digest, hint,
 * ids and MACs: the only user of libgcrypt. The check of a request's key is auth_check.h, the
 * cache of keys by digest keycache.h. */
#ifndef LOOPED_AUTH_H
#define LOOPED_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_PREFIX       "looped_"
#define AUTH_PREFIX_LEN   7
#define AUTH_RANDOM_LEN   40
#define AUTH_CHECK_LEN    6
#define AUTH_KEY_LEN      (AUTH_PREFIX_LEN + AUTH_RANDOM_LEN + AUTH_CHECK_LEN) /* 53 */
#define AUTH_DIGEST_LEN   32                                                   /* SHA-256 */
#define AUTH_DIGEST_HEX   (2 * AUTH_DIGEST_LEN + 1)
#define AUTH_HINT_LEN     24 /* "looped_" + 4 + "…" (3 bytes) + 4 + NUL, rounded up */
#define AUTH_HASH_VERSION 1  /* HMAC-SHA-256 with the pepper */

/* Initialises libgcrypt and keeps a copy of the pepper (len >= 32). Call once per process
 * before any thread uses this module. Returns 0, or -1 if libgcrypt is unusable. */
int auth_init(const unsigned char *pepper, size_t len);

/* Releases the calling thread's MAC handle (call before a thread that digested keys exits). */
void auth_thread_done(void);

/* Wipes the pepper copy; the module must not be used afterwards. */
void auth_shutdown(void);

/* Writes a new key (AUTH_KEY_LEN characters + NUL) into out: 40 uniform base62 characters
 * from GCRY_STRONG_RANDOM by rejection sampling, then the checksum. The caller must wipe out
 * (auth_wipe) once it has been sent. Cannot fail. */
void auth_key_generate(char out[AUTH_KEY_LEN + 1]);

/* The CRC-32 checksum of the first 47 characters of key as 6 base62 digits + NUL. */
void auth_key_checksum(const char *key, char out[AUTH_CHECK_LEN + 1]);

/* True if key has the shape of api.md §3.1 and a correct checksum. No database involved. */
bool auth_key_well_formed(const char *key);

/* HMAC-SHA-256(pepper, key) into digest; key must be well formed. Uses a handle kept per
 * thread. Returns 0, or -1 if libgcrypt fails. */
int auth_key_digest(const char *key, unsigned char digest[AUTH_DIGEST_LEN]);

/* Lowercase hex of a digest (AUTH_DIGEST_HEX bytes with the NUL). */
void auth_hex(const unsigned char *digest, char out[AUTH_DIGEST_HEX]);

/* The hint "looped_Ab3x…9fQz" of a well-formed key. */
void auth_key_hint(const char *key, char out[AUTH_HINT_LEN]);

/* A new random identifier: prefix followed by 20 base62 characters, NUL-terminated in out
 * (out_len must hold it). */
void auth_id_generate(const char *prefix, char *out, size_t out_len);

/* HMAC-SHA-256(pepper, "<purpose>\0" data), truncated to n <= 32 bytes: authenticates
 * opaque values the server hands out, such as list cursors. Returns 0 or -1. */
int auth_mac(const char *purpose, const void *data, size_t len, unsigned char *out, size_t n);

/* SHA-256 of the concatenation of n chunks, for fingerprints of what is not secret (an
 * idempotent request, idempotency.h). Returns 0, or -1 if libgcrypt fails. */
struct auth_chunk {
    const void *data;
    size_t len;
};
int auth_sha256(const struct auth_chunk *chunks, size_t n, unsigned char out[AUTH_DIGEST_LEN]);

/* Compares n bytes in constant time. */
bool auth_equal(const void *a, const void *b, size_t n);

/* Clears n bytes in a way the compiler cannot drop. */
void auth_wipe(void *p, size_t n);

/* HMAC-SHA-256 of data under an explicit key (RFC 4231 vectors in the unit tests). */
int auth_hmac_sha256(const void *key, size_t klen, const void *data, size_t len,
                     unsigned char out[AUTH_DIGEST_LEN]);

#endif
