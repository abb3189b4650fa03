/* merge.h: streaming row diffs and the three-way, cell-wise merge of tables and commits
 * (src/diff.c, src/merge.c).
 *
 * th_diff_rows (diff.h) pushes changes to a callback; the merge needs two diffs side by side
 * (base->ours and base->theirs, joined by key), so the same walk is offered here as a pull
 * iterator. The merge then feeds th_table_apply, itself a pull consumer, so a merge of a large
 * table holds one chunk per side at a time, never the table.
 *
 * Merge rules (Dolt's): changes to different rows, or to different cells of one row, merge
 * cleanly; the same cell changed to different values on both sides, a row deleted on one side and
 * changed on the other, a table dropped on one side and changed on the other, and schema changes
 * that cannot be reconciled are conflicts. A merge with conflicts writes nothing that is reachable.
 */
#ifndef TABLEHUB_MERGE_H
#define TABLEHUB_MERGE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "diff.h"
#include "error.h"
#include "repo.h"
#include "table.h"

/* --- streaming diffs ------------------------------------------------------------------------ */

/* One change of a th_diff_iter: the change itself, plus, for keyless tables, the number of copies
 * of the row on each side (old_count/new_count; 0 or 1 for keyed tables). */
typedef struct th_diff_change {
	th_row_change c;
	uint64_t old_count, new_count;
} th_diff_change;

typedef struct th_diff_iter th_diff_iter;

/* Start a diff of rows tree `a` (schema `sa`) against rows tree `b` (schema `sb`); either tree may
 * be NULL or zero (empty). The schemas must encode keys alike (same key columns and types); when
 * their columns differ (names, types or order; nullability aside) no chunk is skipped and every
 * pair of rows with equal keys is reported MODIFIED, even with equal lines, since equal lines may
 * then mean different rows (a renamed column): the caller compares their cells. The schemas are
 * borrowed and must outlive the iterator. Returns TH_OK, TH_ENOMEM or TH_ESTORE; *out is freed with
 * th_diff_iter_free. */
int th_diff_iter_new(th_diff_iter **out, th_repo *repo, const th_schema *sa, const th_oid *a,
                     const th_schema *sb, const th_oid *b, th_error *err);

/* Before the first th_diff_iter_next: skip, unread, the chunks of both sides that certainly end
 * before `key` (raw key bytes). Changes before `key` may still be reported (their other side may
 * have been skipped, so they may be wrong): the caller ignores them; from `key` on, all are
 * right. Returns TH_OK, or TH_ENOTFOUND / TH_ESTORE when a subtree of chunk names cannot be
 * read. */
int th_diff_iter_seek(th_diff_iter *it, const unsigned char *key, size_t keylen, th_error *err);

/* The next change in key order into *out (its pointers are borrowed until the next call). Returns
 * 1 (a change), 0 (no more) or TH_ENOMEM, TH_EINVALID (a malformed chunk), TH_ESTORE. */
int th_diff_iter_next(th_diff_iter *it, th_diff_change *out, th_error *err);

/* Chunks decoded and skipped so far (to check that the cost follows the change); a subtree of
 * chunks skipped unread counts as one. */
void th_diff_iter_stats(const th_diff_iter *it, uint64_t *chunks_read, uint64_t *chunks_skipped);

void th_diff_iter_free(th_diff_iter *it);

/* Are two schemas the same columns (names, types, nullability) and key? */
int th_schema_equal(const th_schema *a, const th_schema *b);

/* Do two schemas encode row keys alike (same key column names and types, in the same order, and
 * both keyed or both keyless over the same columns)? */
int th_schema_same_key(const th_schema *a, const th_schema *b);

/* --- conflicts ------------------------------------------------------------------------------ */

/* One conflict. Every string is heap-owned by the list. `key` is th_key_format's form (NULL for a
 * table-level conflict); `column` is NULL when the conflict is about a whole row or the table.
 * base/ours/theirs are JSON texts: a cell as a JSON string or null, a row as a JSON object keyed
 * by column name, `null` for an absent row or table, a schema as its schema.json. */
typedef struct th_conflict {
	char *table;
	char *key;
	char *column;
	char *base, *ours, *theirs;
	char *reason; /* e.g. "both sides changed the cell", "deleted on one side, changed on the
	                 other", "incompatible schema change" */
} th_conflict;

typedef struct th_conflicts {
	th_conflict *v;
	size_t n, cap;
	size_t limit; /* at most this many are kept (0 = 1000); `total` counts all */
	uint64_t total;
} th_conflicts;

#define TH_CONFLICTS_INIT                                                                          \
	{                                                                                          \
		NULL, 0, 0, 0, 0                                                                   \
	}

void th_conflicts_dispose(th_conflicts *c);

/* Append the list as a JSON array of {"table","key","column","base","ours","theirs","reason"}
 * objects (base/ours/theirs as JSON values). Returns TH_OK or TH_ENOMEM. */
int th_conflicts_to_json(th_buf *out, const th_conflicts *c, th_error *err);

/* --- merging -------------------------------------------------------------------------------- */

typedef struct th_merge_stats {
	uint64_t tables_changed; /* tables of ours that the merge changed */
	uint64_t rows_changed;   /* rows of ours set or removed by the merge */
	uint64_t cells_merged;   /* rows whose cells came from both sides */
} th_merge_stats;

/* Three-way merge of the commit trees `base`, `ours` and `theirs` (NULL or zero = the empty tree):
 * the result is `ours` with the changes base->theirs applied. On a clean merge returns TH_OK and
 * writes the merged root tree to *out (unless `dry_run`, in which case *out is left alone and only
 * conflicts are looked for, writing nothing). With conflicts returns TH_ECONFLICT, appends them to
 * `conflicts` (which may be NULL) and leaves *out alone; new chunks may have been written to the
 * object store, unreachable. Other returns: TH_ENOMEM, TH_EINVALID (a malformed table), TH_ESTORE.
 * `stats` may be NULL. */
int th_merge_trees(th_oid *out, th_merge_stats *stats, th_conflicts *conflicts, th_repo *repo,
                   const th_oid *base, const th_oid *ours, const th_oid *theirs, int dry_run,
                   th_error *err);

/* Three-way merge of the commits `ours` and `theirs` over their merge base (the empty tree when
 * they share no history); otherwise as th_merge_trees. *base_out (may be NULL) receives the merge
 * base commit, zero when there is none. */
int th_merge_commits(th_oid *tree_out, th_oid *base_out, th_merge_stats *stats,
                     th_conflicts *conflicts, th_repo *repo, const th_oid *ours,
                     const th_oid *theirs, int dry_run, th_error *err);

#endif
