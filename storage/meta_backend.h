/* meta_backend.h: what a metadata backend implements (private to storage/).
 *
 * The public th_meta_* functions (include/tablehub/meta.h, storage/meta.c) check their arguments,
 * make tokens, uuids and page tokens, and then call the backend through its th_meta_ops table.
 * A backend therefore only stores and reads: it sees names already validated, token hashes (never
 * tokens), page offsets (never page tokens) and fully formed ids. SQLite (storage/meta_sqlite*.c)
 * (storage/meta_sqlite.c) and PostgreSQL (storage/meta_pg.c) fill it with the same per-resource
 * functions, written once on the statement layer of storage/meta_sql.h.
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
#include "tablehub/meta_access.h"
#include "tablehub/password.h"

typedef struct th_meta_ops th_meta_ops;
typedef struct th_meta_access_ops th_meta_access_ops;
typedef struct th_meta_coord_ops th_meta_coord_ops;

/* The part of every backend's handle that the front end reads. */
struct th_meta {
	const th_meta_ops *ops;
	/* Lease owner of this handle's claims: the backend's open sets the store's default, the
	 * front end replaces it when the caller gives one. */
	char node_id[TH_META_NODE_ID_SIZE];
	/* The coordination state of a shared store (its coord ops make and free it; NULL else). */
	void *coord;
};

/* Which operations a list returns: owner and db, or creator (the other NULL); kind NULL = any;
 * state (as stored: "Pending", ...) NULL = any. */
typedef struct th_meta_op_filter {
	const char *owner;
	const char *db;
	const char *creator;
	const char *kind;
	const char *state;
} th_meta_op_filter;

struct th_meta_ops {
	const char *name; /* "sqlite", "postgresql" */

	/* Open the store of data dir `data_dir` at `url` (SQLite: NULL, DIR/meta.sqlite) into *out
	 * (closed with close), with the store's default node id in (*out)->node_id. */
	int (*open)(th_meta **out, const char *data_dir, const char *url, th_error *err);
	void (*close)(th_meta *m);

	/* Users and tokens: the hash is SHA-256 of the token in hex (65 bytes with the NUL). */
	int (*user_create)(th_meta *m, const char *name, const char *token_hash, th_error *err);
	int (*user_get)(th_user_info *out, th_meta *m, const char *name, th_error *err);
	int (*token_create)(th_meta *m, const char *user, const char *token_hash, th_error *err);

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
	/* claim records m->node_id as the lease owner; requeue_running touches only its leases. */
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
	/* The Open pull of the branch pair, else a new one (*created_out = 1), atomically. */
	int (*pull_find_or_create)(int64_t *pull_id_out, int *created_out, th_meta *m,
	                           int64_t db_id, const char *title, const char *description,
	                           const char *author, const char *from_branch,
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

	/* Accounts, tokens, roles, protection and events (meta_access.h). */
	const th_meta_access_ops *access;

	/* Coordination of the processes sharing the store (meta_coord.h); NULL for a store one
	 * process holds alone (SQLite): storage/meta_coord.c then does what one process needs. */
	const th_meta_coord_ops *coord;
};

/* The access ops. Each change takes the event `ev` (may be NULL) that records it and writes both
 * in one transaction. Hashes are SHA-256 in hex for tokens and Argon2id strings for passwords:
 * the front end (storage/meta_access.c) makes both, and checks names, roles and ranges. */
struct th_meta_access_ops {
	/* TH_EEXISTS "user 'x' already exists" or "email ... is taken". */
	int (*user_register)(th_meta *m, const char *name, const char *email,
	                     const char *password_hash, const th_event_new *ev, th_error *err);
	/* The stored password hash ("" when the user has none); TH_ENOTFOUND for no such user. */
	int (*user_password_get)(char hash_out[TH_PASSWORD_HASH_SIZE], th_meta *m, const char *name,
	                         th_error *err);
	int (*user_password_set)(th_meta *m, const char *name, const char *password_hash,
	                         th_error *err);

	/* Insert a token of existing t->user with hash `hash`; *out gets its record. The event's
	 * target, when NULL, becomes the new token's id. */
	int (*token_insert)(th_token_info *out, th_meta *m, const th_token_spec *t,
	                    const char *hash, const th_event_new *ev, th_error *err);
	/* The live token with this hash at time `now` (TH_EAUTH otherwise); records its last use,
	 * best effort, at most once a minute. */
	int (*token_auth)(th_token_info *out, th_meta *m, const char *hash, int64_t now,
	                  th_error *err);
	int (*token_list)(th_token_list *out, th_meta *m, const char *user, th_error *err);
	int (*token_revoke)(th_meta *m, const char *user, int64_t token_id, const th_event_new *ev,
	                    th_error *err);
	/* TH_EAUTH when no live token has this hash. */
	int (*token_revoke_hash)(th_meta *m, const char *hash, const th_event_new *ev,
	                         th_error *err);

	int (*collab_set)(int *created_out, th_meta *m, int64_t db_id, const char *user,
	                  th_role role, const th_event_new *ev, th_error *err);
	int (*collab_remove)(th_meta *m, int64_t db_id, const char *user, const th_event_new *ev,
	                     th_error *err);
	int (*collab_role)(th_role *out, th_meta *m, int64_t db_id, const char *user,
	                   th_error *err);
	int (*collab_list)(th_collab_list *out, th_meta *m, int64_t db_id, th_error *err);

	/* p's updated_by and updated_at are set by the front end. */
	int (*protection_set)(th_meta *m, int64_t db_id, const th_protection *p,
	                      const th_event_new *ev, th_error *err);
	int (*protection_get)(th_protection *out, th_meta *m, int64_t db_id, const char *branch,
	                      th_error *err);
	int (*protection_remove)(th_meta *m, int64_t db_id, const char *branch,
	                         const th_event_new *ev, th_error *err);
	int (*protection_list)(th_protection_list *out, th_meta *m, int64_t db_id, th_error *err);

	int (*review_set_head)(th_meta *m, int64_t db_id, int64_t pull_id, int64_t review_id,
	                       const char *head, th_error *err);
	int (*review_heads)(th_review_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
	                    th_error *err);

	/* Forks: insert the row of owner's fork of parent_id (its name, description and
	 * visibility the parent's), made by operation op_id; TH_EEXISTS when owner has that name.
	 */
	int (*fork_insert)(int64_t *id_out, th_meta *m, const char *owner, int64_t parent_id,
	                   const char *op_id, const th_event_new *ev, th_error *err);
	int (*fork_info)(th_fork_info *out, th_meta *m, int64_t db_id, th_error *err);
	int (*fork_list)(th_fork_list *out, th_meta *m, int64_t parent_id, th_error *err);
	int (*fork_by_op)(th_fork_info *out, th_meta *m, const char *op_id, th_error *err);
	int (*pull_set_source)(th_meta *m, int64_t db_id, int64_t pull_id, int64_t from_db_id,
	                       th_error *err);
	int (*pull_source)(int64_t *from_db_id, th_meta *m, int64_t db_id, int64_t pull_id,
	                   th_error *err);

	/* Releases (TH_EEXISTS when the tag has one). */
	int (*release_insert)(th_meta *m, int64_t db_id, const th_release_new *r,
	                      const th_event_new *ev, th_error *err);
	int (*release_list)(th_release_list *out, th_meta *m, int64_t db_id, th_error *err);

	/* Requested reviewers: add inserts the users not yet requested (the front end checked
	 * them) and counts them into *added_out, with `ev` in the same transaction; TH_ENOTFOUND
	 * for no such pull. remove: TH_ENOTFOUND when `user` was not requested. */
	int (*reviewer_add)(int *added_out, th_meta *m, int64_t db_id, int64_t pull_id,
	                    const char *const *users, size_t n, const char *by,
	                    const th_event_new *ev, th_error *err);
	int (*reviewer_remove)(th_meta *m, int64_t db_id, int64_t pull_id, const char *user,
	                       const th_event_new *ev, th_error *err);
	int (*reviewer_list)(th_reviewer_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
	                     th_error *err);
	/* A pull's options (all 0 when never set); set: TH_ENOTFOUND for no such pull. */
	int (*pull_options_set)(th_meta *m, int64_t db_id, int64_t pull_id,
	                        const th_pull_options *o, th_error *err);
	int (*pull_options_get)(th_pull_options *out, th_meta *m, int64_t db_id, int64_t pull_id,
	                        th_error *err);
	/* The pulls f selects, newest first, paged as pull_list. */
	int (*pull_search)(th_pull_list *out, int *more, th_meta *m, int64_t db_id,
	                   const th_pull_filter *f, int64_t offset, size_t limit, th_error *err);
	/* An Open pull marked Merged with its commit and its event, in one transaction; errors as
	 * pull_set_state. */
	int (*pull_mark_merged)(th_meta *m, int64_t db_id, int64_t pull_id,
	                        const char *merge_commit, const th_event_new *ev, th_error *err);

	int (*event_add)(th_meta *m, const th_event_new *ev, th_error *err);
	/* At most `limit` events from `offset`, newest first; *more when there are further ones. */
	int (*event_list)(th_event_list *out, int *more, th_meta *m, int64_t db_id, int64_t offset,
	                  size_t limit, th_error *err);
};

/* The coordination ops (meta_coord.h): each as the public function of the same name, with the
 * names checked and the key made by the front end. */
struct th_meta_coord_ops {
	/* Take the lock of `key`, blocking; *held_out is the backend's (its connection). */
	int (*dblock_take)(void **held_out, th_meta *m, int64_t key, int shared, th_error *err);
	void (*dblock_release)(th_meta *m, void *held);
	int (*work_notify)(th_meta *m, th_error *err);
	int (*work_wait)(th_meta *m, int64_t timeout_ms, th_error *err);
	/* Free m->coord, before the backend's close. */
	void (*close)(th_meta *m);
};

/* Paging, one rule for every list (storage/meta.c). A page token is the decimal offset of the
 * page's first item: th_meta__page_parse sets *offset from `tok` (NULL or "": 0) and returns TH_OK
 * or TH_EINVALID "invalid page token". th_meta__page_limit is `limit` within [1, max] (0: the
 * default page of 50). th_meta__page_next writes the next page's token into next_out (may be
 * NULL), or "" when `more` is 0: the page at `offset` held n items. */
int th_meta__page_parse(int64_t *offset, const char *tok, th_error *err);
size_t th_meta__page_limit(size_t limit, size_t max);
void th_meta__page_next(char next_out[TH_PAGE_TOKEN_SIZE], int more, int64_t offset, size_t n);

/* The backends. */
extern const th_meta_ops th_meta_sqlite_ops;
extern const th_meta_ops th_meta_pg_ops;

#endif
