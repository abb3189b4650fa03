/* test_xlsx.c: the workbook reader (src/xlsx.c, xlsx_book.c; the table's "Xlsx" format) on
 * workbooks made here with libzip (xlsx_build.h): cells typed from the sheet (numbers, dates and
 * times by their style's number format in both date systems, booleans, shared strings with rich
 * text and phonetic hints, inline strings, formula results, errors), sparse rows and cells, the
 * sheet chosen by name, and every kind of bad file an error that says what is wrong. Then the
 * whole way through `tablehub import` and `query`: the rows and types come back. */
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "xlsx_build.h"
#include "tablehub/buf.h"
#include "tablehub/reader.h"

static char *dir;

/* Styles: cellXfs 0 general, 1 m/d/yyyy (14), 2 m/d/yyyy h:mm (22), 3 a custom date-time, 4 h:mm
 * (20), 5 0.00 (2), 6 a custom format with quoted and bracketed letters that is no date. The
 * cellStyleXfs before them must not count. */
static const char styles[] =
        "<?xml version=\"1.0\"?><styleSheet " XL_MAIN "><numFmts count=\"2\">"
        "<numFmt numFmtId=\"164\" formatCode=\"yyyy\\-mm\\-dd\\ hh:mm\"/>"
        "<numFmt numFmtId=\"165\" formatCode=\"[Red]&quot;day &quot;0.0;[Blue]\\d0\"/>"
        "</numFmts><cellStyleXfs count=\"1\"><xf numFmtId=\"14\"/></cellStyleXfs>"
        "<cellXfs count=\"7\"><xf numFmtId=\"0\"/><xf numFmtId=\"14\" applyNumberFormat=\"1\"/>"
        "<xf numFmtId=\"22\"/><xf numFmtId=\"164\"/><xf numFmtId=\"20\"/><xf numFmtId=\"2\"/>"
        "<xf numFmtId=\"165\"/></cellXfs></styleSheet>";

static const char strings[] =
        "<?xml version=\"1.0\"?><sst " XL_MAIN " count=\"8\" uniqueCount=\"8\">"
        "<si><t>id</t></si><si><t>name</t></si>"
        "<si><r><t>Ca</t></r><r><rPr><b/></rPr><t>rol</t></r></si>"
        "<si><t>\xe6\xbc\xa2\xe5\xad\x97</t><rPh sb=\"0\" eb=\"2\"><t>kanji</t></rPh></si>"
        "<si><t xml:space=\"preserve\"> padded </t></si><si><t/></si>"
        "<si><t>a &amp; b</t></si><si><t>line1\nline2</t></si></sst>";

#define IS(text) " t=\"inlineStr\"><is><t>" text "</t></is></c>"

static const char sheet1[] = XL_SHEET(
        /* the header: shared and inline strings */
        "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c>"
        "<c r=\"C1\"" IS("day") "<c r=\"D1\"" IS("at") "<c r=\"E1\"" IS("custom") "<c r=\"F1\"" IS("clock") "<c r=\"G1\"" IS("ok") "<c r=\"H1\"" IS(
                "v") "<c r=\"I1\"" IS("note") "<c r=\"J1\"" IS("fmt") "</row>"
                                                                      /* dates by style, a boolean,
                                                                         a real, a phonetic hint
                                                                         left out */
                                                                      "<row r=\"2\" "
                                                                      "spans=\"1:10\"><c "
                                                                      "r=\"A2\"><v>1</v></c><c "
                                                                      "r=\"B2\" "
                                                                      "t=\"s\"><v>2</v></c>"
                                                                      "<c r=\"C2\" "
                                                                      "s=\"1\"><v>45352</v></c><c "
                                                                      "r=\"D2\" "
                                                                      "s=\"2\"><v>45352.5</v></c>"
                                                                      "<c r=\"E2\" "
                                                                      "s=\"3\"><v>45352.25</v></"
                                                                      "c><c r=\"F2\" "
                                                                      "s=\"4\"><v>0.75</v></c>"
                                                                      "<c r=\"G2\" "
                                                                      "t=\"b\"><v>1</v></c><c "
                                                                      "r=\"H2\" "
                                                                      "s=\"5\"><v>22."
                                                                      "216666666666665</v></c>"
                                                                      "<c r=\"I2\" "
                                                                      "t=\"s\"><v>3</v></c><c "
                                                                      "r=\"J2\" "
                                                                      "s=\"6\"><v>3</v></c></row>"
                                                                      /* an inline string, a missing
                                                                         cell, a styled empty one,
                                                                         17 digits, a formula */
                                                                      "<row r=\"3\"><c "
                                                                      "r=\"A3\"><v>2</v></c><c "
                                                                      "r=\"B3\"" IS(
                                                                              "Bob") "<c r=\"C3\" "
                                                                                     "s=\"1\"><v>1<"
                                                                                     "/v></c><c "
                                                                                     "r=\"E3\" "
                                                                                     "s=\"3\"/>"
                                                                                     "<c r=\"G3\" "
                                                                                     "t=\"b\"><v>0<"
                                                                                     "/v></c><c "
                                                                                     "r=\"H3\"><v>"
                                                                                     "0."
                                                                                     "1000000000000"
                                                                                     "0001</v></c>"
                                                                                     "<c r=\"I3\" "
                                                                                     "t=\"str\"><f>"
                                                                                     "A3&amp;\"x\"<"
                                                                                     "/f><v>2x</"
                                                                                     "v></c></row>"
                                                                                     /* an empty
                                                                                        row, and one
                                                                                        with only a
                                                                                        styled cell:
                                                                                        skipped */
                                                                                     "<row "
                                                                                     "r=\"4\"/"
                                                                                     "><row "
                                                                                     "r=\"5\"><c "
                                                                                     "r=\"A5\" "
                                                                                     "s=\"1\"/></"
                                                                                     "row>"
                                                                                     /* cells
                                                                                        without
                                                                                        references,
                                                                                        an error
                                                                                        value, a row
                                                                                        cut short */
                                                                                     "<row "
                                                                                     "r=\"6\"><c><"
                                                                                     "v>3</v></"
                                                                                     "c><c "
                                                                                     "t=\"e\"><v>#"
                                                                                     "N/A</v></"
                                                                                     "c><c "
                                                                                     "s=\"1\"><v>"
                                                                                     "61</v></c>"
                                                                                     "<c "
                                                                                     "s=\"2\"><v>"
                                                                                     "45352.0001</"
                                                                                     "v></c><c/><c/"
                                                                                     "><c/"
                                                                                     "><c><v>404</"
                                                                                     "v></c>"
                                                                                     "<c "
                                                                                     "t=\"s\"><v>4<"
                                                                                     "/v></c></row>"
                                                                                     "<row "
                                                                                     "r=\"7\"><c "
                                                                                     "r=\"A7\"><v>"
                                                                                     "4</v></c><c "
                                                                                     "r=\"B7\" "
                                                                                     "t=\"s\"><v>6<"
                                                                                     "/v></c>"
                                                                                     "<c "
                                                                                     "r=\"H7\"><v>"
                                                                                     "1E-3</v></"
                                                                                     "c><c "
                                                                                     "r=\"I7\" "
                                                                                     "t=\"s\"><v>5<"
                                                                                     "/v></c></row>"
                                                                                     "<row "
                                                                                     "r=\"8\"><c "
                                                                                     "r=\"A8\"><v>"
                                                                                     "5</v></c><c "
                                                                                     "r=\"I8\" "
                                                                                     "t=\"s\"><v>7<"
                                                                                     "/v></c>"
                                                                                     "<c "
                                                                                     "r=\"J8\"><!["
                                                                                     "CDATA[x]]></"
                                                                                     "c></row>");

static const char sheet2[] =
        XL_SHEET("<row r=\"1\"><c r=\"A1\"" IS("x") "</row><row r=\"2\"><c r=\"A2\"><v>7</v>"
                                                    "</c></row>");

static void setup(void)
{
	dir = t_mkdtemp();
}

static void teardown(void)
{
	t_rmdir(dir);
	dir = NULL;
}

static const char *path_of(const char *name)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* Read sheet `sheet` of the workbook at `path` as "a|b|NULL @row" lines; returns the reader's
 * last result and the rendering in *out (malloc'd). */
static int read_book(char **out, const char *path, const char *sheet, th_error *err)
{
	th_reader_opts opts;
	th_reader *r = NULL;
	th_reader_row row;
	th_buf b = TH_BUF_INIT;
	size_t i;
	int fd = open(path, O_RDONLY), rc;

	if (fd < 0)
		abort();
	memset(&opts, 0, sizeof(opts));
	opts.sheet = sheet;
	CHECK_OK(th_reader_open_with(&r, th_format_find("Xlsx"), fd, &opts, err), err);
	while ((rc = th_reader_next(r, &row, err)) == 1) {
		for (i = 0; i < row.n; i++) {
			if (i)
				th_buf_putc(&b, '|', NULL);
			if (row.cells[i] == NULL)
				th_buf_puts(&b, "NULL", NULL);
			else
				th_buf_put(&b, row.cells[i], row.lens[i], NULL);
			CHECK(row.cells[i] == NULL || strlen(row.cells[i]) == row.lens[i]);
		}
		th_buf_printf(&b, NULL, " @%llu\n", (unsigned long long)row.line);
	}
	th_reader_close(r);
	close(fd);
	*out = b.ptr ? th_buf_detach(&b) : strdup("");
	return rc;
}

static void write_book(const char *name, int date1904)
{
	xl_book b = { { "Data", "Other Sheet" }, { sheet1, sheet2 }, styles, strings, date1904 };

	xl_write(path_of(name), &b);
}

static void test_cells_typed(void)
{
	th_error err = { 0 };
	char *got = NULL;

	setup();
	write_book("book.xlsx", 0);
	CHECK(read_book(&got, path_of("book.xlsx"), NULL, &err) == 0);
	CHECK_STR(got, "id|name|day|at|custom|clock|ok|v|note|fmt @1\n"
	               "1|Carol|2024-03-01|2024-03-01 12:00:00|2024-03-01 06:00:00|18:00:00|true|"
	               "22.216666666666665|\xe6\xbc\xa2\xe5\xad\x97|3 @2\n"
	               "2|Bob|1900-01-01|NULL|NULL|NULL|false|0.1|2x|NULL @3\n"
	               "3|#N/A|1900-03-01|2024-03-01 00:00:08.640|NULL|NULL|NULL|404| padded |NULL "
	               "@6\n"
	               "4|a & b|NULL|NULL|NULL|NULL|NULL|0.001||NULL @7\n"
	               "5|NULL|NULL|NULL|NULL|NULL|NULL|NULL|line1\nline2|NULL @8\n");
	free(got);

	/* the 1904 date system: serial 0 is 1904-01-01 */
	write_book("b1904.xlsx", 1);
	CHECK(read_book(&got, path_of("b1904.xlsx"), NULL, &err) == 0);
	CHECK_CONTAINS(got, "2|Bob|1904-01-02|");
	CHECK_CONTAINS(got, "1|Carol|2028-03-02|2028-03-02 12:00:00|");
	free(got);
	teardown();
}

static void test_sheet_by_name(void)
{
	th_error err = { 0 };
	char *got = NULL;

	setup();
	write_book("book.xlsx", 0);
	CHECK(read_book(&got, path_of("book.xlsx"), "Other Sheet", &err) == 0);
	CHECK_STR(got, "x @1\n7 @2\n");
	free(got);
	CHECK(read_book(&got, path_of("book.xlsx"), "other sheet", &err) == 0);
	CHECK_STR(got, "x @1\n7 @2\n");
	free(got);
	CHECK(read_book(&got, path_of("book.xlsx"), "Nope", &err) == TH_EINVALID);
	CHECK_STR(err.msg,
	          "the workbook has no sheet 'Nope'; its sheets are: 'Data', 'Other Sheet'");
	free(got);
	teardown();
}

/* A row wider than the header comes back as it is (the import refuses it, naming the row). */
static void test_wide_row(void)
{
	xl_book b = { { "S" },
		      { XL_SHEET("<row r=\"1\"><c r=\"A1\"" IS(
		              "a") "</row>"
		                   "<row r=\"2\"><c r=\"A2\"><v>1</v></c><c "
		                   "r=\"C2\"><v>3</v></c></row>") },
		      NULL,
		      NULL,
		      0 };
	th_error err = { 0 };
	char *got = NULL;

	setup();
	xl_write(path_of("w.xlsx"), &b);
	CHECK(read_book(&got, path_of("w.xlsx"), NULL, &err) == 0);
	CHECK_STR(got, "a @1\n1|NULL|3 @2\n");
	free(got);
	teardown();
}

static void expect_error(const char *path, const char *msg, uint64_t line)
{
	th_error err = { 0 };
	char *got = NULL;

	CHECK(read_book(&got, path, NULL, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, msg);
	CHECK(err.line == line);
	if (err.line != line)
		fprintf(stderr, "  line %llu for %s\n", (unsigned long long)err.line, msg);
	free(got);
}

static void test_bad_files(void)
{
	xl_book bad_xml = { { "S" },
		            { XL_SHEET(
		                    "<row r=\"1\"><c r=\"A1\"" IS("a") "</row><row r=\"2\"><c>") },
		            NULL,
		            NULL,
		            0 };
	xl_book bad_sst = { { "S" },
		            { XL_SHEET("<row r=\"1\"><c r=\"A1\" t=\"s\"><v>8</v></c></row>") },
		            NULL,
		            strings,
		            0 };
	xl_book no_sst = { { "S" },
		           { XL_SHEET("<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row>") },
		           NULL,
		           NULL,
		           0 };
	xl_book far = { { "S" },
		        { XL_SHEET("<row r=\"1\"><c r=\"XFE1\"><v>1</v></c></row>") },
		        NULL,
		        NULL,
		        0 };
	xl_book empty = { { NULL }, { NULL }, NULL, NULL, 0 };
	int p[2];
	th_reader *r = NULL;
	th_reader_row row;
	th_error err = { 0 };
	int error = 0;
	zip_t *z;

	setup();
	t_write_file(path_of("a.xlsx"), "id,name\n1,a\n", 12);
	expect_error(path_of("a.xlsx"), "the file is not an Xlsx workbook (not a zip archive)", 1);
	z = zip_open(path_of("b.xlsx"), ZIP_CREATE | ZIP_TRUNCATE, &error);
	xl_add(z, "hello.txt", "hi");
	zip_close(z);
	expect_error(path_of("b.xlsx"),
	             "the file is not an Xlsx workbook (it has no "
	             "'xl/workbook.xml')",
	             1);
	xl_write(path_of("c.xlsx"), &bad_xml);
	/* (the row of an XML error is the last row read: the parser reads ahead) */
	expect_error(path_of("c.xlsx"),
	             "part 'xl/worksheets/sheet1.xml' of the workbook is not "
	             "valid XML (line 2: ",
	             1);
	xl_write(path_of("d.xlsx"), &bad_sst);
	expect_error(path_of("d.xlsx"),
	             "line 1, column 1: the workbook is damaged: a cell refers "
	             "to a missing shared string",
	             1);
	xl_write(path_of("e.xlsx"), &no_sst);
	expect_error(path_of("e.xlsx"), "a missing shared string", 1);
	xl_write(path_of("f.xlsx"), &far);
	expect_error(path_of("f.xlsx"), "a cell lies past the last column (XFD)", 1);
	xl_write(path_of("g.xlsx"), &empty);
	expect_error(path_of("g.xlsx"), "the workbook has no sheets", 1);

	/* libzip reads by seeking: a pipe is refused with a message, not a crash */
	if (pipe(p) != 0 || write(p[1], "PK\3\4", 4) != 4)
		abort();
	close(p[1]);
	CHECK_OK(th_reader_open(&r, th_format_find("xlsx"), p[0], NULL, 0, &err), &err);
	CHECK(th_reader_next(r, &row, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "must be read from a file, not a pipe");
	th_reader_close(r);
	close(p[0]);
	teardown();
}

/* Through `tablehub import` (the format from the extension) and `query`: rows and types. */
static void test_import_roundtrip(void)
{
	char *out = NULL;

	setup();
	write_book("book.xlsx", 0);
	CHECK(t_sh(NULL, "%s db create --data %s/d alice/db >/dev/null 2>&1", TH_BIN, dir) == 0);
	CHECK(t_sh(&out, "%s import --data %s/d alice/db --table t --pk id %s 2>&1", TH_BIN, dir,
	           path_of("book.xlsx")) == 0);
	CHECK_CONTAINS(out, "rows added: 5");
	free(out);
	CHECK(t_sh(&out,
	           "%s query --data %s/d --csv alice/db main 'SELECT typeof(id), typeof(day), "
	           "typeof(at), typeof(ok), typeof(v), day, ok, v FROM t WHERE id = 1' 2>&1",
	           TH_BIN, dir) == 0);
	CHECK_STR(out, "typeof(id),typeof(day),typeof(at),typeof(ok),typeof(v),day,ok,v\n"
	               "integer,text,text,integer,real,2024-03-01,true,22.216666666666665\n");
	free(out);
	CHECK(t_sh(&out, "%s query --data %s/d --json alice/db main 'SELECT * FROM t LIMIT 0' 2>&1",
	           TH_BIN, dir) == 0);
	CHECK_CONTAINS(out, "{\"columnName\":\"day\",\"columnType\":\"date\"},"
	                    "{\"columnName\":\"at\",\"columnType\":\"datetime\"}");
	CHECK_CONTAINS(out, "{\"columnName\":\"ok\",\"columnType\":\"boolean\"},"
	                    "{\"columnName\":\"v\",\"columnType\":\"real\"}");
	free(out);
	/* the second sheet by name; nullValues over a workbook's error values */
	CHECK(t_sh(&out,
	           "%s import --data %s/d alice/db --table o --sheet 'Other Sheet' %s 2>&1 && "
	           "%s import --data %s/d alice/db --table n --null '#N/A' %s 2>&1 && "
	           "%s query --data %s/d --csv alice/db main "
	           "'SELECT (SELECT x FROM o), (SELECT count(*) FROM n WHERE name IS NULL)' 2>&1",
	           TH_BIN, dir, path_of("book.xlsx"), TH_BIN, dir, path_of("book.xlsx"), TH_BIN,
	           dir) == 0);
	CHECK_CONTAINS(out, "\n7,2\n");
	free(out);
	teardown();
}

int main(void)
{
	RUN(test_cells_typed);
	RUN(test_sheet_by_name);
	RUN(test_wide_row);
	RUN(test_bad_files);
	RUN(test_import_roundtrip);
	TH_TEST_END();
}
