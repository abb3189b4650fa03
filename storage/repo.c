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
 * th_error codes in one place, th_repo__git_error. Branches are in repo_refs.c, commits, trees and
 * blobs in repo_objects.c, the pack writer in pack.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "repo_internal.h"
#include "tablehub/dirsync.h"
#include "tablehub/hash.h"
#include "tablehub/text.h"

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
		/* libgit2 reports a failed write as an OS error quoting strerror. */
		code = e && e->klass == GIT_ERROR_OS &&
		                       (strstr(msg, strerror(ENOSPC)) ||
		                        strstr(msg, strerror(EDQUOT)))
		               ? TH_ENOSPC
		               : TH_ESTORE;
		break;
	}
	th_error_set(err, code, "%s: %s", what, msg);
	/* libgit2 names files by their full path: keep the server's directories out of messages. */
	if (err != NULL)
		th_scrub_paths(err->msg);
	return code;
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

/* libgit2 reads packs through mmap'd windows, by default of 1 GiB each and up to 8 GiB mapped in
 * all (64-bit). Every page a read touches stays resident, with the pages the kernel maps in
 * around it, until its window is unmapped: an import of 10,000,000 rows, whose trees check that
 * each chunk of its new 424 MB pack exists, held the whole pack resident (RSS 507 MB, of which 80
 * MB its own memory). Small windows and a small total keep what packs cost bounded, whatever
 * their size, for imports and for the server's readers alike; a read past the total unmaps the
 * least recently used windows. */
#define MWINDOW_SIZE (16u << 20)
#define MWINDOW_LIMIT (48u << 20)

/* Read no config but the repository's own: a user's ~/.gitconfig or the system's /etc/gitconfig
 * must not change how the server stores data, and looking for them was three file opens on every
 * repository opened. */
static int no_user_config(void)
{
	static const int levels[] = { GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG,
		                      GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA };
	int error = 0;

	for (size_t i = 0; error == 0 && i < sizeof(levels) / sizeof(levels[0]); i++)
		error = git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "");
	return error;
}

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
	    (error = git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0)) < 0 ||
	    (error = git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, (size_t)MWINDOW_SIZE)) < 0 ||
	    (error = git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)MWINDOW_LIMIT)) <
	            0 ||
	    (error = no_user_config()) < 0) {
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

/* th_repo_set_shared: other servers write these repositories too. */
static int shared_store;

/* How long a lock file and a temporary pack must have been left alone before a first writer open
 * of a shared store takes them for a crashed server's: a ref update holds its lock for
 * milliseconds, and a pack being written changes all the time. */
#define SHARED_LOCK_AGE_S 60
#define SHARED_TMP_AGE_S 600

void th_repo_set_shared(int shared)
{
	shared_store = shared;
}

/* Remove the file at `path` if no other server may be using it: any, alone on the store; on a
 * shared store, one last changed over age_s seconds ago. */
static void rm_stale(const char *path, time_t age_s)
{
	struct stat st;

	if (shared_store && (lstat(path, &st) < 0 || st.st_mtime + age_s > time(NULL)))
		return;
	unlink(path);
}

static void rm_lock(const char *path, const char *name, int is_dir)
{
	if (!is_dir && has_suffix(name, ".lock"))
		rm_stale(path, SHARED_LOCK_AGE_S);
}

static void rm_pack_tmp(const char *path, const char *name, int is_dir)
{
	if (!is_dir && strncmp(name, "tmp_", 4) == 0)
		rm_stale(path, SHARED_TMP_AGE_S);
}

/* Remove what a crashed writer leaves behind: ref, config and index lock files (which would make
 * every later ref update fail with GIT_ELOCKED) and half-written packs. A server alone on its
 * store holds the data dir's write lock, so nobody else can be writing them; servers sharing a
 * store (th_repo_set_shared) remove only those left alone long enough (rm_stale). */
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
		rm_stale(p, SHARED_LOCK_AGE_S);
	}
	snprintf(p, n, "%s/refs", gitdir);
	walk(p, rm_lock);
	snprintf(p, n, "%s/objects/pack", gitdir);
	walk(p, rm_pack_tmp);
	free(p);
}

/* Clear stale files at the first writer open of `gitdir` in this process only. The data dir's
 * write lock means no other process writes the repository, so a lock file present at our first
 * open was left by a crashed process (on a shared store, see clear_stale); later, a lock file may
 * belong to another thread of ours in the middle of a ref update, and removing it would break that
 * update's compare-and-swap. */
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
	if (th_dirsync(parent) < 0) {
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

int th_repo_remove(const char *path, th_error *err)
{
	char tmp[4096];
	int saved;

	/* An empty directory beside it, which rename() replaces: the repository leaves its path in
	 * one step, and a crash before rmtree leaves only a *.rm-* directory behind. No allocation
	 * before the rename, so a clean-up after an out-of-memory failure still happens. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.rm-XXXXXX", path) >= sizeof(tmp))
		return th_error_set(err, TH_ESTORE, "cannot remove '%s': path too long", path);
	if (mkdtemp(tmp) == NULL)
		return th_error_set(err, TH_ESTORE, "cannot remove '%s': %s", path,
		                    strerror(errno));
	if (rename(path, tmp) < 0) {
		saved = errno;
		rmdir(tmp);
		if (saved == ENOENT)
			return th_error_set(err, TH_ENOTFOUND, "repository '%s' not found", path);
		return th_error_set(err, TH_ESTORE, "cannot remove '%s': %s", path,
		                    strerror(saved));
	}
	rmtree(tmp);
	return TH_OK;
}

/* 1 when `name` ends in ".git.tmp-" or ".git.rm-" and six mkdtemp characters. */
static int is_stale_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *dash = dot ? strchr(dot, '-') : NULL;

	if (dot == NULL || dash == NULL || strlen(dash + 1) != 6 || dot - name < 4 ||
	    strncmp(dot - 4, ".git", 4) != 0)
		return 0;
	return (size_t)(dash - dot) == 4 ? strncmp(dot, ".tmp", 4) == 0
	                                 : (size_t)(dash - dot) == 3 && strncmp(dot, ".rm", 3) == 0;
}

int th_repo_sweep_stale(int *n_out, const char *data_dir, int64_t min_age_ms, th_error *err)
{
	char repos[4096], owner[4096], entry[4096];
	struct dirent *o, *e;
	DIR *top, *d;
	struct stat st;
	time_t cutoff = time(NULL) - (time_t)(min_age_ms / 1000);
	int n = 0;

	if ((size_t)snprintf(repos, sizeof(repos), "%s/repos", data_dir) >= sizeof(repos))
		return th_error_set(err, TH_ESTORE, "the data directory's path is too long");
	if ((top = opendir(repos)) == NULL) {
		if (errno == ENOENT)
			goto done;
		return th_error_set(err, TH_ESTORE, "cannot read the repositories: %s",
		                    strerror(errno));
	}
	while ((o = readdir(top)) != NULL) {
		if (o->d_name[0] == '.' ||
		    (size_t)snprintf(owner, sizeof(owner), "%s/%s", repos, o->d_name) >=
		            sizeof(owner) ||
		    (d = opendir(owner)) == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			if (!is_stale_name(e->d_name) ||
			    (size_t)snprintf(entry, sizeof(entry), "%s/%s", owner, e->d_name) >=
			            sizeof(entry) ||
			    lstat(entry, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_mtime > cutoff)
				continue;
			rmtree(entry);
			if (access(entry, F_OK) < 0)
				n++;
		}
		closedir(d);
	}
	closedir(top);
done:
	if (n_out)
		*n_out = n;
	return TH_OK;
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
