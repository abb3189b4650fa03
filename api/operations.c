/* operations.c: polling an upload's operation and listing operations, in DoltHub's shapes.
 *
 *   GET /api/v1alpha1/{owner}/{db}/upload?branchName=B&operationName=N   (also branch=B)
 *   GET /api/v1alpha1/{owner}/{db}/jobs
 *   GET /api/v1alpha1/users/{user}/operations
 *
 * Both lists filter by `state` (queued, running, failed, completed) and `kind` (import, merge, ...,
 * or DoltHub's operationType), page with pageToken and pageSize (1-200, default 50), and show for
 * each operation the file it read (files.c), when it read one.
 *
 * An operation is one row of meta.sqlite's operations table; its DoltHub names are
 * repositoryOwners/<owner>/repositories/<db>/jobs/<uuid> (the job) and
 * users/<creator>/userOperations/<uuid> (the user's operation). The poll accepts either, or the
 * bare uuid. The poll is the hot path of a client waiting for an import: one indexed lookup and a
 * small JSON object.
 *
 * The names are parsed and formatted here only (api_op_name_parse, api_op_job_name,
 * api_op_user_name), for every route that hands them out or takes them back (uploads, merges).
 *
 * DoltHub uses three vocabularies for one state: job_status of the poll (Pending, In Progress,
 * Completed, plus Failed: the store's own names, th_op_state_name), status of the jobs list
 * (Pending, Running, Succeeded, Failed) and operation_status of the operations list (Pending,
 * Running, Success, Failure), both in one table here. Each list keeps DoltHub's words and adds
 * tablehub's `job_status` beside them. A kind's operationType ("Import", "Merge") is its api_name
 * in the queue's table of kinds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "tablehub/jobs.h"
#include "tablehub/meta.h"
#include "tablehub/meta_files.h"
#include "tablehub/text.h"

#define POLL_FRESH_MS 100

/* --- operation names ------------------------------------------------------------------------- */

const char *api_op_job_name(api_pool *pool, const char *owner, const char *db, const char *id)
{
	return api_pool_printf(pool, "repositoryOwners/%s/repositories/%s/jobs/%s", owner, db, id);
}

const char *api_op_user_name(api_pool *pool, const char *user, const char *id)
{
	return api_pool_printf(pool, "users/%s/userOperations/%s", user, id);
}

int api_op_name_parse(char id[TH_UUID_SIZE], const th_req *req, const char *name, th_error *err)
{
	char prefix[200];
	const char *p = name;
	size_t n;

	n = (size_t)snprintf(prefix, sizeof(prefix), "repositoryOwners/%s/repositories/%s/jobs/",
	                     req->db.owner, req->db.name);
	if (strncmp(p, prefix, n) == 0) {
		p += n;
	} else if (strncmp(p, "users/", 6) == 0 && strstr(p, "/userOperations/") != NULL) {
		p = strstr(p, "/userOperations/") + 16;
	} else if (strncmp(p, "repositoryOwners/", 17) == 0) {
		return th_error_set(err, TH_ENOTFOUND, "operation '%.200s' not found in '%s/%s'",
		                    name, req->db.owner, req->db.name);
	}
	if (!th_uuid_valid(p, 0))
		return th_error_set(err, TH_EINVALID,
		                    "'operationName' is not an operation name: '%.200s' (want "
		                    "repositoryOwners/%s/repositories/%s/jobs/<id>)",
		                    name, req->db.owner, req->db.name);
	memcpy(id, p, TH_UUID_SIZE);
	return TH_OK;
}

/* --- kinds and states in DoltHub's words ------------------------------------------------------ */

/* The kind's entry in the queue's table of kinds, or NULL. */
static const th_job_kind *kind_of(const char *kind)
{
	size_t i;

	for (i = 0; th_job_kinds[i] != NULL; i++)
		if (strcmp(th_job_kinds[i]->name, kind) == 0)
			return th_job_kinds[i];
	return NULL;
}

/* DoltHub's operationType of an operation: "Import", "Merge". */
static const char *job_type(const th_op_info *op)
{
	const th_job_kind *k = kind_of(op->kind);

	return k && k->api_name ? k->api_name : op->kind;
}

static char *op_description(api_pool *pool, const th_op_info *op)
{
	if (strcmp(op->kind, "merge") == 0)
		return api_pool_printf(pool, "Merge pull request #%lld", (long long)op->pull_id);
	if (strcmp(op->kind, "import") == 0)
		return api_pool_printf(pool, "Import %s into %s", op->file_name, op->table_name);
	return api_pool_strdup(pool, job_type(op));
}

static cJSON *num(cJSON *obj, const char *key, double v)
{
	return cJSON_AddNumberToObject(obj, key, v);
}

/* progress {bytes_read, bytes_total, rows_processed} and, when present, result (the stored JSON
 * object: commit, branch, pull_id, rows_added, rows_modified, rows_removed). */
static int add_progress_result(cJSON *body, const th_op_info *op)
{
	cJSON *pr = cJSON_AddObjectToObject(body, "progress");

	if (pr == NULL || !num(pr, "bytes_read", (double)op->bytes_read) ||
	    !num(pr, "bytes_total", (double)op->bytes_total) ||
	    !num(pr, "rows_processed", (double)op->rows_processed))
		return -1;
	if (op->result != NULL) {
		cJSON *res = cJSON_Parse(op->result);
		if (res != NULL && cJSON_IsObject(res))
			cJSON_AddItemToObject(body, "result", res);
		else
			cJSON_Delete(res);
	}
	return 0;
}

int api_upload_poll(th_req *req, th_error *err)
{
	const char *name = api_arg(req, "operationName");
	const char *branch = api_arg(req, "branchName");
	th_op_info op;
	char id[TH_UUID_SIZE], pull[24], key[API_CACHE_KEY], live[API_CACHE_KEY + 24], cached[2048];
	char *text;
	cJSON *body = NULL;
	size_t len;
	int error;

	if (branch == NULL)
		branch = api_arg(req, "branch");
	if (name == NULL || name[0] == '\0')
		return th_error_set(err, TH_EINVALID,
		                    "query parameter 'operationName' is required");
	api_echo(req, "operation_name", name);
	/* A finished operation never changes: its reply is served from memory (and a running one's
	 * for a tenth of a second, or until this server's workers finish an operation, whichever
	 * comes first: the client waiting for it hears at once that it ended). */
	snprintf(key, sizeof(key), "%lld|%.200s", (long long)req->db.id, name);
	snprintf(live, sizeof(live), "%s|%lu", key, th_jobs_finished(req->srv->jobs));
	if (strlen(name) > 200)
		key[0] = '\0'; /* too long to be a key: not cached */
	if (key[0] && (((len = api_cache_get(req->srv->polls, key, cached, sizeof(cached))) > 0 &&
	                len <= sizeof(cached)) ||
	               ((len = api_cache_get(req->srv->polls, live, cached, sizeof(cached))) > 0 &&
	                len <= sizeof(cached))))
		return api_reply_text(req, MHD_HTTP_OK, cached, len, err);
	if ((error = api_op_name_parse(id, req, name, err)) < 0)
		return error;
	memset(&op, 0, sizeof(op));
	if ((error = th_meta_op_get(&op, req->srv->meta, id, err)) < 0)
		return error;
	if (strcmp(op.owner, req->db.owner) != 0 || strcmp(op.db, req->db.name) != 0) {
		th_op_info_dispose(&op);
		return th_error_set(err, TH_ENOTFOUND, "operation '%.200s' not found in '%s/%s'",
		                    name, req->db.owner, req->db.name);
	}
	body = api_success();
	if (body == NULL || !api_json_str(body, "operation_name", name) ||
	    !cJSON_AddTrueToObject(body, "job_created") ||
	    !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    !api_json_str(body, "branch_name", op.branch_name[0] ? op.branch_name : "main") ||
	    !api_json_str(body, "table_name", op.table_name) ||
	    !api_json_str(body, "job_status", th_op_state_name(op.state)))
		goto oom;
	if (op.state == TH_OPSTATE_COMPLETED && op.pull_id > 0) {
		snprintf(pull, sizeof(pull), "%lld", (long long)op.pull_id);
		if (!api_json_str(body, "pull_id", pull))
			goto oom;
	}
	if (op.state == TH_OPSTATE_FAILED) {
		if (!api_json_str(body, "message", op.error_message ? op.error_message : "failed"))
			goto oom;
		if (op.error_line > 0 && (!num(body, "line", (double)op.error_line) ||
		                          !num(body, "column", (double)op.error_column)))
			goto oom;
	}
	if (add_progress_result(body, &op) < 0 || (text = cJSON_PrintUnformatted(body)) == NULL)
		goto oom;
	len = strlen(text);
	/* Finished: cached for good (until evicted). Running: for POLL_FRESH_MS, so a crowd of
	 * pollers costs one lookup per interval; progress is shown that much later at most. */
	if (key[0] && (op.state == TH_OPSTATE_COMPLETED || op.state == TH_OPSTATE_FAILED))
		api_cache_put(req->srv->polls, key, text, len, 0);
	else if (key[0])
		api_cache_put(req->srv->polls, live, text, len, POLL_FRESH_MS);
	error = api_reply_text(req, MHD_HTTP_OK, text, len, err);
	cJSON_free(text);
	cJSON_Delete(body);
	th_op_info_dispose(&op);
	return error;
oom:
	cJSON_Delete(body);
	th_op_info_dispose(&op);
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

/* A state in the words of DoltHub's lists: `status` of the jobs list and `operation_status` of the
 * operations list. job_status everywhere is the store's own name (th_op_state_name). */
static const struct dolthub_state {
	const char *jobs, *operations;
} dolthub_states[] = {
	[TH_OPSTATE_PENDING] = { "Pending", "Pending" },
	[TH_OPSTATE_IN_PROGRESS] = { "Running", "Running" },
	[TH_OPSTATE_COMPLETED] = { "Succeeded", "Success" },
	[TH_OPSTATE_FAILED] = { "Failed", "Failure" },
};

static const struct dolthub_state *dolthub_state(th_op_state s)
{
	if ((int)s < TH_OPSTATE_PENDING || (int)s > TH_OPSTATE_FAILED)
		s = TH_OPSTATE_FAILED;
	return &dolthub_states[s];
}

/* One operation as a list item; `user_view` picks the operations-list shape over the jobs-list
 * shape. Returns NULL when out of memory. */
static cJSON *op_item(api_pool *pool, const th_op_info *op, int user_view)
{
	cJSON *it = cJSON_CreateObject();
	char created[32], updated[32];
	const char *job_name, *desc;

	job_name = api_op_job_name(pool, op->owner, op->db, op->id);
	desc = op_description(pool, op);
	th_time_fmt(created, op->created_at);
	th_time_fmt(updated, op->updated_at);
	if (it == NULL || job_name == NULL || desc == NULL)
		goto oom;
	if (!user_view) {
		if (!api_json_str(it, "job_id", job_name) ||
		    !api_json_str(it, "creator", op->creator) ||
		    !api_json_str(it, "description", desc) ||
		    !api_json_str(it, "job_type", job_type(op)) ||
		    !api_json_str(it, "status", dolthub_state(op->state)->jobs) ||
		    !api_json_str(it, "created_at", created) ||
		    !api_json_str(it, "error", op->error_message ? op->error_message : ""))
			goto oom;
	} else {
		cJSON *meta = cJSON_CreateObject();
		char *meta_text;
		if (meta == NULL || !api_json_str(meta, "database_owner", op->owner) ||
		    !api_json_str(meta, "database_name", op->db) ||
		    !api_json_str(meta, "job_id", job_name) ||
		    (meta_text = cJSON_PrintUnformatted(meta)) == NULL) {
			cJSON_Delete(meta);
			goto oom;
		}
		cJSON_Delete(meta);
		if (!api_json_str(it, "operation_name",
		                  api_op_user_name(pool, op->creator, op->id)) ||
		    !api_json_str(it, "creator", op->creator) ||
		    !api_json_str(it, "description", desc) ||
		    !api_json_str(it, "operation_type", job_type(op)) ||
		    !api_json_str(it, "operation_status", dolthub_state(op->state)->operations) ||
		    !api_json_str(it, "error", op->error_message ? op->error_message : "") ||
		    !api_json_str(it, "metadata", meta_text) ||
		    !api_json_str(it, "created_at", created) ||
		    !api_json_str(it, "updated_at", updated) ||
		    !api_json_str(it, "database_owner", op->owner) ||
		    !api_json_str(it, "database_name", op->db)) {
			cJSON_free(meta_text);
			goto oom;
		}
		cJSON_free(meta_text);
	}
	if (!api_json_str(it, "job_status", th_op_state_name(op->state)))
		goto oom;
	if (op->pull_id > 0) {
		char pull[24];
		snprintf(pull, sizeof(pull), "%lld", (long long)op->pull_id);
		if (!api_json_str(it, "pull_id", pull))
			goto oom;
	}
	return it;
oom:
	cJSON_Delete(it);
	return NULL;
}

/* "file": the file the operation read (file_id, name, size, sha256), or null. */
static int add_file(cJSON *it, th_req *req, const th_op_info *op)
{
	th_file_info f;
	th_error e = { 0 };
	cJSON *o;

	if (th_meta_file_of_op(&f, req->srv->meta, op->id, &e) < 0)
		return cJSON_AddNullToObject(it, "file") ? 0 : -1;
	if ((o = cJSON_AddObjectToObject(it, "file")) == NULL ||
	    !api_json_str(o, "file_id", f.id) || !api_json_str(o, "name", f.name) ||
	    !cJSON_AddNumberToObject(o, "size", (double)f.size) ||
	    !api_json_str(o, "sha256", f.sha256))
		return -1;
	return 0;
}

static int reply_list(th_req *req, cJSON *body, const char *key, const th_op_list *l,
                      const char *next, int user_view, th_error *err)
{
	cJSON *arr;

	if (body == NULL || (arr = cJSON_AddArrayToObject(body, key)) == NULL)
		goto oom;
	for (size_t i = 0; i < l->n; i++) {
		cJSON *it = op_item(&req->pool, &l->items[i], user_view);
		if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto oom;
		}
		if (add_file(it, req, &l->items[i]) < 0)
			goto oom;
	}
	if (!api_json_str(body, "next_page_token", next))
		goto oom;
	return api_reply_json(req, MHD_HTTP_OK, body, err);
oom:
	cJSON_Delete(body);
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

/* The filters of a list from the query string: state, kind (or DoltHub's operationType, named
 * by `type_arg`) and pageSize. A kind tablehub never runs sets *none (the list is empty). */
static int list_filters(th_op_query *q, size_t *page_size, int *none, th_req *req,
                        const char *type_arg, th_error *err)
{
	static const struct {
		const char *name;
		th_op_state state;
	} states[] = {
		{ "queued", TH_OPSTATE_PENDING },      { "pending", TH_OPSTATE_PENDING },
		{ "running", TH_OPSTATE_IN_PROGRESS }, { "in progress", TH_OPSTATE_IN_PROGRESS },
		{ "failed", TH_OPSTATE_FAILED },       { "failure", TH_OPSTATE_FAILED },
		{ "completed", TH_OPSTATE_COMPLETED }, { "succeeded", TH_OPSTATE_COMPLETED },
		{ "success", TH_OPSTATE_COMPLETED },
	};
	const char *state = api_arg(req, "state"), *kind = api_arg(req, "kind");
	const char *size = api_arg(req, "pageSize");
	size_t i;

	*none = 0;
	if (kind == NULL || kind[0] == '\0')
		kind = type_arg ? api_arg(req, type_arg) : NULL;
	if (state != NULL && state[0] != '\0') {
		for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
			if (strcasecmp(state, states[i].name) == 0)
				q->state = states[i].state;
		if (q->state == 0)
			return th_error_set(err, TH_EINVALID,
			                    "'state' must be queued, running, failed or completed "
			                    "(got '%.64s')",
			                    state);
	}
	if (kind != NULL && kind[0] != '\0') {
		for (i = 0; th_job_kinds[i] != NULL; i++)
			if (strcasecmp(kind, th_job_kinds[i]->name) == 0 ||
			    (th_job_kinds[i]->api_name &&
			     strcasecmp(kind, th_job_kinds[i]->api_name) == 0))
				q->kind = th_job_kinds[i]->name;
		if (q->kind == NULL) {
			if (strcasecmp(kind, "SqlWrite") != 0 && strcasecmp(kind, "SqlRead") != 0 &&
			    strcasecmp(kind, "Migrate") != 0) {
				char names[160] = "";
				for (i = 0; th_job_kinds[i] != NULL; i++)
					snprintf(names + strlen(names),
					         sizeof(names) - strlen(names), "%s%s",
					         i ? ", " : "", th_job_kinds[i]->name);
				return th_error_set(
				        err, TH_EINVALID, "'%s' must be one of %s (got '%.64s')",
				        api_arg(req, "kind") ? "kind" : type_arg, names, kind);
			}
			*none = 1; /* DoltHub's kinds tablehub never runs: an empty list */
		}
	}
	*page_size = 0;
	if (size != NULL && size[0] != '\0') {
		char *end;
		long n = strtol(size, &end, 10);
		if (*end != '\0' || n < 1 || n > 200)
			return th_error_set(
			        err, TH_EINVALID,
			        "'pageSize' must be a number from 1 to 200 (got '%.32s')", size);
		*page_size = (size_t)n;
	}
	return TH_OK;
}

int api_jobs_list(th_req *req, th_error *err)
{
	th_op_list l = { NULL, 0 };
	char next[TH_PAGE_TOKEN_SIZE] = "";
	th_op_query q = { req->db.owner, req->db.name, NULL, NULL, 0 };
	size_t page_size;
	cJSON *body;
	int error, none;

	if ((error = list_filters(&q, &page_size, &none, req, NULL, err)) < 0)
		return error;
	error = none ? TH_OK
	             : th_meta_op_list(&l, next, req->srv->meta, &q, api_arg(req, "pageToken"),
	                               page_size, err);
	if (error == TH_EINVALID)
		return th_error_set(err, TH_EINVALID, "bad 'pageToken'");
	if (error < 0)
		return error;
	body = api_success();
	if (body != NULL && (!api_json_str(body, "database_owner", req->db.owner) ||
	                     !api_json_str(body, "database_name", req->db.name))) {
		cJSON_Delete(body);
		body = NULL;
	}
	error = reply_list(req, body, "jobs", &l, next, 0, err);
	th_op_list_dispose(&l);
	return error;
}

int api_user_operations(th_req *req, th_error *err)
{
	const char *user = api_cap(req, "user");
	th_op_list l = { NULL, 0 };
	char next[TH_PAGE_TOKEN_SIZE] = "";
	th_op_query q = { NULL, NULL, user, NULL, 0 };
	size_t page_size;
	int error, none;

	if (strcmp(user, req->user) != 0) {
		char msg[200];
		snprintf(msg, sizeof(msg), "you can list only your own operations (users/%s)",
		         req->user);
		return api_reply_error(req, MHD_HTTP_FORBIDDEN, "EFORBIDDEN", msg) < 0 ? TH_ENOMEM
		                                                                       : TH_OK;
	}
	if ((error = list_filters(&q, &page_size, &none, req, "operationType", err)) < 0)
		return error;
	if (!none) {
		error = th_meta_op_list(&l, next, req->srv->meta, &q, api_arg(req, "pageToken"),
		                        page_size, err);
		if (error == TH_EINVALID)
			return th_error_set(err, TH_EINVALID, "bad 'pageToken'");
		if (error < 0)
			return error;
	}
	error = reply_list(req, api_success(), "operations", &l, next, 1, err);
	th_op_list_dispose(&l);
	return error;
}
