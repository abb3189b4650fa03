/* dirsync.h: make a directory's entries (or a file's data) durable, one fsync shared by the threads
 * that ask at once.
 *
 * A file renamed or created into a directory survives a crash only once the directory itself is
 * fsynced. When several threads each rename into the same directory (uploads, a repository's
 * packs) and each fsyncs it, the disk flushes the same directory several times over. th_dirsync
 * lets them share: a caller waits for an fsync of the directory that started after it called, and
 * starts one itself when none is running. An fsync that started after a change covers it, so each
 * caller returns only once its own changes are durable, and N callers arriving together cost
 * about two fsyncs instead of N.
 */
#ifndef TABLEHUB_DIRSYNC_H
#define TABLEHUB_DIRSYNC_H

#include <stdint.h>
#include "error.h"

/* Make every entry made in directory `path` before this call durable. Returns 0, or -1 with errno
 * set by the open or fsync that failed (a failure of an fsync shared with other callers is each
 * caller's own: they retry with their own fsync). Thread-safe; `path` is copied. */
int th_dirsync(const char *path);

/* th_dirsync with its failure in err as th_error_os words it, naming the directory `name` (its
 * place in the data directory, for messages): "cannot fsync '<name>': ...", TH_ENOSPC for a full
 * disk, else TH_ESTORE. Returns TH_OK or that code. */
int th_dirsync_err(const char *path, const char *name, th_error *err);

/* The same for a file's data (fdatasync): every write to the file at `path` that returned before
 * this call is durable when it returns 0. For an append-only log written by several threads (the
 * metadata's WAL): each writer's commit costs about a share of one sync. */
int th_filesync(const char *path);

/* For tests: the number of fsyncs th_dirsync has made since the process started. */
uint64_t th_dirsync_count(void);

/* For tests: make th_dirsync call `fn` instead of fsync(2) and fdatasync(2) on the descriptor (NULL
 * restores fsync). Not thread-safe: set it before any th_dirsync runs. */
void th_dirsync_set_sync(int (*fn)(int fd));

#endif
