/* guard.c: what protects the HTTP threads from slow and malformed clients.
 *
 * libmicrohttpd 0.9.75 has only an idle timeout, which every byte resets: a client sending one
 * header byte every few seconds holds its connection forever, and ~1,000 of them take every
 * connection and file descriptor. So each TCP connection gets a record here (made and dropped by
 * MHD_OPTION_NOTIFY_CONNECTION, found again through the connection's socket context) saying which
 * phase its current request is in, and a watchdog thread checks the deadlines twice a second:
 *
 *   HEAD  from the connection's start, or the end of its previous request, until the request head
 *         is complete (the first call of the access handler): --header-timeout seconds in all.
 *   BODY  while the body streams in: each 64 KiB of it within --body-timeout seconds.
 *   BUSY  a handler runs or the reply is on its way: no deadline here (MHD's idle timeout covers
 *         a client that stops reading).
 *
 * A connection past its deadline gets a 408 JSON reply written straight to its socket and is shut
 * down; MHD then sees the end of the stream and closes it the usual way. Writing beside MHD is
 * safe because nothing else writes to a connection before its reply is queued, and the move to
 * BUSY (just before a reply can be queued) takes the same mutex as the watchdog, so the two never
 * interleave. MHD calls the CLOSED notification before it closes the descriptor, and the record is
 * unlinked there under the mutex: the watchdog never shuts down a descriptor that was reused.
 *
 * Also here: the checks of a request's framing that RFC 9112 §6.3 asks for (run on the first call,
 * before routing), and the URL unescaper that notices an encoded NUL, which MHD would otherwise
 * let truncate the path silently.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "tablehub/log.h"

#define BODY_STEP (64 * 1024) /* the body must grow by this much per --body-timeout */
#define TICK_MS 500

typedef enum { PHASE_HEAD, PHASE_BODY, PHASE_BUSY } conn_phase;

struct api_conn {
	api_conn *prev, *next;
	int fd;
	conn_phase phase;
	int killed;         /* the watchdog shut it down: answer nothing more */
	int url_nul;        /* the current request's URL decoded to a NUL byte */
	unsigned requests;  /* requests ended on this connection */
	int64_t since_ms;   /* start of the phase, or of the current BODY_STEP of body */
	uint64_t body_mark; /* body bytes received at since_ms */
	uint64_t body_seen;
	char addr[INET6_ADDRSTRLEN]; /* the client's address, for the per-address limits */
};

struct api_guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int started, stop;
	api_conn *head;
	int64_t header_ms, body_ms;
	void (*tick)(void *); /* extra periodic work (the upload sweep), on the watchdog thread */
	void *tick_cls;
	int64_t tick_every_ms, tick_last_ms;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- deadlines ------------------------------------------------------------------------------- */

/* Answer 408 on the socket and shut it down. Called with g->mu held, never in PHASE_BUSY. A
 * kept-alive connection waiting for its next request is closed without a word, as any server
 * ends an idle keep-alive: a reply there could be taken for the answer to a request in flight. */
static void kill_conn(api_conn *c, const char *why)
{
	char msg[512], body[300];
	int n, blen;

	c->killed = 1;
	if (c->phase == PHASE_HEAD && c->requests > 0) {
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	blen = snprintf(body, sizeof(body),
	                "{\"status\":\"Error\",\"message\":\"%s\",\"code\":\"ETIMEOUT\"}", why);
	n = snprintf(msg, sizeof(msg),
	             "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
	             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
	             blen, body);
	/* Best effort: a client that does not read gets the shutdown alone. */
	(void)send(c->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(c->fd, SHUT_RDWR);
}

static void *watchdog(void *arg)
{
	api_guard *g = arg;
	char why[160];

	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec until;
		int64_t now = mono_ms();
		size_t heads = 0, bodies = 0;

		for (api_conn *c = g->head; c != NULL; c = c->next) {
			if (c->killed || c->phase == PHASE_BUSY)
				continue;
			if (c->phase == PHASE_HEAD && g->header_ms > 0 &&
			    now - c->since_ms > g->header_ms) {
				snprintf(why, sizeof(why),
				         "request head not complete within %lld s: connection "
				         "closed",
				         (long long)(g->header_ms / 1000));
				kill_conn(c, why);
				heads += c->requests == 0;
			} else if (c->phase == PHASE_BODY && g->body_ms > 0 &&
			           now - c->since_ms > g->body_ms) {
				snprintf(why, sizeof(why),
				         "request body too slow: less than %d KiB in %lld s: "
				         "connection closed",
				         BODY_STEP / 1024, (long long)(g->body_ms / 1000));
				kill_conn(c, why);
				bodies++;
			}
		}
		if (heads + bodies > 0)
			TH_LOG(TH_LOG_INFO,
			       "closed %zu connection(s) past the head deadline, %zu "
			       "past the body deadline",
			       heads, bodies);
		if (g->tick != NULL && now - g->tick_last_ms >= g->tick_every_ms) {
			g->tick_last_ms = now;
			pthread_mutex_unlock(
			        &g->mu); /* the tick may be slow: never under the lock */
			g->tick(g->tick_cls);
			pthread_mutex_lock(&g->mu);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (!g->stop)
			pthread_cond_timedwait(&g->cv, &g->mu, &until);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int api_guard_new(api_guard **out, unsigned header_timeout_s, unsigned body_timeout_s,
                  th_error *err)
{
	api_guard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->header_ms = (int64_t)header_timeout_s * 1000;
	g->body_ms = (int64_t)body_timeout_s * 1000;
	*out = g;
	return TH_OK;
}

void api_guard_set_tick(api_guard *g, void (*tick)(void *), void *cls, unsigned every_ms)
{
	g->tick = tick;
	g->tick_cls = cls;
	g->tick_every_ms = every_ms;
	g->tick_last_ms = mono_ms();
}

int api_guard_start(api_guard *g, th_error *err)
{
	int rc = pthread_create(&g->thread, NULL, watchdog, g);

	if (rc != 0)
		return th_error_set(err, TH_ERROR, "cannot start the connection watchdog: %s",
		                    strerror(rc));
	g->started = 1;
	return TH_OK;
}

void api_guard_free(api_guard *g)
{
	if (g == NULL)
		return;
	if (g->started) {
		pthread_mutex_lock(&g->mu);
		g->stop = 1;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->mu);
		pthread_join(g->thread, NULL);
	}
	/* MHD reported every connection closed before this (the daemon is stopped first). */
	while (g->head != NULL) {
		api_conn *c = g->head;
		g->head = c->next;
		free(c);
	}
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* --- MHD callbacks --------------------------------------------------------------------------- */

static void addr_text(char out[INET6_ADDRSTRLEN], const struct sockaddr *sa)
{
	out[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          INET6_ADDRSTRLEN);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          out, INET6_ADDRSTRLEN);
}

void api_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe)
{
	api_guard *g = cls;
	api_conn *c = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd, *addr;
		/* Without memory for a record the connection runs unguarded, as before. */
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return;
		fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		addr = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		c->fd = fd ? fd->connect_fd : -1;
		addr_text(c->addr, addr ? addr->client_addr : NULL);
		c->phase = PHASE_HEAD;
		c->since_ms = mono_ms();
		if (c->fd < 0) {
			free(c);
			return;
		}
		pthread_mutex_lock(&g->mu);
		c->next = g->head;
		if (g->head != NULL)
			g->head->prev = c;
		g->head = c;
		pthread_mutex_unlock(&g->mu);
		*socket_context = c;
		return;
	}
	if (c == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&g->mu);
	*socket_context = NULL;
	free(c);
}

size_t api_guard_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	const union MHD_ConnectionInfo *ci;
	size_t n = MHD_http_unescape(s);

	(void)cls;
	if (memchr(s, '\0', n) != NULL &&
	    (ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) != NULL &&
	    ci->socket_context != NULL)
		((api_conn *)ci->socket_context)->url_nul = 1;
	return n;
}

/* --- phases, from the access handler --------------------------------------------------------- */

api_conn *api_conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

const char *api_conn_addr(const api_conn *c)
{
	return c ? c->addr : "";
}

int api_conn_take_url_nul(api_conn *c)
{
	int r;

	if (c == NULL)
		return 0;
	r = c->url_nul;
	c->url_nul = 0;
	return r;
}

int api_conn_body_phase(api_guard *g, api_conn *c)
{
	int killed;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&g->mu);
	c->phase = PHASE_BODY;
	c->since_ms = mono_ms();
	c->body_mark = c->body_seen = 0;
	killed = c->killed;
	pthread_mutex_unlock(&g->mu);
	return killed ? -1 : 0;
}

int api_conn_body_data(api_guard *g, api_conn *c, size_t len)
{
	int killed;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&g->mu);
	c->body_seen += len;
	if (c->body_seen - c->body_mark >= BODY_STEP) {
		c->body_mark = c->body_seen;
		c->since_ms = mono_ms();
	}
	killed = c->killed;
	pthread_mutex_unlock(&g->mu);
	return killed ? -1 : 0;
}

int api_conn_busy(api_guard *g, api_conn *c)
{
	int killed;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&g->mu);
	c->phase = PHASE_BUSY;
	killed = c->killed;
	pthread_mutex_unlock(&g->mu);
	return killed ? -1 : 0;
}

void api_conn_done(api_guard *g, api_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	c->phase = PHASE_HEAD; /* the next request on this connection starts its clock now */
	c->since_ms = mono_ms();
	c->requests++;
	c->url_nul = 0;
	pthread_mutex_unlock(&g->mu);
}

/* --- framing (RFC 9112 §6.3) ----------------------------------------------------------------- */

typedef struct framing {
	unsigned n_cl, n_te, n_host;
	const char *cl, *te;
	const char *spaced; /* a header name with whitespace in it, NULL when none */
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
	framing *f = cls;

	(void)kind;
	if (f->spaced == NULL && strpbrk(key, " \t") != NULL)
		f->spaced = key;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		f->n_host++;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		f->n_cl++;
		f->cl = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->n_te++;
		f->te = value;
	}
	return MHD_YES;
}

int api_check_framing(th_req *req, th_error *err)
{
	framing f = { 0 };

	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_framing, &f);
	/* Two lengths, or a length beside chunking, let a proxy and this server disagree on where
	 * the body ends: whatever one of them takes for body the other runs as the next request. */
	if (f.spaced != NULL) /* MHD keeps "Content-Length " as another header, a proxy may not */
		return th_error_set(
		        err, TH_EINVALID,
		        "header name '%.40s' holds whitespace: none may come before the "
		        "colon",
		        f.spaced);
	if (f.n_host > 1 || (f.n_host == 0 && req->http11))
		return th_error_set(err, TH_EINVALID,
		                    "an HTTP/1.1 request needs exactly one Host "
		                    "header");
	if (f.n_cl > 1)
		return th_error_set(err, TH_EINVALID,
		                    "more than one Content-Length header: send exactly one");
	if (f.n_te > 1)
		return th_error_set(err, TH_EINVALID,
		                    "more than one Transfer-Encoding header: send at most one");
	if (f.n_te == 1 && f.n_cl == 1)
		return th_error_set(err, TH_EINVALID,
		                    "both Transfer-Encoding and Content-Length: send one of them");
	if (f.n_te == 1 && strcasecmp(f.te, "chunked") != 0)
		return th_error_set(
		        err, TH_EINVALID,
		        "Transfer-Encoding '%.40s' is not supported: use 'chunked' alone", f.te);
	/* MHD answers a malformed length itself before the handler runs; kept for safety. */
	if (f.n_cl == 1 && (f.cl[0] == '\0' || strspn(f.cl, "0123456789") != strlen(f.cl)))
		return th_error_set(err, TH_EINVALID,
		                    "Content-Length must be a decimal number of bytes");
	return TH_OK;
}
