/* backup.c: th_backup and th_restore (see include/tablehub/backup.h for the order that makes a
 * backup taken beside a running server consistent).
 *
 * Everything is plain file copying (read, write, fsync) except two steps: meta.sqlite goes through
 * SQLite's online backup API (one read transaction: a snapshot, with the server's writers going
 * on), and each repository's refs are read and written through libgit2, which knows loose and
 * packed refs and how git locks them. The refs of the copy are written as loose refs after its
 * objects, and each must name an object the copy holds.
 *
 * The refs are read until two reads in a row agree: libgit2 reads packed-refs before the loose
 * refs, and a `git pack-refs` between the two would hide a ref from one read.
 *
 * A file that vanishes between the listing of a directory and its copy is expected for objects
 * (a repack replaced a loose object or a pack by a new pack, written before the old went) and for
 * uploads (a failed operation's file is removed); for objects the listing is read again until a
 * pass loses nothing. Messages name files relative to the data directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <sqlite3.h>

#include "tablehub/backup.h"
#include "tablehub/datadir.h"
#include "tablehub/ids.h"
#include "tablehub/text.h"

#define FORMAT_LINE "tablehub backup 1\n"
#define MAX_ROUNDS 8 /* object listings of one repository, when repacks keep moving files */

typedef struct copier {
	const char *src, *dst; /* roots: the data directory and the copy (or the reverse) */
	th_backup_stats st;
	char buf[1 << 16];
} copier;

/* One snapshot ref. */
typedef struct snap_ref {
	char *name;
	char *target; /* symbolic: the ref it names; NULL for a direct ref */
	git_oid oid;
} snap_ref;

static int io_error(th_error *err, int e, const char *what, const char *rel)
{
	return th_error_set(err, e == ENOSPC || e == EDQUOT ? TH_ENOSPC : TH_ESTORE,
	                    "cannot %s '%s': %s", what, rel, strerror(e));
}

static int path_of(char *out, size_t size, const char *root, const char *rel, th_error *err)
{
	if ((size_t)snprintf(out, size, "%s/%s", root, rel) >= size)
		return th_error_set(err, TH_EINVALID, "path too long: '%s'", rel);
	return TH_OK;
}

static int exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* fsync the directory at `path` (its entries' names are durable). */
static void sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Copy c->src/rel to c->dst/rel (which must not exist), fsynced. When the source is missing:
 * with `vanished` set *vanished = 1 and TH_OK, else TH_ENOTFOUND. */
static int copy_file(copier *c, const char *rel, int *vanished, th_error *err)
{
	char from[4096], to[4096];
	int in = -1, out = -1, error = TH_OK;
	ssize_t n;

	if ((error = path_of(from, sizeof(from), c->src, rel, err)) < 0 ||
	    (error = path_of(to, sizeof(to), c->dst, rel, err)) < 0)
		return error;
	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT && vanished) {
			*vanished = 1;
			return TH_OK;
		}
		if (errno == ENOENT)
			return th_error_set(err, TH_ENOTFOUND, "'%s' is missing", rel);
		return io_error(err, errno, "read", rel);
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		error = io_error(err, errno, "create", rel);
		goto cleanup;
	}
	while ((n = read(in, c->buf, sizeof(c->buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error = io_error(err, errno, "read", rel);
			goto cleanup;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, c->buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				error = io_error(err, w < 0 ? errno : ENOSPC, "write", rel);
				goto cleanup;
			}
			done += w;
		}
		c->st.bytes += (uint64_t)n;
	}
	if (fsync(out) != 0) {
		error = io_error(err, errno, "write", rel);
		goto cleanup;
	}
	c->st.files++;
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && error == TH_OK)
		error = io_error(err, errno, "write", rel);
	if (error < 0 && out >= 0)
		unlink(to);
	return error;
}

static int make_dir(copier *c, const char *rel, th_error *err)
{
	char path[4096];
	int error;

	if ((error = path_of(path, sizeof(path), c->dst, rel, err)) < 0)
		return error;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return io_error(err, errno, "create", rel);
	return TH_OK;
}

/* Remove `path` and everything under it (no symlink is followed). */
static void remove_tree(const char *path)
{
	struct stat sb;
	DIR *d;
	struct dirent *e;
	char sub[4096];

	if (lstat(path, &sb) != 0)
		return;
	if (!S_ISDIR(sb.st_mode)) {
		unlink(path);
		return;
	}
	if ((d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) <
			    sizeof(sub))
				remove_tree(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

/* Copy the directory c->src/rel into c->dst/rel, everything under it (regular files and
 * directories; nothing else is in a data directory we wrote). */
static int copy_tree(copier *c, const char *rel, th_error *err)
{
	char path[4096], sub[4096];
	struct dirent *e;
	struct stat sb;
	DIR *d;
	int error;

	if ((error = path_of(path, sizeof(path), c->src, rel, err)) < 0 ||
	    (error = make_dir(c, rel, err)) < 0)
		return error;
	if ((d = opendir(path)) == NULL)
		return io_error(err, errno, "read", rel);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name) >= sizeof(sub)) {
			error = th_error_set(err, TH_EINVALID, "path too long in '%s'", rel);
			break;
		}
		if ((error = path_of(path, sizeof(path), c->src, sub, err)) < 0)
			break;
		if (lstat(path, &sb) != 0) {
			error = io_error(err, errno, "read", sub);
			break;
		}
		if (S_ISDIR(sb.st_mode))
			error = copy_tree(c, sub, err);
		else if (S_ISREG(sb.st_mode))
			error = copy_file(c, sub, NULL, err);
		if (error < 0)
			break;
	}
	closedir(d);
	return error;
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (th_hexval((unsigned char)s[i]) < 0)
			return 0;
	return s[n] == '\0';
}

/* --- meta.sqlite ------------------------------------------------------------------------------ */

static int sql_error(sqlite3 *db, const char *what, th_error *err)
{
	int rc = db ? sqlite3_errcode(db) : SQLITE_NOMEM;

	return th_error_set(err, rc == SQLITE_FULL ? TH_ENOSPC : TH_ESTORE, "meta.sqlite: %s: %s",
	                    what, db ? sqlite3_errmsg(db) : "out of memory");
}

/* The online backup of c->src/meta.sqlite into c->dst/meta.sqlite. */
static int backup_meta(copier *c, th_error *err)
{
	char from[4096], to[4096];
	sqlite3 *in = NULL, *out = NULL;
	sqlite3_backup *b;
	int error = TH_OK, rc;

	if ((error = path_of(from, sizeof(from), c->src, "meta.sqlite", err)) < 0 ||
	    (error = path_of(to, sizeof(to), c->dst, "meta.sqlite", err)) < 0)
		return error;
	if (!exists(from))
		return th_error_set(err, TH_ENOTFOUND, "not a data directory: no meta.sqlite");
	/* Read-write without create: a read-only connection cannot open a WAL database whose -shm
	 * it may not write. Nothing is written through it. */
	if (sqlite3_open_v2(from, &in, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		error = sql_error(in, "open", err);
		goto cleanup;
	}
	sqlite3_busy_timeout(in, 10000);
	if (sqlite3_open_v2(to, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		error = sql_error(out, "create the copy", err);
		goto cleanup;
	}
	if ((b = sqlite3_backup_init(out, "main", in, "main")) == NULL) {
		error = sql_error(out, "backup", err);
		goto cleanup;
	}
	/* All pages in one step: one read transaction, so one snapshot. */
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
		sqlite3_sleep(50);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		error = sql_error(out, "backup", err);
		goto cleanup;
	}
cleanup:
	sqlite3_close(in);
	if (out != NULL && sqlite3_close(out) != SQLITE_OK && error == TH_OK)
		error = sql_error(out, "close the copy", err);
	if (error == TH_OK) {
		struct stat sb;
		if (stat(to, &sb) == 0)
			c->st.bytes += (uint64_t)sb.st_size;
	}
	return error;
}

typedef struct db_name {
	char owner[65], name[65];
} db_name;

/* The databases meta.sqlite at `path` knows, into a malloc'd array. */
static int list_dbs(db_name **out, size_t *n_out, const char *path, th_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	db_name *v = NULL;
	size_t n = 0, cap = 0;
	int error = TH_OK, rc;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT owner, name FROM databases ORDER BY owner, name", -1,
	                       &st, NULL) != SQLITE_OK) {
		error = sql_error(db, "list databases", err);
		goto cleanup;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(st, 0);
		const char *d = (const char *)sqlite3_column_text(st, 1);
		if (o == NULL || d == NULL || !th_name_valid(o) || !th_name_valid(d)) {
			error = th_error_set(err, TH_EINVALID,
			                     "meta.sqlite lists a database with an invalid name");
			goto cleanup;
		}
		if (n == cap) {
			db_name *p = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (p == NULL) {
				error = th_error_set(err, TH_ENOMEM, "out of memory");
				goto cleanup;
			}
			v = p;
		}
		snprintf(v[n].owner, sizeof(v[n].owner), "%s", o);
		snprintf(v[n].name, sizeof(v[n].name), "%s", d);
		n++;
	}
	if (rc != SQLITE_DONE)
		error = sql_error(db, "list databases", err);
cleanup:
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (error < 0) {
		free(v);
		return error;
	}
	*out = v;
	*n_out = n;
	return TH_OK;
}

/* --- repositories ----------------------------------------------------------------------------- */

/* libgit2's last error as `code` "<what> '<rel>': <its message, paths cut>". */
static int git_fail_as(th_error *err, int code, const char *what, const char *rel)
{
	const git_error *e = git_error_last();
	char msg[400];

	snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unknown error");
	th_scrub_paths(msg);
	return th_error_set(err, code, "%s '%s': %s", what, rel, msg);
}

static int git_fail(th_error *err, const char *what, const char *rel)
{
	return git_fail_as(err, TH_ESTORE, what, rel);
}

static void refs_free(snap_ref *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].target);
	}
	free(v);
}

/* Read every ref of the repository at `path` (rel for messages). */
static int read_refs(snap_ref **out, size_t *n_out, const char *path, const char *rel,
                     th_error *err)
{
	git_repository *repo = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref;
	snap_ref *v = NULL;
	size_t n = 0, cap = 0;
	int error = TH_OK, rc;

	if (git_repository_open_bare(&repo, path) < 0 ||
	    git_reference_iterator_new(&it, repo) < 0) {
		error = git_fail(err, "cannot read the refs of", rel);
		goto cleanup;
	}
	while ((rc = git_reference_next(&ref, it)) == 0) {
		snap_ref r;
		int symbolic = git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC, oom;
		memset(&r, 0, sizeof(r));
		r.name = strdup(git_reference_name(ref));
		if (symbolic)
			r.target = strdup(git_reference_symbolic_target(ref));
		else
			git_oid_cpy(&r.oid, git_reference_target(ref));
		git_reference_free(ref);
		oom = r.name == NULL || (symbolic && r.target == NULL);
		if (!oom && n == cap) {
			snap_ref *p = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));
			if (p == NULL)
				oom = 1;
			else
				v = p, cap = cap ? cap * 2 : 16;
		}
		if (oom) {
			free(r.name);
			free(r.target);
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		v[n++] = r;
	}
	if (rc != GIT_ITEROVER)
		error = git_fail(err, "cannot read the refs of", rel);
cleanup:
	git_reference_iterator_free(it);
	git_repository_free(repo);
	if (error < 0) {
		refs_free(v, n);
		return error;
	}
	*out = v;
	*n_out = n;
	return TH_OK;
}

static int same_refs(const snap_ref *a, size_t na, const snap_ref *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i].name, b[i].name) != 0 ||
		    (a[i].target == NULL) != (b[i].target == NULL) ||
		    (a[i].target ? strcmp(a[i].target, b[i].target) != 0
		                 : git_oid_cmp(&a[i].oid, &b[i].oid) != 0))
			return 0;
	}
	return 1;
}

/* read_refs until two reads in a row agree (at most MAX_ROUNDS): libgit2 reads packed-refs before
 * the loose refs, so a `git pack-refs` (a repack) between the two can hide a ref from one read. */
static int read_refs_stable(snap_ref **out, size_t *n_out, const char *path, const char *rel,
                            th_error *err)
{
	snap_ref *prev = NULL, *cur = NULL;
	size_t nprev = 0, ncur = 0;
	int error;

	if ((error = read_refs(&prev, &nprev, path, rel, err)) < 0)
		return error;
	for (int i = 1; i < MAX_ROUNDS; i++) {
		if ((error = read_refs(&cur, &ncur, path, rel, err)) < 0) {
			refs_free(prev, nprev);
			return error;
		}
		if (same_refs(prev, nprev, cur, ncur))
			break;
		refs_free(prev, nprev);
		prev = cur;
		nprev = ncur;
		cur = NULL;
		ncur = 0;
	}
	refs_free(cur, ncur);
	*out = prev;
	*n_out = nprev;
	return TH_OK;
}

/* Copy the objects of repository `rel` not yet in the copy: loose ones, then packs (each .pack
 * with its .idx). *vanished = 1 when a listed file was gone before it was copied. */
static int copy_objects(copier *c, const char *rel, int *vanished, th_error *err)
{
	char sub[512], path[4096], file[1024];
	struct dirent *e;
	DIR *d;
	int error = TH_OK;

	for (int i = 0; i < 256 && error == TH_OK; i++) {
		snprintf(sub, sizeof(sub), "%s/objects/%02x", rel, i);
		if ((error = path_of(path, sizeof(path), c->src, sub, err)) < 0)
			return error;
		if ((d = opendir(path)) == NULL) {
			if (errno == ENOENT)
				continue;
			return io_error(err, errno, "read", sub);
		}
		while (error == TH_OK && (e = readdir(d)) != NULL) {
			if (strlen(e->d_name) != 38 || !is_hex(e->d_name, 38))
				continue;
			snprintf(file, sizeof(file), "%s/%s", sub, e->d_name);
			if ((error = path_of(path, sizeof(path), c->dst, file, err)) < 0 ||
			    exists(path))
				continue;
			if ((error = make_dir(c, sub, err)) == TH_OK)
				error = copy_file(c, file, vanished, err);
		}
		closedir(d);
	}
	if (error < 0)
		return error;
	snprintf(sub, sizeof(sub), "%s/objects/pack", rel);
	if ((error = path_of(path, sizeof(path), c->src, sub, err)) < 0)
		return error;
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? TH_OK : io_error(err, errno, "read", sub);
	while (error == TH_OK && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		char pack[1024], idx[1024], dpack[4096];
		int gone = 0;
		if (len < 10 || strncmp(e->d_name, "pack-", 5) != 0 ||
		    strcmp(e->d_name + len - 4, ".idx") != 0)
			continue;
		/* The .pack first: a pack is usable once both are there. */
		snprintf(idx, sizeof(idx), "%s/%s", sub, e->d_name);
		snprintf(pack, sizeof(pack), "%s/%.*s.pack", sub, (int)(len - 4), e->d_name);
		if ((error = path_of(dpack, sizeof(dpack), c->dst, idx, err)) < 0 || exists(dpack))
			continue;
		if ((error = path_of(dpack, sizeof(dpack), c->dst, pack, err)) < 0)
			break;
		unlink(dpack); /* a .pack copied before its .idx vanished */
		if ((error = copy_file(c, pack, &gone, err)) < 0)
			break;
		if (!gone && (error = copy_file(c, idx, &gone, err)) < 0)
			break;
		if (gone) {
			unlink(dpack);
			*vanished = 1;
		}
	}
	closedir(d);
	return error;
}

/* The refs of one repository as backup read them. */
typedef struct repo_snap {
	snap_ref *refs;
	size_t n;
} repo_snap;

/* Copy repository owner/db: its refs read into *snap, then its files and objects copied (again
 * while files vanish). Its refs are written by write_refs, once every repository is copied: a
 * fork's refs may name objects of its parent's store (objects/info/alternates). */
static int copy_repo(repo_snap *snap, copier *c, const db_name *dbn, th_error *err)
{
	static const char *const top[] = { "HEAD", "config", "description",
		                           "objects/info/alternates", NULL };
	static const char *const dirs[] = { "objects", "objects/pack", "objects/info",
		                            "refs",    "refs/heads",   "refs/tags",
		                            NULL };
	char rel[300], sub[400], path[4096];
	int error, vanished, round;

	snprintf(rel, sizeof(rel), "repos/%s/%s.git", dbn->owner, dbn->name);
	if ((error = path_of(path, sizeof(path), c->src, rel, err)) < 0)
		return error;
	if (!exists(path))
		return th_error_set(err, TH_ENOTFOUND, "'%s' is missing", rel);
	if ((error = read_refs_stable(&snap->refs, &snap->n, path, rel, err)) < 0)
		return error;
	snprintf(sub, sizeof(sub), "repos/%s", dbn->owner);
	if ((error = make_dir(c, sub, err)) < 0 || (error = make_dir(c, rel, err)) < 0)
		return error;
	for (int i = 0; dirs[i] != NULL; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", rel, dirs[i]);
		if ((error = make_dir(c, sub, err)) < 0)
			return error;
	}
	for (int i = 0; top[i] != NULL; i++) {
		int gone = 0;
		snprintf(sub, sizeof(sub), "%s/%s", rel, top[i]);
		if ((error = copy_file(c, sub, &gone, err)) < 0)
			return error;
	}
	snprintf(sub, sizeof(sub), "%s/info", rel);
	if ((error = path_of(path, sizeof(path), c->src, sub, err)) < 0 ||
	    (exists(path) && (error = copy_tree(c, sub, err)) < 0))
		return error;
	for (round = 0;; round++) {
		vanished = 0;
		if ((error = copy_objects(c, rel, &vanished, err)) < 0)
			return error;
		if (!vanished)
			return TH_OK;
		c->st.rescans++;
		if (round + 1 == MAX_ROUNDS)
			return th_error_set(
			        err, TH_EBUSY,
			        "the objects of '%s' kept moving (%d repacks); try again", rel,
			        MAX_ROUNDS);
	}
}

/* Write the refs of `snap` into the copy of owner/db, each checked to name an object the copy
 * holds (in its own store or, for a fork, its parent's). */
static int write_refs(copier *c, const db_name *dbn, const repo_snap *snap, th_error *err)
{
	char rel[300], path[4096];
	git_repository *copy = NULL;
	git_odb *odb = NULL;
	int error = TH_OK;

	snprintf(rel, sizeof(rel), "repos/%s/%s.git", dbn->owner, dbn->name);
	if ((error = path_of(path, sizeof(path), c->dst, rel, err)) < 0)
		return error;
	if (git_repository_open_bare(&copy, path) < 0 || git_repository_odb(&odb, copy) < 0) {
		error = git_fail(err, "cannot open the copy of", rel);
		goto cleanup;
	}
	for (size_t i = 0; i < snap->n; i++) {
		const snap_ref *r = &snap->refs[i];
		git_reference *ref = NULL;
		int rc;
		if (r->target == NULL && !git_odb_exists(odb, &r->oid)) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &r->oid);
			error = th_error_set(err, TH_ESTORE,
			                     "'%s': ref %s names object %s, which was not copied",
			                     rel, r->name, hex);
			goto cleanup;
		}
		if (r->target)
			rc = git_reference_symbolic_create(&ref, copy, r->name, r->target, 1,
			                                   "backup");
		else
			rc = git_reference_create(&ref, copy, r->name, &r->oid, 1, "backup");
		git_reference_free(ref);
		if (rc < 0) {
			error = git_fail(err, "cannot write a ref of", rel);
			goto cleanup;
		}
		c->st.files++;
	}
	c->st.databases++;
cleanup:
	git_odb_free(odb);
	git_repository_free(copy);
	return error;
}

/* Check the repository rel under c->dst: it opens, HEAD resolves, every ref names an object it
 * holds. */
static int check_repo(copier *c, const char *rel, th_error *err)
{
	char path[4096];
	git_repository *repo = NULL;
	git_odb *odb = NULL;
	git_oid head;
	snap_ref *refs = NULL;
	size_t nrefs = 0;
	int error;

	if ((error = path_of(path, sizeof(path), c->dst, rel, err)) < 0)
		return error;
	if (!exists(path))
		return th_error_set(err, TH_EINVALID, "damaged backup: '%s' is missing", rel);
	if ((error = read_refs(&refs, &nrefs, path, rel, err)) < 0)
		return error;
	/* (HEAD through git_reference_name_to_id: libgit2 1.5's revparse leaks a reference when the
	 * object is missing) */
	if (git_repository_open_bare(&repo, path) < 0 || git_repository_odb(&odb, repo) < 0 ||
	    git_reference_name_to_id(&head, repo, "HEAD") < 0) {
		error = git_fail_as(err, TH_EINVALID, "damaged backup: cannot read", rel);
		goto cleanup;
	}
	if (!git_odb_exists(odb, &head)) {
		error = th_error_set(err, TH_EINVALID,
		                     "damaged backup: '%s': HEAD names a missing object", rel);
		goto cleanup;
	}
	for (size_t i = 0; i < nrefs; i++) {
		if (refs[i].target == NULL && !git_odb_exists(odb, &refs[i].oid)) {
			error = th_error_set(err, TH_EINVALID,
			                     "damaged backup: '%s': ref %s names a missing object",
			                     rel, refs[i].name);
			goto cleanup;
		}
	}
cleanup:
	git_odb_free(odb);
	git_repository_free(repo);
	refs_free(refs, nrefs);
	return error;
}

/* --- uploads and the whole ------------------------------------------------------------------- */

/* Is `name` a finished upload (its sha-256 in hex) or a resumable upload's part file? */
static int upload_name(const char *name, int part)
{
	size_t n = strlen(name);

	if (!part)
		return n == 64 && is_hex(name, 64);
	return n > 5 && n < 100 && strcmp(name + n - 5, ".part") == 0;
}

/* Copy the files of directory `sub` that upload_name(name, part) accepts; a file that vanished
 * (its upload was removed, or finished) is left out. */
static int copy_uploads(copier *c, const char *sub, int part, th_error *err)
{
	char path[4096], rel[160];
	struct dirent *e;
	DIR *d;
	int error;

	if ((error = path_of(path, sizeof(path), c->src, sub, err)) < 0)
		return error;
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? TH_OK : io_error(err, errno, "read", sub);
	if ((error = make_dir(c, sub, err)) < 0) {
		closedir(d);
		return error;
	}
	while (error == TH_OK && (e = readdir(d)) != NULL) {
		int gone = 0;
		if (!upload_name(e->d_name, part))
			continue;
		snprintf(rel, sizeof(rel), "%s/%.100s", sub, e->d_name);
		error = copy_file(c, rel, &gone, err);
	}
	closedir(d);
	return error;
}

static int write_manifest(copier *c, size_t ndbs, th_error *err)
{
	char path[4096], text[256];
	int fd, n, error;

	if ((error = path_of(path, sizeof(path), c->dst, "BACKUP", err)) < 0)
		return error;
	n = snprintf(text, sizeof(text), FORMAT_LINE "created_at %lld\ndatabases %zu\n",
	             (long long)th_now_ms(), ndbs);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		return io_error(err, errno, "create", "BACKUP");
	if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
		error = io_error(err, errno, "write", "BACKUP");
		close(fd);
		return error;
	}
	close(fd);
	return TH_OK;
}

/* "<path>.part-<pid>" for a copy under construction. */
static int part_name(char *out, size_t size, const char *path, th_error *err)
{
	if ((size_t)snprintf(out, size, "%s.part-%ld", path, (long)getpid()) >= size)
		return th_error_set(err, TH_EINVALID, "path too long");
	return TH_OK;
}

/* Make the finished copy `part` appear as `final`, durably. */
static int publish(const char *part, const char *final, th_error *err)
{
	char parent[4096], *slash;

	if (rename(part, final) != 0)
		return th_error_set(
		        err, errno == ENOTEMPTY || errno == EEXIST ? TH_EEXISTS : TH_ESTORE,
		        "cannot rename the finished copy into place: %s", strerror(errno));
	snprintf(parent, sizeof(parent), "%s", final);
	if ((slash = strrchr(parent, '/')) != NULL) {
		*slash = '\0';
		sync_dir(parent[0] ? parent : "/");
	} else {
		sync_dir(".");
	}
	return TH_OK;
}

int th_backup(th_backup_stats *stats, const char *dir, const char *out, th_error *err)
{
	char part[4096], meta[4096];
	copier *c;
	db_name *dbs = NULL;
	repo_snap *snaps = NULL;
	size_t ndbs = 0;
	int error;

	if (exists(out))
		return th_error_set(err, TH_EEXISTS, "'%s' exists: back up into a new directory",
		                    out);
	if ((error = path_of(meta, sizeof(meta), dir, "meta.sqlite", err)) < 0)
		return error;
	if (!exists(meta))
		return th_error_set(err, TH_ENOTFOUND,
		                    "'%s' is not a data directory: no meta.sqlite", dir);
	if ((error = part_name(part, sizeof(part), out, err)) < 0)
		return error;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	c->src = dir;
	c->dst = part;
	remove_tree(part); /* a previous run of this pid that died */
	if ((error = th_mkdir_p(part, err)) < 0 || (error = make_dir(c, "repos", err)) < 0 ||
	    (error = backup_meta(c, err)) < 0 ||
	    (error = path_of(meta, sizeof(meta), part, "meta.sqlite", err)) < 0 ||
	    (error = list_dbs(&dbs, &ndbs, meta, err)) < 0)
		goto cleanup;
	if (ndbs > 0 && (snaps = calloc(ndbs, sizeof(*snaps))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < ndbs; i++)
		if ((error = copy_repo(&snaps[i], c, &dbs[i], err)) < 0)
			goto cleanup;
	for (size_t i = 0; i < ndbs; i++)
		if ((error = write_refs(c, &dbs[i], &snaps[i], err)) < 0)
			goto cleanup;
	if ((error = copy_uploads(c, "uploads", 0, err)) < 0 ||
	    (error = copy_uploads(c, "tus", 1, err)) < 0 ||
	    (error = write_manifest(c, ndbs, err)) < 0)
		goto cleanup;
	sync_dir(part);
	error = publish(part, out, err);
cleanup:
	if (error < 0)
		remove_tree(part);
	else if (stats)
		*stats = c->st;
	for (size_t i = 0; snaps != NULL && i < ndbs; i++)
		refs_free(snaps[i].refs, snaps[i].n);
	free(snaps);
	free(dbs);
	free(c);
	return error;
}

/* Is `path` missing or an empty directory? */
static int absent_or_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (d == NULL)
		return errno == ENOENT;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

/* Check the restored copy under c->dst: meta.sqlite whole, every database's repository sound. */
static int check_copy(copier *c, th_error *err)
{
	char meta[4096], rel[300];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	db_name *dbs = NULL;
	size_t ndbs = 0;
	int error = TH_OK;

	if ((error = path_of(meta, sizeof(meta), c->dst, "meta.sqlite", err)) < 0)
		return error;
	if (sqlite3_open_v2(meta, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		error = sql_error(db, "check", err);
		goto cleanup;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		error = th_error_set(err, TH_EINVALID, "damaged backup: meta.sqlite: %.200s",
		                     (const char *)sqlite3_column_text(st, 0));
		goto cleanup;
	}
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_close(db);
	db = NULL;
	if ((error = list_dbs(&dbs, &ndbs, meta, err)) < 0)
		goto cleanup;
	for (size_t i = 0; i < ndbs && error == TH_OK; i++) {
		snprintf(rel, sizeof(rel), "repos/%s/%s.git", dbs[i].owner, dbs[i].name);
		error = check_repo(c, rel, err);
		c->st.databases += error == TH_OK;
	}
cleanup:
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(dbs);
	return error;
}

int th_restore(th_backup_stats *stats, const char *in, const char *dir, th_error *err)
{
	char part[4096], path[4096], line[64] = "";
	copier *c;
	struct dirent *e;
	DIR *d = NULL;
	FILE *f;
	int error;

	if ((error = path_of(path, sizeof(path), in, "BACKUP", err)) < 0)
		return error;
	if ((f = fopen(path, "r")) == NULL || fgets(line, sizeof(line), f) == NULL ||
	    strcmp(line, FORMAT_LINE) != 0) {
		if (f)
			fclose(f);
		return th_error_set(err, TH_EINVALID,
		                    "'%s' is not a tablehub backup (no BACKUP file of format 1)",
		                    in);
	}
	fclose(f);
	if (!absent_or_empty(dir))
		return th_error_set(err, TH_EEXISTS,
		                    "'%s' is not empty: restore into a new directory", dir);
	if ((error = part_name(part, sizeof(part), dir, err)) < 0)
		return error;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	c->src = in;
	c->dst = part;
	remove_tree(part);
	if ((error = th_mkdir_p(part, err)) < 0)
		goto cleanup;
	/* Everything but the manifest, as it is. */
	if ((d = opendir(in)) == NULL) {
		error = io_error(err, errno, "read", "the backup");
		goto cleanup;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat sb;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, "BACKUP") == 0)
			continue;
		if ((error = path_of(path, sizeof(path), in, e->d_name, err)) < 0)
			break;
		if (lstat(path, &sb) != 0) {
			error = io_error(err, errno, "read", e->d_name);
			break;
		}
		if (S_ISDIR(sb.st_mode))
			error = copy_tree(c, e->d_name, err);
		else if (S_ISREG(sb.st_mode))
			error = copy_file(c, e->d_name, NULL, err);
		if (error < 0)
			break;
	}
	closedir(d);
	if (error < 0 || (error = check_copy(c, err)) < 0 ||
	    (error = th_datadir_init(part, err)) < 0)
		goto cleanup;
	sync_dir(part);
	if (exists(dir) && rmdir(dir) != 0) {
		error = th_error_set(err, TH_EEXISTS, "cannot replace '%s': %s", dir,
		                     strerror(errno));
		goto cleanup;
	}
	error = publish(part, dir, err);
cleanup:
	if (error < 0)
		remove_tree(part);
	else if (stats)
		*stats = c->st;
	free(c);
	return error;
}
