/* meta_sqlite.h: the SQLite metadata backend's private header, shared by storage/meta_sqlite.c
 * (open, migrations, close, the statement helpers, the ops table) and the per-resource files
 * meta_users.c, meta_dbs.c, meta_queue.c, meta_pulls.c, meta_teams.c and meta_forks.c.
 *
 * One connection per th_meta, guarded by a mutex. Statements are prepared once per connection, on
 * first use, into a fixed table of slots (th_msql_slot) and reset after every use; a statement is
 * described by a static th_msql_stmt beside the code that runs it (its slot, what it does for error
 * messages, its SQL). All reads and writes go through two helpers:
 *   th_msql__run / th_msql__run_locked   bind, step every row through a callback, reset;
 *   th_msql__list                        the same into a growing array of items, with a limit;
 * and multi-statement writes through th_msql__tx (BEGIN IMMEDIATE ... COMMIT under the mutex).
 */
#ifndef TABLEHUB_STORAGE_META_SQLITE_H
#define TABLEHUB_STORAGE_META_SQLITE_H

#include <pthread.h>
#include <stdarg.h>

#include <sqlite3.h>

#include "meta_backend.h"

/* One slot per statement the backend runs. */
typedef enum {
	MS_BEGIN,
	MS_NODE_ID,
	MS_COMMIT,
	MS_ROLLBACK,
	MS_USER_INSERT,
	MS_USER_GET,
	MS_USER_EXISTS,
	MS_TOKEN_INSERT,
	MS_TOKEN_TOUCH,
	MS_DB_INSERT,
	MS_DB_GET,
	MS_DB_LIST,
	MS_OP_INSERT,
	MS_OP_GET,
	MS_OP_LIST_DB,
	MS_OP_LIST_CREATOR,
	MS_OP_CLAIM,
	MS_OP_REQUEUE,
	MS_OP_FENCE,
	MS_OP_EXTEND,
	MS_OP_PROGRESS,
	MS_OP_COMPLETE,
	MS_OP_FAIL,
	MS_PULL_DB_EXISTS,
	MS_PULL_NEXT_ID,
	MS_PULL_INSERT,
	MS_PULL_GET,
	MS_PULL_FIND_OPEN,
	MS_PULL_LIST,
	MS_PULL_UPDATE,
	MS_PULL_SET_STATE,
	MS_PULL_STATE,
	MS_NOTE_PULL_EXISTS,
	MS_COMMENT_NEXT_ID,
	MS_COMMENT_INSERT,
	MS_COMMENT_LIST,
	MS_REVIEW_NEXT_ID,
	MS_REVIEW_INSERT,
	MS_REVIEW_LIST,
	/* accounts and tokens (meta_users.c) */
	MS_USER_REGISTER,
	MS_USER_EMAIL_TAKEN,
	MS_USER_PASSWORD_GET,
	MS_USER_PASSWORD_SET,
	MS_TOKEN_ISSUE,
	MS_TOKEN_AUTH,
	MS_TOKEN_LIST,
	MS_TOKEN_REVOKE,
	MS_TOKEN_REVOKE_HASH,
	MS_SESSION_PRUNE,
	/* collaborators, protection, review heads, events (meta_teams.c) */
	MS_ACCESS_DB_EXISTS,
	MS_COLLAB_ROLE,
	MS_COLLAB_UPSERT,
	MS_COLLAB_DELETE,
	MS_COLLAB_LIST,
	MS_PROTECT_UPSERT,
	MS_PROTECT_GET,
	MS_PROTECT_DELETE,
	MS_PROTECT_LIST,
	MS_REVIEW_SET_HEAD,
	MS_REVIEW_HEADS,
	MS_EVENT_INSERT,
	MS_EVENT_LIST,
	/* forks (meta_forks.c) */
	MS_FORK_INSERT,
	MS_FORK_INFO,
	MS_FORK_LIST,
	MS_FORK_BY_OP,
	MS_PULL_SET_SOURCE,
	MS_PULL_SOURCE,
	/* releases (meta_releases.c) */
	MS_RELEASE_INSERT,
	MS_RELEASE_LIST,
	MS_NSLOTS
} th_msql_slot;

/* A statement: its slot, what it does (in error messages: "meta.sqlite: <what>: <sqlite's>"),
 * and its text. Always static: the slot keeps the statement prepared from `sql`. */
typedef struct th_msql_stmt {
	th_msql_slot slot;
	const char *what;
	const char *sql;
} th_msql_stmt;

typedef struct th_msql {
	th_meta base; /* first: a th_meta * is a th_msql * */
	sqlite3 *db;
	pthread_mutex_t mu;
	sqlite3_stmt *stmts[MS_NSLOTS]; /* prepared on first use, finalized at close */
} th_msql;

/* Called for each result row of a statement; returns TH_OK or a negative th_code (which stops
 * the statement and is returned by the run). Column values are valid only during the call. */
typedef int (*th_msql_row_fn)(void *ctx, sqlite3_stmt *st, th_error *err);

/* Run `stmt` with the arguments after `types` bound to ?1, ?2 ... one per character of `types`:
 *   's' const char * (NULL binds "")       'n' const char * (NULL binds SQL NULL)
 *   'i' int64_t                            'd' int
 * Each result row goes to row(ctx, st, err) (row NULL: rows are only counted). The statement is
 * reset before returning. Returns the number of rows for a read-only statement and the number of
 * rows changed for a write, or TH_EEXISTS (a constraint failed), TH_ESTORE, or the error `row`
 * returned. th_msql__run takes the connection's mutex; th_msql__run_locked expects it held
 * (inside th_msql__tx). */
int th_msql__run(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx, th_error *err,
                 const char *types, ...);
int th_msql__run_locked(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx,
                        th_error *err, const char *types, ...);

/* The paged-list loop: run `stmt` (which must select at most limit + 1 rows when limit > 0) under
 * the mutex, reading each row with read(item, st, err) into a growing array of `item_size` items.
 * With limit > 0 a row beyond it sets *more_out (may be NULL) instead of being read. On success
 * *items_out (caller frees each item with `dispose`, then the array) and *n_out are set; on error
 * the items read so far are disposed of and the outputs are untouched. Arguments as th_msql__run.
 */
int th_msql__list(void **items_out, size_t *n_out, int *more_out, th_msql *s,
                  const th_msql_stmt *stmt, size_t item_size, size_t limit,
                  int (*read)(void *item, sqlite3_stmt *st, th_error *err),
                  void (*dispose)(void *item), th_error *err, const char *types, ...);

/* Run fn(s, ctx, err) in a BEGIN IMMEDIATE transaction under the mutex: committed when fn returns
 * TH_OK (the commit's error is returned if it fails), rolled back otherwise. Returns what fn or the
 * commit returned. */
int th_msql__tx(th_msql *s, int (*fn)(th_msql *s, void *ctx, th_error *err), void *ctx,
                th_error *err);

/* Column helpers: text ("" for NULL), a bounded copy, a heap copy (NULL columns give NULL when
 * keep_null, "" otherwise; TH_ENOMEM on failure). */
const char *th_msql__text(sqlite3_stmt *st, int i);
void th_msql__copy(char *dst, size_t size, sqlite3_stmt *st, int i);
int th_msql__dup(char **out, sqlite3_stmt *st, int i, int keep_null, th_error *err);

/* The SQLite error of the last call on `s`, as TH_ESTORE "meta.sqlite: <what>: <message>"
 * (TH_ENOSPC when the disk is full). */
int th_msql__error(th_msql *s, const char *what, th_error *err);

/* The backend's ops, by resource (meta_users.c, meta_dbs.c, meta_queue.c, meta_pulls.c). */
int th_msql__user_create(th_meta *m, const char *name, const char *token_hash, th_error *err);
int th_msql__user_get(th_user_info *out, th_meta *m, const char *name, th_error *err);
int th_msql__token_create(th_meta *m, const char *user, const char *token_hash, th_error *err);
/* 1 when user `name` exists, 0 when not, or a negative th_code; the mutex must be held. */
int th_msql__user_exists_locked(th_msql *s, const char *name, th_error *err);
/* Insert event `ev` (NULL: nothing) with the mutex held, inside the caller's transaction. */
int th_msql__event_locked(th_msql *s, const th_event_new *ev, th_error *err);

/* The access ops (meta_users.c: accounts and tokens; meta_teams.c: the rest). */
extern const th_meta_access_ops th_msql__access_ops;
int th_msql__user_register(th_meta *m, const char *name, const char *email,
                           const char *password_hash, const th_event_new *ev, th_error *err);
int th_msql__user_password_get(char hash_out[TH_PASSWORD_HASH_SIZE], th_meta *m, const char *name,
                               th_error *err);
int th_msql__user_password_set(th_meta *m, const char *name, const char *password_hash,
                               th_error *err);
int th_msql__token_insert(th_token_info *out, th_meta *m, const th_token_spec *t, const char *hash,
                          const th_event_new *ev, th_error *err);
int th_msql__token_auth(th_token_info *out, th_meta *m, const char *hash, int64_t now,
                        th_error *err);
int th_msql__token_list(th_token_list *out, th_meta *m, const char *user, th_error *err);
int th_msql__token_revoke(th_meta *m, const char *user, int64_t token_id, const th_event_new *ev,
                          th_error *err);
int th_msql__token_revoke_hash(th_meta *m, const char *hash, const th_event_new *ev, th_error *err);
/* Forks (meta_forks.c). */
int th_msql__fork_insert(int64_t *id_out, th_meta *m, const char *owner, int64_t parent_id,
                         const char *op_id, const th_event_new *ev, th_error *err);
int th_msql__fork_info(th_fork_info *out, th_meta *m, int64_t db_id, th_error *err);
int th_msql__fork_list(th_fork_list *out, th_meta *m, int64_t parent_id, th_error *err);
int th_msql__fork_by_op(th_fork_info *out, th_meta *m, const char *op_id, th_error *err);
int th_msql__pull_set_source(th_meta *m, int64_t db_id, int64_t pull_id, int64_t from_db_id,
                             th_error *err);
int th_msql__pull_source(int64_t *from_db_id, th_meta *m, int64_t db_id, int64_t pull_id,
                         th_error *err);
/* Releases (meta_releases.c). */
int th_msql__release_insert(th_meta *m, int64_t db_id, const th_release_new *r,
                            const th_event_new *ev, th_error *err);
int th_msql__release_list(th_release_list *out, th_meta *m, int64_t db_id, th_error *err);

int th_msql__db_create(th_meta *m, const char *owner, const char *name, const char *description,
                       int is_private, th_error *err);
int th_msql__db_get(th_db_info *out, th_meta *m, const char *owner, const char *name,
                    th_error *err);
int th_msql__db_list(th_db_list *out, th_meta *m, const char *owner, th_error *err);

int th_msql__op_create(th_meta *m, const char *id, const th_op_new *op, th_error *err);
int th_msql__op_get(th_op_info *out, th_meta *m, const char *id, th_error *err);
int th_msql__op_list(th_op_list *out, int *more, th_meta *m, const th_meta_op_filter *f,
                     int64_t offset, size_t limit, th_error *err);
int th_msql__op_claim(th_op_info *out, th_meta *m, int64_t lease_ms, th_error *err);
int th_msql__op_requeue_running(int *n_out, th_meta *m, th_error *err);
int th_msql__op_extend(th_meta *m, const char *id, int attempt, int64_t lease_ms, th_error *err);
int th_msql__op_progress(th_meta *m, const char *id, int attempt, uint64_t bytes_read,
                         uint64_t rows, int64_t lease_ms, th_error *err);
int th_msql__op_complete(th_meta *m, const char *id, int attempt, const char *result_json,
                         int64_t pull_id, th_error *err);
int th_msql__op_fail(th_meta *m, const char *id, int attempt, const char *message, uint64_t line,
                     uint32_t column, const char *result_json, th_error *err);

int th_msql__pull_create(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *title,
                         const char *description, const char *author, const char *from_branch,
                         const char *to_branch, th_error *err);
int th_msql__pull_find_or_create(int64_t *pull_id_out, int *created_out, th_meta *m, int64_t db_id,
                                 const char *title, const char *description, const char *author,
                                 const char *from_branch, const char *to_branch, th_error *err);
int th_msql__pull_get(th_pull_info *out, th_meta *m, int64_t db_id, int64_t pull_id, th_error *err);
int th_msql__pull_find_open(int64_t *pull_id_out, th_meta *m, int64_t db_id,
                            const char *from_branch, const char *to_branch, th_error *err);
int th_msql__pull_list(th_pull_list *out, int *more, th_meta *m, int64_t db_id, th_pull_state state,
                       int64_t offset, size_t limit, th_error *err);
int th_msql__pull_update(th_meta *m, int64_t db_id, int64_t pull_id, const char *title,
                         const char *description, th_error *err);
int th_msql__pull_set_state(th_meta *m, int64_t db_id, int64_t pull_id, th_pull_state state,
                            const char *merge_commit, th_error *err);
int th_msql__note_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
                      const char *author, th_review_status status, const char *body, th_error *err);
int th_msql__note_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                       int reviews, th_error *err);

#endif
