/* meta_sql.h: the SQL metadata backends' private header: the statement layer both backends share
 * (SQLite, storage/meta_sqlite.c; PostgreSQL, storage/meta_pg.c) and the per-resource files that
 * run on it: meta_users.c, meta_dbs.c, meta_queue.c, meta_pulls.c, meta_teams.c, meta_forks.c,
 * meta_releases.c, meta_files.c, meta_control.c and meta_limits.c.
 *
 * The resource files are written once: they describe each statement as a static th_msql_stmt (its
 * slot, what it does for error messages, its SQL with ?1, ?2 ... parameters, and a PostgreSQL text
 * where the dialects differ), run it through th_msql__run / _run_locked / _list / _tx, and read
 * rows through the neutral th_mrow (text, int64 and is-null by column). A driver (th_msql_driver)
 * implements the runs for its engine: it prepares every statement once per connection, into the
 * slot of the statement, and maps its errors (a constraint -> TH_EEXISTS, the rest -> TH_ESTORE).
 *
 * Pinning: th_msql__lock gives the calling thread one connection (SQLite: the one connection's
 * mutex; PostgreSQL: a connection of the pool) until th_msql__unlock; th_msql__run_locked runs on
 * it. A statement and the read that explains its outcome (fence_error in meta_queue.c) run pinned,
 * and th_msql__tx pins for the whole transaction.
 */
#ifndef TABLEHUB_STORAGE_META_SQL_H
#define TABLEHUB_STORAGE_META_SQL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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
	/* requested reviewers, pull options, search, merged (meta_reviewers.c) */
	MS_REVIEWER_PULL_EXISTS,
	MS_REVIEWER_INSERT,
	MS_REVIEWER_DELETE,
	MS_REVIEWER_LIST,
	MS_PULL_OPTIONS_SET,
	MS_PULL_OPTIONS_GET,
	MS_PULL_SEARCH,
	MS_PULL_MARK_MERGED,
	MS_NSLOTS
} th_msql_slot;

/* A statement: its slot (MS_NOSLOT: prepared each time it runs, for the rare statements of
 * meta_files.c, meta_control.c and meta_limits.c), what it does (in error messages:
 * "meta.sqlite: <what>: <engine's message>"), its text with ?N parameters, and the PostgreSQL
 * text where the dialects differ (NULL: `sql`, its ?N read as $N). Static for a slot: the slot
 * keeps the statement prepared from its text. */
#define MS_NOSLOT (-1)
typedef struct th_msql_stmt {
	int slot; /* a th_msql_slot or MS_NOSLOT */
	const char *what;
	const char *sql;
	const char *pg;
} th_msql_stmt;

/* A result row, read by column (0 first) through the functions below; valid only during the row
 * callback. A driver fills it in: `impl` and `row` are its own. */
typedef struct th_mrow th_mrow;
typedef struct th_mrow_ops {
	const char *(*text)(const th_mrow *r, int i); /* NULL for SQL NULL */
	size_t (*len)(const th_mrow *r, int i);
	int64_t (*int64)(const th_mrow *r, int i);
} th_mrow_ops;
struct th_mrow {
	const th_mrow_ops *ops;
	void *impl;
	int row;
};

/* Column i as text ("" for NULL), its length in bytes, as an int64 (0 for NULL; booleans are 0
 * and 1), and whether it is NULL. */
const char *th_msql__text(const th_mrow *r, int i);
size_t th_msql__len(const th_mrow *r, int i);
int64_t th_msql__int(const th_mrow *r, int i);
int th_msql__null(const th_mrow *r, int i);
/* A bounded copy of column i; a heap copy (NULL columns give NULL when keep_null, "" otherwise;
 * TH_ENOMEM on failure). */
void th_msql__copy(char *dst, size_t size, const th_mrow *r, int i);
int th_msql__dup(char **out, const th_mrow *r, int i, int keep_null, th_error *err);

/* Called for each result row of a statement; returns TH_OK or a negative th_code (which stops
 * the statement and is returned by the run). */
typedef int (*th_msql_row_fn)(void *ctx, const th_mrow *r, th_error *err);

typedef struct th_msql th_msql;

/* What an engine implements. Every call but lock runs on the connection the calling thread has
 * pinned with lock. */
typedef struct th_msql_driver {
	/* Run `stmt` with the arguments `types` describes (th_msql__run), each row to row(ctx,
	 * r, err) when row is not NULL. Returns the number of rows read (a query) or changed (a
	 * write, RETURNING or not), TH_EEXISTS (a constraint failed), TH_ESTORE/TH_ENOSPC, or what
	 * row returned. */
	int (*run)(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx,
	           th_error *err, const char *types, va_list ap);
	/* Pin a connection to the calling thread (TH_ESTORE when none can be had). */
	int (*lock)(th_msql *s, th_error *err);
	void (*unlock)(th_msql *s);
	/* Open, commit and roll back a transaction that orders its writes after every other
	 * transaction's (SQLite: BEGIN IMMEDIATE). rollback is best effort, any time. */
	int (*begin)(th_msql *s, th_error *err);
	int (*commit)(th_msql *s, th_error *err);
	void (*rollback)(th_msql *s);
	/* After unlock: make the commits the calling thread made while it held the connection
	 * durable. Returns TH_OK, TH_ESTORE or TH_ENOSPC. NULL when every commit is durable when it
	 * returns (PostgreSQL waits for the server's disk). Lazy commits (th_meta_lazy) are the
	 * driver's to honour: while th_msql__lazy_thread is set for the thread holding the
	 * connection, its commits need not be on disk, as long as a crash keeps them in order (a
	 * later commit on disk brings every earlier one with it). SQLite syncs its WAL here,
	 * outside the connection's mutex, unless the thread was lazy. */
	int (*settle)(th_msql *s, th_error *err);
} th_msql_driver;

/* The part of an SQL backend's handle the statement layer reads; a driver's handle embeds it
 * first. */
struct th_msql {
	th_meta base; /* first: a th_meta * is a th_msql * */
	const th_msql_driver *drv;
};

/* Run `stmt` with the arguments after `types` bound to ?1, ?2 ... one per character of `types`:
 *   's' const char * (NULL binds "")       'n' const char * (NULL binds SQL NULL)
 *   'i' int64_t                            'd' int
 * A statement in a slot is always run with the same `types` (PostgreSQL types its parameters
 * from them when it prepares it). Each result row goes to row(ctx, r, err) (row NULL: rows are
 * only counted). Returns the number of rows for a read-only statement and the number of rows
 * changed for a write, or TH_EEXISTS (a constraint failed), TH_ESTORE, or the error `row`
 * returned. th_msql__run pins a connection for the call; th_msql__run_locked expects one pinned
 * (th_msql__lock, or inside th_msql__tx). */
int th_msql__run(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx, th_error *err,
                 const char *types, ...);
int th_msql__run_locked(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx,
                        th_error *err, const char *types, ...);
int th_msql__vrun_locked(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx,
                         th_error *err, const char *types, va_list ap);

/* Run `sql`, prepared as it runs (no slot: for rare statements), with `what` naming it in error
 * messages; arguments and result as th_msql__run (which pins a connection for the call) and
 * th_msql__run_locked (a connection already pinned). */
int th_msql__exec(th_msql *s, const char *what, const char *sql, th_msql_row_fn row, void *ctx,
                  th_error *err, const char *types, ...);
int th_msql__exec_locked(th_msql *s, const char *what, const char *sql, th_msql_row_fn row,
                         void *ctx, th_error *err, const char *types, ...);

/* Pin a connection to the calling thread until th_msql__unlock (see the head of this file).
 * Returns TH_OK or TH_ESTORE (no connection to be had). Not recursive. */
int th_msql__lock(th_msql *s, th_error *err);
void th_msql__unlock(th_msql *s);
/* th_msql__unlock for a thread whose commits a client will be told of: when `result` (the work's
 * outcome) succeeded, returns it once those commits are durable, or TH_ESTORE/TH_ENOSPC; a
 * failed `result` is returned as it is. th_msql__run, _exec, _list and _tx end with it. */
int th_msql__unlock_settle(th_msql *s, int result, th_error *err);

/* The paged-list loop: run `stmt` (which must select at most limit + 1 rows when limit > 0),
 * reading each row with read(item, r, err) into a growing array of `item_size` items. With limit
 * > 0 a row beyond it sets *more_out (may be NULL) instead of being read. On success *items_out
 * (caller frees each item with `dispose`, then the array) and *n_out are set; on error the items
 * read so far are disposed of and the outputs are untouched. Arguments as th_msql__run. */
int th_msql__list(void **items_out, size_t *n_out, int *more_out, th_msql *s,
                  const th_msql_stmt *stmt, size_t item_size, size_t limit,
                  int (*read)(void *item, const th_mrow *r, th_error *err),
                  void (*dispose)(void *item), th_error *err, const char *types, ...);

/* Run fn(s, ctx, err) in a transaction on a pinned connection (the driver's begin: its writes
 * are ordered after every other transaction's): committed when fn returns TH_OK (the commit's
 * error is returned if it fails), rolled back otherwise. Returns what fn or the commit returned.
 */
int th_msql__tx(th_msql *s, int (*fn)(th_msql *s, void *ctx, th_error *err), void *ctx,
                th_error *err);

/* The ops table of an SQL backend: the per-resource functions below, with its name, open and
 * close. */
#define TH_MSQL_OPS(NAME, OPEN, CLOSE, COORD)                                                      \
	{                                                                                          \
		.name = NAME, .open = OPEN, .close = CLOSE, .user_create = th_msql__user_create,   \
		.user_get = th_msql__user_get, .token_create = th_msql__token_create,              \
		.db_create = th_msql__db_create, .db_get = th_msql__db_get,                        \
		.db_list = th_msql__db_list, .op_create = th_msql__op_create,                      \
		.op_get = th_msql__op_get, .op_list = th_msql__op_list,                            \
		.op_claim = th_msql__op_claim, .op_requeue_running = th_msql__op_requeue_running,  \
		.op_extend = th_msql__op_extend, .op_progress = th_msql__op_progress,              \
		.op_complete = th_msql__op_complete, .op_fail = th_msql__op_fail,                  \
		.pull_create = th_msql__pull_create,                                               \
		.pull_find_or_create = th_msql__pull_find_or_create,                               \
		.pull_get = th_msql__pull_get, .pull_find_open = th_msql__pull_find_open,          \
		.pull_list = th_msql__pull_list, .pull_update = th_msql__pull_update,              \
		.pull_set_state = th_msql__pull_set_state, .note_add = th_msql__note_add,          \
		.note_list = th_msql__note_list, .access = &th_msql__access_ops, .coord = COORD,   \
	}

/* The backend's ops, by resource (meta_users.c, meta_dbs.c, meta_queue.c, meta_pulls.c). */
int th_msql__user_create(th_meta *m, const char *name, const char *token_hash, th_error *err);
int th_msql__user_get(th_user_info *out, th_meta *m, const char *name, th_error *err);
int th_msql__token_create(th_meta *m, const char *user, const char *token_hash, th_error *err);
/* 1 when user `name` exists, 0 when not, or a negative th_code; a connection must be pinned. */
int th_msql__user_exists_locked(th_msql *s, const char *name, th_error *err);
/* Insert event `ev` (NULL: nothing) inside the caller's transaction. */
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
/* Requested reviewers, pull options, the pull search, the merge with its event
 * (meta_reviewers.c). */
int th_msql__reviewer_add(int *added_out, th_meta *m, int64_t db_id, int64_t pull_id,
                          const char *const *users, size_t n, const char *by,
                          const th_event_new *ev, th_error *err);
int th_msql__reviewer_remove(th_meta *m, int64_t db_id, int64_t pull_id, const char *user,
                             const th_event_new *ev, th_error *err);
int th_msql__reviewer_list(th_reviewer_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                           th_error *err);
int th_msql__pull_options_set(th_meta *m, int64_t db_id, int64_t pull_id, const th_pull_options *o,
                              th_error *err);
int th_msql__pull_options_get(th_pull_options *out, th_meta *m, int64_t db_id, int64_t pull_id,
                              th_error *err);
int th_msql__pull_search(th_pull_list *out, int *more, th_meta *m, int64_t db_id,
                         const th_pull_filter *f, int64_t offset, size_t limit, th_error *err);
int th_msql__pull_mark_merged(th_meta *m, int64_t db_id, int64_t pull_id, const char *merge_commit,
                              const th_event_new *ev, th_error *err);

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

/* Link file record `id` to operation op_id (file_operations) and set the file's last use, in the
 * caller's transaction (connection held). Returns TH_OK, TH_ENOTFOUND (no such file: nothing
 * written) or TH_ESTORE. */
int th_msql__file_link_locked(th_msql *s, const char *id, const char *op_id, th_error *err);

/* Set by th_meta_lazy for the calling thread; a driver that can commits that thread's writes
 * lazily while it is set (th_msql_driver). */
extern _Thread_local int th_msql__lazy_thread;

#endif
