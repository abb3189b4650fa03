/* server.c: the libmicrohttpd daemon and the per-request memory pool.
 *
 * MHD runs with its own threads: a pool of epoll loops (MHD_USE_INTERNAL_POLLING_THREAD |
 * MHD_USE_EPOLL, MHD_OPTION_THREAD_POOL_SIZE = 4 per CPU, at least 8), each serving many keep-alive
 * connections.
 * This is what keeps the poll endpoint fast with many clients: no thread per connection, no
 * context switch per request. Handlers do short blocking work (a SQLite lookup, a write to the
 * upload file); long work goes elsewhere: imports and merges to the job workers of src/jobs.c, SQL
 * reads to the query pool (qpool.c), which suspends the connection while a worker runs the query.
 *
 * Connections are limited three ways: per client address (MHD refuses the excess at once), in
 * all (below the descriptor limit, which is raised to its hard limit at start, so repositories,
 * SQLite, upload files and the listener always have descriptors left), and in time (guard.c: a
 * deadline for the request head and for the body's progress).
 *
 * The pool is a bump allocator: blocks of 4 KiB or more, freed together when MHD reports the
 * request complete, so handlers allocate freely and never free.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "limit.h"
#include "tablehub/hash.h"
#include "tablehub/log.h"

/* --- pool ------------------------------------------------------------------------------------ */

struct api_pool_block {
	api_pool_block *next;
	size_t size;
	_Alignas(16) char data[];
};

#define POOL_BLOCK 4096

void *api_pool_alloc(api_pool *p, size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;
	char *r;

	if (need < n)
		return NULL;
	if (p->cur == NULL || (size_t)(p->end - p->cur) < need) {
		size_t size = need > POOL_BLOCK ? need : POOL_BLOCK;
		api_pool_block *b = malloc(sizeof(*b) + size);
		if (b == NULL)
			return NULL;
		b->size = size;
		b->next = p->head;
		p->head = b;
		p->cur = b->data;
		p->end = b->data + size;
	}
	r = p->cur;
	p->cur += need;
	memset(r, 0, n);
	return r;
}

char *api_pool_strndup(api_pool *p, const char *s, size_t n)
{
	char *r = api_pool_alloc(p, n + 1);

	if (r != NULL) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

char *api_pool_strdup(api_pool *p, const char *s)
{
	return s ? api_pool_strndup(p, s, strlen(s)) : NULL;
}

char *api_pool_printf(api_pool *p, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (r = api_pool_alloc(p, (size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(r, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return r;
}

void api_pool_release(api_pool *p)
{
	api_pool_block *b = p->head, *next;

	for (; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	p->head = NULL;
	p->cur = p->end = NULL;
}

/* --- cache --------------------------------------------------------------------------------- */

typedef struct cache_entry {
	int64_t expires_ms; /* 0 = empty */
	size_t len;
	char key[API_CACHE_KEY];
	unsigned char *val; /* val_max bytes in api_cache.vals */
} cache_entry;

struct api_cache {
	pthread_mutex_t mu;
	size_t n, val_max;
	int64_t ttl_ms;
	cache_entry *e;
	unsigned char *vals;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

api_cache *api_cache_new(size_t slots, size_t val_max, int64_t ttl_ms)
{
	api_cache *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->e = calloc(slots, sizeof(*c->e))) == NULL ||
	    (c->vals = malloc(slots * val_max)) == NULL) {
		if (c != NULL)
			free(c->e);
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < slots; i++)
		c->e[i].val = c->vals + i * val_max;
	pthread_mutex_init(&c->mu, NULL);
	c->n = slots;
	c->val_max = val_max;
	c->ttl_ms = ttl_ms;
	return c;
}

void api_cache_free(api_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c->vals);
	free(c->e);
	free(c);
}

size_t api_cache_get(api_cache *c, const char *key, void *val, size_t val_size)
{
	size_t klen = strlen(key), len = 0;
	cache_entry *e;

	if (c == NULL || klen >= API_CACHE_KEY)
		return 0;
	e = &c->e[th_hash64(key, klen) % c->n];
	pthread_mutex_lock(&c->mu);
	if (e->expires_ms > mono_ms() && strcmp(e->key, key) == 0) {
		len = e->len;
		memcpy(val, e->val, len < val_size ? len : val_size);
	}
	pthread_mutex_unlock(&c->mu);
	return len;
}

void api_cache_put(api_cache *c, const char *key, const void *val, size_t len, int64_t ttl_ms)
{
	size_t klen = strlen(key);
	cache_entry *e;

	if (c == NULL || klen >= API_CACHE_KEY || len > c->val_max || len == 0)
		return;
	e = &c->e[th_hash64(key, klen) % c->n];
	pthread_mutex_lock(&c->mu);
	memcpy(e->key, key, klen + 1);
	memcpy(e->val, val, len);
	e->len = len;
	e->expires_ms = mono_ms() + (ttl_ms > 0 ? ttl_ms : c->ttl_ms);
	pthread_mutex_unlock(&c->mu);
}

/* --- listen address -------------------------------------------------------------------------- */

int api_parse_listen(uint32_t *addr_be, uint16_t *port, const char *s, th_error *err)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	struct in_addr a;
	char *end;
	long p;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return th_error_set(err, TH_EINVALID, "bad listen address '%s': want HOST:PORT", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535)
		return th_error_set(err, TH_EINVALID, "bad port in listen address '%s'", s);
	if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &a) != 1)
		return th_error_set(err, TH_EINVALID,
		                    "bad listen address '%s': want an IPv4 address and a port", s);
	*addr_be = a.s_addr;
	*port = (uint16_t)p;
	return TH_OK;
}

/* --- daemon ---------------------------------------------------------------------------------- */

/* libmicrohttpd's own messages: fmt comes from the library, checked as a printf format. */
TH_PRINTF(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	TH_LOG(TH_LOG_WARN, "http: %s", line);
}

/* How often the uploads that only failed operations name are looked for. */
#define SWEEP_EVERY_MS 3000

/* Descriptors kept back from connections for everything else the server opens. */
#define FD_RESERVE 256

/* Raise the soft descriptor limit to the hard one; returns the soft limit in force. */
static rlim_t raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = rl;
		/* "unlimited" cannot be set (the kernel caps it at fs.nr_open): ask for plenty. */
		want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl.rlim_cur = want.rlim_cur;
	}
	return rl.rlim_cur == RLIM_INFINITY ? 1048576 : rl.rlim_cur;
}

/* The connection limit that leaves FD_RESERVE descriptors (or half of a small limit) free. */
static unsigned fit_connections(unsigned want, rlim_t nofile)
{
	rlim_t room = nofile > 2 * FD_RESERVE ? nofile - FD_RESERVE : nofile / 2;

	if (want == 0)
		want = 4096;
	return (rlim_t)want > room ? (unsigned)room : want;
}

int api_server_start(api_server *srv, const api_config *cfg, struct th_meta *meta,
                     struct th_jobs *jobs, th_error *err)
{
	rlim_t nofile;
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;
	unsigned threads = cfg->threads;
	int error;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = *cfg;
	srv->meta = meta;
	srv->jobs = jobs;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	{
		uint32_t addr;
		uint16_t port;
		if ((error = api_parse_listen(&addr, &port, cfg->listen, err)) < 0)
			return error;
		sa.sin_addr.s_addr = addr;
		sa.sin_port = htons(port);
	}
	/* Tokens are not cached: each request checks its token in the store, so a revocation
	 * takes effect at once. Visibility never changes, so databases are cached a few seconds. */
	if ((srv->dbs = api_cache_new(1024, sizeof(api_db), 5000)) == NULL ||
	    (srv->polls = api_cache_new(1024, 2048, 600000)) == NULL ||
	    (srv->login_addr = api_limiter_new(4096, API_LOGIN_ADDR_BURST,
	                                       API_LOGIN_ADDR_INTERVAL_MS)) == NULL ||
	    (srv->login_user = api_limiter_new(4096, API_LOGIN_USER_BURST,
	                                       API_LOGIN_USER_INTERVAL_MS)) == NULL) {
		api_server_stop(srv);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	/* Four per CPU, eight at least: an upload's syncs (its file, then its operation) block its
	 * thread's loop for a few milliseconds each, and every connection of that loop waits. */
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 2 ? (unsigned)(n > 16 ? 64 : 4 * n) : 8;
	}
	srv->data_dir_abs = realpath(cfg->data_dir, NULL);
	nofile = raise_nofile();
	srv->conn_limit = fit_connections(cfg->max_connections, nofile);
	if (srv->conn_limit < cfg->max_connections)
		TH_LOG(TH_LOG_WARN,
		       "connection limit lowered from %u to %u to fit %llu file descriptors",
		       cfg->max_connections, srv->conn_limit, (unsigned long long)nofile);
	error = api_guard_new(&srv->guard, cfg->header_timeout_s, cfg->body_timeout_s, err);
	if (error == TH_OK)
		error = api_admit_init(srv, err);
	if (error == TH_OK)
		error = api_qpool_new(&srv->qpool, cfg->query_threads, cfg->query_per_user,
		                      cfg->query_queue, err);
	if (error < 0) {
		api_server_stop(srv);
		return error;
	}
	srv->daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	                MHD_ALLOW_SUSPEND_RESUME,
	        0, NULL, NULL, api_dispatch, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
	        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 60u,
	        MHD_OPTION_CONNECTION_LIMIT, srv->conn_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	        cfg->max_conns_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
	        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, api_completed,
	        srv, MHD_OPTION_NOTIFY_CONNECTION, api_guard_notify, srv->guard,
	        MHD_OPTION_UNESCAPE_CALLBACK, api_guard_unescape, NULL, MHD_OPTION_END);
	if (srv->daemon == NULL) {
		api_server_stop(srv);
		return th_error_set(err, TH_ESTORE,
		                    "cannot listen on %s (address in use, or not an address of "
		                    "this machine)",
		                    cfg->listen);
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : ntohs(sa.sin_port);
	api_guard_set_tick(srv->guard, api_upload_sweep, srv, SWEEP_EVERY_MS);
	if ((error = api_guard_start(srv->guard, err)) < 0) {
		api_server_stop(srv);
		return error;
	}
	return TH_OK;
}

void api_server_stop(api_server *srv)
{
	if (srv == NULL)
		return;
	api_qpool_close(srv->qpool); /* MHD must not stop with a connection suspended */
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	srv->daemon = NULL;
	api_guard_free(srv->guard); /* after the daemon: every connection is closed by now */
	srv->guard = NULL;
	api_admit_free(srv);
	api_qpool_free(srv->qpool);
	srv->qpool = NULL;
	free(srv->data_dir_abs);
	srv->data_dir_abs = NULL;
	api_cache_free(srv->dbs);
	api_cache_free(srv->polls);
	srv->dbs = srv->polls = NULL;
	api_limiter_free(srv->login_addr);
	api_limiter_free(srv->login_user);
	srv->login_addr = srv->login_user = NULL;
}
