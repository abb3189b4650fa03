/* repo_fork.c: forks of a database's repository, and carrying a fork's branch back to its parent.
 *
 * A fork is a new bare repository whose objects/info/alternates names the parent's object store
 * (and every store the parent borrows from), so it starts with no object of its own: forking a
 * 1,000,000-row database writes a few small files and copies the parent's refs. What the fork
 * adds later (imports, merges) is written into its own store. Paths in the alternates file are
 * relative to the fork's objects directory, so a data directory can be moved whole; libgit2 reads
 * relative alternates only at the first level, hence the parent's own alternates are copied in
 * (flattened) rather than chained.
 *
 * A pull request from a fork's branch into its parent needs that branch's new objects in the
 * parent: th_repo_fetch_branch copies them with libgit2's local fetch (only what the parent lacks)
 * and points a branch of the parent at the fetched head.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_internal.h"
#include "tablehub/buf.h"

/* Append to out the path of `to` relative to directory `from` (both absolute and canonical). */
static int rel_path(th_buf *out, const char *from, const char *to, th_error *err)
{
	size_t i = 0, common = 0;
	int error;

	/* The longest common prefix that ends at a path separator. */
	while (from[i] && to[i] && from[i] == to[i]) {
		if (from[i] == '/')
			common = i;
		i++;
	}
	if ((from[i] == '\0' && (to[i] == '/' || to[i] == '\0')) ||
	    (to[i] == '\0' && from[i] == '/'))
		common = i;
	for (const char *p = from + common; *p; p++)
		if (*p == '/' && (error = th_buf_puts(out, "../", err)) < 0)
			return error;
	if (to[common] == '/')
		common++;
	return th_buf_puts(out, to + common, err);
}

/* Write `text` to `path` and fsync it. */
static int write_file(const char *path, const char *text, th_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text), done = 0;

	if (fd < 0)
		return th_error_set(err, TH_ESTORE, "cannot write the fork's alternates: %s",
		                    strerror(errno));
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return th_error_set(err, TH_ESTORE,
			                    "cannot write the fork's alternates: %s",
			                    strerror(errno));
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		return th_error_set(err, TH_ESTORE, "cannot write the fork's alternates: %s",
		                    strerror(errno));
	return TH_OK;
}

/* The alternates of a fork at `child_objects` (its future objects dir, absolute): the parent's
 * objects dir, then each store the parent's alternates name, each relative to child_objects. */
static int alternates_text(th_buf *out, const char *child_objects, const char *parent_objects,
                           th_error *err)
{
	char path[PATH_MAX], real[PATH_MAX], line[PATH_MAX * 2];
	FILE *f;
	int error;

	if ((error = rel_path(out, child_objects, parent_objects, err)) < 0 ||
	    (error = th_buf_putc(out, '\n', err)) < 0)
		return error;
	if ((size_t)snprintf(path, sizeof(path), "%s/info/alternates", parent_objects) >=
	            sizeof(path) ||
	    (f = fopen(path, "r")) == NULL)
		return TH_OK; /* the parent borrows nothing */
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s",
		                     line[0] == '/' ? "" : parent_objects,
		                     line[0] == '/' ? "" : "/", line) >= sizeof(path) ||
		    realpath(path, real) == NULL)
			continue; /* a store that is gone (or unreachable) lends nothing */
		if ((error = rel_path(out, child_objects, real, err)) < 0 ||
		    (error = th_buf_putc(out, '\n', err)) < 0)
			break;
	}
	fclose(f);
	return error;
}

static int copy_ref(git_reference *ref, void *payload)
{
	git_repository *child = payload;
	git_reference *copy = NULL, *resolved = NULL;
	int error;

	if ((error = git_reference_resolve(&resolved, ref)) < 0)
		goto cleanup;
	error = git_reference_create(&copy, child, git_reference_name(ref),
	                             git_reference_target(resolved), 1, "fork");
cleanup:
	git_reference_free(copy);
	git_reference_free(resolved);
	git_reference_free(ref);
	return error;
}

int th_repo_fork(const char *path, const char *parent_path, th_error *err)
{
	git_repository_init_options opts;
	git_repository *git = NULL, *parent = NULL;
	char parent_objects[PATH_MAX], dir[PATH_MAX], child_objects[PATH_MAX + 16];
	char tmp[PATH_MAX + 32], alt[PATH_MAX + 32], *slash;
	th_buf text = TH_BUF_INIT;
	struct stat st;
	int error, made = 0;

	if (stat(path, &st) == 0)
		return th_error_set(err, TH_EEXISTS, "repository already exists");
	snprintf(tmp, sizeof(tmp), "%s/objects", parent_path);
	if (realpath(tmp, parent_objects) == NULL)
		return th_error_set(err, TH_ENOTFOUND, "the parent repository is missing");
	/* The fork's final objects dir, canonical: its parent dir exists (or is made) now. */
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return th_error_set(err, TH_EINVALID, "a fork needs an absolute or relative path");
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return th_error_set(err, TH_ESTORE, "cannot create the fork's directory: %s",
		                    strerror(errno));
	if (realpath(dir, tmp) == NULL)
		return th_error_set(err, TH_ESTORE, "cannot resolve the fork's directory: %s",
		                    strerror(errno));
	if ((size_t)snprintf(child_objects, sizeof(child_objects), "%s/%s/objects", tmp,
	                     slash + 1) >= sizeof(child_objects))
		return th_error_set(err, TH_EINVALID, "the fork's path is too long");

	if ((error = git_repository_open_bare(&parent, parent_path)) < 0) {
		error = th_repo__git_error(err, error, "cannot open the parent repository");
		goto cleanup;
	}
	/* Built beside its final place and renamed into it, so a fork is whole or absent. */
	snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
	if (mkdtemp(tmp) == NULL) {
		error = th_error_set(err, TH_ESTORE, "cannot create the fork: %s", strerror(errno));
		goto cleanup;
	}
	made = 1;
	git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
	opts.initial_head = "main";
	if ((error = git_repository_init_ext(&git, tmp, &opts)) < 0) {
		error = th_repo__git_error(err, error, "cannot create the fork");
		goto cleanup;
	}
	if ((size_t)snprintf(alt, sizeof(alt), "%s/objects/info/alternates", tmp) >= sizeof(alt)) {
		error = th_error_set(err, TH_EINVALID, "the fork's path is too long");
		goto cleanup;
	}
	if ((error = alternates_text(&text, child_objects, parent_objects, err)) < 0 ||
	    (error = write_file(alt, text.ptr, err)) < 0)
		goto cleanup;
	/* Reopen, so the object store reads the alternates just written. */
	git_repository_free(git);
	git = NULL;
	if ((error = git_repository_open_bare(&git, tmp)) < 0) {
		error = th_repo__git_error(err, error, "cannot open the fork");
		goto cleanup;
	}
	if ((error = git_reference_foreach(parent, copy_ref, git)) < 0) {
		error = th_repo__git_error(err, error, "cannot copy the parent's branches");
		goto cleanup;
	}
	git_repository_free(git);
	git = NULL;
	if (rename(tmp, path) < 0) {
		error = errno == ENOTEMPTY || errno == EEXIST
		                ? th_error_set(err, TH_EEXISTS, "repository already exists")
		                : th_error_set(err, TH_ESTORE, "cannot create the fork: %s",
		                               strerror(errno));
		goto cleanup;
	}
	made = 0;
	error = TH_OK;

cleanup:
	git_repository_free(git);
	git_repository_free(parent);
	th_buf_dispose(&text);
	if (made) {
		th_error e = { 0 };
		(void)th_repo_remove(tmp, &e);
	}
	return error;
}

int th_repo_fetch_branch(th_oid *head_out, th_repo *dst, const char *src_path,
                         const char *src_branch, const char *dst_branch, th_error *err)
{
	git_repository *src = NULL;
	git_remote *remote = NULL;
	git_remote_create_options ro;
	git_fetch_options fo;
	git_oid id;
	char spec[2 * REFNAME_MAX + 32], ref[REFNAME_MAX];
	char *specs[1] = { spec };
	git_strarray refspecs = { specs, 1 };
	int error;

	if (!th_repo_branch_name_valid(src_branch) || !th_repo_branch_name_valid(dst_branch))
		return th_error_set(err, TH_EINVALID, "invalid branch name");
	snprintf(ref, sizeof(ref), "refs/heads/%s", src_branch);
	if ((error = git_repository_open_bare(&src, src_path)) < 0) {
		error = th_repo__git_error(err, error, "cannot open the fork");
		goto cleanup;
	}
	if ((error = git_reference_name_to_id(&id, src, ref)) < 0) {
		error = error == GIT_ENOTFOUND
		                ? th_error_set(err, TH_ENOTFOUND, "branch '%s' not found",
		                               src_branch)
		                : th_repo__git_error(err, error, "cannot read the fork's branch");
		goto cleanup;
	}
	snprintf(spec, sizeof(spec), "+refs/heads/%s:refs/heads/%s", src_branch, dst_branch);
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.update_fetchhead = 0;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.prune = GIT_FETCH_NO_PRUNE;
	/* An anonymous remote that skips the url.*.insteadOf rules: reading them runs a regex over
	 * every config entry, and libgit2 1.5 leaks the match data of each entry that does not
	 * match (fixed in 1.6): 20 KB an entry, some 50 KB a fetch measured, and a fetch runs
	 * whenever a pull from a fork is read. The path is the fork's own: no rule applies. */
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = dst->git;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if ((error = git_remote_create_with_opts(&remote, src_path, &ro)) < 0 ||
	    (error = git_remote_fetch(remote, &refspecs, &fo, NULL)) < 0) {
		error = th_repo__git_error(err, error, "cannot fetch the fork's branch");
		goto cleanup;
	}
	/* The fetch's own view of the branch may be newer than the one read above: report what
	 * the destination points at now. */
	snprintf(ref, sizeof(ref), "refs/heads/%s", dst_branch);
	if ((error = git_reference_name_to_id(&id, dst->git, ref)) < 0) {
		error = th_repo__git_error(err, error, "cannot read the fetched branch");
		goto cleanup;
	}
	to_th(head_out, &id);
	error = TH_OK;
cleanup:
	git_remote_free(remote);
	git_repository_free(src);
	return error;
}
