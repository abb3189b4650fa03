/* meta_queue.c: operations, the job queue, in the SQL metadata backends (table operations).
 *
 * Claiming is one UPDATE ... WHERE id = (SELECT the oldest runnable) RETURNING, atomic in itself
 * and exclusive across threads and processes (on PostgreSQL its subquery locks the row FOR UPDATE
 * SKIP LOCKED, so claims on other nodes pass it by instead of waiting). A claim bumps `attempts`,
 * which then serves as the fencing token: every later update of the operation names the attempt it
 * holds, and a worker whose lease expired and was taken over can no longer extend, complete or fail
 * it (the update changes no row; fence_error then says why). A claim also records the claiming node
 * (lease_owner), so that a node starting up re-queues only the work its own dead process held.
 *
 * Durability (SQLite): a commit returns once the WAL is fsynced (after the connection is let go,
 * meta_sqlite.c), except the claim, the lease extension and progress, which do not wait for it
 * (th_meta_lazy around them). None of these three is ever acknowledged to anyone, and WAL commits
 * survive a crash in order: recovery keeps a prefix of the commits, and any later synced commit
 * (an enqueue, a completion) makes every earlier one durable with it. So a power loss can undo
 * only the newest claims, extensions and progress, never what a client was told: the operation the
 * POST answered (op_create) and its Completed or Failed state (op_complete, op_fail) are synced.
 * An undone claim leaves the operation Pending, or In Progress with an older attempt and lease,
 * which the next start re-queues (th_msql__op_requeue_running) or an expired lease hands to another
 * worker; the runners are idempotent, so running the attempt again is what a crash during it
 * always led to. A process killed without a power loss loses nothing: its commits are in the page
 * cache. A driver without the notion (PostgreSQL here) commits all of them alike.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"

#define OP_COLS                                                                                    \
	"id, kind, owner, db, creator, state, params, upload_sha256, file_name, table_name, "      \
	"branch_name, bytes_total, bytes_read, rows_processed, result, error_message, "            \
	"error_line, error_column, lease_expires_at, attempts, pull_id, created_at, updated_at, "  \
	"lease_owner"

/* Held by attempt ?2 (> 0), or with ?2 = 0 any unfinished operation. */
#define FENCE                                                                                      \
	" WHERE id = ?1 AND ((?2 > 0 AND state = 'In Progress' AND attempts = ?2) OR "             \
	"(?2 = 0 AND state IN ('Pending', 'In Progress')))"

static const th_msql_stmt op_insert = {
	MS_OP_INSERT, "insert operation",
	"INSERT INTO operations(id, kind, owner, db, creator, state, params, upload_sha256, "
	"file_name, table_name, branch_name, bytes_total, pull_id, created_at, updated_at) VALUES "
	"(?1, ?2, ?3, ?4, ?5, 'Pending', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
	NULL
};
static const th_msql_stmt op_get = { MS_OP_GET, "read operation",
	                             "SELECT " OP_COLS " FROM operations WHERE id = ?1", NULL };
static const th_msql_stmt op_list_db = {
	MS_OP_LIST_DB, "list operations",
	"SELECT " OP_COLS " FROM operations WHERE owner = ?1 AND db = ?2 AND (?3 IS NULL OR "
	"kind = ?3) AND (?6 IS NULL OR state = ?6) ORDER BY created_at DESC, rowid DESC "
	"LIMIT ?4 OFFSET ?5",
	NULL
};
static const th_msql_stmt op_list_creator = {
	MS_OP_LIST_CREATOR, "list operations",
	"SELECT " OP_COLS " FROM operations WHERE creator = ?1 AND (?2 IS NULL OR kind = ?2) "
	"AND (?5 IS NULL OR state = ?5) ORDER BY created_at DESC, rowid DESC LIMIT ?3 OFFSET ?4",
	NULL
};
static const th_msql_stmt op_claim = {
	MS_OP_CLAIM, "claim operation",
	"UPDATE operations SET state = 'In Progress', lease_expires_at = ?1 + ?2, "
	"attempts = attempts + 1, updated_at = ?1, lease_owner = ?3 "
	"WHERE id = (SELECT id FROM operations WHERE state = 'Pending' OR "
	"(state = 'In Progress' AND lease_expires_at < ?1) "
	"ORDER BY created_at, rowid LIMIT 1) RETURNING " OP_COLS,
	/* PostgreSQL: claims on other connections skip the row one holds instead of waiting. */
	"UPDATE operations SET state = 'In Progress', lease_expires_at = ?1 + ?2, "
	"attempts = attempts + 1, updated_at = ?1, lease_owner = ?3 "
	"WHERE id = (SELECT id FROM operations WHERE state = 'Pending' OR "
	"(state = 'In Progress' AND lease_expires_at < ?1) "
	"ORDER BY created_at, rowid LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING " OP_COLS
};
static const th_msql_stmt op_requeue = { MS_OP_REQUEUE, "requeue operations",
	                                 "UPDATE operations SET lease_expires_at = 0 WHERE state = "
	                                 "'In Progress' AND lease_owner = ?1",
	                                 NULL };
static const th_msql_stmt op_fence = { MS_OP_FENCE, "read operation",
	                               "SELECT state, attempts FROM operations WHERE id = ?1",
	                               NULL };
static const th_msql_stmt op_extend = {
	MS_OP_EXTEND, "extend lease",
	"UPDATE operations SET lease_expires_at = ?3, updated_at = ?4" FENCE, NULL
};
static const th_msql_stmt op_progress = {
	MS_OP_PROGRESS, "record progress",
	"UPDATE operations SET bytes_read = ?3, rows_processed = ?4, updated_at = ?5, "
	"lease_expires_at = CASE WHEN ?6 > 0 THEN ?5 + ?6 ELSE lease_expires_at END" FENCE,
	NULL
};
static const th_msql_stmt op_complete = {
	MS_OP_COMPLETE, "complete operation",
	"UPDATE operations SET state = 'Completed', updated_at = ?3, lease_expires_at = 0, "
	"pull_id = CASE WHEN ?4 > 0 THEN ?4 ELSE pull_id END, result = ?5" FENCE,
	NULL
};
static const th_msql_stmt op_fail = {
	MS_OP_FAIL, "fail operation",
	"UPDATE operations SET state = 'Failed', updated_at = ?3, lease_expires_at = 0, "
	"error_line = ?4, error_column = ?5, error_message = ?6, result = ?7" FENCE,
	NULL
};

static int read_op(void *item, const th_mrow *st, th_error *err)
{
	th_op_info *out = item, o;

	memset(&o, 0, sizeof(o));
	th_msql__copy(o.id, sizeof(o.id), st, 0);
	th_msql__copy(o.kind, sizeof(o.kind), st, 1);
	th_msql__copy(o.owner, sizeof(o.owner), st, 2);
	th_msql__copy(o.db, sizeof(o.db), st, 3);
	th_msql__copy(o.creator, sizeof(o.creator), st, 4);
	o.state = th_op_state_parse(th_msql__text(st, 5));
	th_msql__copy(o.upload_sha256, sizeof(o.upload_sha256), st, 7);
	if (th_msql__dup(&o.params, st, 6, 0, err) < 0 ||
	    th_msql__dup(&o.file_name, st, 8, 0, err) < 0 ||
	    th_msql__dup(&o.table_name, st, 9, 0, err) < 0 ||
	    th_msql__dup(&o.branch_name, st, 10, 0, err) < 0 ||
	    th_msql__dup(&o.result, st, 14, 1, err) < 0 ||
	    th_msql__dup(&o.error_message, st, 15, 1, err) < 0) {
		th_op_info_dispose(&o);
		return TH_ENOMEM;
	}
	o.bytes_total = (uint64_t)th_msql__int(st, 11);
	o.bytes_read = (uint64_t)th_msql__int(st, 12);
	o.rows_processed = (uint64_t)th_msql__int(st, 13);
	o.error_line = (uint64_t)th_msql__int(st, 16);
	o.error_column = (uint32_t)th_msql__int(st, 17);
	o.lease_expires_at = th_msql__int(st, 18);
	o.attempts = (int)th_msql__int(st, 19);
	o.pull_id = th_msql__int(st, 20);
	o.created_at = th_msql__int(st, 21);
	o.updated_at = th_msql__int(st, 22);
	th_msql__copy(o.lease_owner, sizeof(o.lease_owner), st, 23);
	*out = o;
	return TH_OK;
}

static void dispose_op(void *item)
{
	th_op_info_dispose(item);
}

/* --- group commit of the writes a client is told of ------------------------------------------ */

/* An operation's creation (the POST answers with its name) and its end (Completed or Failed, which
 * a poll shows) must be on disk before anyone hears of them: each is a commit and an fsync of the
 * WAL (on SQLite, of its one connection). Several threads doing so at once share one transaction
 * and one fsync (group commit): each request is queued;
 * whoever finds no commit under way leads, taking every request queued for its connection into one
 * BEGIN IMMEDIATE ... COMMIT, while later requests queue for the next leader. Each request's
 * statement keeps its own outcome (a lost fence, a duplicate id); a failure that spoils the
 * transaction (a full disk, a failed commit) rolls it back, and then each request of the batch runs
 * again in a transaction of its own, so that one bad request fails alone. A request returns only
 * once its commit is durable (or failed). */

enum { GC_CREATE, GC_COMPLETE, GC_FAIL };

struct gc_req {
	th_msql *s;
	int kind; /* GC_* */
	const char *id;
	int attempt;
	const th_op_new *op; /* GC_CREATE */
	const char *text;    /* the result (GC_COMPLETE) or the message (GC_FAIL) */
	const char *result;  /* GC_FAIL's result */
	int64_t pull_id;
	uint64_t line;
	uint32_t column;
	int done, rc;
	th_error err;
	struct gc_req *next;
};

static pthread_mutex_t gc_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gc_cv = PTHREAD_COND_INITIALIZER;
static struct gc_req *gc_queue; /* waiting for a leader, newest first */
static int gc_leading;          /* a batch is being committed */

static int fence_done(th_msql *s, int n, const char *id, int attempt, th_error *err);

/* Run one request's statement inside the batch's transaction (a connection pinned). */
static int gc_run(th_msql *s, struct gc_req *r)
{
	const th_op_new *op = r->op;
	int n;

	switch (r->kind) {
	case GC_CREATE:
		/* The file link first: a file gone meanwhile fails the request with nothing of
		 * it written. */
		if (op->file_id != NULL && op->file_id[0] != '\0' &&
		    (n = th_msql__file_link_locked(s, op->file_id, r->id, &r->err)) < 0)
			return n;
		n = th_msql__run_locked(s, &op_insert, NULL, NULL, &r->err, "ssssssssssiii", r->id,
		                        op->kind, op->owner, op->db, op->creator,
		                        op->params ? op->params : "{}", op->upload_sha256,
		                        op->file_name, op->table_name, op->branch_name,
		                        (int64_t)op->bytes_total, op->pull_id, th_now_ms());
		return n < 0 ? n : TH_OK;
	case GC_COMPLETE:
		n = th_msql__run_locked(s, &op_complete, NULL, NULL, &r->err, "sdiis", r->id,
		                        r->attempt, th_now_ms(), r->pull_id, r->text);
		return fence_done(s, n, r->id, r->attempt, &r->err);
	default:
		n = th_msql__run_locked(s, &op_fail, NULL, NULL, &r->err, "sdiiisn", r->id,
		                        r->attempt, th_now_ms(), (int64_t)r->line,
		                        (int64_t)r->column, r->text, r->result);
		return fence_done(s, n, r->id, r->attempt, &r->err);
	}
}

/* The batch's transaction body (th_msql__tx): every request's statement. A request's own failure
 * (a lost fence, an existing id) stays its own; any other ends the transaction. */
static int gc_batch(th_msql *s, void *ctx, th_error *err)
{
	struct gc_req *r;

	for (r = ctx; r != NULL; r = r->next) {
		th_error_clear(&r->err);
		r->rc = gc_run(s, r);
		if (r->rc < 0 && r->rc != TH_ECONFLICT && r->rc != TH_ENOTFOUND &&
		    r->rc != TH_EEXISTS) {
			*err = r->err;
			return r->rc;
		}
	}
	return TH_OK;
}

/* Commit `batch` (oldest first) in one transaction; after a failure that spoiled it, each request
 * alone. Sets every request's rc and err. */
static void gc_commit(th_msql *s, struct gc_req *batch)
{
	struct gc_req *r, *next;
	th_error e;
	int rc;

	th_error_clear(&e);
	if ((rc = th_msql__tx(s, gc_batch, batch, &e)) == TH_OK)
		return;
	if (batch->next == NULL) {
		batch->rc = rc;
		batch->err = e;
		return;
	}
	for (r = batch; r != NULL; r = next) {
		next = r->next;
		r->next = NULL;
		gc_commit(s, r);
		r->next = next;
	}
}

/* Queue r and return once its commit is durable or failed: its rc, with *err set on failure. */
static int gc_submit(struct gc_req *r, th_error *err)
{
	pthread_mutex_lock(&gc_mu);
	r->done = 0;
	r->next = gc_queue;
	gc_queue = r;
	while (!r->done) {
		struct gc_req *batch = NULL, **pp = &gc_queue, *x;
		if (gc_leading) {
			pthread_cond_wait(&gc_cv, &gc_mu);
			continue;
		}
		/* Lead: take this connection's requests, newest first off the queue, so the batch
		 * runs them oldest first. */
		while ((x = *pp) != NULL) {
			if (x->s == r->s) {
				*pp = x->next;
				x->next = batch;
				batch = x;
			} else {
				pp = &x->next;
			}
		}
		gc_leading = 1;
		pthread_mutex_unlock(&gc_mu);
		gc_commit(r->s, batch);
		pthread_mutex_lock(&gc_mu);
		for (x = batch; x != NULL; x = x->next)
			x->done = 1; /* a follower frees its request only once it holds gc_mu */
		gc_leading = 0;
		pthread_cond_broadcast(&gc_cv);
	}
	pthread_mutex_unlock(&gc_mu);
	if (r->rc < 0 && err)
		*err = r->err;
	return r->rc;
}

int th_msql__op_create(th_meta *m, const char *id, const th_op_new *op, th_error *err)
{
	struct gc_req r;

	memset(&r, 0, sizeof(r));
	r.s = (th_msql *)m;
	r.kind = GC_CREATE;
	r.id = id;
	r.op = op;
	return gc_submit(&r, err);
}

int th_msql__op_get(th_op_info *out, th_meta *m, const char *id, th_error *err)
{
	th_op_info o;
	int n;

	if ((n = th_msql__run((th_msql *)m, &op_get, read_op, &o, err, "s", id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "operation '%s' not found", id);
	*out = o;
	return TH_OK;
}

int th_msql__op_list(th_op_list *out, int *more, th_meta *m, const th_meta_op_filter *f,
                     int64_t offset, size_t limit, th_error *err)
{
	th_msql *s = (th_msql *)m;
	void *items = NULL;
	size_t n = 0;
	int error;

	if (f->creator)
		error = th_msql__list(&items, &n, more, s, &op_list_creator, sizeof(th_op_info),
		                      limit, read_op, dispose_op, err, "sniin", f->creator, f->kind,
		                      (int64_t)limit + 1, offset, f->state);
	else
		error = th_msql__list(&items, &n, more, s, &op_list_db, sizeof(th_op_info), limit,
		                      read_op, dispose_op, err, "ssniin", f->owner, f->db, f->kind,
		                      (int64_t)limit + 1, offset, f->state);
	if (error < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

struct claim {
	th_op_info op;
	int have;
};

static int read_claim(void *ctx, const th_mrow *st, th_error *err)
{
	struct claim *c = ctx;
	int error;

	if ((error = read_op(&c->op, st, err)) < 0)
		return error;
	c->have = 1;
	return TH_OK;
}

int th_msql__op_claim(th_op_info *out, th_meta *m, int64_t lease_ms, th_error *err)
{
	th_msql *s = (th_msql *)m;
	struct claim c;
	int error;

	c.have = 0;
	/* The claim commits when the statement runs to its end, which th_msql__run_locked sees
	 * to; lazily, as nobody is told of it. */
	th_meta_lazy(m, 1);
	if ((error = th_msql__lock(s, err)) < 0) {
		th_meta_lazy(m, 0);
		return error;
	}
	error = th_msql__run_locked(s, &op_claim, read_claim, &c, err, "iis", th_now_ms(), lease_ms,
	                            m->node_id);
	th_msql__unlock(s);
	th_meta_lazy(m, 0);
	if (error >= 0 && !c.have)
		error = th_error_set(err, TH_ENOTFOUND, "no operation to run");
	if (error < 0) {
		if (c.have)
			th_op_info_dispose(&c.op);
		return error;
	}
	*out = c.op;
	return TH_OK;
}

int th_msql__op_requeue_running(int *n_out, th_meta *m, th_error *err)
{
	int n;

	if ((n = th_msql__run((th_msql *)m, &op_requeue, NULL, NULL, err, "s", m->node_id)) < 0)
		return n;
	if (n_out)
		*n_out = n;
	return TH_OK;
}

struct fence_row {
	char state[16];
	int attempts;
};

static int read_fence(void *ctx, const th_mrow *st, th_error *err)
{
	struct fence_row *f = ctx;

	(void)err;
	th_msql__copy(f->state, sizeof(f->state), st, 0);
	f->attempts = (int)th_msql__int(st, 1);
	return TH_OK;
}

/* A fenced update that changed nothing: say why. Called with a connection pinned. */
static int fence_error(th_msql *s, const char *id, int attempt, th_error *err)
{
	struct fence_row f;
	int n;

	if ((n = th_msql__run_locked(s, &op_fence, read_fence, &f, err, "s", id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "operation '%s' not found", id);
	return th_error_set(err, TH_ECONFLICT,
	                    "operation '%s' is no longer held by attempt %d (state %s, attempt %d)",
	                    id, attempt, f.state, f.attempts);
}

/* After a fenced update returned n: TH_OK when it changed the row, else why not. Called on the
 * connection that ran the update, so that the reason read is the one that stopped the update. */
static int fence_done(th_msql *s, int n, const char *id, int attempt, th_error *err)
{
	if (n == 0)
		n = fence_error(s, id, attempt, err);
	return n < 0 ? n : TH_OK;
}

int th_msql__op_extend(th_meta *m, const char *id, int attempt, int64_t lease_ms, th_error *err)
{
	th_msql *s = (th_msql *)m;
	int64_t now = th_now_ms();
	int n;

	th_meta_lazy(m, 1);
	if ((n = th_msql__lock(s, err)) >= 0) {
		n = th_msql__run_locked(s, &op_extend, NULL, NULL, err, "sdii", id, attempt,
		                        now + lease_ms, now);
		n = fence_done(s, n, id, attempt, err);
		th_msql__unlock(s);
	}
	th_meta_lazy(m, 0);
	return n;
}

int th_msql__op_progress(th_meta *m, const char *id, int attempt, uint64_t bytes_read,
                         uint64_t rows, int64_t lease_ms, th_error *err)
{
	th_msql *s = (th_msql *)m;
	int n;

	th_meta_lazy(m, 1);
	if ((n = th_msql__lock(s, err)) >= 0) {
		n = th_msql__run_locked(s, &op_progress, NULL, NULL, err, "sdiiii", id, attempt,
		                        (int64_t)bytes_read, (int64_t)rows, th_now_ms(), lease_ms);
		n = fence_done(s, n, id, attempt, err);
		th_msql__unlock(s);
	}
	th_meta_lazy(m, 0);
	return n;
}

int th_msql__op_complete(th_meta *m, const char *id, int attempt, const char *result_json,
                         int64_t pull_id, th_error *err)
{
	struct gc_req r;

	memset(&r, 0, sizeof(r));
	r.s = (th_msql *)m;
	r.kind = GC_COMPLETE;
	r.id = id;
	r.attempt = attempt;
	r.text = result_json;
	r.pull_id = pull_id;
	return gc_submit(&r, err);
}

int th_msql__op_fail(th_meta *m, const char *id, int attempt, const char *message, uint64_t line,
                     uint32_t column, const char *result_json, th_error *err)
{
	struct gc_req r;

	memset(&r, 0, sizeof(r));
	r.s = (th_msql *)m;
	r.kind = GC_FAIL;
	r.id = id;
	r.attempt = attempt;
	r.text = message;
	r.result = result_json;
	r.line = line;
	r.column = column;
	return gc_submit(&r, err);
}
