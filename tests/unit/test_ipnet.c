/* test_ipnet.c: addresses and CIDR blocks: parsing, normal forms, matching, X-Forwarded-For. */
#include <string.h>

#include "../../fcgi/ipnet.h"
#include "tap.h"

/* The normal form of s, or "(refused)". */
static const char *norm(const char *s)
{
    static char buf[IPNET_TEXT_MAX];
    struct ipnet n;
    const char *why;

    if (ipnet_parse(s, &n, &why) != 0)
        return "(refused)";
    return ipnet_format(&n, buf);
}

static bool in(const char *net, const char *addr)
{
    struct ipnet n, a;
    const char *why;

    return ipnet_parse(net, &n, &why) == 0 && ipnet_addr_parse(addr, &a) == 0 &&
           ipnet_contains(&n, &a);
}

/* The client ipnet_client finds, behind the proxies of list. */
static const char *client(const char *remote, const char *xff, const char *list)
{
    static char buf[IPNET_TEXT_MAX];
    struct ipnet trusted[8], a;
    char bad[64];
    int n = ipnet_list_parse(list, trusted, 8, bad, sizeof bad);

    if (n < 0 || ipnet_client(remote, xff, trusted, (size_t)n, &a) != 0)
        return "(refused)";
    return ipnet_format(&a, buf);
}

int main(void)
{
    struct ipnet nets[4];
    char bad[64];

    is_str(norm("203.0.113.7"), "203.0.113.7", "a bare IPv4 address is itself");
    is_str(norm("203.0.113.7/32"), "203.0.113.7", "a /32 is the address");
    is_str(norm("203.0.113.7/24"), "203.0.113.0/24", "host bits are cleared");
    is_str(norm("10.1.2.3/8"), "10.0.0.0/8", "a /8");
    is_str(norm("0.0.0.0/0"), "0.0.0.0/0", "everything IPv4");
    is_str(norm("10.1.2.3/13"), "10.0.0.0/13", "a prefix inside a byte");
    is_str(norm("2001:DB8:0:0::1/32"), "2001:db8::/32", "IPv6 in lower case, compressed");
    is_str(norm("::1"), "::1", "IPv6 loopback");
    is_str(norm("2001:db8::1/128"), "2001:db8::1", "a /128 is the address");
    is_str(norm("::ffff:192.0.2.1"), "192.0.2.1", "an IPv4-mapped address is IPv4");
    is_str(norm("::ffff:192.0.2.0/120"), "192.0.2.0/24", "a mapped block counts the 96 bits");
    is_str(norm("192.0.2.1/33"), "(refused)", "an IPv4 prefix over 32");
    is_str(norm("2001:db8::/129"), "(refused)", "an IPv6 prefix over 128");
    is_str(norm("192.0.2.1/"), "(refused)", "an empty prefix");
    is_str(norm("192.0.2.1/08"), "(refused)", "a prefix with a leading zero");
    is_str(norm("192.0.2.1/-1"), "(refused)", "a negative prefix");
    is_str(norm("192.0.2.1/2x"), "(refused)", "a prefix that is not a number");
    is_str(norm("192.0.2"), "(refused)", "three octets");
    is_str(norm("192.0.2.256"), "(refused)", "an octet over 255");
    is_str(norm(" 192.0.2.1"), "(refused)", "a leading space");
    is_str(norm("fe80::1%eth0"), "(refused)", "a zone");
    is_str(norm(""), "(refused)", "empty");
    is_str(norm("/24"), "(refused)", "a prefix alone");
    is_str(norm("example.com"), "(refused)", "a host name");

    ok(in("203.0.113.0/24", "203.0.113.255"), "the last address of a /24");
    ok(!in("203.0.113.0/24", "203.0.114.0"), "the next block");
    ok(in("10.0.0.0/13", "10.7.255.255"), "inside a /13");
    ok(!in("10.0.0.0/13", "10.8.0.0"), "past a /13");
    ok(in("0.0.0.0/0", "198.51.100.1"), "/0 holds every IPv4 address");
    ok(!in("0.0.0.0/0", "::1"), "... and no IPv6 one");
    ok(in("::1", "::1"), "IPv6 loopback matches itself");
    ok(!in("::1", "127.0.0.1"), "::1 is not 127.0.0.1");
    ok(in("2001:db8::/32", "2001:db8:ffff::1"), "inside an IPv6 /32");
    ok(!in("2001:db8::/32", "2001:db9::1"), "outside an IPv6 /32");
    ok(in("192.0.2.0/24", "::ffff:192.0.2.9"), "a mapped REMOTE_ADDR matches an IPv4 block");

    ok(ipnet_list_parse("10.0.0.0/8, 192.0.2.1\t::1", nets, 4, bad, sizeof bad) == 3,
       "a list separated by commas and spaces");
    ok(ipnet_list_parse("", nets, 4, bad, sizeof bad) == 0, "an empty list");
    ok(ipnet_list_parse("10.0.0.0/8,nope", nets, 4, bad, sizeof bad) == -1 &&
           strcmp(bad, "nope") == 0,
       "a bad entry is named");
    ok(ipnet_list_parse("1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5", nets, 4, bad, sizeof bad) == -1,
       "more entries than room");

    is_str(client("198.51.100.7", "203.0.113.9", ""), "198.51.100.7",
           "no trusted proxy: X-Forwarded-For is ignored");
    is_str(client("198.51.100.7", "203.0.113.9", "10.0.0.0/8"), "198.51.100.7",
           "a peer that is not a trusted proxy: X-Forwarded-For is ignored");
    is_str(client("10.0.0.2", "203.0.113.9", "10.0.0.0/8"), "203.0.113.9",
           "a trusted proxy: its forwarded address");
    is_str(client("10.0.0.2", "1.2.3.4, 203.0.113.9, 10.0.0.3", "10.0.0.0/8"), "203.0.113.9",
           "the right-most address that is not a trusted proxy (a spoofed left part is ignored)");
    is_str(client("10.0.0.2", "10.0.0.5, 10.0.0.3", "10.0.0.0/8"), "10.0.0.5",
           "every hop trusted: the left-most");
    is_str(client("10.0.0.2", "garbage, 10.0.0.3", "10.0.0.0/8"), "10.0.0.3",
           "an unreadable hop: the last trusted one");
    is_str(client("10.0.0.2", NULL, "10.0.0.0/8"), "10.0.0.2", "no header: the peer");
    is_str(client("::1", "2001:db8::7", "::1"), "2001:db8::7", "IPv6 proxies and clients");
    is_str(client("not-an-address", "1.2.3.4", "10.0.0.0/8"), "(refused)",
           "a REMOTE_ADDR that is no address");
    return tap_done();
}
