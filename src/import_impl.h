/* import_impl.h: the state of one import, shared by the import's files (internal to src/):
 * import.c (the steps and the commit), import_scan.c (pass 1: the header, the column plan, the
 * checks, type inference and the spill file; the rejected-rows report) and import_edits.c (pass 2:
 * keys and sorting; the sorted rows as edits for th_table__apply_ex).
 */
#ifndef TABLEHUB_SRC_IMPORT_IMPL_H
#define TABLEHUB_SRC_IMPORT_IMPL_H

#include <stdio.h>
#include <string.h>

#include "tablehub/import.h"
#include "tablehub/reader.h"
#include "tablehub/sorter.h"
#include "tablehub/table.h"
#include "chunk.h"

/* The spill file (import_spill.c): pass 1's rows, held in a mapped buffer of
 * TH_IMPORT_SPILL_MEM bytes while they fit (an upload of a few thousand rows then creates no
 * file: a file's inode and its unlink were a sixth of the server's work under small uploads) and
 * past that in an unlinked temporary file, the buffer then written out a MiB at a time. */
#define TH_IMPORT_SPILL_MEM (1u << 20)

typedef struct th_import__spill {
	unsigned char *mem; /* TH_IMPORT_SPILL_MEM bytes, mapped at the first write */
	size_t len;         /* bytes in mem not in the file */
	size_t rd;          /* reading, without a file: the next byte of mem */
	uint64_t size;      /* bytes written in all */
	int fd;             /* -1 until the rows outgrow mem */
	const char *tmpdir; /* where the file goes (NULL: th_sorter_tmpfd's default) */
} th_import__spill;

/* An empty spill whose file, if it needs one, goes in tmpdir. Allocates nothing. */
void th_import__spill_init(th_import__spill *s, const char *tmpdir);

/* Append n bytes. Returns TH_OK, TH_ENOMEM, TH_ENOSPC or TH_ESTORE ("cannot write the spill
 * file"). */
int th_import__spill_put_slow(th_import__spill *s, const void *p, size_t n, th_error *err);
static inline int th_import__spill_put(th_import__spill *s, const void *p, size_t n, th_error *err)
{
	if (s->mem != NULL && n <= TH_IMPORT_SPILL_MEM - s->len) {
		memcpy(s->mem + s->len, p, n);
		s->len += n;
		s->size += n;
		return TH_OK;
	}
	return th_import__spill_put_slow(s, p, n, err);
}

/* Back to the first byte, for reading. Returns TH_OK or TH_ESTORE. */
int th_import__spill_rewind(th_import__spill *s, th_error *err);

/* Read up to n bytes into buf: *got of them, 0 at the end. Returns TH_OK or TH_ESTORE. */
int th_import__spill_read(th_import__spill *s, void *buf, size_t n, size_t *got, th_error *err);

/* Close the file and unmap the buffer. */
void th_import__spill_dispose(th_import__spill *s);

typedef struct th_import__state {
	th_repo *repo;
	const th_import_opts *o;
	th_schema schema; /* the table's schema after the import */
	int table_exists;
	th_table old;
	size_t nfile;
	char **fnames;          /* file column names */
	int *tpos;              /* table column -> file column, -1 when the file lacks it */
	int *fpos;              /* file column -> table column */
	unsigned *mask;         /* file column -> possible types (create/overwrite) */
	int partial;            /* update with some table columns missing from the file */
	th_import__spill spill; /* pass 1's good rows, varint-framed */
	uint64_t bytes, rows_read, next_progress, duplicates;
	th_sorter *sort;
	/* pass 2's reading of the spill file; streamed: keys already increase, no sort */
	th_buf sdata;
	th_cell *scells, *sfcells;
	size_t *soffs;
	unsigned char *rbuf; /* read-ahead of the spill file */
	size_t rpos, rlen;
	int streamed;
	uint64_t stream_left;
	/* edit stream state */
	th_buf ekey, eline, fmt;
	th_buf srow; /* pass 1: the spill record of one row, written in one call */
	uint64_t elineno;
	th_cells c1, c2;
	th_row_iter *old_it; /* replace/overwrite: counting against the old rows */
	th_row old_row;
	int old_have;
	uint64_t cnt_added, cnt_modified, cnt_removed;
	/* nullValues: a row's cells with the markers made NULL */
	const char **ncells;
	size_t *nlens, ncap;
	/* rejected rows: the first one's error, the count, and the report (opts->report) */
	th_error first_reject;
	uint64_t nrejects;
	uint64_t nedits; /* edits handed out, for opts->check */
} th_import__state;

/* Every 1024th call (n counts them), ask opts->check whether to go on. Returns TH_OK or what the
 * check returned. */
static inline int th_import__check(th_import__state *m, uint64_t n, th_error *err)
{
	if (m->o->check == NULL || (n & 1023) != 0)
		return TH_OK;
	return m->o->check(m->o->progress_payload, err);
}

/* The spill file frames each row as varints (7 bits a byte, low first): the row's line number,
 * then per file column its length + 1 (0 for NULL) followed by its bytes. Pass 1 writes it, pass
 * 2 reads it back (import_edits.c). Appends v to b; returns TH_OK or TH_ENOMEM. */
static inline int th_import__put_varint(th_buf *b, uint64_t v)
{
	unsigned char d[10];
	size_t n = 0;

	do {
		d[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			d[n] |= 0x80;
		n++;
	} while (v);
	return th_buf_put(b, d, n, NULL);
}

/* strcasecmp over ASCII letters only, as SQL (SQLite) compares names. */
int th_import__ascii_casecmp(const char *a, const char *b);

/* Pass 1 (import_scan.c). Read the header row: the file's columns. Returns TH_OK, TH_EINVALID
 * (no header; an empty, invalid or too long name; a name repeated, also in another case) or the
 * reader's error. */
int th_import__header(th_import__state *m, th_reader *src, th_error *err);

/* Work out the target columns: a new schema (create/overwrite; types come after pass 1) or the
 * existing one (update/replace/append), and the file <-> table column maps. Returns TH_OK,
 * TH_EINVALID (a key column not in the file, a file column not in the table) or TH_ENOMEM. */
int th_import__plan_columns(th_import__state *m, th_error *err);

/* Check each row, infer the types of new columns and write the good rows to m->spill. Returns
 * TH_OK, TH_EINVALID (rejected rows: the first named, all counted, the report filled), the
 * reader's error, TH_ENOMEM or TH_ESTORE. */
int th_import__scan(th_import__state *m, th_reader *src, th_error *err);

/* Record a rejected row: the first one becomes the import's error; up to 100 go into the
 * caller's report. `reason` is the message without its place, `value` the offending field (NULL:
 * none). Returns TH_OK or TH_ENOMEM. */
int th_import__reject(th_import__state *m, uint64_t line, uint32_t column, const char *value,
                      size_t vlen, const char *reason, const char *message);

/* After the rejected rows were collected: the import's error (the first row's, with the count)
 * and the report's closing. Returns TH_EINVALID. */
int th_import__rejected(th_import__state *m, th_error *err);

/* Pass 2 (import_edits.c). Read the spill file back, encode each row's key and line for the
 * now-known schema, sort them and start reading them sorted; when the keys already strictly
 * increase, only rewind the spill file (the edits are read from it, m->streamed). Returns TH_OK,
 * TH_ENOMEM or TH_ESTORE. */
int th_import__sort(th_import__state *m, th_error *err);

/* The edit source for th_table__apply_ex (payload: the state): the sorted rows, duplicates of a
 * key resolved (update: the last wins) or rejected, old rows counted when m->old_it is set. */
int th_import__next_edit(void *payload, th_edit *e, th_error *err);

/* The resolver for th_table__apply_ex: an edit meets an existing row (update merges the file's
 * columns into it, append rejects it). */
int th_import__resolve(void *payload, const th_row *old, const th_edit *e, th_buf *out,
                       th_error *err);

#endif
