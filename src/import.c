/* import.c: a file of rows -> table changes -> one commit (see include/tablehub/import.h).
 *
 * DESIGN. The file is read once, through the reader its format names (reader.h), in two passes:
 * - pass 1 (import_scan.c) reads the header, plans the columns, checks every row (width, NULL
 *   keys, values against an existing schema) and infers the types of new columns over the whole
 *   file, writing the good rows to an unlinked spill file in a compact binary form;
 * - pass 2 (import_edits.c) reads the spill file back, encodes each row's key and line for the
 *   now-known schema and sorts them with the external sorter (sorter.c), whose memory stays within
 *   the budget however large the file; the sorted stream is checked for duplicate keys and handed
 *   to th_table__apply_ex as edits. Keys that already strictly increase skip the sorter.
 * This file runs the steps: the checks that need no input, the passes, then the chunks' pack,
 * the trees and the commit, and the branch moved by compare-and-swap. Only after every row was
 * accepted is anything written that a ref points to; a failure before that leaves the refs as they
 * were (an unreferenced pack left behind by a failed import is garbage for a later gc, never
 * visible data).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "tablehub/sqlwrite.h"
#include "import_impl.h"

#define DEFAULT_BUDGET (64u << 20)
#define PACK_THRESHOLD (1u << 20) /* spill bytes above which chunks go into one pack */
#define READ_AHEAD_MIN (4 << 20)  /* file bytes above which the parse runs on a thread */

th_import_op th_import_op_parse(const char *s)
{
	static const char *names[] = { "create", "overwrite", "update", "replace", "append" };
	size_t i;

	for (i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0)
			return (th_import_op)(i + 1);
	return 0;
}

const char *th_import_op_name(th_import_op op)
{
	static const char *names[] = { "Create", "Overwrite", "Update", "Replace", "Append" };

	return op >= TH_OP_CREATE && op <= TH_OP_APPEND ? names[op - 1] : "unknown";
}

static void state_dispose(th_import__state *m)
{
	size_t i;

	th_schema_dispose(&m->schema);
	th_table_dispose(&m->old);
	for (i = 0; m->fnames && i < m->nfile; i++)
		free(m->fnames[i]);
	free(m->fnames);
	free(m->tpos);
	free(m->fpos);
	free(m->mask);
	free(m->ncells);
	free(m->nlens);
	th_import__spill_dispose(&m->spill);
	th_sorter_free(m->sort);
	th_buf_dispose(&m->sdata);
	free(m->scells);
	free(m->sfcells);
	free(m->soffs);
	free(m->rbuf);
	th_buf_dispose(&m->ekey);
	th_buf_dispose(&m->eline);
	th_buf_dispose(&m->srow);
	th_buf_dispose(&m->fmt);
	th_cells_dispose(&m->c1);
	th_cells_dispose(&m->c2);
	th_row_iter_free(m->old_it);
}

static int schemas_equal(const th_schema *a, const th_schema *b)
{
	size_t i;

	if (a->ncols != b->ncols || a->npk != b->npk)
		return 0;
	for (i = 0; i < a->ncols; i++)
		if (strcmp(a->cols[i].name, b->cols[i].name) != 0 ||
		    a->cols[i].type != b->cols[i].type ||
		    a->cols[i].nullable != b->cols[i].nullable)
			return 0;
	for (i = 0; i < a->npk; i++)
		if (a->pk[i] != b->pk[i])
			return 0;
	return 1;
}

/* A new table may not differ only in case from one of the commit's tables: SQL (SQLite) would
 * read one for the other. */
static int check_name_case(th_repo *repo, const th_oid *root, const th_import_opts *o,
                           const char *label, th_error *err)
{
	char **names = NULL;
	size_t i;
	int error;

	if ((error = th_table_names(&names, repo, root, err)) < 0)
		return error;
	for (i = 0; names[i] != NULL; i++)
		if (error == TH_OK && th_import__ascii_casecmp(names[i], o->table) == 0)
			error = th_error_set(
			        err, TH_EINVALID,
			        "table '%s' differs only in case from table '%s' on "
			        "branch '%s', which SQL does not tell apart: use '%s' or "
			        "another name",
			        o->table, names[i], label, names[i]);
	th_strv_free(names);
	return error;
}

int th_import_fd(th_import_result *out, th_repo *repo, int fd, const th_import_opts *o,
                 th_error *err)
{
	th_reader *src = NULL;
	th_reader_opts ropts;
	const char **columns = NULL;
	size_t ncolumns = 0;
	th_pack *pack = NULL;
	th_commit_info head_info;
	th_oid head, rows, root, commit;
	th_apply_stats st;
	th_buf msg = TH_BUF_INIT, email = TH_BUF_INIT;
	const char *author = o->author ? o->author : "tablehub";
	const char *label = o->branch_label ? o->branch_label : o->branch;
	th_import__state m;
	size_t i;
	uint64_t spill_size;
	struct stat fst;
	int error, use_base;

	memset(&m, 0, sizeof(m));
	th_import__spill_init(&m.spill, o->tmpdir);
	memset(&head_info, 0, sizeof(head_info));
	m.repo = repo;
	m.o = o;

	if (o->report) {
		th_buf_clear(o->report);
		if ((error = th_buf_puts(o->report, "{\"rejected_rows\":[", err)) < 0)
			goto cleanup;
	}
	if (th_format_is_sql(o->format)) {
		error = th_error_set(
		        err, TH_EINVALID,
		        "a Sql file holds statements, not rows: run it with `tablehub sql "
		        "OWNER/DB --file FILE`, or upload it");
		goto cleanup;
	}
	if (!th_table_name_valid(o->table)) {
		error = th_error_set(err, TH_EINVALID,
		                     "bad table name '%s': use 1-64 of [A-Za-z0-9_-]", o->table);
		goto cleanup;
	}
	if (o->op < TH_OP_CREATE || o->op > TH_OP_APPEND) {
		error = th_error_set(err, TH_EINVALID, "unknown import operation");
		goto cleanup;
	}
	if (o->base != NULL) {
		head = *o->base;
	} else if ((error = th_repo_branch_get(&head, repo, o->branch, err)) < 0) {
		if (error == TH_ENOTFOUND)
			error = th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", label);
		goto cleanup;
	}
	if ((error = th_repo_commit_read(&head_info, repo, &head, err)) < 0)
		goto cleanup;
	error = th_table_load(&m.old, repo, &head_info.tree, o->table, err);
	if (error == TH_OK)
		m.table_exists = 1;
	else if (error != TH_ENOTFOUND)
		goto cleanup;
	if (o->op == TH_OP_CREATE && m.table_exists) {
		error = th_error_set(err, TH_EEXISTS,
		                     "table '%s' already exists on branch '%s'; use importOp "
		                     "Overwrite, Update, Replace or Append",
		                     o->table, label);
		goto cleanup;
	}
	if (o->op != TH_OP_CREATE && o->op != TH_OP_OVERWRITE && !m.table_exists) {
		error = th_error_set(err, TH_ENOTFOUND,
		                     "table '%s' not found on branch '%s'; use importOp Create",
		                     o->table, label);
		goto cleanup;
	}
	if (!m.table_exists && (error = check_name_case(repo, &head_info.tree, o, label, err)) < 0)
		goto cleanup;
	if (o->op != TH_OP_CREATE && o->op != TH_OP_OVERWRITE && o->npk) {
		/* Keys named for an existing table must be its keys. */
		int same = o->npk == m.old.schema.npk;
		for (i = 0; same && i < o->npk; i++)
			same = strcmp(o->pk[i], m.old.schema.cols[m.old.schema.pk[i]].name) == 0;
		if (!same) {
			error = th_error_set(err, TH_EINVALID,
			                     "primary keys given do not match table '%s''s; leave "
			                     "them out or use importOp Overwrite",
			                     o->table);
			goto cleanup;
		}
	}

	/* Pass 1. Rows appended to or replacing a table may be read against the table's columns:
	 * a reader whose rows name their columns (JSON) then accepts rows giving any subset of
	 * them. (An update keeps the file's own header: a column the file leaves out is kept, not
	 * set to NULL.) */
	if (m.table_exists && (o->op == TH_OP_APPEND || o->op == TH_OP_REPLACE)) {
		if ((columns = calloc(m.old.schema.ncols + 1, sizeof(*columns))) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		for (i = 0; i < m.old.schema.ncols; i++)
			columns[i] = m.old.schema.cols[i].name;
		ncolumns = m.old.schema.ncols;
	}
	memset(&ropts, 0, sizeof(ropts));
	ropts.columns = columns;
	ropts.ncolumns = ncolumns;
	ropts.sheet = o->sheet;
	if ((error = th_reader_open_with(&src, o->format, fd, &ropts, err)) < 0)
		goto cleanup;
	/* A large file is parsed on a second core while this one checks and spills its rows. */
	if (fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) && fst.st_size > READ_AHEAD_MIN)
		src = th_reader_ahead(src);
	if ((error = th_import__header(&m, src, err)) < 0 ||
	    (error = th_import__plan_columns(&m, err)) < 0 ||
	    (error = th_import__scan(&m, src, err)) < 0)
		goto cleanup;
	if (o->progress)
		o->progress(o->progress_payload, th_reader_bytes(src), m.rows_read);
	if (o->op == TH_OP_CREATE || o->op == TH_OP_OVERWRITE)
		for (i = 0; i < m.nfile; i++)
			m.schema.cols[i].type = th_type_pick(m.mask[i]);
	if (o->check && (error = o->check(o->progress_payload, err)) < 0)
		goto cleanup;

	/* Pass 2 and the write. */
	spill_size = m.spill.size;
	if ((error = th_sorter_new(&m.sort, o->tmpdir,
	                           o->mem_budget ? o->mem_budget : DEFAULT_BUDGET, err)) < 0 ||
	    (error = th_import__sort(&m, err)) < 0)
		goto cleanup;
	use_base = o->op == TH_OP_UPDATE || o->op == TH_OP_APPEND;
	if (!use_base && m.table_exists &&
	    (o->op == TH_OP_REPLACE || schemas_equal(&m.schema, &m.old.schema))) {
		if ((error = th_row_iter_new(&m.old_it, repo, &m.old, err)) < 0 ||
		    (error = th_row_iter_next(m.old_it, &m.old_row, err)) < 0)
			goto cleanup;
		m.old_have = error;
	}
	if (spill_size > PACK_THRESHOLD && ((error = th_pack_new(&pack, repo, 1, err)) < 0 ||
	                                    (error = th_pack_async(pack, err)) < 0))
		goto cleanup;
	error = th_table__apply_ex(
	        &rows, &st, repo, &m.schema, use_base ? &m.old.rows : NULL, th_import__next_edit,
	        &m, use_base && m.schema.npk ? th_import__resolve : NULL, use_base, pack, err);
	pack = NULL; /* taken by the apply */
	if (error < 0)
		goto cleanup;
	memset(out, 0, sizeof(*out));
	out->rows_read = m.rows_read;
	if (use_base) {
		out->added = st.added;
		out->modified = st.modified;
		out->removed = st.removed;
		out->rows = m.old.row_count + st.added - st.removed;
	} else if (m.old_it) {
		out->added = m.cnt_added;
		out->modified = m.cnt_modified;
		out->removed = m.cnt_removed;
		out->rows = st.added;
	} else {
		out->added = st.added;
		out->removed = m.table_exists ? m.old.row_count : 0;
		out->rows = st.added;
	}
	out->duplicates = m.duplicates;

	if ((error = th_table_store(&root, repo, &head_info.tree, o->table, &m.schema, &rows,
	                            out->rows, err)) < 0)
		goto cleanup;
	if (o->message)
		error = th_buf_puts(&msg, o->message, err);
	else
		error = th_buf_printf(&msg, err,
		                      "Import %s into %s (%s)\n\nRows added: %llu, "
		                      "modified: %llu, removed: %llu\n",
		                      o->file_name ? o->file_name : "file", o->table,
		                      th_import_op_name(o->op), (unsigned long long)out->added,
		                      (unsigned long long)out->modified,
		                      (unsigned long long)out->removed);
	if (error < 0)
		goto cleanup;
	/* The last chance to stop: after the commit, the branch moves. */
	if (o->check && (error = o->check(o->progress_payload, err)) < 0)
		goto cleanup;
	if (o->email)
		error = th_buf_puts(&email, o->email, err);
	else
		error = th_buf_printf(&email, err, "%s@tablehub.local", author);
	if (error < 0 || (error = th_repo_commit_write(&commit, repo, &root, &head, 1, author,
	                                               email.ptr, msg.ptr, err)) < 0)
		goto cleanup;
	if ((error = th_repo_branch_cas(repo, o->branch, &commit, o->base ? NULL : &head, "import",
	                                err)) < 0) {
		if (error == TH_ECONFLICT)
			error = th_error_set(err, TH_ECONFLICT,
			                     o->base ? "branch '%s' exists already; delete it or "
			                               "run the import again"
			                             : "branch '%s' moved during the import; run "
			                               "it again",
			                     o->base ? o->branch : label);
		goto cleanup;
	}
	out->commit = commit;

cleanup:
	if (o->report && m.nrejects == 0)
		th_buf_clear(o->report); /* a report only of rejected rows */
	th_pack_free(pack);
	th_reader_close(src);
	free(columns);
	th_commit_info_dispose(&head_info);
	th_buf_dispose(&msg);
	th_buf_dispose(&email);
	state_dispose(&m);
	return error;
}
