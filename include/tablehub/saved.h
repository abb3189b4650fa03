/* saved.h: saved queries (src/saved.c): named, read-only SQL statements with declared
 * parameters, which the API serves as endpoints of their own.
 *
 * A saved query is a file of the database's repository, queries/<name>.json in a commit's tree
 * beside tables/: {"name", "description", "query", "params": [{"name", "type"}]}. So saved queries
 * are versioned with the tables: they are put on a branch by a commit, differ between branches,
 * show in `git log` and `git diff`, and come along when a branch is merged (three-way, file by
 * file: a query changed differently on both sides is a conflict).
 *
 * Parameters are ":name" placeholders in the statement, each declared with a type (integer, real,
 * boolean, date, datetime or text); when the query runs, their values are bound to the statement
 * (sqlite3_bind_*, sqlcache.h), never spliced into its text. A query is checked when it is saved:
 * one read-only statement over the tables of the branch, whose placeholders are exactly the
 * declared parameters.
 */
#ifndef TABLEHUB_SAVED_H
#define TABLEHUB_SAVED_H

#include <stddef.h>
#include "buf.h"
#include "error.h"
#include "query.h"
#include "repo.h"
#include "value.h"

#define TH_SAVED_PARAMS_MAX 32
#define TH_SAVED_SQL_MAX (32 * 1024)
#define TH_SAVED_DESCRIPTION_MAX 4096

typedef struct th_saved_param {
	char name[65];
	th_type type;
} th_saved_param;

typedef struct th_saved_query {
	char name[65];
	char *description; /* heap; "" when none */
	char *sql;         /* heap */
	size_t nparams;
	th_saved_param params[TH_SAVED_PARAMS_MAX];
} th_saved_query;

/* Is `name` a valid saved query name? [A-Za-z0-9_-], 1-64 bytes, not starting with '-'. */
int th_saved_name_valid(const char *name);

/* Read a definition from JSON (a PUT body, or a stored file): "query" (required), "description",
 * "params" (names, or objects {"name", "type"}; the type defaults to text); `name` is the query's.
 * Parameter names are [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes, unique, and not "ref" or
 * "format" (the run endpoint's own arguments). Returns TH_OK or TH_EINVALID (the message names
 * the field); *out is the caller's: th_saved_dispose. */
int th_saved_from_json(th_saved_query *out, const char *name, const char *json, size_t len,
                       th_error *err);

/* Append the stored form of q (the JSON above, indented, ending in a newline). TH_OK/TH_ENOMEM. */
int th_saved_to_json(th_buf *out, const th_saved_query *q, th_error *err);

/* Accepts NULL. */
void th_saved_dispose(th_saved_query *q);

/* The saved query `name` at t->ref into *out. Returns TH_OK, TH_ENOTFOUND (the database, the ref
 * or the query: the message says which), TH_EINVALID (a malformed ref, or the stored file is not
 * a definition) or TH_ESTORE. */
int th_saved_get(th_saved_query *out, const th_query_target *t, const char *name, th_error *err);

/* The saved queries at t->ref, by name, into *out (n of them; free with th_saved_list_free).
 * Files that are not definitions are skipped. Returns TH_OK, TH_ENOTFOUND, TH_EINVALID or
 * TH_ESTORE. */
int th_saved_list(th_saved_query **out, size_t *n, const th_query_target *t, th_error *err);
void th_saved_list_free(th_saved_query *v, size_t n);

/* Check q against the tables at t->ref: one read-only statement that SQLite can prepare there,
 * whose ":name" placeholders are exactly q's parameters. Returns TH_OK, TH_EINVALID (the message
 * says what is wrong), or what th_query_params does. */
int th_saved_check(const th_query_target *t, const th_saved_query *q, th_error *err);

/* Commit q as queries/<q->name>.json on `branch` of `repo` (opened as a writer), or with q NULL
 * the removal of queries/<name>.json, by `author` with `message` (NULL: "Save query <name>" or
 * "Remove query <name>"); the branch moves by compare-and-swap, retried if it moved meanwhile.
 * A definition the branch has already makes no commit. *commit gets the branch's new head.
 * Returns TH_OK, TH_ENOTFOUND (no such branch; no such query to remove), TH_ECONFLICT (the branch
 * kept moving) or TH_ESTORE. */
int th_saved_commit(th_oid *commit, th_repo *repo, const char *branch, const char *name,
                    const th_saved_query *q, const char *author, const char *message,
                    th_error *err);

/* Merge the saved queries of three commit trees into *root (ours, with the tables merged
 * already): a file changed on one side is taken from that side, changed alike on both is kept;
 * changed differently, `conflict` is called with its path ("queries/<name>"; the root keeps
 * ours). Returns TH_OK,
 * what `conflict` returned, or TH_ESTORE. base may be NULL (no common ancestor). */
int th_saved_merge(th_oid *root, th_repo *repo, const th_oid *base, const th_oid *ours,
                   const th_oid *theirs,
                   int (*conflict)(void *payload, const char *path, th_error *err), void *payload,
                   th_error *err);

#endif
