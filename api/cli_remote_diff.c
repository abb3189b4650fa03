/* cli_remote_diff.c: `tablehub pr diff OWNER/DB ID [--table T] [--stat]`, a pull request's diff
 * from a server, printed exactly as the local `tablehub diff --merge-base` prints it.
 *
 * The server's diff (GET .../pulls/ID/diff, paged) gives each row's cells as text keyed by column
 * name; the local printer (cli_diff.c) prints rows as their stored JSON lines, typed by the
 * table's schema. So the schemas of both ends are read too (GET .../tables?ref=<commit> at the
 * merge base and at the head), the server's rows are turned back into th_table_diff and
 * th_diff_row values, and the very visitor the local `diff` uses prints them: one printer, one
 * format, colours on a terminal.
 *
 * Pages: every page lists all changed tables; rows come in table order, then key order. A table
 * is begun at its first row (or, having none, where its turn comes) and ended at the next table's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_remote.h"

#define PAGE_SIZE 1000

/* The schemas of the tables at one commit. */
typedef struct schemas {
	size_t n;
	char **names;
	th_schema *s;
} schemas;

static void schemas_dispose(schemas *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->names[i]);
		th_schema_dispose(&x->s[i]);
	}
	free(x->names);
	free(x->s);
	memset(x, 0, sizeof(*x));
}

static const th_schema *schemas_find(const schemas *x, const char *name)
{
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->names[i], name) == 0)
			return &x->s[i];
	return NULL;
}

/* A table item of GET .../tables (columns, primary_key) as a th_schema, through schema.json's
 * form, which th_schema_from_json reads. */
static int schema_of(th_schema *out, const cJSON *table, th_error *err)
{
	cJSON *doc = cJSON_CreateObject(), *cols, *pk;
	char *text = NULL;
	int error;

	cols = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(table, "columns"), 1);
	pk = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(table, "primary_key"), 1);
	if (doc == NULL || cols == NULL || pk == NULL ||
	    !cJSON_AddNumberToObject(doc, "format", 1) ||
	    !cJSON_AddItemToObject(doc, "columns", cols) ||
	    (cols = NULL, !cJSON_AddItemToObject(doc, "primaryKey", pk)) ||
	    (pk = NULL, (text = cJSON_PrintUnformatted(doc)) == NULL)) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = th_schema_from_json(out, text, strlen(text), err);
cleanup:
	cJSON_free(text);
	cJSON_Delete(cols);
	cJSON_Delete(pk);
	cJSON_Delete(doc);
	return error;
}

/* Read the schemas of every table at `commit` ("" = no commit: none). */
static int schemas_load(schemas *x, cli_remote *r, const char *db, const char *commit,
                        th_error *err)
{
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT;
	const cJSON *list, *t;
	size_t n;
	int error;

	memset(x, 0, sizeof(*x));
	if (commit[0] == '\0')
		return TH_OK;
	if ((error = cli_remote_db_path(&path, db, err)) < 0 ||
	    (error = th_buf_puts(&path, "/tables?ref=", err)) < 0 ||
	    (error = cli_http_escape(&path, commit, err)) < 0 ||
	    (error = cli_http_call(&reply, r->http, "GET", path.ptr, NULL, err)) < 0)
		goto cleanup;
	list = cJSON_GetObjectItemCaseSensitive(reply.json, "tables");
	n = (size_t)cJSON_GetArraySize(list);
	if (n > 0 && ((x->names = calloc(n, sizeof(*x->names))) == NULL ||
	              (x->s = calloc(n, sizeof(*x->s))) == NULL)) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	cJSON_ArrayForEach(t, list)
	{
		if ((x->names[x->n] = strdup(cli_json_str(t, "table_name"))) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		if ((error = schema_of(&x->s[x->n], t, err)) < 0) {
			free(x->names[x->n]);
			goto cleanup;
		}
		x->n++;
	}
cleanup:
	th_buf_dispose(&path);
	cli_reply_dispose(&reply);
	return error;
}

/* --- the server's diff as the visitor's values --------------------------------------------- */

typedef struct walk {
	th_diff_visitor v;
	schemas from, to;
	const cJSON *tables; /* of the first page (every page lists them all) */
	int ntables, next;   /* tables begun so far */
	th_table_diff cur;   /* the table begun and not yet ended (cur.name NULL: none) */
	th_cell *cells;
	size_t ncells;
} walk;

static th_table_change change_parse(const char *s)
{
	return strcmp(s, "added") == 0     ? TH_TABLE_ADDED
	       : strcmp(s, "dropped") == 0 ? TH_TABLE_DROPPED
	                                   : TH_TABLE_MODIFIED;
}

static int table_end(walk *w, th_error *err)
{
	int error = TH_OK;

	if (w->cur.name != NULL && w->v.table_end)
		error = w->v.table_end(w->v.payload, &w->cur, err);
	w->cur.name = NULL;
	return error;
}

/* End the current table and begin the next one. */
static int table_next(walk *w, th_error *err)
{
	const cJSON *t = cJSON_GetArrayItem(w->tables, w->next++);
	const char *name = cli_json_str(t, "table_name");
	int error;

	if ((error = table_end(w, err)) < 0)
		return error;
	memset(&w->cur, 0, sizeof(w->cur));
	w->cur.name = name;
	w->cur.change = change_parse(cli_json_str(t, "diff_type"));
	w->cur.from_schema = w->cur.change == TH_TABLE_ADDED ? NULL : schemas_find(&w->from, name);
	w->cur.to_schema = w->cur.change == TH_TABLE_DROPPED ? NULL : schemas_find(&w->to, name);
	if ((w->cur.change != TH_TABLE_ADDED && w->cur.from_schema == NULL) ||
	    (w->cur.change != TH_TABLE_DROPPED && w->cur.to_schema == NULL))
		return th_error_set(err, TH_ERROR, "the server gave no schema for table '%s'",
		                    name);
	w->cur.schema_changed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "schema_change"));
	w->cur.key_changed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "key_changed"));
	w->cur.rows_added = (uint64_t)cli_json_num(t, "rows_added");
	w->cur.rows_modified = (uint64_t)cli_json_num(t, "rows_modified");
	w->cur.rows_removed = (uint64_t)cli_json_num(t, "rows_removed");
	w->cur.cells_modified = (uint64_t)cli_json_num(t, "cells_modified");
	return w->v.table_begin ? w->v.table_begin(w->v.payload, &w->cur, err) : TH_OK;
}

/* The cells of {column: text | null} in the order of schema s, into w->cells[at..]. */
static int cells_of(th_cells *out, walk *w, size_t at, const th_schema *s, const cJSON *obj,
                    th_error *err)
{
	size_t i;

	if (at + s->ncols > w->ncells) {
		size_t n = (at + s->ncols) * 2;
		th_cell *c = realloc(w->cells, n * sizeof(*c));
		if (c == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		w->cells = c;
		w->ncells = n;
	}
	for (i = 0; i < s->ncols; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, s->cols[i].name);
		th_cell *c = &w->cells[at + i];
		c->is_null = !cJSON_IsString(v);
		c->s = c->is_null ? NULL : v->valuestring;
		c->len = c->is_null ? 0 : strlen(v->valuestring);
	}
	memset(out, 0, sizeof(*out));
	out->n = s->ncols;
	return TH_OK;
}

static int row(walk *w, const cJSON *jr, th_error *err)
{
	const char *table = cli_json_str(jr, "table_name");
	const cJSON *before = cJSON_GetObjectItemCaseSensitive(jr, "before");
	const cJSON *after = cJSON_GetObjectItemCaseSensitive(jr, "after");
	th_cells b, a;
	th_diff_row r;
	size_t nb = 0;
	int error;

	while (w->cur.name == NULL || strcmp(w->cur.name, table) != 0) {
		if (w->next >= w->ntables)
			return th_error_set(err, TH_ERROR, "the server's diff lists no table '%s'",
			                    table);
		if ((error = table_next(w, err)) < 0)
			return error;
	}
	memset(&r, 0, sizeof(r));
	r.kind = th_change_kind_parse(cli_json_str(jr, "diff_type"));
	r.key = cli_json_str(jr, "key");
	r.count = cJSON_GetObjectItemCaseSensitive(jr, "count")
	                  ? (uint64_t)cli_json_num(jr, "count")
	                  : 1;
	if (w->cur.from_schema && cJSON_IsObject(before)) {
		if ((error = cells_of(&b, w, 0, w->cur.from_schema, before, err)) < 0)
			return error;
		nb = w->cur.from_schema->ncols;
	}
	if (w->cur.to_schema && cJSON_IsObject(after) &&
	    (error = cells_of(&a, w, nb, w->cur.to_schema, after, err)) < 0)
		return error;
	/* The cells are placed after cells_of may have moved the array. */
	if (w->cur.from_schema && cJSON_IsObject(before)) {
		b.c = w->cells;
		r.before = &b;
	}
	if (w->cur.to_schema && cJSON_IsObject(after)) {
		a.c = w->cells + nb;
		r.after = &a;
	}
	return w->v.row ? w->v.row(w->v.payload, &w->cur, &r, err) : TH_OK;
}

int cli_remote_pr_diff(cli_remote *r, int argc, char **argv)
{
	int missing = 0, stat, error, rc = 1;
	const char *table = cli_take_opt(&argc, argv, "--table", &missing);
	cli_reply reply = CLI_REPLY_INIT, first = CLI_REPLY_INIT;
	th_buf base = TH_BUF_INIT, path = TH_BUF_INIT, token = TH_BUF_INIT;
	th_error err = { 0 };
	cli_diff_printer p;
	const cJSON *jr;
	walk w;

	memset(&w, 0, sizeof(w));
	memset(&p, 0, sizeof(p));
	stat = cli_take_flag(&argc, argv, "--stat");
	if (missing || cli_reject_unknown(argc, argv) != 0 || argc != 4)
		return cli_remote_usage(r, "expected: pr diff OWNER/DB ID [--table T] [--stat]");
	p.err = &err;
	p.colour = r->out_tty && getenv("NO_COLOR") == NULL && !r->json;
	cli_diff_visitor(&w.v, &p, stat);
	if ((error = cli_remote_db_path(&base, argv[2], &err)) < 0 ||
	    (error = th_buf_puts(&base, "/pulls/", &err)) < 0 ||
	    (error = cli_http_escape(&base, argv[3], &err)) < 0 ||
	    (error = th_buf_printf(&base, &err, "/diff?pageSize=%d", stat ? 1 : PAGE_SIZE)) < 0 ||
	    (table && ((error = th_buf_puts(&base, "&table=", &err)) < 0 ||
	               (error = cli_http_escape(&base, table, &err)) < 0)))
		goto cleanup;
	do {
		cli_reply *page = first.json == NULL ? &first : &reply;
		th_buf_clear(&path);
		if ((error = th_buf_puts(&path, base.ptr, &err)) < 0 ||
		    (token.size && ((error = th_buf_puts(&path, "&pageToken=", &err)) < 0 ||
		                    (error = cli_http_escape(&path, token.ptr, &err)) < 0)) ||
		    (error = cli_http_call(page, r->http, "GET", path.ptr, NULL, &err)) < 0)
			goto cleanup;
		if (r->json) {
			cli_remote_print_json(page);
		} else {
			if (page == &first) {
				w.tables = cJSON_GetObjectItemCaseSensitive(first.json, "tables");
				w.ntables = cJSON_GetArraySize(w.tables);
				if ((error = schemas_load(&w.from, r, argv[2],
				                          cli_json_str(first.json, "merge_base"),
				                          &err)) < 0 ||
				    (error = schemas_load(&w.to, r, argv[2],
				                          cli_json_str(first.json, "to_commit_id"),
				                          &err)) < 0)
					goto cleanup;
			}
			cJSON_ArrayForEach(jr, cJSON_GetObjectItemCaseSensitive(page->json, "rows"))
			{
				if (stat)
					break;
				if ((error = row(&w, jr, &err)) < 0)
					goto cleanup;
			}
			if ((error = cli_diff_flush(&p)) < 0)
				goto cleanup;
		}
		th_buf_clear(&token);
		if (!stat &&
		    (error = th_buf_puts(&token, cli_json_str(page->json, "next_page_token"),
		                         &err)) < 0)
			goto cleanup;
	} while (token.size > 0);
	if (!r->json) {
		while (w.next < w.ntables)
			if ((error = table_next(&w, &err)) < 0)
				goto cleanup;
		if ((error = table_end(&w, &err)) < 0 || (error = cli_diff_flush(&p)) < 0)
			goto cleanup;
	}
	if (fflush(stdout) != 0) {
		th_error_set(&err, TH_ESTORE, "cannot write to standard output");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc) {
		cli_diff_flush(&p);
		cli_remote_fail(r, &err);
	}
	th_buf_dispose(&p.out);
	th_buf_dispose(&p.line);
	th_buf_dispose(&base);
	th_buf_dispose(&path);
	th_buf_dispose(&token);
	schemas_dispose(&w.from);
	schemas_dispose(&w.to);
	free(w.cells);
	cli_reply_dispose(&reply);
	cli_reply_dispose(&first);
	return rc;
}
