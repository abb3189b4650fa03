/* sqlwrite.c: SQL writes, the driver (see include/tablehub/sqlwrite.h): the branch's head, its
 * snapshot, a session on it, the statements, the tables written back (sqlwrite_tables.c), the
 * commit and the branch moved by compare-and-swap. Also the results as JSON, the description of a
 * change between two commits, and the import job's Sql uploads.
 *
 * The snapshot is the query cache's (th_query_snapshot: made if missing, from an ancestor's when
 * one is cached), so a write after a query or another write starts at once. The session never
 * changes it (copy-on-write, sqlsession.h). A snapshot evicted or taken over between being made
 * and being opened is made again, once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/pulls.h"
#include "tablehub/query.h"
#include "sqlwrite_impl.h"

#define MESSAGE_SQL_MAX 8192 /* bytes of the statements quoted in a commit message */

const char *th_sqlwrite_change_name(th_sqlwrite_change c)
{
	switch (c) {
	case TH_SQLWRITE_ADDED:
		return "added";
	case TH_SQLWRITE_DROPPED:
		return "dropped";
	default:
		return "modified";
	}
}

void th_sqlwrite_result_dispose(th_sqlwrite_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->ntables; i++)
		free(r->tables[i].name);
	free(r->tables);
	memset(r, 0, sizeof(*r));
}

int th_sqlwrite__add_table(th_sqlwrite_result *res, const char *name, th_sqlwrite_change change,
                           int schema_changed, uint64_t added, uint64_t modified, uint64_t removed,
                           th_error *err)
{
	th_sqlwrite_table *v = realloc(res->tables, (res->ntables + 1) * sizeof(*v)), *t;

	if (v == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	res->tables = v;
	t = &v[res->ntables];
	memset(t, 0, sizeof(*t));
	if ((t->name = strdup(name)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	res->ntables++;
	t->change = change;
	t->schema_changed = schema_changed;
	t->rows_added = added;
	t->rows_modified = modified;
	t->rows_removed = removed;
	res->rows_added += added;
	res->rows_modified += modified;
	res->rows_removed += removed;
	return TH_OK;
}

static int table_cmp(const void *a, const void *b)
{
	return strcmp(((const th_sqlwrite_table *)a)->name, ((const th_sqlwrite_table *)b)->name);
}

/* --- a write ---------------------------------------------------------------------------------- */

typedef struct run {
	th_repo *repo;
	const th_sqlwrite_opts *o;
	th_sqlwrite_result res;
	th_oid head; /* the commit the write starts from */
	th_oid root; /* its tree */
	int create;  /* the branch is made by this write */
	th_sqls *sess;
	th_buf tmpdir;
} run;

static void run_dispose(run *r)
{
	th_sqls_free(r->sess);
	th_buf_dispose(&r->tmpdir);
	th_sqlwrite_result_dispose(&r->res);
}

/* The starting commit, its snapshot and a session on it. */
static int begin(run *r, th_error *err)
{
	const th_sqlwrite_opts *o = r->o;
	th_commit_info ci;
	th_query_target t;
	th_query_opts qo;
	th_sql_limits lim;
	th_buf path = TH_BUF_INIT;
	char hex[41];
	int error, attempt;

	if (o->branch == NULL || !th_repo_branch_name_valid(o->branch))
		return th_error_set(err, TH_EINVALID, "bad branch name '%.200s'",
		                    o->branch ? o->branch : "");
	error = th_repo_branch_get(&r->head, r->repo, o->branch, err);
	if (error == TH_ENOTFOUND && o->from != NULL) {
		r->create = 1;
		error = th_repo_branch_get(&r->head, r->repo, o->from, err);
		if (error == TH_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", o->from);
	} else if (error == TH_ENOTFOUND) {
		return th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", o->branch);
	}
	if (error < 0)
		return error;
	memset(&ci, 0, sizeof(ci));
	if ((error = th_repo_commit_read(&ci, r->repo, &r->head, err)) < 0)
		return error;
	r->root = ci.tree;
	th_commit_info_dispose(&ci);
	if ((error = th_buf_printf(&r->tmpdir, err, "%s/tmp", o->datadir)) < 0)
		return error;

	th_oid_fmt(hex, &r->head);
	memset(&t, 0, sizeof(t));
	t.datadir = o->datadir;
	t.owner = o->owner;
	t.db = o->db;
	t.ref = hex;
	th_query_opts_init(&qo);
	lim.max_rows = 0;
	lim.time_ms = o->time_ms ? o->time_ms : TH_SQLWRITE_TIME_MS;
	lim.heap_bytes = o->heap_bytes ? o->heap_bytes : TH_SQLWRITE_HEAP_BYTES;
	for (attempt = 0; attempt < 2; attempt++) {
		th_buf_clear(&path);
		if ((error = th_query_snapshot(&path, NULL, &t, &qo, err)) < 0)
			break;
		error = th_sqls_open(&r->sess, path.ptr, r->tmpdir.ptr, &lim, err);
		if (error != TH_ENOTFOUND)
			break;
	}
	th_buf_dispose(&path);
	return error;
}

/* The commit message: the subject, the statements (when given, cut to size), the counts and
 * the trailer. */
static int message(th_buf *out, const run *r, const char *sql, th_error *err)
{
	const th_sqlwrite_opts *o = r->o;
	int error;

	if (o->message != NULL)
		error = th_buf_printf(out, err, "%s\n\n", o->message);
	else
		error = th_buf_printf(out, err, "SQL write on %s\n\n", o->branch);
	if (error < 0)
		return error;
	if (sql != NULL) {
		size_t len = strlen(sql);
		while (len > 0 && (sql[len - 1] == '\n' || sql[len - 1] == ' '))
			len--;
		if ((error = th_buf_put(out, sql, len > MESSAGE_SQL_MAX ? MESSAGE_SQL_MAX : len,
		                        err)) < 0 ||
		    (error = th_buf_puts(out, len > MESSAGE_SQL_MAX ? "\n[...]\n\n" : "\n\n",
		                         err)) < 0)
			return error;
	}
	if ((error = th_buf_printf(out, err,
	                           "Statements: %" PRIu64 "; rows added: %" PRIu64
	                           ", modified: %" PRIu64 ", removed: %" PRIu64 "\n",
	                           r->res.statements, r->res.rows_added, r->res.rows_modified,
	                           r->res.rows_removed)) < 0)
		return error;
	if (o->trailer != NULL)
		error = th_buf_printf(out, err, "\n%s\n", o->trailer);
	return error;
}

/* Write back what the statements changed, commit it and move the branch. */
static int finish(run *r, const char *sql, th_error *err)
{
	const th_sqlwrite_opts *o = r->o;
	const char *author = o->author ? o->author : "tablehub";
	th_buf msg = TH_BUF_INIT, email = TH_BUF_INIT;
	th_oid root, commit;
	int error;

	r->res.statements = th_sqls_statements(r->sess);
	r->res.rows_affected = th_sqls_changes(r->sess);
	if ((error = th_sqlwrite__tables(&root, &r->res, r->repo, &r->root, r->sess, r->tmpdir.ptr,
	                                 err)) < 0)
		goto cleanup;
	if (r->res.ntables > 1)
		qsort(r->res.tables, r->res.ntables, sizeof(*r->res.tables), table_cmp);
	r->res.from_commit = r->head;
	r->res.to_commit = r->head;
	r->res.branch_created = r->create;
	if (th_oid_equal(&root, &r->root)) {
		/* Nothing changed: no commit; a branch asked for is made all the same. */
		if (r->create)
			error = th_repo_branch_cas(r->repo, o->branch, &r->head, NULL,
			                           "tablehub: SQL write", err);
		goto cleanup;
	}
	if ((error = message(&msg, r, sql, err)) < 0)
		goto cleanup;
	if (o->email)
		error = th_buf_puts(&email, o->email, err);
	else
		error = th_buf_printf(&email, err, "%s@tablehub.local", author);
	if (error < 0 || (error = th_repo_commit_write(&commit, r->repo, &root, &r->head, 1, author,
	                                               email.ptr, msg.ptr, err)) < 0)
		goto cleanup;
	error = th_repo_branch_cas(r->repo, o->branch, &commit, r->create ? NULL : &r->head,
	                           "tablehub: SQL write", err);
	if (error == TH_ECONFLICT)
		error = th_error_set(err, TH_ECONFLICT,
		                     "branch '%s' %s during the write; run it again", o->branch,
		                     r->create ? "was made" : "moved");
	if (error < 0)
		goto cleanup;
	r->res.to_commit = commit;
	r->res.committed = 1;
cleanup:
	th_buf_dispose(&msg);
	th_buf_dispose(&email);
	return error;
}

int th_sqlwrite_run(th_sqlwrite_result *out, th_repo *repo, const char *sql,
                    const th_sqlwrite_opts *o, th_error *err)
{
	run r;
	int error;

	memset(&r, 0, sizeof(r));
	r.repo = repo;
	r.o = o;
	if (sql == NULL)
		sql = "";
	if ((error = begin(&r, err)) < 0 ||
	    (error = th_sqls_exec(r.sess, sql, strlen(sql), 1, 1, err)) < 0 ||
	    (error = finish(&r, sql, err)) < 0)
		goto cleanup;
	*out = r.res;
	memset(&r.res, 0, sizeof(r.res));
cleanup:
	run_dispose(&r);
	return error;
}

int th_sqlwrite_run_fd(th_sqlwrite_result *out, th_repo *repo, int fd, const th_sqlwrite_opts *o,
                       th_error *err)
{
	const th_format *sql = th_format_find("Sql");
	th_reader *rd = NULL;
	th_reader_row row;
	run r;
	int error, first = 1;

	memset(&r, 0, sizeof(r));
	r.repo = repo;
	r.o = o;
	if ((error = begin(&r, err)) < 0 ||
	    (error = th_reader_open(&rd, sql, fd, NULL, 0, err)) < 0)
		goto cleanup;
	while ((error = th_reader_next(rd, &row, err)) > 0) {
		if (first) { /* the header */
			first = 0;
			continue;
		}
		if ((error = th_sqls_exec(r.sess, row.cells[0], row.lens[0], row.line,
		                          (uint32_t)strtoul(row.cells[1], NULL, 10), err)) < 0)
			goto cleanup;
		if (o->progress)
			o->progress(o->progress_payload, th_reader_bytes(rd),
			            th_sqls_statements(r.sess));
	}
	if (error < 0 || (error = finish(&r, NULL, err)) < 0)
		goto cleanup;
	*out = r.res;
	memset(&r.res, 0, sizeof(r.res));
cleanup:
	th_reader_close(rd);
	run_dispose(&r);
	return error;
}

int th_sqlwrite_import_fd(th_import_result *out, th_repo *repo, int fd, const th_import_opts *opts,
                          const char *datadir, const char *owner, const char *db, th_error *err)
{
	th_sqlwrite_opts o;
	th_sqlwrite_result res;
	th_buf subject = TH_BUF_INIT;
	int error;

	memset(&o, 0, sizeof(o));
	o.datadir = datadir;
	o.owner = owner;
	o.db = db;
	o.branch = opts->branch;
	o.author = opts->author;
	o.email = opts->email;
	o.message = opts->message;
	o.progress = opts->progress;
	o.progress_payload = opts->progress_payload;
	if (o.message == NULL) {
		if ((error = th_buf_printf(&subject, err, "Import %s (Sql)",
		                           opts->file_name ? opts->file_name : "file")) < 0)
			return error;
		o.message = subject.ptr;
	}
	memset(&res, 0, sizeof(res));
	error = th_sqlwrite_run_fd(&res, repo, fd, &o, err);
	th_buf_dispose(&subject);
	if (error < 0)
		return error;
	memset(out, 0, sizeof(*out));
	out->commit = res.to_commit;
	out->rows_read = res.statements;
	out->added = res.rows_added;
	out->modified = res.rows_modified;
	out->removed = res.rows_removed;
	out->rows = res.rows_affected;
	th_sqlwrite_result_dispose(&res);
	return TH_OK;
}

/* --- describing a change ------------------------------------------------------------------ */

static int describe_table(void *payload, const th_table_diff *t, th_error *err)
{
	th_sqlwrite_result *res = payload;
	th_sqlwrite_change c = t->change == TH_TABLE_ADDED     ? TH_SQLWRITE_ADDED
	                       : t->change == TH_TABLE_DROPPED ? TH_SQLWRITE_DROPPED
	                                                       : TH_SQLWRITE_MODIFIED;

	return th_sqlwrite__add_table(res, t->name, c,
	                              t->schema_changed || c != TH_SQLWRITE_MODIFIED, t->rows_added,
	                              t->rows_modified, t->rows_removed, err);
}

int th_sqlwrite_describe(th_sqlwrite_result *out, th_repo *repo, const th_oid *from,
                         const th_oid *to, th_error *err)
{
	th_sqlwrite_result res;
	th_commit_info a, b;
	th_diff_visitor v;
	int error;

	memset(&res, 0, sizeof(res));
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&v, 0, sizeof(v));
	v.table_end = describe_table;
	v.payload = &res;
	v.summary_only = 1;
	if ((error = th_repo_commit_read(&a, repo, from, err)) < 0 ||
	    (error = th_repo_commit_read(&b, repo, to, err)) < 0 ||
	    (error = th_tree_diff(repo, &a.tree, &b.tree, NULL, &v, err)) < 0) {
		th_sqlwrite_result_dispose(&res);
		goto cleanup;
	}
	res.from_commit = *from;
	res.to_commit = *to;
	res.committed = !th_oid_equal(from, to);
	*out = res;
cleanup:
	th_commit_info_dispose(&a);
	th_commit_info_dispose(&b);
	return error;
}

int th_sqlwrite_result_json(th_buf *out, const th_sqlwrite_result *r, const char *extra,
                            th_error *err)
{
	char from[41], to[41];
	size_t i;
	int error;

	th_oid_fmt(from, &r->from_commit);
	th_oid_fmt(to, &r->to_commit);
	if ((error = th_buf_printf(
	             out, err,
	             "{\"from_commit_id\":\"%s\",\"to_commit_id\":\"%s\","
	             "\"committed\":%s,\"statements\":%" PRIu64 ",\"rows_affected\":%" PRIu64
	             ",\"rows_added\":%" PRIu64 ",\"rows_modified\":%" PRIu64
	             ",\"rows_removed\":%" PRIu64 ",\"tables\":[",
	             from, to, r->committed ? "true" : "false", r->statements, r->rows_affected,
	             r->rows_added, r->rows_modified, r->rows_removed)) < 0)
		return error;
	for (i = 0; i < r->ntables; i++) {
		const th_sqlwrite_table *t = &r->tables[i];
		if ((error = th_buf_puts(out, i ? ",{\"table_name\":" : "{\"table_name\":", err)) <
		            0 ||
		    (error = th_buf_put_json_cstr(out, t->name, err)) < 0 ||
		    (error = th_buf_printf(out, err,
		                           ",\"diff_type\":\"%s\",\"schema_change\":%s,"
		                           "\"rows_added\":%" PRIu64 ",\"rows_modified\":%" PRIu64
		                           ",\"rows_removed\":%" PRIu64 "}",
		                           th_sqlwrite_change_name(t->change),
		                           t->schema_changed ? "true" : "false", t->rows_added,
		                           t->rows_modified, t->rows_removed)) < 0)
			return error;
	}
	if ((error = th_buf_putc(out, ']', err)) < 0 ||
	    (extra != NULL && (error = th_buf_puts(out, extra, err)) < 0))
		return error;
	return th_buf_putc(out, '}', err);
}
