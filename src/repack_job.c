/* repack_job.c: operation kind "repack" (see include/tablehub/jobs.h): a database's repository
 * repacked off the request path, when its loose objects or packs passed a threshold.
 *
 * The queue counts them after every operation of a kind that writes a repository, once that
 * operation's outcome is recorded (th_repack_maybe_enqueue: a few directory reads), and queues a
 * repack when there are too many, unless one is already waiting or running for that database. The
 * repack is an operation like the others (the database's owner is its creator): it is listed,
 * polled, cancelled and capped like them, survives a restart, and runs under the writer lock
 * (TH_JOB_WRITES_REPO), which `git gc --prune=now` needs (storage/repo_maint.c). A database that
 * has forks is repacked without deleting anything (its forks' alternates name its store, and a
 * fork may need an object the parent no longer refers to). A repository with few loose objects
 * (its packs set the repack off: each import writes one) is queued for a geometric roll-up
 * instead (params {"mode":"rollup"}), which joins the small packs and leaves the large one be,
 * deletes nothing, and so takes the writer lock shared, beside imports. Its result counts the
 * objects before and after: {"loose_before","packs_before","loose_after","packs_after",
 * "kept_unreachable","mode"} (mode "gc" or "rollup").
 *
 * Retries: a repack interrupted anywhere leaves the repository readable (git renames its new pack
 * in before it deletes anything), and a retry simply repacks again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/jobs.h"
#include "tablehub/log.h"
#include "tablehub/meta_access.h"
#include "tablehub/meta_control.h"
#include "tablehub/repo_maint.h"

/* Fewer loose objects than this: the repack was set off by packs, and rolls them up. */
#define ROLLUP_LOOSE 500

int th_repack_maybe_enqueue(int *queued_out, th_meta *m, const char *data_dir, const char *owner,
                            const char *db, uint64_t loose_max, uint64_t packs_max, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	th_repo_objstats st;
	char id[TH_UUID_SIZE];
	th_op_new op;
	int found = 0, error;

	*queued_out = 0;
	if ((error = th_datadir_repo_path(&path, data_dir, owner, db, err)) < 0 ||
	    (error = th_repo_objstats_read(&st, path.ptr, err)) < 0)
		goto cleanup;
	if (!((loose_max > 0 && st.loose >= loose_max) || (packs_max > 0 && st.packs >= packs_max)))
		goto cleanup;
	if ((error = th_meta_op_find_unfinished(&found, id, m, "repack", owner, db, err)) < 0 ||
	    found)
		goto cleanup;
	memset(&op, 0, sizeof(op));
	op.kind = "repack";
	op.owner = owner;
	op.db = db;
	op.creator = owner;
	/* Few loose objects: the packs set it off, each import's own (repo.h's batches), which a
	 * roll-up joins without rewriting the large pack; many loose objects: a full gc. */
	op.params = st.loose < ROLLUP_LOOSE ? "{\"mode\":\"rollup\"}" : "{\"mode\":\"gc\"}";
	if ((error = th_meta_op_create(id, m, &op, err)) < 0)
		goto cleanup;
	*queued_out = 1;
	TH_LOG(TH_LOG_INFO,
	       "repack of %s/%s queued as %s: %" PRIu64 " loose objects, %" PRIu64 " packs", owner,
	       db, id, st.loose, st.packs);
cleanup:
	th_buf_dispose(&path);
	return error;
}

/* Was the repack queued as a roll-up (params {"mode":"rollup"})? Older repacks (no params) gc. */
static int is_rollup(const th_op_info *op)
{
	return op->params != NULL && strstr(op->params, "\"mode\":\"rollup\"") != NULL;
}

static int repack_stop(void *payload, th_error *err)
{
	return th_job_check(payload, err);
}

/* Do other databases borrow owner/db's objects (forks: their alternates name its store)? */
static int has_forks(int *out, th_meta *m, const th_op_info *job, th_error *err)
{
	th_db_info db;
	th_fork_list forks = { NULL, 0 };
	int error;

	memset(&db, 0, sizeof(db));
	if ((error = th_meta_db_get(&db, m, job->owner, job->db, err)) < 0)
		return error;
	error = th_meta_fork_list(&forks, m, db.id, err);
	*out = forks.n > 0;
	th_fork_list_dispose(&forks);
	th_db_info_dispose(&db);
	return error;
}

static int run_repack(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	th_buf path = TH_BUF_INIT, result = TH_BUF_INIT;
	th_repo_objstats before, after;
	th_repo *repo = NULL;
	th_oid head;
	int error, keep = 1, mode;

	(void)payload;
	/* A fork may need objects its parent no longer refers to: a parent keeps them all. */
	if ((error = th_job_check(ctx, err)) < 0 ||
	    (error = has_forks(&keep, th_job_meta(ctx), job, err)) < 0 ||
	    (error = th_datadir_repo_path(&path, th_job_data_dir(ctx), job->owner, job->db, err)) <
	            0 ||
	    (error = th_repo_objstats_read(&before, path.ptr, err)) < 0)
		goto cleanup;
	mode = is_rollup(job) ? TH_REPO_GC_ROLLUP : keep;
	if ((error = th_repo_gc(path.ptr, mode, repack_stop, ctx, err)) < 0 ||
	    (error = th_repo_objstats_read(&after, path.ptr, err)) < 0)
		goto cleanup;
	/* The repository still opens and its HEAD resolves: nothing a reader needs went. */
	if ((error = th_job_repo_open(&repo, ctx, err)) < 0 ||
	    (error = th_repo_resolve(&head, repo, "HEAD", err)) < 0)
		goto cleanup;
	if ((error = th_buf_printf(&result, err,
	                           "{\"loose_before\":%" PRIu64 ",\"packs_before\":%" PRIu64
	                           ",\"loose_after\":%" PRIu64 ",\"packs_after\":%" PRIu64
	                           ",\"kept_unreachable\":%s,\"mode\":\"%s\"}",
	                           before.loose, before.packs, after.loose, after.packs,
	                           mode ? "true" : "false",
	                           mode == TH_REPO_GC_ROLLUP ? "rollup" : "gc")) < 0)
		goto cleanup;
	error = th_job_set_result(ctx, result.ptr, 0, err);
	TH_LOG(TH_LOG_INFO,
	       "repacked %s/%s: %" PRIu64 " loose objects and %" PRIu64 " packs -> %" PRIu64
	       " and %" PRIu64,
	       job->owner, job->db, before.loose, before.packs, after.loose, after.packs);
cleanup:
	th_repo_free(repo);
	th_buf_dispose(&path);
	th_buf_dispose(&result);
	return error;
}

/* A roll-up takes the writer lock shared, beside imports: th_repo_rollup copies every object
 * of the packs it joins (reachable or not) and the loose ones, deletes only the packs it joined and
 * the loose objects now packed, and leaves alone a pack an import renames in meanwhile, which was
 * not in its list; a reader holding an old pack open keeps reading it. A gc prunes, so it runs
 * alone. */
const th_job_kind th_job_kind_repack = { "repack",
	                                 "Repack",
	                                 run_repack,
	                                 TH_JOB_WRITES_REPO,
	                                 "it is queued again after the next write",
	                                 is_rollup };
