/* meta_control.c: the store calls of include/tablehub/meta_control.h, for the SQLite backend:
 * cancel requests (table operation_cancels, migration 4 of meta_sqlite.c) and the lookup of a
 * database's unfinished operation of one kind.
 *
 * Kept out of the backend's per-resource files, as meta_limits.c is: the calls are rare (a cancel
 * is a user's click; a worker asks whether its job was cancelled a few times a second at most),
 * so each prepares its statement when it runs instead of taking a slot of the prepared-statement
 * table. The cancel runs in one BEGIN IMMEDIATE transaction: a Pending operation cannot be claimed
 * between the read of its state and its end, and an In Progress one cannot end unseen.
 */
#include <stdio.h>
#include <string.h>

#include "meta_sqlite.h"
#include "tablehub/meta_control.h"

/* The SQLite handle of m, or NULL (with err set) for another backend. */
static th_msql *sqlite_of(th_meta *m, th_error *err)
{
	if (m->ops != &th_meta_sqlite_ops) {
		th_error_set(err, TH_ERROR, "the %s metadata backend cannot cancel operations",
		             m->ops->name);
		return NULL;
	}
	return (th_msql *)m;
}

/* Prepare sql on s (its mutex held). Returns TH_OK or TH_ESTORE. */
static int prepare(sqlite3_stmt **st, th_msql *s, const char *sql, const char *what, th_error *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return th_msql__error(s, what, err);
	}
	return TH_OK;
}

/* Run a statement that returns no rows (its mutex held). Returns TH_OK or TH_ESTORE. */
static int step_done(th_msql *s, sqlite3_stmt *st, const char *what, th_error *err)
{
	return sqlite3_step(st) == SQLITE_DONE ? TH_OK : th_msql__error(s, what, err);
}

struct cancel {
	const char *id, *by;
	th_op_state state; /* afterwards */
};

static int cancel_tx(th_msql *s, void *ctx, th_error *err)
{
	static const char what[] = "cancel operation";
	struct cancel *c = ctx;
	sqlite3_stmt *st = NULL;
	char msg[128];
	int64_t now = th_now_ms();
	int error, rc;

	if ((error = prepare(&st, s, "SELECT state FROM operations WHERE id = ?1", what, err)) < 0)
		return error;
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		c->state = th_op_state_parse(th_msql__text(st, 0));
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return th_error_set(err, TH_ENOTFOUND, "operation '%s' not found", c->id);
	if (rc != SQLITE_ROW)
		return th_msql__error(s, what, err);
	if (c->state != TH_OPSTATE_PENDING && c->state != TH_OPSTATE_IN_PROGRESS)
		return th_error_set(err, TH_ECONFLICT, "operation '%s' has already ended (%s)",
		                    c->id, th_op_state_name(c->state));
	/* The first request is the one on record. */
	if ((error = prepare(&st, s,
	                     "INSERT OR IGNORE INTO operation_cancels(op_id, requested_by, "
	                     "requested_at) VALUES (?1, ?2, ?3)",
	                     what, err)) < 0)
		return error;
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	error = step_done(s, st, what, err);
	sqlite3_finalize(st);
	if (error < 0 || c->state != TH_OPSTATE_PENDING)
		return error;
	/* Nobody holds a Pending operation: it ends here. */
	snprintf(msg, sizeof(msg), TH_OP_CANCELLED_FMT, c->by);
	if ((error = prepare(&st, s,
	                     "UPDATE operations SET state = 'Failed', error_message = ?2, "
	                     "error_line = 0, error_column = 0, lease_expires_at = 0, "
	                     "updated_at = ?3 WHERE id = ?1 AND state = 'Pending'",
	                     what, err)) < 0)
		return error;
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, msg, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	error = step_done(s, st, what, err);
	sqlite3_finalize(st);
	if (error == TH_OK)
		c->state = TH_OPSTATE_FAILED;
	return error;
}

int th_meta_op_cancel(th_op_state *state_out, th_meta *m, const char *id, const char *by,
                      th_error *err)
{
	th_msql *s = sqlite_of(m, err);
	struct cancel c = { id, by, (th_op_state)0 };
	int error;

	if (s == NULL)
		return TH_ERROR;
	if (by == NULL || by[0] == '\0' || strlen(by) > 64)
		return th_error_set(err, TH_EINVALID, "a cancel needs the name of who asks");
	if (id == NULL)
		return th_error_set(err, TH_ENOTFOUND, "operation '' not found");
	if ((error = th_msql__tx(s, cancel_tx, &c, err)) < 0)
		return error;
	if (state_out)
		*state_out = c.state;
	return TH_OK;
}

int th_meta_op_cancel_requested(int *requested_out, char by_out[65], th_meta *m, const char *id,
                                th_error *err)
{
	static const char what[] = "read cancel request";
	th_msql *s = sqlite_of(m, err);
	sqlite3_stmt *st = NULL;
	char by[65] = "";
	int error, rc, found = 0;

	if (s == NULL)
		return TH_ERROR;
	pthread_mutex_lock(&s->mu);
	if ((error = prepare(&st, s, "SELECT requested_by FROM operation_cancels WHERE op_id = ?1",
	                     what, err)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id ? id : "", -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		found = 1;
		th_msql__copy(by, sizeof(by), st, 0);
	} else if (rc != SQLITE_DONE) {
		error = th_msql__error(s, what, err);
	}
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	if (error < 0)
		return error;
	*requested_out = found;
	if (by_out)
		memcpy(by_out, by, sizeof(by));
	return TH_OK;
}

int th_meta_op_find_unfinished(int *found_out, char id_out[TH_UUID_SIZE], th_meta *m,
                               const char *kind, const char *owner, const char *db, th_error *err)
{
	static const char what[] = "find an unfinished operation";
	th_msql *s = sqlite_of(m, err);
	sqlite3_stmt *st = NULL;
	int error, rc;

	if (s == NULL)
		return TH_ERROR;
	pthread_mutex_lock(&s->mu);
	/* operations_db (owner, db, created_at) narrows this to the database's operations. */
	if ((error = prepare(&st, s,
	                     "SELECT id FROM operations WHERE owner = ?1 AND db = ?2 AND "
	                     "kind = ?3 AND state IN ('Pending', 'In Progress') "
	                     "ORDER BY created_at, rowid LIMIT 1",
	                     what, err)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, owner ? owner : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, db ? db : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kind ? kind : "", -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*found_out = 1;
		th_msql__copy(id_out, TH_UUID_SIZE, st, 0);
	} else if (rc == SQLITE_DONE) {
		*found_out = 0;
	} else {
		error = th_msql__error(s, what, err);
	}
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return error;
}
