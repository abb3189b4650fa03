/* chunk.h: the content-defined chunker shared by table.c (apply) and import.c (bulk writes).
 * Internal to src/: not part of the public headers. */
#ifndef TABLEHUB_SRC_CHUNK_H
#define TABLEHUB_SRC_CHUNK_H

#include "tablehub/table.h"

/* Chunk names are the hex of the chunk's last key, cut at TH_CHUNK_NAME_KEY bytes; a cut name gets
 * a "~NNNN" suffix numbering the chunks that share the cut prefix, so names still sort in key
 * order. */
#define TH_CHUNK_NAME_KEY 60

typedef struct th_chunker {
	th_repo *repo;
	th_pack *pack;     /* NULL: loose blobs */
	th_buf data;       /* lines of the chunk being built, each ending in '\n' */
	th_buf lastkey;    /* key of the last row added */
	int pending;       /* a boundary was decided after the last row */
	size_t runstart;   /* offset in data where the run of rows with the last key began */
	th_chunk_ref *out; /* finished chunks, in order */
	size_t nout, capout;
	uint64_t written; /* chunks written (new or not) */
	uint64_t reused;  /* chunks passed through untouched */
} th_chunker;

void th_chunker_init(th_chunker *c, th_repo *repo, th_pack *pack);
void th_chunker_dispose(th_chunker *c);

/* Add a row (its key decides boundaries). Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_chunker_add(th_chunker *c, const unsigned char *key, size_t keylen, const char *line,
		   size_t linelen, th_error *err);

/* At a base chunk boundary: close the chunk if a boundary is pending. Returns 1 when no row is
 * buffered (the chunker is aligned and a base chunk may be passed through), 0 if rows are
 * buffered, or a negative code. */
int th_chunker_align(th_chunker *c, th_error *err);

/* Pass an existing chunk through unchanged; only when aligned. */
int th_chunker_reuse(th_chunker *c, const th_chunk_ref *ref, th_error *err);

/* Close the last chunk. Returns TH_OK or a negative code. */
int th_chunker_finish(th_chunker *c, th_error *err);

/* Write the rows tree for `n` chunks (one level, or two when there are many) to *out; a zero oid
 * when n == 0. Returns TH_OK or a negative code. */
int th_rows_tree_write(th_oid *out, th_repo *repo, const th_chunk_ref *chunks, size_t n,
		       th_error *err);

/* Decode the key prefix held in a chunk name into buf (at most TH_CHUNK_NAME_KEY bytes). Returns
 * its length and sets *cut when the name holds only a prefix of the key. */
size_t th_chunk_name_key(unsigned char *buf, const char *name, int *cut);

/* Called by th_table__apply_ex when an edit meets an existing row of its key: writes the row's new
 * line to line_out (an update of some columns only), or fails the apply with its error (an append
 * of an existing key). */
typedef int (*th_resolve_fn)(void *payload, const th_row *old, const th_edit *e, th_buf *line_out,
			     th_error *err);

/* th_table_apply with two more choices: `resolve` (may be NULL) for edits of existing keys, and
 * `additive`: for keyless tables an edit's count adds to the copies already there instead of
 * replacing them. */
int th_table__apply_ex(th_oid *out, th_apply_stats *stats, th_repo *repo, const th_schema *s,
		       const th_oid *base, th_edit_next_fn next, void *payload,
		       th_resolve_fn resolve, int additive, th_pack *pack, th_error *err);

#endif
