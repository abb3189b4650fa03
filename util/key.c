/* key.c: the order-preserving key encoding of rows, and keys in printable form (see table.h).
 *
 * This is a storage format: chunks are sorted, cut and named by these bytes, so it must never
 * change. memcmp order of two encodings equals the natural order of the keys, cell by cell
 * (FoundationDB's tuple layer in spirit). Each cell is a tag byte then a payload:
 *
 *   NULL      01                              (sorts before any value)
 *   integer   02 + 8 bytes big-endian of (uint64)v ^ 0x8000000000000000 (sign bit flipped)
 *   real      03 + 8 bytes big-endian of the IEEE-754 bits b, -0.0 taken as 0.0, then
 *             b ^= (b >> 63 ? 0xffffffffffffffff : 0x8000000000000000)
 *   boolean   04 + 00 (false) or 01 (true)
 *   text      05 + the bytes with each 00 written 00 ff, then a terminating 00
 *   (date and datetime are text: their ISO form already sorts.)
 *
 * The 00 terminator and 00 ff escape keep prefixes first ("a" < "a\x01" < "ab") and let the next
 * cell of a composite key start right after, without a length that would break the order.
 */
#include <stdlib.h>
#include <string.h>

#include "tablehub/value.h"

static void be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/* Parse an int64 in s[0..len) (-?[0-9]+, no overflow). */
static int parse_int64(int64_t *out, const char *s, size_t len)
{
	uint64_t v = 0, limit;
	size_t i = 0;
	int neg = 0;

	if (len > 0 && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == len)
		return 0;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		unsigned dgt;
		if (s[i] < '0' || s[i] > '9')
			return 0;
		dgt = (unsigned)(s[i] - '0');
		if (v > (limit - dgt) / 10)
			return 0;
		v = v * 10 + dgt;
	}
	/* Two's complement negation in unsigned arithmetic: INT64_MIN has no positive twin. */
	*out = neg ? (int64_t)(~v + 1) : (int64_t)v;
	return 1;
}

static int put_text(th_buf *out, const char *s, size_t len, th_error *err)
{
	const char *end = s + len, *z;
	int error;

	if ((error = th_buf_putc(out, 0x05, err)) < 0)
		return error;
	while ((z = memchr(s, '\0', (size_t)(end - s))) != NULL) {
		if ((error = th_buf_put(out, s, (size_t)(z - s), err)) < 0 ||
		    (error = th_buf_put(out, "\x00\xff", 2, err)) < 0)
			return error;
		s = z + 1;
	}
	if ((error = th_buf_put(out, s, (size_t)(end - s), err)) < 0)
		return error;
	return th_buf_putc(out, 0x00, err);
}

int th_row_key(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err)
{
	size_t nkey = s->npk ? s->npk : s->ncols, k;
	int error;

	for (k = 0; k < nkey; k++) {
		size_t col = s->npk ? s->pk[k] : k;
		const th_cell *c = &cells[col];
		unsigned char b[9];

		if (c->is_null || c->s == NULL) {
			error = th_buf_putc(out, 0x01, err);
		} else {
			switch (s->cols[col].type) {
			case TH_TYPE_INTEGER: {
				int64_t v;
				if (!parse_int64(&v, c->s, c->len))
					return th_error_set(err, TH_EINVALID,
					                    "column '%s': '%.*s' is not an integer",
					                    s->cols[col].name,
					                    c->len > 64 ? 64 : (int)c->len, c->s);
				b[0] = 0x02;
				be64(b + 1, (uint64_t)v ^ 0x8000000000000000ull);
				error = th_buf_put(out, b, 9, err);
				break;
			}
			case TH_TYPE_REAL: {
				char *end;
				double d = strtod(c->s, &end);
				uint64_t bits;
				if (end != c->s + c->len || c->len == 0 || d != d)
					return th_error_set(err, TH_EINVALID,
					                    "column '%s': '%.*s' is not a number",
					                    s->cols[col].name,
					                    c->len > 64 ? 64 : (int)c->len, c->s);
				if (d == 0)
					d = 0.0; /* -0.0 and 0.0 are the same key */
				memcpy(&bits, &d, 8);
				bits ^= (bits >> 63) ? 0xffffffffffffffffull
				                     : 0x8000000000000000ull;
				b[0] = 0x03;
				be64(b + 1, bits);
				error = th_buf_put(out, b, 9, err);
				break;
			}
			case TH_TYPE_BOOLEAN:
				b[0] = 0x04;
				b[1] = (c->len > 0 && (c->s[0] == 't' || c->s[0] == 'T')) ? 1 : 0;
				error = th_buf_put(out, b, 2, err);
				break;
			default:
				error = put_text(out, c->s, c->len, err);
			}
		}
		if (error < 0)
			return error;
	}
	return TH_OK;
}

static int put_quoted(th_buf *out, const char *s, size_t len, th_error *err)
{
	const char *end = s + len, *q;
	int error;

	if ((error = th_buf_putc(out, '\'', err)) < 0)
		return error;
	while ((q = memchr(s, '\'', (size_t)(end - s))) != NULL) {
		if ((error = th_buf_put(out, s, (size_t)(q - s) + 1, err)) < 0 ||
		    (error = th_buf_putc(out, '\'', err)) < 0)
			return error;
		s = q + 1;
	}
	if ((error = th_buf_put(out, s, (size_t)(end - s), err)) < 0)
		return error;
	return th_buf_putc(out, '\'', err);
}

int th_key_format(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err)
{
	size_t nkey = s->npk ? s->npk : s->ncols, k;
	int error;

	if (nkey > 1 && (error = th_buf_putc(out, '(', err)) < 0)
		return error;
	for (k = 0; k < nkey; k++) {
		size_t col = s->npk ? s->pk[k] : k;
		const th_cell *c = &cells[col];

		if (k && (error = th_buf_put(out, ", ", 2, err)) < 0)
			return error;
		if (c->is_null || c->s == NULL) {
			error = th_buf_put(out, "NULL", 4, err);
		} else {
			switch (s->cols[col].type) {
			case TH_TYPE_INTEGER:
			case TH_TYPE_REAL:
				error = th_buf_put(out, c->s, c->len, err);
				break;
			case TH_TYPE_BOOLEAN:
				error = th_buf_puts(out,
				                    c->len && (c->s[0] == 't' || c->s[0] == 'T')
				                            ? "true"
				                            : "false",
				                    err);
				break;
			default:
				error = put_quoted(out, c->s, c->len, err);
			}
		}
		if (error < 0)
			return error;
	}
	if (nkey > 1)
		return th_buf_putc(out, ')', err);
	return TH_OK;
}

int th_key_cmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}
