/* test_csv.c: the CSV reader (src/csv.c, th_reader_csv through the format table): RFC 4180 quoting,
 * line ends, BOM, NULL versus "", delimiters, line numbers, UTF-8 validation, malformed input with
 * its line and column, large files across many blocks, and reading from a pipe. Records are
 * compared through a one-line text dump per record ("<line>: cell|cell", NULL as \N) against what a
 * reader of the file expects. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "harness.h"
#include "util.h"
#include "tablehub/buf.h"
#include "tablehub/reader.h"
#include "tablehub/text.h"

/* The CSV reader on fd with any delimiter (the table's formats use ',', '|' and '\t'). */
static int csv_open(th_reader **out, int fd, char delim, th_error *err)
{
	th_reader_opts opts = { .delim = delim };

	return th_format_find("Csv")->reader->open(out, fd, &opts, err);
}

/* An unlinked temporary file holding `data`, opened for reading. */
static int temp_fd(const char *data, size_t len)
{
	char path[] = "/tmp/th-csv-XXXXXX";
	int fd = mkstemp(path);
	size_t off = 0;

	if (fd < 0)
		abort();
	unlink(path);
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

static void dump_cell(th_buf *b, const char *s, size_t len)
{
	size_t i;

	if (s == NULL) {
		th_buf_puts(b, "\\N", NULL);
		return;
	}
	CHECK(s[len] == '\0');
	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '\n':
			th_buf_puts(b, "\\n", NULL);
			break;
		case '\r':
			th_buf_puts(b, "\\r", NULL);
			break;
		case '|':
			th_buf_puts(b, "\\|", NULL);
			break;
		case '\\':
			th_buf_puts(b, "\\\\", NULL);
			break;
		default:
			th_buf_putc(b, s[i], NULL);
		}
	}
}

/* Read every record of fd into the dump; the last line is "error: <msg>" on failure. */
static char *dump_fd(int fd, char delim, int *rc_out, th_error *err)
{
	th_buf b = TH_BUF_INIT;
	th_reader *csv = NULL;
	th_reader_row row;
	int rc;

	th_error_clear(err);
	if (csv_open(&csv, fd, delim, err) < 0)
		abort();
	while ((rc = th_reader_next(csv, &row, err)) == 1) {
		size_t i;
		th_buf_printf(&b, NULL, "%llu: ", (unsigned long long)row.line);
		for (i = 0; i < row.n; i++) {
			if (i)
				th_buf_putc(&b, '|', NULL);
			dump_cell(&b, row.cells[i], row.lens[i]);
			if (row.cells[i] == NULL)
				CHECK(row.lens[i] == 0);
		}
		th_buf_putc(&b, '\n', NULL);
	}
	if (rc < 0) {
		uint64_t line;
		uint32_t column;
		th_buf_printf(&b, NULL, "error: %s\n", err->msg);
		/* the reader tells where its error is, as the error does */
		th_reader_error_pos(csv, &line, &column);
		CHECK(rc != TH_EINVALID || (line == err->line && column == err->column));
	} else
		CHECK(th_reader_next(csv, &row, err) == 0); /* the end stays the end */
	th_reader_close(csv);
	*rc_out = rc;
	if (b.ptr == NULL)
		th_buf_puts(&b, "", NULL);
	return th_buf_detach(&b);
}

static char *dump_str(const char *data, char delim, int *rc, th_error *err)
{
	int fd = temp_fd(data, strlen(data));
	char *out = dump_fd(fd, delim, rc, err);

	close(fd);
	return out;
}

/* Parse `data` and compare with `expect`; the parse must succeed. */
#define EXPECT_DUMP(data, delim, expect)                                                           \
	do {                                                                                       \
		th_error e_;                                                                       \
		int rc_;                                                                           \
		char *d_ = dump_str((data), (delim), &rc_, &e_);                                   \
		CHECK(rc_ == 0);                                                                   \
		CHECK_STR(d_, (expect));                                                           \
		free(d_);                                                                          \
	} while (0)

/* Parse `data`, expect the records in `expect` and then an error. */
#define EXPECT_ERROR(data, delim, expect, line_, col_)                                             \
	do {                                                                                       \
		th_error e_;                                                                       \
		int rc_;                                                                           \
		char *d_ = dump_str((data), (delim), &rc_, &e_);                                   \
		CHECK(rc_ == TH_EINVALID);                                                         \
		CHECK(e_.code == TH_EINVALID);                                                     \
		CHECK_STR(d_, (expect));                                                           \
		CHECK(e_.line == (line_));                                                         \
		CHECK(e_.column == (col_));                                                        \
		free(d_);                                                                          \
	} while (0)

static void test_quoting(void)
{
	EXPECT_DUMP("a,b,c\n\"x, y\",\"he said \"\"hi\"\"\",\"line1\nline2\"\nplain,\"\"\"\",z\n",
	            ',',
	            "1: a|b|c\n"
	            "2: x, y|he said \"hi\"|line1\\nline2\n"
	            "4: plain|\"|z\n");
	/* spaces are data, inside and around fields */
	EXPECT_DUMP("a,b\n  x , y \n", ',', "1: a|b\n2:   x | y \n");
	/* but a quote after a space does not open a quoted field (RFC 4180 has no spaces there) */
	EXPECT_ERROR("a,b\n1, \"q\"\n", ',',
	             "1: a|b\nerror: line 2, column 2: unexpected '\"' in unquoted field\n", 2, 2);
	/* a quoted CR LF inside a field is kept as data */
	EXPECT_DUMP("a\n\"x\r\ny\"\n", ',', "1: a\n2: x\\r\\ny\n");
}

static void test_line_ends(void)
{
	EXPECT_DUMP("a,b\r\n1,2\r\n", ',', "1: a|b\n2: 1|2\n");
	EXPECT_DUMP("a,b\n1,2\n", ',', "1: a|b\n2: 1|2\n");
	EXPECT_DUMP("a,b\r\n1,2\n3,4\r\n5,6", ',', "1: a|b\n2: 1|2\n3: 3|4\n4: 5|6\n");
	/* old Mac CR-only line ends */
	EXPECT_DUMP("a,b\r1,2\r", ',', "1: a|b\n2: 1|2\n");
}

static void test_bom(void)
{
	EXPECT_DUMP("\xef\xbb\xbfid,name\n1,x\n", ',', "1: id|name\n2: 1|x\n");
	EXPECT_DUMP("\xef\xbb\xbf", ',', "");
	/* a BOM anywhere else is data */
	EXPECT_DUMP("a,\xef\xbb\xbf"
	            "b\n",
	            ',',
	            "1: a|\xef\xbb\xbf"
	            "b\n");
}

static void test_null_vs_empty(void)
{
	EXPECT_DUMP("a,b,c\n,\"\",x\n1,,\n\"\",\"\",\"\"\n", ',',
	            "1: a|b|c\n2: \\N||x\n3: 1|\\N|\\N\n4: ||\n");
}

static void test_unicode(void)
{
	th_error err;
	th_reader *csv;
	th_reader_row row;
	static const char data[] = "名前,emoji\n日本,\"😀 ok\"\n";
	int fd = temp_fd(data, strlen(data));

	CHECK_OK(csv_open(&csv, fd, ',', &err), &err);
	CHECK(th_reader_next(csv, &row, &err) == 1);
	CHECK(row.n == 2);
	CHECK_STR(row.cells[0], "名前");
	CHECK(row.lens[0] == 6);
	CHECK(th_reader_next(csv, &row, &err) == 1);
	CHECK_STR(row.cells[1], "\xf0\x9f\x98\x80 ok");
	CHECK(row.lens[1] == 7);
	CHECK(row.line == 2);
	CHECK(th_reader_next(csv, &row, &err) == 0);
	CHECK(th_reader_bytes(csv) == strlen(data));
	th_reader_close(csv);
	close(fd);
}

static void test_delimiters(void)
{
	EXPECT_DUMP("a|b|c\n1|\"x|y\"|a,b\n", '|', "1: a|b|c\n2: 1|x\\|y|a,b\n");
	/* TSV: tabs delimit, spaces and commas are data, empty fields are NULL */
	EXPECT_DUMP("a\tb\tc\n1\t  spaced \t\n\"t\tq\"\tx,y\t\n", '\t',
	            "1: a|b|c\n2: 1|  spaced |\\N\n3: t\tq|x,y|\\N\n");
}

static void test_line_numbers(void)
{
	EXPECT_DUMP("h1,h2\n"                 /* 1 */
	            "\"multi\nline\",x\n"     /* 2-3 */
	            "\n"                      /* 4 */
	            "\r\n"                    /* 5 */
	            "next,1\r\n"              /* 6 */
	            "\"a\r\nb\",\"c\n\nd\"\n" /* 7-10 */
	            "\n"                      /* 11 */
	            "3,4\n",                  /* 12 */
	            ',', "1: h1|h2\n2: multi\\nline|x\n6: next|1\n7: a\\r\\nb|c\\n\\nd\n12: 3|4\n");
	/* leading blank lines count too */
	EXPECT_DUMP("\n\na\n", ',', "3: a\n");
}

static void test_utf8_valid(void)
{
	size_t bad = 99;

	CHECK(th_utf8_valid("plain ascii text!", 17, &bad));
	CHECK(th_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, &bad)); /* é € 😀 */
	CHECK(th_utf8_valid("\xf4\x8f\xbf\xbf", 4, &bad));                     /* U+10FFFF */
	CHECK(!th_utf8_valid("ab\xc0\xaf", 4, &bad) && bad == 2);              /* overlong '/' */
	CHECK(!th_utf8_valid("\xe0\x80\xaf", 3, &bad) && bad == 0);     /* overlong, 3 bytes */
	CHECK(!th_utf8_valid("\xf0\x80\x80\xaf", 4, &bad) && bad == 0); /* overlong, 4 bytes */
	CHECK(!th_utf8_valid("x\x80", 2, &bad) && bad == 1);            /* lone continuation */
	CHECK(!th_utf8_valid("\xed\xa0\x80", 3, &bad) && bad == 0);     /* surrogate D800 */
	CHECK(!th_utf8_valid("\xf4\x90\x80\x80", 4, &bad) && bad == 0); /* U+110000 */
	CHECK(!th_utf8_valid("\xf5\x80\x80\x80", 4, &bad) && bad == 0);
	CHECK(!th_utf8_valid("0123456789\xe2\x82", 12, &bad) && bad == 10); /* truncated */
	CHECK(!th_utf8_valid("\xc3(", 2, &bad) && bad == 0);                /* bad continuation */
}

static void test_invalid_utf8(void)
{
	th_error err;
	int rc;
	char *d;

	/* overlong: the records before it come first, then the error names line 3, column 2 */
	EXPECT_ERROR(
	        "a,b\n1,ok\n2,x\xc0\xafy\n4,z\n", ',',
	        "1: a|b\n2: 1|ok\nerror: line 3, column 2: invalid UTF-8 at byte 2 of the value\n",
	        3, 2);
	d = dump_str("a,b\n1,ok\n2,x\xc0\xafy\n", ',', &rc, &err);
	CHECK_STR(err.msg, "line 3, column 2: invalid UTF-8 at byte 2 of the value");
	free(d);
	/* a lone continuation byte in the header */
	EXPECT_ERROR("id,\x80name\n", ',',
	             "error: line 1, column 2: invalid UTF-8 at byte 1 of the value\n", 1, 2);
	/* the bad byte's own line inside a multi-line quoted field */
	d = dump_str("a,b\n1,\"l1\nl2\xff\"\n", ',', &rc, &err);
	CHECK(rc == TH_EINVALID && err.line == 3 && err.column == 2);
	CHECK_STR(err.msg, "line 3, column 2: invalid UTF-8 at byte 6 of the value");
	free(d);
	/* a sequence truncated by the end of the file */
	d = dump_str("a,b\n1,\xe2\x82", ',', &rc, &err);
	CHECK(rc == TH_EINVALID && err.line == 2 && err.column == 2);
	CHECK_STR(err.msg, "line 2, column 2: invalid UTF-8 at byte 1 of the value");
	CHECK_STR(d, "1: a|b\nerror: line 2, column 2: invalid UTF-8 at byte 1 of the value\n");
	free(d);
}

static void test_malformed(void)
{
	th_error err;
	int rc;
	char *d;

	d = dump_str("a,b\n1,2\n3,\"open\nmore\n", ',', &rc, &err);
	CHECK(rc == TH_EINVALID && err.line == 3 && err.column == 2);
	CHECK_STR(err.msg, "line 3, column 2: unterminated quoted field");
	CHECK_STR(d, "1: a|b\n2: 1|2\nerror: line 3, column 2: unterminated quoted field\n");
	free(d);

	d = dump_str("a,b\n1,2\nx,y\"z\n", ',', &rc, &err);
	CHECK(rc == TH_EINVALID && err.line == 3 && err.column == 2);
	CHECK_STR(err.msg, "line 3, column 2: unexpected '\"' in unquoted field");
	CHECK_STR(d,
	          "1: a|b\n2: 1|2\nerror: line 3, column 2: unexpected '\"' in unquoted field\n");
	free(d);

	/* text after a closing quote, in a field that started two lines earlier */
	d = dump_str("a,b\n1,\"x\n\ny\"z\n", ',', &rc, &err);
	CHECK(rc == TH_EINVALID && err.line == 4 && err.column == 2);
	CHECK_STR(err.msg, "line 4, column 2: unexpected 'z' after a closing quote");
	free(d);
}

static void test_header_only_and_empty(void)
{
	EXPECT_DUMP("a,b,c\n", ',', "1: a|b|c\n");
	EXPECT_DUMP("a,b,c", ',', "1: a|b|c\n");
	EXPECT_DUMP("", ',', "");
	EXPECT_DUMP("\n\r\n\n", ',', "");
	/* records of different lengths come back as they are */
	EXPECT_DUMP("a,b\n1\n1,2,3\n", ',', "1: a|b\n2: 1\n3: 1|2|3\n");
	/* found by fuzz_csv: a first record still open at the end of the first block whose cells so
	 * far are all NULL (no arena allocated yet) */
	EXPECT_DUMP(",\x7f", ',', "1: \\N|\x7f\n");
	EXPECT_DUMP(",,x", ',', "1: \\N|\\N|x\n");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 200,000 rows across many 256 KiB blocks; every 997th row has a quoted field over two lines so
 * line numbers must carry across block boundaries. */
static void test_large_file(void)
{
	th_buf data = TH_BUF_INIT;
	th_error err;
	th_reader *csv;
	th_reader_row row;
	uint64_t line = 2, count = 0;
	int fd, rc, ok = 1;
	size_t i;
	double t0;

	th_buf_puts(&data, "id,name,score,note\n", NULL);
	for (i = 0; i < 200000; i++) {
		if (i % 997 == 0)
			th_buf_printf(&data, NULL, "%zu,\"name %zu\",%zu.5,\"two\nlines\"\n", i, i,
			              i * 3);
		else
			th_buf_printf(&data, NULL, "%zu,name %zu,%zu.5,\n", i, i, i * 3);
	}
	fd = temp_fd(data.ptr, data.size);
	t0 = now();
	CHECK_OK(csv_open(&csv, fd, ',', &err), &err);
	CHECK(th_reader_next(csv, &row, &err) == 1 && row.n == 4 &&
	      strcmp(row.cells[3], "note") == 0);
	while ((rc = th_reader_next(csv, &row, &err)) == 1) {
		char expect[64];
		uint64_t n = count++;

		snprintf(expect, sizeof(expect), "%llu", (unsigned long long)n);
		if (row.n != 4 || row.line != line || strcmp(row.cells[0], expect) != 0)
			ok = 0;
		snprintf(expect, sizeof(expect), "name %llu", (unsigned long long)n);
		if (strcmp(row.cells[1], expect) != 0 || row.lens[1] != strlen(expect))
			ok = 0;
		if (n % 997 == 0) {
			if (row.cells[3] == NULL || strcmp(row.cells[3], "two\nlines") != 0)
				ok = 0;
			line += 2;
		} else {
			if (row.cells[3] != NULL)
				ok = 0;
			line += 1;
		}
		if (n == 123456)
			CHECK_STR(row.cells[2], "370368.5");
	}
	CHECK(rc == 0);
	CHECK(ok);
	CHECK(count == 200000);
	CHECK(th_reader_bytes(csv) == data.size);
	printf("  parsed %zu bytes, 200000 rows in %.3f s\n", data.size, now() - t0);
	th_reader_close(csv);
	close(fd);
	th_buf_dispose(&data);
}

/* A pipe delivering the input in small pieces: the BOM split across reads, fields split across
 * reads, then a bulk remainder larger than the pipe buffer. */
static void test_pipe(void)
{
	th_error err;
	int fds[2], rc;
	pid_t pid;
	char *d;

	if (pipe(fds) != 0)
		abort();
	pid = fork();
	if (pid == 0) {
		const char *head = "\xef\xbb\xbfid,\"na\nme\"\r\n";
		char line[64];
		size_t i;
		close(fds[0]);
		for (i = 0; head[i]; i++) {
			if (write(fds[1], head + i, 1) != 1)
				_exit(1);
			usleep(200);
		}
		for (i = 0; i < 20000; i++) {
			int n = snprintf(line, sizeof(line), "%zu,value %zu\n", i, i);
			if (write(fds[1], line, (size_t)n) != n)
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	d = dump_fd(fds[0], ',', &rc, &err);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	CHECK(rc == 0);
	CHECK(strncmp(d, "1: id|na\\nme\n3: 0|value 0\n4: 1|value 1\n", 39) == 0);
	CHECK_CONTAINS(d, "\n20002: 19999|value 19999\n");
	free(d);
}

/* fixtures/csv/<name>.{csv,tsv,psv} with the expected dump in <name>.expected. */
static void test_fixtures(void)
{
	static const struct {
		const char *file;
		char delim;
	} fx[] = {
		{ "people.csv", ',' }, { "quoting_crlf_bom.csv", ',' }, { "inventory.tsv", '\t' },
		{ "orders.psv", '|' }, { "bad_utf8.csv", ',' },
	};
	size_t i;

	for (i = 0; i < sizeof(fx) / sizeof(fx[0]); i++) {
		char path[512], *expect, *got;
		th_error err;
		int fd, rc;

		snprintf(path, sizeof(path), "%s/csv/%s", TH_FIXTURES, fx[i].file);
		fd = open(path, O_RDONLY);
		CHECK(fd >= 0);
		if (fd < 0)
			continue;
		got = dump_fd(fd, fx[i].delim, &rc, &err);
		close(fd);
		snprintf(strrchr(path, '.'), 16, ".expected");
		expect = t_read_file(path, NULL);
		CHECK(expect != NULL);
		if (expect && strcmp(got, expect) != 0) {
			fprintf(stderr, "fixture %s:\n--- expected\n%s--- got\n%s", fx[i].file,
			        expect, got);
			CHECK(0);
		}
		free(expect);
		free(got);
	}
}

int main(void)
{
	RUN(test_quoting);
	RUN(test_line_ends);
	RUN(test_bom);
	RUN(test_null_vs_empty);
	RUN(test_unicode);
	RUN(test_delimiters);
	RUN(test_line_numbers);
	RUN(test_utf8_valid);
	RUN(test_invalid_utf8);
	RUN(test_malformed);
	RUN(test_header_only_and_empty);
	RUN(test_large_file);
	RUN(test_pipe);
	RUN(test_fixtures);
	TH_TEST_END();
}
