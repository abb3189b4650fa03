/* backup.h: a consistent copy of a data directory taken while a server runs, and its restore
 * (storage/backup.c).
 *
 * A backup is a directory: meta.sqlite, repos/<owner>/<db>.git for each database meta.sqlite
 * knows, uploads/<sha256>, tus/<id>.part, and a BACKUP file naming the format. It is taken in an
 * order that makes it consistent without stopping anything:
 *   1. meta.sqlite through SQLite's online backup API: one snapshot of users, databases,
 *      operations and pull requests, however the server writes meanwhile;
 *   2. each database of that snapshot: its refs read first (the snapshot of its branches), then
 *      its objects copied. Objects never change once written, and a ref moves only to objects
 *      written (and fsynced) before it, so every object the refs need is on disk when the copy
 *      starts; a repack that moves them meanwhile is seen (a file that vanished) and the objects
 *      are listed again. The refs are written last, into the copy, and each must resolve there;
 *   3. the uploads, immutable once named by their hash, and the part files of resumable uploads
 *      (tus/<id>.part): a part file only grows, and is cut back to the offset meta.sqlite
 *      records when its upload resumes, so a copy taken after the snapshot is whole for it.
 * The repositories are thus as new as or newer than meta.sqlite, never older: what the snapshot's
 * operations and pull requests name is in them. An operation the snapshot holds unfinished is run
 * again by the server started on the restored directory, as after a crash (every operation kind
 * is idempotent). Query snapshots (cache/) are not copied: they are rebuilt on demand.
 *
 * The copy is made in "<out>.part-<pid>" beside `out` and renamed to `out` once complete, so a
 * backup that stopped half-way is never taken for one.
 */
#ifndef TABLEHUB_BACKUP_H
#define TABLEHUB_BACKUP_H

#include <stdint.h>

#include "error.h"

typedef struct th_backup_stats {
	uint64_t databases; /* repositories copied */
	uint64_t files;     /* object, ref and upload files copied */
	uint64_t bytes;     /* their bytes, and meta.sqlite's */
	uint64_t rescans;   /* object lists read again because a repack moved files meanwhile */
} th_backup_stats;

/* Back up data directory `dir` (which a server may be using) into `out`, which must not exist.
 * *stats (may be NULL) gets what was copied. Returns TH_OK, TH_EEXISTS (`out` exists),
 * TH_ENOTFOUND (`dir` is no data directory: no meta.sqlite), TH_ENOSPC, TH_ENOMEM or TH_ESTORE
 * (the message names the file, relative to the data directory). */
int th_backup(th_backup_stats *stats, const char *dir, const char *out, th_error *err);

/* Restore backup `in` into data directory `dir`, which must not exist or be an empty directory:
 * the backup is checked first (its format, meta.sqlite's integrity, each database's repository
 * there with every ref resolving to an object it holds), then copied into "<dir>.part-<pid>" and
 * renamed to `dir`. Returns TH_OK, TH_EEXISTS (`dir` is not empty), TH_EINVALID (`in` is no
 * backup, or a damaged one: the message says what), TH_ENOSPC, TH_ENOMEM or TH_ESTORE. */
int th_restore(th_backup_stats *stats, const char *in, const char *dir, th_error *err);

#endif
