/* repo_refs.c: branches of a database's repository (storage/repo.c has the design).
 *
 * A branch moves only by compare-and-swap (git_reference_create_matching with the expected old
 * id), so two writers racing on one branch see TH_ECONFLICT instead of losing an update. Names are
 * checked with git's own rules before libgit2 sees them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "repo_internal.h"

/* --- references ------------------------------------------------------------------------------ */

int th_repo_branch_name_valid(const char *name)
{
	char ref[REFNAME_MAX];
	int valid = 0;

	/* TH_BRANCH_NAME_MAX keeps each ref file, and its ".lock", within a file name's 255 bytes.
	 */
	if (name == NULL || *name == '\0' || *name == '-' || strcmp(name, "HEAD") == 0 ||
	    strlen(name) > TH_BRANCH_NAME_MAX || strlen(name) + sizeof("refs/heads/") > sizeof(ref))
		return 0;
	snprintf(ref, sizeof(ref), "refs/heads/%s", name);
	if (git_reference_name_is_valid(&valid, ref) < 0)
		return 0;
	return valid;
}

/* The error for a ref whose lock file is in the way. A writer holds a ref's lock for the few
 * milliseconds of its update, so a young lock is another writer at work: TH_ECONFLICT, and the
 * caller retries as for a branch that moved. A lock older than STALE_LOCK_S was left by a git
 * command that crashed (this server clears such files only when it starts): every retry would
 * fail the same way, so it is TH_EBUSY, naming the file and what to do. */
#define STALE_LOCK_S 30

static int locked_error(th_repo *repo, const char *name, const char *ref_name, th_error *err)
{
	char lock[REFNAME_MAX + 1100];
	struct stat sb;

	snprintf(lock, sizeof(lock), "%s%s.lock", git_repository_path(repo->git), ref_name);
	if (stat(lock, &sb) != 0 || time(NULL) - sb.st_mtime < STALE_LOCK_S)
		return th_error_set(err, TH_ECONFLICT,
		                    "branch '%s' is being updated by another writer", name);
	return th_error_set(
	        err, TH_EBUSY,
	        "branch '%s' is locked: the repository holds the lock file '%s.lock' of "
	        "ref %s, %lld s old; if no git command is writing to the repository, "
	        "remove that file and try again",
	        name, ref_name, ref_name, (long long)(time(NULL) - sb.st_mtime));
}

int th_repo_resolve(th_oid *out, th_repo *repo, const char *rev, th_error *err)
{
	git_object *obj = NULL, *commit = NULL;
	int error;

	if ((error = git_revparse_single(&obj, repo->git, rev)) < 0) {
		if (error == GIT_EAMBIGUOUS)
			error = th_error_set(err, TH_ENOTFOUND, "revision '%s' is ambiguous", rev);
		else if (error == GIT_ENOTFOUND || error == GIT_EINVALIDSPEC)
			error = th_error_set(err, TH_ENOTFOUND, "revision '%s' not found", rev);
		else
			error = th_repo__git_error(err, error, "cannot resolve revision");
		goto cleanup;
	}
	if ((error = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT)) < 0) {
		error = th_error_set(err, TH_ENOTFOUND, "revision '%s' is not a commit", rev);
		goto cleanup;
	}
	to_th(out, git_object_id(commit));

cleanup:
	git_object_free(commit);
	git_object_free(obj);
	return error;
}

int th_repo_branch_get(th_oid *out, th_repo *repo, const char *name, th_error *err)
{
	char ref[REFNAME_MAX];
	git_oid id;
	int error;

	if (!th_repo_branch_name_valid(name))
		return th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", name);
	snprintf(ref, sizeof(ref), "refs/heads/%s", name);
	if ((error = git_reference_name_to_id(&id, repo->git, ref)) < 0) {
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", name);
		return th_repo__git_error(err, error, "cannot read branch");
	}
	to_th(out, &id);
	return TH_OK;
}

int th_repo_branch_cas(th_repo *repo, const char *name, const th_oid *target,
                       const th_oid *expected, const char *log_message, th_error *err)
{
	git_reference *ref = NULL;
	char what[REFNAME_MAX + 64];
	char ref_name[REFNAME_MAX];
	int error;

	if (!th_repo_branch_name_valid(name))
		return th_error_set(err, TH_EINVALID, "'%s' is not a valid branch name", name);
	/* The objects the branch will name are on disk before it moves. */
	if ((error = th_repo_batch_flush(repo, err)) < 0)
		return error;
	snprintf(ref_name, sizeof(ref_name), "refs/heads/%s", name);
	snprintf(what, sizeof(what), "cannot update branch '%s'", name);
	if (expected == NULL) {
		error = git_reference_create(&ref, repo->git, ref_name, goid(target), 0,
		                             log_message);
		if (error == GIT_EEXISTS)
			return th_error_set(err, TH_ECONFLICT, "branch '%s' already exists", name);
	} else {
		/* force=1 lets the ref move; current_id makes the move conditional: libgit2 checks
		 * the old value under the ref's lock file and fails with GIT_EMODIFIED. A branch
		 * deleted meanwhile has moved too. */
		error = git_reference_create_matching(&ref, repo->git, ref_name, goid(target), 1,
		                                      goid(expected), log_message);
		if (error == GIT_EMODIFIED || error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ECONFLICT, "branch '%s' moved", name);
	}
	if (error == GIT_ELOCKED)
		return locked_error(repo, name, ref_name, err);
	if (error < 0)
		return th_repo__git_error(err, error, what);
	git_reference_free(ref);
	return TH_OK;
}

int th_repo_branch_delete(th_repo *repo, const char *name, th_error *err)
{
	git_reference *ref = NULL;
	char ref_name[REFNAME_MAX];
	int error;

	if (!th_repo_branch_name_valid(name))
		return th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", name);
	snprintf(ref_name, sizeof(ref_name), "refs/heads/%s", name);
	if ((error = git_reference_lookup(&ref, repo->git, ref_name)) < 0) {
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", name);
		return th_repo__git_error(err, error, "cannot read branch");
	}
	/* HEAD names the default branch; deleting it would leave the repository without one. */
	if (git_branch_is_head(ref) == 1) {
		error = th_error_set(err, TH_EINVALID,
		                     "cannot delete branch '%s': it is the default branch", name);
		goto cleanup;
	}
	if ((error = git_reference_delete(ref)) < 0)
		error = th_repo__git_error(err, error, "cannot delete branch");

cleanup:
	git_reference_free(ref);
	return error;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int th_repo_branch_list(char ***out, th_repo *repo, th_error *err)
{
	git_branch_iterator *it = NULL;
	git_reference *ref = NULL;
	git_branch_t type;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int error;

	if ((error = git_branch_iterator_new(&it, repo->git, GIT_BRANCH_LOCAL)) < 0) {
		error = th_repo__git_error(err, error, "cannot list branches");
		goto fail;
	}
	while ((error = git_branch_next(&ref, &type, it)) == 0) {
		const char *name = NULL;

		if (n + 2 > cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nv = realloc(v, ncap * sizeof(*v));

			if (nv == NULL)
				goto oom;
			v = nv;
			cap = ncap;
		}
		if (git_branch_name(&name, ref) < 0 || name == NULL) {
			git_reference_free(ref);
			continue;
		}
		if ((v[n] = strdup(name)) == NULL)
			goto oom;
		v[++n] = NULL;
		git_reference_free(ref);
		ref = NULL;
	}
	if (error != GIT_ITEROVER) {
		error = th_repo__git_error(err, error, "cannot list branches");
		goto fail;
	}
	if (v == NULL && (v = calloc(1, sizeof(*v))) == NULL)
		goto oom;
	qsort(v, n, sizeof(*v), cmp_str);
	git_branch_iterator_free(it);
	*out = v;
	return TH_OK;

oom:
	error = th_error_set(err, TH_ENOMEM, "out of memory");
fail:
	git_reference_free(ref);
	git_branch_iterator_free(it);
	if (v) {
		v[n] = NULL;
		th_strv_free(v);
	}
	return error;
}

void th_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}
