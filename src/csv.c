/* csv.c: the reader of delimited text (CSV, PSV, TSV) over libcsv: th_reader_csv (see reader.h).
 *
 * RFC 4180: quoted fields may hold the delimiter, doubled quotes and newlines; CRLF or LF; a UTF-8
 * BOM is stripped (a file that looks like UTF-16 is refused, saying so); an unquoted empty field is
 * NULL and a quoted "" is an empty string; blank lines are skipped. Every field is checked to be
 * valid UTF-8. The first record is the header; the reader's `columns` option is ignored. Errors
 * name the 1-based line (where the bad record starts, or the line of the bad byte) and the 1-based
 * column (the field's number).
 *
 * libcsv is a push parser: csv_parse() runs over a whole block and calls back once per field and
 * once per record end. The reader therefore feeds it 256 KiB blocks and queues the records each
 * block completes; next() pops them one at a time and refills when the queue runs dry.
 * Every cell of the queued records lives in one growing arena (`cellbuf`), addressed by offset
 * because the arena may move while a block is parsed; no per-field malloc. A record that spans a
 * block boundary keeps its leading fields: they are moved to the front when the queue is reset.
 *
 * libcsv reports no offsets, so the reader counts lines itself. CSV_REPALL_NL makes libcsv report
 * every unquoted CR and LF (also of blank lines) through the record callback; newlines inside
 * quoted fields are counted in the field data, found by the same pass that validates UTF-8. A CR
 * directly followed by a LF is one line end. Columns in messages are 1-based field numbers.
 *
 * libcsv's space trimming is switched off (a space function that says no): RFC 4180 keeps spaces
 * as data, and a tab must stay data (or the delimiter) in TSV. Strict mode turns a quote inside an
 * unquoted field and text after a closing quote into errors instead of silently keeping them.
 */
#include <csv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/reader.h"
#include "tablehub/text.h"

#define BLOCK_SIZE (256 * 1024)
#define NULL_OFF SIZE_MAX /* cell offset of a NULL field */

extern const th_reader_type th_reader_csv; /* the reader's functions, at the end of this file */

typedef struct th_csv {
	th_reader base; /* first: the reader interface */
	struct csv_parser p;
	int fd;
	int eof;     /* the descriptor reached end of input and the parser was finished */
	int started; /* the first block (and a possible BOM) has been read */
	int failed;  /* `error` holds an error to return once the queue is empty */
	th_error error;
	uint64_t bytes;
	char *block;

	/* The cells of queued records: offsets into `cellbuf` (NULL_OFF for NULL) and lengths. */
	char *cellbuf;
	size_t cellsize, cellcap;
	size_t *off, *len;
	size_t nfields, fieldcap;

	/* Queued records: the index of their first field, field count and starting line. */
	struct rec {
		size_t first, n;
		uint64_t line;
	} * recs;
	size_t nrecs, reccap, qpos;

	/* The record being parsed: its first field index, start line and field count. */
	size_t cur_first, cur_n;
	uint64_t cur_line_start;
	uint64_t line;  /* the line at the parser's position after the last callback */
	int cr_pending; /* the last callback was a record end at a CR: a LF right after is the same
	                   line end */

	/* What next() hands out for the current record. */
	const char **cells;
	size_t cells_cap;
} th_csv;

static int no_space(unsigned char c)
{
	(void)c;
	return 0;
}

/* Line ends inside s[0..len) (LF, CRLF and lone CR each count once). */
static uint64_t count_newlines(const char *s, size_t len)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\n')
			n++;
		else if (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n'))
			n++;
	}
	return n;
}

/* Is s[0..len) printable ASCII (no control byte, no byte >= 0x80)? Most fields are, and then
 * need neither the full UTF-8 check nor a newline count. Eight bytes at a time: a byte below 0x20
 * borrows into its top bit when 0x20 is subtracted, a byte >= 0x80 has it set already. */
static int plain_ascii(const char *s, size_t len)
{
	const uint64_t k20 = 0x2020202020202020ull, k80 = 0x8080808080808080ull;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		if (((w - k20) | w) & k80)
			return 0;
	}
	for (; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x80)
			return 0;
	}
	return 1;
}

static int fail_at(th_csv *csv, th_code code, uint64_t line, uint32_t column, const char *what)
{
	if (!csv->failed) {
		th_error_set_at(&csv->error, code, line, column, "line %llu, column %u: %s",
		                (unsigned long long)line, (unsigned)column, what);
		csv->failed = 1;
	}
	return code;
}

static int fail(th_csv *csv, th_code code, const char *what)
{
	if (!csv->failed) {
		th_error_set(&csv->error, code, "%s", what);
		csv->failed = 1;
	}
	return code;
}

static int grow_fields(th_csv *csv)
{
	size_t ncap = csv->fieldcap ? csv->fieldcap * 2 : 1024;
	size_t *o, *l;

	if ((o = realloc(csv->off, ncap * sizeof(*o))) == NULL)
		return fail(csv, TH_ENOMEM, "out of memory reading CSV");
	csv->off = o;
	if ((l = realloc(csv->len, ncap * sizeof(*l))) == NULL)
		return fail(csv, TH_ENOMEM, "out of memory reading CSV");
	csv->len = l;
	csv->fieldcap = ncap;
	return TH_OK;
}

static int grow_cells(th_csv *csv, size_t need)
{
	size_t ncap = csv->cellcap ? csv->cellcap : 64 * 1024;
	char *p;

	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(csv->cellbuf, ncap)) == NULL)
		return fail(csv, TH_ENOMEM, "out of memory reading CSV");
	csv->cellbuf = p;
	csv->cellcap = ncap;
	return TH_OK;
}

/* libcsv's field callback: validate, count lines, append to the arena. */
static void on_field(void *data, size_t n, void *payload)
{
	th_csv *csv = payload;
	const char *s = data;
	size_t bad;
	int plain;

	if (csv->failed)
		return;
	csv->cr_pending = 0;
	if (csv->cur_n == 0)
		csv->cur_line_start = csv->line;
	plain = s == NULL || plain_ascii(s, n);
	if (!plain && !th_utf8_valid(s, n, &bad)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "invalid UTF-8 at byte %zu of the value", bad + 1);
		fail_at(csv, TH_EINVALID, csv->line + count_newlines(s, bad),
		        (uint32_t)(csv->cur_n + 1), msg);
		return;
	}
	if (csv->nfields == csv->fieldcap && grow_fields(csv) < 0)
		return;
	if (s == NULL) {
		csv->off[csv->nfields] = NULL_OFF;
		csv->len[csv->nfields] = 0;
	} else {
		if (csv->cellsize + n + 1 > csv->cellcap &&
		    grow_cells(csv, csv->cellsize + n + 1) < 0)
			return;
		memcpy(csv->cellbuf + csv->cellsize, s, n);
		csv->cellbuf[csv->cellsize + n] = '\0';
		csv->off[csv->nfields] = csv->cellsize;
		csv->len[csv->nfields] = n;
		csv->cellsize += n + 1;
		if (!plain)
			csv->line += count_newlines(s, n);
	}
	csv->nfields++;
	csv->cur_n++;
}

/* libcsv's record callback: c is the CR or LF that ended it (or a blank line's), -1 at the end. */
static void on_record(int c, void *payload)
{
	th_csv *csv = payload;

	if (csv->failed)
		return;
	if (c == '\n') {
		if (!csv->cr_pending)
			csv->line++;
		csv->cr_pending = 0;
	} else if (c == '\r') {
		csv->line++;
		csv->cr_pending = 1;
	}
	if (csv->cur_n == 0)
		return; /* a blank line */
	if (csv->nrecs == csv->reccap) {
		size_t ncap = csv->reccap ? csv->reccap * 2 : 256;
		struct rec *r = realloc(csv->recs, ncap * sizeof(*r));
		if (r == NULL) {
			fail(csv, TH_ENOMEM, "out of memory reading CSV");
			return;
		}
		csv->recs = r;
		csv->reccap = ncap;
	}
	csv->recs[csv->nrecs].first = csv->cur_first;
	csv->recs[csv->nrecs].n = csv->cur_n;
	csv->recs[csv->nrecs].line = csv->cur_line_start;
	csv->nrecs++;
	csv->cur_first = csv->nfields;
	csv->cur_n = 0;
}

static int csv_open(th_reader **out, int fd, const th_reader_opts *opts, th_error *err)
{
	th_csv *csv = calloc(1, sizeof(*csv));

	if (csv == NULL || (csv->block = malloc(BLOCK_SIZE)) == NULL) {
		free(csv);
		return th_error_set(err, TH_ENOMEM, "out of memory opening CSV reader");
	}
	if (csv_init(&csv->p, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL | CSV_APPEND_NULL |
	                              CSV_EMPTY_IS_NULL) != 0) {
		free(csv->block);
		free(csv);
		return th_error_set(err, TH_ERROR, "cannot initialise the CSV parser");
	}
	csv_set_delim(&csv->p, (unsigned char)(opts->delim ? opts->delim : ','));
	csv_set_space_func(&csv->p, no_space);
	csv_set_blk_size(&csv->p, 4096);
	csv->base.type = &th_reader_csv;
	csv->fd = fd;
	csv->line = 1;
	*out = &csv->base;
	return TH_OK;
}

static void csv_close(th_reader *r)
{
	th_csv *csv = (th_csv *)r;

	csv_free(&csv->p);
	free(csv->block);
	free(csv->cellbuf);
	free(csv->off);
	free(csv->len);
	free(csv->recs);
	free(csv->cells);
	free(csv);
}

static uint64_t csv_bytes(const th_reader *r)
{
	return ((const th_csv *)r)->bytes;
}

static void csv_error_pos(const th_reader *r, uint64_t *line, uint32_t *column)
{
	const th_csv *csv = (const th_csv *)r;

	*line = csv->failed ? csv->error.line : 0;
	*column = csv->failed ? csv->error.column : 0;
}

/* Read up to `cap` bytes (at least `min` unless the input ends first). Returns the count or -1. */
static ssize_t read_some(th_csv *csv, char *buf, size_t cap, size_t min)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t r = read(csv->fd, buf + got, cap - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			char msg[160];
			snprintf(msg, sizeof(msg), "cannot read the CSV input: %s",
			         strerror(errno));
			fail(csv, TH_ESTORE, msg);
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		csv->bytes += (uint64_t)r;
		if (got >= min)
			break;
	}
	return (ssize_t)got;
}

/* Drop the delivered records, keeping the fields of the record in progress. */
static void reset_queue(th_csv *csv)
{
	size_t keep = csv->nfields - csv->cur_first, i, base = 0;

	if (keep > 0) {
		/* The first kept non-NULL cell starts the bytes to keep; cells are laid out in
		 * order. */
		for (i = csv->cur_first; i < csv->nfields; i++) {
			if (csv->off[i] != NULL_OFF) {
				base = csv->off[i];
				break;
			}
		}
		if (i == csv->nfields)
			base = csv->cellsize;
		/* With only NULL cells so far the arena may not exist yet (cellbuf NULL). */
		if (base > 0)
			memmove(csv->cellbuf, csv->cellbuf + base, csv->cellsize - base);
		csv->cellsize -= base;
		for (i = 0; i < keep; i++) {
			size_t o = csv->off[csv->cur_first + i];
			csv->off[i] = o == NULL_OFF ? NULL_OFF : o - base;
			csv->len[i] = csv->len[csv->cur_first + i];
		}
	} else {
		csv->cellsize = 0;
	}
	csv->nfields = keep;
	csv->cur_first = 0;
	csv->nrecs = csv->qpos = 0;
}

/* After csv_parse stopped early at block[pos]: describe the strict-mode error. */
static void parse_error(th_csv *csv, const char *block, size_t pos)
{
	unsigned char c = (unsigned char)block[pos];
	uint64_t line = csv->line;
	char what[96], ch[16];

	if (csv_error(&csv->p) == CSV_ENOMEM) {
		fail(csv, TH_ENOMEM, "out of memory parsing CSV");
		return;
	}
	if (c >= 0x20 && c < 0x7f)
		snprintf(ch, sizeof(ch), "'%c'", c);
	else
		snprintf(ch, sizeof(ch), "byte 0x%02x", c);
	if (csv->p.pstate == 3 /* FIELD_MIGHT_HAVE_ENDED */) {
		/* The quoted field so far may span lines. */
		line += count_newlines((const char *)csv->p.entry_buf, csv->p.entry_pos);
		snprintf(what, sizeof(what), "unexpected %s after a closing quote", ch);
	} else {
		snprintf(what, sizeof(what), "unexpected %s in unquoted field", ch);
	}
	fail_at(csv, TH_EINVALID, line, (uint32_t)(csv->cur_n + 1), what);
}

/* Parse one more block (or finish at the end of input). */
static void refill(th_csv *csv)
{
	const char *data = csv->block;
	ssize_t n;
	size_t done;

	reset_queue(csv);
	if (!csv->started) {
		csv->started = 1;
		if ((n = read_some(csv, csv->block, BLOCK_SIZE, 3)) < 0)
			return;
		if (th_reader_looks_utf16(data, (size_t)n)) {
			fail_at(csv, TH_EINVALID, 1, 1, TH_READER_UTF16_MSG);
			return;
		}
		if (n >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
			data += 3;
			n -= 3;
			if (n == 0) {
				data = csv->block;
				if ((n = read_some(csv, csv->block, BLOCK_SIZE, 1)) < 0)
					return;
			}
		}
	} else if ((n = read_some(csv, csv->block, BLOCK_SIZE, 1)) < 0) {
		return;
	}
	if (n == 0) {
		csv->eof = 1;
		if (csv_fini(&csv->p, on_field, on_record, csv) != 0 && !csv->failed)
			fail_at(csv, TH_EINVALID, csv->line, (uint32_t)(csv->cur_n + 1),
			        "unterminated quoted field");
		return;
	}
	done = csv_parse(&csv->p, data, (size_t)n, on_field, on_record, csv);
	if (done < (size_t)n && !csv->failed)
		parse_error(csv, data, done);
}

static int csv_next(th_reader *rd, th_reader_row *row, th_error *err)
{
	th_csv *csv = (th_csv *)rd;

	for (;;) {
		if (csv->qpos < csv->nrecs) {
			const struct rec *r = &csv->recs[csv->qpos++];
			size_t i;

			if (r->n > csv->cells_cap) {
				size_t ncap = r->n * 2;
				const char **c = realloc(csv->cells, ncap * sizeof(*c));
				if (c == NULL)
					return th_error_set(err, TH_ENOMEM,
					                    "out of memory reading CSV");
				csv->cells = c;
				csv->cells_cap = ncap;
			}
			for (i = 0; i < r->n; i++) {
				size_t o = csv->off[r->first + i];
				csv->cells[i] = o == NULL_OFF ? NULL : csv->cellbuf + o;
			}
			row->n = r->n;
			row->cells = csv->cells;
			row->lens = csv->len + r->first;
			row->line = r->line;
			return 1;
		}
		if (csv->failed) {
			if (err)
				*err = csv->error;
			return csv->error.code;
		}
		if (csv->eof)
			return 0;
		refill(csv);
	}
}

const th_reader_type th_reader_csv = {
	csv_open, csv_next, csv_error_pos, csv_bytes, csv_close,
};
