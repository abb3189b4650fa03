/* sqlwrite_job.c: operation kind "sqlwrite" (see include/tablehub/jobs.h): DoltHub's SQL write,
 * statements run on a branch and committed there (src/sqlwrite.c), or, for an empty query, the
 * from-branch merged into the to-branch.
 *
 * th_sqlwrite_enqueue stores {"query", "from_branch", "to_branch"}; the runner writes on
 * to_branch (made from from_branch when missing) and sets the result {"from_commit_id",
 * "to_commit_id", "committed", "statements", "rows_affected", "rows_added", "rows_modified",
 * "rows_removed", "tables": [...], "from_branch", "to_branch", "merge"}. A failing statement fails
 * the operation with its message and place (line, column) and commits nothing. The queue holds
 * the database's writer lock while it runs (TH_JOB_WRITES_REPO).
 *
 * A merge fast-forwards the to-branch when it can, else writes a merge commit (three-way,
 * cell-wise, as pull requests merge); conflicts fail it, changing nothing.
 *
 * Retries: the commit message ends with "Operation: operations/<id>". An attempt that finds such a
 * commit among the last commits of the to-branch (an earlier attempt made it and died before
 * saying so) completes with it instead of running the statements a second time.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tablehub/jobs.h"
#include "tablehub/merge.h"
#include "tablehub/sqlwrite.h"
#include "tablehub/text.h"

#define RECOVER_LOG_LIMIT 100

int th_sqlwrite_enqueue(char op_id_out[TH_UUID_SIZE], th_meta *m, const char *owner, const char *db,
                        const char *creator, const char *from, const char *to, const char *query,
                        th_error *err)
{
	th_buf params = TH_BUF_INIT;
	th_op_new op;
	int error;

	if (!owner || !th_name_valid(owner) || !db || !th_name_valid(db) || !creator ||
	    !th_name_valid(creator))
		return th_error_set(err, TH_EINVALID,
		                    "a SQL write needs a valid owner, db and creator");
	if (from == NULL || !th_repo_branch_name_valid(from) || to == NULL ||
	    !th_repo_branch_name_valid(to))
		return th_error_set(err, TH_EINVALID, "a SQL write needs valid branch names");
	if ((error = th_buf_puts(&params, "{\"query\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&params, query ? query : "", err)) < 0 ||
	    (error = th_buf_puts(&params, ",\"from_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&params, from, err)) < 0 ||
	    (error = th_buf_puts(&params, ",\"to_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&params, to, err)) < 0 ||
	    (error = th_buf_putc(&params, '}', err)) < 0)
		goto cleanup;
	memset(&op, 0, sizeof(op));
	op.kind = "sqlwrite";
	op.owner = owner;
	op.db = db;
	op.creator = creator;
	op.params = params.ptr;
	op.branch_name = to;
	error = th_meta_op_create(op_id_out, m, &op, err);
cleanup:
	th_buf_dispose(&params);
	return error;
}

/* --- an earlier attempt's commit ------------------------------------------------------------- */

struct find {
	const char *trailer;
	th_oid found, parent;
	int has_parent;
};

static int find_cb(const th_commit_info *ci, void *payload)
{
	struct find *f = payload;
	const char *msg = ci->message ? ci->message : "";
	size_t n = strlen(f->trailer), len = strlen(msg);

	while (len > 0 && msg[len - 1] == '\n')
		len--;
	if (len < n || memcmp(msg + len - n, f->trailer, n) != 0)
		return 0;
	f->found = ci->id;
	f->has_parent = ci->nparents > 0;
	if (f->has_parent)
		f->parent = ci->parents[0];
	return 1;
}

/* The commit of this operation on branch `to`, if an earlier attempt made it: 1 (its result in
 * *res), 0 or an error. */
static int recover(th_sqlwrite_result *res, th_repo *repo, const char *to, const char *trailer,
                   th_error *err)
{
	struct find f;
	th_oid head;
	int rc;

	memset(&f, 0, sizeof(f));
	f.trailer = trailer;
	if (th_repo_branch_get(&head, repo, to, NULL) < 0)
		return 0;
	if ((rc = th_repo_log(repo, &head, RECOVER_LOG_LIMIT, find_cb, &f, err)) <= 0)
		return rc;
	if (!f.has_parent)
		return 0;
	if ((rc = th_sqlwrite_describe(res, repo, &f.parent, &f.found, err)) < 0)
		return rc;
	return 1;
}

/* --- an empty query: merge from into to ---------------------------------------------------- */

static int conflict_error(const th_conflicts *c, const char *from, const char *to, th_error *err)
{
	const th_conflict *first = c->n > 0 ? &c->v[0] : NULL;

	if (first == NULL)
		return TH_ECONFLICT;
	return th_error_set(err, TH_ECONFLICT,
	                    "merging '%s' into '%s': %llu conflicting change%s; first in table "
	                    "'%s'%s%s%s%s%s: %s",
	                    from, to, (unsigned long long)c->total, c->total == 1 ? "" : "s",
	                    first->table, first->key ? ", key " : "", first->key ? first->key : "",
	                    first->column ? ", column '" : "", first->column ? first->column : "",
	                    first->column ? "'" : "", first->reason ? first->reason : "conflict");
}

static int merge_branches(th_sqlwrite_result *res, th_repo *repo, const char *from, const char *to,
                          const char *author, const char *trailer, th_error *err)
{
	th_conflicts conflicts = TH_CONFLICTS_INIT;
	th_buf msg = TH_BUF_INIT, email = TH_BUF_INIT;
	th_oid f, t, base, tree, commit, parents[2];
	int error;

	if ((error = th_repo_branch_get(&f, repo, from, err)) < 0)
		return error == TH_ENOTFOUND
		               ? th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", from)
		               : error;
	error = th_repo_branch_get(&t, repo, to, err);
	if (error == TH_ENOTFOUND) { /* made from `from`: nothing to merge */
		if ((error = th_repo_branch_cas(repo, to, &f, NULL, "tablehub: SQL write", err)) <
		            0 ||
		    (error = th_sqlwrite_describe(res, repo, &f, &f, err)) < 0)
			return error;
		res->branch_created = 1;
		return TH_OK;
	}
	if (error < 0)
		return error;
	error = th_repo_merge_base(&base, repo, &t, &f, err);
	if (error == TH_ENOTFOUND)
		memset(&base, 0, sizeof(base));
	else if (error < 0)
		return error;
	if (th_oid_equal(&base, &f)) /* up to date */
		return th_sqlwrite_describe(res, repo, &t, &t, err);
	if (th_oid_equal(&base, &t)) { /* fast-forward */
		if ((error = th_repo_branch_cas(repo, to, &f, &t, "tablehub: merge", err)) < 0)
			return error;
		return th_sqlwrite_describe(res, repo, &t, &f, err);
	}
	error = th_merge_commits(&tree, NULL, NULL, &conflicts, repo, &t, &f, 0, err);
	if (error == TH_ECONFLICT && conflicts.total > 0)
		error = conflict_error(&conflicts, from, to, err);
	if (error < 0)
		goto cleanup;
	parents[0] = t;
	parents[1] = f;
	if ((error = th_buf_printf(&msg, err, "Merge branch '%s' into '%s'\n\n%s\n", from, to,
	                           trailer)) < 0 ||
	    (error = th_buf_printf(&email, err, "%s@tablehub.local", author)) < 0 ||
	    (error = th_repo_commit_write(&commit, repo, &tree, parents, 2, author, email.ptr,
	                                  msg.ptr, err)) < 0 ||
	    (error = th_repo_branch_cas(repo, to, &commit, &t, "tablehub: merge", err)) < 0)
		goto cleanup;
	error = th_sqlwrite_describe(res, repo, &t, &commit, err);
cleanup:
	th_conflicts_dispose(&conflicts);
	th_buf_dispose(&msg);
	th_buf_dispose(&email);
	return error;
}

/* --- the runner ------------------------------------------------------------------------------ */

static int blank(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char)*s) && *s != ';')
			return 0;
	return 1;
}

static int run_sqlwrite(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	cJSON *params = cJSON_Parse(job->params);
	const char *query, *from, *to;
	th_sqlwrite_result res;
	th_sqlwrite_opts o;
	th_repo *repo = NULL;
	th_buf result = TH_BUF_INIT, extra = TH_BUF_INIT;
	char trailer[80];
	int error, merge;

	(void)payload;
	memset(&res, 0, sizeof(res));
	query = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "query"));
	from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "from_branch"));
	to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "to_branch"));
	if (query == NULL || from == NULL || to == NULL) {
		error = th_error_set(err, TH_EINVALID, "invalid SQL write params");
		goto cleanup;
	}
	merge = blank(query);
	snprintf(trailer, sizeof(trailer), "Operation: operations/%s", job->id);
	if ((error = th_job_repo_open(&repo, ctx, err)) < 0)
		goto cleanup;
	if ((error = job->attempts > 1 ? recover(&res, repo, to, trailer, err) : 0) < 0)
		goto cleanup;
	if (error == 0 && merge) {
		error = merge_branches(&res, repo, from, to, job->creator, trailer, err);
	} else if (error == 0) {
		memset(&o, 0, sizeof(o));
		o.datadir = th_job_data_dir(ctx);
		o.owner = job->owner;
		o.db = job->db;
		o.branch = to;
		o.from = from;
		o.author = job->creator;
		o.trailer = trailer;
		error = th_sqlwrite_run(&res, repo, query, &o, err);
	}
	if (error < 0)
		goto cleanup;
	if ((error = th_buf_puts(&extra, ",\"from_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&extra, from, err)) < 0 ||
	    (error = th_buf_puts(&extra, ",\"to_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&extra, to, err)) < 0 ||
	    (error = th_buf_puts(&extra, merge ? ",\"merge\":true" : ",\"merge\":false", err)) <
	            0 ||
	    (error = th_sqlwrite_result_json(&result, &res, extra.ptr, err)) < 0)
		goto cleanup;
	th_job_progress(ctx, 0, res.statements);
	error = th_job_set_result(ctx, result.ptr, 0, err);
cleanup:
	th_sqlwrite_result_dispose(&res);
	th_repo_free(repo);
	th_buf_dispose(&result);
	th_buf_dispose(&extra);
	cJSON_Delete(params);
	return error;
}

const th_job_kind th_job_kind_sqlwrite = {
	"sqlwrite", "SqlWrite", run_sqlwrite, TH_JOB_WRITES_REPO, "send the write again", NULL
};
