/* pulls.h: what a pull request shows and does beyond its record in meta.sqlite (src/pulls.c): the
 * table-by-table diff of two commits (three-dot for a pull: from the merge base to the head of the
 * from-branch), and the merge operation that writes a merge commit onto the to-branch.
 *
 * The diff is a walk over the tables of two commit trees: per table a summary (added, dropped or
 * modified; schema changes; rows added, modified, removed; cells modified) and the changed rows in
 * key order, each decoded into cells. th_tree_diff drives callbacks (the CLI prints from them);
 * th_pull_diff_json builds the API's JSON with rows paged by an opaque token.
 */
#ifndef TABLEHUB_PULLS_H
#define TABLEHUB_PULLS_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "diff.h"
#include "error.h"
#include "merge.h"
#include "meta.h"
#include "repo.h"
#include "table.h"

/* --- diffs of commit trees ------------------------------------------------------------------ */

typedef enum { TH_TABLE_ADDED = 1, TH_TABLE_DROPPED = 2, TH_TABLE_MODIFIED = 3 } th_table_change;

/* "added", "dropped", "modified"; "added", "modified", "removed" for rows. */
const char *th_table_change_name(th_table_change c);
const char *th_change_kind_name(th_change_kind k);
/* "added" etc. to a kind, 0 if unknown. */
th_change_kind th_change_kind_parse(const char *s);

/* One changed table. Everything is borrowed for the duration of the callback. Counts are final
 * only in table_end. */
typedef struct th_table_diff {
	const char *name;
	th_table_change change;
	const th_schema *from_schema; /* NULL when added */
	const th_schema *to_schema;   /* NULL when dropped */
	int schema_changed;           /* columns added, dropped or retyped, or the key changed */
	int key_changed;              /* rows are then listed as all removed, then all added */
	uint64_t rows_added, rows_modified, rows_removed, cells_modified;
} th_table_diff;

/* One changed row, decoded. `before` uses from_schema, `after` to_schema; NULL when absent. For a
 * modified row `changed[i]` says whether column i of to_schema changed (a column dropped on the
 * way counts in cells_modified but has no entry). For keyless tables `count` copies were added or
 * removed. `key` is th_key_format's text; rawkey/phase place the row for paging. */
typedef struct th_diff_row {
	th_change_kind kind;
	const th_cells *before, *after;
	const unsigned char *changed;
	uint64_t cells_modified;
	const char *key;
	uint64_t count;
	const unsigned char *rawkey;
	size_t rawkeylen;
	int phase; /* 0, or 1 for the added rows of a table whose key changed */
} th_diff_row;

typedef struct th_diff_visitor {
	/* Each may be NULL; a non-zero return stops the walk and is returned. */
	int (*table_begin)(void *payload, const th_table_diff *t, th_error *err);
	int (*row)(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err);
	int (*table_end)(void *payload, const th_table_diff *t, th_error *err);
	void *payload;
	/* Skip decoding rows (counts are still exact): for summaries. */
	int summary_only;
} th_diff_visitor;

/* Walk the differences between commit trees `from_root` and `to_root` (NULL or zero = empty),
 * table by table in name order (only `only_table` when not NULL), rows in key order. A row whose
 * cells are all equal under the two schemas (e.g. only a column of NULLs was added) is not a
 * change. Returns TH_OK, what a callback returned, TH_ENOMEM, TH_EINVALID (a malformed table) or
 * TH_ESTORE. */
int th_tree_diff(th_repo *repo, const th_oid *from_root, const th_oid *to_root,
                 const char *only_table, const th_diff_visitor *v, th_error *err);

typedef struct th_pull_diff_opts {
	const char *table;      /* only this table; NULL = all */
	unsigned kinds;         /* rows to list: bits (1u << TH_CHANGE_*); 0 = all */
	const char *page_token; /* NULL or "" = the first page */
	size_t page_size;       /* rows per page; 0 = 200 */
} th_pull_diff_opts;

/* Append to `out` the JSON object body of a diff between the commits `from_commit` and
 * `to_commit` (zero from_commit = the empty tree):
 *   "from_commit_id", "to_commit_id",
 *   "tables": [{"table_name", "diff_type" (added|dropped|modified), "schema_change" (bool),
 *               "key_changed", "columns_added": [..], "columns_dropped": [..],
 *               "columns_retyped": [{"column_name", "from_type", "to_type"}],
 *               "from_primary_key": [..], "to_primary_key": [..],
 *               "rows_added", "rows_modified", "rows_removed", "cells_modified"}],
 *   "rows": [{"table_name", "diff_type", "key", "count" (keyless only), "before": {col: text|null}
 *             | null, "after": ..., "changed_columns": [..] (modified only)}],
 *   "next_page_token": "" when this is the last page
 * without the enclosing braces, so the caller may add fields. Returns TH_OK, TH_EINVALID (a bad
 * page token), TH_ENOMEM, TH_ESTORE. */
int th_pull_diff_json(th_buf *out, th_repo *repo, const th_oid *from_commit,
                      const th_oid *to_commit, const th_pull_diff_opts *opts, th_error *err);

/* The commits a pull request's diff compares: *base_out = the merge base of the heads of
 * `to_branch` and `from_branch` (zero when they share no history), *head_out = the head of
 * from_branch. Returns TH_OK, TH_ENOTFOUND (a branch is gone: the message names it) or
 * TH_ESTORE. */
int th_pull_diff_commits(th_oid *base_out, th_oid *head_out, th_repo *repo, const char *from_branch,
                         const char *to_branch, th_error *err);

/* --- merging pull requests ---------------------------------------------------------------- */

typedef struct th_pull_merge_result {
	th_oid commit;       /* the merge commit, now the head of to_branch */
	th_oid ours, theirs; /* its parents: the to_branch head it was made on, the from head */
	int attempts;        /* 1 unless the target moved meanwhile and the merge was recomputed */
	int up_to_date;      /* from_branch was already contained in to_branch: no commit written */
	int recovered; /* the merge commit was already on to_branch (an earlier attempt made it) */
	th_merge_stats stats;
} th_pull_merge_result;

/* Merge branch `from_branch` into `to_branch`: a three-way merge over their merge base, written as
 * a commit with two parents (to head, from head), message "Merge pull request #<pull_id> from
 * <from_branch>", by `author` <`email`> (email NULL = author@tablehub.local); to_branch then moves
 * by compare-and-swap, and when it moved meanwhile the merge is recomputed on its new head (up to
 * many times), so no concurrent commit is lost. Idempotent: when from_branch is already contained
 * in to_branch through the very merge commit this call would write (same message, from head as
 * second parent: an earlier attempt wrote it and died), that commit is the result, `recovered`
 * set, and nothing is written. Returns TH_OK; TH_ECONFLICT when the changes
 * conflict (listed in `conflicts`, which may be NULL; nothing is changed); TH_ENOTFOUND (a branch
 * is gone); TH_EBUSY (the target kept moving); TH_ENOMEM or TH_ESTORE. */
int th_pull_merge(th_pull_merge_result *out, th_conflicts *conflicts, th_repo *repo,
                  const char *from_branch, const char *to_branch, int64_t pull_id,
                  const char *author, const char *email, th_error *err);

/* Describe `commit`, a merge commit on `to_branch`, as th_pull_merge would have returned it when
 * writing it: its parents, the merge's counts (recomputed), attempts 1, `recovered` set. For a
 * retried merge that finds its work done. Writes no ref. Returns TH_OK, TH_ENOTFOUND (commit is
 * not a merge commit contained in to_branch, or the branch is gone), TH_ENOMEM or TH_ESTORE. */
int th_pull_merge_done(th_pull_merge_result *out, th_repo *repo, const char *to_branch,
                       const th_oid *commit, th_error *err);

/* The conflicts merging from_branch into to_branch would meet now, without writing anything.
 * Returns TH_OK (the list may be empty), TH_ENOTFOUND, TH_ENOMEM or TH_ESTORE. */
int th_pull_conflicts(th_conflicts *out, th_repo *repo, const char *from_branch,
                      const char *to_branch, th_error *err);

/* Queue a merge operation (kind "merge", src/merge_job.c) for pull `pull_id` of owner/db by
 * `creator`; its uuid goes to op_id_out. The caller checks the pull is Open and wakes the workers.
 * Returns TH_OK, TH_EINVALID or TH_ESTORE. */
int th_pulls_enqueue_merge(char op_id_out[TH_UUID_SIZE], th_meta *m, const char *owner,
                           const char *db, const char *creator, int64_t pull_id, th_error *err);

#endif
