/* csv_write.c: writing one CSV field the way the reader (src/csv.c) reads it back: NULL as an
 * unquoted empty field, an empty string as "", and a field quoted when it holds the delimiter, a
 * quote, CR or LF, or starts or ends with a space (which some readers trim). */
#include <string.h>

#include "tablehub/csv.h"

int th_csv_write_field(th_buf *out, const char *s, size_t len, int is_null, char delim,
                       th_error *err)
{
	size_t i;
	int quote, error;

	if (is_null)
		return TH_OK;
	quote = len == 0 || s[0] == ' ' || s[len - 1] == ' ';
	for (i = 0; i < len && !quote; i++)
		quote = s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
	if (!quote)
		return th_buf_put(out, s, len, err);
	if ((error = th_buf_putc(out, '"', err)) < 0)
		return error;
	for (i = 0; i < len; i++) {
		const char *q = memchr(s + i, '"', len - i);
		size_t n = q ? (size_t)(q - (s + i)) + 1 : len - i;
		if ((error = th_buf_put(out, s + i, n, err)) < 0)
			return error;
		if (q && (error = th_buf_putc(out, '"', err)) < 0)
			return error;
		i += n - 1;
	}
	return th_buf_putc(out, '"', err);
}
