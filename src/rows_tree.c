/* rows_tree.c: walking a rows tree without reading all of it, and writing a new rows tree that
 * keeps the base's untouched subtrees (see src/chunk.h).
 *
 * A large table's rows tree has two levels: subtrees of ~64 chunks under a top tree (chunk.c,
 * th_rows_tree_write). Reading every subtree to list the chunks, and writing every subtree again
 * after a change, costs in proportion to the table (~30 subtrees and ~2,000 entries, validated one
 * by one, for a million rows); a one-row change needs one subtree of each.
 *
 * The cursor (th_chunk_cursor) reads the top tree, and a subtree only when a caller asks for the
 * chunks in it; a caller standing at a subtree's first chunk may take the subtree whole instead
 * (a diff skips two equal subtrees by id; an apply passes an untouched one through).
 *
 * th_rows_tree_write_reuse writes the same tree th_rows_tree_write would write for the full chunk
 * list, subtrees passed through included. A subtree of the base goes into the new top tree as it is
 * when the full writer would cut it out of the full list alike: the group before it ended right
 * before it (the writer holds no pending chunk), the chunk before it has the same final name as in
 * the base (run numbers of cut names depend on the name before them), and, when it was the base's
 * last group (which may have ended because the table did), it is last again. Group cuts are
 * decided by the chunk names and the count since the group began, so the subtree then comes out
 * the same. Any other reused subtree is read and its chunks are written again like new ones. The
 * choice between one level and two follows the total chunk count, so reused subtrees are counted
 * (read) only while that total could still be FLAT_MAX or fewer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/hash.h"
#include "chunk.h"

int th_chunk_cursor_init(th_chunk_cursor *c, th_repo *repo, const th_oid *rows, th_error *err)
{
	memset(c, 0, sizeof(*c));
	c->repo = repo;
	if (rows == NULL || th_oid_is_zero(rows))
		return TH_OK;
	return th_repo_tree_read(&c->top, repo, rows, err);
}

void th_chunk_cursor_dispose(th_chunk_cursor *c)
{
	th_tree_list_dispose(&c->top);
	th_tree_list_dispose(&c->sub);
	memset(c, 0, sizeof(*c));
}

static int in_sub(const th_chunk_cursor *c)
{
	return c->si < c->sub.n;
}

const th_tree_entry *th_chunk_cursor_group(const th_chunk_cursor *c)
{
	if (in_sub(c) || c->ti >= c->top.n || !c->top.entries[c->ti].is_tree)
		return NULL;
	return &c->top.entries[c->ti];
}

const char *th_chunk_cursor_group_prev(const th_chunk_cursor *c)
{
	return c->ti > 0 ? c->top.entries[c->ti - 1].name : NULL;
}

int th_chunk_cursor_group_is_last(const th_chunk_cursor *c)
{
	return c->ti + 1 >= c->top.n;
}

void th_chunk_cursor_skip_group(th_chunk_cursor *c)
{
	c->ti++;
}

static void set_ref(th_chunk_ref *ref, const th_tree_entry *e)
{
	snprintf(ref->name, sizeof(ref->name), "%s", e->name);
	ref->oid = e->oid;
}

int th_chunk_cursor_peek(th_chunk_cursor *c, const th_chunk_ref **out, th_error *err)
{
	int error;

	*out = NULL;
	while (!in_sub(c)) {
		if (c->ti >= c->top.n)
			return TH_OK;
		if (!c->top.entries[c->ti].is_tree) {
			set_ref(&c->cur, &c->top.entries[c->ti]);
			*out = &c->cur;
			return TH_OK;
		}
		th_tree_list_dispose(&c->sub);
		c->si = 0;
		if ((error = th_repo_tree_read(&c->sub, c->repo, &c->top.entries[c->ti].oid, err)) <
		    0)
			return error;
		c->ti++;
		c->trees_read++;
	}
	set_ref(&c->cur, &c->sub.entries[c->si]);
	*out = &c->cur;
	return TH_OK;
}

void th_chunk_cursor_next(th_chunk_cursor *c)
{
	if (in_sub(c))
		c->si++;
	else if (c->ti < c->top.n)
		c->ti++;
}

int th_chunk_cursor_more_after(const th_chunk_cursor *c)
{
	if (in_sub(c))
		return c->si + 1 < c->sub.n || c->ti < c->top.n;
	return c->ti + 1 < c->top.n;
}

/* --- writing ------------------------------------------------------------------------------ */

/* The tree being written: top entries so far, the chunks of the group being gathered, and the
 * final name of the last chunk placed. */
typedef struct tree_writer {
	th_repo *repo;
	th_tree_entry *top;
	char (*topnames)[136];
	size_t ntop, captop;
	th_tree_entry *pend;
	char (*pendnames)[136];
	size_t npend, cappend;
	char prev[136]; /* final name of the last chunk placed; "" before the first */
} tree_writer;

static int grow(void **v, size_t *cap, size_t need, size_t size, th_error *err)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return TH_OK;
	ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(*v, ncap * size)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	*v = p;
	*cap = ncap;
	return TH_OK;
}

static int push_top(tree_writer *w, const char *name, const th_oid *oid, th_error *err)
{
	size_t cap = w->captop;
	int error;

	if ((error = grow((void **)&w->top, &cap, w->ntop + 1, sizeof(*w->top), err)) < 0 ||
	    (error = grow((void **)&w->topnames, &w->captop, w->ntop + 1, sizeof(*w->topnames),
	                  err)) < 0)
		return error;
	snprintf(w->topnames[w->ntop], sizeof(w->topnames[w->ntop]), "%s", name);
	w->top[w->ntop].oid = *oid;
	w->top[w->ntop].is_tree = 1;
	w->ntop++;
	return TH_OK;
}

/* Write the gathered group as a subtree of the top tree, named after its last chunk. */
static int close_group(tree_writer *w, th_error *err)
{
	th_oid oid;
	size_t i;
	int error;

	for (i = 0; i < w->npend; i++)
		w->pend[i].name = w->pendnames[i];
	if ((error = th_repo_tree_write(&oid, w->repo, w->pend, w->npend, err)) < 0)
		return error;
	error = push_top(w, w->pendnames[w->npend - 1], &oid, err);
	w->npend = 0;
	return error;
}

/* Place one chunk (its name as the chunker made it: a cut name ends in '~' without its run
 * number), `last` when nothing follows it in the table. */
static int add_chunk(tree_writer *w, const char *name, const th_oid *oid, int last, th_error *err)
{
	size_t cap = w->cappend, plen;
	const char *tilde = strchr(name, '~');
	char *fin;
	int error;

	if ((error = grow((void **)&w->pend, &cap, w->npend + 1, sizeof(*w->pend), err)) < 0 ||
	    (error = grow((void **)&w->pendnames, &w->cappend, w->npend + 1, sizeof(*w->pendnames),
	                  err)) < 0)
		return error;
	fin = w->pendnames[w->npend];
	if (tilde == NULL) {
		snprintf(fin, sizeof(w->pendnames[0]), "%s", name);
	} else {
		/* As final_names in chunk.c: the run number counts the chunks before it in the
		 * table that share the cut prefix. */
		unsigned run = 0;

		plen = (size_t)(tilde - name);
		if (w->prev[0] && strncmp(w->prev, name, plen + 1) == 0)
			run = (unsigned)strtoul(w->prev + plen + 1, NULL, 10) + 1;
		snprintf(fin, sizeof(w->pendnames[0]), "%.*s~%04u", (int)plen, name, run);
	}
	w->pend[w->npend].oid = *oid;
	w->pend[w->npend].is_tree = 0;
	w->npend++;
	snprintf(w->prev, sizeof(w->prev), "%s", fin);
	if (last || w->npend >= TH_ROWS_GROUP_MAX ||
	    (th_hash64(fin, strlen(fin)) & TH_ROWS_GROUP_MASK) == 0)
		return close_group(w, err);
	return TH_OK;
}

/* The chunk name a reused subtree's entry had before its run number was added. */
static void raw_name(char *out, size_t size, const char *final)
{
	const char *tilde = strchr(final, '~');

	if (tilde == NULL)
		snprintf(out, size, "%s", final);
	else
		snprintf(out, size, "%.*s~", (int)(tilde - final), final);
}

/* Place reused subtree `g`, whole when the full writer would cut it alike, else chunk by chunk. */
static int add_group(tree_writer *w, const th_rows_group *g, int last, th_error *err)
{
	th_tree_list l = { NULL, 0 };
	char name[136];
	size_t i;
	int error = TH_OK;

	if (w->npend == 0 && (!g->base_last || last) &&
	    strcmp(w->prev, g->has_prev ? g->prev : "") == 0 && (g->has_prev || w->ntop == 0)) {
		snprintf(w->prev, sizeof(w->prev), "%s", g->name);
		return push_top(w, g->name, &g->oid, err);
	}
	if ((error = th_repo_tree_read(&l, w->repo, &g->oid, err)) < 0)
		return error;
	for (i = 0; i < l.n && error == TH_OK; i++) {
		raw_name(name, sizeof(name), l.entries[i].name);
		error = add_chunk(w, name, &l.entries[i].oid, last && i + 1 == l.n, err);
	}
	th_tree_list_dispose(&l);
	return error;
}

/* The full chunk list: the chunks with every reused subtree read in its place. */
static int expand_all(th_chunk_ref **out, size_t *nout, th_repo *repo, const th_chunk_ref *chunks,
                      size_t n, const th_rows_group *groups, size_t ngroups, th_error *err)
{
	th_chunk_ref *v = NULL;
	size_t cap = 0, k = 0, i = 0, gi = 0, j;
	int error = TH_OK;

	while (error == TH_OK && (i < n || gi < ngroups)) {
		th_tree_list l = { NULL, 0 };

		if (gi < ngroups && groups[gi].at <= i) {
			if ((error = th_repo_tree_read(&l, repo, &groups[gi++].oid, err)) < 0)
				break;
			for (j = 0; j < l.n && error == TH_OK; j++) {
				if ((error = grow((void **)&v, &cap, k + 1, sizeof(*v), err)) < 0)
					break;
				raw_name(v[k].name, sizeof(v[k].name), l.entries[j].name);
				v[k++].oid = l.entries[j].oid;
			}
			th_tree_list_dispose(&l);
			continue;
		}
		if ((error = grow((void **)&v, &cap, k + 1, sizeof(*v), err)) < 0)
			break;
		v[k++] = chunks[i++];
	}
	if (error < 0) {
		free(v);
		return error;
	}
	*out = v;
	*nout = k;
	return TH_OK;
}

/* Could the table have FLAT_MAX chunks or fewer? Reads reused subtrees only until it cannot. */
static int maybe_flat(int *flat, th_repo *repo, size_t n, const th_rows_group *groups,
                      size_t ngroups, th_error *err)
{
	size_t total = n + ngroups, gi;
	int error;

	for (gi = 0; gi < ngroups && total <= TH_ROWS_FLAT_MAX; gi++) {
		th_tree_list l = { NULL, 0 };

		if ((error = th_repo_tree_read(&l, repo, &groups[gi].oid, err)) < 0)
			return error;
		total += l.n ? l.n - 1 : 0;
		th_tree_list_dispose(&l);
	}
	*flat = total <= TH_ROWS_FLAT_MAX;
	return TH_OK;
}

int th_rows_tree_write_reuse(th_oid *out, th_repo *repo, const th_chunk_ref *chunks, size_t n,
                             const th_rows_group *groups, size_t ngroups, th_error *err)
{
	tree_writer w;
	th_chunk_ref *all = NULL;
	size_t i = 0, gi = 0, nall = 0;
	int error, flat;

	if (ngroups == 0)
		return th_rows_tree_write(out, repo, chunks, n, err);
	if ((error = maybe_flat(&flat, repo, n, groups, ngroups, err)) < 0)
		return error;
	if (flat) {
		if ((error = expand_all(&all, &nall, repo, chunks, n, groups, ngroups, err)) == 0)
			error = th_rows_tree_write(out, repo, all, nall, err);
		free(all);
		return error;
	}
	memset(&w, 0, sizeof(w));
	w.repo = repo;
	error = TH_OK;
	while (error == TH_OK && (i < n || gi < ngroups)) {
		if (gi < ngroups && groups[gi].at <= i) {
			int last = i >= n && gi + 1 == ngroups;
			error = add_group(&w, &groups[gi++], last, err);
		} else {
			int last = i + 1 == n && gi == ngroups;
			error = add_chunk(&w, chunks[i].name, &chunks[i].oid, last, err);
			i++;
		}
	}
	if (error == TH_OK && w.npend)
		error = close_group(&w, err); /* not reached: the last chunk closes its group */
	if (error == TH_OK) {
		for (i = 0; i < w.ntop; i++)
			w.top[i].name = w.topnames[i];
		error = th_repo_tree_write(out, repo, w.top, w.ntop, err);
	}
	free(w.top);
	free(w.topnames);
	free(w.pend);
	free(w.pendnames);
	return error;
}
