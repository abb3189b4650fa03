/* test_export.c: the JSON, JSON lines and SQL exporters through th_export_* (begin, row, end), as
 * a query result or a table uses them: exact output, typed cells, a cell that does not fit its
 * column's type, the table hook (name and key) and its absence, and rows of the wrong width. The
 * exports of real tables, checked against sqlite3 and Python's json, are in
 * tests/api/test_api_export.c. */
#include "harness.h"
#include "tablehub/export.h"

static const char *names[] = { "n", "b", "t\"x" }, *types[] = { "integer", "boolean", "text" };

/* Export two rows through `fmt` (with the table hook when `name`), into a malloc'd string. */
static char *run(const th_exporter *fmt, const char *name, const size_t *pk, size_t npk)
{
	th_cell r1[3] = { { "1", 1, 0 }, { "true", 4, 0 }, { "a'b", 3, 0 } },
	        r2[3] = { { "x1", 2, 0 }, { NULL, 0, 1 }, { "", 0, 0 } };
	th_export *x = NULL;
	th_buf out = TH_BUF_INIT;
	th_error err = { 0 };

	CHECK_OK(th_export_new(&x, fmt, &err), &err);
	if (name != NULL)
		CHECK_OK(th_export_table(x, name, npk, pk, &err), &err);
	CHECK_OK(th_export_begin(x, &out, 3, names, types, &err), &err);
	CHECK_OK(th_export_row(x, &out, r1, 3, &err), &err);
	CHECK_OK(th_export_row(x, &out, r2, 3, &err), &err);
	CHECK(th_export_row(x, &out, r2, 2, &err) == TH_EINVALID);
	CHECK_OK(th_export_end(x, &out, &err), &err);
	th_export_free(x);
	return out.ptr ? th_buf_detach(&out) : strdup("");
}

static void test_json(void)
{
	char *s = run(&th_exporter_json, NULL, NULL, 0);

	/* "x1" in an integer column is not a number: a string, so the document stays valid. */
	CHECK_STR(s, "[\n{\"n\":1,\"b\":true,\"t\\\"x\":\"a'b\"},\n"
	             "{\"n\":\"x1\",\"b\":null,\"t\\\"x\":\"\"}\n]\n");
	free(s);
	s = run(&th_exporter_jsonl, "ignored", NULL, 0);
	CHECK_STR(s, "{\"n\":1,\"b\":true,\"t\\\"x\":\"a'b\"}\n"
	             "{\"n\":\"x1\",\"b\":null,\"t\\\"x\":\"\"}\n");
	free(s);
	CHECK(th_exporter_find("JSONL") == &th_exporter_jsonl);
	CHECK_STR(th_exporter_jsonl.extension, "jsonl");
}

static void test_sql(void)
{
	size_t pk[2] = { 2, 0 }, bad = 3;
	char *s = run(&th_exporter_sql, "my\"t", pk, 2);
	th_export *x = NULL;
	th_buf out = TH_BUF_INIT;
	th_error err = { 0 };

	CHECK_STR(s, "BEGIN TRANSACTION;\n"
	             "CREATE TABLE \"my\"\"t\" (\"n\" INTEGER NOT NULL, \"b\" BOOLEAN, "
	             "\"t\"\"x\" TEXT NOT NULL, PRIMARY KEY (\"t\"\"x\", \"n\"));\n"
	             "INSERT INTO \"my\"\"t\" VALUES\n"
	             "(1,TRUE,'a''b'),\n('x1',NULL,'');\nCOMMIT;\n");
	free(s);
	/* A query result: no table hook, no key. */
	s = run(&th_exporter_sql, NULL, NULL, 0);
	CHECK_CONTAINS(s,
	               "CREATE TABLE \"data\" (\"n\" INTEGER, \"b\" BOOLEAN, \"t\"\"x\" TEXT);\n");
	free(s);
	/* A key column past the columns is refused. */
	CHECK_OK(th_export_new(&x, &th_exporter_sql, &err), &err);
	CHECK_OK(th_export_table(x, "t", 1, &bad, &err), &err);
	CHECK(th_export_begin(x, &out, 3, names, types, &err) == TH_EINVALID);
	th_export_free(x);
	th_buf_dispose(&out);
}

int main(void)
{
	RUN(test_json);
	RUN(test_sql);
	TH_TEST_END();
}
