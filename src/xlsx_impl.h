/* xlsx_impl.h: what the workbook reader's files share (internal to src/): xlsx.c (the reader: the
 * sheet's rows, streamed, and the cells' values) and xlsx_book.c (the workbook's small parts read
 * first: which part is the sheet, the cell styles' number formats, the shared strings).
 *
 * Every part is read the same way, streamed: an entry of the zip archive (libzip) decompressed as
 * libxml2's xmlTextReader asks for bytes, so no part is ever whole in memory. Only the shared
 * strings are kept (cells refer to them by index), up to TH_XLSX_SST_MAX bytes.
 */
#ifndef TABLEHUB_SRC_XLSX_IMPL_H
#define TABLEHUB_SRC_XLSX_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <libxml/xmlreader.h>
#include <zip.h>

#include "tablehub/buf.h"
#include "tablehub/error.h"

/* Caps, against damaged files and zip bombs: the text of all shared strings, the uncompressed
 * bytes of the small parts, and of the sheet. */
#define TH_XLSX_SST_MAX (256ull << 20)
#define TH_XLSX_SST_COUNT_MAX (32u << 20)
#define TH_XLSX_PART_MAX (64ull << 20)
#define TH_XLSX_SHEET_MAX (4ull << 30)
#define TH_XLSX_MAX_COLUMNS 16384 /* Excel's: A..XFD */

/* An entry of the archive open as an XML reader. */
typedef struct th_xlsx__part {
	xmlTextReaderPtr xr;
	zip_file_t *zf;
	char name[256];
	uint64_t read;    /* uncompressed bytes read so far */
	uint64_t size;    /* the entry's uncompressed size (as the archive says) */
	uint64_t csize;   /* and compressed */
	uint64_t cap;     /* bytes it may have */
	int too_big;      /* it went past cap */
	int io_failed;    /* libzip could not read it (damaged) */
	char xmlmsg[160]; /* libxml2's first error, and its line */
	int xmlline;
} th_xlsx__part;

/* Open entry `name` (case-insensitive) of `zip` for reading as XML, at most `cap` bytes. Returns
 * TH_OK, TH_ENOTFOUND (no such entry), TH_EINVALID (over cap) or TH_ENOMEM; *out is the caller's:
 * th_xlsx__part_close. */
int th_xlsx__part_open(th_xlsx__part **out, zip_t *zip, const char *name, uint64_t cap,
                       th_error *err);

/* The next node: 1, 0 at the end of the part, or TH_EINVALID (not well-formed XML, damaged, over
 * its cap: the message names the part) or TH_ENOMEM. */
int th_xlsx__part_read(th_xlsx__part *p, th_error *err);

/* The node's local name ("row"), whether it is an element's start (1), end (2), or text (3, also
 * whitespace and CDATA), else 0. */
int th_xlsx__node(th_xlsx__part *p, const char **name);

/* The value of the node's attribute with local name `local` (any namespace), or NULL; copied
 * into buf (cut to size). */
const char *th_xlsx__attr(th_xlsx__part *p, const char *local, char *buf, size_t size);

/* Accepts NULL. */
void th_xlsx__part_close(th_xlsx__part *p);

/* What a cell style's number format makes of a number. */
enum { TH_XLSX_GENERAL = 0, TH_XLSX_DATE, TH_XLSX_DATETIME, TH_XLSX_TIME };

/* The workbook, as far as reading one sheet needs it. */
typedef struct th_xlsx__book {
	char sheet_part[256]; /* the sheet's entry, "xl/worksheets/sheet1.xml" */
	char sheet_name[128];
	int date1904;           /* dates count from 1904-01-01, not 1899-12-30 */
	unsigned char *xf_kind; /* per cell style (cellXfs index): TH_XLSX_* */
	size_t nxf;
	th_buf sst;      /* the shared strings, each NUL-terminated */
	size_t *sst_off; /* where each starts in sst; its length runs to the next one's start - 1 */
	size_t nsst;
} th_xlsx__book;

/* Read the workbook's parts that tell which entry is the sheet `sheet` (NULL: the first), its
 * cell styles and the shared strings. Returns TH_OK, TH_EINVALID (not a workbook, no such sheet:
 * the message lists the sheets, damaged parts, the shared strings over TH_XLSX_SST_MAX) or
 * TH_ENOMEM. Dispose with th_xlsx__book_dispose (also after a failure). */
int th_xlsx__book_load(th_xlsx__book *b, zip_t *zip, const char *sheet, th_error *err);
void th_xlsx__book_dispose(th_xlsx__book *b);

#endif
