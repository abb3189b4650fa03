/* xlsx_build.h: small Excel workbooks made in the tests, with libzip (which also reads them in
 * src/xlsx.c, but writes them here independently of that code): the package and workbook
 * relationships, a workbook with the sheets given, styles and shared strings as given. The XML
 * of each part is the test's own text, so a test states exactly what a sheet holds. */
#ifndef TABLEHUB_TEST_XLSX_BUILD_H
#define TABLEHUB_TEST_XLSX_BUILD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#define XL_MAIN "xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\""
#define XL_REL "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

/* A worksheet part around the rows' XML. */
#define XL_SHEET(rows)                                                                             \
	"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"                          \
	"<worksheet " XL_MAIN "><sheetData>" rows "</sheetData></worksheet>"

typedef struct xl_book {
	const char *names[4];  /* sheet names, in order (NULL ends) */
	const char *sheets[4]; /* each sheet's part (XL_SHEET(...)) */
	const char *styles;    /* xl/styles.xml, or NULL */
	const char *strings;   /* xl/sharedStrings.xml, or NULL */
	int date1904;
} xl_book;

static inline void xl_add(zip_t *z, const char *name, const char *text)
{
	size_t len = strlen(text);
	char *copy = malloc(len + 1);
	zip_source_t *src;

	if (copy == NULL)
		abort();
	memcpy(copy, text, len + 1);
	/* freep = 1: libzip frees the copy once the archive is written */
	if ((src = zip_source_buffer(z, copy, len, 1)) == NULL ||
	    zip_file_add(z, name, src, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8) < 0)
		abort();
}

/* Write the workbook `b` to `path`. */
static inline void xl_write(const char *path, const xl_book *b)
{
	char wb[4096], rels[4096], part[64];
	int err = 0, i;
	zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);

	if (z == NULL)
		abort();
	xl_add(z, "[Content_Types].xml",
	       "<?xml version=\"1.0\"?><Types "
	       "xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>");
	xl_add(z, "_rels/.rels",
	       "<?xml version=\"1.0\"?><Relationships "
	       "xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
	       "<Relationship Id=\"rId1\" Type=\"" XL_REL "/officeDocument\" "
	       "Target=\"xl/workbook.xml\"/></Relationships>");
	snprintf(wb, sizeof(wb),
	         "<?xml version=\"1.0\"?><workbook " XL_MAIN " xmlns:r=\"" XL_REL "\">"
	         "<workbookPr date1904=\"%d\"/><sheets>",
	         b->date1904);
	snprintf(rels, sizeof(rels),
	         "<?xml version=\"1.0\"?><Relationships "
	         "xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
	         "<Relationship Id=\"rIdS\" Type=\"" XL_REL "/styles\" "
	         "Target=\"styles.xml\"/>"
	         "<Relationship Id=\"rIdT\" Type=\"" XL_REL "/sharedStrings\" "
	         "Target=\"/xl/sharedStrings.xml\"/>");
	for (i = 0; i < 4 && b->names[i]; i++) {
		size_t used = strlen(wb), rused = strlen(rels);
		snprintf(wb + used, sizeof(wb) - used,
		         "<sheet name=\"%s\" sheetId=\"%d\" r:id=\"rId%d\"/>", b->names[i], i + 1,
		         i + 1);
		/* the second sheet's part lies in a directory of its own, reached with ../ */
		snprintf(rels + rused, sizeof(rels) - rused,
		         "<Relationship Id=\"rId%d\" Type=\"" XL_REL "/worksheet\" "
		         "Target=\"%s%d.xml\"/>",
		         i + 1, i == 1 ? "other/../worksheets/sheet" : "worksheets/sheet", i + 1);
		snprintf(part, sizeof(part), "xl/worksheets/sheet%d.xml", i + 1);
		xl_add(z, part, b->sheets[i]);
	}
	strncat(wb, "</sheets></workbook>", sizeof(wb) - strlen(wb) - 1);
	strncat(rels, "</Relationships>", sizeof(rels) - strlen(rels) - 1);
	xl_add(z, "xl/workbook.xml", wb);
	xl_add(z, "xl/_rels/workbook.xml.rels", rels);
	if (b->styles)
		xl_add(z, "xl/styles.xml", b->styles);
	if (b->strings)
		xl_add(z, "xl/sharedStrings.xml", b->strings);
	if (zip_close(z) < 0)
		abort();
}

#endif
