/* test_auth.c: key format, checksum, HMAC-SHA-256 (RFC 4231), hint, ids, compare. */
#include <string.h>
#include <zlib.h>

#include "../../fcgi/auth.h"
#include "tap.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* RFC 4231 test cases 1, 2, 3, 4, 6 and 7 (HMAC-SHA-256). */
static void rfc4231(void)
{
    unsigned char key[131], data[152], out[32];
    char got[65];

    memset(key, 0x0b, 20);
    auth_hmac_sha256(key, 20, "Hi There", 8, out);
    hex(out, 32, got);
    is_str(got, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", "RFC 4231 #1");

    auth_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, out);
    hex(out, 32, got);
    is_str(got, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "RFC 4231 #2");

    memset(key, 0xaa, 20);
    memset(data, 0xdd, 50);
    auth_hmac_sha256(key, 20, data, 50, out);
    hex(out, 32, got);
    is_str(got, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", "RFC 4231 #3");

    for (int i = 0; i < 25; i++)
        key[i] = (unsigned char)(i + 1);
    memset(data, 0xcd, 50);
    auth_hmac_sha256(key, 25, data, 50, out);
    hex(out, 32, got);
    is_str(got, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", "RFC 4231 #4");

    memset(key, 0xaa, 131);
    auth_hmac_sha256(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54, out);
    hex(out, 32, got);
    is_str(got, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", "RFC 4231 #6");

    {
        static const char msg[] = "This is a test using a larger than block-size key and a larger "
                                  "than block-size data. The key needs to be hashed before being "
                                  "used by the HMAC algorithm.";

        auth_hmac_sha256(key, 131, msg, sizeof msg - 1, out);
        hex(out, 32, got);
        is_str(got, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
               "RFC 4231 #7");
    }
}

int main(void)
{
    static const unsigned char pepper[] = "0123456789abcdef0123456789abcdef";
    char key[AUTH_KEY_LEN + 1], other[AUTH_KEY_LEN + 1], check[AUTH_CHECK_LEN + 1];
    char hint[AUTH_HINT_LEN], id[32], hx[AUTH_DIGEST_HEX];
    unsigned char d1[32], d2[32], mac[32];
    int seen[62] = {0}, all = 1;

    ok(auth_init(pepper, 32) == 0, "init");
    rfc4231();

    /* The checksum is CRC-32 (as zlib) of the first 47 characters in 6 base62 digits. */
    memcpy(key, "looped_0000000000000000000000000000000000000000", 47);
    auth_key_checksum(key, check);
    {
        unsigned long crc = crc32(0L, (const Bytef *)key, 47);
        static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        char want[7];

        for (int i = 5; i >= 0; i--, crc /= 62)
            want[i] = b62[crc % 62];
        want[6] = '\0';
        is_str(check, want, "checksum is zlib's crc32 in base62");
    }
    /* Fixed vectors, computed independently with Python's zlib.crc32. */
    is_str(check, "3liapO", "vector: 40 zeros (crc 0xcdd87232)");
    auth_key_checksum("looped_Ab3xQ9fQzAb3xQ9fQzAb3xQ9fQzAb3xQ9fQzAb3x", check);
    is_str(check, "0B4L75", "vector: Ab3xQ9fQz... (crc 0x09bff19b)");
    ok(auth_key_well_formed("looped_Ab3xQ9fQzAb3xQ9fQzAb3xQ9fQzAb3xQ9fQzAb3x0B4L75"),
       "a vector key verifies");
    ok(!auth_key_well_formed("looped_Ab3xQ9fQzAb3xQ9fQzAb3xQ9fQzAb3xQ9fQzAb3x0B4L76"),
       "a wrong last checksum digit is rejected");
    auth_key_checksum(key, check);
    memcpy(key + 47, check, 7);
    ok(auth_key_well_formed(key), "a key with the right checksum is well formed");

    auth_key_generate(key);
    ok(strlen(key) == AUTH_KEY_LEN && strncmp(key, "looped_", 7) == 0, "generated shape");
    ok(auth_key_well_formed(key), "generated key verifies");
    for (int i = 7; i < AUTH_KEY_LEN; i++) {
        char c = key[i];

        all &= (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    }
    ok(all, "base62 alphabet only");
    auth_key_generate(other);
    ok(strcmp(key, other) != 0, "two keys differ");

    /* Every single-character change is caught: the checksum or the alphabet rejects it. */
    {
        int caught = 0;

        for (int i = 7; i < AUTH_KEY_LEN; i++) {
            char saved = key[i];

            key[i] = saved == 'a' ? 'b' : 'a';
            caught += !auth_key_well_formed(key);
            key[i] = saved;
        }
        ok(caught == AUTH_KEY_LEN - 7, "every one-character change is rejected (%d)", caught);
    }
    ok(!auth_key_well_formed(NULL), "NULL");
    ok(!auth_key_well_formed(""), "empty");
    ok(!auth_key_well_formed("looped_"), "prefix only");
    strcpy(other, key);
    other[0] = 'L';
    ok(!auth_key_well_formed(other), "wrong prefix");
    {
        char longer[AUTH_KEY_LEN + 2];

        memcpy(longer, key, AUTH_KEY_LEN);
        longer[AUTH_KEY_LEN] = 'x';
        longer[AUTH_KEY_LEN + 1] = '\0';
        ok(!auth_key_well_formed(longer), "too long");
        longer[AUTH_KEY_LEN - 1] = '\0';
        ok(!auth_key_well_formed(longer), "too short");
    }

    /* Uniformity, coarsely: 400 keys x 40 characters cover the whole alphabet. */
    for (int n = 0; n < 400; n++) {
        auth_key_generate(other);
        for (int i = 7; i < 47; i++) {
            char c = other[i];
            int v = c <= '9' ? c - '0' : c <= 'Z' ? c - 'A' + 10 : c - 'a' + 36;

            seen[v]++;
        }
    }
    {
        int min = 1 << 30, max = 0;

        for (int i = 0; i < 62; i++) {
            min = seen[i] < min ? seen[i] : min;
            max = seen[i] > max ? seen[i] : max;
        }
        /* Expected 258 each; a biased modulo or a missing range would show far outside. */
        ok(min > 170 && max < 350, "characters spread evenly (min %d, max %d)", min, max);
    }

    ok(auth_key_digest(key, d1) == 0 && auth_key_digest(key, d2) == 0 && memcmp(d1, d2, 32) == 0,
       "digest is deterministic (per-thread handle reused)");
    auth_hmac_sha256(pepper, 32, key, AUTH_KEY_LEN, mac);
    ok(memcmp(d1, mac, 32) == 0, "digest is HMAC-SHA-256(pepper, key)");
    auth_hex(d1, hx);
    ok(strlen(hx) == 64, "hex digest");
    auth_key_digest(other, d2);
    ok(memcmp(d1, d2, 32) != 0, "different keys, different digests");

    auth_key_hint(key, hint);
    {
        char want[AUTH_HINT_LEN];

        snprintf(want, sizeof want, "looped_%.4s\xe2\x80\xa6%.4s", key + 7, key + 49);
        is_str(hint, want, "hint is looped_ + 4 random + ellipsis + last 4");
    }

    auth_id_generate("key_", id, sizeof id);
    ok(strlen(id) == 24 && strncmp(id, "key_", 4) == 0, "key id");
    ok(auth_equal("abc", "abc", 3) && !auth_equal("abc", "abd", 3), "constant-time compare");
    ok(auth_mac("a", "x", 1, d1, 16) == 0 && auth_mac("b", "x", 1, d2, 16) == 0 &&
           memcmp(d1, d2, 16) != 0,
       "MACs are bound to their purpose");
    {
        /* FIPS 180-2's "abc", whole and in chunks (one of them empty). */
        struct auth_chunk whole[] = {{"abc", 3}}, parts[] = {{"a", 1}, {"", 0}, {"bc", 2}};
        char got[65];

        ok(auth_sha256(whole, 1, d1) == 0, "sha256");
        hex(d1, 32, got);
        is_str(got, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
               "SHA-256 of abc");
        ok(auth_sha256(parts, 3, d2) == 0 && memcmp(d1, d2, 32) == 0,
           "SHA-256 of chunks is that of their concatenation");
    }
    auth_wipe(key, sizeof key);
    ok(key[0] == 0 && key[52] == 0, "wipe");
    auth_thread_done();
    auth_shutdown();
    return tap_done();
}
