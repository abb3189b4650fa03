/* test_shapes.c: files of the shapes real datasets have, through the `tablehub` command line as a
 * user drives it (import, query, export): reals printed by a query as the table's CSV has them,
 * names that differ only in case, reals without a leading zero, missing-value markers read as
 * NULL (--null), JSON rows whose keys are not all in the first row, and the messages for a UTF-16
 * file and a column name over the length limit. Each case failed on the code before its fix. */
#include <math.h>

#include "harness.h"
#include "util.h"
#include "tablehub/value.h"

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

/* Write `len` bytes of `text` to in.<ext> and import it with `args`; the exit status, and the
 * output in *out (may be NULL). */
static int import_n(char **out, const char *ext, const char *text, size_t len, const char *args)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/in.%s", dir, ext);
	t_write_file(path, text, len);
	return t_sh(out, "%s import --data %s/d alice/db %s %s 2>&1", TH_BIN, dir, args, path);
}

static int import(char **out, const char *ext, const char *text, const char *args)
{
	return import_n(out, ext, text, strlen(text), args);
}

/* `tablehub query` with `flags` at main: its output (malloc'd). */
static char *query(const char *flags, const char *sql)
{
	char *out = NULL;

	CHECK(t_sh(&out, "%s query --data %s/d %s alice/db main '%s' 2>&1", TH_BIN, dir, flags,
	           sql) == 0);
	return out;
}

static char *export(const char *table)
{
	char *out = NULL;

	CHECK(t_sh(&out, "%s export --data %s/d alice/db main %s 2>&1", TH_BIN, dir, table) == 0);
	return out;
}

static char *head(void)
{
	char *out = NULL;

	t_sh(&out, "git -C %s/d/repos/alice/db.git rev-parse main", dir);
	return out;
}

/* The shortest text that reads back as the same double. */
static void test_real_format(void)
{
	static const struct {
		double d;
		const char *text;
	} cases[] = {
		{ 22.216666666666665, "22.216666666666665" },
		{ 404.0, "404" },
		{ 0.1, "0.1" },
		{ 0.30000000000000004, "0.30000000000000004" },
		{ 1e-7, "1e-7" },
		{ 1e20, "1e+20" },
		{ -0.5, "-0.5" },
		{ 123456789012345678.0, "1.2345678901234568e+17" },
		{ 5e-324, "4.94065645841247e-324" }, /* reads back: 15 digits suffice */
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 100, "100" },
	};
	char text[TH_REAL_TEXT_MAX];
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = th_real_format(text, cases[i].d);
		CHECK_STR(text, cases[i].text);
		CHECK(n == strlen(text));
		CHECK(strtod(text, NULL) == cases[i].d);
	}
	th_real_format(text, INFINITY);
	CHECK_STR(text, "Inf");
	th_real_format(text, -INFINITY);
	CHECK_STR(text, "-Inf");
}

/* A query prints a real as the table's CSV has it: 17 digits where they are needed, an integer
 * in a real column without ".0"; its CSV and JSON agree with the export. */
static void test_reals_as_exported(void)
{
	static const char csv[] = "id,v\n1,22.216666666666665\n2,404\n3,0.1\n4,1e-7\n5,-2.5\n";
	char *out = NULL, *q, *x;

	setup();
	CHECK(import(&out, "csv", csv, "--table t --pk id") == 0);
	free(out);
	x = export("t");
	CHECK_STR(x, csv);
	q = query("--csv", "SELECT id, v FROM t ORDER BY id");
	CHECK_STR(q, x);
	free(q);
	q = query("--json", "SELECT v FROM t WHERE id <= 2 ORDER BY id");
	CHECK_CONTAINS(q, "\"rows\":[{\"v\":\"22.216666666666665\"},{\"v\":\"404\"}]");
	free(q);
	/* computed reals too */
	q = query("--csv", "SELECT v * 2 AS d, 1.0 AS one FROM t WHERE id = 2");
	CHECK_STR(q, "d,one\n808,1\n");
	free(q);
	free(x);
	teardown();
}

/* Names SQL cannot tell apart are refused at import, and nothing is committed. */
static void test_names_differing_in_case(void)
{
	char *out = NULL, *before, *after, *q;

	setup();
	CHECK(import(&out, "csv", "id,name,NAME\n1,a,b\n", "--table t") == 1);
	CHECK_CONTAINS(out, "line 1, column 3: column names 'name' (column 2) and 'NAME' differ "
	                    "only in case, which SQL does not tell apart: rename one");
	free(out);
	/* the exact repeat keeps its own message */
	CHECK(import(&out, "csv", "id,name,name\n1,a,b\n", "--table t") == 1);
	CHECK_CONTAINS(out, "duplicate column name 'name' (also column 2)");
	free(out);

	CHECK(import(&out, "csv", "id\n1\n", "--table good") == 0);
	free(out);
	before = head();
	CHECK(import(&out, "csv", "id\n2\n", "--table Good") == 1);
	CHECK_CONTAINS(out, "table 'Good' differs only in case from table 'good' on branch 'main', "
	                    "which SQL does not tell apart");
	free(out);
	CHECK(import(&out, "csv", "id\n2\n", "--table GOOD --op overwrite") == 1);
	CHECK_CONTAINS(out, "differs only in case");
	free(out);
	after = head();
	CHECK_STR(after, before);
	q = query("--csv", "SELECT * FROM \"Good\"");
	CHECK_STR(q, "id\n1\n");
	free(q);
	/* the table itself may be overwritten under its own name */
	CHECK(import(&out, "csv", "id\n3\n", "--table good --op overwrite") == 0);
	free(out);
	free(before);
	free(after);
	teardown();
}

/* ".097" and "-.5" are reals, stored with their zero; "+1", "1." and "007" stay text. */
static void test_bare_fractions(void)
{
	char *out = NULL, *q;

	setup();
	CHECK(import(&out, "csv",
	             "id,p,t1,t2,t3\n1,.097,+1,1.,007\n2,-.5,+2,2.,008\n3,2,+3,3.,009\n",
	             "--table t --pk id") == 0);
	free(out);
	q = query("--csv", "SELECT typeof(p), p, p * 2, typeof(t1), typeof(t2), typeof(t3) FROM t "
	                   "ORDER BY id");
	CHECK_STR(q, "typeof(p),p,p * 2,typeof(t1),typeof(t2),typeof(t3)\n"
	             "real,0.097,0.194,text,text,text\n"
	             "real,-0.5,-1,text,text,text\n"
	             "real,2,4,text,text,text\n");
	free(q);
	q = export("t");
	CHECK_STR(q, "id,p,t1,t2,t3\n1,0.097,+1,1.,007\n2,-0.5,+2,2.,008\n3,2,+3,3.,009\n");
	free(q);
	/* into an existing real column, and as a key */
	CHECK(import(&out, "csv", "id,p\n4,.25\n", "--table t --op append") == 0);
	free(out);
	CHECK(import(&out, "csv", "k\n.5\n-.5\n", "--table r --pk k") == 0);
	free(out);
	q = query("--csv", "SELECT k FROM r ORDER BY k");
	CHECK_STR(q, "k\n-0.5\n0.5\n");
	free(q);
	teardown();
}

/* Missing-value markers: NULL when listed with --null, text (as before) when not. */
static void test_null_values(void)
{
	static const char csv[] = "id,n,s\n1,NA,x\n2,N/A,-\n3,-,\"\"\n4,null,NA\n5,7,y\n";
	char *out = NULL, *q;

	setup();
	CHECK(import(&out, "csv", csv, "--table plain") == 0);
	free(out);
	q = query("--csv", "SELECT typeof(n) FROM plain WHERE id = 5");
	CHECK_STR(q, "typeof(n)\ntext\n");
	free(q);
	CHECK(import(&out, "csv", csv, "--table t --pk id --null NA,N/A --null - --null null") ==
	      0);
	free(out);
	q = query("--csv", "SELECT id, typeof(n), n, s IS NULL FROM t ORDER BY id");
	CHECK_STR(q, "id,typeof(n),n,s IS NULL\n1,null,,0\n2,null,,1\n3,null,,0\n4,null,,1\n"
	             "5,integer,7,0\n");
	free(q);
	/* an empty marker: a quoted "" is NULL too */
	CHECK(import(&out, "csv", csv, "--table e --pk id --null NA,N/A,-,null --null ''") == 0);
	free(out);
	q = query("--csv", "SELECT count(*) FROM e WHERE s IS NULL");
	CHECK_STR(q, "count(*)\n3\n");
	free(q);
	/* a key that is a marker is a NULL key */
	CHECK(import(&out, "csv", "id,v\nNA,1\n", "--table k --pk id --null NA") == 1);
	CHECK_CONTAINS(out, "primary key value is NULL");
	free(out);
	teardown();
}

/* JSON rows whose keys are not all in the first row: the union of the keys, NULL where missing. */
static void test_json_union_of_keys(void)
{
	char *out = NULL, *q;

	setup();
	CHECK(import(&out, "json",
	             "{\"rows\":[{\"id\":1,\"a\":\"x\"},{\"id\":2,\"b\":2.5},{\"c\":true,\"id\":3}]"
	             "}",
	             "--table t --pk id") == 0);
	free(out);
	q = export("t");
	CHECK_STR(q, "id,a,b,c\n1,x,,\n2,,2.5,\n3,,,true\n");
	free(q);
	q = query("--csv", "SELECT typeof(b), typeof(c) FROM t WHERE id = 2");
	CHECK_STR(q, "typeof(b),typeof(c)\nreal,null\n");
	free(q);
	teardown();
}

/* Messages that say what is wrong: UTF-16, a name over the length limit. */
static void test_messages(void)
{
	static const char le[] = "i\0d\0,\0n\0a\0m\0e\0\n\0001\0,\0a\0\n\0";
	static const char be[] = "\0i\0d\0,\0n\0\n\0\x31\0,\0a\0\n";
	static const char bom[] = "\xff\xfei\0d\0\n\0001\0\n\0";
	char *out = NULL, *csv;
	size_t n;

	setup();
	CHECK(import_n(&out, "csv", le, sizeof(le) - 1, "--table t") == 1);
	CHECK_CONTAINS(out, "line 1, column 1: the file looks like UTF-16 text: save it as UTF-8");
	free(out);
	CHECK(import_n(&out, "csv", be, sizeof(be) - 1, "--table t") == 1);
	CHECK_CONTAINS(out, "looks like UTF-16");
	free(out);
	CHECK(import_n(&out, "tsv", bom, sizeof(bom) - 1, "--table t") == 1);
	CHECK_CONTAINS(out, "looks like UTF-16");
	free(out);

	csv = malloc(400);
	memcpy(csv, "id,", 3);
	for (n = 3; n < 3 + 300; n++)
		csv[n] = 'x';
	memcpy(csv + n, "\n1,2\n", 6);
	CHECK(import(&out, "csv", csv, "--table t") == 1);
	CHECK_CONTAINS(out, "line 1, column 2: column name 'xxxx");
	CHECK_CONTAINS(out, "...' is 300 bytes long; the limit is 256 bytes");
	free(out);
	free(csv);
	CHECK(import(&out, "csv", "id,a\tb\n1,2\n", "--table t") == 1);
	CHECK_CONTAINS(out, "invalid column name 'a\tb': a name may not hold control characters");
	free(out);
	teardown();
}

int main(void)
{
	RUN(test_real_format);
	RUN(test_reals_as_exported);
	RUN(test_names_differing_in_case);
	RUN(test_bare_fractions);
	RUN(test_null_values);
	RUN(test_json_union_of_keys);
	RUN(test_messages);
	TH_TEST_END();
}
