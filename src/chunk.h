/* chunk.h: the content-defined chunker shared by table.c (apply) and import.c (bulk writes).
 * Internal to src/: not part of the public headers. */
#ifndef TABLEHUB_SRC_CHUNK_H
#define TABLEHUB_SRC_CHUNK_H

#include "tablehub/table.h"

/* Chunk names are the hex of the chunk's last key, cut at TH_CHUNK_NAME_KEY bytes; a cut name gets
 * a "~NNNN" suffix numbering the chunks that share the cut prefix, so names still sort in key
 * order. */
#define TH_CHUNK_NAME_KEY 60

/* The rows tree's shape (th_rows_tree_write): more chunks than TH_ROWS_FLAT_MAX get a second level,
 * subtrees of the chunks up to one whose final name hashes to 0 under TH_ROWS_GROUP_MASK (~64
 * chunks), at most TH_ROWS_GROUP_MAX. Part of the storage format: equal tables, equal trees. */
#define TH_ROWS_FLAT_MAX 256
#define TH_ROWS_GROUP_MASK 63
#define TH_ROWS_GROUP_MAX 1024

typedef struct th_chunker {
	th_repo *repo;
	th_pack *pack;     /* NULL: loose blobs */
	th_buf data;       /* lines of the chunk being built, each ending in '\n' */
	th_buf body;       /* scratch: the blob written for them (th_chunk_body_encode) */
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

/* --- rows_tree.c: a rows tree walked and rewritten without reading all of it --------------- */

/* A cursor over the chunks of a rows tree, in key order, that reads a subtree only when its
 * chunks are asked for. */
typedef struct th_chunk_cursor {
	th_repo *repo;
	th_tree_list top; /* the rows tree: chunks (one level) or subtrees (two) */
	size_t ti;        /* the next top entry not yet taken */
	th_tree_list sub; /* the subtree being walked (read from top entry ti - 1) */
	size_t si;        /* its next entry */
	th_chunk_ref cur; /* what th_chunk_cursor_peek returned */
	uint64_t trees_read;
} th_chunk_cursor;

/* Start at the first chunk of `rows` (NULL or zero: no chunks); reads the top tree. Returns
 * TH_OK, TH_ENOTFOUND or TH_ESTORE. Dispose of it with th_chunk_cursor_dispose, also on failure. */
int th_chunk_cursor_init(th_chunk_cursor *c, th_repo *repo, const th_oid *rows, th_error *err);
void th_chunk_cursor_dispose(th_chunk_cursor *c);

/* The next chunk into *out (owned by the cursor, valid until it moves; NULL at the end), reading
 * its subtree if needed. Returns TH_OK or a negative code. */
int th_chunk_cursor_peek(th_chunk_cursor *c, const th_chunk_ref **out, th_error *err);
/* Move past the chunk th_chunk_cursor_peek returned. */
void th_chunk_cursor_next(th_chunk_cursor *c);
/* After a peek: does any chunk follow the one returned? */
int th_chunk_cursor_more_after(const th_chunk_cursor *c);

/* When the next chunk is the first of a subtree not yet read: that subtree's top entry (its name
 * is the final name of its last chunk), else NULL. Borrowed from the cursor. */
const th_tree_entry *th_chunk_cursor_group(const th_chunk_cursor *c);
/* For th_chunk_cursor_group's subtree: the name of the top entry before it (NULL: it is the
 * first), and whether it is the last one. */
const char *th_chunk_cursor_group_prev(const th_chunk_cursor *c);
int th_chunk_cursor_group_is_last(const th_chunk_cursor *c);
/* Move past th_chunk_cursor_group's subtree unread. */
void th_chunk_cursor_skip_group(th_chunk_cursor *c);

/* A subtree of a base rows tree passed through whole, placed before chunk `at` of a chunk list. */
typedef struct th_rows_group {
	size_t at;
	th_oid oid;
	char name[136]; /* its top entry name */
	char prev[136]; /* the base's top entry name before it, when has_prev */
	int has_prev;
	int base_last; /* it was the base's last top entry */
} th_rows_group;

/* th_rows_tree_write for the table made of `chunks` with the subtrees `groups` (in order, their
 * `at` ascending) in their places: the same tree as for the full chunk list, reusing each subtree
 * that the full write would make again. Returns TH_OK or a negative code. */
int th_rows_tree_write_reuse(th_oid *out, th_repo *repo, const th_chunk_ref *chunks, size_t n,
                             const th_rows_group *groups, size_t ngroups, th_error *err);

#endif
