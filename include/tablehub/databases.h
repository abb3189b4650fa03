/* databases.h: the rules of a database's life (src/databases.c), which both the command line and
 * the HTTP API follow. A database is a row in meta.sqlite plus a bare git repository under the data
 * dir; the row is what makes it exist. */
#ifndef TABLEHUB_DATABASES_H
#define TABLEHUB_DATABASES_H

#include "error.h"
#include "meta.h"

/* Create database owner/name in data dir `data_dir`, whose metadata store `meta` is (borrowed):
 * its repository, whose `main` holds one empty commit by `owner`, then its row (description NULL
 * = ""). Either both exist afterwards or neither does: a failure removes the repository this call
 * made. The caller holds the data dir's write lock (th_datadir_lock; `serve` holds it for its
 * whole life). A repository left without a row by a crash is adopted. Messages name the database,
 * never a path. Returns TH_OK, TH_EINVALID (a bad name), TH_EEXISTS ("database 'o/d' already
 * exists"), TH_ENOMEM or TH_ESTORE. */
int th_db_create(th_meta *meta, const char *data_dir, const char *owner, const char *name,
                 const char *description, int is_private, th_error *err);

#endif
