/* test_sqlwrite.c: SQL writes (src/sqlwrite*.c, storage/sqlsession*.c), the Sql reader
 * (src/sqlstmt.c) and the operation kind "sqlwrite" (src/sqlwrite_job.c).
 *
 * Each test makes a data dir with a database alice/shop, imports rows through the real import
 * engine, runs writes through th_sqlwrite_run / th_sqlwrite_run_fd and checks what a user and git
 * would see: the rows and schema.json of the commit, the objects written (one changed row of a
 * large table is one new chunk), the shared snapshot untouched, failures that commit nothing and
 * say where, the sandbox's refusals, and a retried job that does not run its statements twice. */
#include <fcntl.h>
#include <sys/stat.h>

#include "harness.h"
#include "util.h"
#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/hash.h"
#include "tablehub/import.h"
#include "tablehub/jobs.h"
#include "tablehub/query.h"
#include "tablehub/repo.h"
#include "tablehub/sqlwrite.h"
#include "tablehub/table.h"

static char *dir;
static char data[4096], repo_path[4200];

/* --- fixtures ------------------------------------------------------------------------------- */

static th_repo *open_repo(void)
{
	th_repo *repo = NULL;
	th_error err = { 0 };

	CHECK_OK(th_repo_open(&repo, repo_path, 1, &err), &err);
	return repo;
}

static int import_text(const char *table, const char *pk, const char *text, const char *branch)
{
	char path[4200], tmp[4200];
	const char *pks[1] = { pk };
	th_import_opts o;
	th_import_result res;
	th_error err = { 0 };
	th_repo *repo = open_repo();
	int fd, error;

	snprintf(path, sizeof(path), "%s/in.csv", dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp", data);
	t_write_file(path, text, strlen(text));
	memset(&o, 0, sizeof(o));
	o.table = table;
	o.op = TH_OP_CREATE;
	o.pk = pk ? pks : NULL;
	o.npk = pk ? 1 : 0;
	o.branch = branch;
	o.tmpdir = tmp;
	if ((fd = open(path, O_RDONLY)) < 0)
		abort();
	if ((error = th_import_fd(&res, repo, fd, &o, &err)) != 0)
		fprintf(stderr, "import of %s failed: %s\n", table, err.msg);
	close(fd);
	th_repo_free(repo);
	return error;
}

static void setup(void)
{
	th_error err = { 0 };

	dir = t_mkdtemp();
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(repo_path, sizeof(repo_path), "%s/repos/alice/shop.git", data);
	CHECK_OK(th_datadir_init(data, &err), &err);
	CHECK_OK(th_repo_create(repo_path, "alice", &err), &err);
	CHECK(import_text("people", "id",
	                  "id,name,score,vip,joined\n1,ann,1.50,true,2024-01-02\n2,bob,2,false,\n"
	                  "3,cy,3.25,,2024-03-04\n",
	                  "main") == 0);
	CHECK(import_text("tags", NULL, "tag,n\nred,1\nred,1\nblue,2\n", "main") == 0);
}

static void teardown(void)
{
	t_rmdir(dir);
	dir = NULL;
}

static void opts_init(th_sqlwrite_opts *o, const char *branch)
{
	memset(o, 0, sizeof(*o));
	o->datadir = data;
	o->owner = "alice";
	o->db = "shop";
	o->branch = branch;
	o->author = "alice";
}

/* Run `sql` on `branch` (made from `from` when given). Returns the engine's code; *res disposed
 * unless res_out. */
static int write_sql(th_sqlwrite_result *res_out, const char *branch, const char *from,
                     const char *sql, th_error *err)
{
	th_sqlwrite_opts o;
	th_sqlwrite_result res;
	th_repo *repo = open_repo();
	int error;

	opts_init(&o, branch);
	o.from = from;
	memset(&res, 0, sizeof(res));
	error = th_sqlwrite_run(&res, repo, sql, &o, err);
	th_repo_free(repo);
	if (res_out != NULL && error == 0)
		*res_out = res;
	else
		th_sqlwrite_result_dispose(&res);
	return error;
}

/* The whole table at `ref` as CSV (via `tablehub export`), malloc'd. */
static char *export(const char *ref, const char *table)
{
	char *out = NULL;

	if (t_sh(&out, "'%s' export --data '%s' alice/shop '%s' '%s' 2>&1", TH_BIN, data, ref,
	         table) != 0) {
		fprintf(stderr, "export failed: %s\n", out ? out : "");
		free(out);
		return strdup("(export failed)");
	}
	return out;
}

/* The text of blob `path` at `ref` (git show), malloc'd. */
static char *show(const char *ref, const char *path)
{
	char *out = NULL;

	t_sh(&out, "git -C '%s' show '%s:%s' 2>/dev/null", repo_path, ref, path);
	return out;
}

static void head_of(char out[41], const char *branch)
{
	th_repo *repo = open_repo();
	th_oid oid;

	memset(&oid, 0, sizeof(oid));
	if (th_repo_branch_get(&oid, repo, branch, NULL) != 0)
		strcpy(out, "none");
	else
		th_oid_fmt(out, &oid);
	th_repo_free(repo);
}

static int loose_objects(void)
{
	char *out = NULL;
	int n;

	t_sh(&out, "find '%s/objects' -path '*/objects/[0-9a-f][0-9a-f]/*' -type f | wc -l",
	     repo_path);
	n = atoi(out ? out : "0");
	free(out);
	return n;
}

/* --- the tests ------------------------------------------------------------------------------ */

/* An UPDATE of one row of a 100,000-row table writes one chunk and the trees above it, and the
 * shared snapshot it ran on is left as it was. */
static void test_one_row_one_chunk(void)
{
	th_buf csv = TH_BUF_INIT, snap = TH_BUF_INIT;
	th_chunk_ref *before = NULL, *after = NULL;
	size_t nb = 0, na = 0, i, j, fresh = 0;
	th_table t1 = TH_TABLE_INIT, t2 = TH_TABLE_INIT;
	th_commit_info c1, c2;
	th_query_info qi;
	th_sqlwrite_result res;
	th_error err = { 0 };
	th_repo *repo;
	struct stat st1, st2;
	char *sum1 = NULL, *sum2 = NULL, *out;
	int objs;

	setup();
	th_buf_puts(&csv, "id,name,city,amount\n", NULL);
	for (i = 1; i <= 100000; i++)
		th_buf_printf(&csv, NULL, "%zu,name-%06zu,city-%zu,%zu.%02zu\n", i, i, i % 97,
		              i % 1000, i % 100);
	CHECK(import_text("big", "id", csv.ptr, "main") == 0);
	/* The snapshot of main, as a query makes it. */
	{
		th_query_target t = { data, "alice", "shop", "main" };
		CHECK_OK(th_query_snapshot(&snap, &qi, &t, NULL, &err), &err);
	}
	CHECK(stat(snap.ptr, &st1) == 0);
	t_sh(&sum1, "sha256sum '%s'", snap.ptr);
	objs = loose_objects();

	memset(&res, 0, sizeof(res));
	CHECK_OK(write_sql(&res, "main", NULL,
	                   "UPDATE big SET name = 'NAME-050000' WHERE id = 50000", &err),
	         &err);
	CHECK(res.committed && res.statements == 1 && res.rows_affected == 1);
	CHECK(res.ntables == 1 && res.rows_modified == 1 && res.rows_added == 0 &&
	      res.rows_removed == 0);
	CHECK(res.ntables == 1 && strcmp(res.tables[0].name, "big") == 0 &&
	      res.tables[0].change == TH_SQLWRITE_MODIFIED && !res.tables[0].schema_changed);

	/* The snapshot the write ran on: the same file, the same bytes. (A query of the new commit
	 * may then take it over to advance it: that is the cache's business.) */
	CHECK(stat(snap.ptr, &st2) == 0);
	CHECK(st1.st_ino == st2.st_ino && st1.st_size == st2.st_size &&
	      st1.st_mtim.tv_sec == st2.st_mtim.tv_sec &&
	      st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);
	t_sh(&sum2, "sha256sum '%s'", snap.ptr);
	CHECK_STR(sum2, sum1);

	/* One chunk differs; every other is the same blob. */
	repo = open_repo();
	memset(&c1, 0, sizeof(c1));
	memset(&c2, 0, sizeof(c2));
	CHECK_OK(th_repo_commit_read(&c1, repo, &res.from_commit, &err), &err);
	CHECK_OK(th_repo_commit_read(&c2, repo, &res.to_commit, &err), &err);
	CHECK_OK(th_table_load(&t1, repo, &c1.tree, "big", &err), &err);
	CHECK_OK(th_table_load(&t2, repo, &c2.tree, "big", &err), &err);
	CHECK_OK(th_table_chunks(&before, &nb, repo, &t1.rows, &err), &err);
	CHECK_OK(th_table_chunks(&after, &na, repo, &t2.rows, &err), &err);
	CHECK(nb > 20 && na == nb);
	for (i = 0; i < na; i++) {
		int known = 0;
		for (j = 0; j < nb && !known; j++)
			known = th_oid_equal(&after[i].oid, &before[j].oid);
		fresh += !known;
	}
	CHECK(fresh == 1);
	CHECK(t2.row_count == 100000);
	/* New objects: that chunk, the rows trees (two levels), the table's tree, tables/, the root
	 * tree and the commit; schema.json is unchanged. */
	CHECK(loose_objects() - objs <= 7);
	CHECK(loose_objects() - objs >= 5);
	out = show("main", "tables/big/schema.json");
	CHECK(out && strstr(out, "\"rows\": 100000") != NULL);
	free(out);
	t_sh(&out,
	     "'%s' query --data '%s' alice/shop main \"SELECT name FROM big WHERE id IN "
	     "(49999, 50000, 50001) ORDER BY id\" --csv 2>&1",
	     TH_BIN, data);
	CHECK_CONTAINS(out, "name-049999\nNAME-050000\nname-050001");
	free(out);

	free(sum1);
	free(sum2);
	free(before);
	free(after);
	th_table_dispose(&t1);
	th_table_dispose(&t2);
	th_commit_info_dispose(&c1);
	th_commit_info_dispose(&c2);
	th_repo_free(repo);
	th_sqlwrite_result_dispose(&res);
	th_buf_dispose(&csv);
	th_buf_dispose(&snap);
	teardown();
}

/* CREATE TABLE writes the schema.json an import of the same rows writes; ALTER TABLE changes it
 * as a re-import with the new column would. */
static void test_ddl_schema_as_import(void)
{
	th_sqlwrite_result res;
	th_error err = { 0 };
	char *a, *b, *out;

	setup();
	CHECK(import_text("imported", "id",
	                  "id,name,amount,ok,day\n1,x,1.5,true,2024-05-06\n2,y,,false,\n",
	                  "main") == 0);
	CHECK_OK(write_sql(&res, "main", NULL,
	                   "CREATE TABLE made (id INTEGER PRIMARY KEY, name TEXT, amount REAL, ok "
	                   "BOOLEAN, day DATE);\n"
	                   "INSERT INTO made VALUES (1, 'x', 1.5, 1, '2024-05-06'), "
	                   "(2, 'y', NULL, 0, NULL);",
	                   &err),
	         &err);
	CHECK(res.ntables == 1 && res.tables[0].change == TH_SQLWRITE_ADDED &&
	      res.tables[0].rows_added == 2);
	th_sqlwrite_result_dispose(&res);
	a = show("main", "tables/imported/schema.json");
	b = show("main", "tables/made/schema.json");
	CHECK(a != NULL && b != NULL && a[0] == '{');
	CHECK_STR(b, a);
	free(b);
	out = export("main", "made");
	CHECK_STR(out, "id,name,amount,ok,day\n1,x,1.5,true,2024-05-06\n2,y,,false,\n");
	free(out);
	free(a);

	/* ALTER TABLE ADD COLUMN: a nullable text column, NULL in the rows the UPDATE missed;
	 * the pull-diff counts: one row modified (a column of NULLs is no change). */
	CHECK_OK(write_sql(&res, "main", NULL,
	                   "ALTER TABLE people ADD COLUMN note TEXT; UPDATE people SET note = 'hi' "
	                   "WHERE id = 2",
	                   &err),
	         &err);
	CHECK(res.ntables == 1 && res.tables[0].schema_changed &&
	      res.tables[0].rows_modified == 1 && res.tables[0].rows_added == 0 &&
	      res.tables[0].rows_removed == 0);
	th_sqlwrite_result_dispose(&res);
	a = show("main", "tables/people/schema.json");
	CHECK_CONTAINS(a, "{ \"name\": \"note\", \"type\": \"text\", \"nullable\": true }");
	free(a);
	out = export("main", "people");
	CHECK_STR(out, "id,name,score,vip,joined,note\n1,ann,1.50,true,2024-01-02,\n"
	               "2,bob,2,false,,hi\n3,cy,3.25,,2024-03-04,\n");
	free(out);

	/* RENAME COLUMN changes only schema.json; DROP TABLE removes the table. */
	CHECK_OK(write_sql(&res, "main", NULL, "ALTER TABLE people RENAME COLUMN note TO remark",
	                   &err),
	         &err);
	th_sqlwrite_result_dispose(&res);
	t_sh(&out, "git -C '%s' diff --stat main~1 main", repo_path);
	CHECK_CONTAINS(out, "tables/people/schema.json | 2 +-\n 1 file changed");
	free(out);
	/* CREATE TABLE ... AS SELECT declares "NUM" for dates: the values decide. */
	CHECK_OK(write_sql(&res, "main", NULL,
	                   "CREATE TABLE copy AS SELECT id, name, joined FROM people", &err),
	         &err);
	th_sqlwrite_result_dispose(&res);
	a = show("main", "tables/copy/schema.json");
	CHECK_CONTAINS(a, "{ \"name\": \"id\", \"type\": \"integer\", \"nullable\": true }");
	CHECK_CONTAINS(a, "{ \"name\": \"joined\", \"type\": \"date\", \"nullable\": true }");
	free(a);
	CHECK_OK(write_sql(&res, "main", NULL, "DROP TABLE tags", &err), &err);
	CHECK(res.ntables == 1 && res.tables[0].change == TH_SQLWRITE_DROPPED &&
	      res.tables[0].rows_removed == 3);
	th_sqlwrite_result_dispose(&res);
	a = show("main", "tables/tags/schema.json");
	CHECK(a != NULL && a[0] == '\0');
	free(a);
	teardown();
}

/* Rows, numbers kept as written, keyless tables, types of undeclared columns. */
static void test_rows_and_values(void)
{
	th_sqlwrite_result res;
	th_error err = { 0 };
	char *out, *a;

	setup();
	/* Another column of the row changes: 1.50 stays 1.50 (SQLite holds 1.5). */
	CHECK_OK(
	        write_sql(&res, "main", NULL,
	                  "UPDATE people SET name = 'ANN', score = score WHERE id = 1; DELETE FROM "
	                  "people WHERE id = 3; INSERT INTO people VALUES (4, 'dee', 404.0, 1, "
	                  "'2024-09-10'), (5, 'eve', 0.1, 'TRUE', NULL)",
	                  &err),
	        &err);
	CHECK(res.rows_added == 2 && res.rows_modified == 1 && res.rows_removed == 1);
	th_sqlwrite_result_dispose(&res);
	out = export("main", "people");
	CHECK_STR(out, "id,name,score,vip,joined\n1,ANN,1.50,true,2024-01-02\n2,bob,2,false,\n"
	               "4,dee,404,true,2024-09-10\n5,eve,0.1,true,\n");
	free(out);
	a = show("main", "tables/people/schema.json");
	CHECK_CONTAINS(a, "\"rows\": 4");
	free(a);

	/* A keyless table: copies counted. */
	CHECK_OK(write_sql(
	                 &res, "main", NULL,
	                 "DELETE FROM tags WHERE tag = 'blue'; INSERT INTO tags VALUES ('red', 1), "
	                 "('green', 3)",
	                 &err),
	         &err);
	CHECK(res.ntables == 1 && res.rows_added == 2 && res.rows_removed == 1);
	th_sqlwrite_result_dispose(&res);
	out = export("main", "tags");
	CHECK_STR(out, "tag,n\ngreen,3\nred,1\nred,1\nred,1\n");
	free(out);

	/* Columns without a declared type are typed from their values, as an import would. */
	CHECK_OK(write_sql(&res, "main", NULL,
	                   "CREATE TABLE loose (a, b, c); INSERT INTO loose VALUES (1, 2.5, 'x'), "
	                   "(2, 3, NULL)",
	                   &err),
	         &err);
	th_sqlwrite_result_dispose(&res);
	a = show("main", "tables/loose/schema.json");
	CHECK_CONTAINS(a, "{ \"name\": \"a\", \"type\": \"integer\", \"nullable\": true }");
	CHECK_CONTAINS(a, "{ \"name\": \"b\", \"type\": \"real\", \"nullable\": true }");
	CHECK_CONTAINS(a, "{ \"name\": \"c\", \"type\": \"text\", \"nullable\": true }");
	CHECK_CONTAINS(a, "\"primaryKey\": []");
	free(a);

	/* Nothing changed: no commit. */
	{
		char before[41], after[41];
		head_of(before, "main");
		CHECK_OK(write_sql(&res, "main", NULL, "UPDATE people SET name = name", &err),
		         &err);
		CHECK(!res.committed && th_oid_equal(&res.from_commit, &res.to_commit));
		th_sqlwrite_result_dispose(&res);
		head_of(after, "main");
		CHECK_STR(after, before);
	}
	teardown();
}

/* A failing statement fails the write with its message and place, and nothing is committed: the
 * branch stays where it was, a branch to be made is not made. */
static void test_failure_commits_nothing(void)
{
	th_error err = { 0 };
	char before[41], after[41], *out;

	setup();
	head_of(before, "main");
	CHECK(write_sql(NULL, "main", NULL,
	                "INSERT INTO people VALUES (9, 'zed', 1, 0, NULL);\n"
	                "UPDATE people SET nosuch = 1 WHERE id = 1;",
	                &err) == TH_EINVALID);
	CHECK_STR(err.msg, "statement 2 (line 2, column 1): no such column: nosuch");
	CHECK(err.line == 2 && err.column == 1);
	head_of(after, "main");
	CHECK_STR(after, before);
	out = export("main", "people");
	CHECK(strstr(out, "zed") == NULL);
	free(out);

	/* A syntax error is placed at its token. */
	CHECK(write_sql(NULL, "main", NULL, "DELETE FROM people WHERE id = 1;\n  UPDAT people",
	                &err) == TH_EINVALID);
	CHECK_STR(err.msg, "statement 2 (line 2, column 3): near \"UPDAT\": syntax error");
	CHECK(err.line == 2 && err.column == 3);

	/* A constraint, a value its column cannot hold, a key made NULL. */
	CHECK(write_sql(NULL, "main", NULL, "INSERT INTO people VALUES (1, 'dup', 1, 0, NULL)",
	                &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "UNIQUE constraint failed: people.id");
	CHECK(write_sql(NULL, "main", NULL, "UPDATE people SET score = 'lots' WHERE id = 2",
	                &err) == TH_EINVALID);
	CHECK_STR(err.msg, "table 'people': column 'score' is real and cannot hold 'lots'");
	CHECK(write_sql(NULL, "main", NULL, "UPDATE people SET vip = 7", &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "column 'vip' is boolean and cannot hold 7");

	/* With a branch to make: not made. */
	CHECK(write_sql(NULL, "feature", "main", "UPDATE people SET nosuch = 1", &err) ==
	      TH_EINVALID);
	head_of(after, "feature");
	CHECK_STR(after, "none");
	head_of(after, "main");
	CHECK_STR(after, before);
	/* ... and made with the commit when the write succeeds. */
	CHECK(write_sql(NULL, "feature", "main", "DELETE FROM people WHERE id = 2", &err) == 0);
	head_of(after, "main");
	CHECK_STR(after, before);
	head_of(after, "feature");
	CHECK(strcmp(after, "none") != 0 && strcmp(after, before) != 0);
	CHECK(write_sql(NULL, "nosuch", NULL, "DELETE FROM people", &err) == TH_ENOTFOUND);
	CHECK_STR(err.msg, "branch 'nosuch' not found");
	teardown();
}

/* Everything but reading and changing tables is refused, by name, and changes nothing. */
static void test_sandbox(void)
{
	static const struct {
		const char *sql, *msg;
	} cases[] = {
		{ "ATTACH '/tmp/x.db' AS x", "ATTACH is not allowed" },
		{ "PRAGMA writable_schema = 1", "PRAGMA writable_schema is not allowed" },
		{ "CREATE INDEX i ON people(name)", "indexes are not allowed" },
		{ "CREATE VIEW v AS SELECT 1", "views are not allowed" },
		{ "CREATE TRIGGER tr AFTER INSERT ON people BEGIN DELETE FROM tags; END",
		  "triggers are not allowed" },
		{ "CREATE TEMP TABLE x (a)", "temporary objects are not allowed" },
		{ "BEGIN", "transactions are not allowed" },
		{ "VACUUM", "VACUUM is not allowed" },
		{ "SELECT load_extension('x')", "function load_extension() is not allowed" },
		{ "CREATE TABLE \"a b\" (x)", "bad table name 'a b'" },
		{ "CREATE TABLE sqlite_x (a)", "reserved for internal use" },
		{ "UPDATE sqlite_schema SET sql = ''", "may not be modified" },
		{ "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) "
		  "FROM c",
		  "exceeded the time limit of 1 s" },
	};
	th_sqlwrite_opts o;
	th_sqlwrite_result res;
	th_error err = { 0 };
	th_repo *repo;
	char before[41], after[41];
	size_t i;

	setup();
	head_of(before, "main");
	repo = open_repo();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;
		opts_init(&o, "main");
		o.time_ms = 1000;
		memset(&res, 0, sizeof(res));
		th_error_clear(&err);
		rc = th_sqlwrite_run(&res, repo, cases[i].sql, &o, &err);
		CHECK(rc == TH_EINVALID || rc == TH_ELIMIT);
		if (strstr(err.msg, cases[i].msg) == NULL)
			fprintf(stderr, "case %zu: '%s' does not say '%s'\n", i, err.msg,
			        cases[i].msg);
		CHECK_CONTAINS(err.msg, cases[i].msg);
		th_sqlwrite_result_dispose(&res);
	}
	/* The memory limit: a sort that needs more than the write's heap. */
	opts_init(&o, "main");
	o.heap_bytes = 4 << 20;
	memset(&res, 0, sizeof(res));
	CHECK(th_sqlwrite_run(
	              &res, repo,
	              "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT "
	              "300000) SELECT x FROM c ORDER BY random()",
	              &o, &err) == TH_ELIMIT);
	CHECK_STR(err.msg, "statement 1 (line 1, column 1): exceeded the memory limit of 4 MiB");
	th_repo_free(repo);
	head_of(after, "main");
	CHECK_STR(after, before);
	teardown();
}

/* A table the snapshot leaves out (column names that differ only in case: SQLite cannot hold it)
 * is kept as it is by writes, and a table made under its name is refused. */
static void test_table_left_out(void)
{
	th_schema s = TH_SCHEMA_INIT;
	th_commit_info ci;
	th_oid head, root, commit, no_rows;
	th_sqlwrite_result res;
	th_error err = { 0 };
	th_repo *repo;
	char *before, *after;

	setup();
	memset(&ci, 0, sizeof(ci));
	memset(&no_rows, 0, sizeof(no_rows));
	s.cols = calloc(2, sizeof(*s.cols));
	s.cols[0].name = strdup("A");
	s.cols[1].name = strdup("a");
	s.cols[0].type = s.cols[1].type = TH_TYPE_TEXT;
	s.cols[0].nullable = s.cols[1].nullable = 1;
	s.ncols = 2;
	repo = open_repo();
	CHECK_OK(th_repo_branch_get(&head, repo, "main", &err), &err);
	CHECK_OK(th_repo_commit_read(&ci, repo, &head, &err), &err);
	CHECK_OK(th_table_store(&root, repo, &ci.tree, "twins", &s, &no_rows, 0, &err), &err);
	CHECK_OK(th_repo_commit_write(&commit, repo, &root, &head, 1, "test", "test@example.com",
	                              "a table SQL cannot hold", &err),
	         &err);
	CHECK_OK(th_repo_branch_cas(repo, "main", &commit, &head, "test", &err), &err);
	th_commit_info_dispose(&ci);
	th_schema_dispose(&s);
	th_repo_free(repo);

	before = show("main", "tables/twins/schema.json");
	CHECK(before != NULL && strstr(before, "\"A\"") != NULL);
	CHECK_OK(write_sql(&res, "main", NULL, "UPDATE people SET name = 'x' WHERE id = 1", &err),
	         &err);
	CHECK(res.committed && res.ntables == 1 && strcmp(res.tables[0].name, "people") == 0);
	th_sqlwrite_result_dispose(&res);
	after = show("main", "tables/twins/schema.json");
	CHECK_STR(after, before);
	free(after);
	CHECK(write_sql(NULL, "main", NULL, "CREATE TABLE twins (x)", &err) == TH_EINVALID);
	CHECK_STR(err.msg, "table 'twins' cannot be written with SQL: SQLite cannot hold it (too "
	                   "many columns, or column names that differ only in case)");
	after = show("main", "tables/twins/schema.json");
	CHECK_STR(after, before);
	free(after);
	free(before);
	teardown();
}

/* A file of statements, streamed: positions are the file's. */
static void test_file(void)
{
	static const char dump[] = "\xef\xbb\xbf-- a dump\n"
	                           "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"
	                           "INSERT INTO notes VALUES (1, 'semi; colon'), (2, 'it''s');\n"
	                           "/* c; */ INSERT INTO notes VALUES (3, \"x\")  ;\n"
	                           "INSERT INTO notes VALUES (4, 'no end')";
	th_sqlwrite_opts o;
	th_sqlwrite_result res;
	th_error err = { 0 };
	th_repo *repo;
	char path[4200], *out;
	int fd;

	setup();
	snprintf(path, sizeof(path), "%s/dump.sql", dir);
	t_write_file(path, dump, strlen(dump));
	repo = open_repo();
	opts_init(&o, "main");
	fd = open(path, O_RDONLY);
	memset(&res, 0, sizeof(res));
	CHECK_OK(th_sqlwrite_run_fd(&res, repo, fd, &o, &err), &err);
	close(fd);
	CHECK(res.statements == 4 && res.rows_added == 4);
	th_sqlwrite_result_dispose(&res);
	out = export("main", "notes");
	CHECK_STR(out, "id,body\n1,semi; colon\n2,it's\n3,x\n4,no end\n");
	free(out);

	/* An error in the file: its line and column there. */
	t_write_file(
	        path, "INSERT INTO notes VALUES (5, 'a');\n\n  INSERT INTO nope VALUES (1);\n",
	        strlen("INSERT INTO notes VALUES (5, 'a');\n\n  INSERT INTO nope VALUES (1);\n"));
	fd = open(path, O_RDONLY);
	CHECK(th_sqlwrite_run_fd(&res, repo, fd, &o, &err) == TH_EINVALID);
	close(fd);
	CHECK_STR(err.msg, "statement 2 (line 3, column 3): no such table: nope");
	CHECK(err.line == 3 && err.column == 3);
	/* invalid UTF-8 */
	t_write_file(path, "INSERT INTO notes VALUES (6, 'a');\nSELECT '\xff';\n", 45);
	fd = open(path, O_RDONLY);
	CHECK(th_sqlwrite_run_fd(&res, repo, fd, &o, &err) == TH_EINVALID);
	close(fd);
	CHECK_STR(err.msg, "line 2, column 9: invalid UTF-8");
	out = export("main", "notes");
	CHECK(strstr(out, "5,a") == NULL && strstr(out, "6,a") == NULL);
	free(out);
	th_repo_free(repo);
	teardown();
}

/* The Sql reader alone: statements with their places. */
static void test_reader(void)
{
	static const char text[] = "  SELECT 1;SELECT ';'; -- c;\n"
	                           "SELECT \"a;\" ,[b;]\n, `c;`;/* x; */\n"
	                           "  SELECT 2 -- tail";
	th_reader *r = NULL;
	th_reader_row row;
	th_error err = { 0 };
	char path[64] = "/tmp/th-sqlstmt-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	lseek(fd, 0, SEEK_SET);
	unlink(path);
	CHECK_OK(th_reader_open(&r, th_format_find("sql"), fd, NULL, 0, &err), &err);
	CHECK(th_format_is_sql(th_format_find("Sql")) && !th_format_is_sql(th_format_find("csv")));
	CHECK(th_reader_next(r, &row, &err) == 1 && row.n == 2);
	CHECK_STR(row.cells[0], "statement");
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK_STR(row.cells[0], "SELECT 1;");
	CHECK(row.line == 1 && strcmp(row.cells[1], "3") == 0);
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK_STR(row.cells[0], "SELECT ';';");
	CHECK(row.line == 1 && strcmp(row.cells[1], "12") == 0);
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK_STR(row.cells[0], "-- c;\nSELECT \"a;\" ,[b;]\n, `c;`;");
	CHECK(row.line == 1 && strcmp(row.cells[1], "24") == 0);
	CHECK(th_reader_next(r, &row, &err) == 1);
	CHECK_STR(row.cells[0], "/* x; */\n  SELECT 2 -- tail");
	CHECK(row.line == 3 && strcmp(row.cells[1], "8") == 0);
	CHECK(th_reader_next(r, &row, &err) == 0);
	CHECK(th_reader_bytes(r) == strlen(text));
	th_reader_close(r);
	close(fd);
}

/* A retried job finds the commit its first attempt made and completes with it: the statements
 * do not run twice. Operations of kind "sqlwrite" are stored like any other. */
static void test_job_retry(void)
{
	th_meta *m = NULL;
	th_jobs *j = NULL;
	th_op_info op;
	th_sqlwrite_opts o;
	th_sqlwrite_result res;
	th_error err = { 0 };
	th_repo *repo;
	char id[TH_UUID_SIZE], trailer[80], made[41], *out;
	int i;

	setup();
	CHECK_OK(th_meta_open(&m, data, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "shop", NULL, 0, &err), &err);
	CHECK_OK(th_sqlwrite_enqueue(id, m, "alice", "shop", "alice", "main", "main",
	                             "UPDATE people SET score = score + 1 WHERE id = 2", &err),
	         &err);
	memset(&op, 0, sizeof(op));
	CHECK_OK(th_meta_op_get(&op, m, id, &err), &err);
	CHECK_STR(op.kind, "sqlwrite");
	CHECK_STR(op.branch_name, "main");
	th_op_info_dispose(&op);
	/* The first attempt: claimed, its commit made, then the process died. */
	CHECK_OK(th_meta_op_claim(&op, m, 60000, &err), &err);
	CHECK(strcmp(op.id, id) == 0 && op.attempts == 1);
	th_op_info_dispose(&op);
	repo = open_repo();
	opts_init(&o, "main");
	snprintf(trailer, sizeof(trailer), "Operation: operations/%s", id);
	o.trailer = trailer;
	memset(&res, 0, sizeof(res));
	CHECK_OK(th_sqlwrite_run(&res, repo, "UPDATE people SET score = score + 1 WHERE id = 2", &o,
	                         &err),
	         &err);
	th_oid_fmt(made, &res.to_commit);
	th_sqlwrite_result_dispose(&res);
	th_repo_free(repo);
	CHECK_OK(th_meta_op_requeue_running(NULL, m, &err), &err);
	/* The retry. */
	CHECK_OK(th_jobs_start(&j, data, m, 1, &err), &err);
	for (i = 0; i < 200; i++) {
		memset(&op, 0, sizeof(op));
		CHECK_OK(th_meta_op_get(&op, m, id, &err), &err);
		if (op.state == TH_OPSTATE_COMPLETED || op.state == TH_OPSTATE_FAILED)
			break;
		th_op_info_dispose(&op);
		usleep(50000);
	}
	th_jobs_stop(j);
	CHECK(op.state == TH_OPSTATE_COMPLETED && op.attempts == 2);
	CHECK_CONTAINS(op.result, made);
	CHECK_CONTAINS(op.result, "\"rows_modified\":1");
	th_op_info_dispose(&op);
	head_of(trailer, "main");
	CHECK_STR(trailer, made);
	out = export("main", "people");
	CHECK_CONTAINS(out, "2,bob,3,false,"); /* once, not twice */
	free(out);
	/* Kinds are names, not a fixed list; a malformed one is refused. */
	{
		th_op_new bad;
		memset(&bad, 0, sizeof(bad));
		bad.kind = "Bad Kind";
		bad.owner = "alice";
		bad.db = "shop";
		bad.creator = "alice";
		CHECK(th_meta_op_create(id, m, &bad, &err) == TH_EINVALID);
	}
	th_meta_close(m);
	teardown();
}

int main(void)
{
	th_error err = { 0 };

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	RUN(test_one_row_one_chunk);
	RUN(test_ddl_schema_as_import);
	RUN(test_rows_and_values);
	RUN(test_failure_commits_nothing);
	RUN(test_sandbox);
	RUN(test_table_left_out);
	RUN(test_file);
	RUN(test_reader);
	RUN(test_job_retry);
	th_repo_global_shutdown();
	TH_TEST_END();
}
