/* files.c: uploads streamed to disk and named by their SHA-256 (see include/tablehub/files.h).
 *
 * The bytes go to a temp file in DIR/tmp (the same file system as DIR/uploads, so the final rename
 * is atomic) while they are hashed; the cap is checked before each write, so an oversized upload
 * never writes more than the cap. The file is fsynced before the rename and the directory after
 * it, so once th_upload_finish returns, the upload survives a crash and an operation may name it.
 */
#define _GNU_SOURCE /* sync_file_range */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tablehub/files.h"
#include "tablehub/hash.h"

struct th_upload {
	int fd;
	char *tmp_path;
	char *data_dir;
	uint64_t max_bytes;
	uint64_t size;
	uint64_t synced; /* bytes whose write-back was started */
	th_sha256 *hash;
};

/* Start write-back every this many bytes, so the disk works while the body is still arriving and
 * the fsync at the end has little left to do. */
#define WRITEBACK_EVERY (8u << 20)

static int ensure_dir(const char *path, th_error *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return th_error_set(err, TH_ESTORE, "cannot create directory '%s': %s", path,
		                    strerror(errno));
	return TH_OK;
}

static int fsync_dir(const char *path, th_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return th_error_set(err, TH_ESTORE, "cannot open '%s': %s", path, strerror(errno));
	if (fsync(fd) < 0) {
		int saved = errno;
		close(fd);
		return th_error_set(err, TH_ESTORE, "cannot fsync '%s': %s", path, strerror(saved));
	}
	close(fd);
	return TH_OK;
}

static void upload_free(th_upload *u)
{
	if (u->fd >= 0)
		close(u->fd);
	free(u->tmp_path);
	free(u->data_dir);
	th_sha256_free(u->hash);
	free(u);
}

int th_upload_begin(th_upload **out, const char *data_dir, uint64_t max_bytes, th_error *err)
{
	th_upload *u;
	size_t n = strlen(data_dir) + 32;
	int error;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	u->fd = -1;
	u->max_bytes = max_bytes;
	if ((u->tmp_path = malloc(n)) == NULL || (u->data_dir = strdup(data_dir)) == NULL ||
	    (u->hash = th_sha256_new()) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(u->tmp_path, n, "%s/tmp", data_dir);
	if ((error = ensure_dir(data_dir, err)) < 0 || (error = ensure_dir(u->tmp_path, err)) < 0)
		goto fail;
	snprintf(u->tmp_path, n, "%s/tmp/upload-XXXXXX", data_dir);
	if ((u->fd = mkstemp(u->tmp_path)) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot create a temp file in '%s/tmp': %s",
		                     data_dir, strerror(errno));
		goto fail;
	}
	fcntl(u->fd, F_SETFD, FD_CLOEXEC);
	*out = u;
	return TH_OK;
fail:
	upload_free(u);
	return error;
}

int th_upload_write(th_upload *u, const void *data, size_t len, th_error *err)
{
	const char *p = data;
	size_t left = len;

	if (u->max_bytes && (len > u->max_bytes || u->size > u->max_bytes - len)) {
		if (u->max_bytes >= 1048576)
			return th_error_set(err, TH_ETOOBIG,
			                    "file is larger than the %" PRIu64 " MB upload limit",
			                    u->max_bytes / 1048576);
		return th_error_set(err, TH_ETOOBIG,
		                    "file is larger than the %" PRIu64 " byte upload limit",
		                    u->max_bytes);
	}
	while (left > 0) {
		ssize_t w = write(u->fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return th_error_set(err, TH_ESTORE, "cannot write '%s': %s", u->tmp_path,
			                    strerror(errno));
		}
		p += w;
		left -= (size_t)w;
	}
	th_sha256_update(u->hash, data, len);
	u->size += len;
	if (u->size - u->synced >= WRITEBACK_EVERY) {
		/* Only a hint: a failure here is found again by the fsync in th_upload_finish. */
		(void)sync_file_range(u->fd, (off_t)u->synced, (off_t)(u->size - u->synced),
		                      SYNC_FILE_RANGE_WRITE);
		u->synced = u->size;
	}
	return TH_OK;
}

uint64_t th_upload_size(const th_upload *u)
{
	return u->size;
}

int th_upload_finish(th_upload *u, char sha_hex_out[65], uint64_t *size_out, th_error *err)
{
	unsigned char digest[32];
	char sha[65];
	th_buf dest = TH_BUF_INIT, dir = TH_BUF_INIT;
	struct stat sb;
	int error;

	th_sha256_final(u->hash, digest);
	th_hex(sha, digest, sizeof(digest));
	if (fsync(u->fd) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot fsync '%s': %s", u->tmp_path,
		                     strerror(errno));
		goto cleanup;
	}
	close(u->fd);
	u->fd = -1;
	if ((error = th_buf_printf(&dir, err, "%s/uploads", u->data_dir)) < 0 ||
	    (error = ensure_dir(dir.ptr, err)) < 0 ||
	    (error = th_buf_printf(&dest, err, "%s/%s", dir.ptr, sha)) < 0)
		goto cleanup;
	if (stat(dest.ptr, &sb) == 0) {
		/* The same bytes were uploaded before: keep the stored copy. */
		unlink(u->tmp_path);
	} else if (rename(u->tmp_path, dest.ptr) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot rename '%s' to '%s': %s", u->tmp_path,
		                     dest.ptr, strerror(errno));
		goto cleanup;
	}
	if ((error = fsync_dir(dir.ptr, err)) < 0)
		goto cleanup;
	memcpy(sha_hex_out, sha, sizeof(sha));
	if (size_out)
		*size_out = u->size;
cleanup:
	if (error < 0)
		unlink(u->tmp_path);
	th_buf_dispose(&dest);
	th_buf_dispose(&dir);
	upload_free(u);
	return error;
}

void th_upload_abort(th_upload *u)
{
	if (u == NULL)
		return;
	unlink(u->tmp_path);
	upload_free(u);
}

int th_upload_sha_valid(const char *sha)
{
	size_t i;

	if (sha == NULL)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f')))
			return 0;
	return sha[64] == '\0';
}

int th_upload_path(th_buf *out, const char *data_dir, const char *sha, th_error *err)
{
	if (!th_upload_sha_valid(sha))
		return th_error_set(err, TH_EINVALID, "invalid upload id '%.80s'", sha ? sha : "");
	return th_buf_printf(out, err, "%s/uploads/%s", data_dir, sha);
}

int th_upload_open(int *fd, const char *data_dir, const char *sha, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	int f, error;

	if ((error = th_upload_path(&path, data_dir, sha, err)) < 0)
		return error;
	if ((f = open(path.ptr, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			error = th_error_set(err, TH_ENOTFOUND, "upload '%s' not found", sha);
		else
			error = th_error_set(err, TH_ESTORE, "cannot open upload '%s': %s", sha,
			                     strerror(errno));
	} else {
		*fd = f;
	}
	th_buf_dispose(&path);
	return error;
}

int th_upload_sweep(int *n_out, const char *data_dir, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	struct dirent *e;
	DIR *d;
	int n = 0, error;

	if ((error = th_buf_printf(&path, err, "%s/tmp", data_dir)) < 0)
		return error;
	if ((d = opendir(path.ptr)) == NULL) {
		error = errno == ENOENT ? TH_OK
		                        : th_error_set(err, TH_ESTORE, "cannot read '%s': %s",
		                                       path.ptr, strerror(errno));
		goto cleanup;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "upload-", 7) != 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			n++;
	}
	closedir(d);
cleanup:
	th_buf_dispose(&path);
	if (error == TH_OK && n_out)
		*n_out = n;
	return error;
}
