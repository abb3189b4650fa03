/* meta_pg.c: the PostgreSQL metadata backend (libpq): `serve --meta postgresql://...` or
 * TABLEHUB_META. The driver under the statement layer of meta_sql.h, its connection pool, its open
 * and close; the schema is meta_pg_schema.c's.
 *
 * Design.
 * - Same statements as SQLite. The resource files (meta_users.c ... meta_files.c) are shared: a
 *   statement's text is written once with ?N parameters and read here with $N; where the dialects
 *   differ the statement carries its PostgreSQL text (the claim's FOR UPDATE SKIP LOCKED, the
 *   cancel's FOR UPDATE). The schema keeps SQLite's names, and the tables whose rowid SQLite code
 *   orders by (operations, files, file_operations) have a BIGSERIAL column named rowid.
 * - Prepared once per connection: a statement with a slot is prepared (PQprepare, named "s<slot>",
 *   its parameters typed from the run's type string: text, int8, int4) the first time it runs on
 *   a connection, then only executed. The rare MS_NOSLOT statements go through PQexecParams.
 * - A small pool per process (TH_MPG_POOL connections, connected on first use). th_msql__lock
 *   pins one to the calling thread (a thread-local pointer, so th_msql__run_locked finds it); a
 *   transaction pins one for its whole life. A lost connection is dropped at its error and made
 *   again at its next pin, with its prepared set empty.
 * - Transactions: th_msql__tx is BEGIN and pg_advisory_xact_lock(TH_MPG_LOCK_CLASS, 2): the
 *   multi-statement writes (registration, tokens, pulls and notes, collaborators, file deletion)
 *   are ordered one after another across all nodes, as SQLite's BEGIN IMMEDIATE orders them
 *   across processes, so their read-then-write logic holds unchanged. They are short (a few
 *   statements on one connection). The hot path does not take that lock: a claim is one UPDATE
 *   whose subquery locks the oldest runnable row FOR UPDATE SKIP LOCKED, so claims on many nodes
 *   never wait on each other; polls, progress, leases and completions are single statements
 *   fenced by the attempt number.
 * - Migrations: versioned in th_schema_migrations, each applied in its own transaction, all under
 *   the session advisory lock (TH_MPG_LOCK_CLASS, 1) so that nodes starting together apply each
 *   one once. A schema newer than this build refuses to open.
 * - Errors: integrity violations (SQLSTATE class 23) are TH_EEXISTS as SQLite's constraint
 *   errors are; everything else is TH_ESTORE "meta.postgresql: <what>: <server's primary
 *   message>". A failed connection says only that it failed: libpq's text names hosts and socket
 *   paths, and the conninfo may hold a password, so neither is ever in a message.
 *
 * Next: repositories in object storage (not built). Today every node reads and writes the git
 * repositories on the shared --data file system, and writers of one repository are serialized by
 * a PostgreSQL advisory lock per database. Moving them to object storage (S3 and the like) would
 * be a libgit2 object-database backend (git_odb_backend: read, read_header, exists, write,
 * foreach) storing each object under its id (content addressed, so immutable and cacheable on
 * every node without invalidation), plus a refdb backend (git_refdb_backend) keeping the refs in
 * a PostgreSQL table, where a ref update is the compare-and-swap UPDATE ... WHERE target = old it
 * already is in spirit. Packs would be written by the repack operation as immutable objects with
 * their index, loose objects batched per operation. The query cache and upload spool stay local.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_pg.h"

#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define MAX_PARAMS 32

/* The connection the calling thread has pinned, and its store. */
static _Thread_local th_mpg_conn *pinned;
static _Thread_local th_mpg *pinned_store;

int th_mpg__is_url(const char *url)
{
	return url != NULL &&
	       (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0);
}

int th_mpg__connect(PGconn **out, th_mpg *p, th_error *err)
{
	/* Defaults the URL's own parameters override (they come after them). */
	const char *const keys[] = { "connect_timeout", "fallback_application_name", "dbname",
		                     NULL };
	const char *const vals[] = { "10", "tablehub", p->conninfo, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return th_error_set(err, TH_ESTORE,
		                    "meta.postgresql: cannot connect to the server");
	}
	/* Messages from the server in English whatever its locale; nothing chatty. */
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	*out = c;
	return TH_OK;
}

int th_mpg__error(PGconn *c, const PGresult *res, const char *what, th_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		return th_error_set(err, TH_ESTORE,
		                    "meta.postgresql: %s: the connection to the server was lost",
		                    what);
	if (state && strncmp(state, "23", 2) == 0)
		return th_error_set(err, TH_EEXISTS, "meta.postgresql: %s: %s", what,
		                    msg ? msg : "constraint failed");
	return th_error_set(err, state && strcmp(state, "53100") == 0 ? TH_ENOSPC : TH_ESTORE,
	                    "meta.postgresql: %s: %s", what, msg ? msg : "failed");
}

/* --- rows ------------------------------------------------------------------------------------ */

static const char *row_text(const th_mrow *r, int i)
{
	if (PQgetisnull(r->impl, r->row, i))
		return NULL;
	return PQgetvalue(r->impl, r->row, i);
}

static size_t row_len(const th_mrow *r, int i)
{
	return (size_t)PQgetlength(r->impl, r->row, i);
}

static int64_t row_int(const th_mrow *r, int i)
{
	const char *v = row_text(r, i);

	if (v == NULL)
		return 0;
	if (v[0] == 't' || v[0] == 'f') /* a boolean */
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static const th_mrow_ops row_ops = { row_text, row_len, row_int };

/* --- the pool -------------------------------------------------------------------------------- */

/* Drop a connection that failed: the next pin connects afresh. */
static void conn_drop(th_mpg_conn *k)
{
	PQfinish(k->c);
	k->c = NULL;
	memset(k->prepared, 0, sizeof(k->prepared));
}

static int pg_lock(th_msql *m, th_error *err)
{
	th_mpg *p = (th_mpg *)m;
	th_mpg_conn *k = NULL;
	int i, error;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (i = 0; i < TH_MPG_POOL && k == NULL; i++)
			if (!p->pool[i].busy)
				k = &p->pool[i];
		if (k != NULL)
			break;
		pthread_cond_wait(&p->freed, &p->mu);
	}
	k->busy = 1;
	pthread_mutex_unlock(&p->mu);
	if (k->c != NULL && PQstatus(k->c) != CONNECTION_OK)
		conn_drop(k);
	if (k->c == NULL && (error = th_mpg__connect(&k->c, p, err)) < 0) {
		pthread_mutex_lock(&p->mu);
		k->busy = 0;
		pthread_cond_signal(&p->freed);
		pthread_mutex_unlock(&p->mu);
		return error;
	}
	pinned = k;
	pinned_store = p;
	return TH_OK;
}

static void pg_unlock(th_msql *m)
{
	th_mpg *p = (th_mpg *)m;
	th_mpg_conn *k = pinned;

	if (k == NULL || pinned_store != p)
		return;
	/* Never hand on a connection inside a transaction. */
	if (k->c != NULL && PQtransactionStatus(k->c) != PQTRANS_IDLE)
		PQclear(PQexec(k->c, "ROLLBACK"));
	pinned = NULL;
	pinned_store = NULL;
	pthread_mutex_lock(&p->mu);
	k->busy = 0;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->mu);
}

int th_mpg__pin(PGconn **out, th_mpg *p, th_error *err)
{
	int error;

	if ((error = pg_lock(&p->base, err)) < 0)
		return error;
	*out = pinned->c;
	return TH_OK;
}

void th_mpg__unpin(th_mpg *p)
{
	pg_unlock(&p->base);
}

/* --- running statements ---------------------------------------------------------------------- */

/* `sql` with ?N read as $N (outside quotes) into a new string (NULL: out of memory). */
static char *pg_text(const char *sql)
{
	char *out = malloc(strlen(sql) + 1), *o = out, quote = 0;
	const char *q;

	if (out == NULL)
		return NULL;
	for (q = sql; *q; q++) {
		if (quote) {
			if (*q == quote)
				quote = 0;
		} else if (*q == '\'' || *q == '"') {
			quote = *q;
		} else if (*q == '?' && q[1] >= '0' && q[1] <= '9') {
			*o++ = '$';
			continue;
		}
		*o++ = *q;
	}
	*o = '\0';
	return out;
}

/* The parameters of a run, as text, with their types. */
struct params {
	int n;
	const char *values[MAX_PARAMS];
	Oid types[MAX_PARAMS];
	char nums[MAX_PARAMS][24];
};

static void params_read(struct params *p, const char *types, va_list ap)
{
	const char *v;
	int i;

	for (i = 0; types[i] && i < MAX_PARAMS; i++) {
		switch (types[i]) {
		case 's':
			v = va_arg(ap, const char *);
			p->values[i] = v ? v : "";
			p->types[i] = OID_TEXT;
			break;
		case 'n':
			p->values[i] = va_arg(ap, const char *);
			p->types[i] = OID_TEXT;
			break;
		case 'i':
			snprintf(p->nums[i], sizeof(p->nums[i]), "%lld",
			         (long long)va_arg(ap, int64_t));
			p->values[i] = p->nums[i];
			p->types[i] = OID_INT8;
			break;
		default: /* 'd' */
			snprintf(p->nums[i], sizeof(p->nums[i]), "%d", va_arg(ap, int));
			p->values[i] = p->nums[i];
			p->types[i] = OID_INT4;
			break;
		}
	}
	p->n = i;
}

static int pg_run(th_msql *m, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx,
                  th_error *err, const char *types, va_list ap)
{
	th_mpg_conn *k = pinned;
	struct params prm;
	PGresult *res = NULL;
	th_mrow r = { &row_ops, NULL, 0 };
	char name[16], *text = NULL;
	const char *count;
	int i, n, error = TH_OK;

	(void)m;
	if (k == NULL || k->c == NULL)
		return th_error_set(err, TH_ESTORE, "meta.postgresql: %s: no connection",
		                    stmt->what);
	params_read(&prm, types, ap);
	if (stmt->slot == MS_NOSLOT || !k->prepared[stmt->slot]) {
		if ((text = pg_text(stmt->pg ? stmt->pg : stmt->sql)) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (stmt->slot == MS_NOSLOT) {
		res = PQexecParams(k->c, text, prm.n, prm.types, prm.values, NULL, NULL, 0);
	} else {
		snprintf(name, sizeof(name), "s%d", stmt->slot);
		if (!k->prepared[stmt->slot]) {
			res = PQprepare(k->c, name, text, prm.n, prm.types);
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				error = th_mpg__error(k->c, res, stmt->what, err);
				goto done;
			}
			PQclear(res);
			k->prepared[stmt->slot] = 1;
		}
		res = PQexecPrepared(k->c, name, prm.n, prm.values, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
		error = th_mpg__error(k->c, res, stmt->what, err);
		goto done;
	}
	r.impl = res;
	n = PQntuples(res);
	for (i = 0; i < n && row; i++) {
		r.row = i;
		if ((error = row(ctx, &r, err)) < 0)
			goto done;
	}
	/* Rows changed for a write (RETURNING or not), rows read for a query. */
	count = PQcmdTuples(res);
	error = count[0] ? atoi(count) : n;
done:
	if (PQstatus(k->c) != CONNECTION_OK)
		conn_drop(k);
	PQclear(res);
	free(text);
	return error;
}

/* Run `sql` (no parameters) on the pinned connection. */
static int pg_exec(const char *sql, const char *what, th_error *err)
{
	th_mpg_conn *k = pinned;
	PGresult *res;
	int error = TH_OK;

	if (k == NULL || k->c == NULL)
		return th_error_set(err, TH_ESTORE, "meta.postgresql: %s: no connection", what);
	res = PQexec(k->c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		error = th_mpg__error(k->c, res, what, err);
	PQclear(res);
	return error;
}

static int pg_begin(th_msql *m, th_error *err)
{
	char sql[96];

	(void)m;
	snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d, 2)", TH_MPG_LOCK_CLASS);
	return pg_exec(sql, "begin", err);
}

static int pg_commit(th_msql *m, th_error *err)
{
	(void)m;
	return pg_exec("COMMIT", "commit", err);
}

static void pg_rollback(th_msql *m)
{
	(void)m;
	if (pinned && pinned->c && PQtransactionStatus(pinned->c) != PQTRANS_IDLE)
		pg_exec("ROLLBACK", "rollback", NULL);
}

static const th_msql_driver pg_driver = {
	pg_run,    pg_lock,     pg_unlock, pg_begin,
	pg_commit, pg_rollback, NULL, /* no settle: every commit waits for the server's disk */
};

/* --- open, close ----------------------------------------------------------------------------- */

static const th_msql_stmt node_id_stmt = { MS_NODE_ID, "read node id",
	                                   "SELECT value FROM settings WHERE key = 'node_id'",
	                                   NULL };

static int read_node_id(void *ctx, const th_mrow *r, th_error *err)
{
	(void)err;
	th_msql__copy(ctx, TH_META_NODE_ID_SIZE, r, 0);
	return TH_OK;
}

static void pg_close(th_meta *m)
{
	th_mpg *p = (th_mpg *)m;
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < TH_MPG_POOL; i++)
		PQfinish(p->pool[i].c);
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->mu);
	if (p->conninfo)
		memset(p->conninfo, 0, strlen(p->conninfo));
	free(p->conninfo);
	free(p);
}

static int pg_open(th_meta **out, const char *data_dir, const char *url, th_error *err)
{
	th_mpg *p;
	PGconn *c;
	int error, n;

	(void)data_dir;
	if (!th_mpg__is_url(url))
		return th_error_set(err, TH_EINVALID,
		                    "the metadata store's address must start with postgresql://");
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->conninfo = strdup(url)) == NULL) {
		free(p);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	p->base.base.ops = &th_meta_pg_ops;
	p->base.drv = &pg_driver;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->freed, NULL);
	if ((error = th_mpg__pin(&c, p, err)) < 0)
		goto fail;
	error = th_mpg__migrate(c, err);
	if (error == TH_OK && (n = th_msql__run_locked(&p->base, &node_id_stmt, read_node_id,
	                                               p->base.base.node_id, err, "")) <= 0)
		error = n < 0 ? n
		              : th_error_set(err, TH_ESTORE,
		                             "meta.postgresql: no node id in settings");
	th_mpg__unpin(p);
	if (error < 0)
		goto fail;
	*out = &p->base.base;
	return TH_OK;
fail:
	pg_close(&p->base.base);
	return error;
}

const th_meta_ops th_meta_pg_ops = TH_MSQL_OPS("postgresql", pg_open, pg_close, &th_mpg__coord_ops);
