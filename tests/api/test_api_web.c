/* test_api_web.c: the web pages as HTTP sees them, against a real `tablehub serve`: the app shell
 * at / and at every deep link of the app, its files under /web/<build>/ with the right
 * Content-Type, the Content-Security-Policy on every reply, ETag and If-None-Match (304), the
 * cache headers (revalidate the shell, keep the build's files for good), gzip only when the
 * client accepts it, HEAD, and a 404 for files that do not exist. The Accept-Encoding and
 * If-None-Match parsers are also checked in-process. What the pages do is tested in a browser
 * (tests/web). */
#include <strings.h>

#include "../harness.h"
#include "server.h"
#include "../../api/web_assets.h"

static t_server srv;
static char *dir;
static char root[256]; /* http://127.0.0.1:PORT */
static char build[64];

/* GET `path` with extra curl arguments; the headers go to *hdrs (malloc'd, lower-cased names
 * kept as sent). */
static t_resp get(char **hdrs, const char *extra, const char *path)
{
	char hfile[600];
	t_resp r;

	snprintf(hfile, sizeof(hfile), "%s/headers", dir);
	r = t_http(&srv, "-D '%s' %s '%s%s'", hfile, extra, root, path);
	*hdrs = t_read_file(hfile, NULL);
	if (*hdrs == NULL)
		*hdrs = strdup("");
	return r;
}

/* The value of header `name` (case-insensitive) in a header block, copied into out. */
static const char *header(char *out, size_t size, const char *hdrs, const char *name)
{
	const char *p = hdrs;
	size_t n = strlen(name);

	out[0] = '\0';
	while (p && *p) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *e;
			while (*v == ' ')
				v++;
			e = strpbrk(v, "\r\n");
			snprintf(out, size, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
			return out;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static void test_shell(void)
{
	char *h = NULL, v[512];
	const char *p;
	t_resp r = get(&h, "", "/");

	CHECK(r.status == 200);
	CHECK_STR(header(v, sizeof(v), h, "Content-Type"), "text/html; charset=utf-8");
	CHECK_STR(header(v, sizeof(v), h, "Cache-Control"), "no-cache");
	CHECK(header(v, sizeof(v), h, "ETag") != NULL && v[0] == '"' && strlen(v) == 34);
	CHECK_CONTAINS(header(v, sizeof(v), h, "Content-Security-Policy"), "script-src 'self'");
	CHECK(strstr(v, "unsafe-inline") == NULL && strstr(v, "unsafe-eval") == NULL);
	CHECK_CONTAINS(v, "default-src 'none'");
	CHECK_STR(header(v, sizeof(v), h, "X-Content-Type-Options"), "nosniff");
	CHECK_CONTAINS(r.body, "<main id=\"main\"");
	CHECK(strstr(r.body, "<script>") == NULL && strstr(r.body, "style=") == NULL);
	/* The shell names its files under the build id, which the files answer to. */
	p = strstr(r.body, "/web/");
	CHECK(p != NULL);
	if (p != NULL)
		sscanf(p, "/web/%63[0-9a-f]/", build);
	CHECK(strlen(build) == 12);
	CHECK_STR(build, api_web_build);
	free(h);
	t_resp_free(&r);
}

/* Every URL of the app answers with the shell, also with slashes from a ref in it. */
static void test_deep_links(void)
{
	static const char *const paths[] = {
		"/signin",
		"/operations",
		"/repositories/alice/shop",
		"/repositories/alice/shop/data/main/orders?sort=qty&after=%5B1%5D",
		"/repositories/alice/shop/data/alice%2Fimport-1a2b/orders",
		"/repositories/alice/shop/pulls/7?table=orders&type=modified",
		"/repositories/alice/shop/query/main?q=SELECT%201",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *h = NULL, v[256];
		t_resp r = get(&h, "", paths[i]);
		if (r.status != 200)
			fprintf(stderr, "deep link %s: %d\n", paths[i], r.status);
		CHECK(r.status == 200);
		CHECK_STR(header(v, sizeof(v), h, "Content-Type"), "text/html; charset=utf-8");
		CHECK_CONTAINS(r.body, "<main id=\"main\"");
		free(h);
		t_resp_free(&r);
	}
	/* Paths that are not the app's stay JSON 404s. */
	{
		char *h = NULL;
		t_resp r = get(&h, "", "/nosuch");
		CHECK(r.status == 404);
		CHECK_STR(t_str(&r, "code"), "ENOTFOUND");
		free(h);
		t_resp_free(&r);
	}
}

static void test_files(void)
{
	static const struct {
		const char *name, *type, *needle;
	} files[] = {
		{ "main.js", "text/javascript; charset=utf-8", "import" },
		{ "app.css", "text/css; charset=utf-8", "--accent" },
		{ "favicon.svg", "image/svg+xml", "<svg" },
		{ "page_pull.js", "text/javascript; charset=utf-8", "merge" },
	};
	char path[256], *h = NULL, v[512];
	t_resp r;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "/web/%s/%s", build, files[i].name);
		r = get(&h, "", path);
		CHECK(r.status == 200);
		CHECK_STR(header(v, sizeof(v), h, "Content-Type"), files[i].type);
		CHECK_STR(header(v, sizeof(v), h, "Cache-Control"),
		          "public, max-age=31536000, immutable");
		CHECK(header(v, sizeof(v), h, "Content-Security-Policy") != NULL);
		CHECK(header(v, sizeof(v), h, "Content-Encoding") == NULL);
		CHECK_CONTAINS(r.body, files[i].needle);
		free(h);
		t_resp_free(&r);
	}
	/* Under another build id (an old shell): served, but revalidated. */
	r = get(&h, "", "/web/000000000000/main.js");
	CHECK(r.status == 200);
	CHECK_STR(header(v, sizeof(v), h, "Cache-Control"), "no-cache");
	free(h);
	t_resp_free(&r);
	/* Unknown files, and the shell under /web/, are 404. */
	snprintf(path, sizeof(path), "/web/%s/nosuch.js", build);
	r = get(&h, "", path);
	CHECK(r.status == 404);
	CHECK_CONTAINS(t_str(&r, "message"), "no such file of the web pages: 'nosuch.js'");
	free(h);
	t_resp_free(&r);
	snprintf(path, sizeof(path), "/web/%s/index.html", build);
	r = get(&h, "", path);
	CHECK(r.status == 404);
	free(h);
	t_resp_free(&r);
}

static void test_etag_304(void)
{
	char path[256], extra[300], *h = NULL, etag[128], v[256];
	t_resp r;

	snprintf(path, sizeof(path), "/web/%s/app.css", build);
	r = get(&h, "", path);
	CHECK(header(etag, sizeof(etag), h, "ETag") != NULL);
	free(h);
	t_resp_free(&r);
	snprintf(extra, sizeof(extra), "-H 'If-None-Match: \"nope\", %s'", etag);
	r = get(&h, extra, path);
	CHECK(r.status == 304);
	CHECK(r.body[0] == '\0');
	CHECK_STR(header(v, sizeof(v), h, "ETag"), etag);
	CHECK(header(v, sizeof(v), h, "Cache-Control") != NULL);
	free(h);
	t_resp_free(&r);
	/* A weak form of the same tag counts; another tag does not. */
	snprintf(extra, sizeof(extra), "-H 'If-None-Match: W/%s'", etag);
	r = get(&h, extra, path);
	CHECK(r.status == 304);
	free(h);
	t_resp_free(&r);
	r = get(&h, "-H 'If-None-Match: \"0123\"'", path);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "--accent");
	free(h);
	t_resp_free(&r);
	/* The shell revalidates too. */
	r = get(&h, "", "/");
	header(etag, sizeof(etag), h, "ETag");
	free(h);
	t_resp_free(&r);
	snprintf(extra, sizeof(extra), "-H 'If-None-Match: %s'", etag);
	r = get(&h, extra, "/repositories/alice/shop");
	CHECK(r.status == 304);
	free(h);
	t_resp_free(&r);
}

static void test_gzip(void)
{
	char path[256], *h = NULL, v[256], file[600], etag_plain[128];
	size_t len = 0;
	unsigned char *raw;
	t_resp r;

	snprintf(path, sizeof(path), "/web/%s/page_pull.js", build);
	r = get(&h, "", path);
	header(etag_plain, sizeof(etag_plain), h, "ETag");
	CHECK_STR(header(v, sizeof(v), h, "Vary"), "Accept-Encoding");
	free(h);
	t_resp_free(&r);
	/* The raw bytes: gzip's magic number, and curl can inflate them to the same text. */
	snprintf(file, sizeof(file), "%s/body.gz", dir);
	CHECK(t_sh(NULL, "curl -s -H 'Accept-Encoding: gzip' -o '%s' '%s%s'", file, root, path) ==
	      0);
	raw = (unsigned char *)t_read_file(file, &len);
	CHECK(raw != NULL && len > 10 && raw[0] == 0x1f && raw[1] == 0x8b);
	free(raw);
	r = get(&h, "--compressed", path);
	CHECK(r.status == 200);
	CHECK_STR(header(v, sizeof(v), h, "Content-Encoding"), "gzip");
	CHECK(header(v, sizeof(v), h, "ETag") != NULL && strstr(v, "-gz\"") != NULL);
	CHECK(strcmp(v, etag_plain) != 0);
	CHECK_CONTAINS(r.body, "export default async function render");
	free(h);
	t_resp_free(&r);
	/* q=0 refuses gzip; identity is sent. */
	r = get(&h, "-H 'Accept-Encoding: gzip;q=0, identity'", path);
	CHECK(header(v, sizeof(v), h, "Content-Encoding") == NULL);
	CHECK_CONTAINS(r.body, "export default async function render");
	free(h);
	t_resp_free(&r);
}

static void test_head(void)
{
	char *h = NULL, v[64];
	t_resp r = get(&h, "-I", "/");

	CHECK(r.status == 200);
	CHECK(strstr(r.body, "<main") == NULL); /* curl -I writes only the headers */
	CHECK_STR(header(v, sizeof(v), h, "Content-Type"), "text/html; charset=utf-8");
	free(h);
	t_resp_free(&r);
}

static void test_parsers(void)
{
	CHECK(api_web_accepts_gzip("gzip"));
	CHECK(api_web_accepts_gzip("br, gzip, deflate"));
	CHECK(api_web_accepts_gzip("deflate;q=1.0, GZIP;q=0.5"));
	CHECK(api_web_accepts_gzip("*"));
	CHECK(!api_web_accepts_gzip("identity"));
	CHECK(!api_web_accepts_gzip("gzip;q=0"));
	CHECK(!api_web_accepts_gzip("gzip; q=0.000, br"));
	CHECK(!api_web_accepts_gzip("x-gzip2"));
	CHECK(!api_web_accepts_gzip(""));
	CHECK(api_web_etag_matches("\"a\"", "\"a\"", "\"a-gz\""));
	CHECK(api_web_etag_matches("\"x\", \"a-gz\"", "\"a\"", "\"a-gz\""));
	CHECK(api_web_etag_matches("W/\"a\"", "\"a\"", "\"a-gz\""));
	CHECK(api_web_etag_matches("*", "\"a\"", "\"a-gz\""));
	CHECK(!api_web_etag_matches("\"ab\"", "\"a\"", "\"a-gz\""));
	CHECK(!api_web_etag_matches("a", "\"a\"", "\"a-gz\""));
	CHECK(!api_web_etag_matches("\"a", "\"a\"", "\"a-gz\""));
	CHECK(api_web_find("main.js") != NULL && api_web_find("nosuch.js") == NULL);
	/* Every embedded file has its content type and a tag; gzip copies are smaller. */
	for (const api_web_asset *a = api_web_assets; a->name; a++) {
		CHECK(a->len > 0 && a->etag[0] == '"');
		CHECK(strncmp(a->content_type, "application/octet-stream", 24) != 0);
		CHECK(a->gz == NULL || a->gz_len < a->len);
	}
}

int main(void)
{
	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	snprintf(root, sizeof(root), "http://127.0.0.1:%d", srv.port);
	RUN(test_parsers);
	RUN(test_shell);
	RUN(test_deep_links);
	RUN(test_files);
	RUN(test_etag_304);
	RUN(test_gzip);
	RUN(test_head);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	t_rmdir(dir);
	TH_TEST_END();
}
