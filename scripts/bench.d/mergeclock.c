/* mergeclock.c: the time of one pull request merge, from one client process.
 *
 *   mergeclock BASE TOKEN OWNER/DB PULL_ID
 *
 * POSTs BASE/OWNER/DB/pulls/PULL_ID/merge, then polls BASE/OWNER/DB/pulls/PULL_ID/merge?
 * operationName=... every 0.5 ms until job_status is Completed, on one libcurl handle (one
 * keep-alive connection, opened before the clock starts), and prints the milliseconds from the
 * start of the POST to the poll that saw Completed. Measured in the process, so neither process
 * starts nor shell loops count. Exits 1 when a request fails or the merge does not complete.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"

typedef struct body {
	char buf[65536];
	size_t n;
} body;

static size_t on_data(char *p, size_t size, size_t nmemb, void *payload)
{
	body *b = payload;
	size_t n = size * nmemb, room = sizeof(b->buf) - 1 - b->n;

	memcpy(b->buf + b->n, p, n < room ? n : room);
	b->n += n < room ? n : room;
	b->buf[b->n] = '\0';
	return n;
}

static int request(CURL *h, const char *url, int post, body *b)
{
	long code = 0;

	b->n = 0;
	b->buf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (post) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	if (curl_easy_perform(h) != CURLE_OK)
		return -1;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	return code >= 200 && code < 300 ? 0 : -1;
}

int main(int argc, char **argv)
{
	char url[2048], poll[4096], auth[512], op[256], st[64];
	struct curl_slist *hdr = NULL;
	struct timespec pause = { 0, 500000 };
	body b;
	CURL *h;
	double t0;

	if (argc != 5) {
		fprintf(stderr, "usage: mergeclock BASE TOKEN OWNER/DB PULL_ID\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	h = curl_easy_init();
	snprintf(auth, sizeof(auth), "authorization: token %s", argv[2]);
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "content-type: application/json");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	/* The connection is opened before the clock starts. */
	snprintf(url, sizeof(url), "%s/%s/pulls/%s", argv[1], argv[3], argv[4]);
	if (request(h, url, 0, &b) < 0) {
		fprintf(stderr, "mergeclock: GET %s failed: %s\n", url, b.buf);
		return 1;
	}
	snprintf(url, sizeof(url), "%s/%s/pulls/%s/merge", argv[1], argv[3], argv[4]);
	t0 = (double)mono_us() / 1e3;
	if (request(h, url, 1, &b) < 0) {
		fprintf(stderr, "mergeclock: merge request failed: %s\n", b.buf);
		return 1;
	}
	json_field(op, sizeof(op), b.buf, "operation_name");
	if (op[0] == '\0') {
		fprintf(stderr, "mergeclock: no operation in %s\n", b.buf);
		return 1;
	}
	{
		char *esc = curl_easy_escape(h, op, 0);
		snprintf(poll, sizeof(poll), "%s?operationName=%s", url, esc);
		curl_free(esc);
	}
	for (;;) {
		if (request(h, poll, 0, &b) < 0) {
			fprintf(stderr, "mergeclock: poll failed: %s\n", b.buf);
			return 1;
		}
		json_field(st, sizeof(st), b.buf, "job_status");
		if (strcmp(st, "Completed") == 0)
			break;
		if (strcmp(st, "Failed") == 0 || st[0] == '\0') {
			fprintf(stderr, "mergeclock: merge failed: %s\n", b.buf);
			return 1;
		}
		nanosleep(&pause, NULL);
	}
	printf("%.2f\n", (double)mono_us() / 1e3 - t0);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return 0;
}
