/* chunkbody.c: the bytes a chunk blob holds (value.h), in two formats.
 *
 * Format 1 is the row lines themselves, each ending in '\n', so every such blob starts with '['.
 * Format 2 holds the same lines column by column, which deflate compresses far better (the values
 * of one column look alike), and spells a column's type once instead of once per cell:
 *
 *   #2 <rows> <modes>\n     a letter per column: its mode
 *   <rows> lines            the cells of the first column, one a line (JSON has no raw newline)
 *   <rows> lines            the second column, and so on
 *
 * Modes: 'j' the cell's JSON text as it is; 's' every cell a string or null: the string without
 * its quotes (still escaped), null as a lone backslash (no escaped string is one); 'i' every cell
 * an integer in canonical form (no leading zero, no "-0", int64) or null: its difference from the
 * column's previous integer (the first from 0; modulo 2^64, written as a signed decimal), null as
 * an empty line. Rows are in key order within a chunk, so an integer key column becomes a column of
 * small numbers.
 *
 * Decoding gives back the exact lines. Lines that do not have the row encoder's shape (a JSON
 * array without whitespace, the same number of cells on every line) are kept in format 1.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/value.h"

#define CAN_S 1u /* every cell so far a string or null */
#define CAN_I 2u /* every cell so far a canonical integer or null */

/* The length of the cell starting at p (a JSON string, or text up to ',' or ']'), or 0 if the line
 * ends inside it. */
static size_t cell_len(const char *p, const char *end)
{
	const char *q = p;

	if (*q == '"') {
		/* The closing quote is the first one not escaped: not after an odd run of
		 * backslashes (memchr finds the quotes; the run stops at the segment's start, which
		 * follows the opening quote or an escaped one). */
		for (q++;;) {
			const char *e = memchr(q, '"', (size_t)(end - q)), *b;

			if (e == NULL)
				return 0;
			for (b = e; b > q && b[-1] == '\\'; b--)
				;
			if ((e - b) % 2 == 0)
				return (size_t)(e + 1 - p);
			q = e + 1;
		}
	}
	while (q < end && *q != ',' && *q != ']' && *q != '"')
		q++;
	return (size_t)(q - p);
}

/* Is s[0..len) an integer as the row encoder writes one (int64, canonical)? Its value into *v. */
static int canonical_int(uint64_t *v, const char *s, size_t len)
{
	size_t neg = len > 0 && s[0] == '-', i;
	uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

	if (len == neg || len - neg > 19 || (s[neg] == '0' && (len - neg > 1 || neg)))
		return 0;
	for (i = neg; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		m = m * 10 + (uint64_t)(s[i] - '0');
	}
	if (m > lim) /* 19 digits cannot overflow 64 bits */
		return 0;
	*v = neg ? (uint64_t)0 - m : m;
	return 1;
}

/* Write the signed (two's complement) value of v at d; returns the end. */
static char *put_int(char *d, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	if (v >> 63) {
		*d++ = '-';
		v = (uint64_t)0 - v;
	}
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*d++ = tmp[--n];
	return d;
}

/* Make room for `need` more bytes at the end of b (th_buf_grow only when short). */
static inline int reserve(th_buf *b, size_t need, th_error *err)
{
	return b->asize - b->size > need ? TH_OK : th_buf_grow(b, need, err);
}

/* The row lines in body[0..len): do they all have the encoder's shape with the same number of
 * cells? Sets *nrows and the column modes (malloc'd, NUL-terminated, a letter a column) when so.
 * Returns 1, 0 (not that shape) or TH_ENOMEM. */
static int scan_lines(size_t *nrows, char **modes, const char *body, size_t len, th_error *err)
{
	const char *p = body, *end = body + len;
	unsigned char *f = NULL;
	size_t rows = 0, cols = 0, j;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *close;

		if (eol == NULL || eol - p < 3 || *p != '[' || eol[-1] != ']')
			goto no;
		close = eol - 1;
		for (j = 0, p++;; j++) {
			size_t n = cell_len(p, close);
			uint64_t v;

			if (n == 0 || (p + n != close && p[n] != ','))
				goto no;
			if (rows == 0) {
				unsigned char *g = realloc(f, j + 2);
				if (g == NULL)
					goto nomem;
				f = g;
				f[j] = CAN_S | CAN_I;
			} else if (j >= cols) {
				goto no;
			}
			if (n != 4 || memcmp(p, "null", 4) != 0) {
				if (*p != '"')
					f[j] &= (unsigned char)~CAN_S;
				if ((f[j] & CAN_I) && !canonical_int(&v, p, n))
					f[j] &= (unsigned char)~CAN_I;
			}
			p += n;
			if (p++ == close)
				break;
		}
		if (rows == 0)
			cols = j + 1;
		else if (j + 1 != cols)
			goto no;
		rows++;
		p = eol + 1;
	}
	if (rows == 0)
		goto no;
	for (j = 0; j < cols; j++)
		f[j] = (f[j] & CAN_I) ? 'i' : (f[j] & CAN_S) ? 's' : 'j';
	f[cols] = '\0';
	*nrows = rows;
	*modes = (char *)f;
	return 1;
no:
	free(f);
	return 0;
nomem:
	free(f);
	return th_error_set(err, TH_ENOMEM, "out of memory encoding a chunk");
}

int th_chunk_body_encode(th_buf *out, const char *lines, size_t len, th_error *err)
{
	const char *end = lines + len, **cur = NULL;
	char *modes = NULL;
	size_t nrows = 0, r, j;
	int error;

	if ((error = scan_lines(&nrows, &modes, lines, len, err)) < 0)
		return error;
	if (error == 0)
		return th_buf_put(out, lines, len, err);
	if ((cur = malloc(nrows * sizeof(*cur))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory encoding a chunk");
		goto cleanup;
	}
	/* Row r's next cell is at cur[r]; a column is the next cell of every row. */
	for (r = 0, cur[0] = lines + 1; r + 1 < nrows; r++)
		cur[r + 1] = (const char *)memchr(cur[r], '\n', (size_t)(end - cur[r])) + 2;
	if ((error = th_buf_printf(out, err, "#2 %zu %s\n", nrows, modes)) < 0 ||
	    (error = th_buf_grow(out, len, err)) < 0)
		goto cleanup;
	for (j = 0; modes[j]; j++) {
		uint64_t prev = 0, v = 0;

		for (r = 0; r < nrows; r++) {
			const char *p = cur[r];
			size_t n = cell_len(p, end);
			int null = n == 4 && memcmp(p, "null", 4) == 0;
			char *d;

			if ((error = reserve(out, n + 21, err)) < 0)
				goto cleanup;
			d = out->ptr + out->size;
			if (modes[j] == 'j') {
				memcpy(d, p, n);
				d += n;
			} else if (modes[j] == 's') {
				if (null)
					*d++ = '\\';
				else
					memcpy(d, p + 1, n - 2), d += n - 2;
			} else if (!null) {
				canonical_int(&v, p, n);
				d = put_int(d, v - prev);
				prev = v;
			}
			*d++ = '\n';
			out->size = (size_t)(d - out->ptr);
			cur[r] = p + n + 1;
		}
	}
	out->ptr[out->size] = '\0';

cleanup:
	free(cur);
	free(modes);
	return error;
}

/* The signed decimal s[0..len) (at most 19 digits, as put_int writes) modulo 2^64 into *v. */
static int parse_delta(uint64_t *v, const char *s, size_t len)
{
	size_t neg = len > 0 && s[0] == '-', i;
	uint64_t m = 0;

	if (len == neg || len - neg > 19)
		return 0;
	for (i = neg; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		m = m * 10 + (uint64_t)(s[i] - '0');
	}
	*v = neg ? (uint64_t)0 - m : m;
	return 1;
}

int th_chunk_body_decode(th_buf *out, const char *body, size_t len, th_error *err)
{
	const char *p = body, *end = body + len, *modes, **col = NULL;
	uint64_t *prev = NULL;
	size_t nrows = 0, ncols, r, j;
	int error = TH_OK;

	if (len < 3 || memcmp(p, "#2 ", 3) != 0)
		goto malformed;
	for (p += 3; p < end && *p >= '0' && *p <= '9' && nrows < SIZE_MAX / 10 - 1; p++)
		nrows = nrows * 10 + (size_t)(*p - '0');
	if (p >= end || *p++ != ' ' || nrows == 0)
		goto malformed;
	for (modes = p; p < end && (*p == 'i' || *p == 's' || *p == 'j'); p++)
		;
	if ((ncols = (size_t)(p - modes)) == 0 || p >= end || *p++ != '\n')
		goto malformed;
	col = malloc(ncols * sizeof(*col));
	prev = calloc(ncols, sizeof(*prev));
	if (col == NULL || prev == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory decoding a chunk");
		goto cleanup;
	}
	for (j = 0; j < ncols; j++) {
		col[j] = p;
		for (r = 0; r < nrows; r++, p++)
			if ((p = memchr(p, '\n', (size_t)(end - p))) == NULL)
				goto malformed;
	}
	if (p != end)
		goto malformed;
	for (r = 0; r < nrows; r++) {
		for (j = 0; j < ncols; j++) {
			const char *c = col[j], *nl = memchr(c, '\n', (size_t)(end - c));
			size_t n = (size_t)(nl - c);
			uint64_t v;
			char *d;

			if ((error = reserve(out, n + 24, err)) < 0)
				goto cleanup;
			d = out->ptr + out->size;
			*d++ = j ? ',' : '[';
			if (modes[j] == 'j') {
				memcpy(d, c, n);
				d += n;
			} else if (modes[j] == 's') {
				if (n == 1 && *c == '\\') {
					memcpy(d, "null", 4);
					d += 4;
				} else {
					*d++ = '"';
					memcpy(d, c, n);
					d += n;
					*d++ = '"';
				}
			} else if (n == 0) {
				memcpy(d, "null", 4);
				d += 4;
			} else {
				if (!parse_delta(&v, c, n))
					goto malformed;
				prev[j] += v;
				d = put_int(d, prev[j]);
			}
			out->size = (size_t)(d - out->ptr);
			col[j] = nl + 1;
		}
		out->ptr[out->size++] = ']';
		out->ptr[out->size++] = '\n';
	}
	out->ptr[out->size] = '\0';
	goto cleanup;

malformed:
	error = th_error_set(err, TH_EINVALID, "malformed chunk (column format) at byte %zu",
	                     (size_t)(p ? p - body : 0));
cleanup:
	free(prev);
	free(col);
	return error;
}
