/* jsonrows.h: a pull reader of JSON rows (src/jsonrows.c), with the interface of the CSV reader.
 *
 * Accepts DoltHub's upload form {"rows":[{"col":value,...},...]} (other top-level keys are
 * skipped), a top-level array of objects, and JSON lines (one object per line, or any whitespace
 * between objects). The file is streamed: one row is held at a time. The first record returned is
 * a header made of the first row's keys, in their order; every row then comes back with its cells
 * in that order, a missing key as NULL. Cells are the values' text: strings unescaped, numbers as
 * written, true/false, null as NULL, nested objects and arrays as their JSON text.
 */
#ifndef TABLEHUB_JSONROWS_H
#define TABLEHUB_JSONROWS_H

#include "csv.h"
#include "error.h"

typedef struct th_jsonrows th_jsonrows;

/* Read from `fd` (not closed by the reader). Returns TH_OK or TH_ENOMEM. */
int th_jsonrows_open(th_jsonrows **out, int fd, th_error *err);
void th_jsonrows_free(th_jsonrows *r);

/* Take the columns from `names` (n of them, copied) instead of the first row's keys: rows may then
 * give any subset of them, and a key outside them is an error. Call before the first
 * th_jsonrows_next. Returns TH_OK or TH_ENOMEM. */
int th_jsonrows_set_columns(th_jsonrows *r, const char *const *names, size_t n, th_error *err);

/* The next record (the header first) into *row, borrowed until the next call. Returns 1, 0 at the
 * end, or TH_EINVALID (malformed JSON, a row that is not an object, a key the first row does not
 * have, a key given twice, invalid UTF-8: line and column set, the column being the byte on the
 * line) or TH_ESTORE. */
int th_jsonrows_next(th_jsonrows *r, th_csv_row *row, th_error *err);

/* Bytes consumed from the descriptor so far. */
uint64_t th_jsonrows_bytes(const th_jsonrows *r);

#endif
