/* sqlsession_cow.c: "th_cow", a copy-on-write SQLite VFS over a snapshot file: the private,
 * writable copy a SQL write session works on (see include/tablehub/sqlsession.h), made without
 * copying.
 *
 * The main database file of a connection opened through this VFS is two descriptors, given in its
 * URI as `cow_base=<fd>` and `cow_over=<fd>`: the snapshot, only ever read, and an overlay, an
 * anonymous sparse file of the session. The file is seen in blocks of the snapshot's page size:
 * a block SQLite wrote is read from the overlay (at the same offset), every other block from the
 * snapshot below the point where it was last cut (xTruncate), zeros beyond. A write that covers a
 * block only in part first copies the rest of the block from below. So opening costs nothing,
 * and a write costs the pages it changes, whatever the size of the snapshot: a one-row UPDATE of a
 * 120 MB snapshot writes a few 64 KiB pages instead of copying 120 MB.
 *
 * Nothing is ever synced or locked (the file is private to one connection), and only the main
 * database goes through the overlay: journals and temporary files are handed to the default VFS
 * (the session runs with journal_mode=OFF and temp_store=MEMORY, so there are none in practice).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlsession_internal.h"

typedef struct cow_file {
	sqlite3_file base;    /* pMethods first, as SQLite wants */
	int fd_base, fd_over; /* ours (dup'd), closed with the file */
	sqlite3_int64 size;   /* the file's size as SQLite sees it */
	sqlite3_int64 below;  /* bytes of the snapshot still visible (cut by truncation) */
	sqlite3_int64 block;  /* block size: the snapshot's page size */
	unsigned char *dirty; /* one bit per block: the block is in the overlay */
	size_t ndirty;        /* bytes of `dirty` */
} cow_file;

static sqlite3_vfs cow_vfs;
static sqlite3_vfs *root_vfs;

/* Full pread: 0, or -1 (errno set); bytes past the end of the file read as zeros. */
static int pread_all(int fd, void *buf, size_t n, off_t off)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = pread(fd, p, n, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			memset(p, 0, n);
			return 0;
		}
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const unsigned char *p = buf;

	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int is_dirty(const cow_file *f, sqlite3_int64 blk)
{
	size_t byte = (size_t)(blk >> 3);

	return byte < f->ndirty && (f->dirty[byte] >> (blk & 7)) & 1;
}

static int set_dirty(cow_file *f, sqlite3_int64 blk)
{
	size_t byte = (size_t)(blk >> 3);

	if (byte >= f->ndirty) {
		size_t n = f->ndirty ? f->ndirty : 64;
		unsigned char *p;
		while (n <= byte)
			n *= 2;
		if ((p = realloc(f->dirty, n)) == NULL)
			return SQLITE_NOMEM;
		memset(p + f->ndirty, 0, n - f->ndirty);
		f->dirty = p;
		f->ndirty = n;
	}
	f->dirty[byte] |= (unsigned char)(1u << (blk & 7));
	return SQLITE_OK;
}

/* Read n bytes at `off` of block-aligned extent that lies within one block. */
static int read_in_block(cow_file *f, unsigned char *p, size_t n, sqlite3_int64 off)
{
	sqlite3_int64 blk = off / f->block;

	if (is_dirty(f, blk))
		return pread_all(f->fd_over, p, n, off) < 0 ? SQLITE_IOERR_READ : SQLITE_OK;
	if (off >= f->below) {
		memset(p, 0, n);
		return SQLITE_OK;
	}
	if (off + (sqlite3_int64)n > f->below) {
		size_t keep = (size_t)(f->below - off);
		memset(p + keep, 0, n - keep);
		n = keep;
	}
	return pread_all(f->fd_base, p, n, off) < 0 ? SQLITE_IOERR_READ : SQLITE_OK;
}

static int cow_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
	cow_file *f = (cow_file *)file;
	unsigned char *p = buf;
	sqlite3_int64 end = off + amt, pos = off;
	int rc;

	while (pos < end) {
		sqlite3_int64 blk_end = (pos / f->block + 1) * f->block;
		size_t n = (size_t)((blk_end < end ? blk_end : end) - pos);
		if ((rc = read_in_block(f, p + (pos - off), n, pos)) != SQLITE_OK)
			return rc;
		pos += (sqlite3_int64)n;
	}
	if (end > f->size) {
		/* SQLite wants the missing part zeroed and a short read reported. */
		sqlite3_int64 have = f->size > off ? f->size - off : 0;
		memset(p + have, 0, (size_t)(amt - have));
		return SQLITE_IOERR_SHORT_READ;
	}
	return SQLITE_OK;
}

static int cow_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
	cow_file *f = (cow_file *)file;
	const unsigned char *p = buf;
	sqlite3_int64 end = off + amt, pos = off;
	unsigned char *tmp = NULL;
	int rc = SQLITE_OK;

	while (pos < end) {
		sqlite3_int64 blk = pos / f->block, blk_start = blk * f->block;
		sqlite3_int64 blk_end = blk_start + f->block;
		size_t n = (size_t)((blk_end < end ? blk_end : end) - pos);

		if (!is_dirty(f, blk) && (pos > blk_start || pos + (sqlite3_int64)n < blk_end)) {
			/* A part of a block: bring the whole block up first. */
			if (tmp == NULL && (tmp = malloc((size_t)f->block)) == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			if ((rc = read_in_block(f, tmp, (size_t)f->block, blk_start)) != SQLITE_OK)
				break;
			if (pwrite_all(f->fd_over, tmp, (size_t)f->block, blk_start) < 0) {
				rc = SQLITE_IOERR_WRITE;
				break;
			}
		}
		if (pwrite_all(f->fd_over, p + (pos - off), n, pos) < 0) {
			rc = SQLITE_IOERR_WRITE;
			break;
		}
		if ((rc = set_dirty(f, blk)) != SQLITE_OK)
			break;
		pos += (sqlite3_int64)n;
	}
	free(tmp);
	if (rc == SQLITE_OK && end > f->size)
		f->size = end;
	return rc;
}

static int cow_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	cow_file *f = (cow_file *)file;
	sqlite3_int64 blk, first_gone = (size + f->block - 1) / f->block;

	/* Blocks wholly past the cut are forgotten; a block cut in the middle keeps its head (what
	 * lies past the cut is never read back before it is written again). */
	for (blk = first_gone; (size_t)(blk >> 3) < f->ndirty; blk++)
		f->dirty[blk >> 3] &= (unsigned char)~(1u << (blk & 7));
	if (size < f->below)
		f->below = size;
	f->size = size;
	return SQLITE_OK;
}

static int cow_close(sqlite3_file *file)
{
	cow_file *f = (cow_file *)file;

	if (f->fd_base >= 0)
		close(f->fd_base);
	if (f->fd_over >= 0)
		close(f->fd_over);
	free(f->dirty);
	f->dirty = NULL;
	f->fd_base = f->fd_over = -1;
	return SQLITE_OK;
}

static int cow_sync(sqlite3_file *file, int flags)
{
	(void)file;
	(void)flags;
	return SQLITE_OK; /* scratch data: nothing to make durable */
}

static int cow_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	*size = ((cow_file *)file)->size;
	return SQLITE_OK;
}

static int cow_lock(sqlite3_file *file, int level)
{
	(void)file;
	(void)level;
	return SQLITE_OK; /* private to one connection */
}

static int cow_check_reserved(sqlite3_file *file, int *out)
{
	(void)file;
	*out = 0;
	return SQLITE_OK;
}

static int cow_file_control(sqlite3_file *file, int op, void *arg)
{
	(void)file;
	(void)op;
	(void)arg;
	return SQLITE_NOTFOUND;
}

static int cow_sector_size(sqlite3_file *file)
{
	(void)file;
	return 4096;
}

static int cow_device_characteristics(sqlite3_file *file)
{
	(void)file;
	return 0;
}

static const sqlite3_io_methods cow_methods = {
	1, /* iVersion: no shared memory, no memory map */
	cow_close,
	cow_read,
	cow_write,
	cow_truncate,
	cow_sync,
	cow_file_size,
	cow_lock,
	cow_lock,
	cow_check_reserved,
	cow_file_control,
	cow_sector_size,
	cow_device_characteristics,
	NULL,
	NULL,
	NULL,
	NULL,
	NULL,
	NULL,
};

/* The page size of the SQLite file open on fd (its header's bytes 16-17), or 4096 for an empty
 * or unreadable one. */
static sqlite3_int64 page_size_of(int fd)
{
	unsigned char h[100];
	unsigned v;

	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16))
		return 4096;
	v = ((unsigned)h[16] << 8) | h[17];
	if (v == 1)
		return 65536;
	if (v < 512 || (v & (v - 1)) != 0)
		return 4096;
	return v;
}

static int cow_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                    int *out_flags)
{
	cow_file *f = (cow_file *)file;
	sqlite3_int64 b, o;
	off_t end;

	(void)vfs;
	if (!(flags & SQLITE_OPEN_MAIN_DB) || name == NULL)
		return root_vfs->xOpen(root_vfs, name, file, flags, out_flags);
	memset(f, 0, sizeof(*f));
	f->fd_base = f->fd_over = -1;
	b = sqlite3_uri_int64(name, "cow_base", -1);
	o = sqlite3_uri_int64(name, "cow_over", -1);
	if (b < 0 || o < 0 || b > INT32_MAX || o > INT32_MAX)
		return SQLITE_CANTOPEN;
	if ((f->fd_base = fcntl((int)b, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    (f->fd_over = fcntl((int)o, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    (end = lseek(f->fd_base, 0, SEEK_END)) < 0) {
		if (f->fd_base >= 0)
			close(f->fd_base);
		f->fd_base = -1;
		return SQLITE_CANTOPEN;
	}
	f->size = f->below = (sqlite3_int64)end;
	f->block = page_size_of(f->fd_base);
	f->base.pMethods = &cow_methods;
	if (out_flags)
		*out_flags = flags;
	return SQLITE_OK;
}

/* Names are kept as given: "/proc/self/fd/N" must not be resolved to the snapshot's own path. */
static int cow_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	if ((int)strlen(name) >= n)
		return SQLITE_CANTOPEN;
	memcpy(out, name, strlen(name) + 1);
	return SQLITE_OK;
}

static int cow_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return root_vfs->xDelete(root_vfs, name, sync_dir);
}

static int cow_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return root_vfs->xAccess(root_vfs, name, flags, out);
}

static int cow_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return root_vfs->xRandomness(root_vfs, n, out);
}

static int cow_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return root_vfs->xSleep(root_vfs, us);
}

static int cow_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return root_vfs->xCurrentTime(root_vfs, out);
}

static int cow_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return root_vfs->xGetLastError ? root_vfs->xGetLastError(root_vfs, n, out) : 0;
}

static int cow_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	double d;
	int rc;

	(void)vfs;
	if (root_vfs->iVersion >= 2 && root_vfs->xCurrentTimeInt64)
		return root_vfs->xCurrentTimeInt64(root_vfs, out);
	rc = root_vfs->xCurrentTime(root_vfs, &d);
	*out = (sqlite3_int64)(d * 86400000.0);
	return rc;
}

static pthread_once_t cow_once = PTHREAD_ONCE_INIT;
static int cow_registered;

static void cow_register(void)
{
	if (sqlite3_initialize() != SQLITE_OK || (root_vfs = sqlite3_vfs_find(NULL)) == NULL)
		return;
	cow_vfs.iVersion = 2;
	cow_vfs.szOsFile = root_vfs->szOsFile > (int)sizeof(cow_file) ? root_vfs->szOsFile
	                                                              : (int)sizeof(cow_file);
	cow_vfs.mxPathname = root_vfs->mxPathname;
	cow_vfs.zName = TH_SQLSESSION_VFS;
	cow_vfs.xOpen = cow_open;
	cow_vfs.xDelete = cow_delete;
	cow_vfs.xAccess = cow_access;
	cow_vfs.xFullPathname = cow_full_pathname;
	cow_vfs.xRandomness = cow_randomness;
	cow_vfs.xSleep = cow_sleep;
	cow_vfs.xCurrentTime = cow_current_time;
	cow_vfs.xGetLastError = cow_last_error;
	cow_vfs.xCurrentTimeInt64 = cow_current_time64;
	cow_registered = sqlite3_vfs_register(&cow_vfs, 0) == SQLITE_OK;
}

int th_sqlsession__cow_register(th_error *err)
{
	pthread_once(&cow_once, cow_register);
	if (!cow_registered)
		return th_error_set(err, TH_ESTORE, "cannot register the copy-on-write file layer");
	return TH_OK;
}
