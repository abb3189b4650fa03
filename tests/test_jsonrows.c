/* test_jsonrows.c: the JSON row reader (src/jsonrows.c, the table's "Json" format): DoltHub's
 * {"rows":[...]} form (other keys skipped), an array of rows, JSON lines; the header from the keys
 * of all rows; cells as text; every malformed input an error with its line and column; large input
 * streamed across read blocks. */
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "tablehub/buf.h"
#include "tablehub/reader.h"

/* Errors point at the value a problem was found in (a key's problem: its value). */

/* Read all of `json` and render the records as "a|b|NULL\n" lines; returns the reader's last
 * result (0 at a clean end) and the rendering in *out (malloc'd). */
static int read_all(char **out, const char *json, size_t len, th_error *err)
{
	char path[] = "/tmp/th-json-XXXXXX";
	int fd = mkstemp(path), rc;
	th_reader *r = NULL;
	th_reader_row row;
	th_buf b = TH_BUF_INIT;
	size_t i;

	if (fd < 0 || write(fd, json, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	unlink(path);
	CHECK_OK(th_reader_open(&r, th_format_find("Json"), fd, NULL, 0, err), err);
	while ((rc = th_reader_next(r, &row, err)) == 1) {
		for (i = 0; i < row.n; i++) {
			if (i)
				th_buf_putc(&b, '|', NULL);
			if (row.cells[i] == NULL)
				th_buf_puts(&b, "NULL", NULL);
			else
				th_buf_put(&b, row.cells[i], row.lens[i], NULL);
		}
		th_buf_printf(&b, NULL, " @%llu\n", (unsigned long long)row.line);
	}
	if (rc == TH_EINVALID) { /* the reader tells where its error is, as the error does */
		uint64_t line;
		uint32_t column;
		th_reader_error_pos(r, &line, &column);
		CHECK(line == err->line && column == err->column);
	}
	th_reader_close(r);
	close(fd);
	*out = b.ptr ? th_buf_detach(&b) : strdup("");
	return rc;
}

static void expect_rows(const char *json, const char *want)
{
	th_error err;
	char *got = NULL;

	th_error_clear(&err);
	CHECK(read_all(&got, json, strlen(json), &err) == 0);
	if (err.msg[0])
		fprintf(stderr, "  error: %s\n", err.msg);
	CHECK_STR(got, want);
	free(got);
}

static void expect_error(const char *json, const char *msg, uint64_t line, uint32_t column)
{
	th_error err;
	char *got = NULL;

	th_error_clear(&err);
	CHECK(read_all(&got, json, strlen(json), &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, msg);
	CHECK(err.line == line);
	if (err.line != line || err.column != column)
		fprintf(stderr, "  got line %llu column %u for %s\n", (unsigned long long)err.line,
		        err.column, msg);
	CHECK(err.column == column);
	free(got);
}

static void test_forms(void)
{
	/* DoltHub's wrapper; other keys before and after are skipped */
	expect_rows("{\"rows\":[{\"id\":1,\"name\":\"a\"},\n{\"name\":\"b\",\"id\":2}],\"x\":{"
	            "\"y\":[1]}}",
	            "id|name @1\n1|a @1\n2|b @2\n");
	/* an array of rows */
	expect_rows("[ {\"id\":1}, {\"id\":2} ]", "id @1\n1 @1\n2 @1\n");
	/* JSON lines, blank lines and CRLF between them */
	expect_rows("{\"id\":1,\"v\":\"x\"}\r\n\r\n{\"id\":2}\n{\"v\":\"z\",\"id\":3}\n",
	            "id|v @1\n1|x @1\n2|NULL @3\n3|z @4\n");
	/* a BOM, and an empty array: no records at all */
	expect_rows("\xef\xbb\xbf[{\"a\":1}]", "a @1\n1 @1\n");
	expect_rows("[]", "");
	expect_rows("{\"rows\":[]}", "");
	expect_rows("", "");
}

static void test_cells(void)
{
	/* numbers as written, booleans, null, "" kept, nested values as compact JSON */
	expect_rows("[{\"i\":-0,\"r\":1.50,\"e\":2E-3,\"t\":true,\"f\":false,\"n\":null,\"s\":\"\","
	            "\"o\":{ \"k\" : [1, \"a\\\"b\", null] }}]",
	            "i|r|e|t|f|n|s|o @1\n-0|1.50|2E-3|true|false|NULL||{\"k\":[1,\"a\\\"b\",null]} "
	            "@1\n");
	/* escapes and surrogate pairs become UTF-8 */
	expect_rows("[{\"s\":\"a\\n\\t\\\\\\/\\u00e9\\ud83d\\ude00\"}]",
	            "s @1\na\n\t\\/\xc3\xa9\xf0\x9f\x98\x80 @1\n");
	/* empty strings, as a value and as the first thing a row holds (found by fuzzing) */
	expect_rows("[{\"a\":\"\",\"b\":\"\"}]", "a|b @1\n| @1\n");
	/* a key given as null in the first row is still a column */
	expect_rows("[{\"a\":null,\"b\":1},{\"b\":2}]", "a|b @1\nNULL|1 @1\nNULL|2 @1\n");
}

static void test_errors(void)
{
	expect_error("[{\"a\":1,\"a\":2}]", "key 'a' given twice in one row", 1, 13);
	expect_error("[{\"a\":1},{\"a\":2,\"a\":3}]", "key 'a' given twice in one row", 1, 21);
	expect_error("[{\"a\":tru}]", "expected a value", 1, 10);
	expect_error("[{\"a\":}]", "expected a value", 1, 7); /* the first value of a row */
	expect_error("[{\"a\":01}]", "bad number", 1, 9);
	expect_error("[{\"a\":\"x}]", "unterminated string", 1, 11);
	expect_error("[{\"a\":\"x\ny\"}]", "control character in a string", 1, 9);
	expect_error("[{\"a\":\"\\ud800\"}]", "lone high surrogate", 1, 14);
	expect_error("[{\"a\":\"\\q\"}]", "bad escape", 1, 10);
	expect_error("[{\"a\":\"\xff\"}]", "invalid UTF-8", 1, 10);
	expect_error("[1,2]", "each row must be a JSON object", 1, 2);
	expect_error("[{\"a\":1} {\"a\":2}]", "expected ',' or ']' after a row", 1, 10);
	expect_error("[{\"a\":1}] x", "unexpected text after the rows", 1, 11);
	expect_error("{}", "the first row has no keys", 1, 2);
	expect_error("[\n{}]", "line 2: the first row has no keys", 2, 1); /* found by fuzzing */
	expect_error("hello", "expected '{' or '['", 1, 1);
	expect_error("{\"a\":1}\n[2]", "expected '{' to start the next row", 2, 1);
	{
		/* nesting beyond the limit is refused, not a stack overflow */
		th_buf deep = TH_BUF_INIT;
		int i;
		th_buf_puts(&deep, "[{\"a\":", NULL);
		for (i = 0; i < 100000; i++)
			th_buf_putc(&deep, '[', NULL);
		expect_error(deep.ptr, "values nested too deeply", 1, 70);
		th_buf_dispose(&deep);
	}
}

/* 30,000 rows in JSON lines: far more than one read block, every row whole and in order. */
static void test_streaming(void)
{
	th_buf json = TH_BUF_INIT, want = TH_BUF_INIT;
	th_error err;
	char *got = NULL;
	int i;

	th_buf_puts(&want, "id|text @1\n", NULL);
	for (i = 1; i <= 30000; i++) {
		th_buf_printf(&json, NULL,
		              "{\"id\":%d,\"text\":\"row %d \\\"quoted\\\" padding padding\"}\n", i,
		              i);
		th_buf_printf(&want, NULL, "%d|row %d \"quoted\" padding padding @%d\n", i, i, i);
	}
	th_error_clear(&err);
	CHECK(read_all(&got, json.ptr, json.size, &err) == 0);
	CHECK(got && strcmp(got, want.ptr) == 0);
	free(got);
	th_buf_dispose(&json);
	th_buf_dispose(&want);
}

/* Columns given by the caller (an existing table's): rows give any subset; others are refused. */
static void test_given_columns(void)
{
	static const char *const cols[] = { "id", "name", "qty" };
	const char *json = "{\"qty\":3,\"id\":1}\n{\"name\":\"b\",\"id\":2}\n{\"id\":3,\"x\":1}\n";
	char path[] = "/tmp/th-json-XXXXXX";
	int fd = mkstemp(path);
	th_reader *r = NULL;
	th_reader_row row;
	th_error err;

	if (fd < 0 || write(fd, json, strlen(json)) != (ssize_t)strlen(json) ||
	    lseek(fd, 0, SEEK_SET) != 0)
		abort();
	unlink(path);
	CHECK_OK(th_reader_open(&r, th_format_find("Json"), fd, cols, 3, &err), &err);
	CHECK(th_reader_next(r, &row, &err) == 1); /* the header: the given columns */
	CHECK(row.n == 3 && strcmp(row.cells[0], "id") == 0 && strcmp(row.cells[2], "qty") == 0);
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK(row.n == 3 && strcmp(row.cells[0], "1") == 0 && row.cells[1] == NULL &&
	      strcmp(row.cells[2], "3") == 0);
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK(strcmp(row.cells[0], "2") == 0 && strcmp(row.cells[1], "b") == 0 &&
	      row.cells[2] == NULL);
	CHECK(th_reader_next(r, &row, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "line 3, column 13: key 'x' is not a column of the table");
	th_reader_close(r);
	close(fd);
}

/* Rows whose keys are not all in the first row: the header is the union of all rows' keys (the
 * first row's in order, then each new one where it first appears), a missing key NULL. Read from
 * a pipe, which cannot be read twice, a later row's new key is an error that says why. */
static void test_union_of_keys(void)
{
	const char *lines = "{\"a\":1}\n{\"a\":2,\"b\":3}\n{\"c\":\"x\",\"b\":4}\n";
	int p[2];
	th_reader *r = NULL;
	th_reader_row row;
	th_error err;

	expect_rows("[{\"a\":1},\n {\"a\":2,\"b\":3}]", "a|b @1\n1|NULL @1\n2|3 @2\n");
	expect_rows(lines, "a|b|c @1\n1|NULL|NULL @1\n2|3|NULL @2\nNULL|4|x @3\n");
	expect_rows("{\"rows\":[{},{\"z\":1}]}", "z @1\nNULL @1\n1 @1\n");
	/* a malformed file is reported where it is, once, as before */
	expect_error("[{\"a\":1},\n {\"b\":2,\"b\":3}]", "key 'b' given twice in one row", 2, 13);
	expect_error("[{\"a\":1},\n {\"b\":2}, x]", "each row must be a JSON object", 2, 11);

	if (pipe(p) != 0 || write(p[1], lines, strlen(lines)) != (ssize_t)strlen(lines))
		abort();
	close(p[1]);
	CHECK_OK(th_reader_open(&r, th_format_find("Json"), p[0], NULL, 0, &err), &err);
	CHECK(th_reader_next(r, &row, &err) == 1 && row.n == 1); /* the first row's keys */
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK(th_reader_next(r, &row, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "line 2, column 12: key 'b' is not a column (read from a pipe");
	th_reader_close(r);
	close(p[0]);
}

/* A file in UTF-16 (with or without its byte-order mark) says so. */
static void test_utf16(void)
{
	static const char le[] = "[\0{\0\"\0a\0\"\0:\0\x31\0}\0]\0";
	static const char bom[] = "\xff\xfe[\0{\0}\0]\0";
	th_error err;
	char *got = NULL;

	th_error_clear(&err);
	CHECK(read_all(&got, le, sizeof(le) - 1, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "line 1, column 1: the file looks like UTF-16 text: save it as "
	                        "UTF-8");
	free(got);
	th_error_clear(&err);
	CHECK(read_all(&got, bom, sizeof(bom) - 1, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "looks like UTF-16");
	free(got);
}

int main(void)
{
	RUN(test_forms);
	RUN(test_cells);
	RUN(test_errors);
	RUN(test_streaming);
	RUN(test_given_columns);
	RUN(test_union_of_keys);
	RUN(test_utf16);
	TH_TEST_END();
}
