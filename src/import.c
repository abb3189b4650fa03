/* import.c: a file of rows -> table changes -> one commit (see include/tablehub/import.h).
 *
 * Pass 1 reads the file once, through the reader its format names (reader.h), checks every record
 * (field count, NULL keys, values against an existing schema) and infers column types over the
 * whole file, writing the records to an unlinked spill file in a compact binary form. Pass 2 reads
 * the spill file, encodes each row's key and line for the now-known schema and sorts them in runs
 * bounded by the memory budget; runs that do not fit are written out sorted and merged back
 * (k-way) so memory stays flat however large the file. The sorted stream is checked for duplicate
 * keys and handed to th_table_apply as edits. Only after every row was accepted are the chunks'
 * pack, the trees and the commit written and the branch moved; a failure before that leaves the
 * repository's refs as they were (an unreferenced pack left behind by a failed import is garbage
 * for a later gc, never visible data).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tablehub/import.h"
#include "tablehub/reader.h"
#include "tablehub/table.h"
#include "chunk.h"

#define DEFAULT_BUDGET (64u << 20)
#define BLOCK_SIZE (4u << 20)
#define PROGRESS_EVERY (4u << 20)
#define PACK_THRESHOLD (1u << 20) /* spill bytes above which chunks go into one pack */

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

/* --- spill files: varint-framed records ------------------------------------------------------ */

static int put_varint(FILE *f, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	return fwrite(b, 1, n, f) == n ? 0 : -1;
}

static int get_varint(FILE *f, uint64_t *out)
{
	uint64_t v = 0;
	int shift = 0, c;

	do {
		if ((c = getc_unlocked(f)) == EOF || shift > 63)
			return -1;
		v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	*out = v;
	return 0;
}

static FILE *temp_file(const char *dir, th_error *err)
{
	char path[4096];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/th-import-XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0) {
		th_error_set(err, TH_ESTORE, "cannot create a temporary file in '%s': %s", dir,
		             strerror(errno));
		return NULL;
	}
	unlink(path); /* anonymous: nothing is left behind by a crash */
	if ((f = fdopen(fd, "w+b")) == NULL) {
		close(fd);
		th_error_set(err, TH_ENOMEM, "out of memory");
		return NULL;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	return f;
}

/* --- sorted runs ------------------------------------------------------------------------------ */

/* A row ready to sort: key bytes then line bytes follow the header in memory. */
typedef struct rec {
	uint64_t lineno;
	uint32_t keylen, linelen;
} rec;

#define REC_KEY(r) ((const unsigned char *)((r) + 1))
#define REC_LINE(r) ((const char *)((r) + 1) + (r)->keylen)

typedef struct sortent {
	uint64_t prefix; /* first 8 key bytes, big-endian: most comparisons end here */
	rec *r;
} sortent;

static uint64_t key_prefix(const unsigned char *k, size_t n)
{
	uint64_t p = 0;
	size_t i;

	for (i = 0; i < 8; i++)
		p = p << 8 | (i < n ? k[i] : 0);
	return p;
}

static int rec_cmp(const rec *a, const rec *b)
{
	int c = th_key_cmp(REC_KEY(a), a->keylen, REC_KEY(b), b->keylen);

	if (c)
		return c;
	return a->lineno < b->lineno ? -1 : a->lineno > b->lineno;
}

static int sortent_cmp(const void *pa, const void *pb)
{
	const sortent *a = pa, *b = pb;

	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	return rec_cmp(a->r, b->r);
}

typedef struct block {
	struct block *next;
	size_t used;
	char data[];
} block;

/* A run source for the merge: either the in-memory sorted array or a run file. */
typedef struct run {
	FILE *f;    /* NULL for the in-memory run */
	sortent *v; /* in-memory run */
	size_t n, pos;
	rec *cur; /* current record (heap buffer for file runs) */
	size_t cap;
} run;

typedef struct sorter {
	const char *tmpdir;
	size_t budget, used;
	size_t block_size; /* arena blocks: a fraction of the budget, so runs fill it evenly */
	block *blocks;
	sortent *ents;
	size_t nents, capents;
	run *runs;
	size_t nruns;
	size_t *heap; /* indices into runs, a min-heap on the current record */
	size_t nheap;
} sorter;

static void sorter_dispose(sorter *s)
{
	size_t i;

	while (s->blocks) {
		block *b = s->blocks;
		s->blocks = b->next;
		free(b);
	}
	free(s->ents);
	for (i = 0; i < s->nruns; i++) {
		if (s->runs[i].f) {
			fclose(s->runs[i].f);
			free(s->runs[i].cur);
		}
	}
	free(s->runs);
	free(s->heap);
	memset(s, 0, sizeof(*s));
}

static int sorter_add_run(sorter *s, run *r, th_error *err)
{
	run *p = realloc(s->runs, (s->nruns + 1) * sizeof(*p));

	if (p == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	s->runs = p;
	s->runs[s->nruns++] = *r;
	return TH_OK;
}

/* Sort what is in memory and write it out as a run file. */
static int sorter_spill(sorter *s, th_error *err)
{
	run r;
	size_t i;

	memset(&r, 0, sizeof(r));
	qsort(s->ents, s->nents, sizeof(*s->ents), sortent_cmp);
	if ((r.f = temp_file(s->tmpdir, err)) == NULL)
		return err ? err->code : TH_ESTORE;
	for (i = 0; i < s->nents; i++) {
		const rec *e = s->ents[i].r;
		if (fwrite(e, sizeof(*e) + e->keylen + e->linelen, 1, r.f) != 1) {
			fclose(r.f);
			return th_error_set(err, TH_ESTORE, "cannot write a sort run: %s",
			                    strerror(errno));
		}
	}
	if (fflush(r.f) != 0 || fseek(r.f, 0, SEEK_SET) != 0) {
		fclose(r.f);
		return th_error_set(err, TH_ESTORE, "cannot write a sort run: %s", strerror(errno));
	}
	while (s->blocks) {
		block *b = s->blocks;
		s->blocks = b->next;
		free(b);
	}
	s->nents = 0;
	s->used = 0;
	return sorter_add_run(s, &r, err);
}

static int sorter_put(sorter *s, uint64_t lineno, const th_buf *key, const th_buf *line,
                      th_error *err)
{
	size_t need = sizeof(rec) + key->size + line->size;
	rec *r;
	int error;

	need = (need + 7) & ~(size_t)7;
	/* Arena blocks plus the entries in use count against the budget. */
	if (s->used + (s->nents + 1) * sizeof(sortent) + need > s->budget && s->nents > 0 &&
	    (error = sorter_spill(s, err)) < 0)
		return error;
	if (s->blocks == NULL || s->blocks->used + need > s->block_size) {
		size_t size = need > s->block_size ? need : s->block_size;
		block *b = malloc(sizeof(*b) + size);
		if (b == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		b->used = 0;
		b->next = s->blocks;
		s->blocks = b;
		s->used += sizeof(*b) + size;
	}
	if (s->nents == s->capents) {
		size_t ncap = s->capents ? s->capents * 2 : 4096;
		sortent *p = realloc(s->ents, ncap * sizeof(*p));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		s->ents = p;
		s->capents = ncap;
	}
	r = (rec *)(s->blocks->data + s->blocks->used);
	s->blocks->used += need;
	r->lineno = lineno;
	r->keylen = (uint32_t)key->size;
	r->linelen = (uint32_t)line->size;
	memcpy((char *)(r + 1), key->ptr, key->size);
	memcpy((char *)(r + 1) + key->size, line->ptr, line->size);
	s->ents[s->nents].prefix = key_prefix(REC_KEY(r), r->keylen);
	s->ents[s->nents++].r = r;
	return TH_OK;
}

/* Load the next record of a run into r->cur; returns 1, 0 at its end, or a negative code. */
static int run_next(run *r, th_error *err)
{
	rec h;
	size_t need;

	if (r->f == NULL) {
		if (r->pos >= r->n)
			return 0;
		r->cur = r->v[r->pos++].r;
		return 1;
	}
	if (fread(&h, sizeof(h), 1, r->f) != 1)
		return 0;
	need = sizeof(h) + h.keylen + h.linelen;
	if (need > r->cap) {
		rec *p = realloc(r->cur, need);
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		r->cur = p;
		r->cap = need;
	}
	*r->cur = h;
	if (h.keylen + h.linelen && fread(r->cur + 1, h.keylen + h.linelen, 1, r->f) != 1)
		return th_error_set(err, TH_ESTORE, "sort run truncated");
	return 1;
}

static int heap_less(sorter *s, size_t a, size_t b)
{
	return rec_cmp(s->runs[s->heap[a]].cur, s->runs[s->heap[b]].cur) < 0;
}

static void heap_down(sorter *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i, t;
		if (l < s->nheap && heap_less(s, l, m))
			m = l;
		if (l + 1 < s->nheap && heap_less(s, l + 1, m))
			m = l + 1;
		if (m == i)
			return;
		t = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
}

/* Finish input: the last records become an in-memory run, and the merge heap is set up. */
static int sorter_finish(sorter *s, th_error *err)
{
	run r;
	size_t i;
	int error;

	memset(&r, 0, sizeof(r));
	if (s->nents > 0) /* a header-only file leaves ents NULL, which qsort may not be given */
		qsort(s->ents, s->nents, sizeof(*s->ents), sortent_cmp);
	r.v = s->ents;
	r.n = s->nents;
	if ((error = sorter_add_run(s, &r, err)) < 0)
		return error;
	if ((s->heap = malloc(s->nruns * sizeof(*s->heap))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (i = 0; i < s->nruns; i++) {
		if ((error = run_next(&s->runs[i], err)) < 0)
			return error;
		if (error == 1)
			s->heap[s->nheap++] = i;
	}
	for (i = s->nheap; i-- > 0;)
		heap_down(s, i);
	return TH_OK;
}

/* The smallest record not yet taken (borrowed until the next call), or NULL at the end. */
static const rec *sorter_peek(sorter *s)
{
	return s->nheap ? s->runs[s->heap[0]].cur : NULL;
}

/* Advance past the smallest record. The record returned before stays valid only for in-memory
 * runs, so callers copy what they keep. */
static int sorter_pop(sorter *s, th_error *err)
{
	int error = run_next(&s->runs[s->heap[0]], err);

	if (error < 0)
		return error;
	if (error == 0)
		s->heap[0] = s->heap[--s->nheap];
	if (s->nheap)
		heap_down(s, 0);
	return TH_OK;
}

/* --- the import ------------------------------------------------------------------------------- */

typedef struct imp {
	th_repo *repo;
	const th_import_opts *o;
	th_schema schema;
	int table_exists;
	th_table old;
	size_t nfile;
	char **fnames;  /* file column names */
	int *tpos;      /* table column -> file column, -1 when the file lacks it */
	int *fpos;      /* file column -> table column */
	unsigned *mask; /* file column -> possible types (create/overwrite) */
	int partial;    /* update with some table columns missing from the file */
	FILE *spill;
	uint64_t bytes, rows_read, next_progress, duplicates;
	sorter sort;
	/* edit stream state */
	th_buf ekey, eline, fmt;
	uint64_t elineno;
	th_cells c1, c2;
	th_row_iter *old_it; /* replace/overwrite: counting against the old rows */
	th_row old_row;
	int old_have;
	uint64_t cnt_added, cnt_modified, cnt_removed;
	/* rejected rows: the first one's error, the count, and the report (opts->report) */
	th_error first_reject;
	uint64_t nrejects;
} imp;

#define MAX_REPORTED 100 /* rejected rows listed in the report; all are counted */

/* Record a rejected row: the first one becomes the import's error; up to MAX_REPORTED go into the
 * caller's report as {"line","column","value","reason"}. `reason` is the message without its
 * place, `value` the offending field (NULL: none). Returns TH_OK or TH_ENOMEM. */
static int reject(imp *m, uint64_t line, uint32_t column, const char *value, size_t vlen,
                  const char *reason, const char *message)
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

/* After the rejected rows were collected: the import's error (the first row's, with the count)
 * and the report's closing. Returns TH_EINVALID. */
static int rejected(imp *m, th_error *err)
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

static void imp_progress(imp *m, uint64_t bytes)
{
	m->bytes = bytes;
	if (m->o->progress && bytes >= m->next_progress) {
		m->o->progress(m->o->progress_payload, bytes, m->rows_read);
		m->next_progress = bytes + PROGRESS_EVERY;
	}
}

static int header(imp *m, th_reader *src, th_error *err)
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
	m->nfile = row.n;
	if ((m->fnames = calloc(row.n, sizeof(*m->fnames))) == NULL ||
	    (m->fpos = calloc(row.n, sizeof(*m->fpos))) == NULL ||
	    (m->mask = calloc(row.n, sizeof(*m->mask))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (i = 0; i < row.n; i++) {
		if (row.cells[i] == NULL || row.lens[i] == 0)
			return th_error_set_at(err, TH_EINVALID, row.line, (uint32_t)(i + 1),
			                       "line %llu, column %zu: empty column name in the "
			                       "header",
			                       (unsigned long long)row.line, i + 1);
		if (!th_column_name_valid(row.cells[i]))
			return th_error_set_at(err, TH_EINVALID, row.line, (uint32_t)(i + 1),
			                       "line %llu, column %zu: invalid column name '%.64s'",
			                       (unsigned long long)row.line, i + 1, row.cells[i]);
		for (j = 0; j < i; j++)
			if (strcmp(m->fnames[j], row.cells[i]) == 0)
				return th_error_set_at(
				        err, TH_EINVALID, row.line, (uint32_t)(i + 1),
				        "line %llu, column %zu: duplicate column name '%s' (also "
				        "column %zu)",
				        (unsigned long long)row.line, i + 1, row.cells[i], j + 1);
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

/* Work out the target columns: a new schema (create/overwrite; types come after pass 1) or the
 * existing one (update/replace/append), and the file <-> table column maps. */
static int plan_columns(imp *m, th_error *err)
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

/* Pass 1: check each record and spill it. */
static int pass1(imp *m, th_reader *src, th_error *err)
{
	int newschema = m->o->op == TH_OP_CREATE || m->o->op == TH_OP_OVERWRITE;
	char reason[256], msg[512];
	th_reader_row row;
	size_t i;
	int error;

	for (;;) {
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
			if ((error = reject(m, line, column, NULL, 0, why, err->msg)) < 0)
				return th_error_set(err, error, "out of memory");
			break;
		}
		/* Check the whole row first: a bad row is rejected, not written. */
		if (row.n != m->nfile) {
			snprintf(reason, sizeof(reason),
			         "expected %zu fields as in the header, found %zu", m->nfile,
			         row.n);
			snprintf(msg, sizeof(msg), "line %llu: %s", (unsigned long long)row.line,
			         reason);
			if ((error = reject(m, row.line,
			                    (uint32_t)(row.n < m->nfile ? row.n + 1 : m->nfile + 1),
			                    NULL, 0, reason, msg)) < 0)
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
			if ((error = reject(m, row.line, (uint32_t)(i + 1), row.cells[i],
			                    row.lens[i], reason, msg)) < 0)
				return th_error_set(err, error, "out of memory");
			break;
		}
		if (i < row.n || m->nrejects)
			continue; /* rejected, or the import fails anyway: only keep scanning */
		if (put_varint(m->spill, row.line) < 0)
			goto write_failed;
		for (i = 0; i < row.n; i++) {
			if (row.cells[i] == NULL) {
				if (putc_unlocked(0, m->spill) == EOF)
					goto write_failed;
				continue;
			}
			if (newschema && m->mask[i] != TH_TYPEBIT(TH_TYPE_TEXT))
				m->mask[i] &= th_type_classify(row.cells[i], row.lens[i]);
			if (put_varint(m->spill, row.lens[i] + 1) < 0 ||
			    fwrite(row.cells[i], 1, row.lens[i], m->spill) != row.lens[i])
				goto write_failed;
		}
		m->rows_read++;
		if ((m->rows_read & 1023) == 0)
			imp_progress(m, th_reader_bytes(src));
	}
	return m->nrejects ? rejected(m, err) : TH_OK;
write_failed:
	return th_error_set(err, TH_ESTORE, "cannot write the spill file: %s", strerror(errno));
}

/* Pass 2: spill file -> keys and lines -> sorter. */
static int pass2(imp *m, th_error *err)
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
		if (get_varint(m->spill, &lineno) < 0)
			goto truncated;
		for (i = 0; i < m->nfile; i++) {
			if (get_varint(m->spill, &len) < 0)
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
		    (error = sorter_put(&m->sort, lineno, &key, &line, err)) < 0)
			goto cleanup;
	}
	error = sorter_finish(&m->sort, err);
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
static uint32_t key_column(const imp *m)
{
	return (uint32_t)m->tpos[m->schema.pk[0]] + 1;
}

static const char *key_column_name(const imp *m)
{
	return m->schema.cols[m->schema.pk[0]].name;
}

/* The printable key of a line, for messages. */
static const char *key_text(imp *m, const char *line, size_t len)
{
	th_buf_clear(&m->fmt);
	if (th_row_decode(&m->c1, &m->schema, line, len, NULL) < 0 ||
	    th_key_format(&m->fmt, &m->schema, m->c1.c, NULL) < 0)
		return "?";
	return m->fmt.ptr ? m->fmt.ptr : "?";
}

/* A row rejected for its key (a duplicate, or one that exists already): the import ends at once,
 * the rejection reported like the others. Returns TH_EINVALID (or TH_ENOMEM). */
static int key_rejected(imp *m, uint64_t line, const char *key, const char *reason, th_error *err)
{
	char msg[700];

	snprintf(msg, sizeof(msg), "line %llu, column %u ('%s'): %s", (unsigned long long)line,
	         key_column(m), key_column_name(m), reason);
	if (reject(m, line, key_column(m), key, strlen(key), reason, msg) < 0)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return rejected(m, err);
}

/* Count old rows against the new stream up to `key` (NULL = to the end): replace/overwrite. */
static int count_old(imp *m, const unsigned char *key, size_t keylen, const th_buf *line,
                     uint64_t newcount, th_error *err)
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

/* The edit source: sorted records, duplicates resolved or rejected. */
static int next_edit(void *payload, th_edit *e, th_error *err)
{
	imp *m = payload;
	const rec *r = sorter_peek(&m->sort);
	uint64_t count = 1;
	int error;

	if (r == NULL) {
		if (m->old_it && (error = count_old(m, NULL, 0, NULL, 0, err)) < 0)
			return error;
		return 0;
	}
	if ((error = th_buf_set(&m->ekey, REC_KEY(r), r->keylen, err)) < 0 ||
	    (error = th_buf_set(&m->eline, REC_LINE(r), r->linelen, err)) < 0)
		return error;
	m->elineno = r->lineno;
	if ((error = sorter_pop(&m->sort, err)) < 0)
		return error;
	while ((r = sorter_peek(&m->sort)) != NULL &&
	       th_key_cmp(REC_KEY(r), r->keylen, (const unsigned char *)m->ekey.ptr,
	                  m->ekey.size) == 0) {
		if (m->schema.npk == 0) {
			count++;
		} else if (m->o->op == TH_OP_UPDATE) {
			/* Update: the last row of a key wins (records of one key come in line
			 * order). */
			m->duplicates++;
			if ((error = th_buf_set(&m->eline, REC_LINE(r), r->linelen, err)) < 0)
				return error;
			m->elineno = r->lineno;
		} else {
			char reason[300];
			const char *key = key_text(m, REC_LINE(r), r->linelen);
			snprintf(reason, sizeof(reason),
			         "duplicate primary key %.200s (also on line %llu)", key,
			         (unsigned long long)m->elineno);
			return key_rejected(m, r->lineno, key, reason, err);
		}
		if ((error = sorter_pop(&m->sort, err)) < 0)
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

/* An edit meets an existing row: update merges columns, append refuses. */
static int resolve(void *payload, const th_row *old, const th_edit *e, th_buf *out, th_error *err)
{
	imp *m = payload;
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

static void imp_dispose(imp *m)
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
	if (m->spill)
		fclose(m->spill);
	sorter_dispose(&m->sort);
	th_buf_dispose(&m->ekey);
	th_buf_dispose(&m->eline);
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

int th_import_fd(th_import_result *out, th_repo *repo, int fd, const th_import_opts *o,
                 th_error *err)
{
	const char *tmpdir = o->tmpdir ? o->tmpdir : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	th_reader *src = NULL;
	const char **columns = NULL;
	size_t ncolumns = 0;
	th_pack *pack = NULL;
	th_commit_info head_info;
	th_oid head, rows, root, commit;
	th_apply_stats st;
	th_buf msg = TH_BUF_INIT, email = TH_BUF_INIT;
	const char *author = o->author ? o->author : "tablehub";
	const char *label = o->branch_label ? o->branch_label : o->branch;
	imp m;
	size_t i;
	int error, use_base;

	memset(&m, 0, sizeof(m));
	memset(&head_info, 0, sizeof(head_info));
	m.repo = repo;
	m.o = o;
	m.sort.tmpdir = tmpdir;
	m.sort.budget = o->mem_budget ? o->mem_budget : DEFAULT_BUDGET;
	m.sort.block_size = m.sort.budget / 8 < BLOCK_SIZE ? m.sort.budget / 8 : BLOCK_SIZE;
	if (m.sort.block_size < (4u << 10))
		m.sort.block_size = 4u << 10;
	m.next_progress = PROGRESS_EVERY;

	if (o->report) {
		th_buf_clear(o->report);
		if ((error = th_buf_puts(o->report, "{\"rejected_rows\":[", err)) < 0)
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
	if ((error = th_repo_branch_get(&head, repo, o->branch, err)) < 0) {
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
	if ((error = th_reader_open(&src, o->format, fd, columns, ncolumns, err)) < 0)
		goto cleanup;
	if ((error = header(&m, src, err)) < 0 || (error = plan_columns(&m, err)) < 0)
		goto cleanup;
	if ((m.spill = temp_file(tmpdir, err)) == NULL) {
		error = err ? err->code : TH_ESTORE;
		goto cleanup;
	}
	if ((error = pass1(&m, src, err)) < 0)
		goto cleanup;
	if (o->progress)
		o->progress(o->progress_payload, th_reader_bytes(src), m.rows_read);
	if (o->op == TH_OP_CREATE || o->op == TH_OP_OVERWRITE)
		for (i = 0; i < m.nfile; i++)
			m.schema.cols[i].type = th_type_pick(m.mask[i]);

	/* Pass 2 and the write. */
	if ((error = pass2(&m, err)) < 0)
		goto cleanup;
	use_base = o->op == TH_OP_UPDATE || o->op == TH_OP_APPEND;
	if (!use_base && m.table_exists &&
	    (o->op == TH_OP_REPLACE || schemas_equal(&m.schema, &m.old.schema))) {
		if ((error = th_row_iter_new(&m.old_it, repo, &m.old, err)) < 0 ||
		    (error = th_row_iter_next(m.old_it, &m.old_row, err)) < 0)
			goto cleanup;
		m.old_have = error;
	}
	if (ftell(m.spill) > (long)PACK_THRESHOLD && (error = th_pack_new(&pack, repo, 1, err)) < 0)
		goto cleanup;
	error = th_table__apply_ex(&rows, &st, repo, &m.schema, use_base ? &m.old.rows : NULL,
	                           next_edit, &m, use_base && m.schema.npk ? resolve : NULL,
	                           use_base, pack, err);
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
	if (o->email)
		error = th_buf_puts(&email, o->email, err);
	else
		error = th_buf_printf(&email, err, "%s@tablehub.local", author);
	if (error < 0 || (error = th_repo_commit_write(&commit, repo, &root, &head, 1, author,
	                                               email.ptr, msg.ptr, err)) < 0)
		goto cleanup;
	if ((error = th_repo_branch_cas(repo, o->branch, &commit, &head, "import", err)) < 0) {
		if (error == TH_ECONFLICT)
			error = th_error_set(err, TH_ECONFLICT,
			                     "branch '%s' moved during the import; run it again",
			                     label);
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
	imp_dispose(&m);
	return error;
}
