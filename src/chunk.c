/* chunk.c: cutting a key-ordered row stream into content-defined chunks, and the rows tree above
 * them.
 *
 * A chunk ends after a row whose key hash falls under a threshold that rises with the chunk's size:
 * the hazard of a cut grows linearly with the bytes since the last cut (a Rayleigh distribution of
 * chunk sizes, mean ~64 KiB, almost never above 256 KiB), as Dolt's chunker does. Because the
 * decision depends on the key and the size only, an insert or a change shifts boundaries just
 * until the first row where both the old and the new sequence cut, after which every chunk is the
 * same object as before. Hard cuts at a maximum size would shift every later boundary instead.
 * The arithmetic is IEEE double with + - * / only, so it is exact and the same on every machine:
 * chunk boundaries are part of the storage format.
 *
 * Rows with equal keys (duplicate rows of a keyless table) are never split: a boundary decided
 * after such a row is deferred until the next row has a different key.
 *
 * Boundaries depend on the rows' lines only; the blob written for a chunk holds those lines column
 * by column (th_chunk_body_encode, format 2). Blobs of format 1, the lines as they are, written
 * before, are read alike (th_chunk_rows_read) and passed through untouched where they do not
 * change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/hash.h"
#include "chunk.h"

#define MIN_CHUNK 4096u
#define MAX_CHUNK (16u << 20)
#define SIGMA 52300.0 /* Rayleigh scale: mean = SIGMA * sqrt(pi/2) ~ 65.5 KB */
#define FLAT_MAX TH_ROWS_FLAT_MAX
#define GROUP_MASK TH_ROWS_GROUP_MASK
#define GROUP_MAX TH_ROWS_GROUP_MAX

/* Should the chunk end after a run of rows with one key, the run starting at byte `start` of the
 * chunk and ending at `size`? The cut hazard integrated over the run's bytes, so a run of equal
 * rows (which is never split) counts as much as distinct rows of the same size would. */
static int boundary_after(size_t size, size_t start, const unsigned char *key, size_t keylen)
{
	double s = (double)size, r = (double)start, p;
	uint64_t h;

	if (size < MIN_CHUNK)
		return 0;
	if (size >= MAX_CHUNK)
		return 1;
	p = (s * s - r * r) / (2.0 * SIGMA * SIGMA);
	if (p >= 1.0)
		return 1;
	h = th_hash64(key, keylen) >> 32;
	return (double)h < p * 4294967296.0;
}

void th_chunker_init(th_chunker *c, th_repo *repo, th_pack *pack)
{
	memset(c, 0, sizeof(*c));
	c->repo = repo;
	c->pack = pack;
}

void th_chunker_dispose(th_chunker *c)
{
	th_buf_dispose(&c->data);
	th_buf_dispose(&c->body);
	th_buf_dispose(&c->lastkey);
	free(c->out);
	c->out = NULL;
	c->nout = c->capout = 0;
}

static int push_ref(th_chunker *c, const th_chunk_ref *ref, th_error *err)
{
	if (c->nout == c->capout) {
		size_t ncap = c->capout ? c->capout * 2 : 64;
		th_chunk_ref *p = realloc(c->out, ncap * sizeof(*p));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		c->out = p;
		c->capout = ncap;
	}
	c->out[c->nout++] = *ref;
	return TH_OK;
}

/* The stored name of a chunk whose last key is `key`: hex of its first TH_CHUNK_NAME_KEY bytes,
 * plus '~' when cut (the run number is added when the tree is written). */
static void chunk_name(char *out, const unsigned char *key, size_t keylen)
{
	size_t n = keylen > TH_CHUNK_NAME_KEY ? TH_CHUNK_NAME_KEY : keylen;

	th_hex(out, key, n);
	if (keylen > TH_CHUNK_NAME_KEY)
		strcpy(out + 2 * n, "~");
}

static int flush(th_chunker *c, th_error *err)
{
	th_chunk_ref ref;
	int error;

	c->pending = 0;
	if (c->data.size == 0)
		return TH_OK;
	/* Boundaries were decided on the lines' size; the blob holds them column by column. */
	th_buf_clear(&c->body);
	if ((error = th_chunk_body_encode(&c->body, c->data.ptr, c->data.size, err)) < 0)
		return error;
	if (c->pack)
		error = th_pack_add_blob(&ref.oid, c->pack, c->body.ptr, c->body.size, err);
	else
		error = th_repo_blob_write(&ref.oid, c->repo, c->body.ptr, c->body.size, err);
	if (error < 0)
		return error;
	chunk_name(ref.name, (const unsigned char *)c->lastkey.ptr, c->lastkey.size);
	th_buf_clear(&c->data);
	c->runstart = 0;
	c->written++;
	return push_ref(c, &ref, err);
}

int th_chunker_add(th_chunker *c, const unsigned char *key, size_t keylen, const char *line,
                   size_t linelen, th_error *err)
{
	int error;

	int same = keylen == c->lastkey.size && c->data.size &&
	           memcmp(key, c->lastkey.ptr, keylen) == 0;

	if (c->pending && !same && (error = flush(c, err)) < 0)
		return error;
	if (!same)
		c->runstart = c->data.size;
	if ((error = th_buf_grow(&c->data, linelen + 1, err)) < 0 ||
	    (error = th_buf_put(&c->data, line, linelen, err)) < 0 ||
	    (error = th_buf_putc(&c->data, '\n', err)) < 0 ||
	    (error = th_buf_set(&c->lastkey, key, keylen, err)) < 0)
		return error;
	c->pending = boundary_after(c->data.size, c->runstart, key, keylen);
	return TH_OK;
}

int th_chunker_align(th_chunker *c, th_error *err)
{
	int error;

	if (c->pending && (error = flush(c, err)) < 0)
		return error;
	return c->data.size == 0;
}

int th_chunker_reuse(th_chunker *c, const th_chunk_ref *ref, th_error *err)
{
	th_chunk_ref r = *ref;
	char *tilde = strchr(r.name, '~');

	if (tilde)
		tilde[1] = '\0'; /* the run number is assigned again when the tree is written */
	c->reused++;
	return push_ref(c, &r, err);
}

int th_chunker_finish(th_chunker *c, th_error *err)
{
	return flush(c, err);
}

size_t th_chunk_name_key(unsigned char *buf, const char *name, int *cut)
{
	size_t n = 0;

	*cut = 0;
	while (name[2 * n] && name[2 * n + 1] && n < TH_CHUNK_NAME_KEY) {
		int hi = name[2 * n], lo = name[2 * n + 1];
		if (hi == '~')
			break;
		hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
		lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
		buf[n++] = (unsigned char)(hi << 4 | lo);
	}
	if (name[2 * n] == '~')
		*cut = 1;
	return n;
}

/* Final tree entry names: cut names get their run number so that names stay unique and in key
 * order. `names` receives n strings of sizeof(th_chunk_ref.name) + 8 bytes each. */
static void final_names(char (*names)[136], const th_chunk_ref *chunks, size_t n)
{
	unsigned run = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const char *tilde = strchr(chunks[i].name, '~');
		size_t plen = tilde ? (size_t)(tilde - chunks[i].name) : strlen(chunks[i].name);

		if (tilde == NULL) {
			snprintf(names[i], sizeof(names[i]), "%s", chunks[i].name);
			continue;
		}
		if (i > 0 && strncmp(names[i - 1], chunks[i].name, plen + 1) == 0)
			run++;
		else
			run = 0;
		snprintf(names[i], sizeof(names[i]), "%.*s~%04u", (int)plen, chunks[i].name, run);
	}
}

int th_rows_tree_write(th_oid *out, th_repo *repo, const th_chunk_ref *chunks, size_t n,
                       th_error *err)
{
	char(*names)[136] = NULL;
	th_tree_entry *entries = NULL, *groups = NULL;
	size_t i, start, ngroups = 0;
	int error = TH_OK;

	if (n == 0) {
		memset(out, 0, sizeof(*out));
		return TH_OK;
	}
	if ((names = malloc(n * sizeof(*names))) == NULL ||
	    (entries = malloc(n * sizeof(*entries))) == NULL ||
	    (groups = malloc(n * sizeof(*groups))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	final_names(names, chunks, n);
	for (i = 0; i < n; i++) {
		entries[i].name = names[i];
		entries[i].oid = chunks[i].oid;
		entries[i].is_tree = 0;
	}
	if (n <= FLAT_MAX) {
		error = th_repo_tree_write(out, repo, entries, n, err);
		goto cleanup;
	}
	/* Group boundaries come from the chunk names, so they move only where the chunks do. */
	for (start = 0, i = 0; i < n; i++) {
		int last = i + 1 == n || i + 1 - start >= GROUP_MAX ||
		           (th_hash64(names[i], strlen(names[i])) & GROUP_MASK) == 0;
		if (!last)
			continue;
		if ((error = th_repo_tree_write(&groups[ngroups].oid, repo, entries + start,
		                                i + 1 - start, err)) < 0)
			goto cleanup;
		groups[ngroups].name = names[i];
		groups[ngroups].is_tree = 1;
		ngroups++;
		start = i + 1;
	}
	error = th_repo_tree_write(out, repo, groups, ngroups, err);

cleanup:
	free(groups);
	free(entries);
	free(names);
	return error;
}
