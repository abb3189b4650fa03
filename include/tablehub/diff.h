/* diff.h: row- and cell-level differences between two versions of a table (src/diff.c) or of a
 * whole commit tree, table by table (src/tree_diff.c).
 *
 * Two rows trees are compared chunk by chunk in key order: chunks whose blob ids are equal on both
 * sides are skipped without being read, and only the rows of the chunks that differ are decoded
 * and merge-joined by key. The cost follows the size of the change, not of the table. The tree
 * diff runs that per changed table and hands each table's summary and each changed row, decoded
 * into cells, to a visitor (the CLI prints from it; the API's paged diff is th_pull_diff_page).
 */
#ifndef TABLEHUB_DIFF_H
#define TABLEHUB_DIFF_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "repo.h"
#include "table.h"

typedef enum { TH_CHANGE_ADDED = 1, TH_CHANGE_MODIFIED = 2, TH_CHANGE_REMOVED = 3 } th_change_kind;

/* One changed row. Pointers are borrowed for the duration of the callback. For keyless tables a
 * row that appears k more (fewer) times is reported as one ADDED (REMOVED) change with count k. */
typedef struct th_row_change {
	th_change_kind kind;
	const unsigned char *key;
	size_t keylen;
	const char *old_line; /* NULL when added */
	size_t old_len;
	const char *new_line; /* NULL when removed */
	size_t new_len;
	uint64_t count; /* 1 unless keyless */
} th_row_change;

/* Call cb for every row that differs between rows trees `a` and `b` (either may be NULL or zero
 * for an empty table) of one schema `s`, in key order. A non-zero return from cb stops the walk and
 * is returned. Returns TH_OK, TH_ENOMEM or TH_ESTORE otherwise. */
int th_diff_rows(th_repo *repo, const th_schema *s, const th_oid *a, const th_oid *b,
                 int (*cb)(void *payload, const th_row_change *c), void *payload, th_error *err);

/* --- commit trees, table by table (src/tree_diff.c) ---------------------------------------- */

typedef enum { TH_TABLE_ADDED = 1, TH_TABLE_DROPPED = 2, TH_TABLE_MODIFIED = 3 } th_table_change;

/* "added", "dropped", "modified"; "added", "modified", "removed" for rows. */
const char *th_table_change_name(th_table_change c);
const char *th_change_kind_name(th_change_kind k);
/* "added" etc. to a kind, 0 if unknown. */
th_change_kind th_change_kind_parse(const char *s);

/* One changed table. Everything is borrowed for the duration of the callback. Counts are final
 * only in table_end. */
typedef struct th_table_diff {
	const char *name;
	th_table_change change;
	const th_schema *from_schema; /* NULL when added */
	const th_schema *to_schema;   /* NULL when dropped */
	int schema_changed;           /* columns added, dropped or retyped, or the key changed */
	int key_changed;              /* rows are then listed as all removed, then all added */
	uint64_t rows_added, rows_modified, rows_removed, cells_modified;
} th_table_diff;

/* One changed row, decoded. `before` uses from_schema, `after` to_schema; NULL when absent. For a
 * modified row `changed[i]` says whether column i of to_schema changed, and `dropped[j]` whether
 * column j of from_schema was dropped while it held a value (a change too); cells_modified counts
 * both. For keyless tables `count` copies were added or removed. `key` is th_key_format's text;
 * rawkey/phase place the row for paging. */
typedef struct th_diff_row {
	th_change_kind kind;
	const th_cells *before, *after;
	const unsigned char *changed; /* modified rows only */
	const unsigned char *dropped; /* modified rows only */
	uint64_t cells_modified;
	const char *key;
	uint64_t count;
	const unsigned char *rawkey;
	size_t rawkeylen;
	int phase; /* 0, or 1 for the added rows of a table whose key changed */
} th_diff_row;

/* Returned by a visitor's table_begin or row: list no (more) rows of this table and go on with its
 * table_end (whose counts are then those of the rows walked, not the table's) and the next table.
 */
#define TH_DIFF_NEXT_TABLE 1

typedef struct th_diff_visitor {
	/* Each may be NULL; TH_DIFF_NEXT_TABLE (see above) or another non-zero return stops the
	 * walk and is returned. */
	int (*table_begin)(void *payload, const th_table_diff *t, th_error *err);
	int (*row)(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err);
	int (*table_end)(void *payload, const th_table_diff *t, th_error *err);
	void *payload;
	/* Skip decoding rows (counts are still exact): for summaries. Read at every row, so the
	 * visitor's owner may set it during the walk once it wants no more rows. */
	int summary_only;
	/* Optional, for paging: in table `seek_table`, the rows of phases before `seek_phase`, and
	 * in that phase the chunks that end before key `seek_key`, are not read. Some rows before
	 * the position may still be handed to `row` (and counted): the caller skips them. */
	const char *seek_table;
	int seek_phase;
	const unsigned char *seek_key;
	size_t seek_keylen;
} th_diff_visitor;

/* Walk the differences between commit trees `from_root` and `to_root` (NULL or zero = empty),
 * table by table in name order (only `only_table` when not NULL), rows in key order. A row whose
 * cells are all equal under the two schemas (e.g. only a column of NULLs was added) is not a
 * change. Returns TH_OK, what a callback returned, TH_ENOMEM, TH_EINVALID (a malformed table) or
 * TH_ESTORE. */
int th_tree_diff(th_repo *repo, const th_oid *from_root, const th_oid *to_root,
                 const char *only_table, const th_diff_visitor *v, th_error *err);

#endif
