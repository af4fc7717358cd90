/* ipnet.h: IPv4/IPv6 addresses and CIDR blocks (api.md §6.2): parsed, normalised, matched,
 * and the client address of a request behind trusted proxies. */
#ifndef LOOPED_IPNET_H
#define LOOPED_IPNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address or a block. IPv4 is kept as such (family 4, addr[0..3]); an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is read as the IPv4 address it maps, so that one entry matches
 * however the web server writes REMOTE_ADDR. Bits past prefix are zero. */
struct ipnet {
    uint8_t family; /* 4 or 6; 0: none */
    uint8_t prefix; /* 0-32 or 0-128 */
    uint8_t addr[16];
};

#define IPNET_TEXT_MAX 48 /* "ffff:...:ffff/128" + NUL, with room */

/* Parses "a.b.c.d", "a.b.c.d/n", an IPv6 address or "addr/n" (no zone, no spaces) into *out,
 * clearing the host bits (so "203.0.113.7/24" reads as 203.0.113.0/24). A bare address is a
 * /32 or /128. Returns 0, or -1 with a reason (a static string) in *why. */
int ipnet_parse(const char *s, struct ipnet *out, const char **why);

/* Parses one address (no prefix): 0, or -1 if s is not one. */
int ipnet_addr_parse(const char *s, struct ipnet *out);

/* Writes n's normal form to buf (IPNET_TEXT_MAX bytes): "203.0.113.0/24", "2001:db8::/32",
 * and a single address without its /32 or /128. Returns buf. */
char *ipnet_format(const struct ipnet *n, char *buf);

/* True if address a (a parsed address) lies in block n. */
bool ipnet_contains(const struct ipnet *n, const struct ipnet *a);

/* True if a lies in one of the n blocks. */
bool ipnet_any(const struct ipnet *nets, size_t n, const struct ipnet *a);

/* Parses a list of blocks separated by commas or white space (LOOPED_TRUSTED_PROXIES) into
 * nets (at most max). Returns the count, or -1 with the offending entry copied into bad
 * (bad_len bytes). */
int ipnet_list_parse(const char *s, struct ipnet *nets, size_t max, char *bad, size_t bad_len);

/* The client address of a request (api.md §6.2): remote (REMOTE_ADDR) unless it is one of the
 * trusted proxies, in which case the right-most address of xff (X-Forwarded-For, may be NULL)
 * that is not a trusted proxy; an unparsable entry ends the walk at the last trusted hop.
 * Writes the address into *out; returns 0, or -1 if remote itself is not an address. */
int ipnet_client(const char *remote, const char *xff, const struct ipnet *trusted, size_t ntrusted,
                 struct ipnet *out);

#endif
