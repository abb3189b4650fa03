/* meta_migrate.h: moving a single-server installation's metadata store, DIR/meta.sqlite, into an
 * empty PostgreSQL store (storage/meta_migrate.c; `tablehub meta migrate`).
 */
#ifndef TABLEHUB_META_MIGRATE_H
#define TABLEHUB_META_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* What was moved: one entry per table, in the order copied. */
typedef struct th_meta_moved {
	char table[64];
	int64_t rows;
} th_meta_moved;

typedef struct th_meta_moved_list {
	th_meta_moved *items; /* heap; free with th_meta_moved_list_dispose */
	size_t n;
} th_meta_moved_list;

void th_meta_moved_list_dispose(th_meta_moved_list *l);

/* Copy every table of data dir `data_dir`'s meta.sqlite into the PostgreSQL store at `url`
 * (postgresql://...; its schema is made or brought up to date first), in one PostgreSQL
 * transaction: all of it or nothing. The data dir's LOCK is held meanwhile, so no server writes
 * meta.sqlite, which is first brought to this build's schema. Identity sequences are moved past
 * the copied ids. The store's settings (its node id) replace the target's. *out (the caller
 * disposes of it) lists the rows per table. Returns TH_OK, TH_EINVALID (a `url` that is not a
 * postgresql:// URL), TH_EEXISTS (the target holds users, databases, operations or any other
 * row already: nothing is copied), TH_EBUSY (a server runs on data_dir), TH_ENOTFOUND (no
 * meta.sqlite there) or TH_ESTORE (also when meta.sqlite has a table PostgreSQL's schema lacks).
 * No message holds the URL. */
int th_meta_migrate(th_meta_moved_list *out, const char *data_dir, const char *url, th_error *err);

#endif
