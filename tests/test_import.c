/* test_import.c: the table engine through the `tablehub` command line, as a user drives it:
 * import, export, log, and what real git sees in the repository. Each bad-input class fails with
 * exit status 1, a message naming the line, column and value, and nothing committed. */
#include "harness.h"
#include "util.h"

static char *dir;

static void setup(void)
{
	dir = t_mkdtemp();
	CHECK(t_sh(NULL, "%s db create --data %s/d alice/db >/dev/null 2>&1", TH_BIN, dir) == 0);
}

static void teardown(void)
{
	t_rmdir(dir);
	dir = NULL;
}

/* Write `csv` to a file and import it with `args`; returns the exit status and the output. */
static int import(char **out, const char *csv, const char *args)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/in.csv", dir);
	t_write_file(path, csv, strlen(csv));
	return t_sh(out, "%s import --data %s/d alice/db %s %s 2>&1", TH_BIN, dir, args, path);
}

static char *export(const char *ref, const char *table)
{
	char *out = NULL;

	CHECK(t_sh(&out, "%s export --data %s/d alice/db %s %s", TH_BIN, dir, ref, table) == 0);
	return out;
}

static char *head(void)
{
	char *out = NULL;

	t_sh(&out, "git -C %s/d/repos/alice/db.git rev-parse main", dir);
	return out;
}

static void test_roundtrip_quoting(void)
{
	static const char csv[] = "\xef\xbb\xbfid,name,note\r\n"
	                          "2,\"Smith, Jane\",\"said \"\"hi\"\"\"\r\n"
	                          "1,\"multi\nline\",\r\n"
	                          "3,\"\",caf\xc3\xa9 \xf0\x9f\x98\x80\r\n";
	char *out = NULL, *csvout;

	setup();
	CHECK(import(&out, csv, "--table people --pk id") == 0);
	CHECK_CONTAINS(out, "rows added: 3, modified: 0, removed: 0");
	free(out);
	csvout = export("main", "people");
	CHECK_STR(csvout, "id,name,note\n"
	                  "1,\"multi\nline\",\n"
	                  "2,\"Smith, Jane\",\"said \"\"hi\"\"\"\n"
	                  "3,\"\",caf\xc3\xa9 \xf0\x9f\x98\x80\n");
	free(csvout);
	/* Real git reads the repository. */
	CHECK(t_sh(NULL, "git -C %s/d/repos/alice/db.git fsck --full --strict 2>&1", dir) == 0);
	CHECK(t_sh(&out, "git -C %s/d/repos/alice/db.git show main:tables/people/schema.json",
	           dir) == 0);
	CHECK_CONTAINS(out, "\"name\": \"id\", \"type\": \"integer\", \"nullable\": false");
	CHECK_CONTAINS(out, "\"primaryKey\": [ \"id\" ]");
	free(out);
	CHECK(t_sh(&out, "git -C %s/d/repos/alice/db.git log --format=%%s main", dir) == 0);
	CHECK_STR(out, "Import in.csv into people (Create)\nInitial commit\n");
	free(out);
	CHECK(t_sh(&out, "%s log --data %s/d alice/db", TH_BIN, dir) == 0);
	CHECK_CONTAINS(out, "    Import in.csv into people (Create)");
	free(out);
	teardown();
}

static void test_types_and_nulls(void)
{
	static const char csv[] = "k,i,r,b,d,dt,t,z\n"
	                          "a,1,1.50,TRUE,2024-02-29,2024-01-01 10:00:00,007,\n"
	                          "b,-2,3,false,2023-12-31,2024-01-01T10:00:00Z,x,\n";
	char *out = NULL, *csvout;

	setup();
	CHECK(import(&out, csv, "--table t --pk k") == 0);
	free(out);
	CHECK(t_sh(&out, "git -C %s/d/repos/alice/db.git show main:tables/t/schema.json", dir) ==
	      0);
	CHECK_CONTAINS(out, "\"name\": \"i\", \"type\": \"integer\"");
	CHECK_CONTAINS(out, "\"name\": \"r\", \"type\": \"real\"");
	CHECK_CONTAINS(out, "\"name\": \"b\", \"type\": \"boolean\"");
	CHECK_CONTAINS(out, "\"name\": \"d\", \"type\": \"date\"");
	CHECK_CONTAINS(out, "\"name\": \"dt\", \"type\": \"datetime\"");
	CHECK_CONTAINS(out, "\"name\": \"t\", \"type\": \"text\"");
	CHECK_CONTAINS(out, "\"name\": \"z\", \"type\": \"text\"");
	free(out);
	csvout = export("main", "t");
	/* Reals keep their digits, "007" stays text, booleans are stored lower-case. */
	CHECK_STR(csvout, "k,i,r,b,d,dt,t,z\n"
	                  "a,1,1.50,true,2024-02-29,2024-01-01 10:00:00,007,\n"
	                  "b,-2,3,false,2023-12-31,2024-01-01T10:00:00Z,x,\n");
	free(csvout);
	teardown();
}

static void test_composite_and_keyless(void)
{
	static const char comp[] = "a,b,v\n2,x,1\n1,y,2\n1,x,3\n";
	static const char keyless[] = "a,b\n2,x\n1,y\n2,x\n1,y\n1,y\n";
	char *out = NULL, *csvout;

	setup();
	CHECK(import(&out, comp, "--table c --pk a,b") == 0);
	free(out);
	csvout = export("main", "c");
	CHECK_STR(csvout, "a,b,v\n1,x,3\n1,y,2\n2,x,1\n");
	free(csvout);
	CHECK(import(&out, keyless, "--table k") == 0);
	CHECK_CONTAINS(out, "rows added: 5");
	free(out);
	csvout = export("main", "k");
	CHECK_STR(csvout, "a,b\n1,y\n1,y\n1,y\n2,x\n2,x\n");
	free(csvout);
	/* Appending to a keyless table adds copies. */
	CHECK(import(&out, "a,b\n2,x\n3,z\n", "--table k --op append") == 0);
	CHECK_CONTAINS(out, "rows added: 2, modified: 0, removed: 0");
	free(out);
	csvout = export("main", "k");
	CHECK_STR(csvout, "a,b\n1,y\n1,y\n1,y\n2,x\n2,x\n2,x\n3,z\n");
	free(csvout);
	/* Replacing it gives exactly the file's rows. */
	CHECK(import(&out, "a,b\n1,y\n4,w\n", "--table k --op replace") == 0);
	CHECK_CONTAINS(out, "rows added: 1, modified: 0, removed: 6");
	free(out);
	csvout = export("main", "k");
	CHECK_STR(csvout, "a,b\n1,y\n4,w\n");
	free(csvout);
	teardown();
}

static void test_ops(void)
{
	static const char base[] = "id,name,qty\n1,a,10\n2,b,20\n3,c,30\n";
	char *out = NULL, *csvout, *h1, *h2;

	setup();
	CHECK(import(&out, base, "--table t --pk id") == 0);
	free(out);

	/* Create of an existing table is refused. */
	h1 = head();
	CHECK(import(&out, base, "--table t --pk id") == 1);
	CHECK_CONTAINS(out, "table 't' already exists");
	free(out);

	/* Update: some columns only; rows and columns not in the file are kept; last row wins. */
	CHECK(import(&out, "id,qty\n2,21\n4,40\n2,22\n", "--table t --op update") == 0);
	CHECK_CONTAINS(out, "rows added: 1, modified: 1, removed: 0");
	CHECK_CONTAINS(out, "1 rows repeated an earlier key");
	free(out);
	csvout = export("main", "t");
	CHECK_STR(csvout, "id,name,qty\n1,a,10\n2,b,22\n3,c,30\n4,,40\n");
	free(csvout);

	/* Append: new keys only; an existing key fails and names the line. */
	CHECK(import(&out, "id,name,qty\n5,e,50\n", "--table t --op append") == 0);
	free(out);
	h2 = head();
	CHECK(import(&out, "id,name,qty\n6,f,60\n1,x,1\n", "--table t --op append") == 1);
	CHECK_CONTAINS(out, "line 3, column 1 ('id'): primary key 1 already exists in table 't'");
	free(out);
	out = head();
	CHECK_STR(out, h2); /* nothing committed */
	free(out);

	/* Replace: the rows become the file's; the schema stays. */
	CHECK(import(&out, "id,name,qty\n1,a,10\n2,z,20\n9,n,90\n", "--table t --op replace") == 0);
	CHECK_CONTAINS(out, "rows added: 1, modified: 1, removed: 3");
	free(out);
	csvout = export("main", "t");
	CHECK_STR(csvout, "id,name,qty\n1,a,10\n2,z,20\n9,n,90\n");
	free(csvout);

	/* Overwrite: a new schema from the file. */
	CHECK(import(&out, "code,label\nx,1\n", "--table t --op overwrite --pk code") == 0);
	free(out);
	csvout = export("main", "t");
	CHECK_STR(csvout, "code,label\nx,1\n");
	free(csvout);

	/* Update of a table that does not exist. */
	CHECK(import(&out, "id\n1\n", "--table nope --op update") == 1);
	CHECK_CONTAINS(out, "table 'nope' not found on branch 'main'");
	free(out);
	free(h1);
	free(h2);
	teardown();
}

/* Each class of bad input: exit 1, the message, nothing committed. */
static void expect_bad(const char *csv, const char *args, const char *message)
{
	char *out = NULL, *before = head(), *after;

	CHECK(import(&out, csv, args) == 1);
	CHECK_CONTAINS(out, message);
	after = head();
	CHECK_STR(after, before);
	free(out);
	free(before);
	free(after);
}

static void test_bad_input(void)
{
	setup();
	expect_bad("id,name\n1,a\n2,b\n1,c\n", "--table t --pk id",
	           "line 4, column 1 ('id'): duplicate primary key 1 (also on line 2)");
	expect_bad("id,name\n1,a\n", "--table t --pk nope",
	           "primary key column 'nope' is not in the file; its columns are: id, name");
	expect_bad("id,name\n1,a\n2\n", "--table t --pk id",
	           "line 3: expected 2 fields as in the header, found 1");
	expect_bad("id,name\n1,a\n,b\n", "--table t --pk id",
	           "line 3, column 1 ('id'): primary key value is NULL");
	expect_bad("id,name\n1,a\n2,b\xff\n", "--table t --pk id",
	           "line 3, column 2: invalid UTF-8");
	expect_bad("id,name\n1,\"a\n", "--table t --pk id", "line 2");
	expect_bad("", "--table t --pk id", "the file is empty");
	expect_bad("id,id\n1,2\n", "--table t", "duplicate column name 'id'");
	expect_bad("id,name\n1,a\n", "--table 'bad name' --pk id", "bad table name 'bad name'");
	/* Every bad row is reported, not only the first. */
	{
		char *out = NULL, *before = head(), *after;
		CHECK(import(&out, "id,name\n1,a\n2\n,c\n4,d,e\n5,f\n", "--table t --pk id") == 1);
		CHECK_CONTAINS(out,
		               "tablehub: line 3: expected 2 fields as in the header, found 1 (and "
		               "2 more rows rejected)");
		CHECK_CONTAINS(out,
		               "rejected rows (3):\n"
		               "  line 3, column 2: expected 2 fields as in the header, found 1\n"
		               "  line 4, column 1: primary key value is NULL");
		CHECK_CONTAINS(out,
		               "  line 5, column 3: expected 2 fields as in the header, found 3\n");
		after = head();
		CHECK_STR(after, before);
		free(out);
		free(before);
		free(after);
	}
	/* A bad value for an existing column type. */
	CHECK(import(NULL, "id,qty\n1,5\n", "--table q --pk id") == 0);
	expect_bad("id,qty\n1,6\n2,many\n", "--table q --op update",
	           "line 3, column 2 ('qty'): 'many' is not a valid integer");
	expect_bad("id,other\n1,6\n", "--table q --op update",
	           "column 'other' is not in table 'q'");
	expect_bad("qty\n6\n", "--table q --op update",
	           "primary key column 'id' of table 'q' is missing from the file");
	teardown();
}

/* JSON rows, in DoltHub's form and as JSON lines, with --type json. */
static void test_json(void)
{
	char *out = NULL, *csvout;

	setup();
	CHECK(t_sh(&out,
	           "printf '%%s' '{\"rows\":[{\"id\":2,\"v\":\"b, c\",\"ok\":true},"
	           "{\"id\":1,\"v\":null,\"ok\":false}]}' | %s import --data %s/d alice/db "
	           "--table j --pk id --type json - 2>&1",
	           TH_BIN, dir) == 0);
	CHECK_CONTAINS(out, "rows added: 2");
	free(out);
	csvout = export("main", "j");
	CHECK_STR(csvout, "id,v,ok\n1,,false\n2,\"b, c\",true\n");
	free(csvout);
	CHECK(t_sh(&out,
	           "printf '{\"id\":3,\"ok\":true}\n{\"id\":4,\"v\":\"x\"}\n' | %s import "
	           "--data %s/d alice/db --table j --op append --type json - 2>&1",
	           TH_BIN, dir) == 0);
	free(out);
	csvout = export("main", "j");
	CHECK_STR(csvout, "id,v,ok\n1,,false\n2,\"b, c\",true\n3,,true\n4,x,\n");
	free(csvout);
	/* a malformed file fails with its place, nothing committed */
	CHECK(t_sh(&out,
	           "printf '[{\"id\":5},{\"id\":}]' | %s import --data %s/d alice/db --table j "
	           "--op append --type json - 2>&1",
	           TH_BIN, dir) == 1);
	CHECK_CONTAINS(out, "line 1, column 17: expected a value");
	free(out);
	csvout = export("main", "j");
	CHECK_CONTAINS(csvout, "4,x,\n");
	CHECK(strstr(csvout, "5,") == NULL);
	free(csvout);
	teardown();
}

static void test_usage_and_stdin(void)
{
	char *out = NULL, *csvout;

	setup();
	CHECK(t_sh(NULL, "%s import --data %s/d alice/db 2>/dev/null", TH_BIN, dir) == 2);
	CHECK(t_sh(NULL, "%s import --data %s/d alice/db --table t --op upsert x 2>/dev/null",
	           TH_BIN, dir) == 2);
	CHECK(t_sh(NULL, "%s frobnicate 2>/dev/null", TH_BIN) == 2);
	CHECK(t_sh(&out, "%s export --data %s/d alice/nodb main t 2>&1", TH_BIN, dir) == 1);
	CHECK_CONTAINS(out, "database 'alice/nodb' not found");
	free(out);
	CHECK(t_sh(&out,
	           "printf 'a|b\\n1|x y\\n' | %s import --data %s/d alice/db --table p --type psv "
	           "--pk a --branch main --message 'from a pipe' - 2>&1",
	           TH_BIN, dir) == 0);
	free(out);
	csvout = export("main", "p");
	CHECK_STR(csvout, "a,b\n1,x y\n");
	free(csvout);
	CHECK(t_sh(&out, "git -C %s/d/repos/alice/db.git log -1 --format=%%s main", dir) == 0);
	CHECK_STR(out, "from a pipe\n");
	free(out);
	CHECK(t_sh(&out,
	           "printf 'a\\tb\\n1\\t2\\n' | %s import --data %s/d alice/db --table q "
	           "--type tsv --branch nobranch - 2>&1",
	           TH_BIN, dir) == 1);
	CHECK_CONTAINS(out, "branch 'nobranch' not found");
	free(out);
	teardown();
}

static void write_text(const char *path, const char *text)
{
	t_write_file(path, text, strlen(text));
}

/* Without --type the file's extension picks the format, as the upload API's fileName does; an
 * unknown --type is a usage error that lists the formats. */
static void test_format_from_extension(void)
{
	char path[4096], *out = NULL, *csvout;

	setup();
	snprintf(path, sizeof(path), "%s/rows.TSV", dir);
	write_text(path, "a\tb\n1\tx,y\n");
	CHECK(t_sh(&out, "%s import --data %s/d alice/db --table t --pk a %s 2>&1", TH_BIN, dir,
	           path) == 0);
	free(out);
	csvout = export("main", "t");
	CHECK_STR(csvout, "a,b\n1,\"x,y\"\n");
	free(csvout);
	snprintf(path, sizeof(path), "%s/rows.jsonl", dir);
	write_text(path, "{\"a\":2,\"b\":\"z\"}\n");
	CHECK(t_sh(&out, "%s import --data %s/d alice/db --table t --op append %s 2>&1", TH_BIN,
	           dir, path) == 0);
	CHECK_CONTAINS(out, "rows added: 1, modified: 0, removed: 0");
	free(out);
	/* an explicit --type wins over the extension */
	snprintf(path, sizeof(path), "%s/rows.json", dir);
	write_text(path, "a|b\n3|w\n");
	CHECK(t_sh(&out, "%s import --data %s/d alice/db --table t --op append --type psv %s 2>&1",
	           TH_BIN, dir, path) == 0);
	free(out);
	csvout = export("main", "t");
	CHECK_STR(csvout, "a,b\n1,\"x,y\"\n2,z\n3,w\n");
	free(csvout);
	CHECK(t_sh(&out, "%s import --data %s/d alice/db --table u --type parquet %s 2>&1", TH_BIN,
	           dir, path) == 2);
	CHECK_CONTAINS(out, "--type must be Csv, Psv, Tsv, Json, Xlsx or Sql");
	free(out);
	teardown();
}

/* A one-row change of a large table rewrites the chunk that holds the row, nothing else. */
static void test_one_row_change(void)
{
	char *out = NULL;

	setup();
	CHECK(t_sh(NULL,
	           "%s/../scripts/bench.d/gen-csv 100000 %s/big.csv && %s import --data %s/d "
	           "alice/db "
	           "--table big --pk id %s/big.csv >/dev/null",
	           TH_FIXTURES, dir, TH_BIN, dir, dir) == 0);
	CHECK(t_sh(&out, "git -C %s/d/repos/alice/db.git ls-tree -r main tables/big/rows | wc -l",
	           dir) == 0);
	CHECK(atoi(out) > 100); /* ~10 MB of rows in ~64 KiB chunks */
	free(out);
	CHECK(import(&out, "id,qty\n5000,123456\n", "--table big --op update") == 0);
	CHECK_CONTAINS(out, "rows added: 0, modified: 1, removed: 0");
	free(out);
	CHECK(t_sh(&out, "git -C %s/d/repos/alice/db.git diff --name-only main~1 main", dir) == 0);
	/* exactly one chunk path changed */
	CHECK(strchr(out, '\n') != NULL && strchr(out, '\n')[1] == '\0');
	CHECK_CONTAINS(out, "tables/big/rows/");
	free(out);
	CHECK(t_sh(&out, "%s export --data %s/d alice/db main big | grep -c '^5000,'", TH_BIN,
	           dir) == 0);
	CHECK_STR(out, "1\n");
	free(out);
	CHECK(t_sh(NULL, "git -C %s/d/repos/alice/db.git fsck --full --strict 2>&1", dir) == 0);
	teardown();
}

int main(void)
{
	RUN(test_roundtrip_quoting);
	RUN(test_types_and_nulls);
	RUN(test_composite_and_keyless);
	RUN(test_ops);
	RUN(test_bad_input);
	RUN(test_usage_and_stdin);
	RUN(test_json);
	RUN(test_format_from_extension);
	RUN(test_one_row_change);
	TH_TEST_END();
}
