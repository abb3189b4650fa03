/* meta_pg_schema.c: the PostgreSQL metadata backend's schema and its migrations (see meta_pg.c).
 *
 * The tables, columns and indexes are SQLite's (storage/meta_sqlite.c, as of its migration 8) in
 * PostgreSQL's types: INTEGER columns are BIGINT, ids BIGSERIAL, and the tables SQLite code orders
 * by rowid carry a BIGSERIAL column of that name. Applied versions are rows of
 * th_schema_migrations; each migration runs in its own transaction, and the whole run holds the
 * session advisory lock (TH_MPG_LOCK_CLASS, 1), so that nodes starting together apply each once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_pg.h"

/* Migration 1: the schema of SQLite's migration 8, in parts (a C string is at most 4095 bytes). */
static const char *const schema_1[] = {
	"CREATE TABLE users("
	"  name TEXT PRIMARY KEY,"
	"  created_at BIGINT NOT NULL,"
	"  email TEXT NOT NULL DEFAULT '',"
	"  password_hash TEXT NOT NULL DEFAULT '');"
	"CREATE UNIQUE INDEX users_email ON users(lower(email)) WHERE email <> '';"
	"CREATE TABLE tokens("
	"  id BIGSERIAL PRIMARY KEY,"
	"  \"user\" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
	"  hash TEXT NOT NULL UNIQUE,"
	"  created_at BIGINT NOT NULL,"
	"  last_used_at BIGINT NOT NULL DEFAULT 0,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  scope TEXT NOT NULL DEFAULT 'admin' CHECK (scope IN ('read', 'write', 'admin')),"
	"  kind TEXT NOT NULL DEFAULT 'api' CHECK (kind IN ('api', 'session')),"
	"  expires_at BIGINT NOT NULL DEFAULT 0,"
	"  revoked_at BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX tokens_user ON tokens(\"user\");"
	"CREATE TABLE databases("
	"  id BIGSERIAL PRIMARY KEY,"
	"  owner TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),"
	"  created_at BIGINT NOT NULL,"
	"  parent_id BIGINT NOT NULL DEFAULT 0,"
	"  fork_op TEXT NOT NULL DEFAULT '',"
	"  UNIQUE (owner, name));"
	"CREATE INDEX databases_parent ON databases(parent_id);"
	"CREATE INDEX databases_fork_op ON databases(fork_op) WHERE fork_op <> '';",
	"CREATE TABLE operations("
	"  rowid BIGSERIAL UNIQUE,"
	"  id TEXT PRIMARY KEY,"
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
	"  bytes_total BIGINT NOT NULL DEFAULT 0,"
	"  bytes_read BIGINT NOT NULL DEFAULT 0,"
	"  rows_processed BIGINT NOT NULL DEFAULT 0,"
	"  result TEXT,"
	"  error_message TEXT,"
	"  error_line BIGINT NOT NULL DEFAULT 0,"
	"  error_column BIGINT NOT NULL DEFAULT 0,"
	"  lease_expires_at BIGINT NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  created_at BIGINT NOT NULL,"
	"  updated_at BIGINT NOT NULL,"
	"  pull_id BIGINT NOT NULL DEFAULT 0,"
	"  lease_owner TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX operations_queue ON operations(state, lease_expires_at);"
	"CREATE INDEX operations_db ON operations(owner, db, created_at);"
	"CREATE INDEX operations_creator ON operations(creator, created_at);"
	"CREATE INDEX operations_sha ON operations(upload_sha256);"
	"CREATE TABLE operation_cancels("
	"  op_id TEXT PRIMARY KEY,"
	"  requested_by TEXT NOT NULL,"
	"  requested_at BIGINT NOT NULL);",
	"CREATE TABLE pulls("
	"  db_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  pull_id BIGINT NOT NULL,"
	"  title TEXT NOT NULL DEFAULT '',"
	"  description TEXT NOT NULL DEFAULT '',"
	"  author TEXT NOT NULL,"
	"  from_branch TEXT NOT NULL,"
	"  to_branch TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('Open', 'Closed', 'Merged')),"
	"  merge_commit TEXT NOT NULL DEFAULT '',"
	"  created_at BIGINT NOT NULL,"
	"  updated_at BIGINT NOT NULL,"
	"  from_db_id BIGINT NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (db_id, pull_id));"
	"CREATE INDEX pulls_state ON pulls(db_id, state, pull_id);"
	"CREATE UNIQUE INDEX pulls_open_pair ON pulls(db_id, from_branch, to_branch)"
	"  WHERE state = 'Open';"
	"CREATE TABLE pull_counters("
	"  db_id BIGINT PRIMARY KEY REFERENCES databases(id) ON DELETE CASCADE,"
	"  last_pull_id BIGINT NOT NULL);"
	"CREATE TABLE pull_comments("
	"  db_id BIGINT NOT NULL,"
	"  pull_id BIGINT NOT NULL,"
	"  id BIGINT NOT NULL,"
	"  author TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id, id),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);"
	"CREATE TABLE pull_reviews("
	"  db_id BIGINT NOT NULL,"
	"  pull_id BIGINT NOT NULL,"
	"  id BIGINT NOT NULL,"
	"  author TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('Approved', 'Rejected', 'Reviewed')),"
	"  comment TEXT NOT NULL DEFAULT '',"
	"  created_at BIGINT NOT NULL,"
	"  head TEXT NOT NULL DEFAULT '',"
	"  PRIMARY KEY (db_id, pull_id, id),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);",
	"CREATE TABLE collaborators("
	"  db_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  \"user\" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
	"  role TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),"
	"  created_at BIGINT NOT NULL,"
	"  updated_at BIGINT NOT NULL,"
	"  PRIMARY KEY (db_id, \"user\"));"
	"CREATE INDEX collaborators_user ON collaborators(\"user\");"
	"CREATE TABLE branch_protection("
	"  db_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  branch TEXT NOT NULL,"
	"  required_approvals BIGINT NOT NULL,"
	"  allow_self_approval BIGINT NOT NULL,"
	"  dismiss_stale_approvals BIGINT NOT NULL,"
	"  merge_role TEXT NOT NULL CHECK (merge_role IN ('write', 'admin')),"
	"  updated_by TEXT NOT NULL,"
	"  updated_at BIGINT NOT NULL,"
	"  PRIMARY KEY (db_id, branch));"
	"CREATE TABLE events("
	"  id BIGSERIAL PRIMARY KEY,"
	"  db_id BIGINT NOT NULL DEFAULT 0,"
	"  actor TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  target TEXT NOT NULL DEFAULT '',"
	"  detail TEXT NOT NULL DEFAULT '{}',"
	"  address TEXT NOT NULL DEFAULT '',"
	"  created_at BIGINT NOT NULL);"
	"CREATE INDEX events_db ON events(db_id, id);"
	"CREATE TABLE settings("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL);"
	"INSERT INTO settings(key, value)"
	"  VALUES ('node_id', replace(gen_random_uuid()::text, '-', ''));",
	"CREATE TABLE files("
	"  rowid BIGSERIAL UNIQUE,"
	"  id TEXT PRIMARY KEY,"
	"  db_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  size BIGINT NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  type TEXT NOT NULL DEFAULT '',"
	"  uploader TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL,"
	"  last_used_at BIGINT NOT NULL);"
	"CREATE INDEX files_db ON files(db_id, created_at);"
	"CREATE INDEX files_sha ON files(sha256);"
	"CREATE INDEX files_used ON files(last_used_at);"
	"CREATE TABLE file_operations("
	"  rowid BIGSERIAL UNIQUE,"
	"  file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,"
	"  op_id TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL,"
	"  PRIMARY KEY (file_id, op_id));"
	"CREATE INDEX file_operations_op ON file_operations(op_id);"
	"CREATE TABLE tus_uploads("
	"  id TEXT PRIMARY KEY,"
	"  db_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  creator TEXT NOT NULL,"
	"  length BIGINT NOT NULL,"
	"  received BIGINT NOT NULL DEFAULT 0,"
	"  metadata TEXT NOT NULL DEFAULT '',"
	"  params TEXT NOT NULL DEFAULT '{}',"
	"  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done')),"
	"  file_id TEXT NOT NULL DEFAULT '',"
	"  op_id TEXT NOT NULL DEFAULT '',"
	"  created_at BIGINT NOT NULL,"
	"  updated_at BIGINT NOT NULL);"
	"CREATE TABLE releases("
	"  db_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  tag_name TEXT NOT NULL,"
	"  title TEXT NOT NULL DEFAULT '',"
	"  notes TEXT NOT NULL DEFAULT '',"
	"  author TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL,"
	"  PRIMARY KEY (db_id, tag_name));",
	NULL,
};

/* Migration 2: SQLite's migration 9, the reviewers requested on a pull and a pull's options. */
static const char *const schema_2[] = {
	"CREATE TABLE pull_reviewers("
	"  rowid BIGSERIAL UNIQUE,"
	"  db_id BIGINT NOT NULL,"
	"  pull_id BIGINT NOT NULL,"
	"  \"user\" TEXT NOT NULL,"
	"  requested_by TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id, \"user\"),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);"
	"CREATE TABLE pull_options("
	"  db_id BIGINT NOT NULL,"
	"  pull_id BIGINT NOT NULL,"
	"  delete_branch_on_merge INTEGER NOT NULL DEFAULT 0,"
	"  branch_deleted INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (db_id, pull_id),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);",
	NULL,
};

/* Entry i brings the schema from version i to i + 1, its parts run in one transaction. Append;
 * never edit one. */
static const char *const *const migrations[] = {
	schema_1,
	schema_2,
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int th_mpg__schema_version(void)
{
	return NMIGRATIONS;
}

static int exec(PGconn *c, const char *sql, const char *what, th_error *err)
{
	PGresult *res = PQexec(c, sql);
	int error = TH_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		error = th_mpg__error(c, res, what, err);
	PQclear(res);
	return error;
}

static int version(int *out, PGconn *c, th_error *err)
{
	PGresult *res = PQexec(c, "SELECT coalesce(max(version), 0) FROM th_schema_migrations");
	int error = TH_OK;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		error = th_mpg__error(c, res, "read the schema version", err);
	else
		*out = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return error;
}

int th_mpg__migrate(PGconn *c, th_error *err)
{
	char sql[160];
	int v = 0, i, error;

	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%d, 1)", TH_MPG_LOCK_CLASS);
	if ((error = exec(c, sql, "lock the schema", err)) < 0)
		return error;
	if ((error = exec(c,
	                  "CREATE TABLE IF NOT EXISTS th_schema_migrations("
	                  "  version INTEGER PRIMARY KEY,"
	                  "  applied_at BIGINT NOT NULL)",
	                  "create the migrations table", err)) < 0 ||
	    (error = version(&v, c, err)) < 0)
		goto done;
	if (v > NMIGRATIONS) {
		error = th_error_set(err, TH_ESTORE,
		                     "meta.postgresql has schema version %d, newer than this "
		                     "tablehub knows (%d): upgrade tablehub",
		                     v, NMIGRATIONS);
		goto done;
	}
	for (; v < NMIGRATIONS; v++) {
		snprintf(sql, sizeof(sql),
		         "INSERT INTO th_schema_migrations(version, applied_at) VALUES (%d, "
		         "(extract(epoch FROM now()) * 1000)::bigint)",
		         v + 1);
		if ((error = exec(c, "BEGIN", "migrate", err)) < 0)
			goto done;
		for (i = 0; migrations[v][i] && error == TH_OK; i++)
			error = exec(c, migrations[v][i], "migrate", err);
		if (error < 0 || (error = exec(c, sql, "migrate", err)) < 0 ||
		    (error = exec(c, "COMMIT", "migrate", err)) < 0) {
			exec(c, "ROLLBACK", "migrate", NULL);
			goto done;
		}
	}
done:
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%d, 1)", TH_MPG_LOCK_CLASS);
	exec(c, sql, "unlock the schema", NULL);
	return error;
}
