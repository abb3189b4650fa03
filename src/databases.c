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
 * Creates are serialized: across processes by the data dir's write lock that callers hold, within
 * one by a mutex. So "this call made the repository" is exact, and the clean-up never removes a
 * repository that a concurrent create of the same name adopted.
 */
#include <pthread.h>
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
