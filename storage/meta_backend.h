/* meta_backend.h: what a metadata backend implements (private to storage/).
 *
 * The public th_meta_* functions (include/tablehub/meta.h, storage/meta.c) check their arguments,
 * make tokens, uuids and page tokens, and then call the backend through its th_meta_ops table.
 * A backend therefore only stores and reads: it sees names already validated, token hashes (never
 * tokens), page offsets (never page tokens) and fully formed ids. SQLite (storage/meta_sqlite*.c)
 * is the one backend today; another (PostgreSQL) is one more file that fills the same table.
 *
 * A backend's handle embeds `struct th_meta` as its first member, so a th_meta * is also a pointer
 * to the backend's own struct. Each op returns TH_OK or a negative th_code with `err` set, exactly
 * as documented for the public function of the same name in meta.h; outputs are untouched on
 * error. Every op may be called from any thread at any time between open and close.
 */
#ifndef TABLEHUB_STORAGE_META_BACKEND_H
#define TABLEHUB_STORAGE_META_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "tablehub/meta.h"

typedef struct th_meta_ops th_meta_ops;

/* The part of every backend's handle that the front end reads. */
struct th_meta {
	const th_meta_ops *ops;
};

/* Which operations a list returns: owner and db, or creator (the other NULL); kind NULL = any. */
typedef struct th_meta_op_filter {
	const char *owner;
	const char *db;
	const char *creator;
	const char *kind;
} th_meta_op_filter;

struct th_meta_ops {
	const char *name; /* "sqlite" */

	/* Open the store of data dir `data_dir` into *out (closed with close). */
	int (*open)(th_meta **out, const char *data_dir, th_error *err);
	void (*close)(th_meta *m);

	/* Users and tokens: the hash is SHA-256 of the token in hex (65 bytes with the NUL). */
	int (*user_create)(th_meta *m, const char *name, const char *token_hash, th_error *err);
	int (*user_get)(th_user_info *out, th_meta *m, const char *name, th_error *err);
	int (*token_create)(th_meta *m, const char *user, const char *token_hash, th_error *err);
	/* TH_EAUTH when no token has this hash. Records the last use, best effort. */
	int (*token_lookup)(char user_out[65], th_meta *m, const char *token_hash, th_error *err);

	/* Databases. */
	int (*db_create)(th_meta *m, const char *owner, const char *name, const char *description,
	                 int is_private, th_error *err);
	int (*db_get)(th_db_info *out, th_meta *m, const char *owner, const char *name,
	              th_error *err);
	int (*db_list)(th_db_list *out, th_meta *m, const char *owner, th_error *err);

	/* Operations. `id` is made by the front end; the lists return at most `limit` items from
	 * `offset` and set *more when there are further ones. fail stores `result_json` (may be
	 * NULL) beside the message. */
	int (*op_create)(th_meta *m, const char *id, const th_op_new *op, th_error *err);
	int (*op_get)(th_op_info *out, th_meta *m, const char *id, th_error *err);
	int (*op_list)(th_op_list *out, int *more, th_meta *m, const th_meta_op_filter *f,
	               int64_t offset, size_t limit, th_error *err);
	int (*op_claim)(th_op_info *out, th_meta *m, int64_t lease_ms, th_error *err);
	int (*op_requeue_running)(int *n_out, th_meta *m, th_error *err);
	int (*op_extend)(th_meta *m, const char *id, int attempt, int64_t lease_ms, th_error *err);
	int (*op_progress)(th_meta *m, const char *id, int attempt, uint64_t bytes_read,
	                   uint64_t rows, int64_t lease_ms, th_error *err);
	int (*op_complete)(th_meta *m, const char *id, int attempt, const char *result_json,
	                   int64_t pull_id, th_error *err);
	int (*op_fail)(th_meta *m, const char *id, int attempt, const char *message, uint64_t line,
	               uint32_t column, const char *result_json, th_error *err);

	/* Pull requests; title and description are never NULL on create. */
	int (*pull_create)(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *title,
	                   const char *description, const char *author, const char *from_branch,
	                   const char *to_branch, th_error *err);
	int (*pull_get)(th_pull_info *out, th_meta *m, int64_t db_id, int64_t pull_id,
	                th_error *err);
	int (*pull_find_open)(int64_t *pull_id_out, th_meta *m, int64_t db_id,
	                      const char *from_branch, const char *to_branch, th_error *err);
	int (*pull_list)(th_pull_list *out, int *more, th_meta *m, int64_t db_id,
	                 th_pull_state state, int64_t offset, size_t limit, th_error *err);
	int (*pull_update)(th_meta *m, int64_t db_id, int64_t pull_id, const char *title,
	                   const char *description, th_error *err);
	int (*pull_set_state)(th_meta *m, int64_t db_id, int64_t pull_id, th_pull_state state,
	                      const char *merge_commit, th_error *err);

	/* Notes: comments (status 0) and reviews of a pull, already validated. */
	int (*note_add)(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
	                const char *author, th_review_status status, const char *body,
	                th_error *err);
	int (*note_list)(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
	                 int reviews, th_error *err);
};

/* The backends. */
extern const th_meta_ops th_meta_sqlite_ops;

#endif
