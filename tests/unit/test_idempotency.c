/* test_idempotency.c: the Idempotency-Key check, the request fingerprint, the kept headers. */
#include <string.h>

#include "../../fcgi/idempotency.h"
#include "tap.h"

static void key_check(void)
{
    char s[300];

    ok(!idem_key_valid(""), "empty: refused");
    ok(idem_key_valid("a"), "one character");
    ok(idem_key_valid("5f1c2a9e-8d7b-4e0f-9a51-3c6d2b8e7f40"), "a UUID");
    ok(idem_key_valid(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
       "space and punctuation are printable");
    memset(s, 'k', 255);
    s[255] = '\0';
    ok(idem_key_valid(s), "255 characters");
    s[255] = 'k';
    s[256] = '\0';
    ok(!idem_key_valid(s), "256 characters: refused");
    ok(!idem_key_valid("a\tb"), "a tab: refused");
    ok(!idem_key_valid("a\x01"), "a control character: refused");
    ok(!idem_key_valid("a\x7f"), "DEL: refused");
    ok(!idem_key_valid("caf\xc3\xa9"), "non-ASCII (UTF-8): refused");
}

static void fingerprint(void)
{
    char a[AUTH_DIGEST_HEX], b[AUTH_DIGEST_HEX];
    json_t *x = json_loads("{\"name\": \"x\", \"email\": \"a@b.c\"}", 0, NULL);
    json_t *y = json_loads("{\"email\":\"a@b.c\",\"name\":\"x\"}", 0, NULL);
    json_t *z = json_loads("{\"email\":\"a@b.c\",\"name\":\"y\"}", 0, NULL);

    ok(idem_fingerprint("POST", "/v1/customers", x, a) == 0, "fingerprint");
    /* SHA-256 of "POST\0/v1/customers\0" + the compact JSON with sorted keys. */
    is_str(a, "2dd70cc867bd9a9a7473e320911f27215c94fa77c941365087c392a6681d87fa",
           "the documented SHA-256 input");
    idem_fingerprint("POST", "/v1/customers", y, b);
    is_str(b, a, "field order and spacing do not matter");
    idem_fingerprint("POST", "/v1/customers", z, b);
    ok(strcmp(a, b) != 0, "another body: another fingerprint");
    idem_fingerprint("POST", "/v1/products", x, b);
    ok(strcmp(a, b) != 0, "another path: another fingerprint");
    idem_fingerprint("PUT", "/v1/customers", x, b);
    ok(strcmp(a, b) != 0, "another method: another fingerprint");
    idem_fingerprint("POS", "T/v1/customers", x, b);
    ok(strcmp(a, b) != 0, "the parts are delimited");
    ok(idem_fingerprint("POST", "/v1/customers", NULL, b) == 0 && strcmp(a, b) != 0, "no body");
    json_decref(x);
    json_decref(y);
    json_decref(z);
}

static void headers(void)
{
    char out[IDEM_HEADERS_MAX], small[24];
    const char *in = "X-Worker: 123\r\n"
                     "Looped-Key-Expires-At: 2027-01-01T00:00:00.000Z\r\n"
                     "Location: /v1/customers/cus_1\r\n"
                     "Retry-After: 5\r\n";

    ok(idem_headers_kept(in, out, sizeof out) == strlen("Location: /v1/customers/cus_1\r\n"),
       "kept length");
    is_str(out, "Location: /v1/customers/cus_1\r\n", "only Location is kept");
    idem_headers_kept("location: /x\r\n", out, sizeof out);
    is_str(out, "location: /x\r\n", "names compare without case");
    idem_headers_kept("Location: /v1/cut", out, sizeof out);
    is_str(out, "", "not a whole line: left out");
    idem_headers_kept("", out, sizeof out);
    is_str(out, "", "no headers");
    idem_headers_kept("Location: /v1/customers/cus_1\r\n", small, sizeof small);
    is_str(small, "", "a line that does not fit is left out");
    idem_headers_kept("LocationX: /a\r\nLocatio: /b\r\n", out, sizeof out);
    is_str(out, "", "only the exact name");
}

int main(void)
{
    static const unsigned char pepper[32] = {1};
    struct idem_rec r = {0};

    ok(auth_init(pepper, sizeof pepper) == 0, "libgcrypt");
    key_check();
    fingerprint();
    headers();
    r.body = strdup("{}");
    r.error = json_object();
    idem_rec_clear(&r);
    ok(r.body == NULL && r.error == NULL, "idem_rec_clear frees and zeroes");
    idem_rec_clear(NULL);
    auth_shutdown();
    return tap_done();
}
