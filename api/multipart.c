/* multipart.c: a streaming multipart/form-data parser (RFC 7578 over RFC 2046), for uploads.
 *
 * The body arrives in pieces of any size; part data is handed to the callbacks as it comes, so an
 * upload of any size needs only the parser's fixed memory (the delimiter and up to 8 KiB of part
 * headers). Parts may come in any order and a part may or may not carry a Content-Type.
 *
 * Finding the delimiter "\r\n--BOUNDARY" in a stream: a boundary never contains CR (RFC 2046
 * bchars), so after a partial match fails, the only place a new match can start is a later CR.
 * The matcher therefore keeps just the count of delimiter bytes matched so far (k); on a mismatch
 * the k bytes it held back are delimiter bytes, re-emitted from the delimiter itself, and the
 * current byte is tried again. Runs of data without CR are passed through with memchr.
 */
#include <string.h>
#include <strings.h>

#include "api.h"

#define MP_HEADERS_MAX 8192

enum mp_state {
	MP_PREAMBLE,    /* before the first delimiter: discarded */
	MP_AFTER_DELIM, /* just after a delimiter: "--" ends the body, CRLF starts a part */
	MP_AFTER_DASH,  /* saw the first '-' of "--" */
	MP_AFTER_CR,    /* saw the CR of the CRLF */
	MP_HEADERS,     /* part headers up to an empty line */
	MP_BODY,        /* part data up to the next delimiter */
	MP_END          /* after the closing delimiter: the epilogue is discarded */
};

struct api_mp {
	enum mp_state state;
	char delim[2 + 2 + 70 + 1]; /* "\r\n--" + boundary */
	size_t dlen;
	size_t k;  /* delimiter bytes matched */
	char *hdr; /* MP_HEADERS_MAX + 1 bytes */
	size_t hlen;
	unsigned nparts;
	const api_mp_callbacks *cb;
	void *payload;
};

int api_mp_boundary(char out[71], int *is_multipart, const char *content_type, th_error *err)
{
	const char *p = content_type, *b;
	size_t n;

	*is_multipart = 0;
	if (p == NULL)
		return th_error_set(err, TH_EINVALID,
		                    "no Content-Type: send multipart/form-data with parts "
		                    "'file' and 'params'");
	while (*p == ' ' || *p == '\t')
		p++;
	/* multipart/form-data, or any type with a boundary: curl keeps the boundary when a client
	 * overrides the Content-Type (DoltHub's example sets application/json on its upload). */
	*is_multipart = strncasecmp(p, "multipart/", 10) == 0;
	for (b = p; (b = strchr(b, ';')) != NULL;) {
		b++;
		while (*b == ' ' || *b == '\t')
			b++;
		if (strncasecmp(b, "boundary=", 9) != 0)
			continue;
		*is_multipart = 1;
		b += 9;
		if (*b == '"') {
			const char *q = strchr(++b, '"');
			if (q == NULL)
				break;
			n = (size_t)(q - b);
		} else {
			n = strcspn(b, "; \t");
		}
		if (n == 0 || n > 70)
			break;
		memcpy(out, b, n);
		out[n] = '\0';
		if (strpbrk(out, "\r\n") != NULL)
			break;
		return TH_OK;
	}
	if (!*is_multipart)
		return th_error_set(err, TH_EINVALID,
		                    "Content-Type must be multipart/form-data with parts 'file' "
		                    "and 'params'");
	return th_error_set(err, TH_EINVALID,
	                    "multipart/form-data Content-Type without a valid boundary");
}

int api_mp_new(api_mp **out, api_pool *pool, const char *boundary, const api_mp_callbacks *cb,
               void *payload, th_error *err)
{
	api_mp *mp = api_pool_alloc(pool, sizeof(*mp));
	size_t blen = strlen(boundary);

	if (mp == NULL || (mp->hdr = api_pool_alloc(pool, MP_HEADERS_MAX + 1)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if (blen == 0 || blen > 70)
		return th_error_set(err, TH_EINVALID, "bad multipart boundary");
	memcpy(mp->delim, "\r\n--", 4);
	memcpy(mp->delim + 4, boundary, blen + 1);
	mp->dlen = blen + 4;
	/* The first delimiter may open the body with no CRLF before it: start as if the CRLF had
	 * just been matched (a preamble, if any, ends with CRLF and the matcher finds it anyway).
	 */
	mp->state = MP_PREAMBLE;
	mp->k = 2;
	mp->cb = cb;
	mp->payload = payload;
	*out = mp;
	return TH_OK;
}

/* The value of `param` (name="..." or name=token) in a Content-Disposition value, copied to out.
 * Returns 1 if found. Backslash escapes inside quotes are honoured. */
static int disposition_param(char *out, size_t outsz, const char *v, const char *param)
{
	size_t plen = strlen(param);
	const char *p = v;

	while ((p = strchr(p, ';')) != NULL) {
		size_t n = 0;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, param, plen) != 0 || p[plen] != '=')
			continue;
		p += plen + 1;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (n + 1 < outsz)
					out[n++] = *p;
			}
		} else {
			for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++)
				if (n + 1 < outsz)
					out[n++] = *p;
		}
		out[n] = '\0';
		return 1;
	}
	return 0;
}

/* Parse the part headers in mp->hdr (CRLF-separated lines, without the final empty line) and
 * start the part. */
static int begin_part(api_mp *mp, th_error *err)
{
	char name[256] = "", filename[1024], ctype[256];
	int has_disposition = 0, has_filename = 0, has_ctype = 0;
	char *line = mp->hdr, *next;

	mp->hdr[mp->hlen] = '\0';
	for (; line != NULL && *line; line = next) {
		char *colon, *v;
		if ((next = strstr(line, "\r\n")) != NULL) {
			*next = '\0';
			next += 2;
		}
		if ((colon = strchr(line, ':')) == NULL)
			return th_error_set(err, TH_EINVALID,
			                    "malformed multipart part header in part %u",
			                    mp->nparts + 1);
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (strcasecmp(line, "Content-Disposition") == 0) {
			/* form-data, or attachment (what curl writes when the request's type is
			 * not multipart/form-data): the name is what counts. */
			has_disposition = disposition_param(name, sizeof(name), v, "name");
			has_filename = disposition_param(filename, sizeof(filename), v, "filename");
		} else if (strcasecmp(line, "Content-Type") == 0) {
			size_t n = strlen(v);
			if (n >= sizeof(ctype))
				n = sizeof(ctype) - 1;
			memcpy(ctype, v, n);
			ctype[n] = '\0';
			has_ctype = 1;
		}
	}
	mp->nparts++;
	if (!has_disposition || name[0] == '\0')
		return th_error_set(err, TH_EINVALID,
		                    "multipart part %u has no Content-Disposition name",
		                    mp->nparts);
	return mp->cb->part_begin(mp->payload, name, has_filename ? filename : NULL,
	                          has_ctype ? ctype : NULL, err);
}

/* Pass data of the current part (or drop it before the first part). */
static int emit(api_mp *mp, const char *data, size_t len, th_error *err)
{
	if (len == 0 || mp->state != MP_BODY)
		return TH_OK;
	return mp->cb->part_data(mp->payload, data, len, err);
}

/* Scan for the delimiter in MP_PREAMBLE / MP_BODY. Returns bytes consumed (all, or up to and
 * including the delimiter), or a negative code. */
static long scan_delim(api_mp *mp, const char *d, size_t n, th_error *err)
{
	size_t i = 0;
	int error;

	while (i < n) {
		if (mp->k == 0) {
			const char *cr = memchr(d + i, '\r', n - i);
			size_t upto = cr ? (size_t)(cr - d) : n;
			if ((error = emit(mp, d + i, upto - i, err)) < 0)
				return error;
			if (cr == NULL)
				return (long)n;
			i = upto + 1;
			mp->k = 1;
			continue;
		}
		if (d[i] == mp->delim[mp->k]) {
			i++;
			if (++mp->k == mp->dlen) {
				mp->k = 0;
				if (mp->state == MP_BODY &&
				    (error = mp->cb->part_end(mp->payload, err)) < 0)
					return error;
				mp->state = MP_AFTER_DELIM;
				return (long)i;
			}
			continue;
		}
		/* Mismatch: the held-back bytes were data; retry d[i] from scratch. */
		if ((error = emit(mp, mp->delim, mp->k, err)) < 0)
			return error;
		mp->k = 0;
	}
	return (long)n;
}

int api_mp_feed(api_mp *mp, const char *data, size_t len, th_error *err)
{
	size_t i = 0;

	while (i < len) {
		char c = data[i];
		switch (mp->state) {
		case MP_PREAMBLE:
		case MP_BODY: {
			long used = scan_delim(mp, data + i, len - i, err);
			if (used < 0)
				return (int)used;
			i += (size_t)used;
			break;
		}
		case MP_AFTER_DELIM:
			i++;
			if (c == '-')
				mp->state = MP_AFTER_DASH;
			else if (c == '\r')
				mp->state = MP_AFTER_CR;
			else if (c != ' ' && c != '\t') /* transport padding */
				return th_error_set(err, TH_EINVALID,
				                    "malformed multipart body after a boundary");
			break;
		case MP_AFTER_DASH:
			i++;
			if (c != '-')
				return th_error_set(err, TH_EINVALID,
				                    "malformed multipart body after a boundary");
			mp->state = MP_END;
			break;
		case MP_AFTER_CR:
			i++;
			if (c != '\n')
				return th_error_set(err, TH_EINVALID,
				                    "malformed multipart body after a boundary");
			mp->state = MP_HEADERS;
			mp->hlen = 0;
			break;
		case MP_HEADERS: {
			/* Copy up to the end of the headers ("\r\n\r\n", or "\r\n" when none). */
			i++;
			if (mp->hlen >= MP_HEADERS_MAX)
				return th_error_set(err, TH_EINVALID,
				                    "multipart part headers over %d bytes",
				                    MP_HEADERS_MAX);
			mp->hdr[mp->hlen++] = c;
			if (mp->hlen == 2 && memcmp(mp->hdr, "\r\n", 2) == 0) {
				mp->hlen = 0;
			} else if (mp->hlen >= 4 &&
			           memcmp(mp->hdr + mp->hlen - 4, "\r\n\r\n", 4) == 0) {
				mp->hlen -= 4;
			} else {
				break;
			}
			{
				int error = begin_part(mp, err);
				if (error < 0)
					return error;
			}
			mp->state = MP_BODY;
			mp->k = 0;
			break;
		}
		case MP_END:
			return TH_OK; /* the epilogue is ignored */
		}
	}
	return TH_OK;
}

int api_mp_finish(api_mp *mp, th_error *err)
{
	if (mp->state == MP_END)
		return TH_OK;
	if (mp->state == MP_PREAMBLE)
		return th_error_set(err, TH_EINVALID,
		                    "multipart body holds no part (no boundary found)");
	return th_error_set(err, TH_EINVALID, "multipart body ended before its closing boundary");
}
