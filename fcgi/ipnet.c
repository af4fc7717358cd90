/* ipnet.c: IPv4/IPv6 addresses and CIDR blocks, with inet_pton/inet_ntop doing the reading. */
#include "ipnet.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void clear_host_bits(struct ipnet *n)
{
    size_t len = n->family == 4 ? 4 : 16;

    for (size_t i = 0; i < len; i++) {
        int keep = (int)n->prefix - (int)(i * 8);

        if (keep <= 0)
            n->addr[i] = 0;
        else if (keep < 8)
            n->addr[i] &= (uint8_t)(0xff << (8 - keep));
    }
}

/* a.b.c.d, four decimal octets without leading zeros (what inet_pton takes), on the request
 * path for every key with an allow-list: a few ns where inet_pton takes about 40. */
static bool parse_v4(const char *s, uint8_t out[4])
{
    for (int i = 0; i < 4; i++) {
        unsigned v = 0, n = 0;

        for (; *s >= '0' && *s <= '9' && n < 4; s++, n++)
            v = v * 10 + (unsigned)(*s - '0');
        if (n == 0 || n > 3 || v > 255 || (n > 1 && s[-(int)n] == '0'))
            return false;
        out[i] = (uint8_t)v;
        if (*s != (i < 3 ? '.' : '\0'))
            return false;
        s++;
    }
    return true;
}

int ipnet_addr_parse(const char *s, struct ipnet *out)
{
    if (parse_v4(s, out->addr)) {
        memset(out->addr + 4, 0, 12);
        out->family = 4;
        out->prefix = 32;
        return 0;
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET6, s, out->addr) != 1)
        return -1;
    if (memcmp(out->addr, v4_mapped, sizeof v4_mapped) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = 4;
        out->prefix = 32;
        return 0;
    }
    out->family = 6;
    out->prefix = 128;
    return 0;
}

int ipnet_parse(const char *s, struct ipnet *out, const char **why)
{
    char addr[IPNET_TEXT_MAX];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned prefix = 0;

    if (alen == 0 || alen >= sizeof addr) {
        *why = "is not an IPv4 or IPv6 address or CIDR block";
        return -1;
    }
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (ipnet_addr_parse(addr, out) != 0) {
        *why = "is not an IPv4 or IPv6 address or CIDR block";
        return -1;
    }
    if (slash) {
        const char *p = slash + 1;

        /* Decimal digits only, no sign, no leading zeros beyond "0", at most 3 of them. */
        if (*p == '\0' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0')) {
            *why = "has a prefix length that is not a number";
            return -1;
        }
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                *why = "has a prefix length that is not a number";
                return -1;
            }
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        /* A mapped IPv4 block's prefix counts the 96 mapping bits. */
        if (out->family == 4 && strchr(addr, ':')) {
            if (prefix < 96) {
                *why = "has a prefix length out of range";
                return -1;
            }
            prefix -= 96;
        }
        if (prefix > (out->family == 4 ? 32u : 128u)) {
            *why = "has a prefix length out of range";
            return -1;
        }
        out->prefix = (uint8_t)prefix;
    }
    clear_host_bits(out);
    return 0;
}

char *ipnet_format(const struct ipnet *n, char *buf)
{
    char addr[INET6_ADDRSTRLEN];
    unsigned full = n->family == 4 ? 32 : 128;

    if (inet_ntop(n->family == 4 ? AF_INET : AF_INET6, n->addr, addr, sizeof addr) == NULL) {
        buf[0] = '\0';
        return buf;
    }
    if (n->prefix == full)
        snprintf(buf, IPNET_TEXT_MAX, "%s", addr);
    else
        snprintf(buf, IPNET_TEXT_MAX, "%s/%u", addr, (unsigned)n->prefix);
    return buf;
}

/* The first 64 bits of a prefix's mask, and the last 64, in the byte order of addr. */
static uint64_t mask64(int bits)
{
    uint64_t m;

    if (bits <= 0)
        return 0;
    m = bits >= 64 ? ~0ull : ~0ull << (64 - bits);
    return __builtin_bswap64(m); /* addr is big-endian; the words are read little-endian */
}

/* Inlined into ipnet_any's loop: an allow-list of 100 blocks is 100 of these per request. */
static inline bool contains(const struct ipnet *n, const struct ipnet *a)
{
    uint64_t nw[2], aw[2];

    if (n->family != a->family)
        return false;
    if (n->family == 4) {
        uint32_t x, y;

        memcpy(&x, n->addr, 4);
        memcpy(&y, a->addr, 4);
        return n->prefix == 0 || ((x ^ y) & __builtin_bswap32(~0u << (32 - n->prefix))) == 0;
    }
    memcpy(nw, n->addr, sizeof nw);
    memcpy(aw, a->addr, sizeof aw);
    return ((nw[0] ^ aw[0]) & mask64(n->prefix)) == 0 &&
           ((nw[1] ^ aw[1]) & mask64(n->prefix - 64)) == 0;
}

bool ipnet_contains(const struct ipnet *n, const struct ipnet *a)
{
    return contains(n, a);
}

bool ipnet_any(const struct ipnet *nets, size_t n, const struct ipnet *a)
{
    for (size_t i = 0; i < n; i++) {
        if (contains(&nets[i], a))
            return true;
    }
    return false;
}

/* Copies the next entry of a list (separated by sep characters) into buf; returns a pointer
 * past it, or NULL at the end. Entries longer than the buffer are cut (and then fail to
 * parse). */
static const char *next_entry(const char *s, const char *sep, char *buf, size_t len)
{
    size_t n;

    s += strspn(s, sep);
    if (*s == '\0')
        return NULL;
    n = strcspn(s, sep);
    snprintf(buf, len, "%.*s", (int)n, s);
    return s + n;
}

int ipnet_list_parse(const char *s, struct ipnet *nets, size_t max, char *bad, size_t bad_len)
{
    char entry[IPNET_TEXT_MAX + 16];
    const char *why;
    size_t n = 0;

    while ((s = next_entry(s, ", \t\n", entry, sizeof entry)) != NULL) {
        if (n == max || ipnet_parse(entry, &nets[n], &why) != 0) {
            snprintf(bad, bad_len, "%s", entry);
            return -1;
        }
        n++;
    }
    return (int)n;
}

int ipnet_client(const char *remote, const char *xff, const struct ipnet *trusted, size_t ntrusted,
                 struct ipnet *out)
{
    const char *end;

    if (ipnet_addr_parse(remote, out) != 0)
        return -1;
    if (xff == NULL || !ipnet_any(trusted, ntrusted, out))
        return 0;
    /* Walk X-Forwarded-For from the right: each hop was added by the one after it. */
    end = xff + strlen(xff);
    while (end > xff) {
        char entry[IPNET_TEXT_MAX];
        const char *start = end;
        struct ipnet a;
        size_t n;

        while (start > xff && start[-1] != ',')
            start--;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        n = (size_t)(end - start);
        while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
            n--;
        if (n == 0 || n >= sizeof entry)
            return 0; /* unreadable: the client is the last trusted hop */
        memcpy(entry, start, n);
        entry[n] = '\0';
        if (ipnet_addr_parse(entry, &a) != 0)
            return 0;
        *out = a;
        if (!ipnet_any(trusted, ntrusted, &a))
            return 0;
        end = start;
        while (end > xff && end[-1] != ',')
            end--;
        if (end > xff)
            end--; /* the comma */
    }
    return 0;
}
