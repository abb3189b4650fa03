/* cli_diff.c: `tablehub diff [--data DIR] [--table T] [--stat] [--merge-base] OWNER/DB FROM TO`,
 * the row- and cell-level differences between two revisions, read straight from the repository
 * (no server, no lock: it runs beside `serve`).
 *
 * Per changed table: a header with its change and schema changes, then the rows in key order as
 * Dolt's CLI shows them (`+` added, `-` removed, `<`/`>` a modified row before and after, each row
 * its JSON array line), then a count line. --stat prints only the headers and counts. With
 * --merge-base the diff runs from the merge base of FROM and TO to TO: what a pull request from TO
 * into FROM shows. On a terminal, rows added are green and rows removed red (not with NO_COLOR).
 * The printer is shared with `pr diff` (cli_remote_diff.c), which prints a server's diff so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tablehub/text.h"
#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/pulls.h"
#include "tablehub/repo.h"

static const char diff_usage[] =
        "expected: diff [--data DIR] [--table T] [--stat] [--merge-base] OWNER/DB FROM TO";

typedef cli_diff_printer printer;

/* The colours of a terminal: rows added green, removed red, a table's header bold. */
#define GREEN "\033[32m"
#define RED "\033[31m"
#define BOLD "\033[1m"
#define RESET "\033[0m"

/* Write the buffered output once it grows; returns 0 or TH_ESTORE. */
static int flush(printer *p, int force)
{
	if (!force && p->out.size < (1 << 16))
		return 0;
	if (p->out.size && fwrite(p->out.ptr, 1, p->out.size, stdout) != p->out.size)
		return th_error_set(p->err, TH_ESTORE, "cannot write to standard output");
	th_buf_clear(&p->out);
	return 0;
}

static int put_names(th_buf *b, const char *label, const th_schema *a, const th_schema *other,
                     int *first, th_error *err)
{
	size_t i, n = 0;
	int error;

	for (i = 0; a && i < a->ncols; i++) {
		if (th_schema_find(other, a->cols[i].name) >= 0)
			continue;
		if ((error = th_buf_printf(b, err, "%s%s%s",
		                           n        ? ", "
		                           : *first ? ""
		                                    : "; ",
		                           n ? "" : label, a->cols[i].name)) < 0)
			return error;
		n++;
		*first = 0;
	}
	return TH_OK;
}

static int put_key(th_buf *b, const th_schema *s, th_error *err)
{
	size_t i;
	int error;

	if ((error = th_buf_putc(b, '[', err)) < 0)
		return error;
	for (i = 0; i < s->npk; i++)
		if ((error = th_buf_printf(b, err, "%s%s", i ? ", " : "", s->cols[s->pk[i]].name)) <
		    0)
			return error;
	return th_buf_putc(b, ']', err);
}

static int on_begin(void *payload, const th_table_diff *t, th_error *err)
{
	printer *p = payload;
	th_buf *b = &p->out;
	int error, first = 1;
	size_t i;

	if ((error = th_buf_printf(b, err, "%sdiff %s (%s)%s\n", p->colour ? BOLD : "", t->name,
	                           th_table_change_name(t->change), p->colour ? RESET : "")) < 0)
		return error;
	if (!t->schema_changed)
		return flush(p, 0);
	if ((error = th_buf_puts(b, "schema: ", err)) < 0 ||
	    (error = put_names(b, "columns added: ", t->to_schema, t->from_schema, &first, err)) <
	            0 ||
	    (error = put_names(b, "columns dropped: ", t->from_schema, t->to_schema, &first, err)) <
	            0)
		return error;
	for (i = 0; i < t->to_schema->ncols; i++) {
		int j = th_schema_find(t->from_schema, t->to_schema->cols[i].name);
		if (j < 0 || t->from_schema->cols[j].type == t->to_schema->cols[i].type)
			continue;
		if ((error = th_buf_printf(b, err, "%scolumn %s %s -> %s", first ? "" : "; ",
		                           t->to_schema->cols[i].name,
		                           th_type_name(t->from_schema->cols[j].type),
		                           th_type_name(t->to_schema->cols[i].type))) < 0)
			return error;
		first = 0;
	}
	if (t->key_changed) {
		if ((error = th_buf_printf(b, err, "%skey ", first ? "" : "; ")) < 0 ||
		    (error = put_key(b, t->from_schema, err)) < 0 ||
		    (error = th_buf_puts(b, " -> ", err)) < 0 ||
		    (error = put_key(b, t->to_schema, err)) < 0)
			return error;
		first = 0;
	}
	if (first && (error = th_buf_puts(b, "column order or nullability changed", err)) < 0)
		return error;
	if ((error = th_buf_putc(b, '\n', err)) < 0)
		return error;
	return flush(p, 0);
}

static int put_row(printer *p, const char *mark, const th_schema *s, const th_cells *c,
                   uint64_t count, th_error *err)
{
	int error;

	const char *colour = !p->colour ? "" : (*mark == '+' || *mark == '>') ? GREEN : RED;

	th_buf_clear(&p->line);
	if ((error = th_row_encode(&p->line, s, c->c, err)) < 0 ||
	    (error = th_buf_printf(&p->out, err, "%s%s %s", colour, mark, p->line.ptr)) < 0)
		return error;
	if (count > 1 &&
	    (error = th_buf_printf(&p->out, err, " (x%llu)", (unsigned long long)count)) < 0)
		return error;
	if (p->colour && (error = th_buf_puts(&p->out, RESET, err)) < 0)
		return error;
	return th_buf_putc(&p->out, '\n', err);
}

static int on_row(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err)
{
	printer *p = payload;
	int error;

	if (r->before && r->kind != TH_CHANGE_ADDED &&
	    (error = put_row(p, r->kind == TH_CHANGE_REMOVED ? "-" : "<", t->from_schema, r->before,
	                     r->count, err)) < 0)
		return error;
	if (r->after && r->kind != TH_CHANGE_REMOVED &&
	    (error = put_row(p, r->kind == TH_CHANGE_ADDED ? "+" : ">", t->to_schema, r->after,
	                     r->count, err)) < 0)
		return error;
	return flush(p, 0);
}

static int on_end(void *payload, const th_table_diff *t, th_error *err)
{
	printer *p = payload;
	int error;

	if ((error = th_buf_printf(&p->out, err,
	                           "%s: %llu added, %llu modified, %llu removed, %llu cells "
	                           "modified\n",
	                           t->name, (unsigned long long)t->rows_added,
	                           (unsigned long long)t->rows_modified,
	                           (unsigned long long)t->rows_removed,
	                           (unsigned long long)t->cells_modified)) < 0)
		return error;
	return flush(p, 0);
}

void cli_diff_visitor(th_diff_visitor *v, cli_diff_printer *p, int stat)
{
	memset(v, 0, sizeof(*v));
	v->table_begin = on_begin;
	v->row = stat ? NULL : on_row;
	v->table_end = on_end;
	v->payload = p;
	v->summary_only = stat;
}

int cli_diff_flush(cli_diff_printer *p)
{
	return flush(p, 1);
}

static int commit_tree(th_oid *out, th_repo *repo, const th_oid *commit, th_error *err)
{
	th_commit_info ci;
	int error;

	memset(&ci, 0, sizeof(ci));
	if ((error = th_repo_commit_read(&ci, repo, commit, err)) < 0)
		return error;
	*out = ci.tree;
	th_commit_info_dispose(&ci);
	return TH_OK;
}

int cli_diff(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	int missing = 0, stat = 0, mbase = 0, i, j, rc = 1, error;
	const char *table = cli_take_opt(&argc, argv, "--table", &missing);
	th_error err = { 0 };
	th_repo *repo = NULL;
	th_oid from, to, ft, tt;
	th_diff_visitor v;
	printer p;

	memset(&p, 0, sizeof(p));
	p.err = &err;
	p.colour = isatty(1) && getenv("NO_COLOR") == NULL;
	if (missing) {
		fprintf(stderr, "tablehub: --table needs a value\n%s\n", diff_usage);
		return 2;
	}
	for (i = j = 1; i < argc; i++) {
		if (strcmp(argv[i], "--stat") == 0)
			stat = 1;
		else if (strcmp(argv[i], "--merge-base") == 0)
			mbase = 1;
		else if (argv[i][0] == '-' && argv[i][1] == '-') {
			fprintf(stderr, "tablehub: unknown option '%s'\n%s\n", argv[i], diff_usage);
			return 2;
		} else
			argv[j++] = argv[i];
	}
	argc = j;
	if (argc != 4) {
		fprintf(stderr, "tablehub: %s\n", diff_usage);
		return 2;
	}
	if (cli_repo_open(&repo, data, argv[1], 0, &err) < 0)
		goto cleanup;
	for (i = 2; i <= 3; i++) {
		if ((error = th_repo_resolve(i == 2 ? &from : &to, repo, argv[i], &err)) < 0) {
			if (error == TH_ENOTFOUND || error == TH_EINVALID)
				th_error_set(&err, TH_ENOTFOUND, "revision '%s' not found in '%s'",
				             argv[i], argv[1]);
			goto cleanup;
		}
	}
	if (mbase) {
		th_oid base;
		error = th_repo_merge_base(&base, repo, &from, &to, &err);
		if (error < 0 && error != TH_ENOTFOUND)
			goto cleanup;
		if (error == TH_ENOTFOUND)
			memset(&ft, 0, sizeof(ft));
		else if (commit_tree(&ft, repo, &base, &err) < 0)
			goto cleanup;
	} else if (commit_tree(&ft, repo, &from, &err) < 0) {
		goto cleanup;
	}
	if (commit_tree(&tt, repo, &to, &err) < 0)
		goto cleanup;
	cli_diff_visitor(&v, &p, stat);
	if (th_tree_diff(repo, &ft, &tt, table, &v, &err) != 0 || flush(&p, 1) != 0 ||
	    fflush(stdout) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc) {
		flush(&p, 1);
		fprintf(stderr, "tablehub: %s\n", err.msg);
	}
	th_buf_dispose(&p.out);
	th_buf_dispose(&p.line);
	th_repo_free(repo);
	return rc;
}
