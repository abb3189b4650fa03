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
 * The audit trail's "pull.merge" event (who asked, from which address: both kept in the
 * operation's params) is written in the same transaction that marks the pull Merged, with the
 * merge commit: a merge that fails, or has not run yet, records nothing as merged.
 *
 * deleteBranchOnMerge (th_pull_options): once the pull is Merged, its source branch is deleted,
 * with a "branch.delete" event, unless it is the default branch, protected, the source of another
 * Open pull, or moved past the merged commit since. The source of a pull from a fork is the
 * fork's branch (the parent holds only a copy): it is deleted in the fork, only when the merger
 * has the write role there. The result says which ("branch_deleted",
 * "branch_kept"), and the pull's options record a deletion.
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

#include <cjson/cJSON.h>

#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/jobs.h"
#include "tablehub/log.h"
#include "tablehub/meta_access.h"
#include "tablehub/pulls.h"

#define DEFAULT_BRANCH "main"

int th_pulls_enqueue_merge(char op_id_out[TH_UUID_SIZE], th_meta *m, const char *owner,
                           const char *db, const char *creator, int64_t pull_id,
                           const char *address, th_error *err)
{
	th_op_new op;
	th_buf params = TH_BUF_INIT;
	int error;

	if ((error = th_buf_printf(&params, err,
	                           "{\"pull_id\":%lld,\"address\":", (long long)pull_id)) < 0 ||
	    (error = th_buf_put_json_cstr(&params, address ? address : "", err)) < 0 ||
	    (error = th_buf_puts(&params, "}", err)) < 0)
		goto cleanup;
	memset(&op, 0, sizeof(op));
	op.kind = "merge";
	op.owner = owner;
	op.db = db;
	op.creator = creator;
	op.params = params.ptr;
	op.pull_id = pull_id;
	error = th_meta_op_create(op_id_out, m, &op, err);
cleanup:
	th_buf_dispose(&params);
	return error;
}

/* The client address the merge was asked from, kept in the params, into out ("" when none). */
static void params_address(char out[64], const th_op_info *job)
{
	cJSON *p = job->params ? cJSON_Parse(job->params) : NULL;
	const char *a = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "address"));

	snprintf(out, 64, "%s", a ? a : "");
	cJSON_Delete(p);
}

/* Mark the pull Merged with `commit` and write its "pull.merge" event, in one step. */
static int mark_merged(th_meta *m, const th_db_info *db, const th_op_info *job,
                       const th_pull_info *pull, const char *commit, const char *address,
                       th_error *err)
{
	th_buf detail = TH_BUF_INIT;
	th_event_new ev;
	char target[24];
	int error;

	snprintf(target, sizeof(target), "%lld", (long long)job->pull_id);
	if ((error = th_buf_puts(&detail, "{\"operation\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&detail, job->id, err)) < 0 ||
	    (error = th_buf_puts(&detail, ",\"from_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&detail, pull->from_branch, err)) < 0 ||
	    (error = th_buf_puts(&detail, ",\"to_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&detail, pull->to_branch, err)) < 0 ||
	    (error = th_buf_printf(&detail, err, ",\"commit\":\"%s\"}", commit)) < 0)
		goto cleanup;
	memset(&ev, 0, sizeof(ev));
	ev.db_id = db->id;
	ev.actor = job->creator;
	ev.action = "pull.merge";
	ev.target = target;
	ev.detail = detail.ptr;
	ev.address = address;
	error = th_meta_pull_mark_merged(m, db->id, job->pull_id, commit, &ev, err);
cleanup:
	th_buf_dispose(&detail);
	return error;
}

/* Is `branch` the source of an Open pull other than `pull_id`? 1, 0, or an error code. */
static int branch_in_use(th_meta *m, int64_t db_id, int64_t pull_id, const char *branch,
                         th_error *err)
{
	char tok[TH_PAGE_TOKEN_SIZE] = "", next[TH_PAGE_TOKEN_SIZE];
	int found = 0, error;

	do {
		th_pull_list l = { NULL, 0 };
		if ((error = th_meta_pull_list(&l, next, m, db_id, TH_PULL_OPEN, tok, 1000, err)) <
		    0)
			return error;
		for (size_t i = 0; i < l.n && !found; i++)
			found = l.items[i].pull_id != pull_id &&
			        strcmp(l.items[i].from_branch, branch) == 0;
		th_pull_list_dispose(&l);
		memcpy(tok, next, sizeof(tok));
	} while (!found && tok[0] != '\0');
	return found;
}

#define KEPT_SIZE 200

/* The merger's role on the fork `f`: admin for its owner, else a collaborator's role. */
static int fork_role(th_role *out, th_meta *m, const th_fork_info *f, const char *user,
                     th_error *err)
{
	if (strcmp(f->owner, user) == 0) {
		*out = TH_ROLE_ADMIN;
		return TH_OK;
	}
	return th_meta_collab_role(out, m, f->id, user, err);
}

/* deleteBranchOnMerge for merged pull `pull`: delete its source branch when the rules let it,
 * else say in kept (KEPT_SIZE bytes) why not. The branch of a pull from a fork is the fork's
 * (the parent holds a copy, "forks/<owner>/<branch>"): it goes only when the merger has the
 * write role on the fork. Sets *asked when the pull asked for it. Failures are logged and leave
 * the branch: the merge is done whatever happens here. */
static void delete_source(int *asked, int *deleted, char kept[KEPT_SIZE], th_job_ctx *ctx,
                          th_repo *repo, const th_db_info *db, const th_op_info *job,
                          const th_pull_info *pull, const th_oid *merged_head, const char *address)
{
	th_meta *m = th_job_meta(ctx);
	th_pull_options o;
	th_protection prot;
	th_fork_info fork;
	th_error err = { 0 };
	th_repo *fork_repo = NULL, *src = repo;
	th_oid head;
	th_role role = TH_ROLE_NONE;
	int64_t from_db = 0, src_db = db->id;
	const char *branch = pull->from_branch;
	char hex[41], detail[120], prefix[80];
	th_event_new ev;
	int error, busy;

	*asked = *deleted = 0;
	kept[0] = '\0';
	memset(&fork, 0, sizeof(fork));
	if (th_meta_pull_options_get(&o, m, db->id, job->pull_id, &err) < 0)
		goto fail;
	if (!o.delete_branch_on_merge)
		return;
	*asked = 1;
	if (o.branch_deleted) { /* an earlier attempt did it */
		*deleted = 1;
		return;
	}
	if (th_meta_pull_source(&from_db, m, db->id, job->pull_id, &err) < 0)
		goto fail;
	if (from_db != 0) {
		if (th_meta_fork_info(&fork, m, from_db, &err) < 0 ||
		    fork_role(&role, m, &fork, job->creator, &err) < 0)
			goto fail;
		if (role < TH_ROLE_WRITE) {
			snprintf(kept, KEPT_SIZE,
			         "it is a branch of the fork %s/%s, which the merger cannot write",
			         fork.owner, fork.name);
			return;
		}
		snprintf(prefix, sizeof(prefix), "forks/%s/", fork.owner);
		if (strncmp(branch, prefix, strlen(prefix)) != 0) {
			snprintf(kept, KEPT_SIZE, "it is no branch of the fork %s/%s", fork.owner,
			         fork.name);
			return;
		}
		branch += strlen(prefix);
		src_db = fork.id;
	}
	if (strcmp(branch, DEFAULT_BRANCH) == 0) {
		snprintf(kept, KEPT_SIZE, "it is the default branch");
		return;
	}
	error = th_meta_protection_get(&prot, m, src_db, branch, &err);
	if (error == TH_OK) {
		snprintf(kept, KEPT_SIZE, "it is protected");
		return;
	}
	if (error != TH_ENOTFOUND)
		goto fail;
	th_error_clear(&err);
	if ((busy = branch_in_use(m, db->id, job->pull_id, pull->from_branch, &err)) == 0 &&
	    src_db != db->id)
		busy = branch_in_use(m, src_db, 0, branch, &err);
	if (busy < 0)
		goto fail;
	if (busy) {
		snprintf(kept, KEPT_SIZE, "another open pull request is from it");
		return;
	}
	if (src_db != db->id) {
		if (th_datadir_repo_open(&fork_repo, th_job_data_dir(ctx), fork.owner, fork.name, 1,
		                         &err) < 0)
			goto fail;
		src = fork_repo;
	}
	error = th_repo_branch_get(&head, src, branch, &err);
	if (error == TH_ENOTFOUND) {
		snprintf(kept, KEPT_SIZE, "it is gone already");
		goto cleanup;
	}
	if (error < 0)
		goto fail;
	if (!th_oid_equal(&head, merged_head)) {
		snprintf(kept, KEPT_SIZE, "it has commits the merge did not take");
		goto cleanup;
	}
	if (th_repo_branch_delete(src, branch, &err) < 0)
		goto fail;
	th_oid_fmt(hex, &head);
	snprintf(detail, sizeof(detail), "{\"head\":\"%s\",\"pull_id\":%lld}", hex,
	         (long long)job->pull_id);
	memset(&ev, 0, sizeof(ev));
	ev.db_id = src_db; /* a fork's branch: the fork's trail */
	ev.actor = job->creator;
	ev.action = "branch.delete";
	ev.target = branch;
	ev.detail = detail;
	ev.address = address;
	*deleted = 1;
	o.branch_deleted = 1;
	if (th_meta_event_add(m, &ev, &err) < 0 ||
	    th_meta_pull_options_set(m, db->id, job->pull_id, &o, &err) < 0)
		TH_LOG(TH_LOG_WARN, "merge of pull %s/%s#%lld: branch deletion not recorded: %s",
		       job->owner, job->db, (long long)job->pull_id, err.msg);
	goto cleanup;
fail:
	TH_LOG(TH_LOG_WARN, "merge of pull %s/%s#%lld: source branch not deleted: %s", job->owner,
	       job->db, (long long)job->pull_id, err.msg);
	snprintf(kept, KEPT_SIZE, "deleting it failed");
cleanup:
	th_repo_free(fork_repo);
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
                      const th_pull_merge_result *res, int asked, int deleted, const char *kept,
                      th_error *err)
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
	                           "\"rows_changed\":%llu",
	                           ours, theirs, res->attempts, res->up_to_date ? "true" : "false",
	                           (unsigned long long)res->stats.tables_changed,
	                           (unsigned long long)res->stats.rows_changed)) < 0)
		goto cleanup;
	if (asked && (error = th_buf_printf(&result, err, ",\"branch_deleted\":%s",
	                                    deleted ? "true" : "false")) < 0)
		goto cleanup;
	if (asked && kept && kept[0] &&
	    ((error = th_buf_puts(&result, ",\"branch_kept\":", err)) < 0 ||
	     (error = th_buf_put_json_cstr(&result, kept, err)) < 0))
		goto cleanup;
	if ((error = th_buf_puts(&result, "}", err)) < 0)
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
	char commit[41], address[64], kept[KEPT_SIZE];
	struct timespec t0, t1;
	int error, retry_of_merged, asked, deleted;

	(void)payload;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	params_address(address, job);
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
		if (error < 0 || (error = set_result(ctx, job, &pull, &res, 0, 0, NULL, err)) < 0)
			goto cleanup;
	} else {
		error = th_pull_merge(&res, &conflicts, repo, pull.from_branch, pull.to_branch,
		                      job->pull_id, job->creator, NULL, err);
		if (error == TH_ECONFLICT && conflicts.total > 0)
			error = fail_with_conflicts(ctx, job, &conflicts, err);
		if (error < 0)
			goto cleanup;
		/* The pull is marked Merged (with its event) after the merge: a failure before
		 * leaves it Open, and merging it again finds the merge commit on the target and
		 * completes with it. */
		th_oid_fmt(commit, &res.commit);
		if ((error = set_result(ctx, job, &pull, &res, 0, 0, NULL, err)) < 0 ||
		    (error = mark_merged(m, &db, job, &pull, commit, address, err)) < 0)
			goto cleanup;
	}
	/* Merged: now its source branch may go (also on a retry, which finds it done). The merge
	 * is done whatever happens here: a result that cannot say so keeps the one set above. */
	delete_source(&asked, &deleted, kept, ctx, repo, &db, job, &pull, &res.theirs, address);
	if (asked && set_result(ctx, job, &pull, &res, asked, deleted, kept, err) < 0) {
		TH_LOG(TH_LOG_WARN, "merge of pull %s/%s#%lld: result without the branch: %s",
		       job->owner, job->db, (long long)job->pull_id, err->msg);
		th_error_clear(err);
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

const th_job_kind th_job_kind_merge = {
	"merge", "Merge", run_merge, TH_JOB_WRITES_REPO, "merge the pull request again", NULL
};
