/* backup_internal.h: what the files of the backup share (private to storage/): backup.c (the
 * order of a backup and a restore, meta.sqlite, uploads), backup_files.c (copying files and
 * trees) and backup_repo.c (a repository's refs and objects). See include/tablehub/backup.h.
 */
#ifndef TABLEHUB_STORAGE_BACKUP_INTERNAL_H
#define TABLEHUB_STORAGE_BACKUP_INTERNAL_H

#include <stddef.h>

#include "tablehub/backup.h"

#define MAX_ROUNDS 8 /* object listings of one repository, when repacks keep moving files */

/* A copy under way: from the root `src` (a data directory, or a backup) to the root `dst`. */
typedef struct copier {
	const char *src, *dst; /* roots: the data directory and the copy (or the reverse) */
	th_backup_stats st;
	char buf[1 << 16];
} copier;

/* A database meta.sqlite lists. */
typedef struct db_name {
	char owner[65], name[65];
} db_name;

/* The refs of one repository as the backup read them (backup_repo.c). */
typedef struct snap_ref snap_ref;
typedef struct repo_snap {
	snap_ref *refs;
	size_t n;
} repo_snap;

/* --- backup_files.c ------------------------------------------------------------------------ */

/* out = root/rel. Returns TH_OK or TH_EINVALID (too long). */
int th_backup__path_of(char *out, size_t size, const char *root, const char *rel, th_error *err);
/* Is there anything at path (lstat)? */
int th_backup__exists(const char *path);
/* Copy c->src/rel to c->dst/rel (which must not exist), fsynced. A missing source: with `vanished`
 * set *vanished = 1 and TH_OK, else TH_ENOTFOUND. Returns TH_OK or an error (TH_ENOSPC...). */
int th_backup__copy_file(copier *c, const char *rel, int *vanished, th_error *err);
/* mkdir c->dst/rel (fine if it exists). */
int th_backup__make_dir(copier *c, const char *rel, th_error *err);
/* Remove path and everything under it; no symlink is followed. */
void th_backup__remove_tree(const char *path);
/* Copy the directory c->src/rel, everything under it, into c->dst/rel. A file that vanished
 * between the listing and its copy is left out (a temporary file, or one removed meanwhile). */
int th_backup__copy_tree(copier *c, const char *rel, th_error *err);

/* --- backup_repo.c ------------------------------------------------------------------------- */

/* Copy repository owner/db from c->src to c->dst: its refs read into *snap (dispose with
 * th_backup__snap_dispose), then its files and objects. Returns TH_OK, TH_ENOTFOUND, TH_EBUSY
 * (repacks kept moving its objects) or an I/O error. */
int th_backup__copy_repo(repo_snap *snap, copier *c, const db_name *dbn, th_error *err);
/* Write snap's refs into the copy of owner/db, each checked to name an object the copy holds.
 * Returns TH_OK or TH_ESTORE. */
int th_backup__write_refs(copier *c, const db_name *dbn, const repo_snap *snap, th_error *err);
/* Check the repository rel under c->dst: it opens, HEAD and every ref name objects it holds.
 * Returns TH_OK or TH_EINVALID ("damaged backup: ..."). */
int th_backup__check_repo(copier *c, const char *rel, th_error *err);
void th_backup__snap_dispose(repo_snap *snap);

#endif
