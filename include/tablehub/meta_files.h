/* meta_files.h: uploaded files as resources, and resumable (tus) uploads, in the metadata store
 * (storage/meta_files.c).
 *
 * A file is a record of one upload into one database: its name, size, SHA-256 (the bytes are
 * DIR/uploads/<sha256>, shared by every record of the same content), type, uploader and times,
 * and the operations that read it (file_operations). Several imports may read one file (an
 * upload naming `fileId`); a file is in use while one of them is unfinished, and its last use
 * (created_at, or the last operation added) starts the retention period after which the server
 * removes it. A tus upload is the state of a resumable upload (tus_uploads): its length, the
 * offset stored so far, the metadata and validated params it was created with, and, once the last
 * byte came, the file and the operation it became.
 *
 * Every function returns TH_OK or a negative th_code with err set (TH_ESTORE for SQLite's
 * failures; TH_ERROR for a backend other than SQLite, which has no such tables yet); outputs are
 * untouched on error. Strings in the *_info structs are inline; lists are freed with free().
 */
#ifndef TABLEHUB_META_FILES_H
#define TABLEHUB_META_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ids.h"
#include "meta.h"

#define TH_FILE_NAME_MAX 256 /* bytes of a file's name, with the NUL */

/* The schema migration (storage/meta_sqlite.c) that made these tables. */
#define TH_META_FILES_MIGRATION 6

typedef struct th_file_info {
	char id[TH_UUID_SIZE];
	int64_t db_id;
	char name[TH_FILE_NAME_MAX];
	uint64_t size;
	char sha256[65];
	char type[16]; /* the fileType it was uploaded as ("Csv"), "" when unknown */
	char uploader[65];
	int64_t created_at;
	int64_t last_used_at;
	unsigned ops_unfinished; /* operations reading it that are Pending or In Progress */
} th_file_info;

/* Record a file of database db_id; its new id goes to id_out. name is cut to
 * TH_FILE_NAME_MAX - 1 bytes at a UTF-8 boundary. Returns TH_OK, TH_EINVALID (bad sha or
 * uploader) or TH_ESTORE. */
int th_meta_file_add(char id_out[TH_UUID_SIZE], th_meta *m, int64_t db_id, const char *name,
                     uint64_t size, const char *sha256, const char *type, const char *uploader,
                     th_error *err);

/* File `id` of database db_id. Returns TH_OK, TH_ENOTFOUND (no such file there) or TH_ESTORE. */
int th_meta_file_get(th_file_info *out, th_meta *m, int64_t db_id, const char *id, th_error *err);

/* The files of db_id, newest first, at most `limit` (0 = 50) from page_token (as meta.h's
 * lists); *items_out (free()) and *n_out. Returns TH_OK, TH_EINVALID (bad page token) or
 * TH_ESTORE. */
int th_meta_file_list(th_file_info **items_out, size_t *n_out, char next_out[TH_PAGE_TOKEN_SIZE],
                      th_meta *m, int64_t db_id, const char *page_token, size_t limit,
                      th_error *err);

/* An operation that read a file, with its state. */
typedef struct th_file_use {
	char op_id[TH_UUID_SIZE];
	char kind[16];      /* "" when the operation is gone */
	th_op_state state;  /* 0 when the operation is gone */
	int64_t created_at; /* of the link */
} th_file_use;

/* The operations that read file `id`, oldest first. Returns TH_OK or TH_ESTORE. */
int th_meta_file_uses(th_file_use **items_out, size_t *n_out, th_meta *m, const char *id,
                      th_error *err);

/* Record that operation op_id reads file `id` (and make now its last use). Returns TH_OK,
 * TH_ENOTFOUND (no such file) or TH_ESTORE. */
int th_meta_file_use(th_meta *m, const char *id, const char *op_id, th_error *err);

/* The file operation op_id read, into *out; TH_ENOTFOUND when it read none (a merge, or an
 * import older than file records). */
int th_meta_file_of_op(th_file_info *out, th_meta *m, const char *op_id, th_error *err);

/* Delete file `id` of db_id unless an unfinished operation reads it. *sha_free_out = 1 when no
 * other file record and no unfinished operation names its bytes any more (the caller may remove
 * DIR/uploads/<sha256>, whose name goes to sha_out). Returns TH_OK, TH_ENOTFOUND, TH_ECONFLICT
 * (in use: the message says by which operation) or TH_ESTORE. */
int th_meta_file_delete(char sha_out[65], int *sha_free_out, th_meta *m, int64_t db_id,
                        const char *id, th_error *err);

/* Delete every file whose last use is before `before_ms` and that no unfinished operation reads;
 * the SHA-256s no record or unfinished operation names any more go to *shas_out (free()), *n_out.
 * *files_out (may be NULL) = the records deleted. Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_meta_files_expire(char (**shas_out)[65], size_t *n_out, size_t *files_out, th_meta *m,
                         int64_t before_ms, th_error *err);

/* Does a file record or an unfinished operation name upload `sha`? *named_out = 1 or 0 (for the
 * removal of the bytes after a file was deleted or expired). Returns TH_OK or TH_ESTORE. */
int th_meta_upload_named(int *named_out, th_meta *m, const char *sha, th_error *err);

/* Delete the file records of content `sha` (its bytes were removed: every operation that read it
 * failed); *n_out (may be NULL) = how many. Returns TH_OK or TH_ESTORE. */
int th_meta_files_drop_sha(size_t *n_out, th_meta *m, const char *sha, th_error *err);

/* Bytes and count of the distinct contents the file records name (db_id 0 = of every database).
 * Returns TH_OK or TH_ESTORE. */
int th_meta_files_usage(uint64_t *bytes_out, uint64_t *count_out, th_meta *m, int64_t db_id,
                        th_error *err);

/* --- tus uploads ------------------------------------------------------------------------------ */

typedef enum {
	TH_TUS_OPEN = 1, /* bytes still to come */
	TH_TUS_DONE = 2, /* every byte came: it became file_id, read by op_id */
} th_tus_state;

typedef struct th_tus_info {
	char id[TH_UUID_SIZE];
	int64_t db_id;
	char creator[65];
	uint64_t length;
	uint64_t offset;
	char *metadata; /* heap: the Upload-Metadata header as sent ("" when none) */
	char *params;   /* heap: the validated import params, JSON text */
	th_tus_state state;
	char file_id[TH_UUID_SIZE]; /* "" until done */
	char op_id[TH_UUID_SIZE];   /* "" until done */
	int64_t created_at;
	int64_t updated_at;
} th_tus_info;

/* Release the heap fields. Accepts NULL. */
void th_tus_info_dispose(th_tus_info *t);

/* Record a new open upload of `length` bytes at offset 0; its id goes to id_out. Returns TH_OK,
 * TH_EINVALID or TH_ESTORE. */
int th_meta_tus_create(char id_out[TH_UUID_SIZE], th_meta *m, int64_t db_id, const char *creator,
                       uint64_t length, const char *metadata, const char *params, th_error *err);

/* Upload `id` of db_id. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_tus_get(th_tus_info *out, th_meta *m, int64_t db_id, const char *id, th_error *err);

/* Record the offset of an open upload. Returns TH_OK, TH_ENOTFOUND (no open upload `id`) or
 * TH_ESTORE. */
int th_meta_tus_set_offset(th_meta *m, const char *id, uint64_t offset, th_error *err);

/* Mark an open upload done: every byte stored, it became file file_id read by operation op_id.
 * Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_tus_done(th_meta *m, const char *id, const char *file_id, const char *op_id,
                     th_error *err);

/* Forget upload `id`. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_tus_delete(th_meta *m, const char *id, th_error *err);

/* The ids of uploads (open or done) not changed since before_ms, into *ids_out (free()), *n_out.
 * Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_meta_tus_stale(char (**ids_out)[TH_UUID_SIZE], size_t *n_out, th_meta *m, int64_t before_ms,
                      th_error *err);

#endif
