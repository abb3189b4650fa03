/* import_edits.c: pass 2 of an import (see import.c): the spill file read back, each row's key and
 * line encoded for the now-known schema and sorted by key (src/sorter.c: memory stays within the
 * budget however large the file); then the sorted rows handed to th_table__apply_ex as edits.
 *
 * The edit stream resolves the rows of one key (they come in line order): keyless tables count
 * them, Update keeps the last, and Create, Overwrite, Replace and Append reject the second with
 * both lines named. For Replace and Overwrite of an unchanged schema the old rows are walked in
 * step, so the result counts rows added, modified and removed rather than "all removed, all
 * added". The resolver meets edits of keys the table already has: Update merges the file's
 * columns into the old row, Append rejects the row.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_impl.h"

/* spill file -> keys and lines -> sorter */
int th_import__sort(th_import__state *m, th_error *err)
{
	th_cell *cells = NULL, *fcells = NULL;
	th_buf data = TH_BUF_INIT, key = TH_BUF_INIT, line = TH_BUF_INIT;
	size_t *offs = NULL;
	uint64_t r, lineno, len;
	size_t i, j;
	int error = TH_OK;

	if (fflush(m->spill) != 0 || fseek(m->spill, 0, SEEK_SET) != 0)
		return th_error_set(err, TH_ESTORE, "cannot read the spill file: %s",
		                    strerror(errno));
	if ((cells = calloc(m->schema.ncols + 1, sizeof(*cells))) == NULL ||
	    (fcells = calloc(m->nfile + 1, sizeof(*fcells))) == NULL ||
	    (offs = calloc(m->nfile + 1, sizeof(*offs))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (r = 0; r < m->rows_read; r++) {
		th_buf_clear(&data);
		if (th_import__get_varint(m->spill, &lineno) < 0)
			goto truncated;
		for (i = 0; i < m->nfile; i++) {
			if (th_import__get_varint(m->spill, &len) < 0)
				goto truncated;
			if (len == 0) {
				offs[i] = SIZE_MAX;
				continue;
			}
			offs[i] = data.size;
			if ((error = th_buf_grow(&data, (size_t)len, err)) < 0)
				goto cleanup;
			if (len - 1 &&
			    fread(data.ptr + data.size, (size_t)len - 1, 1, m->spill) != 1)
				goto truncated;
			data.size += (size_t)len - 1;
			data.ptr[data.size++] = '\0';
			fcells[i].len = (size_t)len - 1;
		}
		for (i = 0; i < m->nfile; i++) {
			fcells[i].is_null = offs[i] == SIZE_MAX;
			fcells[i].s = fcells[i].is_null ? NULL : data.ptr + offs[i];
			if (fcells[i].is_null)
				fcells[i].len = 0;
		}
		for (j = 0; j < m->schema.ncols; j++) {
			if (m->tpos[j] >= 0) {
				cells[j] = fcells[m->tpos[j]];
			} else {
				cells[j].s = NULL;
				cells[j].len = 0;
				cells[j].is_null = 1;
			}
		}
		th_buf_clear(&key);
		th_buf_clear(&line);
		if ((error = th_row_key(&key, &m->schema, cells, err)) < 0 ||
		    (error = th_row_encode(&line, &m->schema, cells, err)) < 0 ||
		    (error = th_sorter_put(m->sort, key.ptr, key.size, line.ptr, line.size, lineno,
		                           err)) < 0)
			goto cleanup;
	}
	error = th_sorter_finish(m->sort, err);
	goto cleanup;
truncated:
	error = th_error_set(err, TH_ESTORE, "the spill file is truncated");
cleanup:
	th_buf_dispose(&data);
	th_buf_dispose(&key);
	th_buf_dispose(&line);
	free(offs);
	free(fcells);
	free(cells);
	return error;
}

/* The file column (1-based) of the first primary-key column, and its name, for messages about
 * keys. Only called for tables with a key, whose key columns are all in the file. */
static uint32_t key_column(const th_import__state *m)
{
	return (uint32_t)m->tpos[m->schema.pk[0]] + 1;
}

static const char *key_column_name(const th_import__state *m)
{
	return m->schema.cols[m->schema.pk[0]].name;
}

/* The printable key of a line, for messages. */
static const char *key_text(th_import__state *m, const char *line, size_t len)
{
	th_buf_clear(&m->fmt);
	if (th_row_decode(&m->c1, &m->schema, line, len, NULL) < 0 ||
	    th_key_format(&m->fmt, &m->schema, m->c1.c, NULL) < 0)
		return "?";
	return m->fmt.ptr ? m->fmt.ptr : "?";
}

/* A row rejected for its key (a duplicate, or one that exists already): the import ends at once,
 * the rejection reported like the others. Returns TH_EINVALID (or TH_ENOMEM). */
static int key_rejected(th_import__state *m, uint64_t line, const char *key, const char *reason,
                        th_error *err)
{
	char msg[700];

	snprintf(msg, sizeof(msg), "line %llu, column %u ('%s'): %s", (unsigned long long)line,
	         key_column(m), key_column_name(m), reason);
	if (th_import__reject(m, line, key_column(m), key, strlen(key), reason, msg) < 0)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return th_import__rejected(m, err);
}

/* Count old rows against the new stream up to `key` (NULL = to the end): replace/overwrite. */
static int count_old(th_import__state *m, const unsigned char *key, size_t keylen,
                     const th_buf *line, uint64_t newcount, th_error *err)
{
	uint64_t seen = 0;
	int c, error;

	while (m->old_have) {
		c = key ? th_key_cmp(m->old_row.key, m->old_row.keylen, key, keylen) : -1;
		if (c > 0)
			break;
		if (c < 0) {
			m->cnt_removed++;
		} else {
			seen++;
			if (m->schema.npk && (m->old_row.linelen != line->size ||
			                      memcmp(m->old_row.line, line->ptr, line->size) != 0))
				m->cnt_modified++;
		}
		if ((error = th_row_iter_next(m->old_it, &m->old_row, err)) < 0)
			return error;
		m->old_have = error;
	}
	if (key == NULL)
		return TH_OK;
	if (m->schema.npk == 0) {
		if (newcount > seen)
			m->cnt_added += newcount - seen;
		else
			m->cnt_removed += seen - newcount;
	} else if (seen == 0) {
		m->cnt_added++;
	}
	return TH_OK;
}

int th_import__next_edit(void *payload, th_edit *e, th_error *err)
{
	th_import__state *m = payload;
	th_sorter_rec r;
	uint64_t count = 1;
	int error;

	if (!th_sorter_peek(&r, m->sort)) {
		if (m->old_it && (error = count_old(m, NULL, 0, NULL, 0, err)) < 0)
			return error;
		return 0;
	}
	if ((error = th_buf_set(&m->ekey, r.key, r.keylen, err)) < 0 ||
	    (error = th_buf_set(&m->eline, r.data, r.datalen, err)) < 0)
		return error;
	m->elineno = r.seq;
	if ((error = th_sorter_pop(m->sort, err)) < 0)
		return error;
	while (th_sorter_peek(&r, m->sort) &&
	       th_key_cmp(r.key, r.keylen, (const unsigned char *)m->ekey.ptr, m->ekey.size) == 0) {
		if (m->schema.npk == 0) {
			count++;
		} else if (m->o->op == TH_OP_UPDATE) {
			/* Update: the last row of a key wins (records of one key come in line
			 * order). */
			m->duplicates++;
			if ((error = th_buf_set(&m->eline, r.data, r.datalen, err)) < 0)
				return error;
			m->elineno = r.seq;
		} else {
			char reason[300];
			const char *key = key_text(m, r.data, r.datalen);
			snprintf(reason, sizeof(reason),
			         "duplicate primary key %.200s (also on line %llu)", key,
			         (unsigned long long)m->elineno);
			return key_rejected(m, r.seq, key, reason, err);
		}
		if ((error = th_sorter_pop(m->sort, err)) < 0)
			return error;
	}
	if (m->old_it && (error = count_old(m, (const unsigned char *)m->ekey.ptr, m->ekey.size,
	                                    &m->eline, count, err)) < 0)
		return error;
	e->key = (const unsigned char *)m->ekey.ptr;
	e->keylen = m->ekey.size;
	e->line = m->eline.ptr;
	e->linelen = m->eline.size;
	e->count = count;
	return 1;
}

int th_import__resolve(void *payload, const th_row *old, const th_edit *e, th_buf *out,
                       th_error *err)
{
	th_import__state *m = payload;
	size_t j;
	int error;

	if (m->o->op == TH_OP_APPEND) {
		char reason[400];
		const char *key = key_text(m, e->line, e->linelen);
		snprintf(reason, sizeof(reason),
		         "primary key %.200s already exists in table '%s'; use importOp Update to "
		         "change existing rows",
		         key, m->o->table);
		return key_rejected(m, m->elineno, key, reason, err);
	}
	if (!m->partial)
		return th_buf_put(out, e->line, e->linelen, err);
	if ((error = th_row_decode(&m->c1, &m->schema, old->line, old->linelen, err)) < 0 ||
	    (error = th_row_decode(&m->c2, &m->schema, e->line, e->linelen, err)) < 0)
		return error;
	for (j = 0; j < m->schema.ncols; j++)
		if (m->tpos[j] >= 0)
			m->c1.c[j] = m->c2.c[j];
	return th_row_encode(out, &m->schema, m->c1.c, err);
}
