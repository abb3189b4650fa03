/* test_corpus.c: replays the malformed-request corpus (tests/reliability/corpus/ *.req) against a
 * real `tablehub serve`, over raw sockets, and prints PASS or FAIL per case (scripts/reliability
 * shows these lines in its report).
 *
 *   test_corpus [CORPUS_DIR]     (default: the corpus of the source tree)
 *
 * A case file is the request's bytes written as text: every line that does not start with '#'
 * is taken without its line break, with the escapes \r \n \t \0 \\ \xHH, and \[N]c for the byte c
 * N times (a 100 KB header); @TOKEN@ becomes a valid token of the user alice, who owns the public
 * database alice/shop. Lines starting with '#' say what is expected:
 *
 *   # expect: CODES CONN [json] [single]
 *       CODES: the status codes allowed, "400", "400|413" or "4xx"; CONN: "close" (the server
 *       must close the connection after its answer), "open" (it must keep it) or "any";
 *       json: the body is a JSON error ({"status":"Error",...}); single: exactly one status line
 *       came back (nothing after the head ran as a second request)
 *   # absent: TEXT       TEXT must not be in what came back (the smuggled request's answer)
 *   # contains: TEXT     TEXT must be in what came back
 *   # wait: MS           how long a silence ends the read (default 1500 ms)
 *   # known: WHY         a known deviation, outside tablehub's reach: when the case does not pass
 *                        it is printed KNOWN with WHY, and does not fail the test
 *   # anything else      a comment; the first one names the case in the report
 *
 * After each case the server must still answer an ordinary request (GET the branches of
 * alice/shop: 200). The server runs with a 2 s head deadline, so a case may test that too.
 */
#include <dirent.h>

#include "tablehub/text.h"
#include "../harness.h"
#include "../api/server.h"
#include "../api/raw.h"

#ifndef TH_CORPUS
#define TH_CORPUS "corpus"
#endif

static t_server srv;
static char *alice;

typedef struct corpus_case {
	char *req; /* the bytes to send (malloc'd) */
	size_t len;
	char what[256];
	char codes[64];
	char conn[16];
	int json, single, wait_ms;
	char known[256];
	char absent[4][256];
	char contains[4][256];
	int nabsent, ncontains;
} corpus_case;

static void put(corpus_case *c, size_t *cap, const char *p, size_t n)
{
	if (c->len + n + 1 > *cap) {
		while (c->len + n + 1 > *cap)
			*cap *= 2;
		c->req = realloc(c->req, *cap);
		if (c->req == NULL)
			abort();
	}
	memcpy(c->req + c->len, p, n);
	c->len += n;
	c->req[c->len] = '\0';
}

/* Decode one request line of a case file (see the top of the file) onto c->req. Returns 0, or -1
 * on a malformed escape. */
static int decode_line(corpus_case *c, size_t *cap, const char *s)
{
	size_t toklen = strlen(alice);

	while (*s != '\0' && *s != '\n') {
		char ch = *s;
		if (strncmp(s, "@TOKEN@", 7) == 0) {
			put(c, cap, alice, toklen);
			s += 7;
			continue;
		}
		if (ch != '\\') {
			put(c, cap, s++, 1);
			continue;
		}
		s++;
		switch (*s) {
		case 'r':
			ch = '\r';
			break;
		case 'n':
			ch = '\n';
			break;
		case 't':
			ch = '\t';
			break;
		case '0':
			ch = '\0';
			break;
		case '\\':
			ch = '\\';
			break;
		case 'x':
			if (th_hexval(s[1]) < 0 || th_hexval(s[2]) < 0)
				return -1;
			ch = (char)(th_hexval(s[1]) * 16 + th_hexval(s[2]));
			s += 2;
			break;
		case '[': {
			char *end;
			long n = strtol(s + 1, &end, 10);
			if (*end != ']' || n <= 0 || n > 10000000 || end[1] == '\0')
				return -1;
			for (long i = 0; i < n; i++)
				put(c, cap, end + 1, 1);
			s = end + 2;
			continue;
		}
		default:
			return -1;
		}
		put(c, cap, &ch, 1);
		s++;
	}
	return 0;
}

/* Read case file `path` into *c. Returns 0, or -1 (with a message) when it cannot be read. */
static int load_case(corpus_case *c, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	size_t cap = 1024;

	memset(c, 0, sizeof(*c));
	snprintf(c->codes, sizeof(c->codes), "4xx");
	snprintf(c->conn, sizeof(c->conn), "any");
	c->wait_ms = 1500;
	c->req = malloc(cap);
	if (f == NULL || c->req == NULL) {
		fprintf(stderr, "%s: cannot read\n", path);
		if (f != NULL)
			fclose(f);
		return -1;
	}
	c->req[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		char *v;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != '#') {
			if (decode_line(c, &cap, line) < 0) {
				fprintf(stderr, "%s: bad escape in: %s\n", path, line);
				fclose(f);
				return -1;
			}
			continue;
		}
		v = line + 1;
		while (*v == ' ')
			v++;
		if (strncmp(v, "expect:", 7) == 0) {
			char codes[64] = "", conn[16] = "", f1[16] = "", f2[16] = "";
			sscanf(v + 7, "%63s %15s %15s %15s", codes, conn, f1, f2);
			snprintf(c->codes, sizeof(c->codes), "%s", codes);
			snprintf(c->conn, sizeof(c->conn), "%s", conn[0] ? conn : "any");
			c->json = strcmp(f1, "json") == 0 || strcmp(f2, "json") == 0;
			c->single = strcmp(f1, "single") == 0 || strcmp(f2, "single") == 0;
		} else if (strncmp(v, "absent:", 7) == 0 && c->nabsent < 4) {
			snprintf(c->absent[c->nabsent++], 256, "%.250s", v + 8);
		} else if (strncmp(v, "contains:", 9) == 0 && c->ncontains < 4) {
			snprintf(c->contains[c->ncontains++], 256, "%.250s", v + 10);
		} else if (strncmp(v, "known:", 6) == 0) {
			snprintf(c->known, sizeof(c->known), "%.250s", v + 7);
		} else if (strncmp(v, "wait:", 5) == 0) {
			c->wait_ms = atoi(v + 5);
		} else if (c->what[0] == '\0') {
			snprintf(c->what, sizeof(c->what), "%.250s", v);
		}
	}
	fclose(f);
	return 0;
}

/* Whether status `st` is one of `codes` ("400|413", "4xx"). */
static int code_allowed(const char *codes, int st)
{
	char buf[64], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", codes);
	for (char *t = strtok_r(buf, "|", &save); t != NULL; t = strtok_r(NULL, "|", &save)) {
		if (strlen(t) == 3 && t[1] == 'x' && t[2] == 'x' && st / 100 == t[0] - '0')
			return 1;
		if (atoi(t) == st)
			return 1;
	}
	return 0;
}

/* The server answers an ordinary request. */
static int alive(void)
{
	static const char req[] = "GET /api/v1alpha1/alice/shop/branches HTTP/1.1\r\nHost: x\r\n"
	                          "Connection: close\r\n\r\n";
	char out[8192];
	int closed;
	long n = t_raw_exchange(srv.port, req, sizeof(req) - 1, out, sizeof(out), 5000, &closed);

	return n > 0 && t_raw_status(out) == 200;
}

/* Run one case; print its line. Returns 1 when it passed, 2 when it failed as its `known` says,
 * 0 when it failed. */
static int run_case(const char *name, const corpus_case *c)
{
	static char out[262144];
	char why[1400] = "";
	int fd = t_raw_connect(srv.port, NULL), closed = 0, st, ok = 1, up, lines;

	if (fd < 0) {
		printf("FAIL %-28s cannot connect\n", name);
		return 0;
	}
	(void)t_raw_send(fd, c->req, c->len); /* the server may close before it has read all */
	t_raw_read(fd, out, sizeof(out), c->wait_ms, &closed);
	close(fd);
	st = t_raw_status(out);
	if (!code_allowed(c->codes, st)) {
		ok = 0;
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "; status %d, not %s", st,
		         c->codes);
	}
	if ((strcmp(c->conn, "close") == 0 && !closed) ||
	    (strcmp(c->conn, "open") == 0 && closed)) {
		ok = 0;
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "; connection %s",
		         closed ? "closed" : "left open");
	}
	if (c->json) {
		cJSON *j = cJSON_Parse(t_raw_body(out));
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "status");
		if (!cJSON_IsString(s) || strcmp(s->valuestring, "Error") != 0) {
			ok = 0;
			snprintf(why + strlen(why), sizeof(why) - strlen(why),
			         "; body not a JSON error");
		}
		cJSON_Delete(j);
	}
	if (c->single && t_raw_status_lines(out) != 1) {
		ok = 0;
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "; %d status lines",
		         t_raw_status_lines(out));
	}
	for (int i = 0; i < c->nabsent; i++)
		if (strstr(out, c->absent[i]) != NULL) {
			ok = 0;
			snprintf(why + strlen(why), sizeof(why) - strlen(why), "; has '%s'",
			         c->absent[i]);
		}
	for (int i = 0; i < c->ncontains; i++)
		if (strstr(out, c->contains[i]) == NULL) {
			ok = 0;
			snprintf(why + strlen(why), sizeof(why) - strlen(why), "; lacks '%s'",
			         c->contains[i]);
		}
	up = alive();
	if (!up) {
		ok = 0;
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
		         "; server not answering after");
	}
	lines = t_raw_status_lines(out);
	if (!ok && c->known[0] != '\0') {
		printf("KNOWN %-27s %d, %s: %s\n", name, st, closed ? "closed" : "open", c->known);
		return 2;
	}
	printf("%s %-28s %d, %s%s (expected %s %s%s%s)%s%s\n", ok ? "PASS" : "FAIL", name, st,
	       closed ? "closed" : "open", lines > 1 ? ", status line sent twice" : "", c->codes,
	       c->conn, c->json ? " json" : "", c->single ? " single" : "", ok ? "" : " --",
	       ok ? "" : why + 1);
	if (!ok)
		fprintf(stderr, "  %s: %s\n  got: %.300s\n", name, c->what, out);
	return ok;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *corpus_dir = TH_CORPUS;

static void test_corpus(void)
{
	char *names[512];
	int n = 0, passed = 0, known = 0;
	DIR *d = opendir(corpus_dir);
	struct dirent *e;

	CHECK(d != NULL);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL && n < 512) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".req") == 0)
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	CHECK(n >= 20);
	for (int i = 0; i < n; i++) {
		char path[4096], name[256];
		corpus_case c;
		snprintf(path, sizeof(path), "%s/%s", corpus_dir, names[i]);
		snprintf(name, sizeof(name), "%.*s", (int)strlen(names[i]) - 4, names[i]);
		if (load_case(&c, path) < 0) {
			CHECK(0);
		} else {
			int ok = run_case(name, &c);
			CHECK(ok != 0);
			passed += ok == 1;
			known += ok == 2;
		}
		free(c.req);
		free(names[i]);
	}
	printf("corpus: %d cases: %d passed, %d known deviations, %d failed\n", n, passed, known,
	       n - passed - known);
}

int main(int argc, char **argv)
{
	static const char *const flags[] = { "--header-timeout", "2", NULL };
	char *dir;
	t_resp r;

	if (argc > 1)
		corpus_dir = argv[1];
	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, flags) < 0)
		return 1;
	if ((alice = t_user_add(&srv, "alice")) == NULL) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	r = t_http(&srv,
	           AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\",\"visibility\":"
	                "\"public\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	RUN(test_corpus);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	t_rmdir(dir);
	TH_TEST_END();
}
