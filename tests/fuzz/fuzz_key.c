/* fuzz_key.c: the API key's shape check (prefix, alphabet, length, checksum) and what is made
 * of a key that passes it (checksum, hint, digest): never a read past the input, never a
 * crash; a key passes only with its own checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/auth.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_auth_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char *key = malloc(n + 1), check[AUTH_CHECK_LEN + 1], hint[AUTH_HINT_LEN];
    unsigned char digest[AUTH_DIGEST_LEN];

    if (key == NULL)
        return 0;
    memcpy(key, data, n);
    key[n] = '\0';
    if (auth_key_well_formed(key)) {
        /* Well formed: exactly AUTH_KEY_LEN, and the last characters are its checksum. */
        if (strlen(key) != AUTH_KEY_LEN)
            abort();
        auth_key_checksum(key, check);
        if (strcmp(key + AUTH_KEY_LEN - AUTH_CHECK_LEN, check) != 0)
            abort();
        auth_key_hint(key, hint);
        if (auth_key_digest(key, digest) != 0)
            abort();
    }
    free(key);
    return 0;
}
