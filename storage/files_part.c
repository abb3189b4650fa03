/* files_part.c: the part files of resumable uploads, DIR/tus/<id>.part, and the removal of stored
 * uploads (see the second half of include/tablehub/files.h).
 *
 * A part file only ever grows by appends at the offset its upload has recorded; opening it cuts
 * whatever lies past that offset (bytes of a request that ended before its offset was recorded),
 * so the file and the record agree again after a crash at any point. The caller syncs before it
 * records a new offset. The finished file is renamed into DIR/uploads/<sha256> (same file system:
 * atomic) and both directories are fsynced, as for a multipart upload. Messages name files by
 * their place in the data directory, never by the server's path.
 */
#define _GNU_SOURCE /* sync_file_range */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tablehub/dirsync.h"
#include "tablehub/files.h"
#include "tablehub/ids.h"
#include "tablehub/text.h"

struct th_part {
	int fd;
	uint64_t offset;
	uint64_t synced; /* bytes whose write-back was started */
	char name[64];   /* "tus/<id>.part", for messages */
};

/* Start write-back every this many bytes, as th_upload_write does. */
#define WRITEBACK_EVERY (8u << 20)

static int part_path(th_buf *out, const char *data_dir, const char *id, th_error *err)
{
	if (id == NULL || !th_uuid_valid(id, 1))
		return th_error_set(err, TH_EINVALID, "invalid upload id '%.64s'", id ? id : "");
	return th_buf_printf(out, err, "%s/tus/%s.part", data_dir, id);
}

int th_part_create(const char *data_dir, const char *id, th_error *err)
{
	th_buf path = TH_BUF_INIT, dir = TH_BUF_INIT;
	int fd, error;

	if ((error = part_path(&path, data_dir, id, err)) < 0 ||
	    (error = th_buf_printf(&dir, err, "%s/tus", data_dir)) < 0)
		goto cleanup;
	if (mkdir(dir.ptr, 0755) < 0 && errno != EEXIST) {
		error = th_error_os(err, errno, "create directory", "tus");
		goto cleanup;
	}
	if ((fd = open(path.ptr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		error = errno == EEXIST ? th_error_set(err, TH_EEXISTS, "upload '%s' exists", id)
		                        : th_error_os(err, errno, "create", "tus/<id>.part");
		goto cleanup;
	}
	close(fd);
	error = th_dirsync_err(dir.ptr, "tus", err);
cleanup:
	th_buf_dispose(&path);
	th_buf_dispose(&dir);
	return error;
}

int th_part_open(th_part **out, const char *data_dir, const char *id, uint64_t offset,
                 th_error *err)
{
	th_buf path = TH_BUF_INIT;
	struct stat sb;
	th_part *p = NULL;
	int error;

	if ((error = part_path(&path, data_dir, id, err)) < 0)
		return error;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	snprintf(p->name, sizeof(p->name), "tus/%s.part", id);
	if ((p->fd = open(path.ptr, O_WRONLY | O_CLOEXEC)) < 0) {
		error = errno == ENOENT ? th_error_set(err, TH_ENOTFOUND,
		                                       "the bytes of upload '%s' are gone", id)
		                        : th_error_os(err, errno, "open", p->name);
		goto cleanup;
	}
	if (fstat(p->fd, &sb) < 0) {
		error = th_error_os(err, errno, "stat", p->name);
		goto cleanup;
	}
	if ((uint64_t)sb.st_size < offset) {
		error = th_error_set(err, TH_EINVALID,
		                     "'%s' holds %lld bytes, fewer than the %llu recorded", p->name,
		                     (long long)sb.st_size, (unsigned long long)offset);
		goto cleanup;
	}
	if ((uint64_t)sb.st_size > offset && ftruncate(p->fd, (off_t)offset) < 0) {
		error = th_error_os(err, errno, "truncate", p->name);
		goto cleanup;
	}
	p->offset = p->synced = offset;
	*out = p;
	p = NULL;
cleanup:
	th_part_close(p);
	th_buf_dispose(&path);
	return error;
}

int th_part_write(th_part *p, const void *data, size_t len, th_error *err)
{
	const char *d = data;

	while (len > 0) {
		ssize_t w = pwrite(p->fd, d, len, (off_t)p->offset);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return th_error_os(err, errno, "write", p->name);
		}
		d += w;
		len -= (size_t)w;
		p->offset += (uint64_t)w;
	}
	if (p->offset - p->synced >= WRITEBACK_EVERY) {
		/* Only a hint: a failure shows again at the sync. */
		(void)sync_file_range(p->fd, (off_t)p->synced, (off_t)(p->offset - p->synced),
		                      SYNC_FILE_RANGE_WRITE);
		p->synced = p->offset;
	}
	return TH_OK;
}

uint64_t th_part_offset(const th_part *p)
{
	return p->offset;
}

int th_part_sync(th_part *p, th_error *err)
{
	if (fdatasync(p->fd) < 0)
		return th_error_os(err, errno, "fsync", p->name);
	return TH_OK;
}

int th_part_truncate(th_part *p, uint64_t offset, th_error *err)
{
	if (ftruncate(p->fd, (off_t)offset) < 0)
		return th_error_os(err, errno, "truncate", p->name);
	p->offset = offset;
	if (p->synced > offset)
		p->synced = offset;
	return TH_OK;
}

void th_part_close(th_part *p)
{
	if (p == NULL)
		return;
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

int th_part_read(const char *data_dir, const char *id, uint64_t from,
                 void (*update)(void *ctx, const void *data, size_t len), void *ctx, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	char *buf = NULL;
	int fd = -1, error;

	if ((error = part_path(&path, data_dir, id, err)) < 0)
		return error;
	if ((buf = malloc(1 << 20)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((fd = open(path.ptr, O_RDONLY | O_CLOEXEC)) < 0) {
		error = errno == ENOENT ? th_error_set(err, TH_ENOTFOUND,
		                                       "the bytes of upload '%s' are gone", id)
		                        : th_error_os(err, errno, "open", "tus/<id>.part");
		goto cleanup;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, 1 << 20, (off_t)from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = th_error_os(err, errno, "read", "tus/<id>.part");
			goto cleanup;
		}
		if (n == 0)
			break;
		update(ctx, buf, (size_t)n);
		from += (uint64_t)n;
	}
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	th_buf_dispose(&path);
	return error;
}

int th_part_finish(const char *data_dir, const char *id, const char *sha, th_error *err)
{
	th_buf path = TH_BUF_INIT, dest = TH_BUF_INIT, dir = TH_BUF_INIT;
	struct stat sb;
	int fd, error;

	if ((error = part_path(&path, data_dir, id, err)) < 0)
		return error;
	if (!th_upload_sha_valid(sha)) {
		error = th_error_set(err, TH_EINVALID, "invalid upload id '%.80s'", sha ? sha : "");
		goto cleanup;
	}
	/* The bytes are synced by each request already; once more, whatever the caller did. */
	if ((fd = open(path.ptr, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) < 0) {
		error = th_error_os(err, errno, "fsync", "tus/<id>.part");
		if (fd >= 0)
			close(fd);
		goto cleanup;
	}
	close(fd);
	if ((error = th_buf_printf(&dir, err, "%s/uploads", data_dir)) < 0 ||
	    (error = th_buf_printf(&dest, err, "%s/%s", dir.ptr, sha)) < 0)
		goto cleanup;
	if (mkdir(dir.ptr, 0755) < 0 && errno != EEXIST) {
		error = th_error_os(err, errno, "create directory", "uploads");
		goto cleanup;
	}
	if (stat(dest.ptr, &sb) == 0) {
		unlink(path.ptr); /* the same bytes were uploaded before: keep the stored copy */
	} else if (rename(path.ptr, dest.ptr) < 0) {
		error = th_error_os(err, errno, "move the upload to", "uploads/<sha256>");
		goto cleanup;
	}
	th_buf_clear(&path);
	if ((error = th_dirsync_err(dir.ptr, "uploads", err)) < 0 ||
	    (error = th_buf_printf(&path, err, "%s/tus", data_dir)) < 0)
		goto cleanup;
	error = th_dirsync_err(path.ptr, "tus", err);
cleanup:
	th_buf_dispose(&path);
	th_buf_dispose(&dest);
	th_buf_dispose(&dir);
	return error;
}

int th_part_remove(const char *data_dir, const char *id, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	int error;

	if ((error = part_path(&path, data_dir, id, err)) < 0)
		return error;
	if (unlink(path.ptr) < 0 && errno != ENOENT)
		error = th_error_os(err, errno, "remove", "tus/<id>.part");
	th_buf_dispose(&path);
	return error;
}

int th_upload_remove(uint64_t *bytes_out, const char *data_dir, const char *sha, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	struct stat sb;
	int error;

	if ((error = th_upload_path(&path, data_dir, sha, err)) < 0)
		return error;
	if (bytes_out)
		*bytes_out = stat(path.ptr, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	if (unlink(path.ptr) < 0 && errno != ENOENT)
		error = th_error_set(err, TH_ESTORE, "cannot remove 'uploads/%s': %s", sha,
		                     strerror(errno));
	th_buf_dispose(&path);
	return error;
}
