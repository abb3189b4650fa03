/* fuzz_multipart.c: libFuzzer target for the streaming multipart/form-data parser
 * (api/multipart.c), with the boundary fixed to "XyZ".
 *
 * The first two bytes pick a split point; the rest is the body. It is parsed three ways: in one
 * feed, in two feeds split at that point, and one byte a feed. A streaming parser must not care
 * where the network cut the body, so the three must return the same code and report the same
 * parts (names, file names, types, data) to the callbacks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/buf.h"
#include "../../api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BOUNDARY "XyZ"

/* What the callbacks saw, as a log: 'B' name\0 filename\0 ctype\0, 'D' + the part's data (pieces
 * joined), 'E'. */
typedef struct seen {
	th_buf log;
	int in_data; /* the last entry is a 'D' whose data is still growing */
	int open;    /* a part has begun and not ended */
} seen;

static void put_str(seen *s, const char *v)
{
	if (th_buf_puts(&s->log, v ? v : "\x01(none)", NULL) < 0 ||
	    th_buf_putc(&s->log, 0, NULL) < 0)
		abort();
}

static int on_begin(void *p, const char *name, const char *filename, const char *ctype,
                    th_error *err)
{
	seen *s = p;

	(void)err;
	if (s->open || name == NULL || name[0] == '\0')
		abort(); /* a part began inside another, or without its name */
	s->open = 1;
	s->in_data = 0;
	if (th_buf_putc(&s->log, 'B', NULL) < 0)
		abort();
	put_str(s, name);
	put_str(s, filename);
	put_str(s, ctype);
	return TH_OK;
}

static int on_data(void *p, const char *data, size_t len, th_error *err)
{
	seen *s = p;

	(void)err;
	if (!s->open || len == 0)
		abort();
	if (!s->in_data && th_buf_putc(&s->log, 'D', NULL) < 0)
		abort();
	s->in_data = 1;
	if (th_buf_put(&s->log, data, len, NULL) < 0)
		abort();
	return TH_OK;
}

static int on_end(void *p, th_error *err)
{
	seen *s = p;

	(void)err;
	if (!s->open)
		abort();
	s->open = 0;
	s->in_data = 0;
	if (th_buf_putc(&s->log, 'E', NULL) < 0)
		abort();
	return TH_OK;
}

static const api_mp_callbacks cbs = { on_begin, on_data, on_end };

/* Parse body in pieces cut at cuts[0..ncuts) (ascending); step > 0 instead feeds step bytes at a
 * time. Returns the code of the first failing feed, or of api_mp_finish. */
static int parse(seen *s, const char *body, size_t len, size_t cut, size_t step)
{
	api_pool pool = { 0 };
	api_mp *mp = NULL;
	th_error err = { 0 };
	int rc;

	memset(s, 0, sizeof(*s));
	if (api_mp_new(&mp, &pool, BOUNDARY, &cbs, s, &err) < 0)
		abort();
	if (step > 0) {
		rc = TH_OK;
		for (size_t i = 0; i < len && rc == TH_OK; i += step)
			rc = api_mp_feed(mp, body + i, len - i < step ? len - i : step, &err);
	} else {
		rc = api_mp_feed(mp, body, cut, &err);
		if (rc == TH_OK)
			rc = api_mp_feed(mp, body + cut, len - cut, &err);
	}
	if (rc == TH_OK)
		rc = api_mp_finish(mp, &err);
	if (rc != TH_OK && (rc != TH_EINVALID || err.msg[0] == '\0'))
		abort();
	if (rc == TH_OK && s->open)
		abort(); /* the body ended with a part still open */
	api_pool_release(&pool);
	return rc;
}

static void check_same(int rc1, const seen *a, int rc2, const seen *b)
{
	if (rc1 != rc2 || a->log.size != b->log.size ||
	    (a->log.size && memcmp(a->log.ptr, b->log.ptr, a->log.size) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	seen whole, split, bytes;
	const char *body;
	size_t len, cut;
	int rc1, rc2, rc3;

	if (size < 2)
		return 0;
	cut = (size_t)data[0] << 8 | data[1];
	body = (const char *)data + 2;
	len = size - 2;
	cut = len ? cut % (len + 1) : 0;

	rc1 = parse(&whole, body, len, len, 0);
	rc2 = parse(&split, body, len, cut, 0);
	rc3 = parse(&bytes, body, len, 0, 1);
	check_same(rc1, &whole, rc2, &split);
	check_same(rc1, &whole, rc3, &bytes);
	th_buf_dispose(&whole.log);
	th_buf_dispose(&split.log);
	th_buf_dispose(&bytes.log);
	return 0;
}
