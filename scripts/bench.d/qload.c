/* qload.c: heavy SQL queries beside polls, against a running `tablehub serve` on loopback.
 *
 *   qload PORT OWNER/DB POLL_TOKEN OPERATION [HEAVY [SECONDS]]
 *
 * HEAVY client threads (default 100) each keep one never-ending recursive query in flight on
 * OWNER/DB for SECONDS (default 15), anonymously, from four loopback addresses (127.0.0.10-13, so
 * the per-address connection cap does not refuse them): each sends the query, waits for the answer
 * (the time limit, or a refusal), and sends it again (100 ms later after a refusal). Meanwhile one
 * poller asks, every 50 ms, for the upload poll of OPERATION and the pull list of OWNER/DB with
 * POLL_TOKEN, each on a new connection, and times the answer. Prints what the heavy queries got and
 * the polls' p50, p99 and max. Bounded: every read has a deadline (a query still waiting 1 s after
 * the run is given up), and an alarm ends the process SECONDS + 60 s after its start whatever
 * happens. Exit status 0 when every poll was answered 200.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#define MAX_HEAVY 1000
#define MAX_POLLS 100000

static int port;
static const char *db, *token, *op;
static int64_t end_us;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long n_sent, n_limit, n_429, n_503, n_other, n_left;

/* Connect to 127.0.0.1:port from `src` (NULL: any), send req, read the reply until the server
 * closes or deadline_us; returns the HTTP status, or -1. */
static int exchange(const char *src, const char *req, int64_t deadline_us)
{
	struct sockaddr_in sa;
	char buf[65536];
	size_t len = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	if (src != NULL) {
		inet_pton(AF_INET, src, &sa.sin_addr);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto done;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		goto done;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = (deadline_us - mono_us()) / 1000;
		ssize_t n;
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			goto done; /* out of time: no status */
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	if (len > 12 && strncmp(buf, "HTTP/1.", 7) == 0)
		status = atoi(buf + 9);
done:
	close(fd);
	return status;
}

static void *heavy(void *arg)
{
	char src[32], req[1024];
	long i = (long)arg;

	snprintf(src, sizeof(src), "127.0.0.%ld", 10 + i % 4);
	snprintf(
	        req, sizeof(req),
	        "GET /api/v1alpha1/%s/main?q=WITH%%20RECURSIVE%%20c(x)%%20AS%%20(SELECT%%201%%20"
	        "UNION%%20ALL%%20SELECT%%20x%%2B1%%20FROM%%20c)%%20SELECT%%20count(*)%%20FROM%%20c "
	        "HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	        db);
	while (mono_us() < end_us) {
		/* A query may wait in the queue and then run for its whole limit: the ones still
		 * waiting when the run ends are given up (counted as such). */
		int st = exchange(src, req, end_us + 1000000);
		pthread_mutex_lock(&mu);
		n_sent++;
		if (st < 0 && mono_us() >= end_us)
			n_left++;
		else if (st == 400)
			n_limit++;
		else if (st == 429)
			n_429++;
		else if (st == 503)
			n_503++;
		else
			n_other++;
		pthread_mutex_unlock(&mu);
		if (st != 400)
			sleep_ms(100);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static double lat[MAX_POLLS];
	static pthread_t th[MAX_HEAVY];
	char poll_req[2][1024];
	long nheavy = 100, seconds = 15, i;
	size_t npolls = 0, failed = 0, p99;

	if (argc < 5) {
		fprintf(stderr,
		        "usage: qload PORT OWNER/DB POLL_TOKEN OPERATION [HEAVY [SECONDS]]\n");
		return 2;
	}
	port = atoi(argv[1]);
	db = argv[2];
	token = argv[3];
	op = argv[4];
	if (argc > 5)
		nheavy = atol(argv[5]);
	if (argc > 6)
		seconds = atol(argv[6]);
	if (nheavy < 0 || nheavy > MAX_HEAVY || seconds < 1 || seconds > 600) {
		fprintf(stderr, "qload: HEAVY must be 0-%d and SECONDS 1-600\n", MAX_HEAVY);
		return 2;
	}
	alarm((unsigned)seconds + 60); /* whatever happens, this process ends */
	snprintf(poll_req[0], sizeof(poll_req[0]),
	         "GET /api/v1alpha1/%s/upload?operationName=%s HTTP/1.1\r\nHost: x\r\n"
	         "authorization: token %s\r\nConnection: close\r\n\r\n",
	         db, op, token);
	snprintf(poll_req[1], sizeof(poll_req[1]),
	         "GET /api/v1alpha1/%s/pulls HTTP/1.1\r\nHost: x\r\n"
	         "authorization: token %s\r\nConnection: close\r\n\r\n",
	         db, token);
	end_us = mono_us() + seconds * 1000000;
	for (i = 0; i < nheavy; i++)
		if (pthread_create(&th[i], NULL, heavy, (void *)i) != 0) {
			fprintf(stderr, "qload: cannot start client %ld\n", i);
			nheavy = i;
			break;
		}
	sleep_ms(500); /* let the heavy queries fill the server first */
	while (mono_us() < end_us && npolls < MAX_POLLS) {
		int64_t t0 = mono_us();
		int st = exchange("127.0.0.1", poll_req[npolls % 2], t0 + 10000000);
		lat[npolls++] = (double)(mono_us() - t0) / 1000.0;
		failed += st != 200;
		sleep_ms(50);
	}
	for (i = 0; i < nheavy; i++)
		pthread_join(th[i], NULL);
	qsort(lat, npolls, sizeof(lat[0]), cmp_double);
	printf("heavy queries: %ld clients for %ld s: %ld sent; %ld ended by the time limit, "
	       "%ld refused 429, %ld refused 503, %ld other, %ld still waiting at the end\n",
	       nheavy, seconds, n_sent, n_limit, n_429, n_503, n_other, n_left);
	if (npolls == 0) {
		printf("polls: none\n");
		return 1;
	}
	p99 = (npolls * 99 + 99) / 100 - 1; /* nearest rank */
	printf("polls beside them: %zu (upload poll and pull list, every 50 ms), %zu failed: "
	       "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       npolls, failed, lat[npolls / 2], lat[p99], lat[npolls - 1]);
	return failed == 0 ? 0 : 1;
}
