/* web.c: the web pages. Serves the single-page application embedded in the binary (api/web/,
 * turned into byte arrays at build time by api/web_embed.c) and nothing else: the pages talk to
 * the JSON API like any other client.
 *
 *   GET /                          the app shell (index.html); also every page URL the app owns:
 *   GET /signin, /operations, /repositories/...   so a bookmarked or shared deep link loads the
 *                                  shell, whose router then shows the page the URL names
 *   GET /web/{build}/{file}        the app's files (CSS, JavaScript modules, icons)
 *
 * Caching: each file has a precomputed ETag (SHA-256 of its bytes) and If-None-Match gives 304.
 * The shell names its files under /web/<build>/, where <build> changes with any file, so those
 * are cached for a year as immutable; the shell itself is revalidated on every load (no-cache).
 * A file asked for under another build id (an old shell) is still served, but not cached for good.
 * A gzip copy made at build time is sent when the client accepts gzip (Vary: Accept-Encoding);
 * it has its own ETag ("<hash>-gz"), and either ETag in If-None-Match counts.
 *
 * Every reply carries a Content-Security-Policy without 'unsafe-inline' for scripts or styles:
 * the app's code comes only from its own files, and a value from data that slipped into markup
 * could not run. The app never inserts data as HTML (textContent only); this is the second wall.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "web_assets.h"

#define CSP                                                                                        \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "              \
	"form-action 'self'; frame-ancestors 'none'"
#define CACHE_FOREVER "public, max-age=31536000, immutable"
#define CACHE_REVALIDATE "no-cache"

static int web_shell(th_req *req, th_error *err);
static int web_file(th_req *req, th_error *err);

/* The app's own page URLs (see api/web/router.js) answer with the shell. Refs and table names
 * may hold slashes, which arrive decoded, so /repositories takes any depth up to ten. */
const api_route api_web_routes[] = {
	{ "GET", "/", web_shell, 0 },
	{ "HEAD", "/", web_shell, 0 },
	{ "GET", "/signin", web_shell, 0 },
	{ "GET", "/operations", web_shell, 0 },
	{ "GET", "/repositories/:a", web_shell, 0 },
	{ "GET", "/repositories/:a/:b", web_shell, 0 },
	{ "GET", "/repositories/:a/:b/:c", web_shell, 0 },
	{ "GET", "/repositories/:a/:b/:c/:d", web_shell, 0 },
	{ "GET", "/repositories/:a/:b/:c/:d/:e", web_shell, 0 },
	{ "GET", "/repositories/:a/:b/:c/:d/:e/:f", web_shell, 0 },
	{ "GET", "/repositories/:a/:b/:c/:d/:e/:f/:g", web_shell, 0 },
	{ "GET", "/repositories/:a/:b/:c/:d/:e/:f/:g/:h", web_shell, 0 },
	{ "GET", "/repositories/:a/:b/:c/:d/:e/:f/:g/:h/:i", web_shell, 0 },
	{ "GET", "/repositories/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j", web_shell, 0 },
	{ "GET", "/web/:build/:file", web_file, 0 },
	{ "HEAD", "/web/:build/:file", web_file, 0 },
	{ NULL, NULL, NULL, 0 }
};

const api_web_asset *api_web_find(const char *name)
{
	for (const api_web_asset *a = api_web_assets; a->name != NULL; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

/* Does an Accept-Encoding value accept gzip? A "gzip" or "*" coding whose q is not zero. */
int api_web_accepts_gzip(const char *ae)
{
	const char *p = ae;

	while (p != NULL && *p) {
		const char *end = strchr(p, ','), *semi;
		size_t len = end ? (size_t)(end - p) : strlen(p), n;
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		semi = memchr(p, ';', len);
		n = semi ? (size_t)(semi - p) : len;
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if ((n == 4 && strncasecmp(p, "gzip", 4) == 0) || (n == 1 && *p == '*')) {
			const char *q = semi;
			int zero = 0;
			/* q=0, q=0.0, q=0.000 refuse; anything else accepts. */
			while (q != NULL && q < p + len) {
				q++;
				while (q < p + len && (*q == ' ' || *q == '\t'))
					q++;
				if (q + 2 <= p + len && (q[0] == 'q' || q[0] == 'Q') &&
				    q[1] == '=') {
					const char *v = q + 2;
					zero = 1;
					for (; v < p + len && *v != ';' && *v != ' '; v++)
						if (*v != '0' && *v != '.')
							zero = 0;
				}
				q = memchr(q, ';', (size_t)(p + len - q));
			}
			if (!zero)
				return 1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* Is one of the entity tags in an If-None-Match value `a` or `b` (or is it "*")? Weak tags
 * (W/"x") compare by their opaque part, as RFC 9110 says for If-None-Match. */
int api_web_etag_matches(const char *inm, const char *a, const char *b)
{
	const char *p = inm;

	while (p != NULL && *p) {
		const char *end;
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p != '"')
			return 0;
		if ((end = strchr(p + 1, '"')) == NULL)
			return 0;
		n = (size_t)(end - p) + 1;
		if ((strlen(a) == n && strncmp(p, a, n) == 0) ||
		    (strlen(b) == n && strncmp(p, b, n) == 0))
			return 1;
		p = end + 1;
	}
	return 0;
}

static int add_headers(struct MHD_Response *r, const api_web_asset *a, const char *etag,
                       const char *cache, int gz)
{
	return MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type) ==
	               MHD_YES &&
	       MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag) == MHD_YES &&
	       MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache) == MHD_YES &&
	       (a->gz == NULL ||
	        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding") == MHD_YES) &&
	       (!gz ||
	        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip") == MHD_YES) &&
	       MHD_add_response_header(r, "Content-Security-Policy", CSP) == MHD_YES &&
	       MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES &&
	       MHD_add_response_header(r, "Referrer-Policy", "same-origin") == MHD_YES &&
	       MHD_add_response_header(r, "X-Frame-Options", "DENY") == MHD_YES;
}

/* Reply asset `a` (or 304 when the client has it), cached as `cache` says. */
static int serve(th_req *req, const api_web_asset *a, const char *cache, th_error *err)
{
	const char *inm = api_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *ae = api_header(req, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	int gz = a->gz != NULL && ae != NULL && api_web_accepts_gzip(ae);
	int not_modified = inm != NULL && api_web_etag_matches(inm, a->etag, a->gz_etag);
	const void *data = gz ? a->gz : a->data;
	size_t len = gz ? a->gz_len : a->len;
	struct MHD_Response *r;

	if (not_modified)
		len = 0;
	/* The bytes are static data of the binary: MHD may point at them without a copy. */
	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if (!add_headers(r, a, gz ? a->gz_etag : a->etag, cache, gz && !not_modified)) {
		MHD_destroy_response(r);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	req->resp = r;
	req->status = not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
	req->resp_len = len;
	return TH_OK;
}

static int web_shell(th_req *req, th_error *err)
{
	const api_web_asset *a = api_web_find("index.html");

	if (a == NULL)
		return th_error_set(err, TH_ERROR, "the web pages were not built into this binary");
	return serve(req, a, CACHE_REVALIDATE, err);
}

static int web_file(th_req *req, th_error *err)
{
	const char *build = api_cap(req, "build"), *name = api_cap(req, "file");
	const api_web_asset *a = api_web_find(name);

	if (a == NULL || strcmp(name, "index.html") == 0)
		return th_error_set(err, TH_ENOTFOUND, "no such file of the web pages: '%.100s'",
		                    name);
	return serve(req, a, strcmp(build, api_web_build) == 0 ? CACHE_FOREVER : CACHE_REVALIDATE,
	             err);
}
