/* databases.c: creating a database (include/tablehub/databases.h), the one rule that `tablehub db
 * create` and POST /database share.
 *
 * A database is a row in meta.sqlite plus a bare git repository whose `main` holds one empty
 * commit, so every import has a base to branch from. The row is the commit point: the API finds
 * databases by their rows, so a database exists once its row does. Hence the order:
 *   1. the repository, built under a temporary name and renamed into place (th_repo_create), so
 *      its path holds a whole repository or nothing;
 *   2. the row. When the insert fails, the repository made in step 1 is removed again
 *      (th_repo_remove renames it away before deleting it).
 * A crash between the two leaves a repository without a row: no reader sees it, and the next
 * create of that name adopts it. The other order could leave a row without a repository, a
 * database every request fails on and no create can repair.
 *
 * A fork (th_db_fork) follows the same order with a repository that borrows its parent's objects
 * (th_repo_fork). A pull request from a fork's branch brings that branch into the parent as
 * "forks/<fork owner>/<branch>" (th_fork_sync), so diffs, conflicts and merges work on it as on
 * any branch of the parent.
 *
 * Creates are serialized: across processes by the data dir's write lock that callers hold, within
 * one by a mutex. So "this call made the repository" is exact, and the clean-up never removes a
 * repository that a concurrent create of the same name adopted.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tablehub/buf.h"
#include "tablehub/databases.h"
#include "tablehub/datadir.h"
#include "tablehub/repo.h"
#include "tablehub/text.h"

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

/* Make the repository at `path`, or adopt the one a crash left there. *made says which. */
static int make_repo(int *made, const char *path, const char *owner, const char *name,
                     th_error *err)
{
	th_repo *repo = NULL;
	th_error inner;
	int error;

	th_error_clear(&inner);
	*made = 0;
	error = th_repo_create(path, owner, &inner);
	if (error == TH_OK) {
		*made = 1;
		return TH_OK;
	}
	/* th_repo_create's messages carry the path, which no client may see. */
	if (error == TH_ENOMEM)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if (error != TH_EEXISTS)
		return th_error_set(err, error, "cannot create the repository of database '%s/%s'",
		                    owner, name);
	/* Something is at the path: adopt it only if it is a repository. */
	th_error_clear(&inner);
	if ((error = th_repo_open(&repo, path, 0, &inner)) < 0)
		return th_error_set(
		        err, error == TH_ENOMEM ? TH_ENOMEM : TH_ESTORE,
		        "the repository of database '%s/%s' exists but cannot be opened", owner,
		        name);
	th_repo_free(repo);
	return TH_OK;
}

int th_db_create(th_meta *meta, const char *data_dir, const char *owner, const char *name,
                 const char *description, int is_private, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	th_db_info existing;
	th_error ignored;
	int made = 0, error;

	if (!th_name_valid(owner) || !th_name_valid(name))
		return th_error_set(err, TH_EINVALID,
		                    "bad database name '%s/%s': each part is 1-64 of [A-Za-z0-9_-]",
		                    owner ? owner : "", name ? name : "");
	pthread_mutex_lock(&create_mu);
	memset(&existing, 0, sizeof(existing));
	error = th_meta_db_get(&existing, meta, owner, name, err);
	th_db_info_dispose(&existing);
	if (error == TH_OK) {
		error = th_error_set(err, TH_EEXISTS, "database '%s/%s' already exists", owner,
		                     name);
		goto cleanup;
	}
	if (error != TH_ENOTFOUND)
		goto cleanup;
	if ((error = th_datadir_repo_path(&path, data_dir, owner, name, err)) < 0 ||
	    (error = make_repo(&made, path.ptr, owner, name, err)) < 0)
		goto cleanup;
	error = th_meta_db_create(meta, owner, name, description ? description : "", is_private,
	                          err);

cleanup:
	if (error < 0 && made) {
		th_error_clear(&ignored);
		th_repo_remove(path.ptr, &ignored);
	}
	pthread_mutex_unlock(&create_mu);
	th_buf_dispose(&path);
	return error;
}

int th_db_fork(int64_t *id_out, th_meta *meta, const char *data_dir, const th_fork_info *parent,
               const char *owner, const char *op_id, const th_event_new *ev, th_error *err)
{
	th_buf path = TH_BUF_INIT, parent_path = TH_BUF_INIT;
	th_db_info existing;
	th_error inner;
	int made = 0, error;

	if (!th_name_valid(owner))
		return th_error_set(err, TH_EINVALID, "bad owner name '%s': 1-64 of [A-Za-z0-9_-]",
		                    owner ? owner : "");
	pthread_mutex_lock(&create_mu);
	memset(&existing, 0, sizeof(existing));
	error = th_meta_db_get(&existing, meta, owner, parent->name, err);
	th_db_info_dispose(&existing);
	if (error == TH_OK) {
		error = th_error_set(err, TH_EEXISTS, "database '%s/%s' already exists", owner,
		                     parent->name);
		goto cleanup;
	}
	if (error != TH_ENOTFOUND ||
	    (error = th_datadir_repo_path(&path, data_dir, owner, parent->name, err)) < 0 ||
	    (error = th_datadir_repo_path(&parent_path, data_dir, parent->owner, parent->name,
	                                  err)) < 0)
		goto cleanup;
	/* A repository without a row is a crash's leftover (creates are serialized here): a fork
	 * is cheap to make again, so it goes, rather than being adopted as th_db_create does. */
	th_error_clear(&inner);
	(void)th_repo_remove(path.ptr, &inner);
	th_error_clear(&inner);
	if ((error = th_repo_fork(path.ptr, parent_path.ptr, &inner)) < 0) {
		/* Its messages may carry paths, which no client may see. */
		error = th_error_set(err, error == TH_ENOMEM ? TH_ENOMEM : TH_ESTORE,
		                     "cannot fork database '%s/%s'", parent->owner, parent->name);
		goto cleanup;
	}
	made = 1;
	error = th_meta_fork_record(id_out, meta, owner, parent->id, op_id, ev, err);

cleanup:
	if (error < 0 && made) {
		th_error_clear(&inner);
		th_repo_remove(path.ptr, &inner);
	}
	pthread_mutex_unlock(&create_mu);
	th_buf_dispose(&path);
	th_buf_dispose(&parent_path);
	return error;
}

int th_fork_pull_branch(char *out, size_t size, const char *fork_owner, const char *branch)
{
	if ((size_t)snprintf(out, size, "forks/%s/%s", fork_owner, branch) >= size ||
	    !th_repo_branch_name_valid(out))
		return TH_EINVALID;
	return TH_OK;
}

int th_fork_sync(th_oid *head_out, const char *data_dir, const th_fork_info *fork,
                 const char *parent_owner, const char *branch, const char *mirror, th_error *err)
{
	th_buf fork_path = TH_BUF_INIT;
	th_repo *parent = NULL;
	th_error inner;
	int error;

	th_error_clear(&inner);
	if ((error = th_datadir_repo_path(&fork_path, data_dir, fork->owner, fork->name, err)) <
	            0 ||
	    (error = th_datadir_repo_open(&parent, data_dir, parent_owner, fork->name, 0, err)) < 0)
		goto cleanup;
	error = th_repo_fetch_branch(head_out, parent, fork_path.ptr, branch, mirror, &inner);
	if (error == TH_ENOTFOUND)
		error = th_error_set(err, TH_ENOTFOUND, "branch '%s' not found in '%s/%s'", branch,
		                     fork->owner, fork->name);
	else if (error < 0)
		error = th_error_set(err, error == TH_ENOMEM ? TH_ENOMEM : TH_ESTORE,
		                     "cannot bring branch '%s' of '%s/%s' over", branch,
		                     fork->owner, fork->name);
cleanup:
	th_repo_free(parent);
	th_buf_dispose(&fork_path);
	return error;
}
