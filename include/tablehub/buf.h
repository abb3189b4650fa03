/* buf.h: a growable byte buffer, always NUL-terminated when it holds anything.
 *
 * A th_buf is a plain struct the caller owns (stack or heap); its memory is released with
 * th_buf_dispose(). TH_BUF_INIT is the empty buffer. Appends return TH_OK or TH_ENOMEM (with the
 * buffer left as it was).
 */
#ifndef TABLEHUB_BUF_H
#define TABLEHUB_BUF_H

#include <stddef.h>
#include "error.h"

typedef struct th_buf {
	char *ptr;    /* NULL until the first append */
	size_t size;  /* bytes in use, not counting the terminating NUL */
	size_t asize; /* bytes allocated */
} th_buf;

#define TH_BUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Make room for `extra` more bytes (plus the NUL). Returns TH_OK or TH_ENOMEM. */
int th_buf_grow(th_buf *b, size_t extra, th_error *err);
int th_buf_put(th_buf *b, const void *data, size_t len, th_error *err);
int th_buf_puts(th_buf *b, const char *s, th_error *err);
int th_buf_putc(th_buf *b, char c, th_error *err);
int th_buf_printf(th_buf *b, th_error *err, const char *fmt, ...) TH_PRINTF(3, 4);
/* Replace the contents with `len` bytes of `data`. */
int th_buf_set(th_buf *b, const void *data, size_t len, th_error *err);
/* Empty the buffer but keep its memory. */
void th_buf_clear(th_buf *b);
/* Release the memory; the buffer is TH_BUF_INIT afterwards. Accepts NULL. */
void th_buf_dispose(th_buf *b);
/* Hand the memory to the caller (free() it); the buffer is emptied. Returns NULL if empty. */
char *th_buf_detach(th_buf *b);

/* Append `s` (len bytes) as a JSON string literal, quotes included. */
int th_buf_put_json_string(th_buf *b, const char *s, size_t len, th_error *err);
/* Append the NUL-terminated `s` as a JSON string literal, or `null` when s is NULL. */
int th_buf_put_json_cstr(th_buf *b, const char *s, th_error *err);

#endif
