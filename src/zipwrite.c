/* zipwrite.c: a streaming zip writer (see zipwrite.h), after PKWARE's APPNOTE 6.3: local file
 * headers with bit 3 (sizes in a data descriptor), bit 11 (UTF-8 names), raw deflate (zlib with
 * negative window bits), a central directory, and ZIP64 records when sizes, offsets or the count
 * outgrow the 32- and 16-bit fields. As Go's archive/zip does for entries of unknown size, the
 * local header carries no ZIP64 field; an entry past 4 GiB gets a ZIP64 data descriptor (8-byte
 * sizes) and a ZIP64 extra field in the central directory, which is what readers go by.
 *
 * Why not libzip, which reads the workbooks: it assembles an archive in a file and writes it at
 * zip_close, so a download would start only after the last table was exported, from a temporary
 * file as large as the archive. The format needed here is small, zlib is linked already, and the
 * tests check every archive with unzip -t and Python's zipfile.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "zipwrite.h"

#define U32_MAX 0xffffffffu
#define U16_MAX 0xffffu
#define OUT_CHUNK (64 * 1024)

typedef struct entry {
	char *name;
	uint32_t crc;
	uint64_t csize, usize, offset;
} entry;

struct th_zipw {
	z_stream zs;
	int zs_ready;
	int force64;
	uint16_t dos_time, dos_date;
	uint64_t written; /* bytes of the archive so far: the next entry's offset */
	entry *entries;
	size_t n, cap;
	int open; /* an entry has begun and not ended */
};

static void le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v & 0xff);
	p[1] = (unsigned char)(v >> 8);
}

static void le32(unsigned char *p, uint32_t v)
{
	le16(p, (uint16_t)(v & 0xffff));
	le16(p + 2, (uint16_t)(v >> 16));
}

static void le64(unsigned char *p, uint64_t v)
{
	le32(p, (uint32_t)(v & U32_MAX));
	le32(p + 4, (uint32_t)(v >> 32));
}

/* Append to `out` and count the bytes into the archive's size. */
static int emit(th_zipw *z, th_buf *out, const void *data, size_t len, th_error *err)
{
	int error = th_buf_put(out, data, len, err);

	if (error == TH_OK)
		z->written += len;
	return error;
}

int th_zipw_new(th_zipw **out, int level, int64_t mtime, int force_zip64, th_error *err)
{
	th_zipw *z = calloc(1, sizeof(*z));
	time_t t = (time_t)mtime;
	struct tm tm;

	if (z == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if (deflateInit2(&z->zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		return th_error_set(err, TH_ENOMEM, "out of memory starting a zip archive");
	}
	z->zs_ready = 1;
	z->force64 = force_zip64;
	/* MS-DOS time, two-second resolution, 1980 at the earliest */
	if (gmtime_r(&t, &tm) != NULL && tm.tm_year >= 80) {
		z->dos_time = (uint16_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
		z->dos_date =
		        (uint16_t)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
	} else {
		z->dos_date = 1 << 5 | 1; /* 1980-01-01 */
	}
	*out = z;
	return TH_OK;
}

int th_zipw_begin(th_zipw *z, th_buf *out, const char *name, th_error *err)
{
	size_t len = strlen(name);
	unsigned char h[30];
	entry *e;

	if (z->open || len == 0 || len > U16_MAX || name[0] == '/' || strstr(name, "..") != NULL)
		return th_error_set(err, TH_EINVALID, "bad zip entry name '%.64s'", name);
	if (z->n == z->cap) {
		size_t ncap = z->cap ? z->cap * 2 : 16;
		if ((e = realloc(z->entries, ncap * sizeof(*e))) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		z->entries = e;
		z->cap = ncap;
	}
	e = &z->entries[z->n];
	memset(e, 0, sizeof(*e));
	if ((e->name = strdup(name)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	e->offset = z->written;
	e->crc = (uint32_t)crc32(0L, Z_NULL, 0);
	z->n++;
	z->open = 1;
	le32(h, 0x04034b50);
	le16(h + 4, 20);     /* version needed: 2.0, deflate */
	le16(h + 6, 0x0808); /* bit 3: sizes in the data descriptor; bit 11: UTF-8 name */
	le16(h + 8, 8);      /* deflated */
	le16(h + 10, z->dos_time);
	le16(h + 12, z->dos_date);
	memset(h + 14, 0, 12); /* CRC and sizes: in the data descriptor */
	le16(h + 26, (uint16_t)len);
	le16(h + 28, 0);
	if (emit(z, out, h, sizeof(h), err) < 0 || emit(z, out, name, len, err) < 0)
		return TH_ENOMEM;
	return TH_OK;
}

/* Run deflate over what zs holds with `flush`, appending its output. */
static int pump(th_zipw *z, th_buf *out, int flush, th_error *err)
{
	entry *e = &z->entries[z->n - 1];
	int rc;

	do {
		size_t before;
		if (th_buf_grow(out, OUT_CHUNK, err) < 0)
			return TH_ENOMEM;
		before = out->size;
		z->zs.next_out = (Bytef *)out->ptr + out->size;
		z->zs.avail_out = OUT_CHUNK;
		rc = deflate(&z->zs, flush);
		if (rc == Z_STREAM_ERROR)
			return th_error_set(err, TH_ERROR, "deflate failed");
		out->size += OUT_CHUNK - z->zs.avail_out;
		out->ptr[out->size] = '\0';
		e->csize += out->size - before;
		z->written += out->size - before;
	} while (z->zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
	return TH_OK;
}

int th_zipw_data(th_zipw *z, th_buf *out, const void *data, size_t len, th_error *err)
{
	entry *e = &z->entries[z->n - 1];
	const unsigned char *p = data;
	int error;

	while (len > 0) { /* zlib counts in uInt */
		uInt part = len > (1u << 30) ? (1u << 30) : (uInt)len;
		e->crc = (uint32_t)crc32(e->crc, p, part);
		e->usize += part;
		z->zs.next_in = (Bytef *)(uintptr_t)p;
		z->zs.avail_in = part;
		if ((error = pump(z, out, Z_NO_FLUSH, err)) < 0)
			return error;
		p += part;
		len -= part;
	}
	return TH_OK;
}

int th_zipw_end(th_zipw *z, th_buf *out, th_error *err)
{
	entry *e = &z->entries[z->n - 1];
	unsigned char d[24];
	size_t n;
	int error;

	z->zs.next_in = NULL;
	z->zs.avail_in = 0;
	if ((error = pump(z, out, Z_FINISH, err)) < 0)
		return error;
	deflateReset(&z->zs);
	z->open = 0;
	le32(d, 0x08074b50);
	le32(d + 4, e->crc);
	if (e->csize >= U32_MAX || e->usize >= U32_MAX) { /* a ZIP64 descriptor */
		le64(d + 8, e->csize);
		le64(d + 16, e->usize);
		n = 24;
	} else {
		le32(d + 8, (uint32_t)e->csize);
		le32(d + 12, (uint32_t)e->usize);
		n = 16;
	}
	return emit(z, out, d, n, err);
}

int th_zipw_finish(th_zipw *z, th_buf *out, th_error *err)
{
	unsigned char h[46], x[32], end[56 + 20 + 22];
	uint64_t cd_start = z->written, cd_size;
	size_t i, xn, en = 0;
	int zip64_end;

	if (z->open)
		return th_error_set(err, TH_EINVALID, "a zip entry is still open");
	for (i = 0; i < z->n; i++) {
		const entry *e = &z->entries[i];
		int big_u = z->force64 || e->usize >= U32_MAX,
		    big_c = z->force64 || e->csize >= U32_MAX;
		int big_o = z->force64 || e->offset >= U32_MAX;
		size_t len = strlen(e->name);
		/* ZIP64 extra field: only the values whose 32-bit field says 0xffffffff, in order
		 */
		xn = 4;
		if (big_u) {
			le64(x + xn, e->usize);
			xn += 8;
		}
		if (big_c) {
			le64(x + xn, e->csize);
			xn += 8;
		}
		if (big_o) {
			le64(x + xn, e->offset);
			xn += 8;
		}
		if (xn == 4) {
			xn = 0;
		} else {
			le16(x, 0x0001);
			le16(x + 2, (uint16_t)(xn - 4));
		}
		le32(h, 0x02014b50);
		le16(h + 4, (uint16_t)(3 << 8 | (xn ? 45 : 20))); /* made by: Unix */
		le16(h + 6, xn ? 45 : 20);                        /* needed: 4.5 for ZIP64 */
		le16(h + 8, 0x0808);
		le16(h + 10, 8);
		le16(h + 12, z->dos_time);
		le16(h + 14, z->dos_date);
		le32(h + 16, e->crc);
		le32(h + 20, big_c ? U32_MAX : (uint32_t)e->csize);
		le32(h + 24, big_u ? U32_MAX : (uint32_t)e->usize);
		le16(h + 28, (uint16_t)len);
		le16(h + 30, (uint16_t)xn);
		le16(h + 32, 0);                       /* comment */
		le16(h + 34, 0);                       /* disk */
		le16(h + 36, 0);                       /* internal attributes */
		le32(h + 38, (uint32_t)0100644 << 16); /* a regular file, rw-r--r-- */
		le32(h + 42, big_o ? U32_MAX : (uint32_t)e->offset);
		if (emit(z, out, h, sizeof(h), err) < 0 || emit(z, out, e->name, len, err) < 0 ||
		    (xn && emit(z, out, x, xn, err) < 0))
			return TH_ENOMEM;
	}
	cd_size = z->written - cd_start;
	zip64_end = z->force64 || z->n >= U16_MAX || cd_size >= U32_MAX || cd_start >= U32_MAX;
	if (zip64_end) {
		uint64_t at = z->written;
		le32(end, 0x06064b50); /* ZIP64 end of central directory record */
		le64(end + 4, 44);
		le16(end + 12, 3 << 8 | 45);
		le16(end + 14, 45);
		le32(end + 16, 0);
		le32(end + 20, 0);
		le64(end + 24, z->n);
		le64(end + 32, z->n);
		le64(end + 40, cd_size);
		le64(end + 48, cd_start);
		le32(end + 56, 0x07064b50); /* its locator */
		le32(end + 60, 0);
		le64(end + 64, at);
		le32(end + 72, 1);
		en = 76;
	}
	le32(end + en, 0x06054b50);
	le16(end + en + 4, 0);
	le16(end + en + 6, 0);
	le16(end + en + 8, zip64_end ? U16_MAX : (uint16_t)z->n);
	le16(end + en + 10, zip64_end ? U16_MAX : (uint16_t)z->n);
	le32(end + en + 12, zip64_end ? U32_MAX : (uint32_t)cd_size);
	le32(end + en + 16, zip64_end ? U32_MAX : (uint32_t)cd_start);
	le16(end + en + 20, 0);
	return emit(z, out, end, en + 22, err);
}

void th_zipw_free(th_zipw *z)
{
	size_t i;

	if (z == NULL)
		return;
	if (z->zs_ready)
		deflateEnd(&z->zs);
	for (i = 0; i < z->n; i++)
		free(z->entries[i].name);
	free(z->entries);
	free(z);
}
