/* pulls.h: what a pull request shows and does beyond its record in meta.sqlite (src/pulls.c): its
 * diff (three-dot: from the merge base to the head of the from-branch), paged, and its merge, which
 * writes a merge commit onto the to-branch (run as an operation: src/merge_job.c).
 *
 * The diff is th_tree_diff's walk (diff.h): per table a summary (added, dropped or modified;
 * schema changes; rows added, modified, removed; cells modified) and the changed rows in key
 * order, decoded into cells. th_pull_diff_page cuts the rows into pages with an opaque token and
 * hands out values; the API shapes them into DoltHub-style JSON.
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

typedef struct th_pull_diff_opts {
	const char *table;      /* only this table; NULL = all */
	unsigned kinds;         /* rows to list: bits (1u << TH_CHANGE_*); 0 = all */
	const char *page_token; /* NULL or "" = the first page */
	size_t page_size;       /* rows per page; 0 = 200 */
} th_pull_diff_opts;

/* One page of the diff between the commits `from_commit` and `to_commit` (zero from_commit = the
 * empty tree), as values for `v`: th_tree_diff's walk (v->summary_only is ignored), with
 * v->table_end called for every changed table (the summary is always whole, whatever the page:
 * counted by one walk of the whole diff the first time a pair of trees is asked for, then kept in
 * memory) and v->row for the rows of this page only (only they are walked once the counts are
 * known): those of the kinds asked for, after the page token's
 * position in (table, phase, key) order, at most page_size of them. The token of the next page is
 * appended to `next_token` (opaque hex; nothing when this page is the last). Returns TH_OK, what a
 * callback returned, TH_EINVALID ("invalid pageToken", or a malformed table), TH_ENOMEM or
 * TH_ESTORE. */
int th_pull_diff_page(th_buf *next_token, th_repo *repo, const th_oid *from_commit,
                      const th_oid *to_commit, const th_pull_diff_opts *opts,
                      const th_diff_visitor *v, th_error *err);

/* The commits a pull request's diff compares: *base_out = the merge base of the heads of
 * `to_branch` and `from_branch` (zero when they share no history), *head_out = the head of
 * from_branch. Returns TH_OK, TH_ENOTFOUND (a branch is gone: the message names it) or
 * TH_ESTORE. */
int th_pull_diff_commits(th_oid *base_out, th_oid *head_out, th_repo *repo, const char *from_branch,
                         const char *to_branch, th_error *err);

/* The commits pull `p`'s diff compares: for an open or closed pull, th_pull_diff_commits of its
 * branches; for a merged one, what they were when it merged (the merge base of the merge commit's
 * parents, and its second parent), so the diff still shows what was merged; a merge that wrote no
 * commit (already up to date) compares its commit with itself. Returns TH_OK, TH_ENOTFOUND (a
 * branch or the merge commit is gone), TH_EINVALID (a malformed merge commit id) or TH_ESTORE. */
int th_pull_diff_range(th_oid *base_out, th_oid *head_out, th_repo *repo, const th_pull_info *p,
                       th_error *err);

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
 * `creator`, asked from client `address` (may be NULL; kept for the "pull.merge" event the
 * merge writes when it completes); its uuid goes to op_id_out. The caller checks the pull is
 * Open and wakes the workers. Returns TH_OK, TH_EINVALID, TH_ENOMEM or TH_ESTORE. */
int th_pulls_enqueue_merge(char op_id_out[TH_UUID_SIZE], th_meta *m, const char *owner,
                           const char *db, const char *creator, int64_t pull_id,
                           const char *address, th_error *err);

#endif
