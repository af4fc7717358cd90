/* auth.c: API key material with libgcrypt: random keys, checksum, HMAC digests, hints. */
#include "auth.h"

#include <gcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "log.h"

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static unsigned char *auth_pepper;
static size_t auth_pepper_len;

/* One MAC handle per thread, keyed once: each digest is then reset + write + read. */
static __thread gcry_mac_hd_t auth_thread_mac;

int auth_init(const unsigned char *pepper, size_t len)
{
    if (!gcry_check_version(GCRYPT_VERSION)) {
        log_error("libgcrypt is older than the headers this was built with");
        return -1;
    }
    /* No secure memory: the pepper lives in ordinary memory, wiped at shutdown. */
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    auth_pepper = malloc(len ? len : 1);
    if (auth_pepper == NULL)
        return -1;
    memcpy(auth_pepper, pepper, len);
    auth_pepper_len = len;
    return 0;
}

void auth_thread_done(void)
{
    gcry_mac_close(auth_thread_mac);
    auth_thread_mac = NULL;
}

void auth_shutdown(void)
{
    if (auth_pepper)
        auth_wipe(auth_pepper, auth_pepper_len);
    free(auth_pepper);
    auth_pepper = NULL;
    auth_pepper_len = 0;
}

void auth_wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

bool auth_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;

    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

/* Fills out with n uniform base62 characters: bytes >= 248 (= 4 * 62) are rejected so that
 * every character is equally likely. */
static void base62_random(char *out, size_t n, enum gcry_random_level level)
{
    unsigned char buf[64];
    size_t have = 0, pos = sizeof buf;

    while (have < n) {
        if (pos == sizeof buf) {
            gcry_randomize(buf, sizeof buf, level);
            pos = 0;
        }
        if (buf[pos] < 248)
            out[have++] = base62[buf[pos] % 62];
        pos++;
    }
    auth_wipe(buf, sizeof buf);
}

void auth_key_checksum(const char *key, char out[AUTH_CHECK_LEN + 1])
{
    unsigned long crc = crc32(0L, (const Bytef *)key, AUTH_PREFIX_LEN + AUTH_RANDOM_LEN);

    for (int i = AUTH_CHECK_LEN - 1; i >= 0; i--) {
        out[i] = base62[crc % 62];
        crc /= 62;
    }
    out[AUTH_CHECK_LEN] = '\0';
}

void auth_key_generate(char out[AUTH_KEY_LEN + 1])
{
    memcpy(out, AUTH_PREFIX, AUTH_PREFIX_LEN);
    base62_random(out + AUTH_PREFIX_LEN, AUTH_RANDOM_LEN, GCRY_STRONG_RANDOM);
    auth_key_checksum(out, out + AUTH_PREFIX_LEN + AUTH_RANDOM_LEN);
}

static bool is_base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool auth_key_well_formed(const char *key)
{
    char check[AUTH_CHECK_LEN + 1];
    size_t i;

    if (key == NULL || strncmp(key, AUTH_PREFIX, AUTH_PREFIX_LEN) != 0)
        return false;
    for (i = AUTH_PREFIX_LEN; key[i] && i < AUTH_KEY_LEN; i++) {
        if (!is_base62(key[i]))
            return false;
    }
    if (i != AUTH_KEY_LEN || key[i] != '\0')
        return false;
    auth_key_checksum(key, check);
    return memcmp(check, key + AUTH_PREFIX_LEN + AUTH_RANDOM_LEN, AUTH_CHECK_LEN) == 0;
}

int auth_hmac_sha256(const void *key, size_t klen, const void *data, size_t len,
                     unsigned char out[AUTH_DIGEST_LEN])
{
    gcry_mac_hd_t h = NULL;
    size_t olen = AUTH_DIGEST_LEN;
    int ret = -1;

    if (gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, 0, NULL) != 0)
        return -1;
    if (gcry_mac_setkey(h, key, klen) != 0 || gcry_mac_write(h, data, len) != 0 ||
        gcry_mac_read(h, out, &olen) != 0)
        goto done;
    ret = 0;
done:
    gcry_mac_close(h);
    return ret;
}

int auth_key_digest(const char *key, unsigned char digest[AUTH_DIGEST_LEN])
{
    size_t olen = AUTH_DIGEST_LEN;

    if (auth_thread_mac == NULL) {
        if (gcry_mac_open(&auth_thread_mac, GCRY_MAC_HMAC_SHA256, 0, NULL) != 0)
            return -1;
        if (gcry_mac_setkey(auth_thread_mac, auth_pepper, auth_pepper_len) != 0) {
            gcry_mac_close(auth_thread_mac);
            auth_thread_mac = NULL;
            return -1;
        }
    } else if (gcry_mac_reset(auth_thread_mac) != 0) {
        return -1;
    }
    if (gcry_mac_write(auth_thread_mac, key, strlen(key)) != 0 ||
        gcry_mac_read(auth_thread_mac, digest, &olen) != 0)
        return -1;
    return 0;
}

void auth_hex(const unsigned char *digest, char out[AUTH_DIGEST_HEX])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < AUTH_DIGEST_LEN; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[2 * AUTH_DIGEST_LEN] = '\0';
}

void auth_key_hint(const char *key, char out[AUTH_HINT_LEN])
{
    snprintf(out, AUTH_HINT_LEN, AUTH_PREFIX "%.4s\xe2\x80\xa6%.4s", key + AUTH_PREFIX_LEN,
             key + AUTH_KEY_LEN - 4);
}

void auth_id_generate(const char *prefix, char *out, size_t out_len)
{
    size_t p = strlen(prefix);

    if (out_len < p + 21) {
        out[0] = '\0';
        return;
    }
    memcpy(out, prefix, p);
    base62_random(out + p, 20, GCRY_STRONG_RANDOM);
    out[p + 20] = '\0';
}

int auth_mac(const char *purpose, const void *data, size_t len, unsigned char *out, size_t n)
{
    unsigned char full[AUTH_DIGEST_LEN];
    gcry_mac_hd_t h = NULL;
    size_t olen = sizeof full;
    int ret = -1;

    if (n > sizeof full || gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, 0, NULL) != 0)
        return -1;
    if (gcry_mac_setkey(h, auth_pepper, auth_pepper_len) != 0 ||
        gcry_mac_write(h, purpose, strlen(purpose) + 1) != 0 || gcry_mac_write(h, data, len) != 0 ||
        gcry_mac_read(h, full, &olen) != 0)
        goto done;
    memcpy(out, full, n);
    ret = 0;
done:
    gcry_mac_close(h);
    return ret;
}

int auth_sha256(const struct auth_chunk *chunks, size_t n, unsigned char out[AUTH_DIGEST_LEN])
{
    gcry_md_hd_t h = NULL;

    if (gcry_md_open(&h, GCRY_MD_SHA256, 0) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        gcry_md_write(h, chunks[i].data, chunks[i].len);
    memcpy(out, gcry_md_read(h, GCRY_MD_SHA256), AUTH_DIGEST_LEN);
    gcry_md_close(h);
    return 0;
}
