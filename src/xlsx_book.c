/* xlsx_book.c: the parts of a workbook read before its sheet (see xlsx_impl.h): the package's
 * relationships (which entry is the workbook), the workbook (its sheets in order, the date
 * system), the workbook's relationships (which entries are the sheet, the styles and the shared
 * strings), the styles (what each cell style's number format makes of a number: a date, a time)
 * and the shared strings (kept in memory, capped). And the streamed XML parts they are read
 * through: an archive entry (libzip) fed to libxml2's xmlTextReader as it asks for bytes.
 *
 * Entries are found by the relationships, as the format says, with the usual names as the
 * fallback when a relationship is missing; names are matched without regard to case. Number
 * formats are classified as Excel shows them: a built-in id, or the format code's first section
 * scanned for date and time letters outside quotes, escapes and [brackets].
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xlsx_impl.h"

/* --- parts ------------------------------------------------------------------------------------ */

static pthread_once_t libxml_once = PTHREAD_ONCE_INIT;

static void libxml_init(void)
{
	xmlInitParser(); /* once, before any thread parses: its globals are not set up lazily */
}

static int part_io_read(void *ctx, char *buf, int len)
{
	th_xlsx__part *p = ctx;
	zip_int64_t n;

	if (p->zf == NULL)
		return -1;
	if ((n = zip_fread(p->zf, buf, (zip_uint64_t)len)) < 0) {
		p->io_failed = 1;
		return -1;
	}
	p->read += (uint64_t)n;
	if (p->read > p->cap) {
		p->too_big = 1;
		return -1;
	}
	return (int)n;
}

static int part_io_close(void *ctx)
{
	th_xlsx__part *p = ctx;

	if (p->zf != NULL)
		zip_fclose(p->zf);
	p->zf = NULL;
	return 0;
}

/* libxml2's errors go here, never to stderr: the first is kept for the message. */
static void on_xml_error(void *ctx, xmlErrorPtr e)
{
	th_xlsx__part *p = ctx;
	size_t n;

	if (p->xmlmsg[0] != '\0' || e == NULL || e->message == NULL)
		return;
	snprintf(p->xmlmsg, sizeof(p->xmlmsg), "%s", e->message);
	n = strlen(p->xmlmsg);
	while (n > 0 && (p->xmlmsg[n - 1] == '\n' || p->xmlmsg[n - 1] == ' '))
		p->xmlmsg[--n] = '\0';
	p->xmlline = e->line;
}

int th_xlsx__part_open(th_xlsx__part **out, zip_t *zip, const char *name, uint64_t cap,
                       th_error *err)
{
	zip_int64_t idx = zip_name_locate(zip, name, ZIP_FL_NOCASE);
	th_xlsx__part *p;
	zip_stat_t st;

	if (idx < 0)
		return th_error_set(err, TH_ENOTFOUND, "the workbook has no part '%s'", name);
	zip_stat_init(&st);
	if (zip_stat_index(zip, (zip_uint64_t)idx, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE) &&
	    st.size > cap)
		return th_error_set(err, TH_EINVALID,
		                    "part '%s' of the workbook is %llu MiB uncompressed; the limit "
		                    "is %llu MiB",
		                    name, (unsigned long long)(st.size >> 20),
		                    (unsigned long long)(cap >> 20));
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->cap = cap;
	p->size = (st.valid & ZIP_STAT_SIZE) ? st.size : 0;
	p->csize = (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : 0;
	if ((p->zf = zip_fopen_index(zip, (zip_uint64_t)idx, 0)) == NULL) {
		free(p);
		return th_error_set(err, TH_EINVALID,
		                    "the workbook is damaged: cannot read '%s': %s", name,
		                    zip_strerror(zip));
	}
	pthread_once(&libxml_once, libxml_init);
	/* No network, no external DTD, entities left unexpanded: a workbook is data, not a
	 * document to fetch things for. The close callback always runs, also on failure. */
	p->xr = xmlReaderForIO(part_io_read, part_io_close, p, NULL, NULL,
	                       XML_PARSE_NONET | XML_PARSE_NOCDATA);
	if (p->xr == NULL) {
		free(p);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	xmlTextReaderSetStructuredErrorHandler(p->xr, on_xml_error, p);
	*out = p;
	return TH_OK;
}

int th_xlsx__part_read(th_xlsx__part *p, th_error *err)
{
	int rc = xmlTextReaderRead(p->xr);

	if (rc >= 0)
		return rc;
	if (p->too_big)
		return th_error_set(err, TH_EINVALID,
		                    "part '%s' of the workbook is over %llu MiB uncompressed",
		                    p->name, (unsigned long long)(p->cap >> 20));
	if (p->io_failed)
		return th_error_set(err, TH_EINVALID, "the workbook is damaged: cannot read '%s'",
		                    p->name);
	if (strstr(p->xmlmsg, "Memory allocation failed") != NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory reading the workbook");
	return th_error_set(err, TH_EINVALID,
	                    "part '%s' of the workbook is not valid XML (line %d: %s)", p->name,
	                    p->xmlline, p->xmlmsg[0] ? p->xmlmsg : "unreadable");
}

int th_xlsx__node(th_xlsx__part *p, const char **name)
{
	*name = (const char *)xmlTextReaderConstLocalName(p->xr);
	if (*name == NULL)
		*name = "";
	switch (xmlTextReaderNodeType(p->xr)) {
	case XML_READER_TYPE_ELEMENT:
		return 1;
	case XML_READER_TYPE_END_ELEMENT:
		return 2;
	case XML_READER_TYPE_TEXT:
	case XML_READER_TYPE_CDATA:
	case XML_READER_TYPE_WHITESPACE:
	case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
		return 3;
	default:
		return 0;
	}
}

const char *th_xlsx__attr(th_xlsx__part *p, const char *local, char *buf, size_t size)
{
	const char *found = NULL;

	if (xmlTextReaderMoveToFirstAttribute(p->xr) != 1)
		return NULL;
	do {
		const char *n = (const char *)xmlTextReaderConstLocalName(p->xr);
		if (n != NULL && strcmp(n, local) == 0 &&
		    xmlTextReaderIsNamespaceDecl(p->xr) != 1) {
			const char *v = (const char *)xmlTextReaderConstValue(p->xr);
			snprintf(buf, size, "%s", v ? v : "");
			found = buf;
			break;
		}
	} while (xmlTextReaderMoveToNextAttribute(p->xr) == 1);
	xmlTextReaderMoveToElement(p->xr);
	return found;
}

void th_xlsx__part_close(th_xlsx__part *p)
{
	if (p == NULL)
		return;
	xmlFreeTextReader(p->xr); /* closes the entry through part_io_close */
	if (p->zf != NULL)
		zip_fclose(p->zf);
	free(p);
}

/* --- relationships ---------------------------------------------------------------------------- */

/* The entry a relationship of part `from` targets: absolute ("/xl/x.xml") or relative to the
 * directory of `from`, with "dir/../" collapsed. */
static void resolve(char *out, size_t size, const char *from, const char *target)
{
	const char *slash = strrchr(from, '/');
	char *up;
	int n;

	if (target[0] == '/')
		n = snprintf(out, size, "%s", target + 1);
	else
		n = snprintf(out, size, "%.*s%s", slash ? (int)(slash - from + 1) : 0, from,
		             target);
	if (n < 0 || (size_t)n >= size) {
		out[0] = '\0'; /* too long for any entry: found nowhere */
		return;
	}
	while ((up = strstr(out, "/../")) != NULL) {
		char *seg = up;
		while (seg > out && seg[-1] != '/')
			seg--;
		memmove(seg, up + 4, strlen(up + 4) + 1);
	}
	while (strncmp(out, "../", 3) == 0)
		memmove(out, out + 3, strlen(out + 3) + 1);
}

/* Does `s` end with `suffix`? */
static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The relationships part of `from` ("xl/workbook.xml" -> "xl/_rels/workbook.xml.rels"); each
 * Relationship whose Type ends in types[i] (or whose Id is types[i] when it starts "Id:") sets
 * targets[i] to the resolved entry. A missing part sets nothing. */
static int read_rels(zip_t *zip, const char *from, const char *const *types, char (*targets)[256],
                     size_t n, th_error *err)
{
	const char *slash = strrchr(from, '/'), *name;
	char rels[300], type[256], id[128], target[256];
	th_xlsx__part *p = NULL;
	size_t i;
	int rc;

	snprintf(rels, sizeof(rels), "%.*s_rels/%s.rels", slash ? (int)(slash - from + 1) : 0, from,
	         slash ? slash + 1 : from);
	if ((rc = th_xlsx__part_open(&p, zip, rels, TH_XLSX_PART_MAX, err)) < 0)
		return rc == TH_ENOTFOUND ? TH_OK : rc;
	while ((rc = th_xlsx__part_read(p, err)) == 1) {
		if (th_xlsx__node(p, &name) != 1 || strcmp(name, "Relationship") != 0 ||
		    th_xlsx__attr(p, "Target", target, sizeof(target)) == NULL)
			continue;
		if (th_xlsx__attr(p, "Type", type, sizeof(type)) == NULL)
			type[0] = '\0';
		if (th_xlsx__attr(p, "Id", id, sizeof(id)) == NULL)
			id[0] = '\0';
		for (i = 0; i < n; i++)
			if (strncmp(types[i], "Id:", 3) == 0 ? strcmp(types[i] + 3, id) == 0
			                                     : ends_with(type, types[i]))
				resolve(targets[i], sizeof(targets[i]), from, target);
	}
	th_xlsx__part_close(p);
	return rc < 0 ? rc : TH_OK;
}

/* --- the workbook ----------------------------------------------------------------------------- */

/* The sheet named `want` (NULL: the first): its relationship id into rid. */
static int read_workbook(th_xlsx__book *b, char *rid, size_t ridsize, zip_t *zip, const char *part,
                         const char *want, th_error *err)
{
	th_xlsx__part *p = NULL;
	th_buf names = TH_BUF_INIT;
	char name[128], id[128], v[16];
	const char *node;
	size_t nsheets = 0;
	int rc, exact = 0;

	if ((rc = th_xlsx__part_open(&p, zip, part, TH_XLSX_PART_MAX, err)) < 0)
		return rc == TH_ENOTFOUND ? th_error_set(err, TH_EINVALID,
		                                         "the file is not an Xlsx workbook (it has "
		                                         "no '%s')",
		                                         part)
		                          : rc;
	rid[0] = '\0';
	while ((rc = th_xlsx__part_read(p, err)) == 1) {
		if (th_xlsx__node(p, &node) != 1)
			continue;
		if (strcmp(node, "workbookPr") == 0 && th_xlsx__attr(p, "date1904", v, sizeof(v)))
			b->date1904 = strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0;
		if (strcmp(node, "sheet") != 0 || !th_xlsx__attr(p, "name", name, sizeof(name)) ||
		    !th_xlsx__attr(p, "id", id, sizeof(id)))
			continue;
		if (nsheets < 50)
			th_buf_printf(&names, NULL, "%s'%s'", nsheets ? ", " : "", name);
		nsheets++;
		/* The first sheet, or the one named (exactly; else in another case). */
		if (!exact &&
		    (want == NULL ? rid[0] == '\0'
		                  : strcmp(want, name) == 0 ||
		                            (rid[0] == '\0' && strcasecmp(want, name) == 0))) {
			exact = want == NULL || strcmp(want, name) == 0;
			snprintf(rid, ridsize, "%s", id);
			snprintf(b->sheet_name, sizeof(b->sheet_name), "%s", name);
		}
	}
	th_xlsx__part_close(p);
	if (rc == TH_OK && rid[0] == '\0')
		rc = nsheets == 0
		             ? th_error_set(err, TH_EINVALID, "the workbook has no sheets")
		             : th_error_set(err, TH_EINVALID,
		                            "the workbook has no sheet '%.100s'; its sheets are: "
		                            "%.300s%s",
		                            want, names.ptr ? names.ptr : "",
		                            nsheets > 50 ? " ..." : "");
	th_buf_dispose(&names);
	return rc;
}

/* --- number formats --------------------------------------------------------------------------- */

/* What Excel's built-in number format `id` shows a number as. */
static int builtin_kind(long id)
{
	if ((id >= 14 && id <= 17) || (id >= 27 && id <= 31) || id == 36 || (id >= 50 && id <= 58))
		return TH_XLSX_DATE;
	if ((id >= 18 && id <= 21) || (id >= 32 && id <= 35) || (id >= 45 && id <= 47))
		return TH_XLSX_TIME;
	return id == 22 ? TH_XLSX_DATETIME : TH_XLSX_GENERAL;
}

/* What a format code shows a number as: its first section's date (d, y; m without h or s) and
 * time (h, s, [h], [mm], [ss]) letters, outside "quotes", \escapes, _ and * fills and [colors]. */
static int code_kind(const char *code)
{
	int date = 0, time = 0, month = 0;
	const char *p, *q;

	for (p = code; *p && *p != ';'; p++) {
		int c = tolower((unsigned char)*p);
		if (c == '"') {
			if ((q = strchr(p + 1, '"')) == NULL)
				break;
			p = q;
		} else if (c == '\\' || c == '_' || c == '*') {
			if (*++p == '\0')
				break;
		} else if (c == '[') {
			if ((q = strchr(p, ']')) == NULL)
				break;
			c = tolower((unsigned char)p[1]);
			if (q > p + 1 && (c == 'h' || c == 'm' || c == 's') &&
			    strspn(p + 1, c == 'h'   ? "hH"
			                  : c == 'm' ? "mM"
			                             : "sS") == (size_t)(q - p - 1))
				time = 1; /* elapsed time: [h]:mm:ss */
			p = q;
		} else if (c == 'd' || c == 'y') {
			date = 1;
		} else if (c == 'h' || c == 's') {
			time = 1;
		} else if (c == 'm') {
			month = 1; /* a month, or minutes beside h or s */
		}
	}
	if (date || (month && !time))
		return time ? TH_XLSX_DATETIME : TH_XLSX_DATE;
	return time ? TH_XLSX_TIME : TH_XLSX_GENERAL;
}

typedef struct custom_fmt {
	long id;
	int kind;
} custom_fmt;

static int read_styles(th_xlsx__book *b, zip_t *zip, const char *part, th_error *err)
{
	th_xlsx__part *p = NULL;
	custom_fmt *fmts = NULL;
	size_t nfmts = 0, capxf = 0, i;
	char v[32], code[512];
	const char *node;
	int rc, in_xfs = 0, kind;

	if ((rc = th_xlsx__part_open(&p, zip, part, TH_XLSX_PART_MAX, err)) < 0)
		return rc == TH_ENOTFOUND ? TH_OK : rc; /* no styles: every number is general */
	while ((rc = th_xlsx__part_read(p, err)) == 1) {
		int t = th_xlsx__node(p, &node);
		if (t == 2 && strcmp(node, "cellXfs") == 0)
			in_xfs = 0;
		if (t != 1)
			continue;
		if (strcmp(node, "cellXfs") == 0) {
			in_xfs = !xmlTextReaderIsEmptyElement(p->xr);
		} else if (strcmp(node, "numFmt") == 0 &&
		           th_xlsx__attr(p, "numFmtId", v, sizeof(v)) &&
		           th_xlsx__attr(p, "formatCode", code, sizeof(code))) {
			custom_fmt *f = realloc(fmts, (nfmts + 1) * sizeof(*f));
			if (f == NULL) {
				rc = th_error_set(err, TH_ENOMEM, "out of memory");
				break;
			}
			fmts = f;
			fmts[nfmts].id = strtol(v, NULL, 10);
			fmts[nfmts++].kind = code_kind(code);
		} else if (in_xfs && strcmp(node, "xf") == 0) {
			long id = th_xlsx__attr(p, "numFmtId", v, sizeof(v)) ? strtol(v, NULL, 10)
			                                                     : 0;
			if (b->nxf == capxf) {
				unsigned char *k = realloc(b->xf_kind, capxf ? capxf * 2 : 64);
				if (k == NULL) {
					rc = th_error_set(err, TH_ENOMEM, "out of memory");
					break;
				}
				b->xf_kind = k;
				capxf = capxf ? capxf * 2 : 64;
			}
			kind = builtin_kind(id);
			for (i = 0; i < nfmts; i++) /* a custom format may redefine an id */
				if (fmts[i].id == id)
					kind = fmts[i].kind;
			b->xf_kind[b->nxf++] = (unsigned char)kind;
		}
	}
	free(fmts);
	th_xlsx__part_close(p);
	return rc < 0 ? rc : TH_OK;
}

/* --- shared strings --------------------------------------------------------------------------- */

/* Each <si>'s text: its <t>, or the <t> of each rich-text run <r>; never a phonetic hint's
 * (<rPh>). */
static int read_strings(th_xlsx__book *b, zip_t *zip, const char *part, th_error *err)
{
	th_xlsx__part *p = NULL;
	size_t cap = 0;
	const char *node;
	int rc, in_si = 0, in_t = 0, in_rph = 0;

	if ((rc = th_xlsx__part_open(&p, zip, part, TH_XLSX_SST_MAX * 2, err)) < 0)
		return rc == TH_ENOTFOUND ? TH_OK : rc; /* no shared strings: none used */
	while ((rc = th_xlsx__part_read(p, err)) == 1) {
		int t = th_xlsx__node(p, &node),
		    empty = t == 1 && xmlTextReaderIsEmptyElement(p->xr);
		if (t == 3 && in_t && !in_rph) {
			const char *s = (const char *)xmlTextReaderConstValue(p->xr);
			if (s != NULL && (rc = th_buf_puts(&b->sst, s, err)) < 0)
				break;
			if (b->sst.size > TH_XLSX_SST_MAX) {
				rc = th_error_set(
				        err, TH_EINVALID,
				        "the workbook's shared strings are over %llu MiB, more "
				        "than is read into memory: save the sheet as CSV",
				        (unsigned long long)(TH_XLSX_SST_MAX >> 20));
				break;
			}
		} else if (t == 1 && strcmp(node, "si") == 0) {
			if (b->nsst == cap) {
				size_t *o;
				if (b->nsst >= TH_XLSX_SST_COUNT_MAX) {
					rc = th_error_set(
					        err, TH_EINVALID,
					        "the workbook has over %u shared strings: save "
					        "the sheet as CSV",
					        TH_XLSX_SST_COUNT_MAX);
					break;
				}
				if ((o = realloc(b->sst_off,
				                 (cap ? cap * 2 : 1024) * sizeof(*o))) == NULL) {
					rc = th_error_set(err, TH_ENOMEM, "out of memory");
					break;
				}
				b->sst_off = o;
				cap = cap ? cap * 2 : 1024;
			}
			b->sst_off[b->nsst++] = b->sst.size;
			in_si = !empty;
			if (empty && (rc = th_buf_putc(&b->sst, '\0', err)) < 0)
				break;
		} else if (t == 2 && strcmp(node, "si") == 0) {
			in_si = 0;
			if ((rc = th_buf_putc(&b->sst, '\0', err)) < 0)
				break;
		} else if (in_si && strcmp(node, "rPh") == 0 && !empty) {
			in_rph = t == 1;
		} else if (in_si && strcmp(node, "t") == 0 && !empty) {
			in_t = t == 1;
		}
	}
	th_xlsx__part_close(p);
	if (rc == TH_OK && in_si)
		rc = th_error_set(err, TH_EINVALID, "the workbook's shared strings are cut short");
	return rc < 0 ? rc : TH_OK;
}

/* --- the book --------------------------------------------------------------------------------- */

int th_xlsx__book_load(th_xlsx__book *b, zip_t *zip, const char *sheet, th_error *err)
{
	static const char *const pkg_types[] = { "/officeDocument" };
	const char *wb_types[] = { NULL, "/styles", "/sharedStrings" };
	char pkg[1][256] = { "xl/workbook.xml" };
	char wb[3][256] = { "", "xl/styles.xml", "xl/sharedStrings.xml" };
	char rid[128], typed[140];
	int error;

	memset(b, 0, sizeof(*b));
	if ((error = read_rels(zip, "", pkg_types, pkg, 1, err)) < 0 ||
	    (error = read_workbook(b, rid, sizeof(rid), zip, pkg[0], sheet, err)) < 0)
		return error;
	snprintf(typed, sizeof(typed), "Id:%s", rid);
	wb_types[0] = typed;
	if ((error = read_rels(zip, pkg[0], wb_types, wb, 3, err)) < 0)
		return error;
	if (wb[0][0] == '\0')
		return th_error_set(err, TH_EINVALID,
		                    "the workbook is damaged: sheet '%s' has no part",
		                    b->sheet_name);
	snprintf(b->sheet_part, sizeof(b->sheet_part), "%s", wb[0]);
	if ((error = read_styles(b, zip, wb[1], err)) < 0 ||
	    (error = read_strings(b, zip, wb[2], err)) < 0)
		return error;
	return TH_OK;
}

void th_xlsx__book_dispose(th_xlsx__book *b)
{
	free(b->xf_kind);
	free(b->sst_off);
	th_buf_dispose(&b->sst);
	memset(b, 0, sizeof(*b));
}
