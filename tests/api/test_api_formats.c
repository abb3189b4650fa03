/* test_api_formats.c: file formats over HTTP against a real `tablehub serve`: an Xlsx upload
 * (fileType from the file name's extension, sheetName and nullValues in the params) whose rows and
 * types come back through SQL; the params refused with a 400 that names them; a workbook problem
 * failing the operation with its message; and GET /csv/{owner}/{db}/{ref}, every table as a zip
 * of CSV files, checked with unzip and Python's zipfile against each table's CSV download. */
#include "../harness.h"
#include "../xlsx_build.h"
#include "server.h"
#include "tablehub/buf.h"

static t_server srv;
static char *dir, *alice, *bob;
static char root[256]; /* http://127.0.0.1:PORT */

static const char sheet_data[] = XL_SHEET(
        "<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>id</t></is></c>"
        "<c r=\"B1\" t=\"inlineStr\"><is><t>name</t></is></c>"
        "<c r=\"C1\" t=\"inlineStr\"><is><t>day</t></is></c>"
        "<c r=\"D1\" t=\"inlineStr\"><is><t>v</t></is></c></row>"
        "<row r=\"2\"><c r=\"A2\"><v>1</v></c><c r=\"B2\" t=\"s\"><v>0</v></c>"
        "<c r=\"C2\" s=\"1\"><v>45352</v></c><c r=\"D2\"><v>22.216666666666665</v></c></row>"
        "<row r=\"3\"><c r=\"A3\"><v>2</v></c><c r=\"B3\" t=\"e\"><v>#N/A</v></c>"
        "<c r=\"C3\" s=\"1\"><v>45353</v></c><c r=\"D3\"><v>404</v></c></row>");

static const char sheet_other[] =
        XL_SHEET("<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>x</t></is></c></row>");

static const char styles[] = "<?xml version=\"1.0\"?><styleSheet " XL_MAIN "><cellXfs count=\"2\">"
                             "<xf numFmtId=\"0\"/><xf numFmtId=\"14\"/></cellXfs></styleSheet>";

static const char strings[] = "<?xml version=\"1.0\"?><sst " XL_MAIN "><si><t>Ann</t></si></sst>";

/* The SQL endpoint's rows as "a|b\n" lines (NULL as \N), or the error message. */
static char *sql_rows(const char *ref, const char *sql)
{
	char file[4200];
	t_resp r;
	const cJSON *rows, *row, *cell;
	th_buf b = TH_BUF_INIT;

	snprintf(file, sizeof(file), "%s/q.sql", dir);
	t_write_file(file, sql, strlen(sql));
	r = t_http(&srv, "-G " AUTH "--data-urlencode 'q@%s' '%s/alice/db/%s'", alice, file,
	           srv.base, ref);
	if (r.status != 200) {
		th_buf_printf(&b, NULL, "%d %s", r.status, r.body);
		t_resp_free(&r);
		return th_buf_detach(&b);
	}
	rows = cJSON_GetObjectItem(r.json, "rows");
	cJSON_ArrayForEach(row, rows)
	{
		int first = 1;
		cJSON_ArrayForEach(cell, row)
		{
			th_buf_printf(&b, NULL, "%s%s", first ? "" : "|",
			              cJSON_IsString(cell) ? cell->valuestring : "\\N");
			first = 0;
		}
		th_buf_putc(&b, '\n', NULL);
	}
	t_resp_free(&r);
	return b.ptr ? th_buf_detach(&b) : strdup("");
}

/* Upload `file` with `params` and wait for the operation: its final poll response. */
static t_resp upload_and_wait(const char *file, const char *params)
{
	char op[300];
	t_resp r = t_upload(&srv, alice, "alice/db", file, params);

	if (r.status != 200)
		return r;
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	return t_poll(&srv, alice, "alice/db", op, 120);
}

static void test_xlsx_upload(void)
{
	xl_book b = { { "Other", "Data" }, { sheet_other, sheet_data }, styles, strings, 0 };
	char path[4200], branch[256], ref[300], *rows;
	t_resp r;

	snprintf(path, sizeof(path), "%s/book.xlsx", dir);
	xl_write(path, &b);
	/* no fileType: the name's extension says Xlsx */
	r = upload_and_wait(path, "{\"tableName\":\"t\",\"fileName\":\"book.xlsx\",\"importOp\":"
	                          "\"Create\",\"primaryKeys\":[\"id\"],\"sheetName\":\"Data\","
	                          "\"nullValues\":[\"#N/A\",\"NA\"]}");
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	snprintf(branch, sizeof(branch), "%s",
	         nz(cJSON_GetStringValue(
	                 cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "result"), "branch"))));
	t_resp_free(&r);
	snprintf(ref, sizeof(ref), "%s", branch); /* "alice/import-xxxxxxxx": two path segments */
	rows = sql_rows(ref, "SELECT id, name, day, v, typeof(day), typeof(v) FROM t ORDER BY id");
	CHECK_STR(rows, "1|Ann|2024-03-01|22.216666666666665|text|real\n"
	                "2|\\N|2024-03-02|404|text|real\n");
	free(rows);
	/* the types the sheet had, in the schema */
	r = t_http(&srv, "-G " AUTH "--data-urlencode 'q=SELECT * FROM t LIMIT 0' '%s/alice/db/%s'",
	           alice, srv.base, ref);
	CHECK_CONTAINS(r.body, "{\"columnName\":\"id\",\"columnType\":\"integer\"},"
	                       "{\"columnName\":\"name\",\"columnType\":\"text\"},"
	                       "{\"columnName\":\"day\",\"columnType\":\"date\"},"
	                       "{\"columnName\":\"v\",\"columnType\":\"real\"}");
	t_resp_free(&r);

	/* a sheet the workbook does not have fails the operation, naming the sheets */
	r = upload_and_wait(path, "{\"tableName\":\"u\",\"fileType\":\"Xlsx\",\"importOp\":"
	                          "\"Create\",\"sheetName\":\"Nope\"}");
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(r.body, "the workbook has no sheet 'Nope'; its sheets are: 'Other', 'Data'");
	t_resp_free(&r);
	/* a CSV declared Xlsx */
	snprintf(path, sizeof(path), "%s/x.csv", dir);
	t_write_file(path, "a\n1\n", 4);
	r = upload_and_wait(path, "{\"tableName\":\"u\",\"fileType\":\"xlsx\",\"importOp\":"
	                          "\"Create\"}");
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(r.body, "the file is not an Xlsx workbook (not a zip archive)");
	t_resp_free(&r);
}

static void test_params_refused(void)
{
	char path[4200];
	t_resp r;

	snprintf(path, sizeof(path), "%s/p.csv", dir);
	t_write_file(path, "a\n1\n", 4);
	r = t_upload(&srv, alice, "alice/db", path,
	             "{\"tableName\":\"p\",\"importOp\":\"Create\",\"nullValues\":\"NA\"}");
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "params: 'nullValues' must be an array of at most 64 "
	                                "strings");
	t_resp_free(&r);
	r = t_upload(&srv, alice, "alice/db", path,
	             "{\"tableName\":\"p\",\"importOp\":\"Create\",\"nullValues\":[\"NA\",1]}");
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "params: 'nullValues' must be an array of strings of at "
	                                "most 256 bytes (item 2 is not)");
	t_resp_free(&r);
	r = t_upload(&srv, alice, "alice/db", path,
	             "{\"tableName\":\"p\",\"importOp\":\"Create\",\"sheetName\":7}");
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "sheetName");
	t_resp_free(&r);
	r = t_upload(&srv, alice, "alice/db", path,
	             "{\"tableName\":\"p\",\"importOp\":\"Create\",\"fileType\":\"Parquet\"}");
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "params: 'fileType' must be Csv, Psv, Tsv, Json, Xlsx or "
	                                "Sql (got 'Parquet')");
	t_resp_free(&r);
}

/* The zip of every table: each entry is the table's own CSV download, byte for byte. */
static void test_zip_download(void)
{
	static const char *const tables[] = { "empty", "orders", "people", NULL };
	char *out = NULL, *headers = NULL;
	size_t i;
	t_resp r;

	CHECK(t_sh(NULL, "curl -s -S -D '%s/h.txt' -o '%s/all.zip' '%s/csv/alice/db/main'", dir,
	           dir, root) == 0);
	CHECK(t_sh(&headers, "cat '%s/h.txt'", dir) == 0);
	CHECK_CONTAINS(headers, "200 OK");
	CHECK_CONTAINS(headers, "application/zip");
	CHECK_CONTAINS(headers, "attachment; filename=\"db.zip\"");
	free(headers);
	CHECK(t_sh(&out, "unzip -t '%s/all.zip' 2>&1", dir) == 0);
	CHECK_CONTAINS(out, "No errors detected");
	free(out);
	CHECK(t_sh(&out, "unzip -Z1 '%s/all.zip'", dir) == 0);
	CHECK_STR(out, "empty.csv\norders.csv\npeople.csv\n"); /* t is on the import branch only */
	free(out);
	CHECK(t_sh(NULL, "rm -rf '%s/x' && mkdir '%s/x' && cd '%s/x' && unzip -q ../all.zip", dir,
	           dir, dir) == 0);
	for (i = 0; tables[i]; i++) {
		CHECK(t_sh(&out,
		           "curl -s -S -o '%s/one.csv' '%s/csv/alice/db/main/%s' && cmp "
		           "'%s/one.csv' "
		           "'%s/x/%s.csv' && python3 -c 'import sys, zipfile; sys.stdout.write("
		           "str(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]) == "
		           "open(sys.argv[3], "
		           "\"rb\").read()))' '%s/all.zip' '%s.csv' '%s/one.csv'",
		           dir, root, tables[i], dir, dir, tables[i], dir, tables[i], dir) == 0);
		CHECK_STR(out, "True");
		free(out);
	}
	CHECK(t_sh(&out, "head -c 200 '%s/x/people.csv'", dir) == 0);
	CHECK_STR(out, "id,name,note\n1,\"Smith, Jane\",\"said \"\"hi\"\"\"\n2,\"multi\nline\",\n");
	free(out);
	/* at a commit id too; an unknown ref or database is a 404 with JSON */
	CHECK(t_sh(&out,
	           "curl -s -o '%s/c.zip' \"%s/csv/alice/db/$(git -C '%s/repos/alice/db.git' "
	           "rev-parse main)\" && cmp '%s/c.zip' '%s/all.zip' && echo same",
	           dir, root, dir, dir, dir) == 0);
	CHECK_STR(out, "same\n");
	free(out);
	r = t_http(&srv, "'%s/csv/alice/db/nope'", root);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "ref 'nope' not found in database 'alice/db'");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/csv/alice/nodb/main'", root);
	CHECK(r.status == 404);
	t_resp_free(&r);
	/* a database without tables: an empty archive */
	CHECK(t_sh(&out,
	           "curl -s -o '%s/e.zip' '%s/csv/bob/bare/main' && python3 -c 'import sys, "
	           "zipfile; print(len(zipfile.ZipFile(sys.argv[1]).infolist()))' '%s/e.zip'",
	           dir, root, dir) == 0);
	CHECK_STR(out, "0\n");
	free(out);
}

static int cli_import(const char *table, const char *csv, const char *args)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s.csv", dir, table);
	t_write_file(path, csv, strlen(csv));
	return t_sh(NULL, "'%s' import --data '%s' alice/db --table %s %s '%s' >/dev/null 2>&1",
	            TH_BIN, dir, table, args, path);
}

int main(void)
{
	dir = t_mkdtemp();
	/* The data first (import takes the data dir's lock), then the server. */
	if (t_sh(NULL, "'%s' db create --data '%s' alice/db >/dev/null", TH_BIN, dir) != 0 ||
	    t_sh(NULL, "'%s' db create --data '%s' bob/bare >/dev/null", TH_BIN, dir) != 0 ||
	    cli_import("people",
	               "id,name,note\n1,\"Smith, Jane\",\"said \"\"hi\"\"\"\n"
	               "2,\"multi\nline\",\n",
	               "--pk id") != 0 ||
	    cli_import("orders", "order,total\n1,12.50\n2,.5\n", "--pk order") != 0 ||
	    cli_import("empty", "a,b\n", "") != 0) {
		fprintf(stderr, "setting up the database failed\n");
		return 1;
	}
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	snprintf(root, sizeof(root), "http://127.0.0.1:%d", srv.port);
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;

	RUN(test_xlsx_upload);
	RUN(test_params_refused);
	RUN(test_zip_download);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
