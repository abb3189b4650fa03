/* merge_job.c: operation kind "merge" (see include/tablehub/jobs.h): a pull request merged into
 * its target branch as an operation.
 *
 * th_pulls_enqueue_merge queues it; the runner checks the pull is Open, merges its from-branch
 * into its to-branch with th_pull_merge (three-way, cell-wise, the target moved by compare-and-
 * swap), marks the pull Merged with the merge commit and sets the result {"commit", "pull_id",
 * "to_branch", "from_branch", "parents", "attempts", "up_to_date", "tables_changed",
 * "rows_changed"}. On conflicts it fails, the conflicts stored as the failed operation's result
 * (th_conflicts_to_json: a stored value, read back by the merge poll), and the pull stays Open.
 * The queue holds the database's writer lock while it runs (TH_JOB_WRITES_REPO).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tablehub/buf.h"
#include "tablehub/jobs.h"
#include "tablehub/log.h"
#include "tablehub/pulls.h"

int th_pulls_enqueue_merge(char op_id_out[TH_UUID_SIZE], th_meta *m, const char *owner,
                           const char *db, const char *creator, int64_t pull_id, th_error *err)
{
	th_op_new op;
	char params[64];

	snprintf(params, sizeof(params), "{\"pull_id\":%lld}", (long long)pull_id);
	memset(&op, 0, sizeof(op));
	op.kind = "merge";
	op.owner = owner;
	op.db = db;
	op.creator = creator;
	op.params = params;
	op.pull_id = pull_id;
	return th_meta_op_create(op_id_out, m, &op, err);
}

static int run_merge(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	th_meta *m = th_job_meta(ctx);
	th_db_info db;
	th_pull_info pull;
	th_pull_merge_result res;
	th_conflicts conflicts = TH_CONFLICTS_INIT;
	th_buf result = TH_BUF_INIT;
	th_repo *repo = NULL;
	char commit[41], ours[41], theirs[41];
	struct timespec t0, t1;
	int error;

	(void)payload;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&db, 0, sizeof(db));
	memset(&pull, 0, sizeof(pull));
	if ((error = th_meta_db_get(&db, m, job->owner, job->db, err)) < 0 ||
	    (error = th_meta_pull_get(&pull, m, db.id, job->pull_id, err)) < 0)
		goto cleanup;
	if (pull.state != TH_PULL_OPEN) {
		error = th_error_set(err, TH_ECONFLICT, "pull request #%lld is %s",
		                     (long long)job->pull_id, th_pull_state_name(pull.state));
		goto cleanup;
	}
	if ((error = th_job_repo_open(&repo, ctx, err)) < 0)
		goto cleanup;
	error = th_pull_merge(&res, &conflicts, repo, pull.from_branch, pull.to_branch,
	                      job->pull_id, job->creator, NULL, err);
	if (error == TH_ECONFLICT && conflicts.total > 0) {
		th_error saved = *err;
		int e2;

		if ((e2 = th_buf_puts(&result, "{\"conflicts\":", err)) < 0 ||
		    (e2 = th_conflicts_to_json(&result, &conflicts, err)) < 0 ||
		    (e2 = th_buf_printf(&result, err, ",\"conflicts_total\":%llu}",
		                        (unsigned long long)conflicts.total)) < 0 ||
		    (e2 = th_job_set_result(ctx, result.ptr, job->pull_id, err)) < 0) {
			error = e2;
			goto cleanup;
		}
		*err = saved;
		if (conflicts.n > 0) {
			const th_conflict *c = &conflicts.v[0];
			th_error_set(err, TH_ECONFLICT,
			             "merge conflict: %llu conflicting change%s; first in table "
			             "'%s'%s%s%s%s%s: %s",
			             (unsigned long long)conflicts.total,
			             conflicts.total == 1 ? "" : "s", c->table,
			             c->key ? ", key " : "", c->key ? c->key : "",
			             c->column ? ", column '" : "", c->column ? c->column : "",
			             c->column ? "'" : "", c->reason ? c->reason : "conflict");
		}
		goto cleanup;
	}
	if (error < 0)
		goto cleanup;
	th_oid_fmt(commit, &res.commit);
	if ((error = th_meta_pull_set_state(m, db.id, job->pull_id, TH_PULL_MERGED, commit, err)) <
	    0)
		goto cleanup;
	th_oid_fmt(ours, &res.ours);
	th_oid_fmt(theirs, &res.theirs);
	if ((error = th_buf_printf(&result, err,
	                           "{\"commit\":\"%s\",\"pull_id\":%lld,\"to_branch\":", commit,
	                           (long long)job->pull_id)) < 0 ||
	    (error = th_buf_put_json_cstr(&result, pull.to_branch, err)) < 0 ||
	    (error = th_buf_puts(&result, ",\"from_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&result, pull.from_branch, err)) < 0 ||
	    (error = th_buf_printf(&result, err,
	                           ",\"parents\":[\"%s\",\"%s\"],\"attempts\":%d,"
	                           "\"up_to_date\":%s,\"tables_changed\":%llu,"
	                           "\"rows_changed\":%llu}",
	                           ours, theirs, res.attempts, res.up_to_date ? "true" : "false",
	                           (unsigned long long)res.stats.tables_changed,
	                           (unsigned long long)res.stats.rows_changed)) < 0)
		goto cleanup;
	error = th_job_set_result(ctx, result.ptr, job->pull_id, err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	TH_LOG(TH_LOG_INFO, "merged pull %s/%s#%lld into '%s' commit=%s attempts=%d in %.1f ms",
	       job->owner, job->db, (long long)job->pull_id, pull.to_branch, commit, res.attempts,
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
cleanup:
	th_repo_free(repo);
	th_conflicts_dispose(&conflicts);
	th_buf_dispose(&result);
	th_pull_info_dispose(&pull);
	th_db_info_dispose(&db);
	return error;
}

const th_job_kind th_job_kind_merge = { "merge", run_merge, TH_JOB_WRITES_REPO,
	                                "merge the pull request again" };
