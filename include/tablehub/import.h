/* import.h: importing a file of any format of the format table (reader.h: CSV, PSV, TSV, JSON
 * rows) as table changes committed on a branch (src/import.c, import_scan.c, import_edits.c). Used
 * by the `tablehub import` command and by the server's import jobs.
 *
 * The file is read once, streamed: its rows go to a spill file while the column types are
 * inferred over the whole file; then they are sorted by key in runs bounded by a memory budget
 * (sorter.h), merged, checked (duplicate keys, NULL keys, bad values), joined with the table's
 * existing rows and written as chunks. Nothing is committed unless every row is good; a failed
 * import names its first bad row in the error and, when asked, lists the first 100 in a report.
 */
#ifndef TABLEHUB_IMPORT_H
#define TABLEHUB_IMPORT_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"
#include "reader.h"
#include "repo.h"

typedef enum {
	TH_OP_CREATE = 1, /* new table; fails if it exists */
	TH_OP_OVERWRITE,  /* drop and re-create with the newly inferred schema */
	TH_OP_UPDATE,     /* upsert by key over the file's columns; other rows and columns kept */
	TH_OP_REPLACE,    /* the rows become exactly the file's rows; the schema is kept */
	TH_OP_APPEND,     /* insert only; an existing key fails the import */
} th_import_op;

/* "create"/"Create" etc. to an op, 0 if unknown; the op's DoltHub name ("Create"). */
th_import_op th_import_op_parse(const char *s);
const char *th_import_op_name(th_import_op op);

#define TH_IMPORT_NULLS_MAX 64
#define TH_IMPORT_NULL_LEN 256

typedef struct th_import_opts {
	const char *table;
	th_import_op op;
	const char *const *pk; /* primary-key column names (create/overwrite); npk 0 = keyless */
	size_t npk;
	const th_format *format; /* from reader.h's table (th_format_find); NULL = Csv */
	const char *sheet;       /* Xlsx: the sheet to read by name; NULL = the first */
	/* nullValues: cells whose text is one of these (exactly) are NULL; nnulls 0 = none. The API
	 * and the command line take at most TH_IMPORT_NULLS_MAX of at most TH_IMPORT_NULL_LEN
	 * bytes. */
	const char *const *nulls;
	size_t nnulls;
	const char *branch; /* the branch to commit on; it must exist, unless base is set */
	/* When not NULL, the commit to build on, and `branch` must not exist yet: it is made at the
	 * new commit, by compare-and-swap from nothing, so a branch that exists only when its
	 * commit does costs one ref write instead of two (an import job's own branch). */
	const th_oid *base;
	const char *branch_label; /* the branch named in messages; NULL = branch (an import job
	                           * commits on its own branch but reports the user's target) */
	const char *message;      /* commit message; NULL = "Import <file_name> into <table>" */
	const char *file_name;    /* for the default message; NULL = "file" */
	const char *author;       /* NULL = "tablehub" */
	const char *email;        /* NULL = "<author>@tablehub.local" */
	const char *tmpdir;       /* for spill files; NULL = $TMPDIR or /tmp */
	size_t mem_budget;        /* bytes of rows held in memory while sorting; 0 = 64 MiB */
	/* When not NULL, receives the rejected-rows report of a failed import, a JSON object
	 * {"rejected_rows":[{"line","column","value","reason"}...],"rejected_total":N} listing the
	 * first 100 bad rows; empty unless rows were rejected. Caller-owned. */
	th_buf *report;
	/* Called every few MB of input, from the importing thread. May be NULL. */
	void (*progress)(void *payload, uint64_t bytes_read, uint64_t rows);
	void *progress_payload;
	/* Called with progress_payload between the import's steps and every 1024 rows of each
	 * pass, from the importing thread: a negative return (err set) stops the import with that
	 * error, and nothing is committed. May be NULL. An import job's is th_job_check. */
	int (*check)(void *payload, th_error *err);
} th_import_opts;

typedef struct th_import_result {
	th_oid commit; /* the new commit on opts.branch */
	uint64_t rows_read;
	uint64_t added, modified, removed;
	uint64_t rows;       /* rows in the table afterwards */
	uint64_t duplicates; /* update: rows that repeated an earlier key of the file (last wins) */
} th_import_result;

/* Import the file open on `fd` into opts->table on opts->branch of `repo`, and move the branch to
 * the new commit by compare-and-swap. Returns TH_OK; TH_EINVALID for bad input (err names the line,
 * the column and the value; a new table whose name differs only in case from another's),
 * TH_ENOTFOUND (no such branch, or no such table for update/replace/append), TH_EEXISTS (create of
 * an existing table), TH_ECONFLICT (the branch moved meanwhile), TH_ENOMEM or TH_ESTORE. Nothing is
 * committed on failure. */
int th_import_fd(th_import_result *out, th_repo *repo, int fd, const th_import_opts *opts,
                 th_error *err);

#endif
