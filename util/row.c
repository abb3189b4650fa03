/* row.c: row lines, the JSON array of a row's cells that chunks store (see table.h).
 *
 * Encoding writes the cells as CSV gave them: numbers verbatim (the types module has checked
 * them; a real without its leading zero, ".5", gets it back), booleans lowercased, everything else
 * as a JSON string, NULL as null. Decoding is a hand-written parser for exactly that shape (an
 * array of scalars), not cJSON: it runs once per row on every diff, merge and export, millions of
 * times. It never allocates per row: the decoded text of all cells goes into one `store` buffer
 * sized before parsing (the decoded form is never longer than the line), so the cell pointers set
 * while parsing stay valid.
 */
#include <stdlib.h>
#include <string.h>

#include "tablehub/text.h"
#include "tablehub/value.h"

int th_row_encode(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err)
{
	size_t i;
	int error;

	if ((error = th_buf_putc(out, '[', err)) < 0)
		return error;
	for (i = 0; i < s->ncols; i++) {
		const th_cell *c = &cells[i];

		if (i && (error = th_buf_putc(out, ',', err)) < 0)
			return error;
		if (c->is_null || c->s == NULL) {
			error = th_buf_put(out, "null", 4, err);
		} else {
			switch (s->cols[i].type) {
			case TH_TYPE_REAL: {
				/* ".5" and "-.5" (types.c) get their zero: a JSON number. */
				size_t neg = c->len > 2 && c->s[0] == '-' && c->s[1] == '.';
				if (neg || (c->len > 1 && c->s[0] == '.'))
					error = th_buf_put(out, neg ? "-0" : "0", neg + 1, err) < 0
					                ? TH_ENOMEM
					                : th_buf_put(out, c->s + neg, c->len - neg,
					                             err);
				else
					error = th_buf_put(out, c->s, c->len, err);
				break;
			}
			case TH_TYPE_INTEGER:
				error = th_buf_put(out, c->s, c->len, err);
				break;
			case TH_TYPE_BOOLEAN:
				if (c->len > 0 && (c->s[0] == 't' || c->s[0] == 'T'))
					error = th_buf_put(out, "true", 4, err);
				else
					error = th_buf_put(out, "false", 5, err);
				break;
			default:
				error = th_buf_put_json_string(out, c->s, c->len, err);
			}
		}
		if (error < 0)
			return error;
	}
	return th_buf_putc(out, ']', err);
}

/* Four hex digits at p (with p + 4 <= end) into *cp. */
static int hex4(const char *p, const char *end, unsigned *cp)
{
	unsigned v = 0;
	int i, h;

	if (end - p < 4)
		return 0;
	for (i = 0; i < 4; i++) {
		if ((h = th_hexval((unsigned char)p[i])) < 0)
			return 0;
		v = (v << 4) | (unsigned)h;
	}
	*cp = v;
	return 1;
}

static char *put_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		*d++ = (char)cp;
	} else if (cp < 0x800) {
		*d++ = (char)(0xc0 | (cp >> 6));
		*d++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*d++ = (char)(0xe0 | (cp >> 12));
		*d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*d++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*d++ = (char)(0xf0 | (cp >> 18));
		*d++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*d++ = (char)(0x80 | (cp & 0x3f));
	}
	return d;
}

/* Decode the JSON string whose opening quote is at *pp into d; returns the end of the output or
 * NULL if malformed. *pp ends past the closing quote. */
static char *decode_string(const char **pp, const char *end, char *d)
{
	const char *p = *pp + 1;

	for (;;) {
		const char *run = p;
		unsigned cp, lo;

		while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
			p++;
		memcpy(d, run, (size_t)(p - run));
		d += p - run;
		if (p >= end || (unsigned char)*p < 0x20)
			return NULL;
		if (*p == '"') {
			*pp = p + 1;
			return d;
		}
		if (++p >= end)
			return NULL;
		switch (*p++) {
		case '"':
			*d++ = '"';
			break;
		case '\\':
			*d++ = '\\';
			break;
		case '/':
			*d++ = '/';
			break;
		case 'b':
			*d++ = '\b';
			break;
		case 'f':
			*d++ = '\f';
			break;
		case 'n':
			*d++ = '\n';
			break;
		case 'r':
			*d++ = '\r';
			break;
		case 't':
			*d++ = '\t';
			break;
		case 'u':
			if (!hex4(p, end, &cp))
				return NULL;
			p += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return NULL; /* a lone low surrogate */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    !hex4(p + 2, end, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return NULL; /* a high surrogate without its pair */
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			d = put_utf8(d, cp);
			break;
		default:
			return NULL;
		}
	}
}

/* The JSON number at p: returns its end, or NULL if it is not one. */
static const char *scan_number(const char *p, const char *end)
{
	const char *start;

	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return NULL;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return NULL;
	}
	if (p < end && *p == '.') {
		start = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == start)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		start = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == start)
			return NULL;
	}
	return p;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Decode the first `want` cells of the line (all of them, checked to be s->ncols, when want is
 * s->ncols; the rest of the line unread otherwise). */
static int decode_cells(th_cells *out, const th_schema *s, const char *line, size_t len,
                        size_t want, th_error *err)
{
	const char *p = line, *end = line + len, *q;
	size_t n = 0;
	char *d;
	int error;

	if (out->cap < s->ncols) {
		size_t ncap = s->ncols < 8 ? 8 : s->ncols;
		th_cell *c = realloc(out->c, ncap * sizeof(*c));
		if (c == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory decoding a row");
		out->c = c;
		out->cap = ncap;
	}
	/* Decoded text plus one NUL per cell never exceeds the line: each cell gives up at least
	 * its separator. Grow once, so `store` does not move while cells point into it. */
	th_buf_clear(&out->store);
	if ((error = th_buf_grow(&out->store, len + 1, err)) < 0)
		return error;
	d = out->store.ptr;

	p = skip_ws(p, end);
	if (p >= end || *p != '[')
		goto malformed;
	p = skip_ws(p + 1, end);
	if (p < end && *p == ']') {
		p++;
		goto done;
	}
	for (;;) {
		th_cell *c;

		p = skip_ws(p, end);
		if (p >= end)
			goto malformed;
		if (n >= s->ncols)
			goto count;
		c = &out->c[n++];
		c->is_null = 0;
		c->s = d;
		switch (*p) {
		case '"':
			if ((q = decode_string(&p, end, d)) == NULL)
				goto malformed;
			c->len = (size_t)(q - d);
			d += c->len;
			break;
		case 'n':
			if (end - p < 4 || memcmp(p, "null", 4) != 0)
				goto malformed;
			p += 4;
			c->s = NULL;
			c->len = 0;
			c->is_null = 1;
			goto next;
		case 't':
			if (end - p < 4 || memcmp(p, "true", 4) != 0)
				goto malformed;
			memcpy(d, "true", 4);
			c->len = 4;
			p += 4;
			d += 4;
			break;
		case 'f':
			if (end - p < 5 || memcmp(p, "false", 5) != 0)
				goto malformed;
			memcpy(d, "false", 5);
			c->len = 5;
			p += 5;
			d += 5;
			break;
		default:
			if ((q = scan_number(p, end)) == NULL)
				goto malformed;
			c->len = (size_t)(q - p);
			memcpy(d, p, c->len);
			d += c->len;
			p = q;
		}
		*d++ = '\0';
	next:
		if (n == want && want < s->ncols) {
			out->store.size = (size_t)(d - out->store.ptr);
			out->n = n;
			return TH_OK;
		}
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == ']') {
			p++;
			break;
		}
		goto malformed;
	}
done:
	if (skip_ws(p, end) != end)
		goto malformed;
	if (n != s->ncols)
		goto count;
	out->store.size = (size_t)(d - out->store.ptr);
	out->n = n;
	return TH_OK;

malformed:
	th_buf_clear(&out->store);
	out->n = 0;
	return th_error_set(err, TH_EINVALID, "malformed row line at byte %zu: %.*s",
	                    (size_t)(p - line), len > 80 ? 80 : (int)len, line);
count:
	th_buf_clear(&out->store);
	out->n = 0;
	return th_error_set(err, TH_EINVALID, "row line has %s cells than the %zu columns: %.*s",
	                    n >= s->ncols ? "more" : "fewer", s->ncols, len > 80 ? 80 : (int)len,
	                    line);
}

int th_row_decode(th_cells *out, const th_schema *s, const char *line, size_t len, th_error *err)
{
	return decode_cells(out, s, line, len, s->ncols, err);
}

int th_row_decode_key(th_cells *out, const th_schema *s, const char *line, size_t len,
                      th_error *err)
{
	size_t want = s->npk ? 0 : s->ncols, k;

	for (k = 0; k < s->npk; k++)
		if (s->pk[k] + 1 > want)
			want = s->pk[k] + 1;
	return decode_cells(out, s, line, len, want, err);
}

void th_cells_dispose(th_cells *c)
{
	if (c == NULL)
		return;
	free(c->c);
	c->c = NULL;
	c->n = c->cap = 0;
	th_buf_dispose(&c->store);
}
