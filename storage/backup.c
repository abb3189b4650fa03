/* backup.c: th_backup and th_restore (see include/tablehub/backup.h for the order that makes a
 * backup taken beside a running server consistent): the order of the steps, meta.sqlite, the
 * uploads and the manifest. Files are copied by backup_files.c, repositories by backup_repo.c.
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
#include <unistd.h>

#include <sqlite3.h>

#include "backup_internal.h"
#include "tablehub/datadir.h"
#include "tablehub/dirsync.h"
#include "tablehub/ids.h"
#include "tablehub/text.h"

#define FORMAT_LINE "tablehub backup 1\n"

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

	if ((error = th_backup__path_of(from, sizeof(from), c->src, "meta.sqlite", err)) < 0 ||
	    (error = th_backup__path_of(to, sizeof(to), c->dst, "meta.sqlite", err)) < 0)
		return error;
	if (!th_backup__exists(from))
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

/* --- uploads and the whole ------------------------------------------------------------------- */

/* Is `name` a finished upload (its sha-256 in hex) or a resumable upload's part file? */
static int upload_name(const char *name, int part)
{
	size_t n = strlen(name);

	if (!part)
		return n == 64 && th_is_hex(name, 64);
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

	if ((error = th_backup__path_of(path, sizeof(path), c->src, sub, err)) < 0)
		return error;
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? TH_OK : th_error_os(err, errno, "read", sub);
	if ((error = th_backup__make_dir(c, sub, err)) < 0) {
		closedir(d);
		return error;
	}
	while (error == TH_OK && (e = readdir(d)) != NULL) {
		int gone = 0;
		if (!upload_name(e->d_name, part))
			continue;
		snprintf(rel, sizeof(rel), "%s/%.100s", sub, e->d_name);
		error = th_backup__copy_file(c, rel, &gone, err);
	}
	closedir(d);
	return error;
}

static int write_manifest(copier *c, size_t ndbs, th_error *err)
{
	char path[4096], text[256];
	int fd, n, error;

	if ((error = th_backup__path_of(path, sizeof(path), c->dst, "BACKUP", err)) < 0)
		return error;
	n = snprintf(text, sizeof(text), FORMAT_LINE "created_at %lld\ndatabases %zu\n",
	             (long long)th_now_ms(), ndbs);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		return th_error_os(err, errno, "create", "BACKUP");
	if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
		error = th_error_os(err, errno, "write", "BACKUP");
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
		(void)th_dirsync(parent[0] ? parent : "/");
	} else {
		(void)th_dirsync(".");
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

	if (th_backup__exists(out))
		return th_error_set(err, TH_EEXISTS, "'%s' exists: back up into a new directory",
		                    out);
	if ((error = th_backup__path_of(meta, sizeof(meta), dir, "meta.sqlite", err)) < 0)
		return error;
	if (!th_backup__exists(meta))
		return th_error_set(err, TH_ENOTFOUND,
		                    "'%s' is not a data directory: no meta.sqlite", dir);
	if ((error = part_name(part, sizeof(part), out, err)) < 0)
		return error;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	c->src = dir;
	c->dst = part;
	th_backup__remove_tree(part); /* a previous run of this pid that died */
	if ((error = th_mkdir_p(part, err)) < 0 ||
	    (error = th_backup__make_dir(c, "repos", err)) < 0 ||
	    (error = backup_meta(c, err)) < 0 ||
	    (error = th_backup__path_of(meta, sizeof(meta), part, "meta.sqlite", err)) < 0 ||
	    (error = list_dbs(&dbs, &ndbs, meta, err)) < 0)
		goto cleanup;
	if (ndbs > 0 && (snaps = calloc(ndbs, sizeof(*snaps))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < ndbs; i++)
		if ((error = th_backup__copy_repo(&snaps[i], c, &dbs[i], err)) < 0)
			goto cleanup;
	for (size_t i = 0; i < ndbs; i++)
		if ((error = th_backup__write_refs(c, &dbs[i], &snaps[i], err)) < 0)
			goto cleanup;
	if ((error = copy_uploads(c, "uploads", 0, err)) < 0 ||
	    (error = copy_uploads(c, "tus", 1, err)) < 0 ||
	    (error = write_manifest(c, ndbs, err)) < 0)
		goto cleanup;
	(void)th_dirsync(part);
	error = publish(part, out, err);
cleanup:
	if (error < 0)
		th_backup__remove_tree(part);
	else if (stats)
		*stats = c->st;
	for (size_t i = 0; snaps != NULL && i < ndbs; i++)
		th_backup__snap_dispose(&snaps[i]);
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

	if ((error = th_backup__path_of(meta, sizeof(meta), c->dst, "meta.sqlite", err)) < 0)
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
		error = th_backup__check_repo(c, rel, err);
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

	if ((error = th_backup__path_of(path, sizeof(path), in, "BACKUP", err)) < 0)
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
	th_backup__remove_tree(part);
	if ((error = th_mkdir_p(part, err)) < 0)
		goto cleanup;
	/* Everything but the manifest, as it is. */
	if ((d = opendir(in)) == NULL) {
		error = th_error_os(err, errno, "read", "the backup");
		goto cleanup;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat sb;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, "BACKUP") == 0)
			continue;
		if ((error = th_backup__path_of(path, sizeof(path), in, e->d_name, err)) < 0)
			break;
		if (lstat(path, &sb) != 0) {
			error = th_error_os(err, errno, "read", e->d_name);
			break;
		}
		if (S_ISDIR(sb.st_mode))
			error = th_backup__copy_tree(c, e->d_name, err);
		else if (S_ISREG(sb.st_mode))
			error = th_backup__copy_file(c, e->d_name, NULL, err);
		if (error < 0)
			break;
	}
	closedir(d);
	if (error < 0 || (error = check_copy(c, err)) < 0 ||
	    (error = th_datadir_init(part, err)) < 0)
		goto cleanup;
	(void)th_dirsync(part);
	if (th_backup__exists(dir) && rmdir(dir) != 0) {
		error = th_error_set(err, TH_EEXISTS, "cannot replace '%s': %s", dir,
		                     strerror(errno));
		goto cleanup;
	}
	error = publish(part, dir, err);
cleanup:
	if (error < 0)
		th_backup__remove_tree(part);
	else if (stats)
		*stats = c->st;
	free(c);
	return error;
}
