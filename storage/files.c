/* files.c: uploads streamed to disk and named by their SHA-256 (see include/tablehub/files.h).
 *
 * The bytes go to a temp file in DIR/tmp (the same file system as DIR/uploads, so the final rename
 * is atomic) while they are hashed; the cap is checked before each write, so an oversized upload
 * never writes more than the cap. The file is fsynced before the rename and the directory after
 * it, so once th_upload_finish returns, the upload survives a crash and an operation may name it.
 *
 * Uploads are shared: the same bytes uploaded twice are one file, named by several operations.
 * A file is removed only when no operation still needs it (th_upload_remove_unused), and an
 * upload finishing in this process pins its file until its operation is recorded, so the removal
 * can never take a file between the rename and the operation that will name it: both run under
 * one mutex. Messages name files by their place in the data directory ('tmp/upload-XXXXXX'),
 * never by the server's path to it; a full disk is TH_ENOSPC.
 */
#define _GNU_SOURCE /* sync_file_range */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tablehub/dirsync.h"
#include "tablehub/files.h"
#include "tablehub/hash.h"

struct th_upload {
	int fd;
	char *tmp_path;
	const char *tmp_name; /* "tmp/upload-XXXXXX": tmp_path inside the data dir, for messages */
	char *data_dir;
	uint64_t max_bytes;
	uint64_t size;
	uint64_t synced; /* bytes whose write-back was started */
	th_sha256 *hash;
};

/* Start write-back every this many bytes, so the disk works while the body is still arriving and
 * the fsync at the end has little left to do. */
#define WRITEBACK_EVERY (8u << 20)

static int ensure_dir(const char *path, const char *name, th_error *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return th_error_os(err, errno, "create directory", name);
	return TH_OK;
}

/* --- pins: uploads between their rename and their operation ------------------------------------
 */

typedef struct pin {
	char sha[65];
	unsigned n;
} pin;

static pthread_mutex_t pin_mu = PTHREAD_MUTEX_INITIALIZER;
static pin *pins; /* npins in use of cappins; grows, never shrinks */
static size_t npins, cappins;

/* The pin of sha, or NULL. pin_mu held. */
static pin *pin_find(const char *sha)
{
	for (size_t i = 0; i < npins; i++)
		if (strcmp(pins[i].sha, sha) == 0)
			return &pins[i];
	return NULL;
}

/* Pin sha once more. pin_mu held. Returns TH_OK or TH_ENOMEM. */
static int pin_add(const char *sha, th_error *err)
{
	pin *p = pin_find(sha);

	if (p == NULL) {
		if (npins == cappins) {
			size_t ncap = cappins ? cappins * 2 : 8;
			pin *np = realloc(pins, ncap * sizeof(*np));
			if (np == NULL)
				return th_error_set(err, TH_ENOMEM, "out of memory");
			pins = np;
			cappins = ncap;
		}
		p = &pins[npins++];
		memcpy(p->sha, sha, sizeof(p->sha));
		p->n = 0;
	}
	p->n++;
	return TH_OK;
}

int th_upload_pin(const char *sha, th_error *err)
{
	int error;

	pthread_mutex_lock(&pin_mu);
	error = pin_add(sha, err);
	pthread_mutex_unlock(&pin_mu);
	return error;
}

void th_upload_unpin(const char *sha)
{
	pin *p;

	pthread_mutex_lock(&pin_mu);
	if ((p = pin_find(sha)) != NULL && --p->n == 0)
		*p = pins[--npins];
	pthread_mutex_unlock(&pin_mu);
}

int th_upload_remove_unused(int *removed_out, const char *data_dir, const char *sha,
                            th_upload_in_use_fn in_use, void *ctx, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	struct stat sb;
	int error, used = 1;

	*removed_out = 0;
	if ((error = th_upload_path(&path, data_dir, sha, err)) < 0)
		return error;
	pthread_mutex_lock(&pin_mu);
	if (pin_find(sha) == NULL && stat(path.ptr, &sb) == 0 &&
	    (error = in_use(&used, ctx, sha, err)) == TH_OK && !used) {
		if (unlink(path.ptr) == 0)
			*removed_out = 1;
		else if (errno != ENOENT)
			error = th_error_set(err, TH_ESTORE, "cannot remove 'uploads/%s': %s", sha,
			                     strerror(errno));
	}
	pthread_mutex_unlock(&pin_mu);
	th_buf_dispose(&path);
	return error;
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
	if ((error = ensure_dir(data_dir, ".", err)) < 0 ||
	    (error = ensure_dir(u->tmp_path, "tmp", err)) < 0)
		goto fail;
	snprintf(u->tmp_path, n, "%s/tmp/upload-XXXXXX", data_dir);
	u->tmp_name = u->tmp_path + strlen(data_dir) + 1;
	if ((u->fd = mkstemp(u->tmp_path)) < 0) {
		error = th_error_os(err, errno, "create", u->tmp_name);
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
			return th_error_os(err, errno, "write", u->tmp_name);
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

int th_upload_finish_pinned(th_upload *u, char sha_hex_out[65], uint64_t *size_out, th_error *err)
{
	unsigned char digest[32];
	char sha[65], name[80];
	th_buf dest = TH_BUF_INIT, dir = TH_BUF_INIT;
	struct stat sb;
	int error, pinned = 0;

	th_sha256_final(u->hash, digest);
	th_hex(sha, digest, sizeof(digest));
	snprintf(name, sizeof(name), "uploads/%s", sha);
	if (fsync(u->fd) < 0) {
		error = th_error_os(err, errno, "fsync", u->tmp_name);
		goto cleanup;
	}
	close(u->fd);
	u->fd = -1;
	/* Pinned before looking for a stored copy: th_upload_remove_unused cannot take it now. */
	pthread_mutex_lock(&pin_mu);
	error = pin_add(sha, err);
	pthread_mutex_unlock(&pin_mu);
	if (error < 0)
		goto cleanup;
	pinned = 1;
	if ((error = th_buf_printf(&dir, err, "%s/uploads", u->data_dir)) < 0 ||
	    (error = ensure_dir(dir.ptr, "uploads", err)) < 0 ||
	    (error = th_buf_printf(&dest, err, "%s/%s", dir.ptr, sha)) < 0)
		goto cleanup;
	if (stat(dest.ptr, &sb) == 0) {
		/* The same bytes were uploaded before: keep the stored copy. */
		unlink(u->tmp_path);
	} else if (rename(u->tmp_path, dest.ptr) < 0) {
		error = th_error_os(err, errno, "rename a temp file to", name);
		goto cleanup;
	}
	if ((error = th_dirsync_err(dir.ptr, "uploads", err)) < 0)
		goto cleanup;
	memcpy(sha_hex_out, sha, sizeof(sha));
	if (size_out)
		*size_out = u->size;
cleanup:
	if (error < 0) {
		unlink(u->tmp_path);
		if (pinned)
			th_upload_unpin(sha);
	}
	th_buf_dispose(&dest);
	th_buf_dispose(&dir);
	upload_free(u);
	return error;
}

int th_upload_finish(th_upload *u, char sha_hex_out[65], uint64_t *size_out, th_error *err)
{
	int error = th_upload_finish_pinned(u, sha_hex_out, size_out, err);

	if (error == TH_OK)
		th_upload_unpin(sha_hex_out);
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
			error = th_error_set(err, TH_ESTORE, "cannot open 'uploads/%s': %s", sha,
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
		error = errno == ENOENT ? TH_OK : th_error_os(err, errno, "read", "tmp");
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
