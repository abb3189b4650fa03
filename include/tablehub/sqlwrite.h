/* sqlwrite.h: SQL writes, statements run against a branch and committed on it (src/sqlwrite.c,
 * src/sqlwrite_tables.c), the operation kind that runs them for the API (src/sqlwrite_job.c), and
 * the Sql file type (src/sqlstmt.c: a reader whose rows are statements).
 *
 * A write resolves its branch (made from `from` when it is missing), runs the statements in a
 * private, copy-on-write session on the snapshot of the branch's head (sqlsession.h), then writes
 * back to git exactly what the statements changed: for a keyed table the rows whose keys the
 * session recorded, re-chunked where they fall (one changed row of a 1,000,000-row table is one
 * chunk and the trees above it); a table the statements created, altered or dropped, or a
 * changed keyless table, is read whole and compared with its old rows. The commit then holds the
 * rows and schema that SQLite held after the statements, and nothing else changes. A failing
 * statement fails the write: nothing is committed, the branch is not even made.
 *
 * Types. A column keeps its tablehub type when its table was not altered. Otherwise the column's
 * declared type decides, by SQLite's own affinity rules refined: INTEGER, REAL, BOOLEAN, DATE,
 * DATETIME, TEXT as snapshots declare them; a type naming BOOL is boolean; DATETIME or TIMESTAMP
 * datetime; DATE date; one containing INT integer; CHAR, CLOB, TEXT text; REAL, FLOA, DOUB, DEC,
 * NUM(ERIC) real; no type at all, or the "NUM" of CREATE TABLE ... AS SELECT: inferred from the
 * values, as an import infers; anything else text.
 * A value that its column's type cannot hold (text in an integer column, 2.5 in a boolean one, a
 * blob that is not UTF-8 text) fails the write with the table, column and value. Primary-key
 * columns are NOT NULL; other NOT NULL constraints are kept. Defaults, CHECK and UNIQUE
 * constraints, foreign keys and generated-column expressions hold while the statements run but are
 * not stored (tablehub's schema has no place for them).
 */
#ifndef TABLEHUB_SQLWRITE_H
#define TABLEHUB_SQLWRITE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"
#include "import.h"
#include "meta.h"
#include "reader.h"
#include "repo.h"

#define TH_SQLWRITE_TIME_MS 60000             /* per statement */
#define TH_SQLWRITE_HEAP_BYTES (256ull << 20) /* SQLite heap of one write */

typedef struct th_sqlwrite_opts {
	const char *datadir; /* snapshots are read from and made in its cache, scratch in tmp/ */
	const char *owner, *db;
	const char *branch; /* the branch to commit on */
	/* When `branch` does not exist: the branch it is made from (at its head). NULL: it must
	 * exist. The new branch appears only with the write's commit. */
	const char *from;
	const char *author;  /* NULL = "tablehub" */
	const char *email;   /* NULL = "<author>@tablehub.local" */
	const char *message; /* the commit message's subject; NULL = "SQL write on <branch>" */
	const char *trailer; /* a last paragraph of the message (e.g. "Operation: <id>"), or NULL */
	uint32_t time_ms;    /* per statement; 0 = TH_SQLWRITE_TIME_MS */
	uint64_t heap_bytes; /* SQLite heap of the write; 0 = TH_SQLWRITE_HEAP_BYTES */
	/* Called after each statement of a file (bytes read, statements run). May be NULL. */
	void (*progress)(void *payload, uint64_t bytes_read, uint64_t statements);
	void *progress_payload;
} th_sqlwrite_opts;

typedef enum {
	TH_SQLWRITE_ADDED = 1,    /* "added" */
	TH_SQLWRITE_DROPPED = 2,  /* "dropped" */
	TH_SQLWRITE_MODIFIED = 3, /* "modified" */
} th_sqlwrite_change;

/* "added", "dropped", "modified". */
const char *th_sqlwrite_change_name(th_sqlwrite_change c);

/* One table the write changed. */
typedef struct th_sqlwrite_table {
	char *name;
	th_sqlwrite_change change;
	int schema_changed;
	uint64_t rows_added, rows_modified, rows_removed;
} th_sqlwrite_table;

typedef struct th_sqlwrite_result {
	th_oid from_commit; /* the branch's head before the write (from's head when it was made) */
	th_oid to_commit;   /* its head after: from_commit when nothing changed */
	int committed;      /* a commit was written */
	int branch_created;
	uint64_t statements;    /* statements run */
	uint64_t rows_affected; /* rows the statements inserted, updated or deleted (SQLite's count)
	                         */
	uint64_t rows_added, rows_modified, rows_removed; /* in git, summed over the tables */
	th_sqlwrite_table *tables;                        /* the changed tables, in name order */
	size_t ntables;
} th_sqlwrite_result;

void th_sqlwrite_result_dispose(th_sqlwrite_result *r);

/* Run the statements of `sql` (one or more, ';'-separated) on o->branch of `repo` (opened for
 * writing; the caller holds the database's writer lock) and commit the result there, moving the
 * branch by compare-and-swap. *out is filled in on success (dispose it). Returns TH_OK (also when
 * nothing changed: no commit, to_commit == from_commit); TH_EINVALID: an SQL error or a refused
 * statement (the message says which statement, its line and column, which err->line/column also
 * hold), a value its column cannot hold, a bad table or column name; TH_ELIMIT (a statement ran
 * out of time or memory); TH_ENOTFOUND (no such branch); TH_ECONFLICT (the branch moved meanwhile:
 * nothing was written); TH_ENOMEM; TH_ESTORE. Nothing is committed on failure. */
int th_sqlwrite_run(th_sqlwrite_result *out, th_repo *repo, const char *sql,
                    const th_sqlwrite_opts *o, th_error *err);

/* As th_sqlwrite_run, the statements read from the file open on `fd` (borrowed), streamed one
 * statement at a time (the Sql reader); errors are placed in the file. */
int th_sqlwrite_run_fd(th_sqlwrite_result *out, th_repo *repo, int fd, const th_sqlwrite_opts *o,
                       th_error *err);

/* Fill *out with what changed between commits `from` and `to` (tables, rows), as a write's
 * result, without writing anything: for a write found done by an earlier attempt, and for
 * merges. Returns TH_OK, TH_ENOMEM, TH_ESTORE. */
int th_sqlwrite_describe(th_sqlwrite_result *out, th_repo *repo, const th_oid *from,
                         const th_oid *to, th_error *err);

/* Append the result as a JSON object: {"from_commit_id", "to_commit_id", "committed",
 * "statements", "rows_affected", "rows_added", "rows_modified", "rows_removed", "tables":
 * [{"table_name", "diff_type", "schema_change", "rows_added", "rows_modified",
 * "rows_removed"}]}, followed by `extra` (members with a leading comma, may be NULL). Returns
 * TH_OK or TH_ENOMEM. */
int th_sqlwrite_result_json(th_buf *out, const th_sqlwrite_result *r, const char *extra,
                            th_error *err);

/* --- the Sql file type (src/sqlstmt.c) ------------------------------------------------------ */

/* Is `f` the format of SQL files, whose rows are statements to run, not rows to import? */
int th_format_is_sql(const th_format *f);

/* An import job's Sql upload: run the file on `fd` on opts->branch as th_sqlwrite_run_fd does
 * (author, message and progress from `opts`; snapshots under `datadir` for owner/db), filling
 * the import's result (commit; rows added, modified, removed over all tables; rows = rows
 * affected). Returns as th_sqlwrite_run. */
int th_sqlwrite_import_fd(th_import_result *out, th_repo *repo, int fd, const th_import_opts *opts,
                          const char *datadir, const char *owner, const char *db, th_error *err);

/* --- kind "sqlwrite" (src/sqlwrite_job.c) ---------------------------------------------------- */

/* Queue a SQL write (kind "sqlwrite") of `query` by `creator` on owner/db: from branch `from`
 * into branch `to` (made from `from` when missing); an empty query merges `from` into `to`. The
 * params are stored as {"query", "from_branch", "to_branch"}; the uuid goes to op_id_out. The
 * caller wakes the workers. Returns TH_OK, TH_EINVALID (a bad name) or TH_ESTORE. */
int th_sqlwrite_enqueue(char op_id_out[TH_UUID_SIZE], th_meta *m, const char *owner, const char *db,
                        const char *creator, const char *from, const char *to, const char *query,
                        th_error *err);

#endif
