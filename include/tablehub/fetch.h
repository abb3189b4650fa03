/* fetch.h: fetching a file from a URL into the uploads, for imports from a URL (src/url_fetch.c,
 * on libcurl).
 *
 * Safe by default, because the server fetches what a client names: http and https only, also
 * after a redirect (at most 5); a size cap and a time cap; and every address the name resolves to
 * is checked when a connection is about to be made (libcurl's open-socket hook, so no check can be
 * raced by a second DNS answer): loopback, private, shared (CGNAT), link-local, multicast and
 * reserved addresses are refused unless allow_private is set. The cloud metadata addresses
 * (169.254.169.254, fd00:ec2::254, 100.100.100.200) are refused always. Proxies from the
 * environment are not used.
 */
#ifndef TABLEHUB_FETCH_H
#define TABLEHUB_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef struct th_fetch_opts {
	uint64_t max_bytes;  /* the body's cap (0 = none); pass a multiple of 1 MiB */
	uint32_t timeout_ms; /* the whole transfer's cap, connecting included (0 = none) */
	int allow_private;   /* loopback, private and link-local addresses may be fetched */
} th_fetch_opts;

/* Can `url` be fetched at all: http:// or https://, a host, no user name or password, at most
 * 2000 bytes? Returns TH_OK or TH_EINVALID saying why. No connection is made. */
int th_fetch_check_url(const char *url, th_error *err);

/* Is the address refused (without allow_private / always)? `addr` is a struct sockaddr of family
 * AF_INET or AF_INET6. *what_out (may be NULL) gets what kind it is ("a loopback address").
 * Returns 1 when refused, 0 when allowed. */
int th_fetch_addr_refused(const void *addr, int allow_private, const char **what_out);

/* Fetch `url` into DIR/uploads/<sha256> (storage/files.c: hashed as it comes, fsynced, renamed),
 * following redirects. The file stays pinned (th_upload_unpin(sha) when done with it).
 * progress(payload, bytes) is called as bytes arrive (may be NULL). sha_out gets the 64 hex
 * digits, *size_out the size. Returns TH_OK, TH_EINVALID (a URL, scheme, redirect or address
 * refused; an HTTP error answer; a name that does not resolve; a connection that fails),
 * TH_ETOOBIG (over max_bytes), TH_ELIMIT (over timeout_ms) or TH_ESTORE, with a message that names
 * the URL's host but no server path. Nothing stays on disk after a failure. */
int th_fetch_url(char sha_out[65], uint64_t *size_out, const char *data_dir, const char *url,
                 const th_fetch_opts *o, void (*progress)(void *payload, uint64_t bytes),
                 void *payload, th_error *err);

#endif
