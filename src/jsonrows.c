/* jsonrows.c: the reader of JSON rows: th_reader_jsonrows (see reader.h).
 *
 * Accepts DoltHub's upload form {"rows":[{"col":value,...},...]} (other top-level keys are
 * skipped), a top-level array of objects, and JSON lines (one object per line, or any whitespace
 * between objects). The first record returned is a header made of the keys of all rows (the first
 * row's in their order, then each new key where it first appears, as pandas and DuckDB do; found
 * by a first pass over the file, which is on disk), or of the `columns` option when given (rows may
 * then give any subset of them, and a key outside them is an error); every row then comes back
 * with its cells in that order, a missing key as NULL. Cells are the values' text: strings
 * unescaped, numbers as written, true/false, null as NULL, nested objects and arrays as their JSON
 * text. Errors (malformed JSON, a row that is not an object, a key outside the given columns, a
 * key given twice, invalid UTF-8) name the line and the column, the column being the byte on the
 * line. Read from a pipe, which cannot be read twice, the columns are the first row's keys and a
 * later row's new key is an error.
 *
 * A small recursive-descent parser over a refilled byte buffer: it holds one row at a time, never
 * the document, so a 100 MB upload costs a few hundred KB. The top level decides the form: `{`
 * whose first key is "rows" with an array value is DoltHub's wrapper; `[` is an array of rows; any
 * other object is the first of JSON lines. Nesting inside a cell is kept as JSON text and bounded
 * in depth, so no input can exhaust the stack.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/text.h"
#include "tablehub/buf.h"
#include "tablehub/reader.h"

#define BLOCK (256u << 10)
#define MAX_DEPTH 64

enum { M_START, M_ARRAY, M_WRAPPER, M_LINES, M_DONE };

typedef struct th_jsonrows {
	th_reader base; /* first: the reader interface */
	int fd;
	unsigned char *buf;
	size_t len, pos;
	int eof;
	uint64_t bytes;
	uint64_t line, col; /* of the next byte */
	int mode;
	size_t nrows; /* rows parsed */
	/* the header: the first row's keys */
	char **names;
	size_t *namelens;
	size_t ncols;
	int first_pending; /* the first row is parsed and waits behind the header */
	int fixed;         /* the columns were given: rows add none */
	int scanned;       /* the keys of all rows were collected (or could not be: a pipe) */
	int collecting;    /* the first pass: every row's new keys become columns */
	/* the current row */
	th_buf store; /* cell texts, each NUL-terminated */
	size_t *offs; /* offset in store per column, SIZE_MAX for NULL or missing */
	size_t *lens;
	const char **cells;
	uint64_t row_line;
	th_buf key;
	uint64_t err_line; /* where the last TH_EINVALID was found, 0 if none */
	uint32_t err_col;
} th_jsonrows;

extern const th_reader_type
        th_reader_jsonrows; /* the reader's functions, at the end of this file */

static void jsonrows_close(th_reader *rd)
{
	th_jsonrows *r = (th_jsonrows *)rd;
	size_t i;

	for (i = 0; i < r->ncols; i++)
		free(r->names[i]);
	free(r->names);
	free(r->namelens);
	free(r->offs);
	free(r->lens);
	free(r->cells);
	th_buf_dispose(&r->store);
	th_buf_dispose(&r->key);
	free(r->buf);
	free(r);
}

static uint64_t jsonrows_bytes(const th_reader *rd)
{
	return ((const th_jsonrows *)rd)->bytes;
}

static void jsonrows_error_pos(const th_reader *rd, uint64_t *line, uint32_t *column)
{
	const th_jsonrows *r = (const th_jsonrows *)rd;

	*line = r->err_line;
	*column = r->err_col;
}

static int bad(th_jsonrows *r, th_error *err, const char *what)
{
	r->err_line = r->line;
	r->err_col = (uint32_t)r->col;
	return th_error_set_at(err, TH_EINVALID, r->line, (uint32_t)r->col,
	                       "line %llu, column %llu: %s", (unsigned long long)r->line,
	                       (unsigned long long)r->col, what);
}

/* The next byte without taking it: 0-255, -1 at the end, or TH_ESTORE (negative, < -1). */
static int peek(th_jsonrows *r, th_error *err)
{
	ssize_t n;

	while (r->pos >= r->len) {
		if (r->eof)
			return -1;
		n = read(r->fd, r->buf, BLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return th_error_set(err, TH_ESTORE, "cannot read the file: %s",
			                    strerror(errno));
		if (n == 0) {
			r->eof = 1;
			return -1;
		}
		r->len = (size_t)n;
		r->pos = 0;
		r->bytes += (uint64_t)n;
		if (r->bytes == (uint64_t)n && th_reader_looks_utf16(r->buf, (size_t)n))
			return bad(r, err, TH_READER_UTF16_MSG);
		if (r->bytes == (uint64_t)n && n >= 3 && memcmp(r->buf, "\xef\xbb\xbf", 3) == 0)
			r->pos = 3; /* a UTF-8 BOM */
	}
	return r->buf[r->pos];
}

static void take(th_jsonrows *r)
{
	if (r->buf[r->pos++] == '\n') {
		r->line++;
		r->col = 1;
	} else {
		r->col++;
	}
}

/* Skip whitespace; return the next byte (not taken), -1 at the end, or an error (< -1). */
static int ws(th_jsonrows *r, th_error *err)
{
	int c;

	while ((c = peek(r, err)) == ' ' || c == '\t' || c == '\n' || c == '\r')
		take(r);
	return c;
}

static int expect(th_jsonrows *r, int want, const char *what, th_error *err)
{
	int c = ws(r, err);

	if (c < -1)
		return c;
	if (c != want)
		return bad(r, err, what);
	take(r);
	return TH_OK;
}

static int hex4(th_jsonrows *r, unsigned *out, th_error *err)
{
	unsigned v = 0;
	int i, c;

	for (i = 0; i < 4; i++) {
		if ((c = peek(r, err)) < -1)
			return c;
		if (c >= '0' && c <= '9')
			v = v * 16 + (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (unsigned)(c - 'A' + 10);
		else
			return bad(r, err, "bad \\u escape in a string");
		take(r);
	}
	*out = v;
	return TH_OK;
}

static int put_utf8(th_buf *b, unsigned cp, th_error *err)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return th_buf_put(b, u, n, err);
}

/* A string (the opening quote next) appended unescaped to `out`; with `raw` it is appended as JSON
 * text instead (quotes and escapes kept). */
static int string(th_jsonrows *r, th_buf *out, int raw, th_error *err)
{
	size_t start = out->size, bad_at;
	unsigned cp, lo;
	int c, error;

	take(r); /* the quote */
	if (raw && (error = th_buf_putc(out, '"', err)) < 0)
		return error;
	for (;;) {
		if ((c = peek(r, err)) < -1)
			return c;
		if (c == -1)
			return bad(r, err, "unterminated string");
		if (c < 0x20)
			return bad(r, err, "control character in a string (escape it)");
		take(r);
		if (c == '"')
			break;
		if (c != '\\' || raw) {
			if ((error = th_buf_putc(out, (char)c, err)) < 0)
				return error;
			if (c == '\\') { /* raw: keep the escape and the byte after it */
				if ((c = peek(r, err)) < -1)
					return c;
				if (c == -1)
					return bad(r, err, "unterminated string");
				take(r);
				if ((error = th_buf_putc(out, (char)c, err)) < 0)
					return error;
			}
			continue;
		}
		if ((c = peek(r, err)) < -1)
			return c;
		if (c == -1)
			return bad(r, err, "unterminated string");
		take(r);
		switch (c) {
		case '"':
		case '\\':
		case '/':
			error = th_buf_putc(out, (char)c, err);
			break;
		case 'b':
			error = th_buf_putc(out, '\b', err);
			break;
		case 'f':
			error = th_buf_putc(out, '\f', err);
			break;
		case 'n':
			error = th_buf_putc(out, '\n', err);
			break;
		case 'r':
			error = th_buf_putc(out, '\r', err);
			break;
		case 't':
			error = th_buf_putc(out, '\t', err);
			break;
		case 'u':
			if ((error = hex4(r, &cp, err)) < 0)
				return error;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return bad(r, err, "lone low surrogate in a \\u escape");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (peek(r, err) != '\\')
					return bad(r, err, "lone high surrogate in a \\u escape");
				take(r);
				if (peek(r, err) != 'u')
					return bad(r, err, "lone high surrogate in a \\u escape");
				take(r);
				if ((error = hex4(r, &lo, err)) < 0)
					return error;
				if (lo < 0xdc00 || lo > 0xdfff)
					return bad(r, err, "lone high surrogate in a \\u escape");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			error = put_utf8(out, cp, err);
			break;
		default:
			return bad(r, err, "bad escape in a string");
		}
		if (error < 0)
			return error;
	}
	if (raw && (error = th_buf_putc(out, '"', err)) < 0)
		return error;
	/* (an empty string may leave the buffer unallocated: nothing to check) */
	if (out->size > start && !th_utf8_valid(out->ptr + start, out->size - start, &bad_at))
		return bad(r, err, "invalid UTF-8 in a string");
	return TH_OK;
}

/* A literal or a number appended as written; checks JSON's number grammar. */
static int scalar(th_jsonrows *r, th_buf *out, th_error *err)
{
	size_t start = out->size, i, n;
	const char *s;
	int c, error;

	while ((c = peek(r, err)) >= 0 && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	                                   c == '-' || c == '+' || c == '.' || c == 'E')) {
		take(r);
		if ((error = th_buf_putc(out, (char)c, err)) < 0)
			return error;
		if (out->size - start > 400)
			return bad(r, err, "value too long");
	}
	if (c < -1)
		return c;
	if ((n = out->size - start) == 0)
		return bad(r, err, "expected a value"); /* (and the buffer may be unallocated) */
	s = out->ptr + start;
	if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0) ||
	    (n == 4 && memcmp(s, "null", 4) == 0))
		return TH_OK;
	/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
	i = n && s[0] == '-';
	if (i >= n || s[i] < '0' || s[i] > '9')
		return bad(r, err, "expected a value");
	if (s[i] == '0')
		i++;
	else
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	if (i < n && s[i] == '.') {
		if (++i >= n || s[i] < '0' || s[i] > '9')
			return bad(r, err, "bad number");
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return bad(r, err, "bad number");
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i == n ? TH_OK : bad(r, err, "bad number");
}

/* Any value appended to `out` as compact JSON text (nested objects and arrays). */
static int value_json(th_jsonrows *r, th_buf *out, int depth, th_error *err)
{
	int c = ws(r, err), close, first = 1, error;

	if (c < -1)
		return c;
	if (c == '"')
		return string(r, out, 1, err);
	if (c != '{' && c != '[')
		return scalar(r, out, err);
	if (depth >= MAX_DEPTH)
		return bad(r, err, "values nested too deeply");
	close = c == '{' ? '}' : ']';
	take(r);
	if ((error = th_buf_putc(out, (char)c, err)) < 0)
		return error;
	for (;;) {
		if ((c = ws(r, err)) < -1)
			return c;
		if (c == close && first) {
			take(r);
			break;
		}
		if (!first) {
			if (c == close) {
				take(r);
				break;
			}
			if (c != ',')
				return bad(r, err,
				           close == '}' ? "expected ',' or '}'"
				                        : "expected ',' or ']'");
			take(r);
			if ((error = th_buf_putc(out, ',', err)) < 0 || (c = ws(r, err)) < -1)
				return error < 0 ? error : c;
		}
		first = 0;
		if (close == '}') {
			if (c != '"')
				return bad(r, err, "expected a key string");
			if ((error = string(r, out, 1, err)) < 0 ||
			    (error = expect(r, ':', "expected ':'", err)) < 0 ||
			    (error = th_buf_putc(out, ':', err)) < 0)
				return error;
		}
		if ((error = value_json(r, out, depth + 1, err)) < 0)
			return error;
	}
	return th_buf_putc(out, (char)close, err);
}

/* One cell's value: its text in the store, or NULL (offset SIZE_MAX). */
static int cell(th_jsonrows *r, size_t *off, size_t *len, th_error *err)
{
	size_t start = r->store.size;
	int c = ws(r, err), error;

	if (c < -1)
		return c;
	if (c == '"')
		error = string(r, &r->store, 0, err);
	else if (c == '{' || c == '[')
		error = value_json(r, &r->store, 1, err);
	else
		error = scalar(r, &r->store, err);
	if (error < 0)
		return error;
	if (r->store.size - start == 4 && c == 'n') { /* null */
		r->store.size = start;
		*off = SIZE_MAX;
		*len = 0;
		return TH_OK;
	}
	*off = start;
	*len = r->store.size - start;
	return th_buf_putc(&r->store, '\0', err);
}

static int grow_cols(th_jsonrows *r, size_t n, th_error *err)
{
	size_t *o = realloc(r->offs, n * sizeof(*o)), *l;
	const char **c;

	if (o)
		r->offs = o;
	l = o ? realloc(r->lens, n * sizeof(*l)) : NULL;
	if (l)
		r->lens = l;
	c = l ? realloc(r->cells, n * sizeof(*c)) : NULL;
	if (c == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	r->cells = c;
	return TH_OK;
}

/* Add column `name` (the first row's keys make the header). */
static int add_column(th_jsonrows *r, const char *name, size_t len, th_error *err)
{
	char **n = realloc(r->names, (r->ncols + 1) * sizeof(*n));
	size_t *nl;
	int error;

	if (n == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	r->names = n;
	if ((nl = realloc(r->namelens, (r->ncols + 1) * sizeof(*nl))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	r->namelens = nl;
	if ((error = grow_cols(r, r->ncols + 1, err)) < 0)
		return error;
	if ((r->names[r->ncols] = malloc(len + 1)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	memcpy(r->names[r->ncols], name, len + 1);
	r->namelens[r->ncols] = len;
	r->offs[r->ncols] = SIZE_MAX;
	r->ncols++;
	return TH_OK;
}

/* Take the columns from `names` (n of them, copied) instead of the first row's keys. */
static int set_columns(th_jsonrows *r, const char *const *names, size_t n, th_error *err)
{
	size_t i;
	int error;

	for (i = 0; i < n; i++)
		if ((error = add_column(r, names[i], strlen(names[i]), err)) < 0)
			return error;
	r->fixed = 1;
	return TH_OK;
}

static int jsonrows_open(th_reader **out, int fd, const th_reader_opts *opts, th_error *err)
{
	th_jsonrows *r = calloc(1, sizeof(*r));
	int error;

	if (r == NULL || (r->buf = malloc(BLOCK)) == NULL) {
		free(r);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	r->base.type = &th_reader_jsonrows;
	r->fd = fd;
	r->line = 1;
	r->col = 1;
	if (opts->ncolumns > 0 &&
	    (error = set_columns(r, opts->columns, opts->ncolumns, err)) < 0) {
		jsonrows_close(&r->base);
		return error;
	}
	*out = &r->base;
	return TH_OK;
}

/* The members of a row object, after its '{' (and, for the first of JSON lines, after a first key
 * already read into r->key: have_key). */
static int members(th_jsonrows *r, int have_key, th_error *err)
{
	int first = !have_key, c, error;
	size_t i, col;

	for (i = 0; i < r->ncols; i++)
		r->offs[i] = SIZE_MAX;
	th_buf_clear(&r->store);
	for (;;) {
		if (!have_key) {
			if ((c = ws(r, err)) < -1)
				return c;
			if (c == '}' && first) {
				take(r);
				break;
			}
			if (!first) {
				if (c == '}') {
					take(r);
					break;
				}
				if (c != ',')
					return bad(r, err, "expected ',' or '}' after a value");
				take(r);
				if ((c = ws(r, err)) < -1)
					return c;
			}
			if (c != '"')
				return bad(r, err, "expected a key string");
			th_buf_clear(&r->key);
			if ((error = string(r, &r->key, 0, err)) < 0 ||
			    (error = expect(r, ':', "expected ':' after a key", err)) < 0)
				return error;
		}
		have_key = 0;
		first = 0;
		for (col = 0; col < r->ncols; col++)
			if (r->namelens[col] == r->key.size &&
			    memcmp(r->names[col], r->key.ptr ? r->key.ptr : "", r->key.size) == 0)
				break;
		if (col == r->ncols) {
			if (!r->collecting && (r->nrows > 0 || r->fixed)) {
				char msg[240];
				snprintf(msg, sizeof(msg),
				         r->fixed
				                 ? "key '%.64s' is not a column of the table"
				                 : "key '%.64s' is not a column (read from a pipe, "
				                   "the columns are the first row's keys: give the "
				                   "rows as a file)",
				         r->key.ptr ? r->key.ptr : "");
				return bad(r, err, msg);
			}
			if ((error = add_column(r, r->key.ptr ? r->key.ptr : "", r->key.size,
			                        err)) < 0)
				return error;
		} else if (r->offs[col] != SIZE_MAX) {
			/* Seen in this row already (a NULL given is marked SIZE_MAX - 1). */
			char msg[200];
			snprintf(msg, sizeof(msg), "key '%.64s' given twice in one row",
			         r->key.ptr ? r->key.ptr : "");
			return bad(r, err, msg);
		}
		if ((error = cell(r, &r->offs[col], &r->lens[col], err)) < 0)
			return error;
		if (r->offs[col] == SIZE_MAX)
			r->offs[col] = SIZE_MAX - 1; /* a NULL that was given: seen */
	}
	r->nrows++;
	return TH_OK;
}

/* Parse the next row into the current-row state. Returns 1, 0 at the end, or an error. */
static int next_row(th_jsonrows *r, th_error *err)
{
	int c, error, have_key = 0;

	c = ws(r, err);
	if (c < -1)
		return c;
	if (r->mode == M_START) {
		if (c == -1)
			return 0;
		if (c == '[') {
			take(r);
			r->mode = M_ARRAY;
			c = ws(r, err);
		} else if (c == '{') {
			r->row_line = r->line;
			take(r);
			if ((c = ws(r, err)) < -1)
				return c;
			if (c != '"')
				return bad(r, err,
				           c == '}' ? "the first row has no keys"
				                    : "expected a key string");
			th_buf_clear(&r->key);
			if ((error = string(r, &r->key, 0, err)) < 0 ||
			    (error = expect(r, ':', "expected ':' after a key", err)) < 0 ||
			    (c = ws(r, err)) < -1)
				return error < 0 ? error : c;
			if (r->key.size == 4 && memcmp(r->key.ptr, "rows", 4) == 0 && c == '[') {
				take(r);
				r->mode = M_WRAPPER;
				c = ws(r, err);
			} else {
				r->mode = M_LINES;
				have_key = 1;
			}
		} else {
			return bad(r, err,
			           "expected '{' or '[': upload {\"rows\":[...]}, an array of "
			           "rows, or one JSON object per line");
		}
		if (c < -1)
			return c;
	}
	if (have_key) /* the first of JSON lines, its first key read */
		return (error = members(r, 1, err)) < 0 ? error : 1;
	if (r->mode == M_LINES) {
		if (c == -1)
			return 0;
		if (c != '{')
			return bad(r, err, "expected '{' to start the next row");
		r->row_line = r->line;
		take(r);
		return (error = members(r, 0, err)) < 0 ? error : 1;
	}
	if (r->mode == M_ARRAY || r->mode == M_WRAPPER) {
		if (c == ']') {
			take(r);
			if (r->mode == M_WRAPPER) { /* skip the wrapper's other members */
				th_buf skip = TH_BUF_INIT;
				for (;;) {
					if ((c = ws(r, err)) < -1)
						break;
					if (c == '}') {
						take(r);
						break;
					}
					if (c != ',') {
						c = bad(r, err, "expected ',' or '}'");
						break;
					}
					take(r);
					th_buf_clear(&skip);
					if ((c = ws(r, err)) != '"') {
						c = c < -1 ? c
						           : bad(r, err, "expected a key string");
						break;
					}
					if ((c = string(r, &skip, 0, err)) < 0 ||
					    (c = expect(r, ':', "expected ':'", err)) < 0 ||
					    (c = value_json(r, &skip, 1, err)) < 0)
						break;
				}
				th_buf_dispose(&skip);
				if (c < -1)
					return c;
			}
			if ((c = ws(r, err)) < -1)
				return c;
			if (c != -1)
				return bad(r, err, "unexpected text after the rows");
			r->mode = M_DONE;
			return 0;
		}
		if (r->nrows > 0) {
			if (c != ',')
				return bad(r, err, "expected ',' or ']' after a row");
			take(r);
			if ((c = ws(r, err)) < -1)
				return c;
		}
		if (c != '{')
			return bad(r, err, "each row must be a JSON object");
		r->row_line = r->line;
		take(r);
		return (error = members(r, 0, err)) < 0 ? error : 1;
	}
	return 0;
}

/* Point the row's cells into the store. */
static void fill(th_jsonrows *r, th_reader_row *row)
{
	size_t i;

	for (i = 0; i < r->ncols; i++) {
		int null = r->offs[i] >= SIZE_MAX - 1;
		r->cells[i] = null ? NULL : r->store.ptr + r->offs[i];
		if (null)
			r->lens[i] = 0;
	}
	row->n = r->ncols;
	row->cells = r->cells;
	row->lens = r->lens;
	row->line = r->row_line;
}

/* The first pass: read every row once to collect the keys of all of them as the columns (the
 * first row's in their order, then each new key where it first appears), then go back to the
 * start. A descriptor that cannot seek (a pipe) is read once: its columns are the first row's
 * keys. Malformed input ends the pass quietly: the second pass reports it, at the same place. */
static int collect_keys(th_jsonrows *r, th_error *err)
{
	off_t start = lseek(r->fd, 0, SEEK_CUR);
	int rc;

	r->scanned = 1;
	if (start < 0)
		return TH_OK;
	r->collecting = 1;
	while ((rc = next_row(r, err)) == 1)
		;
	r->collecting = 0;
	if (rc < 0 && rc != TH_EINVALID)
		return rc;
	if (lseek(r->fd, start, SEEK_SET) < 0)
		return th_error_set(err, TH_ESTORE, "cannot read the file again: %s",
		                    strerror(errno));
	th_error_clear(err);
	r->len = r->pos = 0;
	r->eof = 0;
	r->bytes = 0;
	r->line = r->col = 1;
	r->mode = M_START;
	r->nrows = 0;
	r->err_line = 0;
	r->err_col = 0;
	return TH_OK;
}

static int jsonrows_next(th_reader *rd, th_reader_row *row, th_error *err)
{
	th_jsonrows *r = (th_jsonrows *)rd;
	int error;

	if (!r->scanned && !r->fixed && (error = collect_keys(r, err)) < 0)
		return error;
	if (r->first_pending) {
		r->first_pending = 0;
		fill(r, row);
		return 1;
	}
	if ((error = next_row(r, err)) <= 0)
		return error;
	if (r->nrows == 1) {
		if (r->ncols == 0) {
			r->err_line = r->row_line;
			r->err_col = 1;
			return th_error_set_at(err, TH_EINVALID, r->row_line, 1,
			                       "line %llu: the first row has no keys",
			                       (unsigned long long)r->row_line);
		}
		/* The header first, made of the first row's keys; the row itself next time. */
		r->first_pending = 1;
		row->n = r->ncols;
		row->cells = (const char *const *)r->names;
		row->lens = r->namelens;
		row->line = r->row_line;
		return 1;
	}
	fill(r, row);
	return 1;
}

const th_reader_type th_reader_jsonrows = {
	jsonrows_open, jsonrows_next, jsonrows_error_pos, jsonrows_bytes, jsonrows_close,
};
