/* csv.h: a pull reader of delimited text (CSV, PSV, TSV) over libcsv (src/csv.c).
 *
 * RFC 4180: quoted fields may hold the delimiter, doubled quotes and newlines; CRLF or LF; a UTF-8
 * BOM is stripped; an unquoted empty field is NULL and a quoted "" is an empty string; blank lines
 * are skipped. Every field is checked to be valid UTF-8. The first record is the header.
 * Errors name the 1-based line (where the bad record starts, or the line of the bad byte) and the
 * 1-based column, and set th_error.line / .column accordingly.
 */
#ifndef TABLEHUB_CSV_H
#define TABLEHUB_CSV_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "text.h"

typedef struct th_csv th_csv;

/* One record. The pointers are borrowed: valid until the next th_csv_next or th_csv_free. */
typedef struct th_csv_row {
	size_t n; /* number of fields */
	const char *const
	        *cells;     /* cells[i] is NUL-terminated, or NULL for an unquoted empty field */
	const size_t *lens; /* byte length of each cell (0 for NULL) */
	uint64_t line;      /* line on which the record starts */
} th_csv_row;

/* Read from the open descriptor `fd` (not closed by the reader) with delimiter `delim` (',', '|',
 * '\t'). Returns TH_OK or TH_ENOMEM. Free with th_csv_free. */
int th_csv_open(th_csv **out, int fd, char delim, th_error *err);
void th_csv_free(th_csv *csv);

/* Read the next record into *row. Returns 1 (a record), 0 (end of input) or a negative code:
 * TH_EINVALID (malformed CSV, invalid UTF-8: message, line and column set) or TH_ESTORE (read
 * failed). Records of differing field counts are returned as they are: the caller checks them. */
int th_csv_next(th_csv *csv, th_csv_row *row, th_error *err);

/* Bytes consumed from the descriptor so far (for progress reports). */
uint64_t th_csv_bytes(const th_csv *csv);

/* Append one CSV field to out (src/csv_write.c): NULL as an unquoted empty field, an empty
 * string as "", quoted (quotes doubled) when it holds `delim`, a quote, CR or LF, or starts or ends
 * with a space. Returns TH_OK or TH_ENOMEM. */
#include "buf.h"
int th_csv_write_field(th_buf *out, const char *s, size_t len, int is_null, char delim,
                       th_error *err);

#endif
