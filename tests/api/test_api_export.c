/* test_api_export.c: GET /api/v1alpha1/{owner}/{db}/{ref}/tables/{table}/export?format=csv|json|
 * jsonl|sql against a real `tablehub serve`, and `tablehub export --format`.
 *
 * Every format of a table with quotes, commas, newlines, NULLs beside empty strings, non-ASCII
 * text, booleans, reals and dates is checked against the CSV export cell by cell
 * (export_compare.py): the JSON parsed by Python's json, the JSON lines line by line, and the SQL
 * loaded into a new database by the sqlite3 shell. Also: the headers (type, the file's name), a
 * keyless table, an empty one, INSERTs in batches, a ref given as a commit id, the CLI giving the
 * same bytes, and the errors (an unknown format, table or database, a bad table name).
 */
#include "../harness.h"
#include "server.h"

#define COMPARE_PY TH_FIXTURES "/../tests/api/export_compare.py"

static t_server srv;
static char *dir;

static const char mixed_csv[] = "id,name,score,ok,day,note\n"
                                "1,\"Smith, \"\"Jr\"\"\",1.50,true,2024-01-02,\"line1\nline2\"\n"
                                "2,,2,false,,\"\"\n"
                                "3,\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80,-0.5,TRUE,"
                                "2024-02-29,'quote' it's\n"
                                "4,\"  padded  \",1e3,false,2024-03-01,back\\slash\ttab\n";
static const char mixed_types[] = "integer,text,real,boolean,date,text";

static int import_text(const char *table, const char *args, const char *text)
{
	char *path = t_write_in(dir, "in.csv", text);
	int rc = t_sh(NULL, "'%s' import --data '%s' alice/shop --table %s %s '%s' >/dev/null 2>&1",
	              TH_BIN, dir, table, args, path);

	free(path);
	return rc;
}

/* GET the export of `table` at `ref` in `format` ("" = none given) into DIR/<out>; the headers
 * into DIR/<out>.h. Returns the status. */
static int get_export(const char *ref, const char *table, const char *format, const char *out)
{
	char *code = NULL;
	int status = -1;

	if (t_sh(&code,
	         "curl -s -S -w '%%{http_code}' -D '%s/%s.h' -o '%s/%s' "
	         "'%s/alice/shop/%s/tables/%s/export%s%s'",
	         dir, out, dir, out, srv.base, ref, table, format[0] ? "?format=" : "",
	         format) == 0)
		status = atoi(code);
	free(code);
	return status;
}

static char *file_in(const char *name)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return t_read_file(path, NULL);
}

/* The exports of `table` agree with its CSV export (after the SQL was loaded by sqlite3). */
static int exports_agree(const char *table, const char *types, const char *key)
{
	char *out = NULL;
	int rc;

	rc = t_sh(&out,
	          "cd '%s' && rm -f %s.db && sqlite3 %s.db < %s.sql && python3 '%s' '%s' %s.csv "
	          "--json %s.json --jsonl %s.jsonl --sqlite %s.db %s %s",
	          dir, table, table, table, COMPARE_PY, types, table, table, table, table, table,
	          key);
	if (rc != 0)
		fprintf(stderr, "exports of %s disagree: %s\n", table, out ? out : "");
	free(out);
	return rc;
}

static void fetch_all(const char *ref, const char *table)
{
	static const char *const formats[] = { "csv", "json", "jsonl", "sql" };
	char name[128];

	for (size_t i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "%s.%s", table, formats[i]);
		CHECK(get_export(ref, table, formats[i], name) == 200);
	}
}

static void test_formats_agree(void)
{
	char *csv, *old, *json, *h, *sql;

	fetch_all("main", "mixed");
	CHECK(exports_agree("mixed", mixed_types, "id") == 0);
	/* The CSV export is the same bytes as DoltHub's CSV download, and the default format. */
	csv = file_in("mixed.csv");
	CHECK(t_sh(NULL, "curl -s -o '%s/old.csv' 'http://127.0.0.1:%d/csv/alice/shop/main/mixed'",
	           dir, srv.port) == 0);
	old = file_in("old.csv");
	CHECK_STR(csv, old);
	CHECK(get_export("main", "mixed", "", "default.csv") == 200);
	free(old);
	old = file_in("default.csv");
	CHECK_STR(csv, old);
	/* Exact text of the JSON: typed cells, null beside "", escapes. */
	json = file_in("mixed.json");
	CHECK_STR(json, "[\n"
	                "{\"id\":1,\"name\":\"Smith, \\\"Jr\\\"\",\"score\":1.50,\"ok\":true,"
	                "\"day\":\"2024-01-02\",\"note\":\"line1\\nline2\"},\n"
	                "{\"id\":2,\"name\":null,\"score\":2,\"ok\":false,\"day\":null,"
	                "\"note\":\"\"},\n"
	                "{\"id\":3,\"name\":\"\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\","
	                "\"score\":-0.5,\"ok\":true,\"day\":\"2024-02-29\","
	                "\"note\":\"'quote' it's\"},\n"
	                "{\"id\":4,\"name\":\"  padded  \",\"score\":1e3,\"ok\":false,"
	                "\"day\":\"2024-03-01\",\"note\":\"back\\\\slash\\ttab\"}\n"
	                "]\n");
	sql = file_in("mixed.sql");
	CHECK_CONTAINS(sql, "CREATE TABLE \"mixed\" (\"id\" INTEGER NOT NULL, \"name\" TEXT, "
	                    "\"score\" REAL, \"ok\" BOOLEAN, \"day\" DATE, \"note\" TEXT, "
	                    "PRIMARY KEY (\"id\"));\n");
	CHECK_CONTAINS(sql, "(3,'\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80',-0.5,TRUE,"
	                    "'2024-02-29','''quote'' it''s')");
	/* Headers: the media type and the file's name. */
	h = file_in("mixed.json.h");
	CHECK_CONTAINS(h, "Content-Type: application/json; charset=utf-8");
	CHECK_CONTAINS(h, "Content-Disposition: attachment; filename=\"mixed.json\"");
	free(h);
	h = file_in("mixed.jsonl.h");
	CHECK_CONTAINS(h, "filename=\"mixed.jsonl\"");
	free(h);
	h = file_in("mixed.sql.h");
	CHECK_CONTAINS(h, "Content-Type: application/sql");
	CHECK_CONTAINS(h, "filename=\"mixed.sql\"");
	free(h);
	free(csv);
	free(old);
	free(json);
	free(sql);
}

/* 1,203 rows: three INSERTs of at most 500 rows; a composite key; loads and agrees. */
static void test_batches_and_keys(void)
{
	char *sql;
	int inserts = 0;

	fetch_all("main", "big");
	CHECK(exports_agree("big", "integer,text,integer", "k,name") == 0);
	sql = file_in("big.sql");
	for (const char *p = sql; p && (p = strstr(p, "INSERT INTO \"big\" VALUES\n")) != NULL; p++)
		inserts++;
	CHECK(inserts == 3);
	CHECK_CONTAINS(sql, "PRIMARY KEY (\"k\", \"name\")");
	free(sql);
}

/* A keyless table has no PRIMARY KEY and keeps its duplicate rows; an empty table exports as an
 * empty array, no lines, and a script that creates the table alone. */
static void test_keyless_and_empty(void)
{
	char *s, *out = NULL;

	fetch_all("main", "loose");
	s = file_in("loose.sql");
	CHECK(s != NULL && strstr(s, "PRIMARY KEY") == NULL);
	free(s);
	CHECK(t_sh(&out,
	           "cd '%s' && rm -f l.db && sqlite3 l.db < loose.sql && sqlite3 l.db "
	           "'SELECT count(*), count(DISTINCT a) FROM loose'",
	           dir) == 0);
	CHECK_STR(out, "3|2\n");
	free(out);
	fetch_all("main", "empty");
	s = file_in("empty.json");
	CHECK_STR(s, "[]\n");
	free(s);
	s = file_in("empty.jsonl");
	CHECK_STR(s, "");
	free(s);
	s = file_in("empty.sql");
	CHECK_STR(s, "BEGIN TRANSACTION;\nCREATE TABLE \"empty\" (\"k\" TEXT NOT NULL, \"v\" "
	             "TEXT, PRIMARY KEY (\"k\"));\nCOMMIT;\n");
	free(s);
	out = NULL;
	CHECK(t_sh(&out,
	           "cd '%s' && rm -f e.db && sqlite3 e.db < empty.sql && sqlite3 e.db "
	           "'SELECT count(*) FROM empty'",
	           dir) == 0);
	CHECK_STR(out, "0\n");
	free(out);
}

/* A commit id as the ref, and the CLI: the same bytes as the HTTP export. */
static void test_commit_ref_and_cli(void)
{
	char *head = NULL, *a, *b;

	CHECK(t_sh(&head, "git -C '%s/repos/alice/shop.git' rev-parse main", dir) == 0);
	head[strcspn(head, "\n")] = '\0';
	CHECK(get_export(head, "mixed", "sql", "bycommit.sql") == 200);
	CHECK(t_sh(NULL,
	           "'%s' export --data '%s' --format sql alice/shop main mixed > '%s/cli.sql'",
	           TH_BIN, dir, dir) == 0);
	a = file_in("bycommit.sql");
	b = file_in("cli.sql");
	CHECK_STR(a, b);
	free(a);
	free(b);
	CHECK(t_sh(NULL,
	           "'%s' export --data '%s' --format jsonl alice/shop main mixed > '%s/cli.jl'",
	           TH_BIN, dir, dir) == 0);
	a = file_in("cli.jl");
	b = file_in("mixed.jsonl");
	CHECK_STR(a, b);
	free(a);
	free(b);
	CHECK(t_sh(NULL, "'%s' export --data '%s' --format xml alice/shop main mixed 2>/dev/null",
	           TH_BIN, dir) == 2);
	free(head);
}

static void test_errors(void)
{
	t_resp r;

	r = t_http(&srv, "'%s/alice/shop/main/tables/mixed/export?format=xml'", srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"),
	          "'format' must be one of csv, json, jsonl, sql (got 'xml')");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/main/tables/nope/export?format=json'", srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "table 'nope' not found at 'main'");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/nobranch/tables/mixed/export?format=json'", srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/nodb/main/tables/mixed/export?format=json'", srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/main/tables/sqlite_x/export?format=sql'", srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
}

int main(void)
{
	char big[64 * 1024], *p = big;

	dir = t_mkdtemp();
	p += sprintf(p, "k,name,n\n");
	for (int i = 0; i < 1203; i++)
		p += sprintf(p, "%d,n%d,%d\n", i / 2, i, i * 7);
	if (t_sh(NULL, "'%s' db create --data '%s' alice/shop >/dev/null", TH_BIN, dir) != 0 ||
	    import_text("mixed", "--pk id", mixed_csv) != 0 ||
	    import_text("big", "--pk k,name", big) != 0 ||
	    import_text("loose", "", "a,b\n1,x\n1,x\n2,y\n") != 0 ||
	    import_text("empty", "--pk k", "k,v\n") != 0) {
		fprintf(stderr, "setting up the database failed\n");
		return 1;
	}
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	RUN(test_formats_agree);
	RUN(test_batches_and_keys);
	RUN(test_keyless_and_empty);
	RUN(test_commit_ref_and_cli);
	RUN(test_errors);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	t_rmdir(dir);
	TH_TEST_END();
}
