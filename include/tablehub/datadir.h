/* datadir.h: the layout of a data directory and its one-writer lock (storage/datadir.c).
 *
 *   DIR/meta.sqlite  DIR/repos/<owner>/<db>.git  DIR/uploads/<sha256>  DIR/cache/  DIR/tmp/
 *   DIR/LOCK         held with flock(LOCK_EX) by the one process that writes repositories
 */
#ifndef TABLEHUB_DATADIR_H
#define TABLEHUB_DATADIR_H

#include "buf.h"
#include "error.h"
#include "repo.h"

/* Create `path` and its missing parents (mode 0755). Returns TH_OK, TH_EINVALID (empty or too
 * long) or TH_ESTORE. */
int th_mkdir_p(const char *path, th_error *err);

/* Create DIR and its subdirectories when missing. Returns TH_OK or TH_ESTORE. */
int th_datadir_init(const char *dir, th_error *err);

/* Take the write lock of DIR (creating DIR first). *fd_out holds it until th_datadir_unlock.
 * Returns TH_OK, TH_EBUSY (another process holds it: the message names its pid and what to do)
 * or TH_ESTORE. */
int th_datadir_lock(int *fd_out, const char *dir, th_error *err);
void th_datadir_unlock(int fd);

/* Append DIR/repos/<owner>/<db>.git to out. */
int th_datadir_repo_path(th_buf *out, const char *dir, const char *owner, const char *db,
                         th_error *err);

/* Open the repository of OWNER/DB under DIR into *out (caller frees with th_repo_free); `writer`
 * as for th_repo_open. The one way every layer opens a database's repository. Returns TH_OK,
 * TH_EINVALID (a bad owner or database name), TH_ENOTFOUND ("database 'OWNER/DB' not found") or
 * TH_ESTORE. */
int th_datadir_repo_open(th_repo **out, const char *dir, const char *owner, const char *db,
                         int writer, th_error *err);

#endif
