/* buf.c: the growable byte buffer (see include/tablehub/buf.h). Growth is geometric (x1.5) so a
 * long run of small appends costs amortised O(1); the buffer is kept NUL-terminated so text can be
 * handed to C string functions without a copy. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/buf.h"

int th_buf_grow(th_buf *b, size_t extra, th_error *err)
{
	size_t need, nsize;
	char *p;

	if (extra > SIZE_MAX - b->size - 1)
		return th_error_set(err, TH_ENOMEM, "buffer too large");
	need = b->size + extra + 1;
	if (need <= b->asize)
		return TH_OK;
	nsize = b->asize < 64 ? 64 : b->asize + b->asize / 2;
	if (nsize < need)
		nsize = need;
	if ((p = realloc(b->ptr, nsize)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory (%zu bytes)", nsize);
	b->ptr = p;
	b->asize = nsize;
	return TH_OK;
}

int th_buf_put(th_buf *b, const void *data, size_t len, th_error *err)
{
	int error;

	if ((error = th_buf_grow(b, len, err)) < 0)
		return error;
	if (len)
		memcpy(b->ptr + b->size, data, len);
	b->size += len;
	b->ptr[b->size] = '\0';
	return TH_OK;
}

int th_buf_puts(th_buf *b, const char *s, th_error *err)
{
	return th_buf_put(b, s, strlen(s), err);
}

int th_buf_putc(th_buf *b, char c, th_error *err)
{
	return th_buf_put(b, &c, 1, err);
}

int th_buf_printf(th_buf *b, th_error *err, const char *fmt, ...)
{
	va_list ap;
	int n, error;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return th_error_set(err, TH_ERROR, "bad format");
	if ((error = th_buf_grow(b, (size_t)n, err)) < 0)
		return error;
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->size, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->size += (size_t)n;
	return TH_OK;
}

int th_buf_set(th_buf *b, const void *data, size_t len, th_error *err)
{
	th_buf_clear(b);
	return th_buf_put(b, data, len, err);
}

void th_buf_clear(th_buf *b)
{
	b->size = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

void th_buf_dispose(th_buf *b)
{
	if (b == NULL)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->size = b->asize = 0;
}

char *th_buf_detach(th_buf *b)
{
	char *p = b->ptr;

	b->ptr = NULL;
	b->size = b->asize = 0;
	return p;
}

int th_buf_put_json_string(th_buf *b, const char *s, size_t len, th_error *err)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, start;
	int error;

	/* Worst case is 6 bytes per input byte; reserve for the common case and grow on escapes. */
	if ((error = th_buf_grow(b, len + 2, err)) < 0)
		return error;
	b->ptr[b->size++] = '"';
	for (i = start = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if ((error = th_buf_put(b, s + start, i - start, err)) < 0)
			return error;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		if ((error = th_buf_put(b, esc, elen, err)) < 0)
			return error;
		start = i + 1;
	}
	if ((error = th_buf_put(b, s + start, len - start, err)) < 0)
		return error;
	return th_buf_putc(b, '"', err);
}

int th_buf_put_json_cstr(th_buf *b, const char *s, th_error *err)
{
	return s ? th_buf_put_json_string(b, s, strlen(s), err) : th_buf_puts(b, "null", err);
}
