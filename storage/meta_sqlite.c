/* meta_sqlite.c: the SQLite metadata backend (the driver under the statement layer of meta_sql.h),
 * DIR/meta.sqlite: opening, schema migrations, closing, the statement helpers every resource file
 * uses, and the ops table.
 *
 * Design: one SQLite connection per th_meta behind a pthread mutex. The work per call is a few
 * indexed statements (microseconds), so serializing a process's calls costs less than a pool's
 * bookkeeping and keeps SQLite's error message tied to the call that caused it. Statements are
 * prepared once per connection (SQLITE_PREPARE_PERSISTENT) into the slot table and only reset and
 * re-bound afterwards: a poll of an operation costs a bind and a step, not a parse. Between
 * processes SQLite's locks order the writes: single-statement writes take the write lock up front
 * (so the busy timeout applies), and multi-statement writes run in BEGIN IMMEDIATE transactions
 * (th_msql__tx), never upgrading a read transaction (which in WAL mode fails with SQLITE_BUSY
 * without waiting). Statements are reset as soon as they are done, so none holds a read
 * transaction open between calls.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <sqlite3.h>

#include "meta_sql.h"
#include "tablehub/dirsync.h"

#define BUSY_TIMEOUT_MS 10000

/* Schema migrations: entry i brings user_version from i to i+1. Append; never edit one. */
static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE users("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE tokens("
	"  id INTEGER PRIMARY KEY,"
	"  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
	"  hash TEXT NOT NULL UNIQUE," /* SHA-256 of the token, hex */
	"  created_at INTEGER NOT NULL,"
	"  last_used_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX tokens_user ON tokens(user);"
	"CREATE TABLE databases("
	"  id INTEGER PRIMARY KEY,"
	"  owner TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (owner, name));"
	"CREATE TABLE operations("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  kind TEXT NOT NULL CHECK (kind IN ('import', 'merge')),"
	"  owner TEXT NOT NULL,"
	"  db TEXT NOT NULL,"
	"  creator TEXT NOT NULL,"
	"  state TEXT NOT NULL"
	"    CHECK (state IN ('Pending', 'In Progress', 'Completed', 'Failed')),"
	"  params TEXT NOT NULL DEFAULT '{}',"
	"  upload_sha256 TEXT NOT NULL DEFAULT '',"
	"  file_name TEXT NOT NULL DEFAULT '',"
	"  table_name TEXT NOT NULL DEFAULT '',"
	"  branch_name TEXT NOT NULL DEFAULT '',"
	"  bytes_total INTEGER NOT NULL DEFAULT 0,"
	"  bytes_read INTEGER NOT NULL DEFAULT 0,"
	"  rows_processed INTEGER NOT NULL DEFAULT 0,"
	"  result TEXT,"
	"  error_message TEXT,"
	"  error_line INTEGER NOT NULL DEFAULT 0,"
	"  error_column INTEGER NOT NULL DEFAULT 0,"
	"  lease_expires_at INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX operations_queue ON operations(state, lease_expires_at);"
	"CREATE INDEX operations_db ON operations(owner, db, created_at);"
	"CREATE INDEX operations_creator ON operations(creator, created_at);"
	"CREATE TABLE pulls("
	"  db_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  pull_id INTEGER NOT NULL,"
	"  title TEXT NOT NULL DEFAULT '',"
	"  description TEXT NOT NULL DEFAULT '',"
	"  author TEXT NOT NULL,"
	"  from_branch TEXT NOT NULL,"
	"  to_branch TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('Open', 'Closed', 'Merged')),"
	"  merge_commit TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id));"
	"CREATE INDEX pulls_state ON pulls(db_id, state, pull_id);"
	"CREATE TABLE pull_comments("
	"  db_id INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL,"
	"  id INTEGER NOT NULL,"
	"  author TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id, id),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);"
	"CREATE TABLE pull_reviews("
	"  db_id INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL,"
	"  id INTEGER NOT NULL,"
	"  author TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('Approved', 'Rejected', 'Reviewed')),"
	"  comment TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id, id),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);",
	/* 2: accounts (email, password), tokens with names, scopes, kinds, expiry and revocation,
	 * collaborators, protected branches, the head each review saw, the audit trail */
	"ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';" /* Argon2id */
	"CREATE UNIQUE INDEX users_email ON users(lower(email)) WHERE email <> '';"
	"ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'"
	"  CHECK (scope IN ('read', 'write', 'admin'));"
	"ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api'"
	"  CHECK (kind IN ('api', 'session'));"
	"ALTER TABLE tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;" /* 0 = never */
	"ALTER TABLE tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;" /* 0 = live */
	"ALTER TABLE pull_reviews ADD COLUMN head TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE collaborators("
	"  db_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
	"  role TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, user));"
	"CREATE INDEX collaborators_user ON collaborators(user);"
	"CREATE TABLE branch_protection("
	"  db_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  branch TEXT NOT NULL,"
	"  required_approvals INTEGER NOT NULL,"
	"  allow_self_approval INTEGER NOT NULL,"
	"  dismiss_stale_approvals INTEGER NOT NULL,"
	"  merge_role TEXT NOT NULL CHECK (merge_role IN ('write', 'admin')),"
	"  updated_by TEXT NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, branch));"
	"CREATE TABLE events("
	"  id INTEGER PRIMARY KEY,"
	"  db_id INTEGER NOT NULL DEFAULT 0," /* 0: an account's own; no foreign keys, see
	                                         meta_teams.c */
	"  actor TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  target TEXT NOT NULL DEFAULT '',"
	"  detail TEXT NOT NULL DEFAULT '{}',"
	"  address TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX events_db ON events(db_id, id);",
	/* 3: semantics any backend can keep. Pull ids from a counter row per database (seeded from
	 * the pulls there are), never MAX + 1 again. At most one Open pull per branch pair, so that
	 * "find the open pull, else create it" is guarded by the index: of duplicates opened
	 * before, all but the newest (the one a lookup returned) are closed. Leases owned by a
	 * node: the store's own node id, which the running leases get. */
	"CREATE TABLE pull_counters("
	"  db_id INTEGER PRIMARY KEY REFERENCES databases(id) ON DELETE CASCADE,"
	"  last_pull_id INTEGER NOT NULL);"
	"INSERT INTO pull_counters(db_id, last_pull_id)"
	"  SELECT db_id, MAX(pull_id) FROM pulls GROUP BY db_id;"
	"UPDATE pulls SET state = 'Closed',"
	"  updated_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
	"  WHERE state = 'Open' AND EXISTS (SELECT 1 FROM pulls AS p WHERE p.db_id = pulls.db_id"
	"    AND p.state = 'Open' AND p.from_branch = pulls.from_branch"
	"    AND p.to_branch = pulls.to_branch AND p.pull_id > pulls.pull_id);"
	"CREATE UNIQUE INDEX pulls_open_pair ON pulls(db_id, from_branch, to_branch)"
	"  WHERE state = 'Open';"
	"CREATE TABLE settings("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  value TEXT NOT NULL);"
	"INSERT INTO settings(key, value) VALUES ('node_id', lower(hex(randomblob(16))));"
	"ALTER TABLE operations ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';"
	"UPDATE operations SET lease_owner = (SELECT value FROM settings WHERE key = 'node_id')"
	"  WHERE state = 'In Progress';",
	/* 4: forks. A fork's row names its parent and the operation that made it; a pull request
	 * from a fork's branch names the fork it came from (0: its own database). */
	"ALTER TABLE databases ADD COLUMN parent_id INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE databases ADD COLUMN fork_op TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX databases_parent ON databases(parent_id);"
	"CREATE INDEX databases_fork_op ON databases(fork_op) WHERE fork_op <> '';"
	"ALTER TABLE pulls ADD COLUMN from_db_id INTEGER NOT NULL DEFAULT 0;",
	/* 5: the operations table is rebuilt without CHECK (kind IN ('import', 'merge')): the kinds
	 * are src/job_kinds.c's (th_meta_op_create checks them), and a new one needs no migration.
	 */
	"CREATE TABLE operations_new("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 15),"
	"  owner TEXT NOT NULL,"
	"  db TEXT NOT NULL,"
	"  creator TEXT NOT NULL,"
	"  state TEXT NOT NULL"
	"    CHECK (state IN ('Pending', 'In Progress', 'Completed', 'Failed')),"
	"  params TEXT NOT NULL DEFAULT '{}',"
	"  upload_sha256 TEXT NOT NULL DEFAULT '',"
	"  file_name TEXT NOT NULL DEFAULT '',"
	"  table_name TEXT NOT NULL DEFAULT '',"
	"  branch_name TEXT NOT NULL DEFAULT '',"
	"  bytes_total INTEGER NOT NULL DEFAULT 0,"
	"  bytes_read INTEGER NOT NULL DEFAULT 0,"
	"  rows_processed INTEGER NOT NULL DEFAULT 0,"
	"  result TEXT,"
	"  error_message TEXT,"
	"  error_line INTEGER NOT NULL DEFAULT 0,"
	"  error_column INTEGER NOT NULL DEFAULT 0,"
	"  lease_expires_at INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL DEFAULT 0,"
	"  lease_owner TEXT NOT NULL DEFAULT '');"
	"INSERT INTO operations_new(id, kind, owner, db, creator, state, params, upload_sha256,"
	"  file_name, table_name, branch_name, bytes_total, bytes_read, rows_processed, result,"
	"  error_message, error_line, error_column, lease_expires_at, attempts, created_at,"
	"  updated_at, pull_id, lease_owner)"
	"  SELECT id, kind, owner, db, creator, state, params, upload_sha256, file_name,"
	"  table_name, branch_name, bytes_total, bytes_read, rows_processed, result,"
	"  error_message, error_line, error_column, lease_expires_at, attempts, created_at,"
	"  updated_at, pull_id, lease_owner FROM operations;"
	"DROP TABLE operations;"
	"ALTER TABLE operations_new RENAME TO operations;"
	"CREATE INDEX operations_queue ON operations(state, lease_expires_at);"
	"CREATE INDEX operations_db ON operations(owner, db, created_at);"
	"CREATE INDEX operations_creator ON operations(creator, created_at);",
	/* 6: uploaded files as resources (storage/meta_files.c): a record per upload into a
	 * database, the operations that read each, and resumable (tus) uploads in progress. The
	 * uploads that operations named before are recorded as files, one per database and
	 * content. Written to run again over its own tables (a store taken back to an older
	 * version in a test re-runs every later migration). */
	"CREATE TABLE IF NOT EXISTS files("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  db_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  type TEXT NOT NULL DEFAULT '',"
	"  uploader TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  last_used_at INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS files_db ON files(db_id, created_at);"
	"CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);"
	"CREATE INDEX IF NOT EXISTS files_used ON files(last_used_at);"
	"CREATE TABLE IF NOT EXISTS file_operations("
	"  file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,"
	"  op_id TEXT NOT NULL," /* no foreign key: see meta_files.c */
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (file_id, op_id));"
	"CREATE INDEX IF NOT EXISTS file_operations_op ON file_operations(op_id);"
	"CREATE TABLE IF NOT EXISTS tus_uploads("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  db_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  creator TEXT NOT NULL,"
	"  length INTEGER NOT NULL,"
	"  received INTEGER NOT NULL DEFAULT 0,"
	"  metadata TEXT NOT NULL DEFAULT '',"
	"  params TEXT NOT NULL DEFAULT '{}',"
	"  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done')),"
	"  file_id TEXT NOT NULL DEFAULT '',"
	"  op_id TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL);"
	"INSERT INTO files(id, db_id, name, size, sha256, type, uploader, created_at, last_used_at)"
	"  SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-' ||"
	"    hex(randomblob(2)) || '-' || hex(randomblob(2)) || '-' || hex(randomblob(6))),"
	"    d.id, min(o.file_name), max(o.bytes_total), o.upload_sha256,"
	"    coalesce(json_extract(min(o.params), '$.fileType'), ''), min(o.creator),"
	"    min(o.created_at), max(o.updated_at)"
	"  FROM operations o JOIN databases d ON d.owner = o.owner AND d.name = o.db"
	"  WHERE length(o.upload_sha256) = 64 AND NOT EXISTS (SELECT 1 FROM files f"
	"    WHERE f.db_id = d.id AND f.sha256 = o.upload_sha256)"
	"  GROUP BY d.id, o.upload_sha256;"
	"INSERT OR IGNORE INTO file_operations(file_id, op_id, created_at)"
	"  SELECT f.id, o.id, o.created_at FROM operations o"
	"  JOIN databases d ON d.owner = o.owner AND d.name = o.db"
	"  JOIN files f ON f.db_id = d.id AND f.sha256 = o.upload_sha256;",
	/* 7: releases: a tag of the repository with a title and notes, one per tag (IF NOT
	 * EXISTS: see 6) */
	"CREATE TABLE IF NOT EXISTS releases("
	"  db_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  tag_name TEXT NOT NULL,"
	"  title TEXT NOT NULL DEFAULT '',"
	"  notes TEXT NOT NULL DEFAULT '',"
	"  author TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, tag_name));",
	/* 8: requests to cancel an operation (meta_control.c), one row per operation, kept as the
	 * record of who cancelled it. No foreign key: a rebuild of the operations table must not
	 * touch it. */
	"CREATE TABLE IF NOT EXISTS operation_cancels("
	"  op_id TEXT PRIMARY KEY NOT NULL,"
	"  requested_by TEXT NOT NULL,"
	"  requested_at INTEGER NOT NULL);",
	/* 9: the reviewers requested on a pull (meta_reviewers.c), and a pull's options (whether
	 * its merge deletes its source branch), beside the pull row rather than columns of it so
	 * that this runs again over its own tables (see 6). */
	"CREATE TABLE IF NOT EXISTS pull_reviewers("
	"  db_id INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL,"
	"  \"user\" TEXT NOT NULL,"
	"  requested_by TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id, \"user\"),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);"
	"CREATE TABLE IF NOT EXISTS pull_options("
	"  db_id INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL,"
	"  delete_branch_on_merge INTEGER NOT NULL DEFAULT 0,"
	"  branch_deleted INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (db_id, pull_id),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* --- the driver ----------------------------------------------------------------------------- */

typedef struct sqlite_store {
	th_msql base; /* first: a th_meta * is a sqlite_store * */
	sqlite3 *db;
	pthread_mutex_t mu;
	sqlite3_stmt *stmts[MS_NSLOTS]; /* prepared on first use, finalized at close */
	char wal_path[4104];            /* DIR/meta.sqlite-wal, synced by sqlite_settle */
	int wal;                        /* in WAL mode (else every commit syncs itself: FULL) */
	int64_t changes_at_lock;        /* sqlite3_total_changes64 when the holder locked */
} sqlite_store;

/* The store whose commits the calling thread made but has not yet made durable, or NULL. */
static _Thread_local sqlite_store *unsettled;

static int sqlite_error(sqlite_store *s, const char *what, th_error *err)
{
	return th_error_set(err, sqlite3_errcode(s->db) == SQLITE_FULL ? TH_ENOSPC : TH_ESTORE,
	                    "meta.sqlite: %s: %s", what, sqlite3_errmsg(s->db));
}

static const char *row_text(const th_mrow *r, int i)
{
	return (const char *)sqlite3_column_text(r->impl, i);
}

static size_t row_len(const th_mrow *r, int i)
{
	return (size_t)sqlite3_column_bytes(r->impl, i);
}

static int64_t row_int(const th_mrow *r, int i)
{
	return sqlite3_column_int64(r->impl, i);
}

static const th_mrow_ops row_ops = { row_text, row_len, row_int };

/* The statement of `stmt` on s: the slot's, prepared on first use, or (MS_NOSLOT) a new one that
 * the caller finalizes. */
static int stmt_get(sqlite3_stmt **out, sqlite_store *s, const th_msql_stmt *stmt, th_error *err)
{
	sqlite3_stmt **slot;

	if (stmt->slot == MS_NOSLOT) {
		if (sqlite3_prepare_v2(s->db, stmt->sql, -1, out, NULL) != SQLITE_OK)
			return sqlite_error(s, stmt->what, err);
		return TH_OK;
	}
	slot = &s->stmts[stmt->slot];
	if (*slot == NULL && sqlite3_prepare_v3(s->db, stmt->sql, -1, SQLITE_PREPARE_PERSISTENT,
	                                        slot, NULL) != SQLITE_OK) {
		*slot = NULL;
		return sqlite_error(s, stmt->what, err);
	}
	/* Two statements sharing a slot would silently run each other's SQL. */
	assert(strcmp(sqlite3_sql(*slot), stmt->sql) == 0);
	*out = *slot;
	return TH_OK;
}

/* Bind the arguments described by `types` (see th_msql__run). The strings are bound without a
 * copy: they outlive the statement's use, which ends with a reset and clear_bindings. */
static int bind_args(sqlite3_stmt *st, const char *types, va_list ap)
{
	int i, rc = SQLITE_OK;

	for (i = 0; types[i] && rc == SQLITE_OK; i++) {
		const char *v;
		switch (types[i]) {
		case 's':
			v = va_arg(ap, const char *);
			rc = sqlite3_bind_text(st, i + 1, v ? v : "", -1, SQLITE_STATIC);
			break;
		case 'n':
			v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(st, i + 1, v, -1, SQLITE_STATIC)
			       : sqlite3_bind_null(st, i + 1);
			break;
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 'd':
			rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int));
			break;
		default:
			assert(!"unknown bind type");
			rc = SQLITE_MISUSE;
		}
	}
	return rc;
}

static int sqlite_run(th_msql *m, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx,
                      th_error *err, const char *types, va_list ap)
{
	sqlite_store *s = (sqlite_store *)m;
	sqlite3_stmt *st = NULL;
	th_mrow r = { &row_ops, NULL, 0 };
	int rc, n = 0, error;

	if ((error = stmt_get(&st, s, stmt, err)) < 0)
		return error;
	r.impl = st;
	if (bind_args(st, types, ap) != SQLITE_OK) {
		error = sqlite_error(s, stmt->what, err);
		goto done;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r.row = n++;
		if (row && (error = row(ctx, &r, err)) < 0)
			goto done;
	}
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		error = th_error_set(err, TH_EEXISTS, "meta.sqlite: %s: %s", stmt->what,
		                     sqlite3_errmsg(s->db));
	else if (rc != SQLITE_DONE)
		error = sqlite_error(s, stmt->what, err);
	else
		error = sqlite3_stmt_readonly(st) ? n : sqlite3_changes(s->db);
done:
	if (stmt->slot == MS_NOSLOT) {
		sqlite3_finalize(st);
	} else {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return error;
}

/* Durability. The connection runs WAL with synchronous=NORMAL: a commit is written to the WAL but
 * not fsynced under the mutex, so no thread waits for the disk behind another's commit. The WAL
 * is one append-only log, checksummed frame by frame: a crash keeps a prefix of the commits, and
 * one fdatasync of it makes every commit before it durable. So a thread that changed rows, unless
 * it asked for lazy commits (th_meta_lazy), syncs the WAL after it lets the connection go
 * (sqlite_settle, through th_filesync: threads committing at once share one sync). */
static int sqlite_lock(th_msql *m, th_error *err)
{
	sqlite_store *s = (sqlite_store *)m;

	(void)err;
	pthread_mutex_lock(&s->mu);
	s->changes_at_lock = sqlite3_total_changes64(s->db);
	return TH_OK;
}

static void sqlite_unlock(th_msql *m)
{
	sqlite_store *s = (sqlite_store *)m;

	if (!th_msql__lazy_thread && sqlite3_total_changes64(s->db) != s->changes_at_lock)
		unsettled = s;
	pthread_mutex_unlock(&s->mu);
}

static int sqlite_settle(th_msql *m, th_error *err)
{
	sqlite_store *s = (sqlite_store *)m;
	int e;

	if (unsettled != s)
		return TH_OK;
	unsettled = NULL;
	if (!s->wal)
		return TH_OK;
	if (th_filesync(s->wal_path) == 0)
		return TH_OK;
	e = errno;
	return th_error_set(err, e == ENOSPC || e == EDQUOT ? TH_ENOSPC : TH_ESTORE,
	                    "meta.sqlite: cannot sync the write-ahead log: %s", strerror(e));
}

static const th_msql_stmt begin_stmt = { MS_BEGIN, "begin", "BEGIN IMMEDIATE", NULL };
static const th_msql_stmt commit_stmt = { MS_COMMIT, "commit", "COMMIT", NULL };
static const th_msql_stmt rollback_stmt = { MS_ROLLBACK, "rollback", "ROLLBACK", NULL };

static int sqlite_begin(th_msql *m, th_error *err)
{
	int n = th_msql__run_locked(m, &begin_stmt, NULL, NULL, err, "");
	return n < 0 ? n : TH_OK;
}

static int sqlite_commit(th_msql *m, th_error *err)
{
	int n = th_msql__run_locked(m, &commit_stmt, NULL, NULL, err, "");
	return n < 0 ? n : TH_OK;
}

static void sqlite_rollback(th_msql *m)
{
	if (!sqlite3_get_autocommit(((sqlite_store *)m)->db))
		th_msql__run_locked(m, &rollback_stmt, NULL, NULL, NULL, "");
}

static const th_msql_driver sqlite_driver = {
	sqlite_run,    sqlite_lock,     sqlite_unlock, sqlite_begin,
	sqlite_commit, sqlite_rollback, sqlite_settle,
};

/* --- open, migrate, close -------------------------------------------------------------------- */

int th_meta_schema_version(void)
{
	return NMIGRATIONS;
}

static int exec(sqlite_store *s, const char *sql, th_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		th_error_set(err, TH_ESTORE, "meta.sqlite: %s", msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return TH_ESTORE;
	}
	return TH_OK;
}

/* Ask for WAL mode and note whether it was granted (a file system without shared memory keeps
 * the rollback journal: then commits sync themselves, synchronous=FULL, and settle has nothing to
 * do). Returns TH_OK or TH_ESTORE. */
static int journal_wal(sqlite_store *s, th_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return sqlite_error(s, "journal mode", err);
	rc = sqlite3_step(st);
	s->wal = rc == SQLITE_ROW &&
	         sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_error(s, "journal mode", err);
	return TH_OK;
}

static int user_version(int *out, sqlite_store *s, th_error *err)
{
	sqlite3_stmt *st;
	int error = TH_OK;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return sqlite_error(s, "prepare", err);
	if (sqlite3_step(st) != SQLITE_ROW)
		error = sqlite_error(s, "read user_version", err);
	else
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return error;
}

static int migrate(sqlite_store *s, th_error *err)
{
	char sql[64];
	int v = 0, error;

	for (;;) {
		if ((error = user_version(&v, s, err)) < 0)
			return error;
		if (v > NMIGRATIONS)
			return th_error_set(err, TH_ESTORE,
			                    "meta.sqlite has schema version %d, newer than this "
			                    "tablehub knows (%d): upgrade tablehub",
			                    v, NMIGRATIONS);
		if (v == NMIGRATIONS)
			return TH_OK;
		/* Another process may migrate at the same time: re-read the version under the
		 * write lock and apply only what is still missing. */
		if ((error = exec(s, "BEGIN IMMEDIATE", err)) < 0)
			return error;
		if ((error = user_version(&v, s, err)) < 0)
			goto fail;
		if (v >= NMIGRATIONS) {
			if ((error = exec(s, "COMMIT", err)) < 0)
				goto fail;
			continue;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if ((error = exec(s, migrations[v], err)) < 0 || (error = exec(s, sql, err)) < 0 ||
		    (error = exec(s, "COMMIT", err)) < 0)
			goto fail;
	}
fail:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return error;
}

static const th_msql_stmt node_id_stmt = { MS_NODE_ID, "read node id",
	                                   "SELECT value FROM settings WHERE key = 'node_id'",
	                                   NULL };

static int read_node_id(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	th_msql__copy(ctx, TH_META_NODE_ID_SIZE, st, 0);
	return TH_OK;
}

static void msql_close(th_meta *m)
{
	sqlite_store *s = (sqlite_store *)m;
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < MS_NSLOTS; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->mu);
	if (unsettled == s)
		unsettled = NULL;
	free(s);
}

static int msql_open(th_meta **out, const char *data_dir, const char *url, th_error *err)
{
	sqlite_store *s;
	char path[4096];
	int error;

	(void)url;
	if ((size_t)snprintf(path, sizeof(path), "%s/meta.sqlite", data_dir) >= sizeof(path))
		return th_error_set(err, TH_EINVALID, "data dir path too long");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	s->base.base.ops = &th_meta_sqlite_ops;
	s->base.drv = &sqlite_driver;
	pthread_mutex_init(&s->mu, NULL);
	snprintf(s->wal_path, sizeof(s->wal_path), "%s-wal", path);
	if (sqlite3_open_v2(path, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		error = th_error_set(err, TH_ESTORE, "cannot open '%s': %s", path,
		                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(s->db, 1);
	if ((error = journal_wal(s, err)) < 0 ||
	    (error = exec(s, "PRAGMA foreign_keys = ON", err)) < 0 ||
	    (error = exec(s, s->wal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
	                  err)) < 0 ||
	    (error = migrate(s, err)) < 0 ||
	    (error = th_msql__run(&s->base, &node_id_stmt, read_node_id, s->base.base.node_id, err,
	                          "")) < 0)
		goto fail;
	if (error == 0) {
		error = th_error_set(err, TH_ESTORE, "meta.sqlite: no node id in settings");
		goto fail;
	}
	/* What the migrations wrote (their DDL changes no rows, so nothing marked it) is durable
	 * before the store is used. */
	unsettled = s;
	if ((error = sqlite_settle(&s->base, err)) < 0)
		goto fail;
	*out = &s->base.base;
	return TH_OK;
fail:
	msql_close(&s->base.base);
	return error;
}

const th_meta_ops th_meta_sqlite_ops = TH_MSQL_OPS("sqlite", msql_open, msql_close, NULL);
