/* databases.h: the rules of a database's life (src/databases.c), which both the command line and
 * the HTTP API follow. A database is a row in meta.sqlite plus a bare git repository under the data
 * dir; the row is what makes it exist. */
#ifndef TABLEHUB_DATABASES_H
#define TABLEHUB_DATABASES_H

#include "error.h"
#include "meta.h"
#include "meta_access.h"
#include "repo.h"

/* Create database owner/name in data dir `data_dir`, whose metadata store `meta` is (borrowed):
 * its repository, whose `main` holds one empty commit by `owner`, then its row (description NULL
 * = ""). Either both exist afterwards or neither does: a failure removes the repository this call
 * made. The caller holds the data dir's write lock (th_datadir_lock; `serve` holds it for its
 * whole life). A repository left without a row by a crash is adopted. Messages name the database,
 * never a path. Returns TH_OK, TH_EINVALID (a bad name), TH_EEXISTS ("database 'o/d' already
 * exists"), TH_ENOMEM or TH_ESTORE. */
int th_db_create(th_meta *meta, const char *data_dir, const char *owner, const char *name,
                 const char *description, int is_private, th_error *err);

/* Fork `parent` (read with th_meta_fork_info) into `owner`'s account under the parent's name: a
 * repository that borrows the parent's objects (th_repo_fork: no object is copied) with the
 * parent's branches, then its row, recording op_id as the operation that made it and `ev` (may be
 * NULL) in the trails of both. Whole or absent, as th_db_create. The new database's id goes to
 * *id_out. Returns TH_OK, TH_EINVALID, TH_EEXISTS ("database 'o/d' already exists"), TH_ENOTFOUND
 * (the parent is gone), TH_ENOMEM or TH_ESTORE. */
int th_db_fork(int64_t *id_out, th_meta *meta, const char *data_dir, const th_fork_info *parent,
               const char *owner, const char *op_id, const th_event_new *ev, th_error *err);

/* The branch of a parent that carries `branch` of fork_owner's fork for a pull request:
 * "forks/<fork_owner>/<branch>", into out (size bytes). Returns TH_OK or TH_EINVALID (too long,
 * or not a valid branch name). */
int th_fork_pull_branch(char *out, size_t size, const char *fork_owner, const char *branch);

/* Bring `branch` of `fork` into its parent (owned by parent_owner, of the fork's name) as branch
 * `mirror`, created or moved to it, copying the objects the parent lacks; its head to *head_out.
 * Returns TH_OK, TH_ENOTFOUND ("branch 'b' not found in 'o/d'"), TH_ENOMEM or TH_ESTORE. */
int th_fork_sync(th_oid *head_out, const char *data_dir, const th_fork_info *fork,
                 const char *parent_owner, const char *branch, const char *mirror, th_error *err);

#endif
