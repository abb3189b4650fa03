/* query_internal.h: what src/query.c (resolving refs, making snapshots ready, running queries)
 * and src/query_build.c (writing a snapshot's rows) share. Nothing else includes this file. */
#ifndef TABLEHUB_QUERY_INTERNAL_H
#define TABLEHUB_QUERY_INTERNAL_H

#include "tablehub/query.h"
#include "tablehub/repo.h"

/* What a target resolves to. */
typedef struct th_query_resolved {
	th_repo *repo; /* owned: th_repo_free */
	th_oid commit;
	th_oid root;   /* the commit's tree */
	th_oid tables; /* its tables/ tree, or the empty tree: the snapshot's key */
} th_query_resolved;

/* The tables/ tree of `root` into *out, the empty tree when it has none. Returns TH_OK or
 * TH_ESTORE. */
int th_query__tables_tree(th_oid *out, th_repo *repo, const th_oid *root, th_error *err);

/* Resolve target t (its ref) into *r. Returns TH_OK, TH_ENOTFOUND, TH_EINVALID or TH_ESTORE;
 * r->repo is the caller's. */
int th_query__resolve(th_query_resolved *r, const th_query_target *t, th_error *err);

/* Append the path of the snapshot of tables tree `tables` of t's database. TH_OK or TH_ENOMEM. */
int th_query__snapshot_path(th_buf *out, const th_query_target *t, const th_oid *tables,
                            th_error *err);

/* Write the snapshot of r at `path` (missing; the caller holds the right to build it, see
 * th_snap_lock_build), from a cached ancestor's snapshot when there is one, else from the rows;
 * *origin says which. Returns TH_OK, TH_ESTORE, TH_ENOMEM or a table's decoding error. */
int th_query__build(th_snap_origin *origin, const char *path, const th_query_target *t,
                    const th_query_resolved *r, const th_query_opts *o, th_error *err);

#endif
