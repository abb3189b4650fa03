/* test_reader.c: the table of input formats and the reader interface (src/reader.c): look-ups by
 * fileType and by extension in any case, the guess from a file name, the list for messages, and
 * what every reader of the table must do through the interface (an empty input, malformed input
 * with its place, bytes read, the columns option). The readers' own behaviour is in test_csv.c and
 * test_jsonrows.c. */
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "tablehub/buf.h"
#include "tablehub/reader.h"

/* An unlinked temporary file holding `data`, opened for reading. */
static int temp_fd(const char *data)
{
	char path[] = "/tmp/th-reader-XXXXXX";
	int fd = mkstemp(path);
	size_t len = strlen(data);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	unlink(path);
	return fd;
}

static const char *name_of(const th_format *f)
{
	return f ? f->name : "(none)";
}

static void test_find(void)
{
	CHECK_STR(name_of(th_format_find("Csv")), "Csv");
	CHECK_STR(name_of(th_format_find("csv")), "Csv");
	CHECK_STR(name_of(th_format_find("PSV")), "Psv");
	CHECK_STR(name_of(th_format_find("tsv")), "Tsv");
	CHECK_STR(name_of(th_format_find("Json")), "Json");
	/* every JSON form is one reader: its extensions name it too */
	CHECK_STR(name_of(th_format_find("jsonl")), "Json");
	CHECK_STR(name_of(th_format_find("NDJSON")), "Json");
	CHECK_STR(name_of(th_format_find("xlsx")), "Xlsx");
	CHECK(th_format_find("Parquet") == NULL);
	CHECK(th_format_find("") == NULL);
	CHECK(th_format_find(NULL) == NULL);
	CHECK(th_format_find("cs") == NULL);    /* whole words only */
	CHECK(th_format_find("json ") == NULL); /* no word of the list with its separator */
	CHECK(th_format_find("Csv")->opts.delim == ',');
	CHECK(th_format_find("Psv")->opts.delim == '|');
	CHECK(th_format_find("Tsv")->opts.delim == '\t');
}

static void test_guess(void)
{
	CHECK_STR(name_of(th_format_guess("rows.tsv")), "Tsv");
	CHECK_STR(name_of(th_format_guess("ROWS.PSV")), "Psv");
	CHECK_STR(name_of(th_format_guess("dir.v2/rows.jsonl")), "Json");
	CHECK_STR(name_of(th_format_guess("a.json.csv")), "Csv");
	/* no extension, an unknown one, a trailing dot, no name: the first format of the table */
	CHECK_STR(name_of(th_format_guess("rows")), "Csv");
	CHECK_STR(name_of(th_format_guess("rows.XLSX")), "Xlsx");
	CHECK_STR(name_of(th_format_guess("rows.parquet")), "Csv");
	CHECK_STR(name_of(th_format_guess("rows.")), "Csv");
	CHECK_STR(name_of(th_format_guess(NULL)), "Csv");
	/* a fileType that is not an extension does not pick a format from a file name */
	CHECK_STR(name_of(th_format_guess("rows.Tsvx")), "Csv");
}

static void test_names(void)
{
	char names[128], small[8];
	size_t i;

	th_format_names(names, sizeof(names));
	CHECK_STR(names, "Csv, Psv, Tsv, Json, Xlsx or Sql");
	th_format_names(small, sizeof(small));
	CHECK_STR(small, "Csv, Ps"); /* cut to size, still a string */
	for (i = 0; th_format_at(i) != NULL; i++)
		CHECK(strstr(names, th_format_at(i)->name) != NULL);
	CHECK(i == 6);
	CHECK(th_format_at(0) == th_format_find("Csv"));
}

/* Each format of the table, through the interface only. */
static void test_every_reader(void)
{
	const th_format *f;
	th_reader_row row;
	th_reader *r;
	th_error err;
	uint64_t line;
	uint32_t column;
	size_t i;
	int fd;

	for (i = 0; (f = th_format_at(i)) != NULL; i++) {
		const th_reader_type *t = f->reader;
		int text = strcmp(f->name, "Xlsx") != 0; /* a workbook is a zip archive, not text */
		CHECK(f->name[0] != '\0' && f->extensions[0] != '\0');
		CHECK(t && t->open && t->next && t->error_pos && t->bytes && t->close);
		/* an empty input: no rows, nothing read, no error */
		fd = temp_fd("");
		th_error_clear(&err);
		CHECK_OK(th_reader_open(&r, f, fd, NULL, 0, &err), &err);
		CHECK(r->type == t);
		CHECK(th_reader_next(r, &row, &err) == 0);
		CHECK(th_reader_bytes(r) == 0);
		th_reader_error_pos(r, &line, &column);
		CHECK(line == 0 && column == 0);
		th_reader_close(r);
		close(fd);
		/* malformed input (invalid UTF-8 on line 2): an error with its place, which the
		 * reader gives as well */
		fd = temp_fd("\n\xff\n");
		CHECK_OK(th_reader_open(&r, f, fd, NULL, 0, &err), &err);
		CHECK(th_reader_next(r, &row, &err) == TH_EINVALID);
		CHECK(err.code == TH_EINVALID && (!text || (err.line == 2 && err.column == 1)));
		th_reader_error_pos(r, &line, &column);
		CHECK(line == err.line && column == err.column);
		CHECK(!text || th_reader_bytes(r) == 3);
		th_reader_close(r);
		close(fd);
	}
	th_reader_close(NULL);
}

/* NULL format = the first of the table; the columns option only matters to readers whose rows
 * name their columns. */
static void test_open_options(void)
{
	static const char *const cols[] = { "x", "y" };
	th_reader_row row;
	th_reader *r;
	th_error err;
	int fd;

	fd = temp_fd("a|b\n1|2\n");
	CHECK_OK(th_reader_open(&r, NULL, fd, cols, 2, &err), &err);
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK(row.n == 1 && strcmp(row.cells[0], "a|b") == 0); /* Csv: ',' splits, not '|' */
	th_reader_close(r);
	close(fd);

	fd = temp_fd("a|b\n1|2\n");
	CHECK_OK(th_reader_open(&r, th_format_find("psv"), fd, cols, 2, &err), &err);
	CHECK(th_reader_next(r, &row, &err) == 1); /* the file's header, not the columns */
	CHECK(row.n == 2 && strcmp(row.cells[0], "a") == 0 && strcmp(row.cells[1], "b") == 0);
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK(row.n == 2 && strcmp(row.cells[1], "2") == 0 && row.line == 2);
	CHECK(th_reader_next(r, &row, &err) == 0);
	th_reader_close(r);
	close(fd);

	fd = temp_fd("{\"y\":1}\n");
	CHECK_OK(th_reader_open(&r, th_format_find("json"), fd, cols, 2, &err), &err);
	CHECK(th_reader_next(r, &row, &err) == 1); /* the columns given */
	CHECK(row.n == 2 && strcmp(row.cells[0], "x") == 0 && strcmp(row.cells[1], "y") == 0);
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK(row.n == 2 && row.cells[0] == NULL && strcmp(row.cells[1], "1") == 0);
	th_reader_close(r);
	close(fd);
}

/* Every row of r as text (line, cell count, then each cell's length and bytes, or N for NULL),
 * then the outcome: the code, the message and the error's place. */
static char *read_all(th_reader *r)
{
	th_buf out = TH_BUF_INIT;
	th_reader_row row;
	th_error err;
	uint64_t line;
	uint32_t column;
	int rc;

	th_error_clear(&err);
	while ((rc = th_reader_next(r, &row, &err)) == 1) {
		th_buf_printf(&out, NULL, "%llu:%zu", (unsigned long long)row.line, row.n);
		for (size_t i = 0; i < row.n; i++) {
			if (row.cells[i] == NULL) {
				th_buf_puts(&out, " N", NULL);
				continue;
			}
			CHECK(strlen(row.cells[i]) == row.lens[i]);
			th_buf_printf(&out, NULL, " %zu=", row.lens[i]);
			th_buf_put(&out, row.cells[i], row.lens[i], NULL);
		}
		th_buf_putc(&out, '\n', NULL);
	}
	th_reader_error_pos(r, &line, &column);
	th_buf_printf(&out, NULL, "end %d %s at %llu:%u\n", rc, rc < 0 ? err.msg : "",
	              (unsigned long long)line, column);
	return out.ptr;
}

/* th_reader_ahead: the rows, lines, end and error of the reader it wraps, over many batches;
 * bytes reach the whole file; closed half-way, it stops its thread. */
static void test_ahead(void)
{
	th_buf csv = TH_BUF_INIT;
	const th_format *f = th_format_find("Csv"), *fj = th_format_find("Json");
	char *plain, *ahead;
	th_reader *r;
	th_reader_row row;
	th_error err;
	int fd;

	th_buf_puts(&csv, "id,name,note\n", NULL);
	for (int i = 0; i < 5000; i++) {
		if (i % 97 == 0) /* a row over two lines */
			th_buf_printf(&csv, NULL, "%d,\"two\nlines %d\",\n", i, i);
		else if (i % 1000 == 999) /* a long cell: batches end by size too */
			th_buf_printf(&csv, NULL, "%d,%0*d,x\n", i, 100000, i);
		else
			th_buf_printf(&csv, NULL, "%d,name %d,%s\n", i, i, i % 3 ? "" : "note");
	}
	th_buf_puts(&csv, "5000,\"unclosed\n", NULL);
	for (int pass = 0; pass < 2; pass++) {
		const th_format *fmt = pass ? fj : f;
		th_buf json = TH_BUF_INIT;
		const char *data = csv.ptr;

		if (pass) { /* JSON rows, ending with a malformed one */
			for (int i = 0; i < 3000; i++)
				th_buf_printf(&json, NULL, "{\"id\":%d,\"v\":%s}\n", i,
				              i % 5 ? "\"x\"" : "null");
			th_buf_puts(&json, "{\"id\":3000,\"v\":tru}\n", NULL);
			data = json.ptr;
		}
		fd = temp_fd(data);
		CHECK_OK(th_reader_open(&r, fmt, fd, NULL, 0, &err), &err);
		plain = read_all(r);
		th_reader_close(r);
		CHECK(lseek(fd, 0, SEEK_SET) == 0);
		CHECK_OK(th_reader_open(&r, fmt, fd, NULL, 0, &err), &err);
		r = th_reader_ahead(r);
		ahead = read_all(r);
		CHECK(th_reader_bytes(r) == strlen(data));
		th_reader_close(r);
		CHECK(plain != NULL && ahead != NULL);
		CHECK(plain && ahead && strcmp(plain, ahead) == 0);
		CHECK(plain && strstr(plain, "end -4 ") != NULL); /* TH_EINVALID, with its place */
		CHECK(plain && strstr(plain, " at 0:0") == NULL);
		free(plain);
		free(ahead);
		close(fd);
		th_buf_dispose(&json);
	}
	/* Closed after a few rows, with the thread still parsing: nothing hangs or leaks. */
	fd = temp_fd(csv.ptr);
	CHECK_OK(th_reader_open(&r, f, fd, NULL, 0, &err), &err);
	r = th_reader_ahead(r);
	for (int i = 0; i < 3; i++)
		CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK_STR(row.cells[1], "name 1");
	th_reader_close(r);
	close(fd);
	th_buf_dispose(&csv);
}

int main(void)
{
	RUN(test_find);
	RUN(test_guess);
	RUN(test_names);
	RUN(test_every_reader);
	RUN(test_open_options);
	RUN(test_ahead);
	TH_TEST_END();
}
