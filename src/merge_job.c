/* merge_job.c: operation kind "merge" (see include/tablehub/jobs.h): a pull request merged into
 * its target branch as an operation.
 *
 * th_pulls_enqueue_merge queues it; the runner checks the pull is Open, merges its from-branch
 * into its to-branch with th_pull_merge (three-way, cell-wise, the target moved by compare-and-
 * swap), sets the result {"commit", "pull_id", "to_branch", "from_branch", "parents", "attempts",
 * "up_to_date", "tables_changed", "rows_changed"} and, last, marks the pull Merged with the merge
 * commit. On conflicts it fails, the conflicts stored as the failed operation's result
 * (th_conflicts_to_json: a stored value, read back by the merge poll), and the pull stays Open.
 * The queue holds the database's writer lock while it runs (TH_JOB_WRITES_REPO).
 *
 * Cancel and time cap: a first attempt asks th_job_check once, before th_pull_merge writes
 * anything; the merge itself (its cost grows with the size of the change, not of the tables) then
 * runs to its end, and a merge that moved its target branch completes. A retry runs to its end
 * too, since its dead attempt may have moved the target already.
 *
 * Retries: an attempt may die after the target branch moved, before or after the pull was marked
 * Merged. th_pull_merge finds a merge commit of its own already on the target and returns it
 * instead of writing another; a retry that finds the pull Merged checks that its merge commit is
 * on the target (th_pull_merge_done). Either way the retry completes with the commit the first
 * attempt made. A merge operation that is not a retry still fails on a pull no longer Open.
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

/* Store the conflicts as the failed operation's result and say in err what the first one is.
 * Returns TH_ECONFLICT, or TH_ENOMEM. */
static int fail_with_conflicts(th_job_ctx *ctx, const th_op_info *job, const th_conflicts *c,
                               th_error *err)
{
	th_buf result = TH_BUF_INIT;
	const th_conflict *first = c->n > 0 ? &c->v[0] : NULL;
	int error;

	if ((error = th_buf_puts(&result, "{\"conflicts\":", err)) < 0 ||
	    (error = th_conflicts_to_json(&result, c, err)) < 0 ||
	    (error = th_buf_printf(&result, err, ",\"conflicts_total\":%llu}",
	                           (unsigned long long)c->total)) < 0 ||
	    (error = th_job_set_result(ctx, result.ptr, job->pull_id, err)) < 0) {
		th_buf_dispose(&result);
		return error;
	}
	th_buf_dispose(&result);
	if (first == NULL)
		return TH_ECONFLICT; /* none listed: err keeps the merge's own message */
	return th_error_set(err, TH_ECONFLICT,
	                    "merge conflict: %llu conflicting change%s; first in table "
	                    "'%s'%s%s%s%s%s: %s",
	                    (unsigned long long)c->total, c->total == 1 ? "" : "s", first->table,
	                    first->key ? ", key " : "", first->key ? first->key : "",
	                    first->column ? ", column '" : "", first->column ? first->column : "",
	                    first->column ? "'" : "", first->reason ? first->reason : "conflict");
}

/* The result of a merge done: {"commit", "pull_id", "to_branch", "from_branch", "parents",
 * "attempts", "up_to_date", "tables_changed", "rows_changed"}. */
static int set_result(th_job_ctx *ctx, const th_op_info *job, const th_pull_info *pull,
                      const th_pull_merge_result *res, th_error *err)
{
	th_buf result = TH_BUF_INIT;
	char commit[41], ours[41], theirs[41];
	int error;

	th_oid_fmt(commit, &res->commit);
	th_oid_fmt(ours, &res->ours);
	th_oid_fmt(theirs, &res->theirs);
	if ((error = th_buf_printf(&result, err,
	                           "{\"commit\":\"%s\",\"pull_id\":%lld,\"to_branch\":", commit,
	                           (long long)job->pull_id)) < 0 ||
	    (error = th_buf_put_json_cstr(&result, pull->to_branch, err)) < 0 ||
	    (error = th_buf_puts(&result, ",\"from_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&result, pull->from_branch, err)) < 0 ||
	    (error = th_buf_printf(&result, err,
	                           ",\"parents\":[\"%s\",\"%s\"],\"attempts\":%d,"
	                           "\"up_to_date\":%s,\"tables_changed\":%llu,"
	                           "\"rows_changed\":%llu}",
	                           ours, theirs, res->attempts, res->up_to_date ? "true" : "false",
	                           (unsigned long long)res->stats.tables_changed,
	                           (unsigned long long)res->stats.rows_changed)) < 0)
		goto cleanup;
	error = th_job_set_result(ctx, result.ptr, job->pull_id, err);
cleanup:
	th_buf_dispose(&result);
	return error;
}

static int run_merge(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	th_meta *m = th_job_meta(ctx);
	th_db_info db;
	th_pull_info pull;
	th_pull_merge_result res;
	th_conflicts conflicts = TH_CONFLICTS_INIT;
	th_repo *repo = NULL;
	th_oid done;
	char commit[41];
	struct timespec t0, t1;
	int error, retry_of_merged;

	(void)payload;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&db, 0, sizeof(db));
	memset(&pull, 0, sizeof(pull));
	if ((error = th_meta_db_get(&db, m, job->owner, job->db, err)) < 0 ||
	    (error = th_meta_pull_get(&pull, m, db.id, job->pull_id, err)) < 0)
		goto cleanup;
	/* A retry finding the pull Merged: did the attempt that died merge it? Then its commit,
	 * still on the target, is this merge's result. */
	retry_of_merged = pull.state == TH_PULL_MERGED && job->attempts > 1 &&
	                  pull.merge_commit[0] != '\0' &&
	                  th_oid_parse(&done, pull.merge_commit, NULL) == TH_OK;
	if (pull.state != TH_PULL_OPEN && !retry_of_merged) {
		error = th_error_set(err, TH_ECONFLICT, "pull request #%lld is %s",
		                     (long long)job->pull_id, th_pull_state_name(pull.state));
		goto cleanup;
	}
	if ((error = th_job_repo_open(&repo, ctx, err)) < 0)
		goto cleanup;
	/* Cancelled or out of time: stop before the merge writes anything. Once th_pull_merge runs
	 * it is not interrupted; a target branch it moved is the merge done. A retry is not
	 * stopped: the attempt that died may have moved the target already, which only
	 * th_pull_merge finds.
	 */
	if (job->attempts == 1 && (error = th_job_check(ctx, err)) < 0)
		goto cleanup;
	if (retry_of_merged) {
		error = th_pull_merge_done(&res, repo, pull.to_branch, &done, err);
		if (error == TH_ENOTFOUND)
			error = th_error_set(err, TH_ECONFLICT, "pull request #%lld is %s",
			                     (long long)job->pull_id,
			                     th_pull_state_name(pull.state));
		if (error < 0 || (error = set_result(ctx, job, &pull, &res, err)) < 0)
			goto cleanup;
	} else {
		error = th_pull_merge(&res, &conflicts, repo, pull.from_branch, pull.to_branch,
		                      job->pull_id, job->creator, NULL, err);
		if (error == TH_ECONFLICT && conflicts.total > 0)
			error = fail_with_conflicts(ctx, job, &conflicts, err);
		if (error < 0)
			goto cleanup;
		/* The pull is marked Merged last: a failure before leaves it Open, and merging it
		 * again finds the merge commit on the target and completes with it. */
		th_oid_fmt(commit, &res.commit);
		if ((error = set_result(ctx, job, &pull, &res, err)) < 0 ||
		    (error = th_meta_pull_set_state(m, db.id, job->pull_id, TH_PULL_MERGED, commit,
		                                    err)) < 0)
			goto cleanup;
	}
	th_oid_fmt(commit, &res.commit);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	TH_LOG(TH_LOG_INFO, "merged pull %s/%s#%lld into '%s' commit=%s attempts=%d%s in %.1f ms",
	       job->owner, job->db, (long long)job->pull_id, pull.to_branch, commit, res.attempts,
	       res.recovered ? " (made by an earlier attempt)" : "",
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
cleanup:
	th_repo_free(repo);
	th_conflicts_dispose(&conflicts);
	th_pull_info_dispose(&pull);
	th_db_info_dispose(&db);
	return error;
}

const th_job_kind th_job_kind_merge = { "merge", "Merge", run_merge, TH_JOB_WRITES_REPO,
	                                "merge the pull request again" };
