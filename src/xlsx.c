/* xlsx.c: the reader of Excel workbooks (.xlsx, Office Open XML): th_reader_xlsx (see reader.h).
 *
 * One sheet is read: the first, or the one the `sheet` option names (sheetName in the upload
 * params). Its first row that has a cell is the header; every later row with a cell is a record,
 * padded with NULLs to the header's width (a row wider than the header is returned as it is, for
 * the import to refuse). Rows and columns are the sheet's own: a row's `line` is its row number,
 * and a cell missing from the sheet's XML is NULL.
 *
 * Cells come out typed as the sheet has them, as text the type inference knows: numbers as the
 * shortest text of their double ("0.1", "404"); a number whose cell style has a date or time
 * format as a date ("2024-03-01"), a datetime ("2024-03-01 09:30:00") or, time only, "09:30:00"
 * (both date systems, 1900 and 1904); booleans as true/false; shared strings, inline strings and
 * formulas' string results as their text; error values as they show ("#N/A": nullValues can make
 * them NULL). A formula's cached value is read, the formula itself never.
 *
 * DESIGN. The workbook is a zip archive of XML parts, read with libzip and libxml2's
 * xmlTextReader (xlsx_book.c): the sheet's XML streams out of the archive as the reader asks for
 * it, one row held at a time, so a sheet is never whole in memory. The shared strings are, since
 * any cell may refer to any of them; they are capped (TH_XLSX_SST_MAX, the message says so), as
 * are the uncompressed sizes of the parts, against zip bombs. libzip reads by seeking: the file
 * must be a file, not a pipe. All opening work happens at the first `next`, so that its errors
 * (not a workbook, no such sheet) are reported as the import's, with TH_EINVALID.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tablehub/reader.h"
#include "tablehub/value.h"
#include "xlsx_impl.h"

#define ROW_MAX (64u << 20) /* bytes of text one row may hold */

extern const th_reader_type th_reader_xlsx; /* the reader's functions, at the end of this file */

typedef struct th_xlsx {
	th_reader base; /* first: the reader interface */
	int fd;         /* borrowed */
	char *sheet_opt;
	zip_t *zip;
	th_xlsx__book book;
	th_xlsx__part *sheet;
	int started, done;
	uint64_t err_line;
	uint32_t err_col;
	/* the row being read: cell i's text at store + offs[i] (SIZE_MAX: NULL) */
	uint64_t row;
	th_buf store;
	size_t *offs, *lens;
	const char **cells;
	size_t n, cap; /* cells given so far (the last column + 1); room */
	size_t width;  /* the header's, 0 before it */
	/* the cell being read, and the one before it in the row (-1: none) */
	size_t col;
	long last;
	char type[16];
	long style;
	th_buf val;
	int have_val, in_v, in_is, in_t, in_rph;
} th_xlsx;

static int xlsx_open(th_reader **out, int fd, const th_reader_opts *opts, th_error *err)
{
	th_xlsx *x = calloc(1, sizeof(*x));

	if (x == NULL || (opts->sheet && (x->sheet_opt = strdup(opts->sheet)) == NULL)) {
		free(x);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	x->base.type = &th_reader_xlsx;
	x->fd = fd;
	*out = &x->base;
	return TH_OK;
}

static void xlsx_close(th_reader *r)
{
	th_xlsx *x = (th_xlsx *)r;

	th_xlsx__part_close(x->sheet);
	th_xlsx__book_dispose(&x->book);
	if (x->zip != NULL)
		zip_discard(x->zip); /* read-only: nothing to write back */
	free(x->sheet_opt);
	th_buf_dispose(&x->store);
	th_buf_dispose(&x->val);
	free(x->offs);
	free(x->lens);
	free(x->cells);
	free(x);
}

static uint64_t xlsx_bytes(const th_reader *r)
{
	const th_xlsx *x = (const th_xlsx *)r;
	const th_xlsx__part *p = x->sheet;

	/* Progress in the file's bytes: the sheet's uncompressed bytes read, scaled. */
	if (p == NULL || p->size == 0)
		return 0;
	return (uint64_t)((double)p->read * (double)p->csize / (double)p->size);
}

static void xlsx_error_pos(const th_reader *r, uint64_t *line, uint32_t *column)
{
	const th_xlsx *x = (const th_xlsx *)r;

	*line = x->err_line;
	*column = x->err_col;
}

/* An error at the current row and column (0: none). */
static int fail(th_xlsx *x, th_error *err, th_code code, size_t col, const char *what)
{
	x->err_line = x->row ? x->row : 1;
	x->err_col = (uint32_t)col;
	if (col)
		return th_error_set_at(err, code, x->err_line, x->err_col,
		                       "line %llu, column %zu: %s", (unsigned long long)x->err_line,
		                       col, what);
	return th_error_set_at(err, code, x->err_line, 0, "%s", what);
}

/* Open the archive and the workbook, and start the sheet. */
static int start(th_xlsx *x, th_error *err)
{
	int dupfd, zerr = 0, error;
	zip_error_t ze;
	struct stat st;

	/* libzip closes the descriptor it is given: it gets its own. */
	if (lseek(x->fd, 0, SEEK_CUR) < 0)
		return th_error_set(err, TH_EINVALID,
		                    "an Xlsx workbook must be read from a file, not a pipe");
	if (fstat(x->fd, &st) == 0 && st.st_size == 0) {
		x->done = 1; /* an empty file has no rows, as an empty CSV has none */
		return TH_OK;
	}
	if ((dupfd = dup(x->fd)) < 0)
		return th_error_set(err, TH_ESTORE, "cannot read the file: %s", strerror(errno));
	if ((x->zip = zip_fdopen(dupfd, ZIP_RDONLY, &zerr)) == NULL) {
		close(dupfd);
		if (zerr == ZIP_ER_MEMORY)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		if (zerr == ZIP_ER_NOZIP)
			return th_error_set(err, TH_EINVALID,
			                    "the file is not an Xlsx workbook (not a zip archive)");
		zip_error_init_with_code(&ze, zerr);
		error = th_error_set(err, TH_EINVALID, "the Xlsx workbook is damaged: %s",
		                     zip_error_strerror(&ze));
		zip_error_fini(&ze);
		return error;
	}
	if ((error = th_xlsx__book_load(&x->book, x->zip, x->sheet_opt, err)) < 0)
		return error;
	error = th_xlsx__part_open(&x->sheet, x->zip, x->book.sheet_part, TH_XLSX_SHEET_MAX, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_EINVALID,
		                    "the workbook is damaged: sheet '%s' is missing",
		                    x->book.sheet_name);
	return error;
}

/* --- cells ------------------------------------------------------------------------------------ */

/* Room for column `col` in the row's arrays (new ones NULL). */
static int grow(th_xlsx *x, size_t col, th_error *err)
{
	size_t ncap = x->cap ? x->cap : 64, i;
	size_t *o, *l;
	const char **c;

	while (ncap <= col)
		ncap *= 2;
	if (ncap == x->cap)
		return TH_OK;
	if ((o = realloc(x->offs, ncap * sizeof(*o))) != NULL)
		x->offs = o;
	if ((l = o ? realloc(x->lens, ncap * sizeof(*l)) : NULL) != NULL)
		x->lens = l;
	if ((c = l ? realloc(x->cells, ncap * sizeof(*c)) : NULL) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	x->cells = c;
	for (i = x->cap; i < ncap; i++)
		x->offs[i] = SIZE_MAX;
	x->cap = ncap;
	return TH_OK;
}

static int put_cell(th_xlsx *x, const char *s, size_t len, th_error *err)
{
	int error;

	if ((error = grow(x, x->col, err)) < 0)
		return error;
	x->offs[x->col] = x->store.size;
	x->lens[x->col] = len;
	if ((error = th_buf_put(&x->store, s, len, err)) < 0 ||
	    (error = th_buf_putc(&x->store, '\0', err)) < 0)
		return error;
	if (x->store.size > ROW_MAX)
		return fail(x, err, TH_EINVALID, x->col + 1,
		            "the row holds more than 64 MiB of text");
	if (x->col + 1 > x->n)
		x->n = x->col + 1;
	return TH_OK;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted). */
static void civil(int64_t z, int *y, int *m, int *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yy + (*m <= 2));
}

/* A serial date-time as text by `kind`; 0 when it is out of range (then it stays a number). */
static size_t serial_text(char *out, size_t size, double v, int kind, int date1904)
{
	int64_t ms, days, sec;
	int y, m, d, n;
	char frac[8] = "";

	if (!(v >= 0) || v >= 2958466) /* 9999-12-31 is the last day Excel has */
		return 0;
	ms = llround(v * 86400000.0);
	days = ms / 86400000;
	ms %= 86400000;
	sec = ms / 1000;
	if (ms % 1000)
		snprintf(frac, sizeof(frac), ".%03d", (int)(ms % 1000));
	if (kind == TH_XLSX_TIME) /* elapsed hours may pass 24 ([h]:mm:ss) */
		n = snprintf(out, size, "%02lld:%02d:%02d%s", (long long)(days * 24 + sec / 3600),
		             (int)(sec / 60 % 60), (int)(sec % 60), frac);
	else {
		/* 1900: serial 1 is 1900-01-01, and Excel counts a 1900-02-29 (serial 60) that
		 * never was, so from serial 61 the days are one fewer. 1904: serial 0 is
		 * 1904-01-01. */
		civil(date1904    ? days - 24107
		      : days < 61 ? days - 25568
		                  : days - 25569,
		      &y, &m, &d);
		if (kind == TH_XLSX_DATE && ms == 0)
			n = snprintf(out, size, "%04d-%02d-%02d", y, m, d);
		else
			n = snprintf(out, size, "%04d-%02d-%02d %02d:%02d:%02d%s", y, m, d,
			             (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60),
			             frac);
	}
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* The cell just read, as text by its type and style. */
static int end_cell(th_xlsx *x, th_error *err)
{
	const char *v = x->val.ptr ? x->val.ptr : "", *t = x->type;
	char text[64], *end;
	size_t n;

	if (!x->have_val)
		return TH_OK; /* a cell with only a style: NULL */
	if (strcmp(t, "s") == 0) {
		unsigned long long i = strtoull(v, &end, 10);
		if (end == v || *end != '\0' || i >= x->book.nsst)
			return fail(x, err, TH_EINVALID, x->col + 1,
			            "the workbook is damaged: a cell refers to a missing shared "
			            "string");
		n = (i + 1 < x->book.nsst ? x->book.sst_off[i + 1] : x->book.sst.size) -
		    x->book.sst_off[i] - 1;
		return put_cell(x, x->book.sst.ptr + x->book.sst_off[i], n, err);
	}
	if (strcmp(t, "b") == 0 && (strcmp(v, "0") == 0 || strcmp(v, "1") == 0))
		return put_cell(x, v[0] == '1' ? "true" : "false", v[0] == '1' ? 4 : 5, err);
	if (t[0] == '\0' || strcmp(t, "n") == 0) {
		double d = strtod(v, &end);
		if (end != v && *end == '\0' && isfinite(d)) {
			int kind = x->style >= 0 && (size_t)x->style < x->book.nxf
			                   ? x->book.xf_kind[x->style]
			                   : TH_XLSX_GENERAL;
			n = kind != TH_XLSX_GENERAL
			            ? serial_text(text, sizeof(text), d, kind, x->book.date1904)
			            : 0;
			if (n == 0)
				n = th_real_format(text, d);
			return put_cell(x, text, n, err);
		}
	}
	/* inline and formula strings, errors (#N/A), ISO dates (t="d"), and what is not a number */
	return put_cell(x, v, x->val.size, err);
}

/* Column of a cell reference ("AB12" -> 27), or -1 if it has none. */
static long ref_column(const char *ref)
{
	long col = 0;

	for (; (*ref >= 'A' && *ref <= 'Z') || (*ref >= 'a' && *ref <= 'z'); ref++) {
		col = col * 26 + ((*ref | 0x20) - 'a' + 1);
		if (col > TH_XLSX_MAX_COLUMNS)
			return TH_XLSX_MAX_COLUMNS;
	}
	return col - 1;
}

static int begin_cell(th_xlsx *x, th_error *err)
{
	char ref[32], s[24];
	long col;

	/* a cell without its reference is the one after the cell before it */
	col = th_xlsx__attr(x->sheet, "r", ref, sizeof(ref)) ? ref_column(ref) : -1;
	x->col = col >= 0 ? (size_t)col : (size_t)(x->last + 1);
	x->last = (long)x->col;
	if (x->col >= TH_XLSX_MAX_COLUMNS)
		return fail(x, err, TH_EINVALID, 0, "a cell lies past the last column (XFD)");
	if (th_xlsx__attr(x->sheet, "t", x->type, sizeof(x->type)) == NULL)
		x->type[0] = '\0';
	x->style = th_xlsx__attr(x->sheet, "s", s, sizeof(s)) ? strtol(s, NULL, 10) : 0;
	th_buf_clear(&x->val);
	x->have_val = x->in_v = x->in_is = x->in_t = x->in_rph = 0;
	return TH_OK;
}

/* --- rows ------------------------------------------------------------------------------------- */

static void begin_row(th_xlsx *x)
{
	char r[24];
	size_t i;

	x->row = th_xlsx__attr(x->sheet, "r", r, sizeof(r)) ? strtoull(r, NULL, 10) : x->row + 1;
	for (i = 0; i < x->n; i++)
		x->offs[i] = SIZE_MAX;
	x->n = 0;
	x->last = -1;
	th_buf_clear(&x->store);
}

/* Hand out the row read: the header sets the width; later rows are padded to it. */
static int emit_row(th_xlsx *x, th_reader_row *row, th_error *err)
{
	size_t n = x->n, i;
	int error;

	if (x->width == 0)
		x->width = n;
	if (n < x->width)
		n = x->width;
	if ((error = grow(x, n, err)) < 0)
		return error;
	for (i = 0; i < n; i++) {
		int null = x->offs[i] == SIZE_MAX;
		x->cells[i] = null ? NULL : x->store.ptr + x->offs[i];
		if (null)
			x->lens[i] = 0;
	}
	row->n = n;
	row->cells = x->cells;
	row->lens = x->lens;
	row->line = x->row;
	return 1;
}

static int xlsx_next(th_reader *r, th_reader_row *row, th_error *err)
{
	th_xlsx *x = (th_xlsx *)r;
	const char *node;
	int rc, t;

	if (!x->started) {
		x->started = 1;
		if ((rc = start(x, err)) < 0) {
			x->done = 1;
			x->err_line = 1;
			if (err)
				err->line = 1;
			return rc;
		}
	}
	while (!x->done) {
		if ((rc = th_xlsx__part_read(x->sheet, err)) <= 0) {
			x->done = 1;
			if (rc < 0) {
				x->err_line = x->row ? x->row : 1;
				if (err)
					err->line = x->err_line;
			}
			return rc;
		}
		t = th_xlsx__node(x->sheet, &node);
		if (t == 3) {
			const char *s = (const char *)xmlTextReaderConstValue(x->sheet->xr);
			if ((x->in_v || (x->in_t && !x->in_rph)) && s != NULL &&
			    (rc = th_buf_puts(&x->val, s, err)) < 0)
				return rc;
			continue;
		}
		if (t == 1) {
			int empty = xmlTextReaderIsEmptyElement(x->sheet->xr) == 1;
			if (strcmp(node, "row") == 0) {
				begin_row(x);
			} else if (strcmp(node, "c") == 0) {
				if ((rc = begin_cell(x, err)) < 0)
					return rc;
			} else if (strcmp(node, "v") == 0 && !empty) {
				x->in_v = x->have_val = 1;
			} else if (strcmp(node, "is") == 0) {
				x->in_is = !empty;
				x->have_val = 1; /* an inline string, even an empty one */
			} else if (strcmp(node, "t") == 0 && x->in_is && !empty) {
				x->in_t = 1;
			} else if (strcmp(node, "rPh") == 0 && !empty) {
				x->in_rph = 1;
			}
			/* <row/> and <c/> have no end: an empty row is skipped, a bare cell is NULL
			 */
			continue;
		}
		if (t != 2)
			continue;
		if (strcmp(node, "v") == 0) {
			x->in_v = 0;
		} else if (strcmp(node, "t") == 0) {
			x->in_t = 0;
		} else if (strcmp(node, "rPh") == 0) {
			x->in_rph = 0;
		} else if (strcmp(node, "is") == 0) {
			x->in_is = 0;
		} else if (strcmp(node, "c") == 0) {
			if ((rc = end_cell(x, err)) < 0)
				return rc;
		} else if (strcmp(node, "row") == 0) {
			if (x->n > 0) /* a row without cells (or only styled ones) is skipped */
				return emit_row(x, row, err);
		} else if (strcmp(node, "sheetData") == 0) {
			x->done = 1;
		}
	}
	return 0;
}

const th_reader_type th_reader_xlsx = {
	xlsx_open, xlsx_next, xlsx_error_pos, xlsx_bytes, xlsx_close,
};
