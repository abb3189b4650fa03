/* meta_pg.h: the PostgreSQL metadata backend's private header (storage/meta_pg.c: the driver
 * under the statement layer of meta_sql.h, its pool and its open; meta_pg_schema.c: its schema
 * migrations). Other storage files that need a connection of their own to the same server (the
 * advisory locks held while an operation writes, LISTEN/NOTIFY) use th_mpg__connect, and can run
 * a statement on a pooled connection with th_mpg__pin / th_mpg__unpin.
 *
 * Locks the backend itself takes, so that nobody else picks the same keys: the two-int4 keys
 * (TH_MPG_LOCK_CLASS, 1) around the migrations at start (session lock) and (TH_MPG_LOCK_CLASS, 2)
 * around every multi-statement transaction (transaction lock). One-bigint keys are free for
 * other uses (PostgreSQL keeps the two key forms apart).
 */
#ifndef TABLEHUB_STORAGE_META_PG_H
#define TABLEHUB_STORAGE_META_PG_H

#include <pthread.h>

#include <libpq-fe.h>

#include "meta_sql.h"

#define TH_MPG_LOCK_CLASS 0x7468 /* "th" */
#define TH_MPG_POOL 4            /* connections per process (per th_meta) */

typedef struct th_mpg_conn {
	PGconn *c;                         /* NULL until first used, and after it was lost */
	unsigned char prepared[MS_NSLOTS]; /* slot i is prepared on c as "s<i>" */
	int busy;                          /* pinned by a thread */
} th_mpg_conn;

typedef struct th_mpg {
	th_msql base;   /* first: a th_meta * is a th_mpg * */
	char *conninfo; /* the URL given, secret: never in a message */
	pthread_mutex_t mu;
	pthread_cond_t freed;
	th_mpg_conn pool[TH_MPG_POOL];
} th_mpg;

/* True when `url` names a PostgreSQL server (postgresql:// or postgres://). */
int th_mpg__is_url(const char *url);

/* A new connection to p's server into *out (the caller's: PQfinish). Returns TH_OK or TH_ESTORE
 * "meta.postgresql: cannot connect to the server" (never the conninfo, nor the server's text,
 * which names hosts and socket paths). */
int th_mpg__connect(PGconn **out, th_mpg *p, th_error *err);

/* Pin a pooled connection (connected) to the calling thread, as th_msql__lock, and give it in
 * *out; th_mpg__unpin gives it back. The connection is the pool's: not to be closed, left outside
 * a transaction. */
int th_mpg__pin(PGconn **out, th_mpg *p, th_error *err);
void th_mpg__unpin(th_mpg *p);

/* The error of result `res` (may be NULL) on `c` for statement `what`, set on err: TH_EEXISTS for
 * an integrity violation (class 23), TH_ENOSPC for a full disk (53100), else TH_ESTORE
 * "meta.postgresql: <what>: <server's primary message>", or "...: the connection to the server
 * was lost" when it was. Returns the code. */
int th_mpg__error(PGconn *c, const PGresult *res, const char *what, th_error *err);

/* Apply the pending schema migrations on c (meta_pg_schema.c), under the migrations' advisory
 * lock. Returns TH_OK or TH_ESTORE (also when the schema is newer than this build knows). */
int th_mpg__migrate(PGconn *c, th_error *err);
/* The schema version this build migrates a PostgreSQL store to. */
int th_mpg__schema_version(void);

/* The nodes' coordination: writer locks and notices (meta_pg_coord.c). */
extern const th_meta_coord_ops th_mpg__coord_ops;

#endif
