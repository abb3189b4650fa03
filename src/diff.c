/* diff.c: row-level differences between two rows trees (see include/tablehub/diff.h and the
 * streaming iterator in include/tablehub/merge.h).
 *
 * Both trees are walked with one chunk cursor per side (src/rows_tree.c), which reads a subtree of
 * a large table's rows tree only when its chunks are needed. Whenever both cursors stand at the
 * start of a subtree and the two subtrees have the same id, both are skipped unread; likewise two
 * chunks with the same blob id: equal ids mean equal rows. Otherwise the
 * side whose rows ran out loads its next chunk, and the loaded rows are merge-joined by key
 * (memcmp, then length). Because chunk boundaries are decided by the keys themselves, the two walks
 * fall back into step right after a change, and the cost follows the size of the change, not of the
 * table.
 *
 * A seek (for a page of a diff) skips on each side the chunks whose name says they end before the
 * position; the two walks may then stand at different keys, so changes before the position can be
 * wrong, but from the position on both sides hold all their rows and the merge-join is exact.
 *
 * The skip is sound because a row is emitted only while the other side has a row loaded or has no
 * rows left: so when both sides have run out of loaded rows, both have consumed exactly the keys up
 * to the same last key, and the next chunks start at the same place.
 */
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "tablehub/diff.h"
#include "tablehub/merge.h"

/* One side of the walk: its chunks (a cursor: subtrees are read only when their chunks are
 * needed), and the rows of the chunk being read. */
typedef struct diff_side {
	th_chunk_cursor cur; /* at the first chunk not yet loaded or skipped */
	th_chunk_rows rows;
	int loaded;
	size_t pos; /* next row of `rows` */
	const th_schema *schema;
} diff_side;

struct th_diff_iter {
	th_repo *repo;
	diff_side a, b;
	int keyless;
	int can_skip;
	uint64_t chunks_read, chunks_skipped;
};

static int col_equal(const th_column *x, const th_column *y)
{
	return x->type == y->type && strcmp(x->name, y->name) == 0;
}

int th_schema_equal(const th_schema *a, const th_schema *b)
{
	size_t i;

	if (a->ncols != b->ncols || a->npk != b->npk)
		return 0;
	for (i = 0; i < a->ncols; i++)
		if (!col_equal(&a->cols[i], &b->cols[i]) ||
		    !a->cols[i].nullable != !b->cols[i].nullable)
			return 0;
	for (i = 0; i < a->npk; i++)
		if (a->pk[i] != b->pk[i])
			return 0;
	return 1;
}

int th_schema_same_key(const th_schema *a, const th_schema *b)
{
	size_t i;

	if (a->npk != b->npk)
		return 0;
	if (a->npk == 0) {
		/* Keyless: the key is every cell, so the columns must line up one for one. */
		if (a->ncols != b->ncols)
			return 0;
		for (i = 0; i < a->ncols; i++)
			if (!col_equal(&a->cols[i], &b->cols[i]))
				return 0;
		return 1;
	}
	for (i = 0; i < a->npk; i++)
		if (!col_equal(&a->cols[a->pk[i]], &b->cols[b->pk[i]]))
			return 0;
	return 1;
}

/* Do equal lines mean equal rows under both schemas? Same columns in the same order with the same
 * types, and the same key; nullability does not change what a line says. */
static int same_layout(const th_schema *a, const th_schema *b)
{
	size_t i;

	if (a->ncols != b->ncols || a->npk != b->npk)
		return 0;
	for (i = 0; i < a->ncols; i++)
		if (!col_equal(&a->cols[i], &b->cols[i]))
			return 0;
	for (i = 0; i < a->npk; i++)
		if (a->pk[i] != b->pk[i])
			return 0;
	return 1;
}

static int side_init(diff_side *s, th_repo *repo, const th_schema *schema, const th_oid *rows,
                     th_error *err)
{
	int error;

	memset(s, 0, sizeof(*s));
	error = th_chunk_cursor_init(&s->cur, repo, rows, err);
	s->schema = schema;
	return error;
}

static void side_dispose(diff_side *s)
{
	if (s->loaded)
		th_chunk_rows_dispose(&s->rows);
	th_chunk_cursor_dispose(&s->cur);
	memset(s, 0, sizeof(*s));
}

/* Does the side have a loaded row left? */
static int side_has_row(const diff_side *s)
{
	return s->loaded && s->pos < s->rows.n;
}

/* Is there a chunk left on the side (*out: it, else NULL)? */
static int side_peek(diff_side *s, const th_chunk_ref **out, th_error *err)
{
	return th_chunk_cursor_peek(&s->cur, out, err);
}

/* Load the side's next chunk (there is one: side_peek said so). */
static int side_load(th_diff_iter *it, diff_side *s, th_error *err)
{
	th_chunk_rows fresh;
	const th_chunk_ref *ref;
	int error;

	memset(&fresh, 0, sizeof(fresh));
	if ((error = side_peek(s, &ref, err)) < 0)
		return error;
	if ((error = th_chunk_rows_read(&fresh, it->repo, s->schema, &ref->oid, err)) < 0) {
		th_chunk_rows_dispose(&fresh); /* what it read before failing */
		return error;
	}
	if (s->loaded)
		th_chunk_rows_dispose(&s->rows);
	s->rows = fresh;
	s->loaded = 1;
	s->pos = 0;
	th_chunk_cursor_next(&s->cur);
	it->chunks_read++;
	return TH_OK;
}

static int key_cmp(const th_row *x, const th_row *y)
{
	return th_key_cmp(x->key, x->keylen, y->key, y->keylen);
}

/* The number of rows from s->pos on whose key equals the current row's (keyless duplicates). */
static size_t run_length(const diff_side *s)
{
	const th_row *first = &s->rows.rows[s->pos];
	size_t i = s->pos + 1;

	while (i < s->rows.n && key_cmp(first, &s->rows.rows[i]) == 0)
		i++;
	return i - s->pos;
}

int th_diff_iter_new(th_diff_iter **out, th_repo *repo, const th_schema *sa, const th_oid *a,
                     const th_schema *sb, const th_oid *b, th_error *err)
{
	th_diff_iter *it;
	int error;

	if ((it = calloc(1, sizeof(*it))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	it->repo = repo;
	it->keyless = sa->npk == 0;
	it->can_skip = sa == sb || same_layout(sa, sb);
	if ((error = side_init(&it->a, repo, sa, a, err)) < 0 ||
	    (error = side_init(&it->b, repo, sb, b, err)) < 0) {
		th_diff_iter_free(it);
		return error;
	}
	*out = it;
	return TH_OK;
}

static void emit_one(th_diff_change *out, th_change_kind kind, const th_row *old_row,
                     const th_row *new_row)
{
	const th_row *k = new_row ? new_row : old_row;

	memset(out, 0, sizeof(*out));
	out->c.kind = kind;
	out->c.key = k->key;
	out->c.keylen = k->keylen;
	if (old_row) {
		out->c.old_line = old_row->line;
		out->c.old_len = old_row->linelen;
	}
	if (new_row) {
		out->c.new_line = new_row->line;
		out->c.new_len = new_row->linelen;
	}
	out->c.count = 1;
	out->old_count = old_row != NULL;
	out->new_count = new_row != NULL;
}

/* Does chunk `ref` end (its last key) before `key` for certain? A name holding only a prefix of
 * its last key answers no when the prefixes tie (the chunk is then read: correct, only slower). */
static int chunk_ends_before(const char *name, const unsigned char *key, size_t keylen)
{
	unsigned char last[TH_CHUNK_NAME_KEY];
	int cut;
	size_t n = th_chunk_name_key(last, name, &cut);

	if (!cut)
		return th_key_cmp(last, n, key, keylen) < 0;
	return memcmp(last, key, n < keylen ? n : keylen) < 0;
}

/* Subtrees, then chunks, that end before the key are skipped (a subtree counts as one). */
static int side_seek(th_diff_iter *it, diff_side *s, const unsigned char *key, size_t keylen,
                     th_error *err)
{
	const th_tree_entry *g;
	const th_chunk_ref *ref;
	int error;

	if (s->loaded)
		return TH_OK;
	while ((g = th_chunk_cursor_group(&s->cur)) != NULL &&
	       chunk_ends_before(g->name, key, keylen)) {
		th_chunk_cursor_skip_group(&s->cur);
		it->chunks_skipped++;
	}
	for (;;) {
		if ((error = side_peek(s, &ref, err)) < 0)
			return error;
		if (ref == NULL || !chunk_ends_before(ref->name, key, keylen))
			return TH_OK;
		th_chunk_cursor_next(&s->cur);
		it->chunks_skipped++;
	}
}

int th_diff_iter_seek(th_diff_iter *it, const unsigned char *key, size_t keylen, th_error *err)
{
	int error;

	if ((error = side_seek(it, &it->a, key, keylen, err)) < 0)
		return error;
	return side_seek(it, &it->b, key, keylen, err);
}

int th_diff_iter_next(th_diff_iter *it, th_diff_change *out, th_error *err)
{
	diff_side *a = &it->a, *b = &it->b;
	int error;

	for (;;) {
		int ha = side_has_row(a), hb = side_has_row(b);
		const th_row *ra, *rb;
		int c;

		if (!ha && !hb) {
			const th_tree_entry *ga = th_chunk_cursor_group(&a->cur);
			const th_tree_entry *gb = th_chunk_cursor_group(&b->cur);
			const th_chunk_ref *pa, *pb;
			int ma, mb;

			/* Both at the start of equal subtrees: the same chunks, skipped unread. */
			if (ga && gb && it->can_skip && th_oid_equal(&ga->oid, &gb->oid)) {
				th_chunk_cursor_skip_group(&a->cur);
				th_chunk_cursor_skip_group(&b->cur);
				it->chunks_skipped += 2;
				continue;
			}
			if ((error = side_peek(a, &pa, err)) < 0 ||
			    (error = side_peek(b, &pb, err)) < 0)
				return error;
			ma = pa != NULL;
			mb = pb != NULL;
			if (!ma && !mb)
				return 0;
			if (ma && mb && it->can_skip && th_oid_equal(&pa->oid, &pb->oid)) {
				th_chunk_cursor_next(&a->cur);
				th_chunk_cursor_next(&b->cur);
				it->chunks_skipped += 2;
				continue;
			}
			if (ma && (error = side_load(it, a, err)) < 0)
				return error;
			if (mb && (error = side_load(it, b, err)) < 0)
				return error;
			continue;
		}
		/* Never emit a row while the other side may still hold its key in an unread chunk.
		 */
		if (!ha || !hb) {
			diff_side *s = !ha ? a : b;
			const th_chunk_ref *p;

			if ((error = side_peek(s, &p, err)) < 0)
				return error;
			if (p != NULL) {
				if ((error = side_load(it, s, err)) < 0)
					return error;
				continue;
			}
		}
		ra = ha ? &a->rows.rows[a->pos] : NULL;
		rb = hb ? &b->rows.rows[b->pos] : NULL;
		c = !ha ? 1 : !hb ? -1 : key_cmp(ra, rb);
		if (it->keyless) {
			size_t na = c <= 0 ? run_length(a) : 0, nb = c >= 0 ? run_length(b) : 0;

			a->pos += na;
			b->pos += nb;
			if (na == nb)
				continue;
			emit_one(out, na > nb ? TH_CHANGE_REMOVED : TH_CHANGE_ADDED,
			         na > nb ? ra : NULL, na > nb ? NULL : rb);
			out->c.count = na > nb ? na - nb : nb - na;
			out->old_count = na;
			out->new_count = nb;
			return 1;
		}
		if (c < 0) {
			a->pos++;
			emit_one(out, TH_CHANGE_REMOVED, ra, NULL);
			return 1;
		}
		if (c > 0) {
			b->pos++;
			emit_one(out, TH_CHANGE_ADDED, NULL, rb);
			return 1;
		}
		a->pos++;
		b->pos++;
		/* Under different column layouts an equal line may still be a changed row: the
		 * caller compares such pairs cell by cell. */
		if (it->can_skip && ra->linelen == rb->linelen &&
		    memcmp(ra->line, rb->line, ra->linelen) == 0)
			continue;
		emit_one(out, TH_CHANGE_MODIFIED, ra, rb);
		return 1;
	}
}

void th_diff_iter_stats(const th_diff_iter *it, uint64_t *chunks_read, uint64_t *chunks_skipped)
{
	if (chunks_read)
		*chunks_read = it->chunks_read;
	if (chunks_skipped)
		*chunks_skipped = it->chunks_skipped;
}

void th_diff_iter_free(th_diff_iter *it)
{
	if (it == NULL)
		return;
	side_dispose(&it->a);
	side_dispose(&it->b);
	free(it);
}

int th_diff_rows(th_repo *repo, const th_schema *s, const th_oid *a, const th_oid *b,
                 int (*cb)(void *payload, const th_row_change *c), void *payload, th_error *err)
{
	th_diff_iter *it = NULL;
	th_diff_change ch;
	int error;

	if ((error = th_diff_iter_new(&it, repo, s, a, s, b, err)) < 0)
		return error;
	while ((error = th_diff_iter_next(it, &ch, err)) > 0)
		if ((error = cb(payload, &ch.c)) != 0)
			break;
	th_diff_iter_free(it);
	return error;
}
