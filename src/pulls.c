/* pulls.c: what a pull request shows and does (see include/tablehub/pulls.h): its diff, paged,
 * and its merge. The merge operation around th_pull_merge is src/merge_job.c; the tree diff
 * itself is src/tree_diff.c.
 *
 * Paging: rows are listed in (table, phase, key) order; a page token is the hex of the last row
 * listed (table name, NUL, phase byte, key bytes), and the next page lists the rows after it. The
 * summary (rows added, modified, removed and cells modified per table) needs the whole diff, so it
 * is counted once per pair of trees compared, by a walk of the whole diff, and kept in a small
 * in-memory LRU (COUNTS_CACHE_SIZE pairs; trees are content-addressed, so an entry never goes
 * stale). With the counts known, a page walks only its own rows: it seeks to the token's position
 * (chunks before it unread) and stops at the first row after the page, so a page costs what a page
 * costs, not the whole change. The page is handed out as values through a visitor; the API turns
 * them into JSON.
 *
 * The merge: the heads of both branches are merged over their merge base (src/merge.c), the result
 * is written as a commit with both heads as parents, and the target branch moves by compare-and-
 * swap; if another writer moved it meanwhile, the merge is recomputed on the new head. A merge
 * whose commit is already on the target (an earlier attempt made it and died) is found, not made
 * twice.
 */
#include <pthread.h>
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
#define COUNTS_CACHE_SIZE 64 /* diffs whose counts are kept */

/* --- the counts of a diff, cached ---------------------------------------------------------------
 */

typedef struct table_counts {
	char *name;
	uint64_t added, modified, removed, cells;
} table_counts;

typedef struct diff_counts {
	th_oid from, to; /* the two trees compared */
	table_counts *t; /* the changed tables, in name order */
	size_t n, cap;
	uint64_t used; /* the cache's clock when last used; 0 = a free slot */
} diff_counts;

static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static diff_counts counts_cache[COUNTS_CACHE_SIZE];
static uint64_t counts_clock;

static void counts_dispose(diff_counts *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->t[i].name);
	free(c->t);
	memset(c, 0, sizeof(*c));
}

static int counts_add(diff_counts *c, const th_table_diff *t, th_error *err)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? 2 * c->cap : 8;
		table_counts *p = realloc(c->t, ncap * sizeof(*p));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		c->t = p;
		c->cap = ncap;
	}
	if ((c->t[c->n].name = strdup(t->name)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	c->t[c->n].added = t->rows_added;
	c->t[c->n].modified = t->rows_modified;
	c->t[c->n].removed = t->rows_removed;
	c->t[c->n].cells = t->cells_modified;
	c->n++;
	return TH_OK;
}

/* A copy of src into *dst (empty first); 0 when out of memory. */
static int counts_copy(diff_counts *dst, const diff_counts *src)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	dst->from = src->from;
	dst->to = src->to;
	if (src->n && (dst->t = calloc(src->n, sizeof(*dst->t))) == NULL)
		return 0;
	dst->cap = src->n;
	for (i = 0; i < src->n; i++, dst->n++) {
		dst->t[i] = src->t[i];
		if ((dst->t[i].name = strdup(src->t[i].name)) == NULL)
			return 0;
	}
	return 1;
}

/* The cached counts of the diff of trees (from, to) into *out (the caller disposes of it): 1 when
 * found, 0 when not (or out of memory: then it is recomputed). */
static int counts_get(diff_counts *out, const th_oid *from, const th_oid *to)
{
	int found = 0;
	size_t i;

	pthread_mutex_lock(&counts_lock);
	for (i = 0; i < COUNTS_CACHE_SIZE && !found; i++) {
		diff_counts *c = &counts_cache[i];
		if (c->used == 0 || !th_oid_equal(&c->from, from) || !th_oid_equal(&c->to, to))
			continue;
		c->used = ++counts_clock;
		found = counts_copy(out, c);
		if (!found)
			counts_dispose(out);
	}
	pthread_mutex_unlock(&counts_lock);
	return found;
}

/* Keep a copy of `c` in the cache, in the slot least recently used. Out of memory keeps none. */
static void counts_put(const diff_counts *c)
{
	diff_counts *slot = &counts_cache[0];
	size_t i;

	pthread_mutex_lock(&counts_lock);
	for (i = 0; i < COUNTS_CACHE_SIZE; i++) {
		diff_counts *e = &counts_cache[i];
		if (e->used && th_oid_equal(&e->from, &c->from) && th_oid_equal(&e->to, &c->to))
			goto done; /* another request computed it meanwhile */
		if (e->used < slot->used)
			slot = e;
	}
	counts_dispose(slot);
	if (counts_copy(slot, c))
		slot->used = ++counts_clock;
	else
		counts_dispose(slot);
done:
	pthread_mutex_unlock(&counts_lock);
}

static const table_counts *counts_find(const diff_counts *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->t[i].name, name) == 0)
			return &c->t[i];
	return NULL;
}

/* --- a page of a diff ------------------------------------------------------------------------- */

typedef struct page_walk {
	const th_diff_visitor *v; /* the caller's */
	th_diff_visitor *walk;    /* ours, handed to th_tree_diff */
	size_t nrows, page_size;
	unsigned kinds;
	const char *only; /* only this table's rows and summary (NULL: all) */
	/* The counts of every changed table: known (from the cache) or being counted by a walk of
	 * the whole diff. */
	diff_counts counts;
	int counting;
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

/* Does table `t` (known counts) hold rows of the kinds listed? */
static int has_rows(const page_walk *p, const table_counts *t)
{
	unsigned k = p->kinds ? p->kinds : ~0u;

	return ((k & (1u << TH_CHANGE_ADDED)) && t->added) ||
	       ((k & (1u << TH_CHANGE_MODIFIED)) && t->modified) ||
	       ((k & (1u << TH_CHANGE_REMOVED)) && t->removed);
}

static int page_table_begin(void *payload, const th_table_diff *t, th_error *err)
{
	page_walk *p = payload;
	const table_counts *known = p->counting ? NULL : counts_find(&p->counts, t->name);
	int error;

	if (p->counting) {
		/* Every table is walked for its counts; rows are decoded only while wanted. */
		int listed = p->only == NULL || strcmp(p->only, t->name) == 0;
		p->walk->summary_only = p->more || !listed;
		if (!listed || !p->v->table_begin)
			return 0;
		return p->v->table_begin(p->v->payload, t, err);
	}
	if (p->v->table_begin && (error = p->v->table_begin(p->v->payload, t, err)) != 0)
		return error;
	/* With the counts known, walk only the rows that can be on this page. */
	if (known == NULL || !has_rows(p, known) ||
	    (p->have_pos && strcmp(t->name, p->pos_table.ptr) < 0))
		return TH_DIFF_NEXT_TABLE;
	if (p->nrows >= p->page_size) {
		p->more = 1; /* a row of this table follows the page */
		return TH_DIFF_NEXT_TABLE;
	}
	return 0;
}

static int page_table_end(void *payload, const th_table_diff *t, th_error *err)
{
	page_walk *p = payload;
	const table_counts *known;
	th_table_diff whole;
	int error;

	if (p->counting) {
		if ((error = counts_add(&p->counts, t, err)) < 0)
			return error;
		if (p->only && strcmp(p->only, t->name) != 0)
			return 0;
		return p->v->table_end ? p->v->table_end(p->v->payload, t, err) : 0;
	}
	if ((known = counts_find(&p->counts, t->name)) == NULL)
		return 0; /* not a change under the counts' walk either (cannot happen) */
	whole = *t;
	whole.rows_added = known->added;
	whole.rows_modified = known->modified;
	whole.rows_removed = known->removed;
	whole.cells_modified = known->cells;
	return p->v->table_end ? p->v->table_end(p->v->payload, &whole, err) : 0;
}

static int page_row(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err)
{
	page_walk *p = payload;
	int error;

	if (p->kinds && !(p->kinds & (1u << r->kind)))
		return 0;
	if (p->only && strcmp(p->only, t->name) != 0)
		return 0;
	if (!after_pos(p, t->name, r->phase, r->rawkey, r->rawkeylen))
		return 0;
	if (p->nrows >= p->page_size) {
		p->more = 1;
		if (p->counting) {
			p->walk->summary_only = 1; /* only the counts are still wanted */
			return 0;
		}
		return TH_DIFF_NEXT_TABLE;
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
	memset(&walk, 0, sizeof(walk));
	p.v = v;
	p.walk = &walk;
	p.page_size = opts && opts->page_size ? opts->page_size : DEFAULT_PAGE_SIZE;
	p.kinds = opts ? opts->kinds : 0;
	p.only = opts ? opts->table : NULL;
	if (opts && opts->page_token && *opts->page_token &&
	    (error = token_parse(&p, opts->page_token, err)) < 0)
		goto cleanup;
	if ((error = commit_tree(&ft, repo, from_commit, err)) < 0 ||
	    (error = commit_tree(&tt, repo, to_commit, err)) < 0)
		goto cleanup;
	walk.table_begin = page_table_begin;
	walk.row = page_row;
	walk.table_end = page_table_end;
	walk.payload = &p;
	/* Counts known: walk only this page's rows, from the token's position on. Not known: walk
	 * the whole diff of every table once (a page of one table still needs them all later). */
	p.counting = !counts_get(&p.counts, &ft, &tt);
	if (!p.counting && p.have_pos) {
		walk.seek_table = p.pos_table.ptr;
		walk.seek_phase = p.pos_phase;
		walk.seek_key = (const unsigned char *)p.pos_key.ptr;
		walk.seek_keylen = p.pos_key.size;
	}
	error = th_tree_diff(repo, &ft, &tt, p.counting ? NULL : p.only, &walk, err);
	if (error != 0)
		goto cleanup;
	if (p.counting) {
		p.counts.from = ft;
		p.counts.to = tt;
		counts_put(&p.counts);
	}
	if (p.more)
		error = token_write(next_token, &p, err);
cleanup:
	counts_dispose(&p.counts);
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
