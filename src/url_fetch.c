/* url_fetch.c: a file fetched from a URL into the uploads, for imports from a URL (fetch.h).
 *
 * DESIGN
 * - One libcurl easy handle per fetch, on the import job's worker thread. The body streams into
 *   storage/files.c's upload (hashed as it comes, the size cap checked on every write); the file
 *   is fsynced and named by its SHA-256 only when the transfer ended well, so a failure leaves
 *   nothing on disk.
 * - Addresses are checked where libcurl opens the socket (CURLOPT_OPENSOCKETFUNCTION), after DNS
 *   resolution and for every connection, redirects included: a name that resolves to a private
 *   address is refused as the address itself would be, and a second DNS answer cannot slip past
 *   the check (there is no check-then-connect gap). Proxies are turned off, so the address checked
 *   is the address connected to.
 * - Schemes: CURLOPT_PROTOCOLS_STR and CURLOPT_REDIR_PROTOCOLS_STR allow http and https only, so a
 *   redirect to file:, gopher: or any other scheme is refused by libcurl itself.
 * - Messages name the URL's host (the client gave it) and never a path of the server.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tablehub/fetch.h"
#include "tablehub/files.h"

#define URL_MAX 2000
#define MAX_REDIRECTS 5L

int th_fetch_check_url(const char *url, th_error *err)
{
	const char *host, *end, *at;
	size_t len = url ? strlen(url) : 0;

	if (len == 0)
		return th_error_set(err, TH_EINVALID, "'url' is required");
	if (len > URL_MAX)
		return th_error_set(err, TH_EINVALID, "'url' is longer than %d bytes", URL_MAX);
	if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return th_error_set(err, TH_EINVALID,
		                    "'url' must be an http:// or https:// URL (got '%.100s')", url);
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return th_error_set(err, TH_EINVALID,
			                    "'url' holds a space or a control character");
	end = host + strcspn(host, "/?#");
	if (end == host)
		return th_error_set(err, TH_EINVALID, "'url' has no host");
	at = memchr(host, '@', (size_t)(end - host));
	if (at != NULL)
		return th_error_set(err, TH_EINVALID, "'url' may not hold a user name or password");
	return TH_OK;
}

/* --- addresses ------------------------------------------------------------------------------ */

/* Does the IPv4 address a (host order) fall in prefix/bits? */
static int in4(uint32_t a, uint32_t prefix, int bits)
{
	uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);

	return (a & mask) == (prefix & mask);
}

/* The kind of a refused IPv4 address, or NULL when it is public. *always set for the metadata
 * addresses, refused whatever allow_private says. */
static const char *kind4(uint32_t a, int *always)
{
	*always = 0;
	/* 169.254.169.254 (most clouds), 100.100.100.200 (Alibaba) */
	if (a == 0xa9fea9feu || a == 0x646464c8u) {
		*always = 1;
		return "a cloud metadata address";
	}
	if (in4(a, 0x7f000000u, 8))
		return "a loopback address";
	if (in4(a, 0x0a000000u, 8) || in4(a, 0xac100000u, 12) || in4(a, 0xc0a80000u, 16))
		return "a private address";
	if (in4(a, 0xa9fe0000u, 16))
		return "a link-local address";
	if (in4(a, 0x64400000u, 10))
		return "a shared (carrier-grade NAT) address";
	if (in4(a, 0x00000000u, 8))
		return "a 'this network' address";
	if (in4(a, 0xc0000000u, 24) || in4(a, 0xc6120000u, 15) || in4(a, 0xf0000000u, 4))
		return "a reserved address";
	if (in4(a, 0xe0000000u, 4))
		return "a multicast address";
	return NULL;
}

int th_fetch_addr_refused(const void *addr, int allow_private, const char **what_out)
{
	const struct sockaddr *sa = addr;
	const char *what = NULL;
	int always = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = addr;
		what = kind4(ntohl(s4->sin_addr.s_addr), &always);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = addr;
		const unsigned char *b = s6->sin6_addr.s6_addr;
		static const unsigned char zero[16],
		        mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		static const unsigned char ec2[16] = { 0xfd, 0, 0, 0xec, 2, 0, 0, 0,
			                               0,    0, 0, 0,    0, 0, 2, 0x54 };
		if (memcmp(b, mapped, 12) == 0 || (memcmp(b, zero, 12) == 0 && b[12] | b[13]) ||
		    (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)) {
			/* An IPv4 address in IPv6 clothes (mapped, compatible, NAT64): judged as
			 * one. */
			uint32_t a = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
			             (uint32_t)b[14] << 8 | b[15];
			what = kind4(a, &always);
		} else if (memcmp(b, ec2, 16) == 0) {
			what = "a cloud metadata address";
			always = 1;
		} else if (memcmp(b, zero, 15) == 0 && (b[15] == 1 || b[15] == 0)) {
			what = b[15] ? "a loopback address" : "an unspecified address";
		} else if ((b[0] & 0xfe) == 0xfc) {
			what = "a private address";
		} else if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
			what = "a link-local address";
		} else if (b[0] == 0xff) {
			what = "a multicast address";
		} else if (b[0] == 0x20 && b[1] == 0x02) {
			uint32_t a = (uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 |
			             (uint32_t)b[4] << 8 | b[5]; /* 6to4 */
			what = kind4(a, &always);
		}
	} else {
		what = "not an internet address";
		always = 1;
	}
	if (what_out)
		*what_out = what;
	return what != NULL && (always || !allow_private);
}

/* libcurl's global state, made once before the first fetch (any worker thread may be first). */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ready;

static void curl_init_once(void)
{
	curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* --- one fetch ----------------------------------------------------------------------------------
 */

typedef struct fetch {
	th_upload *up;
	const th_fetch_opts *o;
	th_error write_err; /* what stopped the body (the cap, the disk) */
	int wrote_failed;
	char refused[200]; /* the address refused, and why */
	void (*progress)(void *payload, uint64_t bytes);
	void *payload;
	uint64_t bytes;
} fetch;

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	fetch *f = clientp;
	const char *what = NULL;
	char ip[INET6_ADDRSTRLEN] = "?";

	(void)purpose;
	if (th_fetch_addr_refused(&a->addr, f->o->allow_private, &what)) {
		if (a->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&a->addr)->sin_addr, ip,
			          sizeof(ip));
		else if (a->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&a->addr)->sin6_addr,
			          ip, sizeof(ip));
		snprintf(f->refused, sizeof(f->refused), "%s (%s)", ip, what);
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *payload)
{
	fetch *f = payload;
	size_t len = size * nmemb;

	if (th_upload_write(f->up, data, len, &f->write_err) < 0) {
		f->wrote_failed = 1;
		return 0;
	}
	f->bytes += len;
	if (f->progress)
		f->progress(f->payload, f->bytes);
	return len;
}

/* The host part of url, for messages ("example.com:8080"). */
static void host_of(char *out, size_t outsz, const char *url)
{
	const char *h = strstr(url, "://");
	size_t n;

	h = h ? h + 3 : url;
	n = strcspn(h, "/?#");
	snprintf(out, outsz, "%.*s", (int)(n < 200 ? n : 200), h);
}

/* The message of a failed transfer. */
static int fetch_error(fetch *f, CURL *c, CURLcode rc, const char *url, const char *errbuf,
                       th_error *err)
{
	char host[210];
	long status = 0;

	host_of(host, sizeof(host), url);
	if (f->wrote_failed) {
		if (f->write_err.code == TH_ETOOBIG)
			return th_error_set(
			        err, TH_ETOOBIG,
			        "the file at %s is larger than the %llu MB limit of URL "
			        "imports",
			        host, (unsigned long long)(f->o->max_bytes / 1048576));
		*err = f->write_err;
		return f->write_err.code;
	}
	if (f->refused[0])
		return th_error_set(err, TH_EINVALID,
		                    "refused to connect to %s for %s: URL imports may not reach "
		                    "loopback, private, link-local or metadata addresses",
		                    f->refused, host);
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
		return th_error_set(err, TH_EINVALID,
		                    "%s redirected to a URL that is not http or https: refused",
		                    host);
	case CURLE_TOO_MANY_REDIRECTS:
		return th_error_set(err, TH_EINVALID, "%s redirected more than %ld times", host,
		                    MAX_REDIRECTS);
	case CURLE_OPERATION_TIMEDOUT:
		return th_error_set(
		        err, TH_ELIMIT,
		        "fetching from %s took longer than the %u s limit of URL imports", host,
		        (unsigned)(f->o->timeout_ms / 1000));
	case CURLE_FILESIZE_EXCEEDED:
		return th_error_set(
		        err, TH_ETOOBIG,
		        "the file at %s is larger than the %llu MB limit of URL imports", host,
		        (unsigned long long)(f->o->max_bytes / 1048576));
	case CURLE_HTTP_RETURNED_ERROR:
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		return th_error_set(err, TH_EINVALID, "%s answered HTTP %ld", host, status);
	case CURLE_COULDNT_RESOLVE_HOST:
		return th_error_set(err, TH_EINVALID, "cannot resolve the host of %s", host);
	default:
		return th_error_set(err, TH_EINVALID, "cannot fetch from %s: %s", host,
		                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
}

int th_fetch_url(char sha_out[65], uint64_t *size_out, const char *data_dir, const char *url,
                 const th_fetch_opts *o, void (*progress)(void *payload, uint64_t bytes),
                 void *payload, th_error *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	fetch f;
	CURL *c = NULL;
	CURLcode rc;
	int error;

	memset(&f, 0, sizeof(f));
	f.o = o;
	f.progress = progress;
	f.payload = payload;
	if ((error = th_fetch_check_url(url, err)) < 0)
		return error;
	pthread_once(&curl_once, curl_init_once);
	if (!curl_ready)
		return th_error_set(err, TH_ERROR, "cannot initialise libcurl");
	if ((c = curl_easy_init()) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if ((error = th_upload_begin(&f.up, data_dir, o->max_bytes, err)) < 0)
		goto cleanup;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(c, CURLOPT_PROXY, ""); /* no proxy from the environment */
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &f);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tablehub-url-import/0.1");
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* gzip and deflate, decoded */
	if (o->timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	if (o->max_bytes > 0)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		error = fetch_error(&f, c, rc, url, errbuf, err);
		goto cleanup;
	}
	if (th_upload_size(f.up) == 0) {
		char host[210];
		host_of(host, sizeof(host), url);
		error = th_error_set(err, TH_EINVALID, "the file at %s is empty", host);
		goto cleanup;
	}
	error = th_upload_finish_pinned(f.up, sha_out, size_out, err);
	f.up = NULL;
cleanup:
	th_upload_abort(f.up);
	curl_easy_cleanup(c);
	return error;
}
