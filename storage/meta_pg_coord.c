/* meta_pg_coord.c: how the nodes sharing a PostgreSQL metadata store coordinate (the coord ops of
 * meta_backend.h behind meta_coord.h).
 *
 * DESIGN
 * - The writer lock of a database is a session advisory lock, pg_advisory_lock(key), on the
 *   one-bigint key th_meta_dblock_key makes of "owner/db" (the backend's own locks use two-int4
 *   keys, which PostgreSQL keeps apart). It is held on a connection of its own, never a pooled
 *   one, for as long as the writer runs: the wait may be long, and a pooled connection must stay
 *   free for the writer's own statements. A node that dies loses its connection and with it the
 *   lock, so the next writer of that database goes on at once. The connections are kept for reuse
 *   (at most IDLE_MAX idle ones); one that failed is closed, which releases what it held.
 * - A lost lock connection is not noticed while the writer runs: the writer then goes on without
 *   the lock. Refs still move by compare-and-swap (storage/repo_refs.c), so a second writer's
 *   commit is refused, never lost, and its operation fails or runs again.
 * - Wakeups: a notice is `NOTIFY th_work` on a pooled connection (delivered to every listener
 *   when it commits, at once outside a transaction). One thread per process waits: its
 *   connection, made on first wait, runs `LISTEN th_work`, and the wait is a poll() on its socket
 *   bounded by the timeout. Notices that arrive while nobody waits queue up in libpq and are
 *   read by the next wait; a connection lost is made again by the next wait.
 * - Where repositories go next: today every node reaches the repositories through one shared
 *   file system (--data). The step after this one is a libgit2 object-database backend
 *   (git_odb_backend) over an object store, with refs moved by compare-and-swap in this same
 *   PostgreSQL store (a refs table, UPDATE ... WHERE oid = old), so that nodes share no file
 *   system at all; the writer lock here stays as it is.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meta_pg.h"
#include "tablehub/meta_coord.h"

#define IDLE_MAX 8
#define CHANNEL "th_work"

/* The coordination state of one th_meta, made on first use (m->coord). */
typedef struct th_mpg_coord {
	pthread_mutex_t mu;
	PGconn *idle[IDLE_MAX]; /* lock connections holding nothing */
	int nidle;
	PGconn *listen; /* the waiting thread's, LISTENing */
} th_mpg_coord;

/* A held lock: its connection, key and mode. */
typedef struct held_lock {
	PGconn *c;
	int64_t key;
	int shared;
} held_lock;

static pthread_mutex_t make_mu = PTHREAD_MUTEX_INITIALIZER;

static th_mpg_coord *coord_of(th_meta *m, th_error *err)
{
	th_mpg_coord *c;

	pthread_mutex_lock(&make_mu);
	if ((c = m->coord) == NULL && (c = calloc(1, sizeof(*c))) != NULL) {
		pthread_mutex_init(&c->mu, NULL);
		m->coord = c;
	}
	pthread_mutex_unlock(&make_mu);
	if (c == NULL)
		th_error_set(err, TH_ENOMEM, "out of memory");
	return c;
}

/* Run `sql` with the one bigint parameter `key` on c; TH_OK when it returned a row. */
static int exec_key(PGconn *c, const char *sql, int64_t key, const char *what, th_error *err)
{
	char text[24];
	const char *params[1] = { text };
	PGresult *res;
	int error = TH_OK;

	snprintf(text, sizeof(text), "%" PRId64, key);
	res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		error = th_mpg__error(c, res, what, err);
	PQclear(res);
	return error;
}

static int pg_dblock_take(void **held_out, th_meta *m, int64_t key, int shared, th_error *err)
{
	th_mpg_coord *k = coord_of(m, err);
	held_lock *h;
	PGconn *c = NULL;
	int error;

	if (k == NULL)
		return TH_ENOMEM;
	if ((h = malloc(sizeof(*h))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	pthread_mutex_lock(&k->mu);
	if (k->nidle > 0)
		c = k->idle[--k->nidle];
	pthread_mutex_unlock(&k->mu);
	if (c != NULL && PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		c = NULL;
	}
	if (c == NULL && (error = th_mpg__connect(&c, (th_mpg *)m, err)) < 0) {
		free(h);
		return error;
	}
	if ((error = exec_key(c,
	                      shared ? "SELECT pg_advisory_lock_shared($1::bigint)"
	                             : "SELECT pg_advisory_lock($1::bigint)",
	                      key, "take a database's writer lock", err)) < 0) {
		PQfinish(c);
		free(h);
		return error;
	}
	h->c = c;
	h->key = key;
	h->shared = shared;
	*held_out = h;
	return TH_OK;
}

static void pg_dblock_release(th_meta *m, void *held)
{
	th_mpg_coord *k = m->coord;
	held_lock *h = held;
	th_error err;

	th_error_clear(&err);
	/* A failed unlock closes the connection, which releases the lock as surely. */
	if (exec_key(h->c,
	             h->shared ? "SELECT pg_advisory_unlock_shared($1::bigint)"
	                       : "SELECT pg_advisory_unlock($1::bigint)",
	             h->key, "release a database's writer lock", &err) == TH_OK &&
	    k != NULL) {
		pthread_mutex_lock(&k->mu);
		if (k->nidle < IDLE_MAX) {
			k->idle[k->nidle++] = h->c;
			h->c = NULL;
		}
		pthread_mutex_unlock(&k->mu);
	}
	PQfinish(h->c);
	free(h);
}

static int pg_work_notify(th_meta *m, th_error *err)
{
	th_mpg *p = (th_mpg *)m;
	PGresult *res;
	PGconn *c;
	int error;

	if ((error = th_mpg__pin(&c, p, err)) < 0)
		return error;
	res = PQexec(c, "NOTIFY " CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		error = th_mpg__error(c, res, "notify the other nodes", err);
	PQclear(res);
	th_mpg__unpin(p);
	return error;
}

/* Read the notices c holds; 1 when there was one. */
static int drain(PGconn *c)
{
	PGnotify *n;
	int got = 0;

	while ((n = PQnotifies(c)) != NULL) {
		PQfreemem(n);
		got = 1;
	}
	return got;
}

static int pg_work_wait(th_meta *m, int64_t timeout_ms, th_error *err)
{
	th_mpg_coord *k = coord_of(m, err);
	struct pollfd pfd;
	PGresult *res;
	int error, got, rc;

	if (k == NULL)
		return TH_ENOMEM;
	if (k->listen != NULL && PQstatus(k->listen) != CONNECTION_OK) {
		PQfinish(k->listen);
		k->listen = NULL;
	}
	if (k->listen == NULL) {
		PGconn *c;
		if ((error = th_mpg__connect(&c, (th_mpg *)m, err)) < 0)
			return error;
		res = PQexec(c, "LISTEN " CHANNEL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			error = th_mpg__error(c, res, "listen for notices", err);
			PQclear(res);
			PQfinish(c);
			return error;
		}
		PQclear(res);
		k->listen = c;
		/* Work queued before the LISTEN was not noticed: say there may be some. */
		return 1;
	}
	if (PQconsumeInput(k->listen) == 0)
		goto lost;
	if (drain(k->listen))
		return 1;
	pfd.fd = PQsocket(k->listen);
	pfd.events = POLLIN;
	pfd.revents = 0;
	rc = poll(&pfd, 1, timeout_ms > 60000 ? 60000 : (int)timeout_ms);
	if (rc < 0 && errno != EINTR)
		goto lost;
	if (rc <= 0)
		return 0;
	if (PQconsumeInput(k->listen) == 0)
		goto lost;
	got = drain(k->listen);
	return got;
lost:
	PQfinish(k->listen);
	k->listen = NULL;
	return th_error_set(err, TH_ESTORE,
	                    "meta.postgresql: wait for notices: the connection to the server was "
	                    "lost");
}

static void pg_coord_close(th_meta *m)
{
	th_mpg_coord *k = m->coord;

	if (k == NULL)
		return;
	while (k->nidle > 0)
		PQfinish(k->idle[--k->nidle]);
	PQfinish(k->listen);
	pthread_mutex_destroy(&k->mu);
	free(k);
	m->coord = NULL;
}

const th_meta_coord_ops th_mpg__coord_ops = { pg_dblock_take, pg_dblock_release, pg_work_notify,
	                                      pg_work_wait, pg_coord_close };
