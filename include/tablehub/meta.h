/* meta.h: the metadata store: users, API tokens, databases, operations (the job queue), pull
 * requests with their comments and reviews.
 *
 * The store sits behind an ops table (storage/meta_backend.h): these functions check their
 * arguments and dispatch to the backend th_meta_open chose. The one backend today is SQLite,
 * DIR/meta.sqlite (storage/meta_sqlite*.c): one connection per th_meta in WAL mode (foreign keys
 * on, a busy timeout, statements prepared once per connection) guarded by a mutex, so every
 * th_meta_* call is serialized and one th_meta may be shared by any number of threads (the HTTP
 * server's and the job workers'). Several processes may open the same file at once (`serve` beside
 * `user add`); SQLite's own locking orders their writes. Schema migrations are numbered (PRAGMA
 * user_version) and applied by th_meta_open, each in its own transaction.
 *
 * Times are integer milliseconds since the epoch (UTC); th_time_fmt gives the ISO-8601 text
 * the API shows ("2023-05-23T17:46:45.035Z"). Names (users, owners, databases) are 1-64 bytes of
 * [A-Za-z0-9_-] (th_name_valid in text.h); callers validate them, the store rejects longer ones
 * with TH_EINVALID. Heap strings inside the *_info structs belong to the struct and are released by
 * its _dispose function; a list's items by the list's _dispose. On error, outputs are untouched.
 * No SQLite type appears here.
 */
#ifndef TABLEHUB_META_H
#define TABLEHUB_META_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "ids.h"

typedef struct th_meta th_meta;

/* Open (creating when missing) DIR/meta.sqlite, or the PostgreSQL store TABLEHUB_META names (see
 * th_meta_options), and apply any pending migrations. DIR must exist.
 * *out is the caller's, closed with th_meta_close. Its node id (see th_meta_open_with) is the
 * store's own. Returns TH_OK or TH_ESTORE (cannot open, the file is not a database, or it was
 * written by a newer tablehub). */
int th_meta_open(th_meta **out, const char *data_dir, th_error *err);

/* A node id: 1-64 bytes of [A-Za-z0-9_-]. */
#define TH_META_NODE_ID_SIZE 65

typedef struct th_meta_options {
	/* The node this th_meta acts for: its claims record it as the lease owner, and
	 * th_meta_op_requeue_running re-queues only its work. NULL = the store's own id, made once
	 * when the store is created and the same for every process that opens it (right for one
	 * machine serving one data dir). Nodes sharing one store give each a distinct id. */
	const char *node_id;
	/* Where the store lives: "postgresql://..." (or "postgres://...", a libpq URL, which may
	 * hold a password: it never appears in a message) for a PostgreSQL server shared by
	 * several nodes; NULL = the environment's TABLEHUB_META; NULL or "" there too =
	 * DIR/meta.sqlite. */
	const char *url;
} th_meta_options;

/* As th_meta_open, with options (NULL = defaults). Also TH_EINVALID for a malformed node id or
 * an address that is not a postgresql:// URL. */
int th_meta_open_with(th_meta **out, const char *data_dir, const th_meta_options *opts,
                      th_error *err);

/* The node id of `m` (borrowed, alive as long as `m`). */
const char *th_meta_node_id(const th_meta *m);
/* Close the connection. Accepts NULL. No call on `m` may be running. */
void th_meta_close(th_meta *m);

/* Until th_meta_lazy(m, 0), the calling thread's writes to `m` commit without waiting for the disk
 * where the store can (SQLite: synchronous=NORMAL; PostgreSQL waits as always). Such a write
 * becomes durable with the next durable commit of any thread, since the WAL keeps commits in order
 * and a crash keeps a prefix of them. So it is only for writes nobody is told of before a durable
 * commit follows: an upload's file record before its operation, an import's pull request before
 * the operation's completion. Calls do not nest. */
void th_meta_lazy(th_meta *m, int on);

/* The schema version this build migrates to (PRAGMA user_version after th_meta_open). */
int th_meta_schema_version(void);

/* --- users and tokens ------------------------------------------------------------------------ */

typedef struct th_user_info {
	char name[65];
	int64_t created_at;
} th_user_info;

/* Create user `name` and a first token for it, written to token_out. Returns TH_OK, TH_EEXISTS,
 * TH_EINVALID (bad name) or TH_ESTORE. */
int th_meta_user_create(char token_out[TH_TOKEN_SIZE], th_meta *m, const char *name, th_error *err);

/* Read user `name`. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_user_get(th_user_info *out, th_meta *m, const char *name, th_error *err);

/* Create another token for existing user `name`. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_token_create(char token_out[TH_TOKEN_SIZE], th_meta *m, const char *user,
                         th_error *err);

/* The user an API token belongs to, into user_out; records the token's last use. The stored hash
 * is compared in constant time. Returns TH_OK, TH_EAUTH (unknown, malformed, revoked or expired
 * token; the message never repeats the token) or TH_ESTORE. th_meta_token_auth (meta_access.h)
 * also gives the token's scope. */
int th_meta_token_lookup(char user_out[65], th_meta *m, const char *token, th_error *err);

/* --- databases ------------------------------------------------------------------------------- */

typedef struct th_db_info {
	int64_t id;
	char owner[65];
	char name[65];
	char *description; /* heap, never NULL after a successful get ("" when none) */
	int is_private;
	int64_t created_at;
} th_db_info;

/* Release the heap fields; the struct may be reused. Accepts NULL. */
void th_db_info_dispose(th_db_info *info);

/* Record database owner/name (description may be NULL). The repository itself is made by the
 * caller (th_repo_create). Returns TH_OK, TH_EEXISTS, TH_EINVALID (bad name) or TH_ESTORE. */
int th_meta_db_create(th_meta *m, const char *owner, const char *name, const char *description,
                      int is_private, th_error *err);

/* Read database owner/name into *out (dispose with th_db_info_dispose). Returns TH_OK,
 * TH_ENOTFOUND or TH_ESTORE. */
int th_meta_db_get(th_db_info *out, th_meta *m, const char *owner, const char *name, th_error *err);

typedef struct th_db_list {
	th_db_info *items;
	size_t n;
} th_db_list;

void th_db_list_dispose(th_db_list *l);

/* The databases of `owner` (NULL = all), ordered by owner then name. Returns TH_OK or TH_ESTORE. */
int th_meta_db_list(th_db_list *out, th_meta *m, const char *owner, th_error *err);

/* --- operations (the job queue) ----------------------------------------------------------- */

typedef enum {
	TH_OPSTATE_PENDING = 1,     /* "Pending" */
	TH_OPSTATE_IN_PROGRESS = 2, /* "In Progress" */
	TH_OPSTATE_COMPLETED = 3,   /* "Completed" */
	TH_OPSTATE_FAILED = 4,      /* "Failed" */
} th_op_state;

/* "Pending", "In Progress", "Completed", "Failed"; "" for anything else. */
const char *th_op_state_name(th_op_state s);
/* The state named exactly (case matters) by `s`, as th_op_state_name spells it; 0 if unknown or
 * NULL. */
th_op_state th_op_state_parse(const char *s);

typedef struct th_op_info {
	char id[TH_UUID_SIZE];
	char kind[16]; /* "import", "merge", "sqlwrite" (src/job_kinds.c) */
	char owner[65];
	char db[65];
	char creator[65];
	th_op_state state;
	char *params;           /* heap JSON text ("{}" when none) */
	char upload_sha256[65]; /* "" when none */
	char *file_name;        /* heap, "" when none */
	char *table_name;       /* heap, "" when none */
	char *branch_name;      /* heap, "" when none (= the default branch) */
	uint64_t bytes_total;
	uint64_t bytes_read;
	uint64_t rows_processed;
	char *result; /* heap JSON text: the result when Completed, the report (rejected rows,
	               * conflicts) or NULL when Failed, NULL before */
	char *error_message; /* heap, NULL unless Failed */
	uint64_t error_line; /* 0 when none */
	uint32_t error_column;
	int64_t lease_expires_at;               /* ms; 0 when not leased */
	char lease_owner[TH_META_NODE_ID_SIZE]; /* node id of the last claim; "" before any */
	int attempts;                           /* times claimed by a worker */
	int64_t pull_id; /* 0 when none: the pull an import opened, or the pull a merge merges */
	int64_t created_at;
	int64_t updated_at;
} th_op_info;

/* Release the heap fields. Accepts NULL. */
void th_op_info_dispose(th_op_info *op);

/* What a new operation holds; NULL strings are stored as "". */
typedef struct th_op_new {
	const char *kind; /* "import", "merge", "sqlwrite", "repack" (src/job_kinds.c) */
	const char *owner;
	const char *db;
	const char *creator;
	const char *params; /* JSON text; NULL = "{}" */
	const char *upload_sha256;
	const char *file_name;
	const char *table_name;
	const char *branch_name;
	uint64_t bytes_total;
	int64_t pull_id;
	/* NULL or "": none; else the file record (meta_files.h) the operation reads: the link and
	 * the file's last use are written in the same commit as the operation. */
	const char *file_id;
} th_op_new;

/* Insert a Pending operation with a new uuid (written to id_out), durably: the commit is on disk
 * when this returns. Returns TH_OK, TH_EINVALID (no kind, owner, db or creator) or TH_ESTORE.
 * Workers are not woken: see th_jobs_wake. */
int th_meta_op_create(char id_out[TH_UUID_SIZE], th_meta *m, const th_op_new *op, th_error *err);

/* Read operation `id` (dispose with th_op_info_dispose). Returns TH_OK, TH_ENOTFOUND or
 * TH_ESTORE. */
int th_meta_op_get(th_op_info *out, th_meta *m, const char *id, th_error *err);

typedef struct th_op_list {
	th_op_info *items;
	size_t n;
} th_op_list;

void th_op_list_dispose(th_op_list *l);

/* Page tokens are opaque text (today a decimal offset) of at most TH_PAGE_TOKEN_SIZE-1 chars; ""
 * (or NULL on input) means the first page on input and "no more pages" on output. */
#define TH_PAGE_TOKEN_SIZE 32

/* The operations of database owner/db, newest first, at most `limit` (0 = 50) from `page_token`;
 * `kind` NULL = every kind. next_out (may be NULL) receives the next page's token. Returns TH_OK,
 * TH_EINVALID (bad page token) or TH_ESTORE. */
int th_meta_op_list_db(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                       const char *owner, const char *db, const char *kind, const char *page_token,
                       size_t limit, th_error *err);

/* Which operations th_meta_op_list returns: those of creator (when not NULL) across databases,
 * else those of database owner/db; kind NULL = every kind, state 0 = every state. */
typedef struct th_op_query {
	const char *owner;
	const char *db;
	const char *creator;
	const char *kind;
	th_op_state state;
} th_op_query;

/* The operations `q` selects, newest first, paged as th_meta_op_list_db. Returns TH_OK,
 * TH_EINVALID (bad page token or state) or TH_ESTORE. */
int th_meta_op_list(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                    const th_op_query *q, const char *page_token, size_t limit, th_error *err);

/* As th_meta_op_list_db, the operations created by user `creator` across databases. */
int th_meta_op_list_creator(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                            const char *creator, const char *kind, const char *page_token,
                            size_t limit, th_error *err);

/* Atomically claim the oldest runnable operation (Pending, or In Progress with an expired lease):
 * it becomes In Progress, leased to m's node until now + lease_ms, attempts + 1, and is read into
 * *out (its new `attempts` is the fencing token for the calls below). Returns TH_OK, TH_ENOTFOUND
 * (nothing to run) or TH_ESTORE. Exclusive across threads, processes and nodes. */
int th_meta_op_claim(th_op_info *out, th_meta *m, int64_t lease_ms, th_error *err);

/* The In Progress operations leased to m's node have their leases made expired, so the next claim
 * retries them: for a node starting up, whose previous process's jobs died with it. Other nodes'
 * leases are left alone (they expire on their own if their node is gone). *n_out (may be NULL) =
 * how many. Returns TH_OK or TH_ESTORE. */
int th_meta_op_requeue_running(int *n_out, th_meta *m, th_error *err);

/* The calls below take the `attempt` returned by the claim; they act only while the operation is
 * still In Progress under that attempt, and return TH_ECONFLICT otherwise (the lease was lost to
 * another worker, or the operation already ended). TH_ENOTFOUND for an unknown id. */

/* Extend the lease to now + lease_ms. Returns TH_OK, TH_ECONFLICT, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_op_extend(th_meta *m, const char *id, int attempt, int64_t lease_ms, th_error *err);

/* Record progress and extend the lease to now + lease_ms (lease_ms 0 = leave the lease alone). */
int th_meta_op_progress(th_meta *m, const char *id, int attempt, uint64_t bytes_read, uint64_t rows,
                        int64_t lease_ms, th_error *err);

/* End the operation Completed with `result_json` (JSON object text, copied; NULL = "{}") and
 * pull_id (0 = keep the stored one). */
int th_meta_op_complete(th_meta *m, const char *id, int attempt, const char *result_json,
                        int64_t pull_id, th_error *err);

/* End the operation Failed with `message` and the place in the input (0 = none). With attempt 0
 * any unfinished operation (Pending or In Progress) is failed, whoever holds it. */
int th_meta_op_fail(th_meta *m, const char *id, int attempt, const char *message, uint64_t line,
                    uint32_t column, th_error *err);

/* As th_meta_op_fail, also storing `result_json` (JSON object text, copied; NULL = none) as the
 * failed operation's result: an import's rejected-rows report, a merge's conflicts. */
int th_meta_op_fail_with(th_meta *m, const char *id, int attempt, const char *message,
                         uint64_t line, uint32_t column, const char *result_json, th_error *err);

/* --- pull requests --------------------------------------------------------------------------- */

typedef enum {
	TH_PULL_OPEN = 1,   /* "Open" */
	TH_PULL_CLOSED = 2, /* "Closed" */
	TH_PULL_MERGED = 3, /* "Merged" */
} th_pull_state;

/* "Open", "Closed", "Merged"; "" for anything else. */
const char *th_pull_state_name(th_pull_state s);
/* Parse a state name in any case ("open", "Merged"); 0 if unknown. */
th_pull_state th_pull_state_parse(const char *s);

typedef struct th_pull_info {
	int64_t db_id;
	int64_t pull_id;   /* per database, from 1 */
	char *title;       /* heap */
	char *description; /* heap */
	char author[65];
	char *from_branch; /* heap */
	char *to_branch;   /* heap */
	th_pull_state state;
	char merge_commit[41]; /* "" unless Merged */
	int64_t created_at;
	int64_t updated_at;
} th_pull_info;

void th_pull_info_dispose(th_pull_info *p);

typedef struct th_pull_list {
	th_pull_info *items;
	size_t n;
} th_pull_list;

void th_pull_list_dispose(th_pull_list *l);

/* Open a pull request in database db_id (th_db_info.id) with the next pull id of that database
 * (written to pull_id_out; 1 for the first), state Open. Pull ids come from a counter per
 * database, so an id is never given twice, even when a pull row is gone. At most one pull is Open
 * per (from_branch, to_branch) of a database. NULL title/description = "". Returns TH_OK,
 * TH_ENOTFOUND (no such database), TH_EEXISTS (a pull between these branches is already Open),
 * TH_EINVALID (no author or branches) or TH_ESTORE. */
int th_meta_pull_create(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *title,
                        const char *description, const char *author, const char *from_branch,
                        const char *to_branch, th_error *err);

/* The Open pull from `from_branch` into `to_branch` of database db_id, or, when there is none, a
 * new one as th_meta_pull_create makes it, in one step: callers racing for the same branch pair
 * (in any process or node) all get the same pull. *created_out (may be NULL) is 1 when this call
 * made it, 0 when it was there. Returns TH_OK, TH_ENOTFOUND (no such database), TH_EINVALID or
 * TH_ESTORE. */
int th_meta_pull_find_or_create(int64_t *pull_id_out, int *created_out, th_meta *m, int64_t db_id,
                                const char *title, const char *description, const char *author,
                                const char *from_branch, const char *to_branch, th_error *err);

/* Read pull `pull_id` of database db_id. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_pull_get(th_pull_info *out, th_meta *m, int64_t db_id, int64_t pull_id, th_error *err);

/* The Open pull from `from_branch` into `to_branch`, if any. Returns TH_OK, TH_ENOTFOUND
 * or TH_ESTORE. */
int th_meta_pull_find_open(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *from_branch,
                           const char *to_branch, th_error *err);

/* The pulls of database db_id, newest (highest id) first, at most `limit` (0 = 50) from
 * page_token; `state` 0 = every state. next_out (may be NULL) receives the next page's token.
 * Returns TH_OK, TH_EINVALID (bad page token) or TH_ESTORE. */
int th_meta_pull_list(th_pull_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                      int64_t db_id, th_pull_state state, const char *page_token, size_t limit,
                      th_error *err);

/* Change title and/or description (NULL = keep). Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_pull_update(th_meta *m, int64_t db_id, int64_t pull_id, const char *title,
                        const char *description, th_error *err);

/* Set the state; merge_commit (40 hex, or NULL) is recorded with TH_PULL_MERGED. Only an Open pull
 * changes state: returns TH_OK, TH_ENOTFOUND, TH_ECONFLICT (the pull is not Open; the message says
 * its state) or TH_ESTORE. */
int th_meta_pull_set_state(th_meta *m, int64_t db_id, int64_t pull_id, th_pull_state state,
                           const char *merge_commit, th_error *err);

/* Comments and reviews of a pull. */
typedef enum {
	TH_REVIEW_APPROVED = 1, /* "Approved" */
	TH_REVIEW_REJECTED = 2, /* "Rejected" */
	TH_REVIEW_REVIEWED = 3, /* "Reviewed" (a comment without a verdict) */
} th_review_status;

const char *th_review_status_name(th_review_status s);
/* Any case; 0 if unknown. */
th_review_status th_review_status_parse(const char *s);

typedef struct th_pull_note {
	int64_t id; /* per pull, from 1 */
	char author[65];
	char *body;              /* heap: a comment's body or a review's comment ("" when none) */
	th_review_status status; /* reviews only; 0 for comments */
	int64_t created_at;
} th_pull_note;

typedef struct th_pull_note_list {
	th_pull_note *items;
	size_t n;
} th_pull_note_list;

void th_pull_note_list_dispose(th_pull_note_list *l);

/* Add a comment; its id goes to id_out (may be NULL). Returns TH_OK, TH_ENOTFOUND (no such pull),
 * TH_EINVALID (empty body) or TH_ESTORE. */
int th_meta_pull_comment_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
                             const char *author, const char *body, th_error *err);
/* The comments of a pull, oldest first. Returns TH_OK or TH_ESTORE. */
int th_meta_pull_comment_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                              th_error *err);

/* Add a review (comment may be NULL). Returns TH_OK, TH_ENOTFOUND, TH_EINVALID or TH_ESTORE. */
int th_meta_pull_review_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
                            const char *author, th_review_status status, const char *comment,
                            th_error *err);
/* The reviews of a pull, oldest first. Returns TH_OK or TH_ESTORE. */
int th_meta_pull_review_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                             th_error *err);

#endif
