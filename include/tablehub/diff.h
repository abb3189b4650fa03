/* diff.h: row- and cell-level differences between two versions of a table or of a whole commit
 * (src/diff.c).
 *
 * Two rows trees are compared chunk by chunk in key order: chunks whose blob ids are equal on both
 * sides are skipped without being read, and only the rows of the chunks that differ are decoded
 * and merge-joined by key. The cost follows the size of the change, not of the table.
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

#endif
