/* datadir.h: the layout of a data directory and its one-writer lock (storage/datadir.c).
 *
 *   DIR/meta.sqlite  DIR/repos/<owner>/<db>.git  DIR/uploads/<sha256>  DIR/cache/  DIR/tmp/
 *   DIR/LOCK         held with flock(LOCK_EX) by the one process that writes repositories
 */
#ifndef TABLEHUB_DATADIR_H
#define TABLEHUB_DATADIR_H

#include "buf.h"
#include "error.h"

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

/* Is `s` a valid owner, database or user name: 1-64 of [A-Za-z0-9_-], not starting with '-'? */
int th_name_valid(const char *s);

/* Split "OWNER/DB" into owner and db (each at most 64 bytes plus NUL). Returns TH_OK or
 * TH_EINVALID with a message saying what a valid name is. */
int th_split_db_name(char owner[65], char db[65], const char *s, th_error *err);

#endif
