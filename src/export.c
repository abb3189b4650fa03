/* export.c: the table of exporters, one export's state, and a table streamed from git through an
 * exporter (see include/tablehub/export.h).
 *
 * A table export pulls: each th_table_export_read decodes rows from the table's chunks (one chunk
 * in memory at a time, th_row_iter) and hands them to the exporter until the caller's buffer holds
 * what it asked for. The HTTP download drains that buffer into the socket and the CLI into stdout,
 * so memory stays at one chunk plus one buffer whatever the size of the table.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tablehub/export.h"

const th_exporter *const th_exporters[] = {
	&th_exporter_csv, &th_exporter_json, &th_exporter_jsonl, &th_exporter_sql, NULL,
};

const th_exporter *th_exporter_find(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && th_exporters[i] != NULL; i++)
		if (strcasecmp(th_exporters[i]->name, name) == 0)
			return th_exporters[i];
	return NULL;
}

/* --- one export ------------------------------------------------------------------------------ */

struct th_export {
	const th_exporter *fmt;
	void *state; /* fmt->state_size bytes, or NULL */
};

int th_export_new(th_export **out, const th_exporter *fmt, th_error *err)
{
	th_export *x = calloc(1, sizeof(*x));

	if (x == NULL || (fmt->state_size > 0 && (x->state = calloc(1, fmt->state_size)) == NULL)) {
		free(x);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	x->fmt = fmt;
	*out = x;
	return TH_OK;
}

int th_export_begin(th_export *x, th_buf *out, size_t n, const char *const *names,
                    const char *const *types, th_error *err)
{
	return x->fmt->begin(x->state, out, n, names, types, err);
}

int th_export_row(th_export *x, th_buf *out, const th_cell *cells, size_t n, th_error *err)
{
	return x->fmt->row(x->state, out, cells, n, err);
}

int th_export_end(th_export *x, th_buf *out, th_error *err)
{
	return x->fmt->end ? x->fmt->end(x->state, out, err) : TH_OK;
}

int th_export_table(th_export *x, const char *name, size_t npk, const size_t *pk, th_error *err)
{
	return x->fmt->table ? x->fmt->table(x->state, name, npk, pk, err) : TH_OK;
}

void th_export_free(th_export *x)
{
	if (x == NULL)
		return;
	if (x->fmt->dispose != NULL && x->state != NULL)
		x->fmt->dispose(x->state);
	free(x->state);
	free(x);
}

/* --- a table from git ------------------------------------------------------------------------ */

struct th_table_export {
	th_repo *repo;
	th_table table;
	th_row_iter *it;
	th_cells cells;
	th_export *x;
	char *name; /* for the exporter's table hook; NULL = "data" */
	int begun;
	int done;
};

static int begin_table(th_table_export *t, th_buf *out, th_error *err)
{
	const th_schema *s = &t->table.schema;
	const char **names = calloc(s->ncols + 1, sizeof(*names));
	const char **types = calloc(s->ncols + 1, sizeof(*types));
	size_t i;
	int error;

	if (names == NULL || types == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < s->ncols; i++) {
		names[i] = s->cols[i].name;
		types[i] = th_type_name(s->cols[i].type);
	}
	if ((error = th_export_table(t->x, t->name ? t->name : "data", s->npk, s->pk, err)) < 0)
		goto cleanup;
	error = th_export_begin(t->x, out, s->ncols, names, types, err);
cleanup:
	free(names);
	free(types);
	return error;
}

int th_table_export_new(th_table_export **out, const th_exporter *fmt, th_repo *repo,
                        th_table *table, th_error *err)
{
	th_table_export *t = calloc(1, sizeof(*t));
	th_table empty = TH_TABLE_INIT;
	int error;

	if (t == NULL) {
		th_repo_free(repo);
		th_table_dispose(table);
		*table = empty;
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	t->repo = repo; /* calloc: cells start empty, as TH_CELLS_INIT */
	t->table = *table;
	*table = empty;
	if ((error = th_export_new(&t->x, fmt, err)) < 0 ||
	    (error = th_row_iter_new(&t->it, t->repo, &t->table, err)) < 0) {
		th_table_export_free(t);
		return error;
	}
	*out = t;
	return TH_OK;
}

int th_table_export_set_name(th_table_export *t, const char *name, th_error *err)
{
	char *copy = strdup(name);

	if (copy == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	free(t->name);
	t->name = copy;
	return TH_OK;
}

int th_table_export_read(th_table_export *t, th_buf *out, size_t want, th_error *err)
{
	const th_schema *s = &t->table.schema;
	th_row row;
	int error;

	if (!t->begun) {
		if ((error = begin_table(t, out, err)) < 0)
			return error;
		t->begun = 1;
	}
	while (!t->done && out->size < want) {
		if ((error = th_row_iter_next(t->it, &row, err)) == 0) {
			if ((error = th_export_end(t->x, out, err)) < 0)
				return error;
			t->done = 1;
			break;
		}
		if (error < 0 ||
		    (error = th_row_decode(&t->cells, s, row.line, row.linelen, err)) < 0 ||
		    (error = th_export_row(t->x, out, t->cells.c, t->cells.n, err)) < 0)
			return error;
	}
	return t->done ? 0 : 1;
}

void th_table_export_free(th_table_export *t)
{
	if (t == NULL)
		return;
	th_export_free(t->x);
	th_row_iter_free(t->it);
	th_cells_dispose(&t->cells);
	th_table_dispose(&t->table);
	th_repo_free(t->repo);
	free(t->name);
	free(t);
}
