/* test_api_trickle.c: slow clients cannot lock others out. A real `tablehub serve` (head deadline
 * 3 s, body deadline 2 s, the default cap of 64 connections per address) gets 1,100 connections
 * from 127.0.0.2 that each send a request head one byte a second, more than the ~1,024 file
 * descriptors that used to run out. Meanwhile 100 ordinary requests from 127.0.0.1 must all be
 * answered quickly (their p99 is printed), the connections over the per-address cap are refused at
 * once, and every trickling connection is closed by the head deadline, with a 408 JSON reply. A
 * request whose body trickles is closed by the body deadline.
 *
 * TH_TRICKLE_CONNS in the environment changes the 1,100 (scripts/reliability uses 2,000).
 *
 * The client here is bounded: a fixed number of loopback connections, one byte each per second,
 * for at most a few seconds past the deadline, all closed before the test ends. */
#include <pthread.h>
#include <sys/resource.h>

#include "../harness.h"
#include "server.h"
#include "raw.h"

static t_server srv;
static char *dir, *alice;

#define HEAD_S 3
#define BODY_S 2
#define PER_IP 64

typedef struct trickler {
	int n;
	int *fd;
	int64_t *closed_us; /* 0 while open */
	int64_t start_us;
	volatile int stop;
	char first_reply[1024]; /* what the first closed-by-deadline connection received */
} trickler;

static void *trickle(void *arg)
{
	trickler *t = arg;

	while (!t->stop) {
		int open = 0;
		for (int i = 0; i < t->n; i++) {
			struct pollfd p = { t->fd[i], POLLIN, 0 };
			if (t->closed_us[i] != 0)
				continue;
			if (poll(&p, 1, 0) > 0) {
				char buf[1024];
				ssize_t got = recv(t->fd[i], buf, sizeof(buf) - 1, MSG_DONTWAIT);
				if (got > 0 && t->first_reply[0] == '\0') {
					buf[got] = '\0';
					memcpy(t->first_reply, buf, (size_t)got + 1);
				}
				if (got <= 0 || (p.revents & (POLLHUP | POLLERR))) {
					t->closed_us[i] = t_mono_us();
					continue;
				}
			}
			if (send(t->fd[i], "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
			    errno != EAGAIN) {
				t->closed_us[i] = t_mono_us();
				continue;
			}
			open++;
		}
		if (open == 0)
			break;
		t_sleep_ms(1000 / 4); /* four rounds a second: each connection sends ~4 B/s */
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_trickling_heads(void)
{
	static const char head[] = "GET /api/v1alpha1/user HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	struct rlimit rl;
	trickler t;
	pthread_t th;
	int64_t lat[100];
	int ok = 0, refused_fast = 0, closed_by_deadline = 0, still_open = 0;
	char req[512];

	memset(&t, 0, sizeof(t));
	t.n = 1100;
	/* scripts/reliability asks for more (2,000) through the environment. */
	if (getenv("TH_TRICKLE_CONNS") != NULL && atoi(getenv("TH_TRICKLE_CONNS")) > PER_IP)
		t.n = atoi(getenv("TH_TRICKLE_CONNS"));
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)t.n + 200 && rl.rlim_max >= (rlim_t)t.n + 200) {
		rl.rlim_cur = (rlim_t)t.n + 200;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < (rlim_t)t.n + 200) {
		t.n = (int)rl.rlim_cur - 200;
		printf("only %d trickling connections: the file descriptor limit is %llu\n", t.n,
		       (unsigned long long)rl.rlim_cur);
	}
	t.fd = calloc((size_t)t.n, sizeof(int));
	t.closed_us = calloc((size_t)t.n, sizeof(int64_t));
	t.start_us = t_mono_us();
	for (int i = 0; i < t.n; i++) {
		t.fd[i] = t_raw_connect(srv.port, "127.0.0.2");
		CHECK(t.fd[i] >= 0);
		if (t.fd[i] < 0) {
			t.n = i;
			break;
		}
		if (send(t.fd[i], head, sizeof(head) - 1, MSG_NOSIGNAL) < 0)
			t.closed_us[i] = t_mono_us();
	}
	pthread_create(&th, NULL, trickle, &t);
	t_sleep_ms(500);

	/* Ordinary requests from another address, one connection each. */
	snprintf(req, sizeof(req),
	         "GET /api/v1alpha1/user HTTP/1.1\r\nHost: x\r\nauthorization: token %s\r\n"
	         "Connection: close\r\n\r\n",
	         alice);
	for (int i = 0; i < 100; i++) {
		char out[4096];
		int closed;
		int64_t t0 = t_mono_us();
		long n =
		        t_raw_exchange(srv.port, req, strlen(req), out, sizeof(out), 5000, &closed);
		lat[i] = t_mono_us() - t0;
		ok += n > 0 && t_raw_status(out) == 200 && strstr(out, "\"alice\"") != NULL;
	}
	qsort(lat, 100, sizeof(lat[0]), cmp_i64);
	printf("normal requests while %d connections trickle from one address: %d/100 answered, "
	       "p50 %.1f ms, p99 %.1f ms\n",
	       t.n, ok, (double)lat[49] / 1000.0, (double)lat[98] / 1000.0);
	CHECK(ok == 100);
	CHECK(lat[98] < 1000 * 1000); /* generous for sanitizer builds on a busy machine */

	/* Every trickling connection ends by the head deadline (plus the watchdog's tick). */
	for (int waited = 0; waited < (HEAD_S + 4) * 10; waited++) {
		int open = 0;
		for (int i = 0; i < t.n; i++)
			open += t.closed_us[i] == 0;
		if (open == 0)
			break;
		t_sleep_ms(100);
	}
	t.stop = 1;
	pthread_join(th, NULL);
	for (int i = 0; i < t.n; i++) {
		int64_t after = t.closed_us[i] - t.start_us;
		if (t.closed_us[i] == 0)
			still_open++;
		else if (after < 1500 * 1000)
			refused_fast++;
		else if (after < (HEAD_S + 3) * 1000 * 1000)
			closed_by_deadline++;
		close(t.fd[i]);
	}
	printf("trickling connections: %d refused at once, %d closed by the head deadline, %d "
	       "still open\n",
	       refused_fast, closed_by_deadline, still_open);
	CHECK(still_open == 0);
	CHECK(refused_fast >= t.n - PER_IP);
	CHECK(closed_by_deadline >= 1 && closed_by_deadline <= PER_IP);
	CHECK_CONTAINS(t.first_reply, "HTTP/1.1 408");
	CHECK_CONTAINS(t.first_reply, "\"code\":\"ETIMEOUT\"");
	CHECK_CONTAINS(t.first_reply, "request head not complete within 3 s");
	free(t.fd);
	free(t.closed_us);
}

static void test_trickling_body(void)
{
	char head[512], out[2048];
	int fd, closed = 0;
	int64_t t0;
	size_t n = 0;

	snprintf(head, sizeof(head),
	         "POST /api/v1alpha1/database HTTP/1.1\r\nHost: x\r\nauthorization: token %s\r\n"
	         "Content-Length: 60000\r\n\r\n{\"ownerName\":",
	         alice);
	fd = t_raw_connect(srv.port, NULL);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	t0 = t_mono_us();
	CHECK(t_raw_send(fd, head, strlen(head)) == 0);
	/* Ten bytes a second: far below 64 KiB per BODY_S seconds. */
	while (!closed && t_mono_us() - t0 < (BODY_S + 4) * 1000000LL) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 1000) > 0) {
			n = t_raw_read(fd, out, sizeof(out), 500, &closed);
			break;
		}
		(void)send(fd, "          ", 10, MSG_NOSIGNAL);
	}
	out[n] = '\0';
	CHECK(closed);
	CHECK(t_mono_us() - t0 < (BODY_S + 3) * 1000000LL);
	CHECK_CONTAINS(out, "HTTP/1.1 408");
	CHECK_CONTAINS(out, "request body too slow");
	close(fd);
}

/* Kept-alive connections idle past the head deadline are closed without a reply. */
static void test_idle_keep_alive(void)
{
	char req[512], out[4096];
	int fd = t_raw_connect(srv.port, NULL), closed = 0;

	snprintf(req, sizeof(req),
	         "GET /api/v1alpha1/user HTTP/1.1\r\nHost: x\r\nauthorization: token %s\r\n\r\n",
	         alice);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(t_raw_send(fd, req, strlen(req)) == 0);
	t_raw_read(fd, out, sizeof(out), 500, &closed);
	CHECK(t_raw_status(out) == 200 && !closed);
	t_raw_read(fd, out, sizeof(out), (HEAD_S + 2) * 1000, &closed);
	CHECK(closed);
	CHECK(out[0] == '\0');
	close(fd);
}

int main(void)
{
	static const char *const flags[] = { "--header-timeout", "3", "--body-timeout", "2", NULL };

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, flags) < 0)
		return 1;
	if ((alice = t_user_add(&srv, "alice")) == NULL) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	RUN(test_trickling_heads);
	RUN(test_trickling_body);
	RUN(test_idle_keep_alive);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	t_rmdir(dir);
	TH_TEST_END();
}
