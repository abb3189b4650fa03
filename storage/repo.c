/* repo.c: the content store, one bare git repository per database, through libgit2.
 *
 * Every write goes blobs -> trees -> commit -> branch moved by compare-and-swap
 * (git_reference_create_matching with the expected old id), so two writers racing on one branch
 * see a TH_ECONFLICT instead of losing an update. Repositories are created in a temporary directory
 * beside their final path and renamed into place, so a crash never leaves a half-made repository
 * under a real name, and two creators of the same path get TH_EEXISTS from the rename.
 *
 * THREADS: a th_repo belongs to one thread at a time (its libgit2 objects are not locked).
 * Different handles on the same path may be used from different threads or processes: refs are
 * protected by libgit2's lock files and objects are immutable. libgit2 errors are turned into
 * th_error codes in one place, th_repo__git_error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_internal.h"
#include "tablehub/hash.h"
#include "tablehub/text.h"

#define REFNAME_MAX 1024

/* --- errors and object ids ------------------------------------------------------------------- */

int th_repo__git_error(th_error *err, int giterr, const char *what)
{
	const git_error *e = git_error_last();
	const char *msg = (e && e->message) ? e->message : "unknown libgit2 error";
	th_code code;

	switch (giterr) {
	case GIT_ENOTFOUND:
		code = TH_ENOTFOUND;
		break;
	case GIT_EEXISTS:
		code = TH_EEXISTS;
		break;
	case GIT_EMODIFIED:
	case GIT_ELOCKED:
		code = TH_ECONFLICT;
		break;
	case GIT_EINVALIDSPEC:
		code = TH_EINVALID;
		break;
	default:
		code = TH_ESTORE;
		break;
	}
	return th_error_set(err, code, "%s: %s", what, msg);
}

static const git_oid *goid(const th_oid *o)
{
	return (const git_oid *)(const void *)o->id;
}

static void to_th(th_oid *out, const git_oid *in)
{
	memcpy(out->id, in->id, 20);
}

void th_oid_fmt(char out[41], const th_oid *oid)
{
	th_hex(out, oid->id, 20);
}

int th_oid_parse(th_oid *out, const char *hex, th_error *err)
{
	th_oid o;
	size_t i;

	if (hex == NULL || strlen(hex) != 40)
		return th_error_set(err, TH_EINVALID, "'%s' is not a 40-digit object id",
		                    hex ? hex : "");
	for (i = 0; i < 20; i++) {
		int hi = th_hexval((unsigned char)hex[2 * i]),
		    lo = th_hexval((unsigned char)hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return th_error_set(err, TH_EINVALID, "'%s' is not a 40-digit object id",
			                    hex);
		o.id[i] = (unsigned char)(hi << 4 | lo);
	}
	*out = o;
	return TH_OK;
}

int th_oid_equal(const th_oid *a, const th_oid *b)
{
	return memcmp(a->id, b->id, 20) == 0;
}

int th_oid_is_zero(const th_oid *oid)
{
	static const unsigned char zero[20];

	return memcmp(oid->id, zero, 20) == 0;
}

/* --- process set-up -------------------------------------------------------------------------- */

int th_repo_global_init(th_error *err)
{
	int error;

	if ((error = git_libgit2_init()) < 0)
		return th_repo__git_error(err, error, "cannot initialise libgit2");
	/* libgit2 fsyncs nothing by default; objects and refs must survive a crash. Object creation
	 * stays strict (trees and refs must name existing objects), but reads skip re-hashing every
	 * object: the repositories are ours and git fsck checks them offline. */
	if ((error = git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1)) < 0 ||
	    (error = git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 1)) < 0 ||
	    (error = git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0)) < 0) {
		th_repo__git_error(err, error, "cannot set libgit2 options");
		git_libgit2_shutdown();
		return TH_ESTORE;
	}
	return TH_OK;
}

/* Repositories whose stale files were already cleared by this process (see clear_stale_once). */
struct cleared {
	struct cleared *next;
	char path[];
};
static pthread_mutex_t cleared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cleared *cleared_list;

void th_repo_global_shutdown(void)
{
	struct cleared *c, *next;

	pthread_mutex_lock(&cleared_lock);
	for (c = cleared_list; c; c = next) {
		next = c->next;
		free(c);
	}
	cleared_list = NULL;
	pthread_mutex_unlock(&cleared_lock);
	git_libgit2_shutdown();
}

/* --- file system helpers --------------------------------------------------------------------- */

static int mkpath(const char *path)
{
	char *p = strdup(path), *s;
	int rc = 0;

	if (p == NULL)
		return -1;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
		if (rc)
			break;
	}
	if (rc == 0 && mkdir(p, 0777) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Walk `dir` depth-first calling fn(path, is_dir) for each entry below it (children before their
 * directory). Missing directories are fine. */
static void walk(const char *dir, void (*fn)(const char *path, const char *name, int is_dir))
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		size_t n;
		char *p;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n = strlen(dir) + strlen(de->d_name) + 2;
		if ((p = malloc(n)) == NULL)
			break;
		snprintf(p, n, "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				walk(p, fn);
			fn(p, de->d_name, S_ISDIR(st.st_mode));
		}
		free(p);
	}
	closedir(d);
}

static void rm_any(const char *path, const char *name, int is_dir)
{
	(void)name;
	if (is_dir)
		rmdir(path);
	else
		unlink(path);
}

static void rmtree(const char *path)
{
	walk(path, rm_any);
	rmdir(path);
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void rm_lock(const char *path, const char *name, int is_dir)
{
	if (!is_dir && has_suffix(name, ".lock"))
		unlink(path);
}

static void rm_pack_tmp(const char *path, const char *name, int is_dir)
{
	if (!is_dir && strncmp(name, "tmp_", 4) == 0)
		unlink(path);
}

/* Remove what a crashed writer leaves behind: ref, config and index lock files (which would make
 * every later ref update fail with GIT_ELOCKED) and half-written packs. Only called by the holder
 * of the data dir's write lock, so nobody else can be writing them. */
static void clear_stale(const char *gitdir)
{
	static const char *const top[] = { "HEAD.lock", "packed-refs.lock", "config.lock",
		                           "index.lock" };
	size_t n = strlen(gitdir) + 32, i;
	char *p = malloc(n);

	if (p == NULL)
		return;
	for (i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
		snprintf(p, n, "%s/%s", gitdir, top[i]);
		unlink(p);
	}
	snprintf(p, n, "%s/refs", gitdir);
	walk(p, rm_lock);
	snprintf(p, n, "%s/objects/pack", gitdir);
	walk(p, rm_pack_tmp);
	free(p);
}

/* Clear stale files at the first writer open of `gitdir` in this process only. The data dir's
 * write lock means no other process writes the repository, so a lock file present at our first
 * open was left by a crashed process; later, a lock file may belong to another thread of ours in
 * the middle of a ref update, and removing it would break that update's compare-and-swap. */
static void clear_stale_once(const char *gitdir)
{
	char *real = realpath(gitdir, NULL);
	const char *key = real ? real : gitdir;
	struct cleared *c;
	size_t n = strlen(key) + 1;

	pthread_mutex_lock(&cleared_lock);
	for (c = cleared_list; c; c = c->next)
		if (strcmp(c->path, key) == 0)
			break;
	if (c == NULL) {
		clear_stale(key);
		if ((c = malloc(sizeof(*c) + n)) != NULL) {
			memcpy(c->path, key, n);
			c->next = cleared_list;
			cleared_list = c;
		}
	}
	pthread_mutex_unlock(&cleared_lock);
	free(real);
}

/* --- create and open ------------------------------------------------------------------------- */

static int write_initial_commit(git_repository *git, const char *author, th_error *err)
{
	git_treebuilder *bld = NULL;
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_oid tree_id, commit_id;
	char email[256];
	int error;

	snprintf(email, sizeof(email), "%s@tablehub.local", author);
	if ((error = git_treebuilder_new(&bld, git, NULL)) < 0 ||
	    (error = git_treebuilder_write(&tree_id, bld)) < 0 ||
	    (error = git_tree_lookup(&tree, git, &tree_id)) < 0 ||
	    (error = git_signature_now(&sig, author, email)) < 0 ||
	    (error = git_commit_create(&commit_id, git, "refs/heads/main", sig, sig, NULL,
	                               "Initial commit", tree, 0, NULL)) < 0)
		error = th_repo__git_error(err, error, "cannot write the initial commit");
	git_signature_free(sig);
	git_tree_free(tree);
	git_treebuilder_free(bld);
	return error;
}

int th_repo_create(const char *path, const char *author, th_error *err)
{
	git_repository_init_options opts;
	git_repository *git = NULL;
	char *tmp = NULL, *parent = NULL, *slash;
	struct stat st;
	size_t n;
	int error;

	if (stat(path, &st) == 0 &&
	    git_repository_open_ext(NULL, path,
	                            GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE,
	                            NULL) == 0)
		return th_error_set(err, TH_EEXISTS, "repository '%s' already exists", path);

	n = strlen(path) + 16;
	if ((tmp = malloc(n)) == NULL || (parent = strdup(path)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
		*slash = '\0';
		if (mkpath(parent) < 0) {
			error = th_error_set(err, TH_ESTORE, "cannot create '%s': %s", parent,
			                     strerror(errno));
			goto cleanup;
		}
	} else {
		strcpy(parent, slash ? "/" : ".");
	}
	snprintf(tmp, n, "%s.tmp-XXXXXX", path);
	if (mkdtemp(tmp) == NULL) {
		error = th_error_set(err, TH_ESTORE, "cannot create '%s': %s", tmp,
		                     strerror(errno));
		free(tmp);
		tmp = NULL;
		goto cleanup;
	}

	if ((error = git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION)) <
	    0) {
		error = th_repo__git_error(err, error, "cannot create repository");
		goto cleanup;
	}
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
	             GIT_REPOSITORY_INIT_NO_REINIT;
	opts.initial_head = "main";
	if ((error = git_repository_init_ext(&git, tmp, &opts)) < 0) {
		error = th_repo__git_error(err, error, "cannot create repository");
		goto cleanup;
	}
	if ((error = write_initial_commit(git, author, err)) < 0)
		goto cleanup;
	git_repository_free(git);
	git = NULL;

	/* rename() replaces an empty directory but fails on a non-empty one: a repository created
	 * meanwhile by someone else wins and we report EEXISTS. */
	if (rename(tmp, path) < 0) {
		if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR)
			error = th_error_set(err, TH_EEXISTS, "'%s' already exists", path);
		else
			error = th_error_set(err, TH_ESTORE, "cannot rename '%s' to '%s': %s", tmp,
			                     path, strerror(errno));
		goto cleanup;
	}
	free(tmp);
	tmp = NULL;
	if (fsync_dir(parent) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot fsync '%s': %s", parent,
		                     strerror(errno));
		goto cleanup;
	}
	error = TH_OK;

cleanup:
	git_repository_free(git);
	if (tmp) {
		rmtree(tmp);
		free(tmp);
	}
	free(parent);
	return error;
}

int th_repo_open(th_repo **out, const char *path, int writer, th_error *err)
{
	th_repo *r;
	int error;

	if ((r = calloc(1, sizeof(*r))) == NULL || (r->path = strdup(path)) == NULL) {
		free(r);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if ((error = git_repository_open_ext(
	             &r->git, path, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE,
	             NULL)) < 0) {
		if (error == GIT_ENOTFOUND)
			error = th_error_set(err, TH_ENOTFOUND, "repository '%s' not found", path);
		else
			error = th_repo__git_error(err, error, "cannot open repository");
		goto fail;
	}
	if (writer)
		clear_stale_once(git_repository_path(r->git));
	if ((error = git_repository_odb(&r->odb, r->git)) < 0) {
		error = th_repo__git_error(err, error, "cannot open object database");
		goto fail;
	}
	*out = r;
	return TH_OK;

fail:
	th_repo_free(r);
	return error;
}

void th_repo_free(th_repo *repo)
{
	if (repo == NULL)
		return;
	git_odb_free(repo->odb);
	git_repository_free(repo->git);
	free(repo->path);
	free(repo);
}

/* --- references ------------------------------------------------------------------------------ */

int th_repo_branch_name_valid(const char *name)
{
	char ref[REFNAME_MAX];
	int valid = 0;

	if (name == NULL || *name == '\0' || *name == '-' || strcmp(name, "HEAD") == 0 ||
	    strlen(name) + sizeof("refs/heads/") > sizeof(ref))
		return 0;
	snprintf(ref, sizeof(ref), "refs/heads/%s", name);
	if (git_reference_name_is_valid(&valid, ref) < 0)
		return 0;
	return valid;
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

/* --- commits --------------------------------------------------------------------------------- */

void th_commit_info_dispose(th_commit_info *ci)
{
	if (ci == NULL)
		return;
	free(ci->message);
	ci->message = NULL;
}

static int fill_commit_info(th_commit_info *out, const git_commit *c, th_error *err)
{
	const git_signature *a = git_commit_author(c);
	const char *msg = git_commit_message(c);
	size_t i;

	memset(out, 0, sizeof(*out));
	to_th(&out->id, git_commit_id(c));
	to_th(&out->tree, git_commit_tree_id(c));
	out->nparents = git_commit_parentcount(c);
	for (i = 0; i < out->nparents && i < 2; i++)
		to_th(&out->parents[i], git_commit_parent_id(c, (unsigned int)i));
	if (a) {
		out->time = (int64_t)a->when.time;
		snprintf(out->author, sizeof(out->author), "%s", a->name ? a->name : "");
		snprintf(out->email, sizeof(out->email), "%s", a->email ? a->email : "");
	}
	if ((out->message = strdup(msg ? msg : "")) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return TH_OK;
}

int th_repo_commit_read(th_commit_info *out, th_repo *repo, const th_oid *id, th_error *err)
{
	git_commit *c = NULL;
	th_commit_info ci;
	char hex[41];
	int error;

	if ((error = git_commit_lookup(&c, repo->git, goid(id))) < 0) {
		th_oid_fmt(hex, id);
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "commit '%s' not found", hex);
		return th_repo__git_error(err, error, "cannot read commit");
	}
	if ((error = fill_commit_info(&ci, c, err)) == 0)
		*out = ci;
	git_commit_free(c);
	return error;
}

int th_repo_commit_write(th_oid *out, th_repo *repo, const th_oid *tree, const th_oid *parents,
                         size_t nparents, const char *author, const char *email,
                         const char *message, th_error *err)
{
	git_commit **pc = NULL;
	git_signature *sig = NULL;
	git_tree *t = NULL;
	git_oid id;
	size_t i;
	int error;

	if (nparents && (pc = calloc(nparents, sizeof(*pc))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if ((error = git_tree_lookup(&t, repo->git, goid(tree))) < 0) {
		error = th_repo__git_error(err, error, "cannot read the commit's tree");
		goto cleanup;
	}
	for (i = 0; i < nparents; i++) {
		if ((error = git_commit_lookup(&pc[i], repo->git, goid(&parents[i]))) < 0) {
			error = th_repo__git_error(err, error, "cannot read parent commit");
			goto cleanup;
		}
	}
	if ((error = git_signature_now(&sig, author, email)) < 0) {
		error = th_repo__git_error(err, error, "bad author");
		goto cleanup;
	}
	if ((error = git_commit_create(&id, repo->git, NULL, sig, sig, NULL, message, t, nparents,
	                               (const git_commit **)pc)) < 0) {
		error = th_repo__git_error(err, error, "cannot write commit");
		goto cleanup;
	}
	to_th(out, &id);

cleanup:
	for (i = 0; pc && i < nparents; i++)
		git_commit_free(pc[i]);
	free(pc);
	git_signature_free(sig);
	git_tree_free(t);
	return error;
}

int th_repo_merge_base(th_oid *out, th_repo *repo, const th_oid *a, const th_oid *b, th_error *err)
{
	char ha[41], hb[41];
	git_oid id;
	int error;

	if ((error = git_merge_base(&id, repo->git, goid(a), goid(b))) < 0) {
		th_oid_fmt(ha, a);
		th_oid_fmt(hb, b);
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "no merge base of %.12s and %.12s",
			                    ha, hb);
		return th_repo__git_error(err, error, "cannot find merge base");
	}
	to_th(out, &id);
	return TH_OK;
}

int th_repo_log(th_repo *repo, const th_oid *start, size_t limit,
                int (*cb)(const th_commit_info *ci, void *payload), void *payload, th_error *err)
{
	git_revwalk *walk = NULL;
	size_t seen = 0;
	git_oid id;
	int error;

	/* Time order alone puts commits made in the same second (an import and its merge) in any
	 * order; topological order with time among siblings keeps children before parents. */
	if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
	    (error = git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME)) < 0 ||
	    (error = git_revwalk_push(walk, goid(start))) < 0) {
		error = th_repo__git_error(err, error, "cannot walk history");
		goto cleanup;
	}
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		git_commit *c = NULL;
		th_commit_info ci;
		int rc;

		if ((error = git_commit_lookup(&c, repo->git, &id)) < 0) {
			error = th_repo__git_error(err, error, "cannot read commit");
			goto cleanup;
		}
		error = fill_commit_info(&ci, c, err);
		git_commit_free(c);
		if (error < 0)
			goto cleanup;
		rc = cb(&ci, payload);
		th_commit_info_dispose(&ci);
		if (rc != 0) {
			error = rc;
			goto cleanup;
		}
		if (limit && ++seen >= limit)
			break;
	}
	if (error == GIT_ITEROVER || error == 0)
		error = TH_OK;
	else
		error = th_repo__git_error(err, error, "cannot walk history");

cleanup:
	git_revwalk_free(walk);
	return error;
}

/* --- trees and blobs ------------------------------------------------------------------------- */

void th_tree_list_dispose(th_tree_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->entries[i].name);
	free(l->entries);
	l->entries = NULL;
	l->n = 0;
}

static int tree_lookup(git_tree **out, th_repo *repo, const th_oid *id, th_error *err)
{
	char hex[41];
	int error;

	if ((error = git_tree_lookup(out, repo->git, goid(id))) < 0) {
		th_oid_fmt(hex, id);
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "tree '%s' not found", hex);
		return th_repo__git_error(err, error, "cannot read tree");
	}
	return TH_OK;
}

int th_repo_tree_read(th_tree_list *out, th_repo *repo, const th_oid *tree, th_error *err)
{
	th_tree_list l = { NULL, 0 };
	git_tree *t = NULL;
	size_t i, n;
	int error;

	if ((error = tree_lookup(&t, repo, tree, err)) < 0)
		return error;
	n = git_tree_entrycount(t);
	if (n && (l.entries = calloc(n, sizeof(*l.entries))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if ((l.entries[i].name = strdup(git_tree_entry_name(e))) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		l.n = i + 1;
		to_th(&l.entries[i].oid, git_tree_entry_id(e));
		l.entries[i].is_tree = git_tree_entry_type(e) == GIT_OBJECT_TREE;
	}
	*out = l;
	l.entries = NULL;
	l.n = 0;

cleanup:
	th_tree_list_dispose(&l);
	git_tree_free(t);
	return error;
}

static int entry_name_valid(const char *name)
{
	return name && *name && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0 && strcmp(name, ".git") != 0;
}

int th_repo_tree_write(th_oid *out, th_repo *repo, const th_tree_entry *entries, size_t n,
                       th_error *err)
{
	git_treebuilder *bld = NULL;
	git_oid id;
	size_t i;
	int error;

	if ((error = git_treebuilder_new(&bld, repo->git, NULL)) < 0)
		return th_repo__git_error(err, error, "cannot build tree");
	for (i = 0; i < n; i++) {
		const th_tree_entry *e = &entries[i];
		char hex[41];

		if (!entry_name_valid(e->name)) {
			error = th_error_set(err, TH_EINVALID, "invalid tree entry name '%s'",
			                     e->name ? e->name : "");
			goto cleanup;
		}
		if (git_treebuilder_get(bld, e->name) != NULL) {
			error = th_error_set(err, TH_EINVALID, "duplicate tree entry '%s'",
			                     e->name);
			goto cleanup;
		}
		/* libgit2 (strict object creation) refuses an entry whose object is missing or of
		 * the wrong type: that is the caller's mistake, not a storage failure. */
		if ((error = git_treebuilder_insert(NULL, bld, e->name, goid(&e->oid),
		                                    e->is_tree ? GIT_FILEMODE_TREE
		                                               : GIT_FILEMODE_BLOB)) < 0) {
			th_oid_fmt(hex, &e->oid);
			if (!git_odb_exists(repo->odb, goid(&e->oid)))
				error = th_error_set(err, TH_EINVALID,
				                     "tree entry '%s': object %s not found",
				                     e->name, hex);
			else
				error = th_repo__git_error(err, error, "cannot add tree entry");
			goto cleanup;
		}
	}
	if ((error = git_treebuilder_write(&id, bld)) < 0) {
		error = th_repo__git_error(err, error, "cannot write tree");
		goto cleanup;
	}
	to_th(out, &id);

cleanup:
	git_treebuilder_free(bld);
	return error;
}

int th_repo_tree_lookup(th_oid *out, int *is_tree, th_repo *repo, const th_oid *root,
                        const char *path, th_error *err)
{
	git_tree_entry *e = NULL;
	git_tree *t = NULL;
	int error;

	if ((error = tree_lookup(&t, repo, root, err)) < 0)
		return error;
	if ((error = git_tree_entry_bypath(&e, t, path)) < 0) {
		if (error == GIT_ENOTFOUND)
			error = th_error_set(err, TH_ENOTFOUND, "path '%s' not found", path);
		else
			error = th_repo__git_error(err, error, "cannot look up path");
		goto cleanup;
	}
	to_th(out, git_tree_entry_id(e));
	if (is_tree)
		*is_tree = git_tree_entry_type(e) == GIT_OBJECT_TREE;

cleanup:
	git_tree_entry_free(e);
	git_tree_free(t);
	return error;
}

/* "a/b/c": no empty, "." or ".." components, no leading or trailing slash. */
static int path_valid(const char *path)
{
	const char *s = path, *slash;

	if (path == NULL || *path == '\0')
		return 0;
	for (;;) {
		size_t n;

		slash = strchr(s, '/');
		n = slash ? (size_t)(slash - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		if (slash == NULL)
			return 1;
		s = slash + 1;
	}
}

int th_repo_tree_update(th_oid *out, th_repo *repo, const th_oid *root, const char *path,
                        const th_oid *oid, int is_tree, th_error *err)
{
	git_tree_update upd;
	git_treebuilder *bld = NULL;
	git_tree_entry *e = NULL;
	git_tree *base = NULL;
	git_oid base_id, id;
	int error;

	if (!path_valid(path))
		return th_error_set(err, TH_EINVALID, "invalid tree path '%s'", path ? path : "");
	if (root) {
		if ((error = tree_lookup(&base, repo, root, err)) < 0)
			return error;
	} else {
		/* The empty tree is written (a no-op when present) so it can be the baseline. */
		if ((error = git_treebuilder_new(&bld, repo->git, NULL)) < 0 ||
		    (error = git_treebuilder_write(&base_id, bld)) < 0 ||
		    (error = git_tree_lookup(&base, repo->git, &base_id)) < 0) {
			error = th_repo__git_error(err, error, "cannot write the empty tree");
			goto cleanup;
		}
	}
	if (oid == NULL) {
		/* Removing what is not there leaves the tree as it is. */
		error = git_tree_entry_bypath(&e, base, path);
		if (error == GIT_ENOTFOUND) {
			to_th(out, git_tree_id(base));
			error = TH_OK;
			goto cleanup;
		}
		if (error < 0) {
			error = th_repo__git_error(err, error, "cannot look up path");
			goto cleanup;
		}
	}
	memset(&upd, 0, sizeof(upd));
	upd.action = oid ? GIT_TREE_UPDATE_UPSERT : GIT_TREE_UPDATE_REMOVE;
	if (oid)
		upd.id = *goid(oid);
	upd.filemode = is_tree ? GIT_FILEMODE_TREE : GIT_FILEMODE_BLOB;
	upd.path = path;
	if ((error = git_tree_create_updated(&id, repo->git, base, 1, &upd)) < 0) {
		error = th_repo__git_error(err, error, "cannot update tree");
		goto cleanup;
	}
	to_th(out, &id);

cleanup:
	git_tree_entry_free(e);
	git_tree_free(base);
	git_treebuilder_free(bld);
	return error;
}

void th_repo_empty_tree(th_oid *out)
{
	static const unsigned char empty[20] = { 0x4b, 0x82, 0x5d, 0xc6, 0x42, 0xcb, 0x6e,
		                                 0xb9, 0xa0, 0x60, 0xe5, 0x4b, 0xf8, 0xd6,
		                                 0x92, 0x88, 0xfb, 0xee, 0x49, 0x04 };

	memcpy(out->id, empty, 20);
}

int th_repo_blob_write(th_oid *out, th_repo *repo, const void *data, size_t len, th_error *err)
{
	git_oid id;
	int error;

	if ((error = git_blob_create_from_buffer(&id, repo->git, data, len)) < 0)
		return th_repo__git_error(err, error, "cannot write blob");
	to_th(out, &id);
	return TH_OK;
}

int th_repo_blob_read(th_buf *out, th_repo *repo, const th_oid *id, th_error *err)
{
	git_odb_object *obj = NULL;
	char hex[41];
	int error;

	/* Straight from the object database: a blob needs no parsing, and this skips libgit2's
	 * object cache, which would only hold a second copy of data the caller copies anyway. */
	if ((error = git_odb_read(&obj, repo->odb, goid(id))) < 0) {
		th_oid_fmt(hex, id);
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "blob '%s' not found", hex);
		return th_repo__git_error(err, error, "cannot read blob");
	}
	if (git_odb_object_type(obj) != GIT_OBJECT_BLOB) {
		th_oid_fmt(hex, id);
		error = th_error_set(err, TH_ENOTFOUND, "object '%s' is not a blob", hex);
	} else {
		error = th_buf_set(out, git_odb_object_data(obj), git_odb_object_size(obj), err);
	}
	git_odb_object_free(obj);
	return error;
}

int th_repo_exists(th_repo *repo, const th_oid *id)
{
	return git_odb_exists(repo->odb, goid(id));
}
