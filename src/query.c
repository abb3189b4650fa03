/* query.c: read-only SQL at any ref, over snapshots cached in DIR/cache (see
 * include/tablehub/query.h), the tables at a ref, and a table at a ref through an exporter.
 *
 * A query resolves its ref to a commit, and the commit to the id of its tables/ tree, which names
 * the snapshot file: DIR/cache/<owner>/<db>/<tables-oid>.sqlite. Two commits with the same tables
 * (a branch and the tag on it; a merge that changed nothing) share the file.
 *
 * DESIGN
 * - Layers. This file decides what a snapshot is for and when one is made; storage owns the files
 *   (storage/sqlcache_files.c: names, the build lock, publishing, eviction) and the SQL sandbox
 *   (th_snap_query); src/query_build.c writes a snapshot's rows.
 * - Ready. A snapshot that exists is used at once (its use marked for the eviction order). A
 *   missing one is built by one thread of one process (th_snap_lock_build), which checks again
 *   under the lock whether another process built it meanwhile; after a build the cache is brought
 *   back under its budget. A snapshot evicted between the check and the open is built again, once.
 * - Values out. Results stream to the caller's sink as columns and cells straight from SQLite's
 *   memory; nothing here formats a response (api/ does: DoltHub's JSON, the CLI's table and CSV).
 * - One table never breaks the others. A table that cannot go into SQLite (too many columns, names
 *   SQL cannot tell apart, rows SQLite refuses) is left out of the snapshot; a query naming it gets
 *   SQLite's "no such table", which is turned here into an error that names the table and why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tablehub/datadir.h"
#include "tablehub/log.h"
#include "tablehub/table.h"
#include "query_internal.h"

void th_query_opts_init(th_query_opts *o)
{
	o->max_rows = TH_QUERY_MAX_ROWS;
	o->time_ms = TH_QUERY_TIME_MS;
	o->heap_bytes = TH_QUERY_HEAP_BYTES;
	o->cache_budget = TH_QUERY_CACHE_BUDGET;
	o->ancestor_depth = TH_QUERY_ANCESTOR_DEPTH;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* --- resolving a target ----------------------------------------------------------------------- */

/* Refs are branch and tag names and commit ids, plus git's `~N` and `^N` suffixes; anything else
 * revparse understands (`@{...}`, `:/text`, `^{tree}`) is refused. */
static int ref_valid(const char *ref)
{
	const char *p;

	if (ref[0] == '\0' || ref[0] == '-' || ref[0] == '/' || strstr(ref, "..") != NULL ||
	    strlen(ref) > 255)
		return 0;
	for (p = ref; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("_-./~^", c) != NULL))
			return 0;
	}
	return 1;
}

const char *th_query_ref(const th_query_target *t)
{
	return t->ref && t->ref[0] ? t->ref : "main";
}

int th_query__tables_tree(th_oid *out, th_repo *repo, const th_oid *root, th_error *err)
{
	int is_tree = 0, error;

	error = th_repo_tree_lookup(out, &is_tree, repo, root, "tables", err);
	if (error == TH_ENOTFOUND || (error == TH_OK && !is_tree)) {
		th_repo_empty_tree(out);
		return TH_OK;
	}
	return error;
}

static int target_resolve(th_query_resolved *r, const th_query_target *t, th_error *err)
{
	th_commit_info ci;
	const char *ref = th_query_ref(t);
	int error;

	memset(r, 0, sizeof(*r));
	memset(&ci, 0, sizeof(ci));
	if (!ref_valid(ref))
		return th_error_set(err, TH_EINVALID,
		                    "bad ref '%s': expected a branch, a tag or a commit id", ref);
	if ((error = th_datadir_repo_open(&r->repo, t->datadir, t->owner, t->db, 0, err)) < 0)
		return error;
	if ((error = th_repo_resolve(&r->commit, r->repo, ref, err)) < 0) {
		if (error == TH_ENOTFOUND)
			error = th_error_set(err, TH_ENOTFOUND,
			                     "ref '%s' not found in database '%s/%s'", ref,
			                     t->owner, t->db);
		goto fail;
	}
	if ((error = th_repo_commit_read(&ci, r->repo, &r->commit, err)) < 0)
		goto fail;
	r->root = ci.tree;
	th_commit_info_dispose(&ci);
	if ((error = th_query__tables_tree(&r->tables, r->repo, &r->root, err)) < 0)
		goto fail;
	return TH_OK;
fail:
	th_repo_free(r->repo);
	r->repo = NULL;
	return error;
}

int th_query__resolve(th_query_resolved *r, const th_query_target *t, th_error *err)
{
	return target_resolve(r, t, err);
}

int th_query__snapshot_path(th_buf *out, const th_query_target *t, const th_oid *tables,
                            th_error *err)
{
	char hex[41];

	th_oid_fmt(hex, tables);
	return th_snap_path(out, t->datadir, t->owner, t->db, hex, err);
}

static void info_set(th_query_info *info, const th_query_resolved *r)
{
	th_oid_fmt(info->commit, &r->commit);
	th_oid_fmt(info->tables_tree, &r->tables);
}

/* --- making a snapshot ready ------------------------------------------------------------------ */

static int ensure(th_snap_origin *origin, const char *path, const th_query_resolved *r,
                  const th_query_target *t, const th_query_opts *o, th_error *err)
{
	th_snap_lock *lock = NULL;
	int error = TH_OK, tried = 0;

	*origin = TH_SNAP_CACHED;
	if (th_snap_exists(path)) {
		th_snap_touch(path);
		return TH_OK;
	}
	if ((error = th_snap_lock_build(&lock, path, err)) < 0)
		return error;
	if (lock == NULL) { /* another thread built it meanwhile */
		th_snap_touch(path);
		return TH_OK;
	}
	if (!th_snap_exists(path)) {
		error = th_query__build(origin, path, t, r, o, err);
		tried = 1;
	}
	th_snap_unlock_build(lock, tried);
	if (tried && error == TH_OK) {
		char hex[41];
		th_oid_fmt(hex, &r->tables);
		TH_LOG(TH_LOG_INFO, "snapshot built db=%s/%s tables=%s from=%s", t->owner, t->db,
		       hex, *origin == TH_SNAP_ADVANCED ? "ancestor" : "rows");
		th_snap_evict(t->datadir, o->cache_budget, path);
	}
	return error;
}

static int snapshot(th_buf *path_out, th_query_info *info, const th_query_resolved *r,
                    const th_query_target *t, const th_query_opts *o, th_error *err)
{
	th_snap_origin origin = TH_SNAP_CACHED;
	int error;

	if ((error = th_query__snapshot_path(path_out, t, &r->tables, err)) < 0 ||
	    (error = ensure(&origin, path_out->ptr, r, t, o, err)) < 0)
		return error;
	if (info != NULL) {
		info_set(info, r);
		info->origin = origin;
	}
	return TH_OK;
}

int th_query_snapshot(th_buf *path_out, th_query_info *info, const th_query_target *t,
                      const th_query_opts *o, th_error *err)
{
	th_query_opts defaults;
	th_query_resolved r;
	int error;

	if (o == NULL) {
		th_query_opts_init(&defaults);
		o = &defaults;
	}
	if ((error = target_resolve(&r, t, err)) < 0)
		return error;
	error = snapshot(path_out, info, &r, t, o, err);
	th_repo_free(r.repo);
	return error;
}

/* --- running a query -------------------------------------------------------------------------- */

/* Why a table with schema `s` cannot be in a snapshot, as far as its schema tells, into why[]:
 * TH_ELIMIT (too many columns), TH_EINVALID (column names SQL cannot tell apart), or TH_OK. */
static int schema_unfit(char *why, size_t n, const th_schema *s)
{
	size_t i, j;

	if (s->ncols > TH_SCHEMA_MAX_COLUMNS) {
		snprintf(why, n, "it has %zu columns, more than the %d a table may have for SQL",
		         s->ncols, TH_SCHEMA_MAX_COLUMNS);
		return TH_ELIMIT;
	}
	for (i = 0; i < s->ncols; i++)
		for (j = 0; j < i; j++)
			if (strcasecmp(s->cols[i].name, s->cols[j].name) == 0) {
				snprintf(why, n,
				         "its columns '%.64s' and '%.64s' differ only in case, "
				         "which "
				         "SQL does not tell apart",
				         s->cols[j].name, s->cols[i].name);
				return TH_EINVALID;
			}
	return TH_OK;
}

/* SQLite said "no such table: X" (in err). When X is a table at the commit, the snapshot left it
 * out (src/query_build.c): say so, and why, instead. Returns the code to report. */
static int explain_left_out(const th_query_resolved *r, const th_query_target *t, int error,
                            th_error *err)
{
	static const char needle[] = "no such table: ";
	char name[128], why[300];
	char **names = NULL;
	th_table tab = TH_TABLE_INIT;
	const char *p;
	size_t i;
	int code;

	if (error != TH_EINVALID || err == NULL || (p = strstr(err->msg, needle)) == NULL)
		return error;
	p += sizeof(needle) - 1;
	if (strncasecmp(p, "main.", 5) == 0)
		p += 5;
	snprintf(name, sizeof(name), "%s", p);
	/* SQLite's names ignore ASCII case, as does this lookup. */
	if (th_table_names(&names, r->repo, &r->root, NULL) < 0)
		return error;
	for (i = 0; names[i] != NULL && strcasecmp(names[i], name) != 0; i++)
		;
	if (names[i] == NULL) {
		th_strv_free(names);
		return error;
	}
	if (strncasecmp(names[i], "sqlite_", 7) == 0) {
		code = TH_ELIMIT;
		snprintf(why, sizeof(why), "SQLite reserves the names that start with 'sqlite_'");
	} else if (th_table_load(&tab, r->repo, &r->root, names[i], NULL) < 0 ||
	           (code = schema_unfit(why, sizeof(why), &tab.schema)) == TH_OK) {
		code = TH_ESTORE;
		snprintf(why, sizeof(why),
		         "its rows could not be loaded for SQL (the server's log says why)");
	}
	error = th_error_set(err, code,
	                     "table '%s' cannot be queried at '%s': %s; the other tables can be",
	                     names[i], th_query_ref(t), why);
	th_table_dispose(&tab);
	th_strv_free(names);
	return error;
}

/* Run (or with `names`, only check and list the parameters of) `sql` at t's ref. */
static int run_at(th_query_info *info, const th_query_target *t, const char *sql,
                  const th_sql_binds *binds, char ***names, const th_query_opts *o,
                  const th_sql_sink *sink, th_error *err);

int th_query_run(th_query_info *info, const th_query_target *t, const char *sql,
                 const th_query_opts *o, const th_sql_sink *sink, th_error *err)
{
	return run_at(info, t, sql, NULL, NULL, o, sink, err);
}

int th_query_run_bound(th_query_info *info, const th_query_target *t, const char *sql,
                       const th_sql_binds *binds, const th_query_opts *o, const th_sql_sink *sink,
                       th_error *err)
{
	return run_at(info, t, sql, binds, NULL, o, sink, err);
}

int th_query_params(char ***names, const th_query_target *t, const char *sql, th_error *err)
{
	return run_at(NULL, t, sql, NULL, names, NULL, NULL, err);
}

static int run_at(th_query_info *info, const th_query_target *t, const char *sql,
                  const th_sql_binds *binds, char ***names, const th_query_opts *o,
                  const th_sql_sink *sink, th_error *err)
{
	th_query_opts defaults;
	th_query_info local;
	th_sql_limits lim;
	th_buf path = TH_BUF_INIT;
	th_query_resolved r;
	double t0 = now_ms(), t1;
	int error, attempt;

	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	if (o == NULL) {
		th_query_opts_init(&defaults);
		o = &defaults;
	}
	if (sql == NULL)
		return th_error_set(err, TH_EINVALID, "empty query");
	if ((error = target_resolve(&r, t, err)) < 0)
		return error;
	lim.max_rows = o->max_rows;
	lim.time_ms = o->time_ms;
	lim.heap_bytes = o->heap_bytes;
	/* A snapshot evicted between the check and the open is built again, once. */
	for (attempt = 0; attempt < 2; attempt++) {
		th_buf_clear(&path);
		if ((error = snapshot(&path, info, &r, t, o, err)) < 0)
			break;
		t1 = now_ms();
		info->build_ms = t1 - t0;
		error = names != NULL ? th_snap_params(names, path.ptr, sql, err)
		                      : th_snap_query_bound(&info->rows, &info->truncated, path.ptr,
		                                            sql, binds, &lim, sink, err);
		info->query_ms = now_ms() - t1;
		if (error != TH_ENOTFOUND)
			break;
	}
	error = explain_left_out(&r, t, error, err);
	th_repo_free(r.repo);
	th_buf_dispose(&path);
	return error;
}

int th_query_tables(th_query_info *info, const th_query_target *t, const th_sql_sink *sink,
                    th_error *err)
{
	th_query_info local;
	th_query_resolved r;
	char **names = NULL, col[80];
	const char *cols[1], *types[1] = { "text" };
	size_t i;
	int error;

	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	if ((error = target_resolve(&r, t, err)) < 0)
		return error;
	info_set(info, &r);
	snprintf(col, sizeof(col), "Tables_in_%s", t->db);
	cols[0] = col;
	if ((error = th_table_names(&names, r.repo, &r.root, err)) < 0 ||
	    (sink->columns != NULL &&
	     (error = sink->columns(sink->payload, 1, cols, types, err)) != 0))
		goto cleanup;
	for (i = 0; names[i] != NULL; i++) {
		th_cell c = { names[i], strlen(names[i]), 0 };
		if (sink->row != NULL && (error = sink->row(sink->payload, &c, 1, err)) != 0)
			goto cleanup;
		info->rows++;
	}
cleanup:
	th_strv_free(names);
	th_repo_free(r.repo);
	return error;
}

/* --- a table through an exporter -------------------------------------------------------------- */

int th_query_export(th_table_export **out, const th_exporter *fmt, const th_query_target *t,
                    const char *table, th_error *err)
{
	th_table tab = TH_TABLE_INIT;
	th_table_export *x = NULL;
	th_query_resolved r;
	int error;

	if (table == NULL || !th_table_name_valid(table))
		return th_error_set(err, TH_EINVALID, "bad table name '%s'", table ? table : "");
	if ((error = target_resolve(&r, t, err)) < 0)
		return error;
	error = th_table_load(&tab, r.repo, &r.root, table, err);
	if (error == TH_ENOTFOUND)
		error = th_error_set(err, TH_ENOTFOUND, "table '%s' not found at '%s'", table,
		                     th_query_ref(t));
	if (error < 0) {
		th_repo_free(r.repo);
		return error;
	}
	if ((error = th_table_export_new(&x, fmt, r.repo, &tab, err)) < 0)
		return error;
	/* The name is the exporter's (SQL's CREATE TABLE). */
	if ((error = th_table_export_set_name(x, table, err)) < 0) {
		th_table_export_free(x);
		return error;
	}
	*out = x;
	return TH_OK;
}
