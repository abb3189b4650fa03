/* import_scan.c: pass 1 of an import (see import.c): the header, the column plan, and one scan of
 * the rows that checks each (width, NULL keys, values against an existing schema), infers the
 * types of new columns over the whole file and writes the good rows to the spill file; and the
 * rejected-rows report.
 *
 * A bad row is rejected, not written, and the scan goes on so that the report can list the first
 * 100 bad rows and count them all; once a row was rejected the import will fail, so later good
 * rows are only checked. The spill file (framed as import_impl.h says) is read back by pass 2
 * (import_edits.c) once the types are known.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_impl.h"

#define PROGRESS_EVERY (4u << 20)

#define MAX_REPORTED 100 /* rejected rows listed in the report; all are counted */

/* Up to MAX_REPORTED rejected rows go into the caller's report as
 * {"line","column","value","reason"}. */
int th_import__reject(th_import__state *m, uint64_t line, uint32_t column, const char *value,
                      size_t vlen, const char *reason, const char *message)
{
	th_buf *r = m->o->report;
	int error = TH_OK;

	if (m->nrejects++ == 0)
		th_error_set_at(&m->first_reject, TH_EINVALID, line, column, "%s", message);
	if (r == NULL || m->nrejects > MAX_REPORTED)
		return TH_OK;
	if (vlen > 200) /* keep the report small; cut at a UTF-8 boundary */
		for (vlen = 200; vlen > 0 && ((unsigned char)value[vlen] & 0xc0) == 0x80; vlen--)
			;
	if ((error = th_buf_printf(r, NULL, "%s{\"line\":%llu,\"column\":%u,\"value\":",
	                           m->nrejects == 1 ? "" : ",", (unsigned long long)line, column)) <
	            0 ||
	    (error = value ? th_buf_put_json_string(r, value, vlen, NULL)
	                   : th_buf_puts(r, "null", NULL)) < 0 ||
	    (error = th_buf_puts(r, ",\"reason\":", NULL)) < 0 ||
	    (error = th_buf_put_json_string(r, reason, strlen(reason), NULL)) < 0 ||
	    (error = th_buf_putc(r, '}', NULL)) < 0)
		return TH_ENOMEM;
	return TH_OK;
}

int th_import__rejected(th_import__state *m, th_error *err)
{
	th_buf *r = m->o->report;
	th_buf tail = TH_BUF_INIT;

	if (r) {
		th_buf_printf(&tail, NULL, "],\"rejected_total\":%llu}",
		              (unsigned long long)m->nrejects);
		th_buf_put(r, tail.ptr, tail.size, NULL);
		th_buf_dispose(&tail);
	}
	if (m->nrejects == 1)
		return th_error_set_at(err, TH_EINVALID, m->first_reject.line,
		                       m->first_reject.column, "%s", m->first_reject.msg);
	return th_error_set_at(err, TH_EINVALID, m->first_reject.line, m->first_reject.column,
	                       "%s (and %llu more rows rejected)", m->first_reject.msg,
	                       (unsigned long long)(m->nrejects - 1));
}

static void progress(th_import__state *m, uint64_t bytes)
{
	m->bytes = bytes;
	if (m->o->progress && bytes >= m->next_progress) {
		m->o->progress(m->o->progress_payload, bytes, m->rows_read);
		m->next_progress = bytes + PROGRESS_EVERY;
	}
}

int th_import__ascii_casecmp(const char *a, const char *b)
{
	unsigned char x, y;

	do {
		x = (unsigned char)*a++;
		y = (unsigned char)*b++;
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
	} while (x && x == y);
	return x - y;
}
#define ascii_casecmp th_import__ascii_casecmp

/* Is the header's i-th cell a valid column name? The message says what is wrong with it. */
static int check_name(const th_reader_row *row, size_t i, th_error *err)
{
	const char *name = row->cells[i];
	unsigned long long line = (unsigned long long)row->line;
	size_t len = row->lens[i];

	if (name == NULL || len == 0)
		return th_error_set_at(err, TH_EINVALID, row->line, (uint32_t)(i + 1),
		                       "line %llu, column %zu: empty column name in the header",
		                       line, i + 1);
	if (memchr(name, '\0', len) != NULL)
		return th_error_set_at(err, TH_EINVALID, row->line, (uint32_t)(i + 1),
		                       "line %llu, column %zu: the column name holds a NUL byte "
		                       "(a file in UTF-16 has them: save it as UTF-8)",
		                       line, i + 1);
	if (len > TH_COLUMN_NAME_MAX)
		return th_error_set_at(err, TH_EINVALID, row->line, (uint32_t)(i + 1),
		                       "line %llu, column %zu: column name '%.64s...' is %zu bytes "
		                       "long; the limit is %d bytes",
		                       line, i + 1, name, len, TH_COLUMN_NAME_MAX);
	if (!th_column_name_valid(name))
		return th_error_set_at(err, TH_EINVALID, row->line, (uint32_t)(i + 1),
		                       "line %llu, column %zu: invalid column name '%.64s': a name "
		                       "may not hold control characters",
		                       line, i + 1, name);
	return TH_OK;
}

int th_import__header(th_import__state *m, th_reader *src, th_error *err)
{
	th_reader_row row;
	size_t i, j;
	int error;

	if ((error = th_reader_next(src, &row, err)) < 0)
		return error;
	if (error == 0)
		return th_error_set_at(
		        err, TH_EINVALID, 1, 0,
		        "the file is empty: expected a header line naming the columns");
	/* Before anything costs time per column: a wider table could never be queried. */
	if (row.n > TH_SCHEMA_MAX_COLUMNS)
		return th_error_set_at(err, TH_EINVALID, row.line, 0,
		                       "line %llu: the header has %zu columns; a table may have at "
		                       "most %d (SQLite's limit on the columns of a table)",
		                       (unsigned long long)row.line, row.n, TH_SCHEMA_MAX_COLUMNS);
	m->nfile = row.n;
	if ((m->fnames = calloc(row.n, sizeof(*m->fnames))) == NULL ||
	    (m->fpos = calloc(row.n, sizeof(*m->fpos))) == NULL ||
	    (m->mask = calloc(row.n, sizeof(*m->mask))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (i = 0; i < row.n; i++) {
		if ((error = check_name(&row, i, err)) < 0)
			return error;
		for (j = 0; j < i; j++) {
			if (ascii_casecmp(m->fnames[j], row.cells[i]) != 0)
				continue;
			if (strcmp(m->fnames[j], row.cells[i]) == 0)
				return th_error_set_at(
				        err, TH_EINVALID, row.line, (uint32_t)(i + 1),
				        "line %llu, column %zu: duplicate column name '%s' (also "
				        "column %zu)",
				        (unsigned long long)row.line, i + 1, row.cells[i], j + 1);
			/* SQL (SQLite) names columns without regard to case: both could not be
			 * queried. */
			return th_error_set_at(
			        err, TH_EINVALID, row.line, (uint32_t)(i + 1),
			        "line %llu, column %zu: column names '%s' (column %zu) "
			        "and '%s' differ only in case, which SQL does not "
			        "tell apart: rename one",
			        (unsigned long long)row.line, i + 1, m->fnames[j], j + 1,
			        row.cells[i]);
		}
		if ((m->fnames[i] = strdup(row.cells[i])) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		m->mask[i] = TH_TYPEMASK_ALL;
	}
	return TH_OK;
}

static int column_list(th_buf *out, char **names, size_t n, th_error *err)
{
	size_t i;
	int error = TH_OK;

	for (i = 0; i < n && error == TH_OK; i++)
		error = th_buf_printf(out, err, "%s%s", i ? ", " : "", names[i]);
	return error;
}

int th_import__plan_columns(th_import__state *m, th_error *err)
{
	const th_import_opts *o = m->o;
	th_buf list = TH_BUF_INIT;
	size_t i, j;
	int error = TH_OK;

	if (o->op == TH_OP_CREATE || o->op == TH_OP_OVERWRITE) {
		th_schema *s = &m->schema;
		if ((s->cols = calloc(m->nfile ? m->nfile : 1, sizeof(*s->cols))) == NULL ||
		    (s->pk = calloc(o->npk ? o->npk : 1, sizeof(*s->pk))) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		for (i = 0; i < m->nfile; i++) {
			if ((s->cols[i].name = strdup(m->fnames[i])) == NULL)
				return th_error_set(err, TH_ENOMEM, "out of memory");
			s->cols[i].type = TH_TYPE_TEXT;
			s->cols[i].nullable = 1;
			s->ncols++;
		}
		for (i = 0; i < o->npk; i++) {
			int c = th_schema_find(s, o->pk[i]);
			if (c < 0) {
				column_list(&list, m->fnames, m->nfile, NULL);
				error = th_error_set(err, TH_EINVALID,
				                     "primary key column '%s' is not in the file; "
				                     "its columns are: %s",
				                     o->pk[i], list.ptr ? list.ptr : "");
				goto cleanup;
			}
			for (j = 0; j < i; j++)
				if (s->pk[j] == (size_t)c) {
					error = th_error_set(
					        err, TH_EINVALID,
					        "primary key column '%s' is listed twice",
					        o->pk[i]);
					goto cleanup;
				}
			s->pk[s->npk++] = (size_t)c;
			s->cols[c].nullable = 0;
		}
	} else {
		if ((error = th_schema_copy(&m->schema, &m->old.schema, err)) < 0)
			return error;
		for (i = 0; i < m->nfile; i++) {
			if (th_schema_find(&m->schema, m->fnames[i]) < 0) {
				column_list(&list, NULL, 0, NULL);
				for (j = 0; j < m->schema.ncols; j++)
					th_buf_printf(&list, NULL, "%s%s", j ? ", " : "",
					              m->schema.cols[j].name);
				error = th_error_set_at(
				        err, TH_EINVALID, 1, (uint32_t)(i + 1),
				        "line 1, column %zu: column '%s' is not in table '%s' (its "
				        "columns are: %s); use importOp Overwrite to change the "
				        "schema",
				        i + 1, m->fnames[i], o->table, list.ptr ? list.ptr : "");
				goto cleanup;
			}
		}
		for (i = 0; i < m->schema.npk; i++) {
			const th_column *c = &m->schema.cols[m->schema.pk[i]];
			size_t f;
			for (f = 0; f < m->nfile && strcmp(m->fnames[f], c->name) != 0; f++)
				;
			if (f == m->nfile) {
				error = th_error_set(err, TH_EINVALID,
				                     "primary key column '%s' of table '%s' is "
				                     "missing from the file",
				                     c->name, o->table);
				goto cleanup;
			}
		}
	}
	if ((m->tpos = calloc(m->schema.ncols ? m->schema.ncols : 1, sizeof(*m->tpos))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (j = 0; j < m->schema.ncols; j++) {
		m->tpos[j] = -1;
		for (i = 0; i < m->nfile; i++)
			if (strcmp(m->fnames[i], m->schema.cols[j].name) == 0) {
				m->tpos[j] = (int)i;
				m->fpos[i] = (int)j;
			}
		if (m->tpos[j] < 0 && !m->schema.cols[j].nullable) {
			error = th_error_set(err, TH_EINVALID,
			                     "column '%s' of table '%s' cannot be NULL and is "
			                     "missing from the file",
			                     m->schema.cols[j].name, o->table);
			goto cleanup;
		}
		if (m->tpos[j] < 0 && o->op == TH_OP_UPDATE)
			m->partial = 1;
	}

cleanup:
	th_buf_dispose(&list);
	return error;
}

/* Point `row` at a copy of its cells in which each of the nullValues markers is NULL. */
static int apply_nulls(th_import__state *m, th_reader_row *row, th_error *err)
{
	const th_import_opts *o = m->o;
	size_t i, k;

	if (row->n > m->ncap) {
		const char **c = realloc(m->ncells, row->n * sizeof(*c));
		size_t *l = c ? realloc(m->nlens, row->n * sizeof(*l)) : NULL;
		if (c)
			m->ncells = c;
		if (l == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		m->nlens = l;
		m->ncap = row->n;
	}
	for (i = 0; i < row->n; i++) {
		m->ncells[i] = row->cells[i];
		m->nlens[i] = row->lens[i];
		for (k = 0; row->cells[i] && k < o->nnulls; k++)
			if (strlen(o->nulls[k]) == row->lens[i] &&
			    memcmp(o->nulls[k], row->cells[i], row->lens[i]) == 0) {
				m->ncells[i] = NULL;
				m->nlens[i] = 0;
				break;
			}
	}
	row->cells = m->ncells;
	row->lens = m->nlens;
	return TH_OK;
}

int th_import__scan(th_import__state *m, th_reader *src, th_error *err)
{
	int newschema = m->o->op == TH_OP_CREATE || m->o->op == TH_OP_OVERWRITE;
	char reason[256], msg[512];
	th_reader_row row;
	uint64_t seen = 0;
	size_t i;
	int error;

	m->next_progress = PROGRESS_EVERY;
	for (;;) {
		if ((error = th_import__check(m, ++seen, err)) < 0)
			return error;
		if ((error = th_reader_next(src, &row, err)) == 0)
			break;
		if (error < 0) {
			/* Malformed input ends the scan; rows rejected before it are reported too.
			 */
			if (error != TH_EINVALID || m->nrejects == 0)
				return error;
			/* the reason without the reader's "line N, column M: " */
			const char *why =
			        strncmp(err->msg, "line ", 5) == 0 && strstr(err->msg, ": ")
			                ? strstr(err->msg, ": ") + 2
			                : err->msg;
			uint64_t line;
			uint32_t column;
			th_reader_error_pos(src, &line, &column);
			if ((error = th_import__reject(m, line, column, NULL, 0, why, err->msg)) <
			    0)
				return th_error_set(err, error, "out of memory");
			break;
		}
		if (m->o->nnulls && (error = apply_nulls(m, &row, err)) < 0)
			return error;
		/* Check the whole row first: a bad row is rejected, not written. */
		if (row.n != m->nfile) {
			snprintf(reason, sizeof(reason),
			         "expected %zu fields as in the header, found %zu", m->nfile,
			         row.n);
			snprintf(msg, sizeof(msg), "line %llu: %s", (unsigned long long)row.line,
			         reason);
			if ((error = th_import__reject(
			             m, row.line,
			             (uint32_t)(row.n < m->nfile ? row.n + 1 : m->nfile + 1), NULL,
			             0, reason, msg)) < 0)
				return th_error_set(err, error, "out of memory");
			continue;
		}
		for (i = 0; i < row.n; i++) {
			const th_column *col = &m->schema.cols[m->fpos[i]];
			if (row.cells[i] == NULL) {
				if (col->nullable)
					continue;
				snprintf(reason, sizeof(reason),
				         "primary key value is NULL (an empty field); every row "
				         "needs a "
				         "key");
			} else if (!newschema && col->type != TH_TYPE_TEXT &&
			           !(th_type_classify(row.cells[i], row.lens[i]) &
			             TH_TYPEBIT(col->type))) {
				snprintf(reason, sizeof(reason), "'%.64s' is not a valid %s",
				         row.cells[i], th_type_name(col->type));
			} else {
				continue;
			}
			snprintf(msg, sizeof(msg), "line %llu, column %zu ('%s'): %s",
			         (unsigned long long)row.line, i + 1, col->name, reason);
			if ((error = th_import__reject(m, row.line, (uint32_t)(i + 1), row.cells[i],
			                               row.lens[i], reason, msg)) < 0)
				return th_error_set(err, error, "out of memory");
			break;
		}
		if (i < row.n || m->nrejects)
			continue; /* rejected, or the import fails anyway: only keep scanning */
		/* The row's record is made in memory and written in one call: a stdio call per
		 * field (two, with its length) was a tenth of a large import's time. */
		th_buf_clear(&m->srow);
		if (th_import__put_varint(&m->srow, row.line) < 0)
			goto no_memory;
		for (i = 0; i < row.n; i++) {
			if (row.cells[i] == NULL) {
				if (th_buf_putc(&m->srow, 0, NULL) < 0)
					goto no_memory;
				continue;
			}
			if (newschema && m->mask[i] != TH_TYPEBIT(TH_TYPE_TEXT))
				m->mask[i] &= th_type_classify(row.cells[i], row.lens[i]);
			if (th_import__put_varint(&m->srow, row.lens[i] + 1) < 0 ||
			    th_buf_put(&m->srow, row.cells[i], row.lens[i], NULL) < 0)
				goto no_memory;
		}
		if ((error = th_import__spill_put(&m->spill, m->srow.ptr, m->srow.size, err)) < 0)
			return error;
		m->rows_read++;
		if ((m->rows_read & 1023) == 0)
			progress(m, th_reader_bytes(src));
	}
	return m->nrejects ? th_import__rejected(m, err) : TH_OK;
no_memory:
	return th_error_set(err, TH_ENOMEM, "out of memory");
}
