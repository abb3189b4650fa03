/* query_build.c: writing the snapshot of a commit, the SQLite file a query runs on (see
 * include/tablehub/query.h; the files themselves are managed by storage/sqlcache_files.c).
 *
 * DESIGN
 * - From an ancestor. If a recent ancestor (the first `ancestor_depth` commits of the history)
 *   has a snapshot, that file is brought up to date table by table: a table whose tree is
 *   unchanged is left alone, one whose schema is unchanged gets the rows th_diff_rows reports,
 *   others are rebuilt; dropped tables are dropped. Otherwise every row is read from git and
 *   inserted. Either way rows go in key order.
 * - Copy or take over. The ancestor's file is copied (th_snap_copy) when it holds main's head
 *   (see is_main_head) or a query is reading it; otherwise it is taken over (th_snap_steal) and
 *   changed in place. Writing 120 MB anew costs ~0.3 s on the ext4 this was measured on; a
 *   one-row change in place costs a few ms. A commit that loses its snapshot this way gets it back
 *   when asked. Import branches, left behind after their merge, would protect nearly every
 *   snapshot if "some branch points at it" were the rule, so the rule is main's.
 * - Whole or missing. The file is written under a temporary name and published by
 *   th_snap_publish (synced, renamed), so a reader never sees half a snapshot. A failed advance
 *   from an ancestor falls back to a build from the rows.
 * - One table at a time. A table whose data or shape SQLite refuses (more columns than it allows,
 *   column names that differ only in case, a value too large, undecodable rows) is left out and
 *   logged, and the snapshot holds every other table; src/query.c tells a query naming it why.
 *   Failures of the disk or the snapshot file fail the build, which the next query tries again.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tablehub/diff.h"
#include "tablehub/log.h"
#include "tablehub/merge.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"
#include "query_internal.h"

/* SQLite reserves names that start with "sqlite_" for itself: such a table (a valid tablehub name)
 * cannot be in a snapshot, and is left out of it rather than making the whole database
 * unqueryable. */
static int sql_name_ok(const char *name)
{
	if (strncasecmp(name, "sqlite_", 7) != 0)
		return 1;
	TH_LOG(TH_LOG_WARN, "table '%s' left out of the query snapshot: SQLite reserves the name",
	       name);
	return 0;
}

/* Rows decoded before they go to the snapshot together (th_snap_put_rows). */
#define LOAD_BATCH 32

/* Insert rows[0..n) (decoded) into the snapshot. */
static int load_flush(th_snap_table *st, th_cells *cells, size_t n, th_error *err)
{
	const th_cell *rows[LOAD_BATCH];
	size_t i;

	for (i = 0; i < n; i++)
		rows[i] = cells[i].c;
	return th_snap_put_rows(st, rows, n, err);
}

/* Load every row of `t` into a new table of the snapshot. Chunks are read whole and split into
 * lines here: the keys th_row_iter would compute for every row are not needed. */
static int load_table(th_snap *snap, th_repo *repo, const th_table *t, const char *name,
                      th_error *err)
{
	th_snap_table *st = NULL;
	th_chunk_ref *chunks = NULL;
	th_buf blob = TH_BUF_INIT, lines = TH_BUF_INIT;
	th_cells cells[LOAD_BATCH];
	size_t nchunks = 0, ci, k = 0;
	int error;

	memset(cells, 0, sizeof(cells));
	if ((error = th_snap_table_create(&st, snap, name, &t->schema, err)) < 0)
		goto cleanup;
	if (th_oid_is_zero(&t->rows))
		goto cleanup;
	if ((error = th_table_chunks(&chunks, &nchunks, repo, &t->rows, err)) < 0)
		goto cleanup;
	for (ci = 0; ci < nchunks; ci++) {
		const th_buf *text = &blob;
		const char *p, *end, *nl;

		if ((error = th_repo_blob_read(&blob, repo, &chunks[ci].oid, err)) < 0)
			goto cleanup;
		/* A chunk stored column by column is turned back into its row lines first. */
		if (blob.size > 0 && blob.ptr[0] == TH_CHUNK_BODY_COLUMNS) {
			th_buf_clear(&lines);
			if ((error = th_chunk_body_decode(&lines, blob.ptr, blob.size, err)) < 0)
				goto cleanup;
			text = &lines;
		}
		for (p = text->ptr, end = p + text->size; p < end; p = nl + 1) {
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
				nl = end;
			if ((error = th_row_decode(&cells[k], &t->schema, p, (size_t)(nl - p),
			                           err)) < 0)
				goto cleanup;
			if (++k == LOAD_BATCH) {
				if ((error = load_flush(st, cells, k, err)) < 0)
					goto cleanup;
				k = 0;
			}
		}
		/* The cells point into this chunk's text: in before the next chunk is read. */
		if (k && (error = load_flush(st, cells, k, err)) < 0)
			goto cleanup;
		k = 0;
	}
cleanup:
	for (k = 0; k < LOAD_BATCH; k++)
		th_cells_dispose(&cells[k]);
	free(chunks);
	th_buf_dispose(&blob);
	th_buf_dispose(&lines);
	th_snap_table_free(st);
	return error;
}

typedef struct apply_ctx {
	th_snap_table *st;
	const th_schema *schema;
	th_cells cells;
	th_error *err;
} apply_ctx;

static int apply_change(void *payload, const th_row_change *c)
{
	apply_ctx *a = payload;
	uint64_t count = a->schema->npk > 0 ? 1 : c->count;
	int error;

	if (c->kind == TH_CHANGE_REMOVED) {
		if ((error = th_row_decode(&a->cells, a->schema, c->old_line, c->old_len, a->err)) <
		    0)
			return error;
		return th_snap_delete(a->st, a->cells.c, count, a->err);
	}
	if (a->schema->npk == 0 && c->kind == TH_CHANGE_MODIFIED && c->old_line != NULL) {
		/* Not reported for keyless tables (their changes are additions and removals);
		 * handled anyway: the old copy goes, the new one comes. */
		if ((error = th_row_decode(&a->cells, a->schema, c->old_line, c->old_len, a->err)) <
		            0 ||
		    (error = th_snap_delete(a->st, a->cells.c, count, a->err)) < 0)
			return error;
	}
	if ((error = th_row_decode(&a->cells, a->schema, c->new_line, c->new_len, a->err)) < 0)
		return error;
	return th_snap_put(a->st, a->cells.c, count, a->err);
}

static int in_list(char **v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return 1;
	return 0;
}

/* Is `code`, from putting one table into a snapshot, about that table alone (its data or its
 * shape cannot go into SQLite: bad rows, too many columns, a missing object), so that the table is
 * left out and the others go in? Anything else (the disk, the snapshot file, memory) fails the
 * build, which the next query tries again. */
static int table_failure(int code)
{
	return code == TH_EINVALID || code == TH_ELIMIT || code == TH_ENOTFOUND;
}

/* Put table `name` of tree `root` into the snapshot: left alone when its tree is that of
 * `old_root` (`had`: the older snapshot's commit has it), brought up to date by its row diff when
 * its schema is unchanged, else loaded anew. A table the older snapshot left out is loaded anew. */
static int put_table(th_snap *snap, th_repo *repo, const th_oid *old_root, const th_oid *root,
                     const char *name, int had, apply_ctx *a, th_error *err)
{
	th_table t = TH_TABLE_INIT, old = TH_TABLE_INIT;
	int error;

	if ((error = th_table_load(&t, repo, root, name, err)) == 0 && had)
		error = th_table_load(&old, repo, old_root, name, err);
	if (error < 0) {
		/* fall through to cleanup below */
	} else if (had && th_oid_equal(&old.table_tree, &t.table_tree)) {
		/* unchanged */
	} else if (had && th_schema_equal(&old.schema, &t.schema) && !th_oid_is_zero(&old.rows)) {
		a->schema = &t.schema;
		a->err = err;
		error = th_snap_table_open(&a->st, snap, name, &t.schema, err);
		if (error == 0)
			error = th_diff_rows(repo, &t.schema, &old.rows, &t.rows, apply_change, a,
			                     err);
		else if (error == TH_ENOTFOUND) /* the older snapshot left it out */
			error = load_table(snap, repo, &t, name, err);
		th_snap_table_free(a->st);
		a->st = NULL;
	} else {
		error = load_table(snap, repo, &t, name, err);
	}
	th_table_dispose(&old);
	th_table_dispose(&t);
	return error;
}

/* Write the snapshot of tree `root` at `tmp`. With `old_root` NULL, a new file from the rows.
 * Otherwise the snapshot of tree `old_root` is brought up to `root`: a copy of base_path, or, when
 * base_path is NULL, the file already at tmp (taken over). A table that cannot go into SQLite is
 * left out (logged), so that one table never makes a whole commit unqueryable; a query naming it
 * is told why (th_query__left_out). */
static int build_file(const char *tmp, const char *base_path, th_repo *repo, const th_oid *old_root,
                      const th_oid *root, th_error *err)
{
	th_snap *snap = NULL;
	char **old_names = NULL, **names = NULL;
	apply_ctx a;
	size_t i;
	int error;

	memset(&a, 0, sizeof(a));
	if ((old_root != NULL && (error = th_table_names(&old_names, repo, old_root, err)) < 0) ||
	    (error = th_table_names(&names, repo, root, err)) < 0 ||
	    (base_path != NULL && (error = th_snap_copy(base_path, tmp, err)) < 0) ||
	    (error = old_root != NULL ? th_snap_open(&snap, tmp, err)
	                              : th_snap_create(&snap, tmp, err)) < 0)
		goto cleanup;
	for (i = 0; old_names != NULL && old_names[i] != NULL; i++)
		if (!in_list(names, old_names[i]) && strncasecmp(old_names[i], "sqlite_", 7) != 0 &&
		    (error = th_snap_table_drop(snap, old_names[i], err)) < 0)
			goto cleanup;
	for (i = 0; names[i] != NULL; i++) {
		th_error terr;

		if (!sql_name_ok(names[i]))
			continue;
		memset(&terr, 0, sizeof(terr));
		error = put_table(snap, repo, old_root, root, names[i],
		                  in_list(old_names, names[i]), &a, &terr);
		if (error < 0 && table_failure(error)) {
			TH_LOG(TH_LOG_WARN, "table '%s' left out of the query snapshot: %s",
			       names[i], terr.msg);
			error = th_snap_table_drop(snap, names[i], err); /* no half table stays */
		} else if (error < 0 && err != NULL) {
			*err = terr;
		}
		if (error < 0)
			goto cleanup;
	}
	error = th_snap_commit(snap, err);
	snap = NULL;
cleanup:
	th_snap_free(snap);
	th_cells_dispose(&a.cells);
	th_strv_free(old_names);
	th_strv_free(names);
	return error;
}

/* The most recent commit within `depth` of the history whose tables have a snapshot. */
typedef struct ancestor_search {
	th_repo *repo;
	const th_query_target *t;
	const th_oid *self;
	th_oid root;   /* the found commit's tree */
	th_oid tables; /* its tables/ tree: the snapshot's key */
	th_buf path;
} ancestor_search;

static int ancestor_visit(const th_commit_info *ci, void *payload)
{
	ancestor_search *s = payload;
	th_oid tables;

	if (th_query__tables_tree(&tables, s->repo, &ci->tree, NULL) < 0 ||
	    th_oid_equal(&tables, s->self))
		return 0;
	th_buf_clear(&s->path);
	if (th_query__snapshot_path(&s->path, s->t, &tables, NULL) < 0)
		return 0;
	if (!th_snap_exists(s->path.ptr))
		return 0;
	s->root = ci->tree;
	s->tables = tables;
	return 1;
}

/* Is `tables` the tables/ tree of main's head? That snapshot is the one most asked for (a query
 * without a ref reads main, and a pull request's branch grows from it), so it is copied, never
 * taken over. Other snapshots an ancestor search finds belong to commits their branch has left
 * behind (the branch moved on, or was merged), and are taken over; if one is asked for again it
 * is built again. In doubt (an error), it is kept. */
static int is_main_head(th_repo *repo, const th_oid *tables)
{
	th_commit_info ci;
	th_oid head, t;
	int error;

	memset(&ci, 0, sizeof(ci));
	error = th_repo_branch_get(&head, repo, "main", NULL);
	if (error == TH_ENOTFOUND)
		return 0;
	if (error < 0 || th_repo_commit_read(&ci, repo, &head, NULL) < 0)
		return 1;
	error = th_query__tables_tree(&t, repo, &ci.tree, NULL);
	th_commit_info_dispose(&ci);
	return error < 0 || th_oid_equal(&t, tables);
}

int th_query__build(th_snap_origin *origin, const char *path, const th_query_target *t,
                    const th_query_resolved *r, const th_query_opts *o, th_error *err)
{
	ancestor_search s;
	th_oid empty;
	int steal_fd = -1;
	th_buf tmp = TH_BUF_INIT;
	int error, found = 0;

	memset(&s, 0, sizeof(s));
	if ((error = th_snap_tmp_path(&tmp, path, err)) < 0)
		return error;
	th_repo_empty_tree(&empty);
	if (o->ancestor_depth > 0 && !th_oid_equal(&r->tables, &empty)) {
		s.repo = r->repo;
		s.t = t;
		s.self = &r->tables;
		found = th_repo_log(r->repo, &r->commit, o->ancestor_depth + 1, ancestor_visit, &s,
		                    NULL) == 1;
	}
	error = TH_ENOTFOUND;
	if (found) {
		th_error aerr;
		memset(&aerr, 0, sizeof(aerr));
		/* An ancestor that is not main's head is taken over when nobody reads it: a copy
		 * of a large snapshot costs far more than a small change. */
		if (!is_main_head(r->repo, &s.tables) &&
		    th_snap_steal(&steal_fd, s.path.ptr, tmp.ptr, NULL) == TH_OK)
			error = build_file(tmp.ptr, NULL, r->repo, &s.root, &r->root, &aerr);
		else
			error = build_file(tmp.ptr, s.path.ptr, r->repo, &s.root, &r->root, &aerr);
		if (error == TH_OK)
			*origin = TH_SNAP_ADVANCED;
		else
			TH_LOG(TH_LOG_WARN, "snapshot from ancestor failed, building anew: %s",
			       aerr.msg);
	}
	if (error != TH_OK) {
		error = build_file(tmp.ptr, NULL, r->repo, NULL, &r->root, err);
		*origin = TH_SNAP_BUILT;
	}
	if (error == TH_OK)
		error = th_snap_publish(tmp.ptr, path, err);
	else
		th_snap_remove(tmp.ptr);
	if (steal_fd >= 0)
		close(steal_fd); /* after the rename: waiting queries of the old path retry */
	th_buf_dispose(&s.path);
	th_buf_dispose(&tmp);
	return error;
}
