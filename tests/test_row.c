/* test_row.c: types (classify/pick), schema.json, name rules, row lines (encode/decode) and the
 * order-preserving key encoding: exact bytes for each type (it is a storage format), and the
 * property that memcmp order of encoded keys equals the natural order of random values. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "harness.h"
#include "tablehub/buf.h"
#include "tablehub/table.h"

#define BIT(t) TH_TYPEBIT(TH_TYPE_##t)

static void test_classify_pick(void)
{
	static const struct {
		const char *value;
		th_type picked;
	} cases[] = {
		{ "0", TH_TYPE_INTEGER },
		{ "42", TH_TYPE_INTEGER },
		{ "-0", TH_TYPE_INTEGER },
		{ "-17", TH_TYPE_INTEGER },
		{ "9223372036854775807", TH_TYPE_INTEGER },
		{ "-9223372036854775808", TH_TYPE_INTEGER },
		{ "9223372036854775808", TH_TYPE_TEXT }, /* past int64: kept as text */
		{ "-9223372036854775809", TH_TYPE_TEXT },
		{ "007", TH_TYPE_TEXT },
		{ "-007", TH_TYPE_TEXT },
		{ "+1", TH_TYPE_TEXT },
		{ "1.50", TH_TYPE_REAL },
		{ "-0.5", TH_TYPE_REAL },
		{ "1e5", TH_TYPE_REAL },
		{ "2.5E-3", TH_TYPE_REAL },
		{ "0.0", TH_TYPE_REAL },
		{ "1e999", TH_TYPE_TEXT }, /* infinite as a double */
		/* a real without its leading zero, as R and spreadsheets print them */
		{ ".5", TH_TYPE_REAL },
		{ "-.5", TH_TYPE_REAL },
		{ ".097", TH_TYPE_REAL },
		{ ".5e3", TH_TYPE_REAL },
		{ "-.5E-2", TH_TYPE_REAL },
		{ ".", TH_TYPE_TEXT },
		{ "-.", TH_TYPE_TEXT },
		{ ".e5", TH_TYPE_TEXT },
		{ "..5", TH_TYPE_TEXT },
		{ ".5.", TH_TYPE_TEXT },
		{ "+.5", TH_TYPE_TEXT },
		{ ".5e999", TH_TYPE_TEXT },
		{ "1.", TH_TYPE_TEXT },
		{ "1e", TH_TYPE_TEXT },
		{ "01.5", TH_TYPE_TEXT },
		{ "NaN", TH_TYPE_TEXT },
		{ "inf", TH_TYPE_TEXT },
		{ "0x10", TH_TYPE_TEXT },
		{ " 1", TH_TYPE_TEXT },
		{ "TRUE", TH_TYPE_BOOLEAN },
		{ "true", TH_TYPE_BOOLEAN },
		{ "False", TH_TYPE_BOOLEAN },
		{ "yes", TH_TYPE_TEXT },
		{ "truex", TH_TYPE_TEXT },
		{ "2024-02-29", TH_TYPE_DATE },
		{ "2000-02-29", TH_TYPE_DATE },
		{ "2023-02-29", TH_TYPE_TEXT },
		{ "1900-02-29", TH_TYPE_TEXT },
		{ "2024-04-31", TH_TYPE_TEXT },
		{ "2024-13-01", TH_TYPE_TEXT },
		{ "2024-1-01", TH_TYPE_TEXT },
		{ "2024-01-01 10:00:00", TH_TYPE_DATETIME },
		{ "2024-01-01T10:00:00.5+02:00", TH_TYPE_DATETIME },
		{ "2024-01-01T23:59:59Z", TH_TYPE_DATETIME },
		{ "2024-01-01T10:00:00.123456-05:30", TH_TYPE_DATETIME },
		{ "2024-01-01T24:00:00", TH_TYPE_TEXT },
		{ "2024-01-01T10:00", TH_TYPE_TEXT },
		{ "2024-01-01T10:00:00.", TH_TYPE_TEXT },
		{ "2024-01-01T10:00:00+2:00", TH_TYPE_TEXT },
		{ "2024-01-01x10:00:00", TH_TYPE_TEXT },
		{ "", TH_TYPE_TEXT },
		{ "hello", TH_TYPE_TEXT },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned m = th_type_classify(cases[i].value, strlen(cases[i].value));
		th_type t = th_type_pick(m);
		CHECK(m & BIT(TEXT));
		if (t != cases[i].picked) {
			fprintf(stderr, "classify '%s': got %s, expected %s\n", cases[i].value,
			        th_type_name(t), th_type_name(cases[i].picked));
			CHECK(0);
		}
	}
	/* integers are real-able and dates datetime-able, so mixed columns widen */
	CHECK(th_type_pick(th_type_classify("1", 1) & th_type_classify("2.5", 3)) == TH_TYPE_REAL);
	CHECK(th_type_pick(th_type_classify("2024-01-01", 10) &
	                   th_type_classify("2024-01-01 10:00:00", 19)) == TH_TYPE_DATETIME);
	CHECK(th_type_pick(th_type_classify("1", 1) & th_type_classify("true", 4)) == TH_TYPE_TEXT);
	CHECK(th_type_pick(th_type_classify("1", 1) & th_type_classify("007", 3)) == TH_TYPE_TEXT);
	/* an all-NULL column (no value narrowed the mask) is text */
	CHECK(th_type_pick(TH_TYPEMASK_ALL) == TH_TYPE_TEXT);
	/* length-bounded: the bytes past len do not count */
	CHECK(th_type_pick(th_type_classify("12abc", 2)) == TH_TYPE_INTEGER);

	CHECK_STR(th_type_name(TH_TYPE_DATETIME), "datetime");
	CHECK(th_type_parse("boolean") == TH_TYPE_BOOLEAN);
	CHECK(th_type_parse("integer") == TH_TYPE_INTEGER);
	CHECK(th_type_parse("Integer") == 0);
	CHECK(th_type_parse("blob") == 0);
}

/* A schema built by hand: columns from `spec` ("name:type" ...), pk given by column indices. */
static void make_schema(th_schema *s, const char *const *names, const th_type *types, size_t n,
                        const size_t *pk, size_t npk)
{
	size_t i;

	s->ncols = n;
	s->cols = calloc(n, sizeof(*s->cols));
	for (i = 0; i < n; i++) {
		s->cols[i].name = strdup(names[i]);
		s->cols[i].type = types[i];
		s->cols[i].nullable = 1;
	}
	s->npk = npk;
	s->pk = npk ? malloc(npk * sizeof(*s->pk)) : NULL;
	if (npk)
		memcpy(s->pk, pk, npk * sizeof(*pk));
	for (i = 0; i < npk; i++)
		s->cols[pk[i]].nullable = 0;
}

static void test_schema_json(void)
{
	static const char *const names[] = { "id", "name \"quoted\"", "score", "日付" };
	static const th_type types[] = { TH_TYPE_INTEGER, TH_TYPE_TEXT, TH_TYPE_REAL,
		                         TH_TYPE_DATE };
	static const size_t pk[] = { 3, 0 };
	th_schema s = TH_SCHEMA_INIT, back = TH_SCHEMA_INIT, copy = TH_SCHEMA_INIT;
	th_buf json = TH_BUF_INIT, json2 = TH_BUF_INIT;
	th_error err;
	uint64_t rows = 99;

	make_schema(&s, names, types, 4, pk, 2);
	CHECK_OK(th_schema_to_json(&json, &s, &err), &err);
	CHECK_STR(json.ptr,
	          "{\n"
	          "  \"format\": 1,\n"
	          "  \"columns\": [\n"
	          "    { \"name\": \"id\", \"type\": \"integer\", \"nullable\": false },\n"
	          "    { \"name\": \"name \\\"quoted\\\"\", \"type\": \"text\", \"nullable\": true "
	          "},\n"
	          "    { \"name\": \"score\", \"type\": \"real\", \"nullable\": true },\n"
	          "    { \"name\": \"日付\", \"type\": \"date\", \"nullable\": false }\n"
	          "  ],\n"
	          "  \"primaryKey\": [ \"日付\", \"id\" ]\n"
	          "}\n");
	CHECK(th_schema_rows_from_json(&rows, json.ptr, json.size) == 0 && rows == 0);

	CHECK_OK(th_schema_from_json(&back, json.ptr, json.size, &err), &err);
	CHECK(back.ncols == 4 && back.npk == 2 && back.pk[0] == 3 && back.pk[1] == 0);
	CHECK_STR(back.cols[1].name, "name \"quoted\"");
	CHECK(back.cols[2].type == TH_TYPE_REAL && back.cols[2].nullable);
	CHECK(back.cols[0].nullable == 0);
	CHECK(th_schema_find(&back, "日付") == 3);
	CHECK(th_schema_find(&back, "nope") == -1);

	/* the stored form carries the row count; reading back ignores it and unknown keys */
	CHECK_OK(th_schema_to_json_rows(&json2, &back, 1234567890123ull, &err), &err);
	CHECK_CONTAINS(json2.ptr,
	               "\"primaryKey\": [ \"日付\", \"id\" ],\n  \"rows\": 1234567890123\n}\n");
	CHECK(th_schema_rows_from_json(&rows, json2.ptr, json2.size) == 0 &&
	      rows == 1234567890123ull);
	th_schema_dispose(&back);
	CHECK_OK(th_schema_from_json(&back, json2.ptr, json2.size, &err), &err);
	CHECK(back.ncols == 4);

	CHECK_OK(th_schema_copy(&copy, &back, &err), &err);
	th_schema_dispose(&back);
	th_buf_clear(&json2);
	CHECK_OK(th_schema_to_json(&json2, &copy, &err), &err);
	CHECK_STR(json2.ptr, json.ptr); /* deterministic: same schema, same bytes */

	/* keyless */
	th_schema_dispose(&s);
	make_schema(&s, names, types, 1, NULL, 0);
	th_buf_clear(&json);
	CHECK_OK(th_schema_to_json(&json, &s, &err), &err);
	CHECK_CONTAINS(json.ptr, "\"primaryKey\": []\n}\n");
	CHECK_OK(th_schema_from_json(&back, json.ptr, json.size, &err), &err);
	CHECK(back.npk == 0 && back.pk == NULL && back.ncols == 1);

	th_schema_dispose(&back);
	th_schema_dispose(&copy);
	th_schema_dispose(&s);
	th_schema_dispose(&s); /* twice is harmless */
	th_buf_dispose(&json);
	th_buf_dispose(&json2);
}

static void test_schema_invalid(void)
{
	static const struct {
		const char *json;
		const char *msg;
	} bad[] = {
		{ "", "not a JSON object" },
		{ "[1]", "not a JSON object" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\",\"type\":\"text\"}",
		  "not a JSON object" },
		{ "{\"columns\":[{\"name\":\"a\",\"type\":\"text\"}]}", "format" },
		{ "{\"format\":2,\"columns\":[{\"name\":\"a\",\"type\":\"text\"}]}", "format" },
		{ "{\"format\":1}", "\"columns\"" },
		{ "{\"format\":1,\"columns\":[]}", "\"columns\"" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\",\"type\":\"blob\"}]}",
		  "unknown type" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\"}]}", "unknown type" },
		{ "{\"format\":1,\"columns\":[{\"type\":\"text\"}]}", "no valid name" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"\",\"type\":\"text\"}]}",
		  "no valid name" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\\nb\",\"type\":\"text\"}]}",
		  "no valid name" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\",\"type\":\"text\"},"
		  "{\"name\":\"a\",\"type\":\"integer\"}]}",
		  "duplicate column 'a'" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\",\"type\":\"text\",\"nullable\":1}]}",
		  "must be a boolean" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\",\"type\":\"text\"}],\"primaryKey\":["
		  "\"b\"]}",
		  "primary key column 'b' does not exist" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\",\"type\":\"text\"}],\"primaryKey\":["
		  "1]}",
		  "does not exist" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\",\"type\":\"text\"}],"
		  "\"primaryKey\":[\"a\",\"a\"]}",
		  "repeated" },
		{ "{\"format\":1,\"columns\":[{\"name\":\"a\",\"type\":\"text\"}],\"primaryKey\":"
		  "\"a\"}",
		  "must be an array" },
	};
	size_t i;
	uint64_t rows;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		th_schema s = TH_SCHEMA_INIT;
		th_error err;
		int rc = th_schema_from_json(&s, bad[i].json, strlen(bad[i].json), &err);

		CHECK(rc == TH_EINVALID);
		CHECK(s.cols == NULL && s.ncols == 0); /* untouched on error */
		if (rc == TH_EINVALID)
			CHECK_CONTAINS(err.msg, bad[i].msg);
		th_schema_dispose(&s);
	}
	CHECK(th_schema_rows_from_json(&rows, "{\"rows\":-1}", 11) == TH_EINVALID);
	CHECK(th_schema_rows_from_json(&rows, "{\"rows\":\"5\"}", 12) == TH_EINVALID);
	CHECK(th_schema_rows_from_json(&rows, "nope", 4) == TH_EINVALID);
}

static void test_names(void)
{
	char long_name[300];

	CHECK(th_table_name_valid("users"));
	CHECK(th_table_name_valid("Users_2024-archive"));
	CHECK(th_table_name_valid("_x"));
	CHECK(!th_table_name_valid(""));
	CHECK(!th_table_name_valid("-users"));
	CHECK(!th_table_name_valid("sqlite_master"));
	CHECK(!th_table_name_valid("SQLite_x"));
	CHECK(th_table_name_valid("sqlitex"));
	CHECK(!th_table_name_valid("a b"));
	CHECK(!th_table_name_valid("a/b"));
	CHECK(!th_table_name_valid(".."));
	CHECK(!th_table_name_valid("tàble"));
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	CHECK(th_table_name_valid(long_name));
	long_name[64] = 'a';
	long_name[65] = '\0';
	CHECK(!th_table_name_valid(long_name));

	CHECK(th_column_name_valid("id"));
	CHECK(th_column_name_valid("first name"));
	CHECK(th_column_name_valid("prix (€) \"TTC\", 日本"));
	CHECK(!th_column_name_valid(""));
	CHECK(!th_column_name_valid("a\tb"));
	CHECK(!th_column_name_valid("a\nb"));
	CHECK(!th_column_name_valid("a\x7f"));
	CHECK(!th_column_name_valid("a\xc2\x85"));    /* NEL, a C1 control */
	CHECK(!th_column_name_valid("bad \xc3\x28")); /* invalid UTF-8 */
	memset(long_name, 'c', 256);
	long_name[256] = '\0';
	CHECK(th_column_name_valid(long_name));
	long_name[256] = 'c';
	long_name[257] = '\0';
	CHECK(!th_column_name_valid(long_name));
}

static th_cell cell(const char *s)
{
	th_cell c;

	c.s = s;
	c.len = s ? strlen(s) : 0;
	c.is_null = s == NULL;
	return c;
}

static void test_row_encode_decode(void)
{
	static const char *const names[] = { "i", "r", "b", "d", "dt", "t", "t2" };
	static const th_type types[] = { TH_TYPE_INTEGER, TH_TYPE_REAL,     TH_TYPE_BOOLEAN,
		                         TH_TYPE_DATE,    TH_TYPE_DATETIME, TH_TYPE_TEXT,
		                         TH_TYPE_TEXT };
	th_schema s = TH_SCHEMA_INIT;
	th_cells dec = TH_CELLS_INIT;
	th_buf line = TH_BUF_INIT;
	th_error err;
	th_cell in[7];
	const char *tricky = "quote \" backslash \\ slash / nl\n cr\r tab\t bell\x07 nul-free "
	                     "\x1f é 日本 😀 \x7f";
	size_t i;

	make_schema(&s, names, types, 7, NULL, 0);
	in[0] = cell("-42");
	in[1] = cell("1.50");
	in[2] = cell("TRUE");
	in[3] = cell("2024-02-29");
	in[4] = cell("2024-01-01T10:00:00.5+02:00");
	in[5] = cell(tricky);
	in[6] = cell(NULL);
	CHECK_OK(th_row_encode(&line, &s, in, &err), &err);
	CHECK_STR(line.ptr, "[-42,1.50,true,\"2024-02-29\",\"2024-01-01T10:00:00.5+02:00\","
	                    "\"quote \\\" backslash \\\\ slash / nl\\n cr\\r tab\\t bell\\u0007 "
	                    "nul-free \\u001f é 日本 😀 \x7f\",null]");

	CHECK_OK(th_row_decode(&dec, &s, line.ptr, line.size, &err), &err);
	CHECK(dec.n == 7);
	CHECK_STR(dec.c[0].s, "-42");
	CHECK_STR(dec.c[1].s, "1.50");
	CHECK_STR(dec.c[2].s, "true");
	CHECK_STR(dec.c[3].s, "2024-02-29");
	CHECK_STR(dec.c[4].s, "2024-01-01T10:00:00.5+02:00");
	CHECK_STR(dec.c[5].s, tricky);
	CHECK(dec.c[5].len == strlen(tricky));
	CHECK(dec.c[6].is_null && dec.c[6].s == NULL && dec.c[6].len == 0);
	for (i = 0; i < 6; i++)
		CHECK(!dec.c[i].is_null && dec.c[i].len == strlen(dec.c[i].s));

	/* re-encoding the decoded cells gives the same line */
	{
		th_buf again = TH_BUF_INIT;
		CHECK_OK(th_row_encode(&again, &s, dec.c, &err), &err);
		CHECK_STR(again.ptr, line.ptr);
		th_buf_dispose(&again);
	}

	/* escapes another writer may use: \u for BMP and astral (surrogate pairs), \b \f \/ */
	{
		static const char l2[] = "[ 0 , -1.5e+3 , false , \"\\u00e9\\u65E5\" , "
		                         "\"\\ud83d\\ude00\" , \"\\b\\f\\/\\u0041\" , \"\" ]";
		CHECK_OK(th_row_decode(&dec, &s, l2, strlen(l2), &err), &err);
		CHECK_STR(dec.c[0].s, "0");
		CHECK_STR(dec.c[1].s, "-1.5e+3");
		CHECK_STR(dec.c[2].s, "false");
		CHECK_STR(dec.c[3].s, "é日");
		CHECK_STR(dec.c[4].s, "😀");
		CHECK(dec.c[4].len == 4);
		CHECK_STR(dec.c[5].s, "\b\f/A");
		CHECK(!dec.c[6].is_null && dec.c[6].len == 0);
		CHECK_STR(dec.c[6].s, "");
	}

	/* a line longer than the previous one: memory is reused and grown */
	{
		th_buf big = TH_BUF_INIT;
		th_buf_puts(&big, "[1,2,true,null,null,\"", NULL);
		for (i = 0; i < 10000; i++)
			th_buf_puts(&big, "\\\"x", NULL);
		th_buf_puts(&big, "\",\"end\"]", NULL);
		CHECK_OK(th_row_decode(&dec, &s, big.ptr, big.size, &err), &err);
		CHECK(dec.c[5].len == 20000);
		CHECK(dec.c[5].s[0] == '"' && dec.c[5].s[19999] == 'x');
		CHECK_STR(dec.c[6].s, "end");
		th_buf_dispose(&big);
	}

	th_buf_dispose(&line);
	th_cells_dispose(&dec);
	th_schema_dispose(&s);
}

static void test_row_decode_errors(void)
{
	static const char *const names[] = { "a", "b" };
	static const th_type types[] = { TH_TYPE_INTEGER, TH_TYPE_TEXT };
	static const char *const bad[] = {
		"",
		"[",
		"[1]",
		"[1,\"a\",2]",
		"[1,\"a\"",
		"[1,\"a\"]x",
		"1,\"a\"]",
		"[01,\"a\"]",
		"[1.,\"a\"]",
		"[-,\"a\"]",
		"[1,\"a]",
		"[1,'a']",
		"[tru,\"a\"]",
		"[nul,\"a\"]",
		"[1,,\"a\"]",
		"[1 \"a\"]",
		"[1,\"a\\x\"]",
		"[1,\"\\u12\"]",
		"[1,\"\\ud800\"]",
		"[1,\"\\ud800\\u0041\"]",
		"[1,\"\\udc00\"]",
		"[1,\"tab\there\"]",
		"[[1],\"a\"]",
	};
	th_schema s = TH_SCHEMA_INIT;
	th_cells dec = TH_CELLS_INIT;
	th_error err;
	size_t i;

	make_schema(&s, names, types, 2, NULL, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = th_row_decode(&dec, &s, bad[i], strlen(bad[i]), &err);
		if (rc != TH_EINVALID) {
			fprintf(stderr, "decode '%s' returned %d\n", bad[i], rc);
			CHECK(0);
		}
	}
	CHECK(th_row_decode(&dec, &s, "[1]", 3, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "fewer cells than the 2 columns");
	CHECK(th_row_decode(&dec, &s, "[1,2,3]", 7, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "more cells than the 2 columns");
	/* still usable after errors */
	CHECK_OK(th_row_decode(&dec, &s, "[7,\"ok\"]", 8, &err), &err);
	CHECK(dec.n == 2);
	CHECK_STR(dec.c[1].s, "ok");
	th_cells_dispose(&dec);
	th_schema_dispose(&s);
}

static void check_key(const th_schema *s, const th_cell *cells, const char *expect, size_t n)
{
	th_buf k = TH_BUF_INIT;
	th_error err;

	CHECK_OK(th_row_key(&k, s, cells, &err), &err);
	CHECK(k.size == n && memcmp(k.ptr, expect, n) == 0);
	th_buf_dispose(&k);
}

static void test_key_bytes(void)
{
	static const char *const names[] = { "v" };
	th_schema s = TH_SCHEMA_INIT;
	th_type t;
	th_cell c;

	t = TH_TYPE_INTEGER;
	make_schema(&s, names, &t, 1, NULL, 0);
	c = cell("1");
	check_key(&s, &c, "\x02\x80\x00\x00\x00\x00\x00\x00\x01", 9);
	c = cell("-1");
	check_key(&s, &c, "\x02\x7f\xff\xff\xff\xff\xff\xff\xff", 9);
	c = cell("-9223372036854775808");
	check_key(&s, &c, "\x02\x00\x00\x00\x00\x00\x00\x00\x00", 9);
	c = cell("9223372036854775807");
	check_key(&s, &c, "\x02\xff\xff\xff\xff\xff\xff\xff\xff", 9);
	c = cell(NULL);
	check_key(&s, &c, "\x01", 1);
	s.cols[0].type = TH_TYPE_REAL;
	c = cell("1.0");
	check_key(&s, &c, "\x03\xbf\xf0\x00\x00\x00\x00\x00\x00", 9);
	c = cell("-2.0"); /* bits c000000000000000, all inverted */
	check_key(&s, &c, "\x03\x3f\xff\xff\xff\xff\xff\xff\xff", 9);
	c = cell("0.0");
	check_key(&s, &c, "\x03\x80\x00\x00\x00\x00\x00\x00\x00", 9);
	c = cell("-0.0");
	check_key(&s, &c, "\x03\x80\x00\x00\x00\x00\x00\x00\x00", 9);
	s.cols[0].type = TH_TYPE_BOOLEAN;
	c = cell("TRUE");
	check_key(&s, &c, "\x04\x01", 2);
	c = cell("false");
	check_key(&s, &c, "\x04\x00", 2);
	s.cols[0].type = TH_TYPE_TEXT;
	c.s = "a\0b";
	c.len = 3;
	c.is_null = 0;
	check_key(&s, &c,
	          "\x05"
	          "a\x00\xff"
	          "b\x00",
	          6);
	c = cell("");
	check_key(&s, &c, "\x05\x00", 2);
	s.cols[0].type = TH_TYPE_DATE;
	c = cell("2024-01-02");
	check_key(&s, &c,
	          "\x05"
	          "2024-01-02\x00",
	          12);

	/* a value the column type cannot hold is refused, not silently mis-ordered */
	{
		th_buf k = TH_BUF_INIT;
		th_error err;
		s.cols[0].type = TH_TYPE_INTEGER;
		c = cell("9223372036854775808");
		CHECK(th_row_key(&k, &s, &c, &err) == TH_EINVALID);
		c = cell("12x");
		CHECK(th_row_key(&k, &s, &c, &err) == TH_EINVALID);
		s.cols[0].type = TH_TYPE_REAL;
		c = cell("1.5x");
		CHECK(th_row_key(&k, &s, &c, &err) == TH_EINVALID);
		th_buf_dispose(&k);
	}
	th_schema_dispose(&s);
}

/* --- ordering property ------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

typedef struct val {
	int is_null;
	int64_t i;
	double d;
	int b;
	char text[8];
	size_t tlen;
	char str[48]; /* the cell text */
} val;

static int cmp_int(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_text(const val *a, const val *b)
{
	size_t n = a->tlen < b->tlen ? a->tlen : b->tlen;
	int c = memcmp(a->text, b->text, n);

	if (c)
		return c < 0 ? -1 : 1;
	return a->tlen < b->tlen ? -1 : a->tlen > b->tlen;
}

static int cmp_val(th_type t, const val *a, const val *b)
{
	if (a->is_null || b->is_null)
		return b->is_null - a->is_null; /* NULL first */
	switch (t) {
	case TH_TYPE_INTEGER:
		return cmp_int(a->i, b->i);
	case TH_TYPE_REAL:
		return a->d < b->d ? -1 : a->d > b->d;
	case TH_TYPE_BOOLEAN:
		return a->b - b->b;
	default:
		return cmp_text(a, b);
	}
}

static void gen_val(th_type t, val *v)
{
	static const int64_t edge_i[] = { INT64_MIN, INT64_MIN + 1, -256,     -255, -1, 0, 1, 255,
		                          256,       INT64_MAX - 1, INT64_MAX };
	static const double edge_d[] = { -DBL_MAX, -1e300, -2.5, -1.0,   -DBL_MIN,
		                         -5e-324,  -0.0,   0.0,  5e-324, DBL_MIN,
		                         0.1,      1.0,    2.5,  1e300,  DBL_MAX };
	static const char alphabet[] = { 'a', 'b', '\x01', '\x7f', '\xff', '\xc3' };

	memset(v, 0, sizeof(*v));
	if (rnd() % 16 == 0) {
		v->is_null = 1;
		return;
	}
	switch (t) {
	case TH_TYPE_INTEGER:
		if (rnd() % 3 == 0)
			v->i = edge_i[rnd() % (sizeof(edge_i) / sizeof(edge_i[0]))];
		else if (rnd() % 2)
			v->i = (int64_t)(rnd() % 2001) - 1000;
		else
			v->i = (int64_t)rnd();
		snprintf(v->str, sizeof(v->str), "%lld", (long long)v->i);
		break;
	case TH_TYPE_REAL: {
		uint64_t bits;
		if (rnd() % 3 == 0) {
			v->d = edge_d[rnd() % (sizeof(edge_d) / sizeof(edge_d[0]))];
		} else if (rnd() % 2) {
			v->d = (double)((int64_t)(rnd() % 20001) - 10000) / 8.0;
		} else {
			do {
				bits = rnd();
				memcpy(&v->d, &bits, 8);
			} while (!isfinite(v->d));
		}
		snprintf(v->str, sizeof(v->str), "%.17g", v->d);
		break;
	}
	case TH_TYPE_BOOLEAN:
		v->b = (int)(rnd() % 2);
		strcpy(v->str,
		       v->b ? (rnd() % 2 ? "true" : "TRUE") : (rnd() % 2 ? "false" : "False"));
		break;
	default:
		v->tlen = (size_t)(rnd() % 5);
		for (size_t i = 0; i < v->tlen; i++)
			v->text[i] = alphabet[rnd() % sizeof(alphabet)];
		memcpy(v->str, v->text, v->tlen);
		v->str[v->tlen] = '\0';
	}
}

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

/* n random rows of a schema; for every pair, memcmp of keys agrees with the natural order. */
static void check_order(const th_schema *s, size_t n)
{
	size_t ncols = s->ncols, nkey = s->npk ? s->npk : s->ncols, i, j, k, bad = 0;
	val *vals = calloc(n * ncols, sizeof(*vals));
	th_buf *keys = calloc(n, sizeof(*keys));
	th_cell *cells = calloc(ncols, sizeof(*cells));
	th_error err;

	for (i = 0; i < n; i++) {
		for (k = 0; k < ncols; k++) {
			val *v = &vals[i * ncols + k];
			gen_val(s->cols[k].type, v);
			cells[k].is_null = v->is_null;
			cells[k].s = v->is_null ? NULL : v->str;
			cells[k].len = v->is_null ? 0 : (v->tlen ? v->tlen : strlen(v->str));
		}
		CHECK_OK(th_row_key(&keys[i], s, cells, &err), &err);
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++) {
			int natural = 0, got;
			size_t la = keys[i].size, lb = keys[j].size;

			for (k = 0; k < nkey && natural == 0; k++) {
				size_t col = s->npk ? s->pk[k] : k;
				natural = cmp_val(s->cols[col].type, &vals[i * ncols + col],
				                  &vals[j * ncols + col]);
			}
			got = memcmp(keys[i].ptr, keys[j].ptr, la < lb ? la : lb);
			if (got == 0)
				got = la < lb ? -1 : la > lb;
			if (sign(got) != sign(natural) && bad++ < 5) {
				fprintf(stderr,
				        "order mismatch: row %zu vs %zu (natural %d, keys %d)\n", i,
				        j, natural, got);
			}
		}
	}
	CHECK(bad == 0);
	for (i = 0; i < n; i++)
		th_buf_dispose(&keys[i]);
	free(keys);
	free(vals);
	free(cells);
}

static void test_key_order(void)
{
	static const char *const one[] = { "v" };
	static const th_type all[] = { TH_TYPE_INTEGER, TH_TYPE_REAL, TH_TYPE_BOOLEAN, TH_TYPE_TEXT,
		                       TH_TYPE_DATE };
	static const char *const names[] = { "name", "id", "flag", "score" };
	static const th_type types[] = { TH_TYPE_TEXT, TH_TYPE_INTEGER, TH_TYPE_BOOLEAN,
		                         TH_TYPE_REAL };
	static const size_t pk[] = { 1, 0 }; /* (id, name): not the column order */
	th_schema s = TH_SCHEMA_INIT;
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		make_schema(&s, one, &all[i], 1, NULL, 0);
		check_order(&s, 600);
		th_schema_dispose(&s);
	}
	/* composite primary key */
	make_schema(&s, names, types, 4, pk, 2);
	check_order(&s, 600);
	th_schema_dispose(&s);
	/* keyless: every column, in column order */
	make_schema(&s, names, types, 4, NULL, 0);
	check_order(&s, 600);
	th_schema_dispose(&s);
}

/* Hand-picked orders the random test may miss. */
static void test_key_order_examples(void)
{
	static const char *const one[] = { "v" };
	th_schema s = TH_SCHEMA_INIT;
	th_buf a = TH_BUF_INIT, b = TH_BUF_INIT;
	th_error err;
	th_type t = TH_TYPE_TEXT;
	th_cell c;
	static const char *const texts[] = { "", "a", "a\x01", "ab", "b", "\xc3\xa9" };
	static const char *const reals[] = { "-1e300", "-2.5", "-0.5", "-0",  "0.0",
		                             "1e-300", "0.5",  "2.5",  "1e5", "1e300" };
	size_t i;

	make_schema(&s, one, &t, 1, NULL, 0);
	for (i = 0; i + 1 < sizeof(texts) / sizeof(texts[0]); i++) {
		th_buf_clear(&a);
		th_buf_clear(&b);
		c = cell(texts[i]);
		th_row_key(&a, &s, &c, &err);
		c = cell(texts[i + 1]);
		th_row_key(&b, &s, &c, &err);
		CHECK(memcmp(a.ptr, b.ptr, a.size < b.size ? a.size : b.size) < 0);
	}
	/* "a\0" sorts after "a" and before "a\x01" */
	th_buf_clear(&a);
	th_buf_clear(&b);
	c.s = "a\0";
	c.len = 2;
	c.is_null = 0;
	th_row_key(&a, &s, &c, &err);
	c = cell("a\x01");
	th_row_key(&b, &s, &c, &err);
	CHECK(memcmp(a.ptr, b.ptr, 4) < 0);
	s.cols[0].type = TH_TYPE_REAL;
	for (i = 0; i + 1 < sizeof(reals) / sizeof(reals[0]); i++) {
		th_buf_clear(&a);
		th_buf_clear(&b);
		c = cell(reals[i]);
		CHECK_OK(th_row_key(&a, &s, &c, &err), &err);
		c = cell(reals[i + 1]);
		CHECK_OK(th_row_key(&b, &s, &c, &err), &err);
		if (i == 3)
			CHECK(a.size == b.size &&
			      memcmp(a.ptr, b.ptr, a.size) == 0); /* -0 == 0.0 */
		else
			CHECK(memcmp(a.ptr, b.ptr, 9) < 0);
	}
	th_buf_dispose(&a);
	th_buf_dispose(&b);
	th_schema_dispose(&s);
}

static void test_key_format(void)
{
	static const char *const names[] = { "id", "name", "ok" };
	static const th_type types[] = { TH_TYPE_INTEGER, TH_TYPE_TEXT, TH_TYPE_BOOLEAN };
	static const size_t pk1[] = { 0 }, pk_name[] = { 1 }, pk2[] = { 0, 1 };
	th_schema s = TH_SCHEMA_INIT;
	th_buf out = TH_BUF_INIT;
	th_error err;
	th_cell c[3];

	c[0] = cell("42");
	c[1] = cell("O'Brien");
	c[2] = cell("TRUE");
	make_schema(&s, names, types, 3, pk1, 1);
	CHECK_OK(th_key_format(&out, &s, c, &err), &err);
	CHECK_STR(out.ptr, "42");
	th_schema_dispose(&s);

	make_schema(&s, names, types, 3, pk_name, 1);
	th_buf_clear(&out);
	CHECK_OK(th_key_format(&out, &s, c, &err), &err);
	CHECK_STR(out.ptr, "'O''Brien'");
	th_schema_dispose(&s);

	make_schema(&s, names, types, 3, pk2, 2);
	th_buf_clear(&out);
	c[1] = cell("a");
	CHECK_OK(th_key_format(&out, &s, c, &err), &err);
	CHECK_STR(out.ptr, "(42, 'a')");
	th_schema_dispose(&s);

	make_schema(&s, names, types, 3, NULL, 0); /* keyless: the whole row */
	th_buf_clear(&out);
	c[1] = cell(NULL);
	CHECK_OK(th_key_format(&out, &s, c, &err), &err);
	CHECK_STR(out.ptr, "(42, NULL, true)");
	th_schema_dispose(&s);

	th_buf_dispose(&out);
}

int main(void)
{
	RUN(test_classify_pick);
	RUN(test_schema_json);
	RUN(test_schema_invalid);
	RUN(test_names);
	RUN(test_row_encode_decode);
	RUN(test_row_decode_errors);
	RUN(test_key_bytes);
	RUN(test_key_order);
	RUN(test_key_order_examples);
	RUN(test_key_format);
	TH_TEST_END();
}
