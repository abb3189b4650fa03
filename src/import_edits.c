/* import_edits.c: pass 2 of an import (see import.c): the spill file read back, each row's key and
 * line encoded for the now-known schema and sorted by key (src/sorter.c: memory stays within the
 * budget however large the file); then the sorted rows handed to th_table__apply_ex as edits.
 * A file whose keys already strictly increase (checked first, on the keys alone, up to the first
 * that does not) skips the sorter: its rows are read from the spill file and encoded as the apply
 * asks for them, which gives the same edits in the same order without writing them twice.
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
#include <unistd.h>

#include "import_impl.h"

#define SPILL_BUF (256u << 10)

/* Back to the spill file's first row, with the buffers to read rows into. The spill file is read
 * in blocks into m->rbuf (a FILE's fread per field costs more than the rest of the row).
 * Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
static int spill_rewind(th_import__state *m, th_error *err)
{
	int error;

	if ((error = th_import__spill_rewind(&m->spill, err)) < 0)
		return error;
	m->rpos = m->rlen = 0;
	if (m->scells == NULL &&
	    ((m->scells = calloc(m->schema.ncols + 1, sizeof(*m->scells))) == NULL ||
	     (m->sfcells = calloc(m->nfile + 1, sizeof(*m->sfcells))) == NULL ||
	     (m->soffs = calloc(m->nfile + 1, sizeof(*m->soffs))) == NULL ||
	     (m->rbuf = malloc(SPILL_BUF)) == NULL))
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return TH_OK;
}

/* More of the spill file into m->rbuf, keeping its unread bytes. Returns 1 (some read), 0 (the
 * end) or TH_ESTORE. */
static int spill_fill(th_import__state *m, th_error *err)
{
	size_t n;
	int error;

	memmove(m->rbuf, m->rbuf + m->rpos, m->rlen - m->rpos);
	m->rlen -= m->rpos;
	m->rpos = 0;
	if ((error = th_import__spill_read(&m->spill, m->rbuf + m->rlen, SPILL_BUF - m->rlen, &n,
	                                   err)) < 0)
		return error;
	m->rlen += n;
	return n > 0;
}

/* A varint of the spill file (import_impl.h). Returns TH_OK, 1 (the file ended) or TH_ESTORE. */
static int spill_varint(th_import__state *m, uint64_t *out, th_error *err)
{
	uint64_t v = 0;
	int shift = 0, error;
	unsigned char c;

	do {
		if (m->rpos == m->rlen && (error = spill_fill(m, err)) <= 0)
			return error < 0 ? error : 1;
		if (shift > 63)
			return 1;
		c = m->rbuf[m->rpos++];
		v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	*out = v;
	return TH_OK;
}

/* The spill file's next row: its cells in m->scells (the table's columns, NULL where the file
 * lacks one; they point into m->sdata, good until the next call) and its line number in *lineno.
 * Returns TH_OK, TH_ENOMEM or TH_ESTORE (the file is truncated or unreadable). */
static int spill_next(th_import__state *m, uint64_t *lineno, th_error *err)
{
	th_cell *fcells = m->sfcells;
	size_t *offs = m->soffs, n, take;
	uint64_t len;
	size_t i, j;
	int error;

	th_buf_clear(&m->sdata);
	if ((error = spill_varint(m, lineno, err)) != TH_OK)
		goto failed;
	for (i = 0; i < m->nfile; i++) {
		if ((error = spill_varint(m, &len, err)) != TH_OK)
			goto failed;
		if (len == 0) {
			offs[i] = SIZE_MAX;
			continue;
		}
		offs[i] = m->sdata.size;
		if ((error = th_buf_grow(&m->sdata, (size_t)len, err)) < 0)
			return error;
		for (n = (size_t)len - 1; n > 0; n -= take) {
			if (m->rpos == m->rlen && (error = spill_fill(m, err)) <= 0)
				goto failed;
			take = m->rlen - m->rpos < n ? m->rlen - m->rpos : n;
			memcpy(m->sdata.ptr + m->sdata.size, m->rbuf + m->rpos, take);
			m->sdata.size += take;
			m->rpos += take;
		}
		m->sdata.ptr[m->sdata.size++] = '\0';
		fcells[i].len = (size_t)len - 1;
	}
	for (i = 0; i < m->nfile; i++) {
		fcells[i].is_null = offs[i] == SIZE_MAX;
		fcells[i].s = fcells[i].is_null ? NULL : m->sdata.ptr + offs[i];
		if (fcells[i].is_null)
			fcells[i].len = 0;
	}
	for (j = 0; j < m->schema.ncols; j++) {
		if (m->tpos[j] >= 0) {
			m->scells[j] = fcells[m->tpos[j]];
		} else {
			m->scells[j].s = NULL;
			m->scells[j].len = 0;
			m->scells[j].is_null = 1;
		}
	}
	return TH_OK;
failed:
	if (error < 0)
		return error;
	return th_error_set(err, TH_ESTORE, "the spill file is truncated");
}

/* Whether the rows' keys strictly increase through the spill file (*out 1) or not (0): read up
 * to the first key not greater than the one before. A key that cannot be encoded also answers 0
 * (the sort then meets it and reports it as it always did). Returns TH_OK, TH_ENOMEM or
 * TH_ESTORE. */
static int keys_increase(int *out, th_import__state *m, th_error *err)
{
	th_buf key = TH_BUF_INIT, prev = TH_BUF_INIT, tmp;
	th_error kerr;
	uint64_t r, lineno;
	int error;

	*out = 0;
	if ((error = spill_rewind(m, err)) < 0)
		return error;
	for (r = 0; r < m->rows_read; r++) {
		if ((error = th_import__check(m, r + 1, err)) < 0 ||
		    (error = spill_next(m, &lineno, err)) < 0)
			goto cleanup;
		th_buf_clear(&key);
		if (th_row_key(&key, &m->schema, m->scells, &kerr) < 0)
			goto cleanup; /* (TH_ENOMEM included: the sort meets it again) */
		if (r > 0 && th_key_cmp((const unsigned char *)key.ptr, key.size,
		                        (const unsigned char *)prev.ptr, prev.size) <= 0)
			goto cleanup;
		tmp = prev;
		prev = key;
		key = tmp;
	}
	*out = 1;
cleanup:
	th_buf_dispose(&key);
	th_buf_dispose(&prev);
	return error;
}

/* spill file -> keys and lines -> sorter; or, when the keys already increase, nothing: the edits
 * are then read straight from the spill file (m->streamed). */
int th_import__sort(th_import__state *m, th_error *err)
{
	th_buf key = TH_BUF_INIT, line = TH_BUF_INIT;
	uint64_t r, lineno;
	int error, sorted;

	if ((error = keys_increase(&sorted, m, err)) < 0 || (error = spill_rewind(m, err)) < 0)
		return error;
	if (sorted) {
		m->streamed = 1;
		m->stream_left = m->rows_read;
		return TH_OK;
	}
	for (r = 0; r < m->rows_read; r++) {
		if ((error = th_import__check(m, r + 1, err)) < 0)
			goto cleanup;
		th_buf_clear(&key);
		th_buf_clear(&line);
		if ((error = spill_next(m, &lineno, err)) < 0 ||
		    (error = th_row_key(&key, &m->schema, m->scells, err)) < 0 ||
		    (error = th_row_encode(&line, &m->schema, m->scells, err)) < 0 ||
		    (error = th_sorter_put(m->sort, key.ptr, key.size, line.ptr, line.size, lineno,
		                           err)) < 0)
			goto cleanup;
	}
	error = th_sorter_finish(m->sort, err);
cleanup:
	th_buf_dispose(&key);
	th_buf_dispose(&line);
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

/* The next edit when the keys already increase: the spill file's next row, encoded (no key
 * repeats, so nothing to resolve). */
static int streamed_edit(th_import__state *m, th_edit *e, th_error *err)
{
	int error;

	if (m->stream_left == 0) {
		if (m->old_it && (error = count_old(m, NULL, 0, NULL, 0, err)) < 0)
			return error;
		return 0;
	}
	m->stream_left--;
	th_buf_clear(&m->ekey);
	th_buf_clear(&m->eline);
	if ((error = spill_next(m, &m->elineno, err)) < 0 ||
	    (error = th_row_key(&m->ekey, &m->schema, m->scells, err)) < 0 ||
	    (error = th_row_encode(&m->eline, &m->schema, m->scells, err)) < 0)
		return error;
	if (m->old_it && (error = count_old(m, (const unsigned char *)m->ekey.ptr, m->ekey.size,
	                                    &m->eline, 1, err)) < 0)
		return error;
	e->key = (const unsigned char *)m->ekey.ptr;
	e->keylen = m->ekey.size;
	e->line = m->eline.ptr;
	e->linelen = m->eline.size;
	e->count = 1;
	return 1;
}

int th_import__next_edit(void *payload, th_edit *e, th_error *err)
{
	th_import__state *m = payload;
	th_sorter_rec r;
	uint64_t count = 1;
	int error;

	if ((error = th_import__check(m, ++m->nedits, err)) < 0)
		return error;
	if (m->streamed)
		return streamed_edit(m, e, err);
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
