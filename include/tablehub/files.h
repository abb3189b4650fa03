/* files.h: uploaded files on disk (storage/files.c).
 *
 * An upload is streamed into DIR/tmp/upload-XXXXXX while its SHA-256 is computed, checked against
 * a size cap on every write, then fsynced and renamed to DIR/uploads/<sha256> (content-addressed:
 * the same bytes uploaded twice are stored once), and the directory fsynced, so a file named in
 * an operation is on disk before the operation is queued. A th_upload belongs to one thread.
 */
#ifndef TABLEHUB_FILES_H
#define TABLEHUB_FILES_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"

typedef struct th_upload th_upload;

/* Start an upload of at most max_bytes (0 = no cap) in DIR/tmp (created if missing). *out is the
 * caller's: end it with th_upload_finish or th_upload_abort. Returns TH_OK, TH_ENOMEM or
 * TH_ESTORE. */
int th_upload_begin(th_upload **out, const char *data_dir, uint64_t max_bytes, th_error *err);

/* Append len bytes. Returns TH_OK, TH_ETOOBIG as soon as the total passes max_bytes (message "file
 * is larger than the N MB upload limit", N = max_bytes / 1048576, so pass a cap in MiB; the bytes
 * are not written), TH_ENOSPC (the disk is full) or TH_ESTORE. After an error the upload is still
 * the caller's: abort it. */
int th_upload_write(th_upload *u, const void *data, size_t len, th_error *err);

/* Bytes written so far. */
uint64_t th_upload_size(const th_upload *u);

/* Finish: fsync, rename to DIR/uploads/<sha256> (if that exists already, drop the temp file),
 * fsync DIR/uploads. sha_hex_out gets the 64 hex digits, size_out (may be NULL) the size. Frees
 * `u` whatever the result (a failure removes the temp file). Returns TH_OK, TH_ENOMEM, TH_ENOSPC
 * or TH_ESTORE. */
int th_upload_finish(th_upload *u, char sha_hex_out[65], uint64_t *size_out, th_error *err);

/* As th_upload_finish, and on success the file stays pinned: th_upload_remove_unused leaves it
 * alone until th_upload_unpin(sha). For a caller that records an operation naming the file next
 * (pin, record, unpin), so a concurrent clean-up cannot remove it in between. */
int th_upload_finish_pinned(th_upload *u, char sha_hex_out[65], uint64_t *size_out, th_error *err);
/* Pin sha (as th_upload_finish_pinned does) for a caller that stores the file by other means
 * (a resumable upload's part file). Returns TH_OK or TH_ENOMEM. */
int th_upload_pin(const char *sha, th_error *err);
/* Drop one pin of sha taken by th_upload_finish_pinned or th_upload_pin. */
void th_upload_unpin(const char *sha);

/* Whether an operation still needs upload `sha`: set *in_use; return TH_OK or an error. */
typedef int (*th_upload_in_use_fn)(int *in_use, void *ctx, const char *sha, th_error *err);

/* Remove DIR/uploads/<sha> unless it is pinned in this process or in_use(ctx) says an operation
 * still needs it; in_use runs under the pin lock, so no upload can pin the file meanwhile.
 * *removed_out = 1 when the file was removed, 0 otherwise (also when there was none). Returns
 * TH_OK, TH_EINVALID (not a sha-256), TH_ESTORE or what in_use returned. */
int th_upload_remove_unused(int *removed_out, const char *data_dir, const char *sha,
                            th_upload_in_use_fn in_use, void *ctx, th_error *err);

/* Abandon the upload: remove the temp file and free `u`. Accepts NULL. */
void th_upload_abort(th_upload *u);

/* Is `sha` 64 lower-case hex digits? */
int th_upload_sha_valid(const char *sha);

/* Append DIR/uploads/<sha> to out. Returns TH_OK, TH_EINVALID (not a sha-256 in hex) or
 * TH_ENOMEM. */
int th_upload_path(th_buf *out, const char *data_dir, const char *sha, th_error *err);

/* Open DIR/uploads/<sha> read-only into *fd (the caller closes it). Returns TH_OK, TH_EINVALID,
 * TH_ENOTFOUND or TH_ESTORE. */
int th_upload_open(int *fd, const char *data_dir, const char *sha, th_error *err);

/* Remove temp files (DIR/tmp/upload-*) left by a crashed process. Call only while holding the
 * data dir's lock (no upload of this data dir in progress). *n_out (may be NULL) = how many.
 * Returns TH_OK or TH_ESTORE. */
int th_upload_sweep(int *n_out, const char *data_dir, th_error *err);

/* --- part files of resumable uploads (storage/files_part.c) ------------------------------------
 *
 * A resumable (tus) upload grows DIR/tus/<id>.part over any number of requests, across restarts:
 * its offset is kept by the caller (in the metadata store), bytes past it are discarded when the
 * file is opened again, and th_part_sync makes what was written durable before the caller
 * records the new offset. When the last byte is in, th_part_finish moves the file to
 * DIR/uploads/<sha256>, as th_upload_finish does. `id` is a uuid (checked: TH_EINVALID). */

typedef struct th_part th_part;

/* Create the empty part file of upload `id` (DIR/tus made when missing). Returns TH_OK,
 * TH_EEXISTS, TH_EINVALID or TH_ESTORE. */
int th_part_create(const char *data_dir, const char *id, th_error *err);

/* Open the part file of `id` for writing at `offset`: anything past it (bytes of a request that
 * was not acknowledged) is cut off. *out is the caller's: th_part_close. Returns TH_OK,
 * TH_ENOTFOUND (no part file), TH_EINVALID (the file is shorter than offset) or TH_ESTORE. */
int th_part_open(th_part **out, const char *data_dir, const char *id, uint64_t offset,
                 th_error *err);
/* Append len bytes at the current offset. Returns TH_OK or TH_ESTORE. */
int th_part_write(th_part *p, const void *data, size_t len, th_error *err);
/* The offset after the bytes written so far. */
uint64_t th_part_offset(const th_part *p);
/* Make the bytes written durable (fdatasync). Returns TH_OK or TH_ESTORE. */
int th_part_sync(th_part *p, th_error *err);
/* Cut the file back to `offset` (a request whose bytes are refused). Returns TH_OK or
 * TH_ESTORE. */
int th_part_truncate(th_part *p, uint64_t offset, th_error *err);
/* Close. Accepts NULL. */
void th_part_close(th_part *p);

/* Feed bytes [from, end) of the part file of `id` to update(ctx, data, len), 1 MiB at a time
 * (to hash what an earlier process received). Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_part_read(const char *data_dir, const char *id, uint64_t from,
                 void (*update)(void *ctx, const void *data, size_t len), void *ctx, th_error *err);

/* Move the complete part file of `id`, whose SHA-256 is sha (64 hex digits), to
 * DIR/uploads/<sha> (dropping it when that exists already), fsync both directories. Returns
 * TH_OK, TH_EINVALID or TH_ESTORE. */
int th_part_finish(const char *data_dir, const char *id, const char *sha, th_error *err);

/* Remove the part file of `id` (none is no error). Returns TH_OK, TH_EINVALID or TH_ESTORE. */
int th_part_remove(const char *data_dir, const char *id, th_error *err);

/* Remove DIR/uploads/<sha> (none is no error): for a caller that knows no record and no
 * unfinished operation names it. *bytes_out (may be NULL) = its size. Returns TH_OK, TH_EINVALID
 * or TH_ESTORE. */
int th_upload_remove(uint64_t *bytes_out, const char *data_dir, const char *sha, th_error *err);

#endif
