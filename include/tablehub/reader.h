/* reader.h: input formats behind one interface (src/reader.c), the extension point for formats.
 *
 * A reader turns a file open on a descriptor into rows of text cells, streamed: one row is held
 * at a time. The first row is the header (the column names); every later row is a record whose
 * cells are the values' text, NULL for a missing value. Readers are a table of functions
 * (th_reader_type), as libgit2's backends are; each lives in its own file in src/ (csv.c for
 * CSV/PSV/TSV, jsonrows.c for JSON rows) and its only public symbol is `th_reader_<name>`.
 *
 * Formats name a reader and its options in ONE table in src/reader.c: DoltHub's fileType ("Csv",
 * "Psv", "Tsv", "Json"), the file extensions that pick it, the reader, the options. The upload
 * API, the command line and the import job all look formats up there. Adding a format is its
 * reader's file (plus its name in src/CMakeLists.txt) and one line of that table.
 */
#ifndef TABLEHUB_READER_H
#define TABLEHUB_READER_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* One row. The pointers are borrowed from the reader: valid until its next th_reader_next or
 * th_reader_close. */
typedef struct th_reader_row {
	size_t n;                 /* number of cells */
	const char *const *cells; /* cells[i] is NUL-terminated, or NULL for a missing value */
	const size_t *lens;       /* byte length of each cell (0 for NULL) */
	uint64_t line;            /* 1-based line of the input on which the row starts */
} th_reader_row;

typedef struct th_reader_opts {
	/* Delimited text: the field separator (',', '|', '\t'). */
	char delim;
	/* The columns of the table being appended to or replaced, or NULL (ncolumns 0). A reader
	 * whose rows name their own columns (JSON) takes them as the header and accepts rows that
	 * give any subset of them; a reader whose input starts with a header row ignores them. */
	const char *const *columns;
	size_t ncolumns;
	/* A workbook (Xlsx): the name of the sheet to read; NULL = the first. Others ignore it. */
	const char *sheet;
} th_reader_opts;

/* An open reader. Each reader's state begins with this struct, so `type` reaches its functions. */
typedef struct th_reader th_reader;

/* What a reader implements. Every function is required. */
typedef struct th_reader_type {
	/* Start reading `fd` (borrowed: the reader never closes it) with `opts` (copied as
	 * needed). Returns TH_OK or TH_ENOMEM; *out is the caller's: close. */
	int (*open)(th_reader **out, int fd, const th_reader_opts *opts, th_error *err);
	/* The next row into *row: 1 (a row), 0 (end of input) or a negative code: TH_EINVALID
	 * (malformed input: the message names the line and the column, which err->line/column and
	 * error_pos give), TH_ESTORE (read failed) or TH_ENOMEM. Rows of differing widths are
	 * returned as they are: the caller checks them. */
	int (*next)(th_reader *r, th_reader_row *row, th_error *err);
	/* Where the last TH_EINVALID of next was found (1-based); 0, 0 when there was none. */
	void (*error_pos)(const th_reader *r, uint64_t *line, uint32_t *column);
	/* Bytes read from the descriptor so far (for progress reports). */
	uint64_t (*bytes)(const th_reader *r);
	void (*close)(th_reader *r);
} th_reader_type;

struct th_reader {
	const th_reader_type *type;
};

/* A format: a line of the table. */
typedef struct th_format {
	const char *name;             /* DoltHub's fileType: "Csv" */
	const char *extensions;       /* file extensions that pick it, lower case: "json jsonl" */
	const th_reader_type *reader; /* the reader that reads it */
	th_reader_opts opts;          /* its options (the columns are given per import) */
} th_format;

/* The format named `s`: a fileType or one of its extensions, in any case ("Csv", "csv",
 * "jsonl"). Returns a pointer into the table (static), or NULL when `s` is NULL or unknown. */
const th_format *th_format_find(const char *s);

/* The format of a file name's extension ("rows.TSV" -> Tsv), else the first of the table (Csv):
 * what the upload API and the command line use when no fileType is given. Never NULL. */
const th_format *th_format_guess(const char *file_name);

/* The i-th format of the table (0-based), or NULL past its end. */
const th_format *th_format_at(size_t i);

/* The fileTypes of the table as a list for messages, "Csv, Psv, Tsv or Json", into out (always
 * NUL-terminated, cut to size). */
void th_format_names(char *out, size_t size);

/* Does a file that starts with data[0..n) look like UTF-16 (a UTF-16 byte-order mark, or NUL bytes
 * at every other position, as ASCII text in UTF-16 has)? 1 or 0. Text readers check their first
 * block with it and fail with TH_READER_UTF16_MSG, rather than with a puzzling error later. */
int th_reader_looks_utf16(const void *data, size_t n);
#define TH_READER_UTF16_MSG "the file looks like UTF-16 text: save it as UTF-8 and upload it again"

/* Open a reader of format `f` (NULL = the first of the table) on `fd` (borrowed), with the
 * format's options and the target table's `columns` (see th_reader_opts; may be NULL). Returns
 * TH_OK or TH_ENOMEM; *out is the caller's: th_reader_close. */
int th_reader_open(th_reader **out, const th_format *f, int fd, const char *const *columns,
                   size_t ncolumns, th_error *err);

/* As th_reader_open, with the per-file options of `given` (its columns, ncolumns and sheet; its
 * delim is ignored: the format's). */
int th_reader_open_with(th_reader **out, const th_format *f, int fd, const th_reader_opts *given,
                        th_error *err);

/* The reader's functions (see th_reader_type), dispatched through r->type. */
int th_reader_next(th_reader *r, th_reader_row *row, th_error *err);
void th_reader_error_pos(const th_reader *r, uint64_t *line, uint32_t *column);
uint64_t th_reader_bytes(const th_reader *r);
/* Accepts NULL. */
void th_reader_close(th_reader *r);

/* A reader of the same rows as `inner` (taken: closing the result closes it) whose parsing runs
 * ahead on a thread of its own (src/reader_ahead.c): the caller works on a row while the next ones
 * are parsed on another core. Rows, their lines, the end and errors (with their error_pos) come
 * back exactly as inner gives them; bytes is inner's as of the rows being returned. At most 4
 * batches of 1024 rows or 128 KiB wait, copied out of inner's buffers. For large inputs: a thread
 * costs more than a small file's whole parse. Never fails: without memory or a thread it returns
 * inner itself. */
th_reader *th_reader_ahead(th_reader *inner);

#endif
