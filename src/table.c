/* table.c: reading and writing tables in a commit tree (the layout is in include/tablehub/table.h).
 *
 * th_table_apply is the one write path for rows: it walks the base chunks in key order beside the
 * sorted edits, passes through untouched every chunk that lies wholly between edits while the
 * chunker is aligned with the base's boundaries, and re-chunks only from an edited chunk until the
 * new boundaries meet the old ones again. A one-row change to a 1,000,000-row table therefore
 * decodes and rewrites one chunk (two when the change moves a boundary), not the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/table.h"
#include "chunk.h"

void th_table_dispose(th_table *t)
{
	if (t == NULL)
		return;
	th_schema_dispose(&t->schema);
	memset(t, 0, sizeof(*t));
}

int th_table_load(th_table *out, th_repo *repo, const th_oid *root, const char *name, th_error *err)
{
	th_buf path = TH_BUF_INIT, json = TH_BUF_INIT;
	th_table t = TH_TABLE_INIT;
	th_oid schema_oid;
	int is_tree, error;

	if ((error = th_buf_printf(&path, err, "tables/%s", name)) < 0)
		goto cleanup;
	if ((error = th_repo_tree_lookup(&t.table_tree, &is_tree, repo, root, path.ptr, err)) < 0) {
		if (error == TH_ENOTFOUND)
			error = th_error_set(err, TH_ENOTFOUND, "table '%s' not found", name);
		goto cleanup;
	}
	if ((error = th_repo_tree_lookup(&schema_oid, &is_tree, repo, &t.table_tree, "schema.json",
	                                 err)) < 0 ||
	    (error = th_repo_blob_read(&json, repo, &schema_oid, err)) < 0)
		goto cleanup;
	if ((error = th_schema_from_json(&t.schema, json.ptr, json.size, err)) < 0)
		goto cleanup;
	th_schema_rows_from_json(&t.row_count, json.ptr, json.size);
	error = th_repo_tree_lookup(&t.rows, &is_tree, repo, &t.table_tree, "rows", err);
	if (error == TH_ENOTFOUND) {
		memset(&t.rows, 0, sizeof(t.rows));
		error = TH_OK;
	}
	if (error < 0)
		goto cleanup;
	*out = t;
	memset(&t, 0, sizeof(t));

cleanup:
	th_table_dispose(&t);
	th_buf_dispose(&json);
	th_buf_dispose(&path);
	return error;
}

int th_table_names(char ***out, th_repo *repo, const th_oid *root, th_error *err)
{
	th_tree_list list = { NULL, 0 };
	th_oid tables;
	char **v = NULL;
	size_t i, n = 0;
	int is_tree, error;

	error = th_repo_tree_lookup(&tables, &is_tree, repo, root, "tables", err);
	if (error == TH_OK && is_tree)
		error = th_repo_tree_read(&list, repo, &tables, err);
	else if (error == TH_ENOTFOUND)
		error = TH_OK;
	if (error < 0)
		return error;
	if ((v = calloc(list.n + 1, sizeof(*v))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < list.n; i++) {
		if (!list.entries[i].is_tree)
			continue;
		if ((v[n++] = strdup(list.entries[i].name)) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	*out = v;
	v = NULL;

cleanup:
	th_strv_free(v);
	th_tree_list_dispose(&list);
	return error;
}

static int chunks_push(th_chunk_ref **v, size_t *n, size_t *cap, const th_tree_entry *e,
                       th_error *err)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		th_chunk_ref *p = realloc(*v, ncap * sizeof(*p));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		*v = p;
		*cap = ncap;
	}
	snprintf((*v)[*n].name, sizeof((*v)[*n].name), "%s", e->name);
	(*v)[*n].oid = e->oid;
	(*n)++;
	return TH_OK;
}

int th_table_chunks(th_chunk_ref **out, size_t *nout, th_repo *repo, const th_oid *rows,
                    th_error *err)
{
	th_tree_list top = { NULL, 0 }, sub = { NULL, 0 };
	th_chunk_ref *v = NULL;
	size_t i, j, n = 0, cap = 0;
	int error = TH_OK;

	*out = NULL;
	*nout = 0;
	if (rows == NULL || th_oid_is_zero(rows))
		return TH_OK;
	if ((error = th_repo_tree_read(&top, repo, rows, err)) < 0)
		return error;
	for (i = 0; i < top.n && error == TH_OK; i++) {
		if (!top.entries[i].is_tree) {
			error = chunks_push(&v, &n, &cap, &top.entries[i], err);
			continue;
		}
		if ((error = th_repo_tree_read(&sub, repo, &top.entries[i].oid, err)) < 0)
			break;
		for (j = 0; j < sub.n && error == TH_OK; j++)
			error = chunks_push(&v, &n, &cap, &sub.entries[j], err);
		th_tree_list_dispose(&sub);
	}
	th_tree_list_dispose(&top);
	if (error < 0) {
		free(v);
		return error;
	}
	*out = v;
	*nout = n;
	return TH_OK;
}

void th_chunk_rows_dispose(th_chunk_rows *c)
{
	if (c == NULL)
		return;
	free(c->rows);
	th_buf_dispose(&c->data);
	th_buf_dispose(&c->keys);
	memset(c, 0, sizeof(*c));
}

/* Split the blob in out->data into rows, computing each key. */
static int split_rows(th_chunk_rows *out, const th_schema *s, th_error *err)
{
	th_cells cells = TH_CELLS_INIT;
	size_t nlines = 0, i, cap;
	char *p, *end, *nl;
	size_t *keyoff = NULL;
	int error = TH_OK;

	for (p = out->data.ptr, end = p + out->data.size; p < end; p++)
		nlines += *p == '\n';
	cap = nlines ? nlines : 1;
	free(out->rows);
	out->rows = calloc(cap, sizeof(*out->rows));
	keyoff = calloc(cap + 1, sizeof(*keyoff));
	if (out->rows == NULL || keyoff == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	th_buf_clear(&out->keys);
	out->n = 0;
	for (p = out->data.ptr; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		/* Only the key's cells: whoever reads the row decodes it whole. */
		if ((error = th_row_decode_key(&cells, s, p, (size_t)(nl - p), err)) < 0)
			goto cleanup;
		keyoff[out->n] = out->keys.size;
		if ((error = th_row_key(&out->keys, s, cells.c, err)) < 0)
			goto cleanup;
		out->rows[out->n].line = p;
		out->rows[out->n].linelen = (size_t)(nl - p);
		out->n++;
	}
	keyoff[out->n] = out->keys.size;
	/* Keys are pointed at only now: the key buffer may have moved while it grew. */
	for (i = 0; i < out->n; i++) {
		out->rows[i].key = (const unsigned char *)out->keys.ptr + keyoff[i];
		out->rows[i].keylen = keyoff[i + 1] - keyoff[i];
	}

cleanup:
	free(keyoff);
	th_cells_dispose(&cells);
	return error;
}

int th_chunk_rows_read(th_chunk_rows *out, th_repo *repo, const th_schema *s, const th_oid *chunk,
                       th_error *err)
{
	int error;

	/* The blob goes into `keys` (split_rows refills it) and its lines into `data`: both
	 * buffers are reused from chunk to chunk. */
	if ((error = th_repo_blob_read(&out->keys, repo, chunk, err)) < 0)
		return error;
	if (out->keys.size > 0 && out->keys.ptr[0] == TH_CHUNK_BODY_COLUMNS) {
		th_buf_clear(&out->data);
		if ((error = th_chunk_body_decode(&out->data, out->keys.ptr, out->keys.size, err)) <
		    0)
			return error;
	} else {
		th_buf blob = out->keys;

		out->keys = out->data;
		out->data = blob;
	}
	return split_rows(out, s, err);
}

struct th_row_iter {
	th_repo *repo;
	const th_schema *schema;
	th_chunk_ref *chunks;
	size_t nchunks, next_chunk;
	th_chunk_rows rows;
	size_t pos;
};

int th_row_iter_new(th_row_iter **out, th_repo *repo, const th_table *t, th_error *err)
{
	th_row_iter *it = calloc(1, sizeof(*it));
	int error;

	if (it == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	it->repo = repo;
	it->schema = &t->schema;
	if ((error = th_table_chunks(&it->chunks, &it->nchunks, repo, &t->rows, err)) < 0) {
		free(it);
		return error;
	}
	*out = it;
	return TH_OK;
}

int th_row_iter_next(th_row_iter *it, th_row *row, th_error *err)
{
	int error;

	while (it->pos >= it->rows.n) {
		if (it->next_chunk >= it->nchunks)
			return 0;
		if ((error = th_chunk_rows_read(&it->rows, it->repo, it->schema,
		                                &it->chunks[it->next_chunk++].oid, err)) < 0)
			return error;
		it->pos = 0;
	}
	*row = it->rows.rows[it->pos++];
	return 1;
}

void th_row_iter_free(th_row_iter *it)
{
	if (it == NULL)
		return;
	th_chunk_rows_dispose(&it->rows);
	free(it->chunks);
	free(it);
}

int th_table_store(th_oid *out, th_repo *repo, const th_oid *root, const char *name,
                   const th_schema *schema, const th_oid *rows, uint64_t row_count, th_error *err)
{
	th_buf path = TH_BUF_INIT, json = TH_BUF_INIT;
	th_tree_entry entries[2];
	th_oid schema_oid, table_tree;
	size_t n = 0;
	int error;

	if ((error = th_buf_printf(&path, err, "tables/%s", name)) < 0)
		goto cleanup;
	if (schema == NULL) {
		error = th_repo_tree_update(out, repo, root, path.ptr, NULL, 1, err);
		goto cleanup;
	}
	if ((error = th_schema_to_json_rows(&json, schema, row_count, err)) < 0 ||
	    (error = th_repo_blob_write(&schema_oid, repo, json.ptr, json.size, err)) < 0)
		goto cleanup;
	entries[n].name = "schema.json";
	entries[n].oid = schema_oid;
	entries[n++].is_tree = 0;
	if (rows && !th_oid_is_zero(rows)) {
		entries[n].name = "rows";
		entries[n].oid = *rows;
		entries[n++].is_tree = 1;
	}
	if ((error = th_repo_tree_write(&table_tree, repo, entries, n, err)) < 0)
		goto cleanup;
	error = th_repo_tree_update(out, repo, root, path.ptr, &table_tree, 1, err);

cleanup:
	th_buf_dispose(&json);
	th_buf_dispose(&path);
	return error;
}

/* --- apply ------------------------------------------------------------------------------------ */

/* Does the chunk (or subtree: named after its last chunk) called `name` end (its last key) before
 * `key` for certain? A name holding only a prefix of the last key answers no when the prefixes
 * tie, and the chunk is then opened, which is correct, only slower. */
static int name_ends_before(const char *name, const unsigned char *key, size_t keylen)
{
	unsigned char last[TH_CHUNK_NAME_KEY];
	int cut;
	size_t n = th_chunk_name_key(last, name, &cut);

	if (!cut)
		return th_key_cmp(last, n, key, keylen) < 0;
	return memcmp(last, key, n < keylen ? n : keylen) < 0;
}

int th_table_apply(th_oid *out, th_apply_stats *stats, th_repo *repo, const th_schema *s,
                   const th_oid *base, th_edit_next_fn next, void *payload, th_pack *pack,
                   th_error *err)
{
	return th_table__apply_ex(out, stats, repo, s, base, next, payload, NULL, 0, pack, err);
}

/* The chunker is aligned with the base: pass through, unread, every base subtree and chunk that
 * ends before edit `e` (NULL: no edit left, everything). The base's last chunk goes through only
 * when no edit is left: it ended because the table did, not at a cut, so rows added after it are
 * chunked together with it. Returns TH_OK or a negative code. */
static int pass_through(th_chunker *ch, th_chunk_cursor *cur, th_rows_group **groups, size_t *n,
                        size_t *cap, const th_edit *e, th_error *err)
{
	const th_tree_entry *g;
	const th_chunk_ref *ref;
	int error;

	for (;;) {
		if ((g = th_chunk_cursor_group(cur)) != NULL &&
		    (e == NULL || (!th_chunk_cursor_group_is_last(cur) &&
		                   name_ends_before(g->name, e->key, e->keylen)))) {
			const char *prev = th_chunk_cursor_group_prev(cur);
			th_rows_group *x;

			if (*n == *cap) {
				size_t ncap = *cap ? *cap * 2 : 16;
				th_rows_group *p = realloc(*groups, ncap * sizeof(*p));
				if (p == NULL)
					return th_error_set(err, TH_ENOMEM, "out of memory");
				*groups = p;
				*cap = ncap;
			}
			x = &(*groups)[(*n)++];
			memset(x, 0, sizeof(*x));
			x->at = ch->nout;
			x->oid = g->oid;
			snprintf(x->name, sizeof(x->name), "%s", g->name);
			if ((x->has_prev = prev != NULL))
				snprintf(x->prev, sizeof(x->prev), "%s", prev);
			x->base_last = th_chunk_cursor_group_is_last(cur);
			th_chunk_cursor_skip_group(cur);
			continue;
		}
		if ((error = th_chunk_cursor_peek(cur, &ref, err)) < 0)
			return error;
		if (ref == NULL || (e != NULL && (!th_chunk_cursor_more_after(cur) ||
		                                  !name_ends_before(ref->name, e->key, e->keylen))))
			return TH_OK;
		if ((error = th_chunker_reuse(ch, ref, err)) < 0)
			return error;
		th_chunk_cursor_next(cur);
	}
}

/* Emit `count` copies of a row (keyless tables keep duplicates as repeated lines). */
static int emit(th_chunker *ch, const unsigned char *key, size_t keylen, const char *line,
                size_t linelen, uint64_t count, th_error *err)
{
	uint64_t i;
	int error;

	for (i = 0; i < count; i++)
		if ((error = th_chunker_add(ch, key, keylen, line, linelen, err)) < 0)
			return error;
	return TH_OK;
}

int th_table__apply_ex(th_oid *out, th_apply_stats *stats, th_repo *repo, const th_schema *s,
                       const th_oid *base, th_edit_next_fn next, void *payload,
                       th_resolve_fn resolve, int additive, th_pack *pack, th_error *err)
{
	th_chunker ch;
	th_chunk_cursor cur;
	const th_chunk_ref *ref;
	th_rows_group *groups = NULL;
	th_chunk_rows rows = { 0, NULL, TH_BUF_INIT, TH_BUF_INIT };
	th_buf resolved = TH_BUF_INIT, prevkey = TH_BUF_INIT;
	th_apply_stats st;
	th_edit e;
	size_t pos = 0, ngroups = 0, capgroups = 0;
	int have_edit, error, keyless = s->npk == 0;

	memset(&st, 0, sizeof(st));
	th_chunker_init(&ch, repo, pack);
	if ((error = th_chunk_cursor_init(&cur, repo, base, err)) < 0)
		goto cleanup;
	if ((have_edit = next(payload, &e, err)) < 0) {
		error = have_edit;
		goto cleanup;
	}
	for (;;) {
		if (pos >= rows.n) {
			/* At a base chunk boundary: pass whole chunks through while aligned. */
			if ((error = th_chunker_align(&ch, err)) < 0)
				goto cleanup;
			if (error == 1 &&
			    (error = pass_through(&ch, &cur, &groups, &ngroups, &capgroups,
			                          have_edit ? &e : NULL, err)) < 0)
				goto cleanup;
			if ((error = th_chunk_cursor_peek(&cur, &ref, err)) < 0)
				goto cleanup;
			if (ref != NULL) {
				th_oid oid = ref->oid;
				th_chunk_cursor_next(&cur);
				if ((error = th_chunk_rows_read(&rows, repo, s, &oid, err)) < 0)
					goto cleanup;
				pos = 0;
				continue;
			}
			if (!have_edit)
				break;
		}
		if (pos < rows.n &&
		    (!have_edit ||
		     th_key_cmp(rows.rows[pos].key, rows.rows[pos].keylen, e.key, e.keylen) < 0)) {
			/* A base row no edit touches. */
			th_row *r = &rows.rows[pos++];
			if ((error = th_chunker_add(&ch, r->key, r->keylen, r->line, r->linelen,
			                            err)) < 0)
				goto cleanup;
			st.rows++;
			continue;
		}
		/* The edit comes first, or meets base rows of its key. */
		{
			uint64_t old = 0, newcount = e.line ? (keyless ? e.count : 1) : 0;

			const char *line = e.line;
			size_t linelen = e.linelen;
			th_row *first = NULL;

			if (prevkey.size && th_key_cmp((const unsigned char *)prevkey.ptr,
			                               prevkey.size, e.key, e.keylen) >= 0) {
				error = th_error_set(err, TH_EINVALID, "edits out of key order");
				goto cleanup;
			}
			if ((error = th_buf_set(&prevkey, e.key, e.keylen, err)) < 0)
				goto cleanup;
			while (pos < rows.n && th_key_cmp(rows.rows[pos].key, rows.rows[pos].keylen,
			                                  e.key, e.keylen) == 0) {
				if (first == NULL)
					first = &rows.rows[pos];
				old++;
				pos++;
			}
			if (keyless && additive)
				newcount += old;
			if (first && e.line && resolve) {
				th_buf_clear(&resolved);
				if ((error = resolve(payload, first, &e, &resolved, err)) < 0)
					goto cleanup;
				line = resolved.ptr;
				linelen = resolved.size;
			}
			if (keyless) {
				if (newcount > old)
					st.added += newcount - old;
				else
					st.removed += old - newcount;
			} else if (old && newcount) {
				if (first->linelen != linelen ||
				    memcmp(first->line, line, linelen) != 0)
					st.modified++;
			} else if (newcount) {
				st.added++;
			} else if (old) {
				st.removed++;
			}
			if (newcount &&
			    (error = emit(&ch, e.key, e.keylen, line, linelen, newcount, err)) < 0)
				goto cleanup;
			st.rows += newcount;
			if ((have_edit = next(payload, &e, err)) < 0) {
				error = have_edit;
				goto cleanup;
			}
		}
	}
	if ((error = th_chunker_finish(&ch, err)) < 0)
		goto cleanup;
	if (pack) {
		/* The trees may name only objects the repository can see. */
		error = th_pack_commit(pack, err);
		pack = NULL;
		if (error < 0)
			goto cleanup;
	}
	if ((error = th_rows_tree_write_reuse(out, repo, ch.out, ch.nout, groups, ngroups, err)) <
	    0)
		goto cleanup;
	st.chunks_written = ch.written;
	st.chunks_reused = ch.reused + ngroups;
	if (stats)
		*stats = st;
	error = TH_OK;

cleanup:
	th_pack_free(pack);
	th_buf_dispose(&prevkey);
	th_buf_dispose(&resolved);
	th_chunk_rows_dispose(&rows);
	th_chunk_cursor_dispose(&cur);
	free(groups);
	th_chunker_dispose(&ch);
	return error;
}
