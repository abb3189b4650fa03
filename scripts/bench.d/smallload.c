/* smallload.c: many small uploads against a running `tablehub serve`, from one client process.
 *
 *   smallload BASE TOKEN CLIENTS SECONDS POLL_MS OWNER DB...
 *   smallload --fsync DIR
 *
 * CLIENTS threads each loop for SECONDS: build a 100-row CSV (rows of scripts/bench.d/gen-csv's
 * shape, distinct per upload), POST it to BASE/OWNER/DB/upload as a new table (importOp Create,
 * primary key id), then poll the operation every POLL_MS until it is Completed. Client i uses
 * DB number i modulo the number of DBs given. Each thread keeps one libcurl handle, so its
 * requests reuse one keep-alive connection: the time measured is the server's, not a process
 * start or a TCP handshake per request. An upload counts when it completed before the end; the
 * latency is from the start of its POST to the poll that saw Completed.
 *
 * Prints one line: "uploads N seconds S rate R p50 MS p95 MS" (uploads a second, latency in ms).
 * Exits 1 when any request failed or any import did not complete.
 *
 * --fsync DIR: the cost of one durable small write on DIR's disk: 200 times a 4 KiB append and
 * fdatasync to one file, then prints "fsync p50 MS p95 MS".
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#define MAX_CLIENTS 256
#define MAX_LAT 200000
#define ROWS 100

static const char *base, *token, *owner;
static char **dbs;
static int ndbs, poll_ms;
static int64_t end_us;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static double lat[MAX_LAT];
static size_t nlat;
static int failed;

struct buf {
	char *p;
	size_t n, cap;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t len = size * nmemb;

	if (b->n + len + 1 > b->cap) {
		size_t cap = (b->n + len + 1) * 2;
		char *p = realloc(b->p, cap);
		if (p == NULL)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, len);
	b->n += len;
	b->p[b->n] = '\0';
	return len;
}

/* A 100-row CSV of gen-csv's columns, its keys and values made distinct by (client, seq). */
static size_t make_csv(char *out, size_t size, long client, long seq)
{
	static const char *const city[] = { "Amsterdam", "Berlin",   "Cairo",  "Delhi",
		                            "Edinburgh", "Florence", "Geneva", "Helsinki" };
	static const char *const word[] = { "alpha", "bravo", "charlie", "delta",
		                            "echo",  "golf",  "hotel",   "kilo" };
	size_t n = (size_t)snprintf(out, size,
	                            "id,name,city,amount,qty,rate,day,updated_at,active,note\n");
	long i;

	for (i = 0; i < ROWS && n < size; i++) {
		long k = seq * 1000 + i * 7 + client;
		n += (size_t)snprintf(
		        out + n, size - n,
		        "%ld,\"%s, %s\",%s,%.2f,%ld,%.6f,%04ld-%02ld-%02ld,"
		        "2024-%02ld-%02ld %02ld:%02ld:%02ld,%s,\"note %ld: \"\"%s\"\"\"\n",
		        k, word[k % 8], word[(k / 8) % 8], city[k % 7],
		        (double)(k * 7919 % 1000000) / 100.0, k % 1000, (double)(k % 9973) / 9973.0,
		        2000 + k % 25, k % 12 + 1, k % 28 + 1, k % 12 + 1, k % 28 + 1, k % 24,
		        k % 60, (k * 7) % 60, k % 3 ? "true" : "false", k, word[(k + 3) % 8]);
	}
	return n < size ? n : size - 1;
}

/* One request on handle h; the reply body in b. Returns the HTTP status, or -1. */
static long perform(CURL *h, struct buf *b)
{
	long status = -1;

	b->n = 0;
	if (b->p)
		b->p[0] = '\0';
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	if (curl_easy_perform(h) != CURLE_OK)
		return -1;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static void fail(const char *what, long status, const struct buf *b)
{
	pthread_mutex_lock(&mu);
	if (failed++ < 5)
		fprintf(stderr, "smallload: %s: HTTP %ld: %.300s\n", what, status,
		        b->p ? b->p : "");
	pthread_mutex_unlock(&mu);
}

static void *client(void *arg)
{
	long id = (long)arg, seq;
	const char *db = dbs[id % ndbs];
	char url[512], poll_url[1024], auth[256], params[256], table[64], op[256], st[32];
	char *csv = malloc(ROWS * 200 + 200), *esc;
	struct buf b = { NULL, 0, 0 };
	struct curl_slist *hdr;
	CURL *h = curl_easy_init();

	if (h == NULL || csv == NULL) {
		fail("cannot start a client", 0, &b);
		free(csv);
		return NULL;
	}
	snprintf(auth, sizeof(auth), "authorization: token %s", token);
	hdr = curl_slist_append(NULL, auth);
	snprintf(url, sizeof(url), "%s/%s/%s/upload", base, owner, db);
	for (seq = 0; mono_us() < end_us; seq++) {
		int64_t t0 = mono_us();
		curl_mime *mime = curl_mime_init(h);
		curl_mimepart *part;
		size_t len = make_csv(csv, ROWS * 200 + 200, id, seq);
		long status;

		snprintf(table, sizeof(table), "t_%ld_%ld", id, seq);
		snprintf(params, sizeof(params),
		         "{\"tableName\":\"%s\",\"fileName\":\"small.csv\",\"branchName\":"
		         "\"main\",\"fileType\":\"Csv\",\"importOp\":\"Create\","
		         "\"primaryKeys\":[\"id\"]}",
		         table);
		part = curl_mime_addpart(mime);
		curl_mime_name(part, "params");
		curl_mime_data(part, params, CURL_ZERO_TERMINATED);
		part = curl_mime_addpart(mime);
		curl_mime_name(part, "file");
		curl_mime_filename(part, "small.csv");
		curl_mime_data(part, csv, len);
		curl_easy_reset(h);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
		status = perform(h, &b);
		curl_mime_free(mime);
		json_field(op, sizeof(op), b.p, "operation_name");
		if (status != 200 || op[0] == '\0') {
			fail("POST upload", status, &b);
			break;
		}
		esc = curl_easy_escape(h, op, 0);
		snprintf(poll_url, sizeof(poll_url), "%s?branchName=main&operationName=%s", url,
		         esc);
		curl_free(esc);
		curl_easy_reset(h);
		curl_easy_setopt(h, CURLOPT_URL, poll_url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		for (;;) {
			status = perform(h, &b);
			json_field(st, sizeof(st), b.p, "job_status");
			if (status != 200 || strcmp(st, "Failed") == 0 || st[0] == '\0') {
				fail("poll", status, &b);
				goto done;
			}
			if (strcmp(st, "Completed") == 0)
				break;
			/* Past the end by far (a stuck queue): give up on it. */
			if (mono_us() > end_us + 30000000) {
				fail("poll: not Completed 30 s after the end", status, &b);
				goto done;
			}
			sleep_ms(poll_ms);
		}
		if (mono_us() <= end_us) {
			pthread_mutex_lock(&mu);
			if (nlat < MAX_LAT)
				lat[nlat++] = (double)(mono_us() - t0) / 1000.0;
			pthread_mutex_unlock(&mu);
		}
	}
done:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	free(b.p);
	free(csv);
	return NULL;
}

/* Nearest-rank percentile q (0-100) of the sorted v[n]. */
static double pct(const double *v, size_t n, int q)
{
	size_t r = (n * (size_t)q + 99) / 100;

	return n == 0 ? 0 : v[r > 0 ? r - 1 : 0];
}

static int fsync_cost(const char *dir)
{
	static double t[200];
	char path[4096], block[4096];
	int fd, i;

	snprintf(path, sizeof(path), "%s/smallload-fsync.tmp", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		perror("smallload: open");
		return 1;
	}
	memset(block, 'x', sizeof(block));
	for (i = 0; i < 200; i++) {
		int64_t t0 = mono_us();
		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) ||
		    fdatasync(fd) < 0) {
			perror("smallload: write");
			close(fd);
			return 1;
		}
		t[i] = (double)(mono_us() - t0) / 1000.0;
	}
	close(fd);
	unlink(path);
	qsort(t, 200, sizeof(t[0]), cmp_double);
	printf("fsync p50 %.3f p95 %.3f\n", pct(t, 200, 50), pct(t, 200, 95));
	return 0;
}

int main(int argc, char **argv)
{
	static pthread_t th[MAX_CLIENTS];
	long nclients, seconds, i;
	int64_t t0;
	double s;

	if (argc == 3 && strcmp(argv[1], "--fsync") == 0)
		return fsync_cost(argv[2]);
	if (argc < 8) {
		fprintf(stderr, "usage: smallload BASE TOKEN CLIENTS SECONDS POLL_MS OWNER DB...\n"
		                "       smallload --fsync DIR\n");
		return 2;
	}
	base = argv[1];
	token = argv[2];
	nclients = atol(argv[3]);
	seconds = atol(argv[4]);
	poll_ms = atoi(argv[5]);
	owner = argv[6];
	dbs = argv + 7;
	ndbs = argc - 7;
	if (nclients < 1 || nclients > MAX_CLIENTS || seconds < 1 || seconds > 600 || poll_ms < 0) {
		fprintf(stderr, "smallload: CLIENTS must be 1-%d, SECONDS 1-600, POLL_MS >= 0\n",
		        MAX_CLIENTS);
		return 2;
	}
	alarm((unsigned)seconds + 90); /* whatever happens, this process ends */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	t0 = mono_us();
	end_us = t0 + seconds * 1000000;
	for (i = 0; i < nclients; i++)
		if (pthread_create(&th[i], NULL, client, (void *)i) != 0) {
			fprintf(stderr, "smallload: cannot start client %ld\n", i);
			nclients = i;
			failed++;
			break;
		}
	for (i = 0; i < nclients; i++)
		pthread_join(th[i], NULL);
	curl_global_cleanup();
	s = (double)(end_us - t0) / 1e6;
	qsort(lat, nlat, sizeof(lat[0]), cmp_double);
	printf("uploads %zu seconds %.1f rate %.1f p50 %.1f p95 %.1f\n", nlat, s, (double)nlat / s,
	       pct(lat, nlat, 50), pct(lat, nlat, 95));
	return failed ? 1 : 0;
}
