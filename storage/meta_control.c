/* meta_control.c: the store calls of include/tablehub/meta_control.h, for the SQL backends (on
 * the statement layer of storage/meta_sql.h): cancel requests (table operation_cancels) and the
 * lookup of a database's unfinished operation of one kind.
 *
 * Kept out of the backend's per-resource files, as meta_limits.c is: the calls are rare (a cancel
 * is a user's click; a worker asks whether its job was cancelled a few times a second at most),
 * so each prepares its statement when it runs (MS_NOSLOT) instead of taking a slot of the
 * prepared-statement table. The cancel runs in one transaction (th_msql__tx): a Pending operation
 * cannot be claimed between the read of its state and its end, and an In Progress one cannot end
 * unseen.
 */
#include <stdio.h>
#include <string.h>

#include "meta_sql.h"
#include "tablehub/meta_control.h"

/* The first column as text into ctx (TH_UUID_SIZE or 65 bytes: both fit a name or an id). */
static int read_text65(void *ctx, const th_mrow *r, th_error *err)
{
	(void)err;
	th_msql__copy(ctx, 65, r, 0);
	return TH_OK;
}

static int read_state(void *ctx, const th_mrow *r, th_error *err)
{
	(void)err;
	*(th_op_state *)ctx = th_op_state_parse(th_msql__text(r, 0));
	return TH_OK;
}

static const th_msql_stmt cancel_read = { MS_NOSLOT, "cancel operation",
	                                  "SELECT state FROM operations WHERE id = ?1",
	                                  "SELECT state FROM operations WHERE id = ?1 FOR UPDATE" };

struct cancel {
	const char *id, *by;
	th_op_state state; /* afterwards */
};

static int cancel_tx(th_msql *s, void *ctx, th_error *err)
{
	static const char what[] = "cancel operation";
	struct cancel *c = ctx;
	char msg[128];
	int64_t now = th_now_ms();
	int n;

	/* FOR UPDATE on PostgreSQL: a claim cannot take the operation between this read and the
	 * end of the transaction (SQLite's BEGIN IMMEDIATE already excludes every other writer). */
	if ((n = th_msql__run_locked(s, &cancel_read, read_state, &c->state, err, "s", c->id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "operation '%s' not found", c->id);
	if (c->state != TH_OPSTATE_PENDING && c->state != TH_OPSTATE_IN_PROGRESS)
		return th_error_set(err, TH_ECONFLICT, "operation '%s' has already ended (%s)",
		                    c->id, th_op_state_name(c->state));
	/* The first request is the one on record. */
	if ((n = th_msql__exec_locked(
	             s, what,
	             "INSERT INTO operation_cancels(op_id, requested_by, requested_at) "
	             "VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
	             NULL, NULL, err, "ssi", c->id, c->by, now)) < 0)
		return n;
	if (c->state != TH_OPSTATE_PENDING)
		return TH_OK;
	/* Nobody holds a Pending operation: it ends here. */
	snprintf(msg, sizeof(msg), TH_OP_CANCELLED_FMT, c->by);
	if ((n = th_msql__exec_locked(s, what,
	                              "UPDATE operations SET state = 'Failed', error_message = ?2, "
	                              "error_line = 0, error_column = 0, lease_expires_at = 0, "
	                              "updated_at = ?3 WHERE id = ?1 AND state = 'Pending'",
	                              NULL, NULL, err, "ssi", c->id, msg, now)) < 0)
		return n;
	c->state = TH_OPSTATE_FAILED;
	return TH_OK;
}

int th_meta_op_cancel(th_op_state *state_out, th_meta *m, const char *id, const char *by,
                      th_error *err)
{
	struct cancel c = { id, by, (th_op_state)0 };
	int error;

	if (by == NULL || by[0] == '\0' || strlen(by) > 64)
		return th_error_set(err, TH_EINVALID, "a cancel needs the name of who asks");
	if (id == NULL)
		return th_error_set(err, TH_ENOTFOUND, "operation '' not found");
	if ((error = th_msql__tx((th_msql *)m, cancel_tx, &c, err)) < 0)
		return error;
	if (state_out)
		*state_out = c.state;
	return TH_OK;
}

int th_meta_op_cancel_requested(int *requested_out, char by_out[65], th_meta *m, const char *id,
                                th_error *err)
{
	char by[65] = "";
	int n;

	if ((n = th_msql__exec((th_msql *)m, "read cancel request",
	                       "SELECT requested_by FROM operation_cancels WHERE op_id = ?1",
	                       read_text65, by, err, "s", id ? id : "")) < 0)
		return n;
	*requested_out = n > 0;
	if (by_out)
		memcpy(by_out, by, sizeof(by));
	return TH_OK;
}

int th_meta_op_find_unfinished(int *found_out, char id_out[TH_UUID_SIZE], th_meta *m,
                               const char *kind, const char *owner, const char *db, th_error *err)
{
	char id[65] = "";
	int n;

	/* operations_db (owner, db, created_at) narrows this to the database's operations. */
	if ((n = th_msql__exec(
	             (th_msql *)m, "find an unfinished operation",
	             "SELECT id FROM operations WHERE owner = ?1 AND db = ?2 AND kind = ?3 AND "
	             "state IN ('Pending', 'In Progress') ORDER BY created_at, rowid LIMIT 1",
	             read_text65, id, err, "sss", owner ? owner : "", db ? db : "",
	             kind ? kind : "")) < 0)
		return n;
	*found_out = n > 0;
	if (n > 0)
		snprintf(id_out, TH_UUID_SIZE, "%.*s", TH_UUID_SIZE - 1, id);
	return TH_OK;
}
