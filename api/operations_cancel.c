/* operations_cancel.c: cancelling an operation.
 *
 *   POST /api/v1alpha1/{owner}/{db}/operations/{id}/cancel      (route in router.c)
 *
 * {id} is the operation's uuid: the last segment of its DoltHub name
 * repositoryOwners/<owner>/repositories/<db>/jobs/<uuid> (which holds slashes, so it cannot be a
 * path segment itself). The operation's creator or an admin of the database may cancel it (the
 * route needs the write role; 403 for others); an operation that has ended answers 409.
 *
 * DoltHub has no cancelled state, and its clients wait for Completed or Failed, so a cancelled
 * operation ends Failed with the message "cancelled by <user>" (no new state a client would wait
 * on forever). A Pending operation ends at once (200, job_status Failed). A running one is asked
 * to stop (202, job_status In Progress): its worker sees the request within a fraction of a second
 * (th_job_check), undoes what it made and ends Failed; an import commits nothing. A merge that has
 * already begun writing completes, and so does an import whose pull request exists: the poll then
 * shows Completed. Every cancel is recorded in the database's events ("operation.cancel").
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "tablehub/log.h"
#include "tablehub/meta.h"
#include "tablehub/meta_control.h"

/* The audit trail's "operation.cancel"; the cancel is done already, so a failure is logged. */
static void record_cancel(th_req *req, const th_op_info *op)
{
	char detail[128];
	th_error err = { 0 };
	th_event_new ev;

	snprintf(detail, sizeof(detail), "{\"kind\":\"%s\",\"creator\":\"%s\"}", op->kind,
	         op->creator);
	ev = api_event(req, "operation.cancel", op->id, detail);
	if (th_meta_event_add(req->srv->meta, &ev, &err) < 0)
		TH_LOG(TH_LOG_WARN, "req=%llu cancel of %s: event not recorded: %s",
		       (unsigned long long)req->id, op->id, err.msg);
}

int api_operation_cancel(th_req *req, th_error *err)
{
	const char *name = api_cap(req, "op"), *job;
	char id[TH_UUID_SIZE], msg[256];
	th_op_state state = (th_op_state)0;
	th_op_info op;
	cJSON *body;
	int error;

	if ((error = api_op_name_parse(id, req, name, err)) < 0)
		return error;
	memset(&op, 0, sizeof(op));
	if ((error = th_meta_op_get(&op, req->srv->meta, id, err)) < 0)
		return error;
	if (strcmp(op.owner, req->db.owner) != 0 || strcmp(op.db, req->db.name) != 0) {
		error = th_error_set(err, TH_ENOTFOUND, "operation '%s' not found in '%s/%s'", id,
		                     req->db.owner, req->db.name);
		goto cleanup;
	}
	if (strcmp(op.creator, req->user) != 0 && req->role < TH_ROLE_ADMIN) {
		error = th_error_set(err, TH_EFORBIDDEN,
		                     "only the operation's creator (%s) or an admin of '%s/%s' may "
		                     "cancel it",
		                     op.creator, req->db.owner, req->db.name);
		goto cleanup;
	}
	if ((error = th_meta_op_cancel(&state, req->srv->meta, id, req->user, err)) < 0)
		goto cleanup;
	record_cancel(req, &op);
	TH_LOG(TH_LOG_INFO, "req=%llu operation %s (%s %s/%s) cancelled by %s%s",
	       (unsigned long long)req->id, id, op.kind, op.owner, op.db, req->user,
	       state == TH_OPSTATE_FAILED ? "" : ": asked to stop");
	if (state == TH_OPSTATE_FAILED)
		snprintf(msg, sizeof(msg), "cancelled: the operation had not started");
	else
		snprintf(msg, sizeof(msg),
		         "cancel requested: the operation stops at its next step and commits "
		         "nothing (a merge that has begun writing, or an import whose pull request "
		         "is open, completes)");
	job = api_op_job_name(&req->pool, op.owner, op.db, id);
	body = api_success();
	if (body == NULL || job == NULL || !api_json_str(body, "operation_name", job) ||
	    !api_json_str(body, "job_status", th_op_state_name(state)) ||
	    !cJSON_AddTrueToObject(body, "cancel_requested") ||
	    !api_json_str(body, "message", msg)) {
		cJSON_Delete(body);
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = api_reply_json(req, state == TH_OPSTATE_FAILED ? MHD_HTTP_OK : MHD_HTTP_ACCEPTED,
	                       body, err);
cleanup:
	th_op_info_dispose(&op);
	return error;
}
