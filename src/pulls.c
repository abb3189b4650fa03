/* pulls.c: what a pull request shows and does (see include/tablehub/pulls.h): its diff, paged,
 * and its merge. The merge operation around th_pull_merge is src/merge_job.c; the tree diff
 * itself is src/tree_diff.c.
 *
 * Paging: rows are listed in (table, phase, key) order; a page token is the hex of the last row
 * listed (table name, NUL, phase byte, key bytes), and the next page lists the rows after it. The
 * summary counts need the whole diff anyway, and the diff costs what the change costs, so each page
 * walks it again rather than keeping state on the server. The page is handed out as values through
 * a visitor; the API turns them into JSON.
 *
 * The merge: the heads of both branches are merged over their merge base (src/merge.c), the result
 * is written as a commit with both heads as parents, and the target branch moves by compare-and-
 * swap; if another writer moved it meanwhile, the merge is recomputed on the new head. A merge
 * whose commit is already on the target (an earlier attempt made it and died) is found, not made
 * twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tablehub/hash.h"
#include "tablehub/log.h"
#include "tablehub/pulls.h"
#include "tablehub/text.h"

#define MERGE_MAX_ATTEMPTS 100
#define RECOVER_LOG_LIMIT 1000 /* commits searched for a merge an earlier attempt made */
#define DEFAULT_PAGE_SIZE 200

/* --- a page of a diff ------------------------------------------------------------------------- */

typedef struct page_walk {
	const th_diff_visitor *v; /* the caller's */
	size_t nrows, page_size;
	unsigned kinds;
	/* The position after which rows are listed (from the page token). */
	int have_pos;
	th_buf pos_table, pos_key;
	int pos_phase;
	/* The last row listed, and whether another one followed (then it is the next token). */
	th_buf last_table, last_key;
	int last_phase, more;
} page_walk;

/* Is the row at (table, phase, key) after the page token's position? */
static int after_pos(const page_walk *j, const char *table, int phase, const unsigned char *key,
                     size_t keylen)
{
	int c;

	if (!j->have_pos)
		return 1;
	if ((c = strcmp(table, j->pos_table.ptr ? j->pos_table.ptr : "")) != 0)
		return c > 0;
	if (phase != j->pos_phase)
		return phase > j->pos_phase;
	return th_key_cmp(key, keylen, (const unsigned char *)j->pos_key.ptr, j->pos_key.size) > 0;
}

static int page_table_begin(void *payload, const th_table_diff *t, th_error *err)
{
	page_walk *p = payload;

	return p->v->table_begin ? p->v->table_begin(p->v->payload, t, err) : 0;
}

static int page_table_end(void *payload, const th_table_diff *t, th_error *err)
{
	page_walk *p = payload;

	return p->v->table_end ? p->v->table_end(p->v->payload, t, err) : 0;
}

static int page_row(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err)
{
	page_walk *p = payload;
	int error;

	if (p->kinds && !(p->kinds & (1u << r->kind)))
		return 0;
	if (!after_pos(p, t->name, r->phase, r->rawkey, r->rawkeylen))
		return 0;
	if (p->nrows >= p->page_size) {
		p->more = 1;
		return 0;
	}
	p->nrows++;
	if (p->v->row && (error = p->v->row(p->v->payload, t, r, err)) != 0)
		return error;
	if ((error = th_buf_set(&p->last_table, t->name, strlen(t->name), err)) < 0 ||
	    (error = th_buf_set(&p->last_key, r->rawkey, r->rawkeylen, err)) < 0)
		return error;
	p->last_phase = r->phase;
	return 0;
}

/* token = hex(table NUL phase key) */
static int token_parse(page_walk *p, const char *tok, th_error *err)
{
	size_t len = strlen(tok), i, n;
	th_buf raw = TH_BUF_INIT;
	const char *nul;
	int error = TH_OK;

	if (len % 2 || len < 6)
		goto bad;
	for (i = 0; i < len; i += 2) {
		int hi = th_hexval(tok[i]), lo = th_hexval(tok[i + 1]);
		if (hi < 0 || lo < 0)
			goto bad;
		if ((error = th_buf_putc(&raw, (char)(hi << 4 | lo), err)) < 0)
			goto cleanup;
	}
	if ((nul = memchr(raw.ptr, '\0', raw.size)) == NULL)
		goto bad;
	n = (size_t)(nul - raw.ptr);
	if (n == 0 || n + 2 > raw.size || (raw.ptr[n + 1] != 0 && raw.ptr[n + 1] != 1))
		goto bad;
	if ((error = th_buf_set(&p->pos_table, raw.ptr, n, err)) < 0 ||
	    (error = th_buf_set(&p->pos_key, raw.ptr + n + 2, raw.size - n - 2, err)) < 0)
		goto cleanup;
	p->pos_phase = raw.ptr[n + 1];
	p->have_pos = 1;
	goto cleanup;
bad:
	error = th_error_set(err, TH_EINVALID, "invalid pageToken");
cleanup:
	th_buf_dispose(&raw);
	return error;
}

/* Append the hex of n bytes. */
static int put_hex(th_buf *out, const void *bytes, size_t n, th_error *err)
{
	int error;

	if ((error = th_buf_grow(out, 2 * n, err)) < 0)
		return error;
	th_hex(out->ptr + out->size, bytes, n);
	out->size += 2 * n;
	return TH_OK;
}

static int token_write(th_buf *out, const page_walk *p, th_error *err)
{
	int error;

	if ((error = put_hex(out, p->last_table.ptr, p->last_table.size, err)) < 0 ||
	    (error = th_buf_printf(out, err, "000%d", p->last_phase)) < 0)
		return error;
	return put_hex(out, p->last_key.ptr, p->last_key.size, err);
}

static int commit_tree(th_oid *out, th_repo *repo, const th_oid *commit, th_error *err)
{
	th_commit_info ci;
	int error;

	memset(out, 0, sizeof(*out));
	if (commit == NULL || th_oid_is_zero(commit))
		return TH_OK;
	memset(&ci, 0, sizeof(ci));
	if ((error = th_repo_commit_read(&ci, repo, commit, err)) < 0)
		return error;
	*out = ci.tree;
	th_commit_info_dispose(&ci);
	return TH_OK;
}

int th_pull_diff_page(th_buf *next_token, th_repo *repo, const th_oid *from_commit,
                      const th_oid *to_commit, const th_pull_diff_opts *opts,
                      const th_diff_visitor *v, th_error *err)
{
	th_diff_visitor walk;
	page_walk p;
	th_oid ft, tt;
	int error;

	memset(&p, 0, sizeof(p));
	p.v = v;
	p.page_size = opts && opts->page_size ? opts->page_size : DEFAULT_PAGE_SIZE;
	p.kinds = opts ? opts->kinds : 0;
	if (opts && opts->page_token && *opts->page_token &&
	    (error = token_parse(&p, opts->page_token, err)) < 0)
		goto cleanup;
	if ((error = commit_tree(&ft, repo, from_commit, err)) < 0 ||
	    (error = commit_tree(&tt, repo, to_commit, err)) < 0)
		goto cleanup;
	memset(&walk, 0, sizeof(walk));
	walk.table_begin = page_table_begin;
	walk.row = page_row;
	walk.table_end = page_table_end;
	walk.payload = &p;
	if ((error = th_tree_diff(repo, &ft, &tt, opts ? opts->table : NULL, &walk, err)) != 0)
		goto cleanup;
	if (p.more)
		error = token_write(next_token, &p, err);
cleanup:
	th_buf_dispose(&p.pos_table);
	th_buf_dispose(&p.pos_key);
	th_buf_dispose(&p.last_table);
	th_buf_dispose(&p.last_key);
	return error;
}

static int branch_head(th_oid *out, th_repo *repo, const char *branch, th_error *err)
{
	int error = th_repo_branch_get(out, repo, branch, err);

	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", branch);
	return error;
}

static int merge_base(th_oid *out, th_repo *repo, const th_oid *a, const th_oid *b, th_error *err)
{
	int error = th_repo_merge_base(out, repo, a, b, err);

	if (error == TH_ENOTFOUND) {
		th_error_clear(err);
		memset(out, 0, sizeof(*out));
		return TH_OK;
	}
	return error;
}

int th_pull_diff_commits(th_oid *base_out, th_oid *head_out, th_repo *repo, const char *from_branch,
                         const char *to_branch, th_error *err)
{
	th_oid from, to, base;
	int error;

	if ((error = branch_head(&from, repo, from_branch, err)) < 0 ||
	    (error = branch_head(&to, repo, to_branch, err)) < 0 ||
	    (error = merge_base(&base, repo, &to, &from, err)) < 0)
		return error;
	*base_out = base;
	*head_out = from;
	return TH_OK;
}

int th_pull_diff_range(th_oid *base_out, th_oid *head_out, th_repo *repo, const th_pull_info *p,
                       th_error *err)
{
	th_commit_info ci;
	th_oid mc;
	int error;

	if (p->state != TH_PULL_MERGED || p->merge_commit[0] == '\0')
		return th_pull_diff_commits(base_out, head_out, repo, p->from_branch, p->to_branch,
		                            err);
	memset(&ci, 0, sizeof(ci));
	if ((error = th_oid_parse(&mc, p->merge_commit, err)) < 0 ||
	    (error = th_repo_commit_read(&ci, repo, &mc, err)) < 0)
		return error;
	if (ci.nparents < 2) { /* merged while already up to date: nothing to show */
		*base_out = *head_out = mc;
	} else if ((error = merge_base(base_out, repo, &ci.parents[0], &ci.parents[1], err)) ==
	           TH_OK) {
		*head_out = ci.parents[1];
	}
	th_commit_info_dispose(&ci);
	return error;
}

/* --- merging ---------------------------------------------------------------------------------- */

static void conflicts_reset(th_conflicts *c)
{
	size_t limit;

	if (c == NULL)
		return;
	limit = c->limit;
	th_conflicts_dispose(c);
	c->limit = limit;
}

/* A short pause between attempts, growing with them and jittered, so racing mergers spread out. */
static void backoff(int attempt)
{
	struct timespec ts;
	long us;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	us = 200L * (attempt < 10 ? attempt : 10) + (long)((unsigned long)ts.tv_nsec / 1000 % 700);
	ts.tv_sec = 0;
	ts.tv_nsec = us * 1000;
	nanosleep(&ts, NULL);
}

/* Is the message `got` the message `want` (git may end it with a newline)? */
static int message_equal(const char *got, const char *want)
{
	size_t n = strlen(want);

	return strncmp(got, want, n) == 0 && (got[n] == '\0' || strcmp(got + n, "\n") == 0);
}

struct find_merge {
	const th_oid *theirs;
	const char *message;
	th_oid found;
};

static int find_merge_cb(const th_commit_info *ci, void *payload)
{
	struct find_merge *f = payload;

	if (ci->nparents != 2 || !th_oid_equal(&ci->parents[1], f->theirs) ||
	    !message_equal(ci->message ? ci->message : "", f->message))
		return 0;
	f->found = ci->id;
	return 1;
}

/* The merge commit with `message` and second parent `theirs` in the history of `head` (the last
 * RECOVER_LOG_LIMIT commits) into *out: 1 if found, 0 if not, or an error code. */
static int find_merge(th_oid *out, th_repo *repo, const th_oid *head, const th_oid *theirs,
                      const char *message, th_error *err)
{
	struct find_merge f;
	int rc;

	memset(&f, 0, sizeof(f));
	f.theirs = theirs;
	f.message = message;
	if ((rc = th_repo_log(repo, head, RECOVER_LOG_LIMIT, find_merge_cb, &f, err)) <= 0)
		return rc;
	*out = f.found;
	return 1;
}

int th_pull_merge_done(th_pull_merge_result *out, th_repo *repo, const char *to_branch,
                       const th_oid *commit, th_error *err)
{
	th_pull_merge_result res;
	th_commit_info ci;
	th_oid to, on, base, bt, ot, tt, tree;
	char hex[41];
	int error;

	memset(&res, 0, sizeof(res));
	memset(&ci, 0, sizeof(ci));
	th_oid_fmt(hex, commit);
	if ((error = branch_head(&to, repo, to_branch, err)) < 0 ||
	    (error = th_repo_commit_read(&ci, repo, commit, err)) < 0)
		goto cleanup;
	if (ci.nparents != 2) {
		error = th_error_set(err, TH_ENOTFOUND, "commit %.12s is not a merge commit", hex);
		goto cleanup;
	}
	if ((error = merge_base(&on, repo, &to, commit, err)) < 0)
		goto cleanup;
	if (!th_oid_equal(&on, commit)) {
		error = th_error_set(err, TH_ENOTFOUND, "merge commit %.12s is not on branch '%s'",
		                     hex, to_branch);
		goto cleanup;
	}
	/* Merge the parents again for the counts: the same objects, already stored. */
	if ((error = merge_base(&base, repo, &ci.parents[0], &ci.parents[1], err)) < 0 ||
	    (error = commit_tree(&bt, repo, &base, err)) < 0 ||
	    (error = commit_tree(&ot, repo, &ci.parents[0], err)) < 0 ||
	    (error = commit_tree(&tt, repo, &ci.parents[1], err)) < 0 ||
	    (error = th_merge_trees(&tree, &res.stats, NULL, repo,
	                            th_oid_is_zero(&base) ? NULL : &bt, &ot, &tt, 0, err)) < 0)
		goto cleanup;
	res.commit = *commit;
	res.ours = ci.parents[0];
	res.theirs = ci.parents[1];
	res.attempts = 1;
	res.recovered = 1;
	*out = res;
cleanup:
	th_commit_info_dispose(&ci);
	return error;
}

static int merge_once(th_pull_merge_result *out, th_conflicts *conflicts, th_repo *repo,
                      const char *from_branch, const char *to_branch, const char *message,
                      const char *author, const char *email, th_error *err)
{
	th_oid ours, theirs, base, base_tree, ours_tree, theirs_tree, tree, commit, parents[2];
	int error;

	if ((error = branch_head(&ours, repo, to_branch, err)) < 0 ||
	    (error = branch_head(&theirs, repo, from_branch, err)) < 0 ||
	    (error = merge_base(&base, repo, &ours, &theirs, err)) < 0)
		return error;
	out->ours = ours;
	out->theirs = theirs;
	if (!th_oid_is_zero(&base) && th_oid_equal(&base, &theirs)) {
		/* Contained already: by this very merge, made by an attempt that died before it
		 * said so? Then that commit is the result. */
		if ((error = find_merge(&commit, repo, &ours, &theirs, message, err)) < 0)
			return error;
		if (error == 1)
			return th_pull_merge_done(out, repo, to_branch, &commit, err);
		out->up_to_date = 1;
		out->commit = ours;
		return TH_OK;
	}
	if ((error = commit_tree(&base_tree, repo, &base, err)) < 0 ||
	    (error = commit_tree(&ours_tree, repo, &ours, err)) < 0 ||
	    (error = commit_tree(&theirs_tree, repo, &theirs, err)) < 0)
		return error;
	if ((error = th_merge_trees(&tree, &out->stats, conflicts, repo,
	                            th_oid_is_zero(&base) ? NULL : &base_tree, &ours_tree,
	                            &theirs_tree, 0, err)) < 0)
		return error;
	parents[0] = ours;
	parents[1] = theirs;
	if ((error = th_repo_commit_write(&commit, repo, &tree, parents, 2, author, email, message,
	                                  err)) < 0)
		return error;
	if ((error = th_repo_branch_cas(repo, to_branch, &commit, &ours, message, err)) < 0)
		return error;
	out->commit = commit;
	return TH_OK;
}

int th_pull_merge(th_pull_merge_result *out, th_conflicts *conflicts, th_repo *repo,
                  const char *from_branch, const char *to_branch, int64_t pull_id,
                  const char *author, const char *email, th_error *err)
{
	th_pull_merge_result res;
	th_conflicts local = TH_CONFLICTS_INIT;
	th_buf msg = TH_BUF_INIT, mail = TH_BUF_INIT;
	int error, attempt;

	if (conflicts == NULL)
		conflicts = &local;
	if ((error = th_buf_printf(&msg, err, "Merge pull request #%lld from %s",
	                           (long long)pull_id, from_branch)) < 0)
		goto cleanup;
	if (email == NULL) {
		if ((error = th_buf_printf(&mail, err, "%s@tablehub.local", author)) < 0)
			goto cleanup;
		email = mail.ptr;
	}
	for (attempt = 1; attempt <= MERGE_MAX_ATTEMPTS; attempt++) {
		memset(&res, 0, sizeof(res));
		res.attempts = attempt;
		conflicts_reset(conflicts);
		error = merge_once(&res, conflicts, repo, from_branch, to_branch, msg.ptr, author,
		                   email, err);
		/* TH_ECONFLICT without conflicts: the target moved between reading its head and
		 * the compare-and-swap. Recompute on the new head. */
		if (error != TH_ECONFLICT || conflicts->total > 0)
			break;
		TH_LOG(TH_LOG_DEBUG, "merge of '%s' into '%s': target moved, attempt %d",
		       from_branch, to_branch, attempt);
		th_error_clear(err);
		backoff(attempt);
	}
	if (attempt > MERGE_MAX_ATTEMPTS)
		error = th_error_set(err, TH_EBUSY,
		                     "branch '%s' kept moving: merge gave up after %d attempts",
		                     to_branch, MERGE_MAX_ATTEMPTS);
	if (error == TH_OK)
		*out = res;
cleanup:
	th_conflicts_dispose(&local);
	th_buf_dispose(&msg);
	th_buf_dispose(&mail);
	return error;
}

int th_pull_conflicts(th_conflicts *out, th_repo *repo, const char *from_branch,
                      const char *to_branch, th_error *err)
{
	th_oid ours, theirs, base, bt, ot, tt;
	int error;

	if ((error = branch_head(&ours, repo, to_branch, err)) < 0 ||
	    (error = branch_head(&theirs, repo, from_branch, err)) < 0 ||
	    (error = merge_base(&base, repo, &ours, &theirs, err)) < 0)
		return error;
	if (!th_oid_is_zero(&base) && th_oid_equal(&base, &theirs))
		return TH_OK;
	if ((error = commit_tree(&bt, repo, &base, err)) < 0 ||
	    (error = commit_tree(&ot, repo, &ours, err)) < 0 ||
	    (error = commit_tree(&tt, repo, &theirs, err)) < 0)
		return error;
	error = th_merge_trees(NULL, NULL, out, repo, th_oid_is_zero(&base) ? NULL : &bt, &ot, &tt,
	                       1, err);
	if (error == TH_ECONFLICT) {
		th_error_clear(err);
		error = TH_OK;
	}
	return error;
}
