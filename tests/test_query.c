/* test_query.c: read-only SQL over snapshots (src/query*.c, storage/sqlcache_*.c), the tables
 * at a ref, and exporters (src/export*.c). DoltHub's JSON for a result is api/'s: its test is in
 * tests/api/test_api_query.c.
 *
 * Each test makes a data dir with a database alice/shop holding the CSV fixtures (people: key id;
 * orders: key order; inventory: keyless), imported through the real import engine, and checks what
 * a user would: rows and types against the fixture, every kind of ref, that snapshots are shared,
 * built once under concurrency, advanced from an ancestor to the same content a fresh build has,
 * evicted least-recently-used first, that every sandbox refusal is an error that changes no
 * file, and that a table SQLite cannot hold is left out without breaking the others. */
#include <fcntl.h>
#include <sys/file.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "util.h"
#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/export.h"
#include "tablehub/import.h"
#include "tablehub/query.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

static char *dir;
static char data[4096];

/* --- fixtures ------------------------------------------------------------------------------- */

static int import_text(const char *table, th_import_op op, const char *pk, const char *fmt,
                       const char *text, const char *branch)
{
	char path[4200], repo_path[4200], tmp[4200];
	const char *pks[1] = { pk };
	th_import_opts o;
	th_import_result res;
	th_error err = { 0 };
	th_repo *repo = NULL;
	int fd, error;

	snprintf(path, sizeof(path), "%s/in.txt", dir);
	snprintf(repo_path, sizeof(repo_path), "%s/repos/alice/shop.git", data);
	snprintf(tmp, sizeof(tmp), "%s/tmp", data);
	t_write_file(path, text, strlen(text));
	memset(&o, 0, sizeof(o));
	o.table = table;
	o.op = op;
	o.pk = pk ? pks : NULL;
	o.npk = pk ? 1 : 0;
	o.format = th_format_find(fmt);
	o.branch = branch;
	o.tmpdir = tmp;
	if ((fd = open(path, O_RDONLY)) < 0)
		abort();
	error = th_repo_open(&repo, repo_path, 1, &err);
	if (error == 0)
		error = th_import_fd(&res, repo, fd, &o, &err);
	if (error != 0)
		fprintf(stderr, "import of %s failed: %s\n", table, err.msg);
	close(fd);
	th_repo_free(repo);
	return error;
}

static int import_fixture(const char *table, const char *file, const char *pk, const char *fmt)
{
	char path[4200];
	char *text;
	int error;

	snprintf(path, sizeof(path), "%s/csv/%s", TH_FIXTURES, file);
	if ((text = t_read_file(path, NULL)) == NULL)
		abort();
	error = import_text(table, TH_OP_CREATE, pk, fmt, text, "main");
	free(text);
	return error;
}

static void setup(void)
{
	char repo_path[4200];
	th_error err = { 0 };

	dir = t_mkdtemp();
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(repo_path, sizeof(repo_path), "%s/repos/alice/shop.git", data);
	CHECK_OK(th_datadir_init(data, &err), &err);
	CHECK_OK(th_repo_create(repo_path, "alice", &err), &err);
	CHECK(import_fixture("people", "people.csv", "id", "Csv") == 0);
	CHECK(import_fixture("orders", "orders.psv", "order", "Psv") == 0);
	CHECK(import_fixture("inventory", "inventory.tsv", NULL, "Tsv") == 0);
}

static void teardown(void)
{
	t_rmdir(dir);
	dir = NULL;
}

static th_query_target target(const char *ref)
{
	th_query_target t = { data, "alice", "shop", ref };
	return t;
}

/* --- a sink that keeps the result as text --------------------------------------------------- */

typedef struct result {
	th_buf cols; /* "name:type|name:type" */
	th_buf rows; /* one line a row, cells joined by '|', NULL as \N */
	size_t nrows;
} result;

static int res_columns(void *p, size_t n, const char *const *names, const char *const *types,
                       th_error *err)
{
	result *r = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (th_buf_printf(&r->cols, err, "%s%s:%s", i ? "|" : "", names[i], types[i]) < 0)
			return TH_ENOMEM;
	return TH_OK;
}

static int res_row(void *p, const th_cell *cells, size_t n, th_error *err)
{
	result *r = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (i)
			th_buf_putc(&r->rows, '|', err);
		if (cells[i].is_null)
			th_buf_puts(&r->rows, "\\N", err);
		else
			th_buf_put(&r->rows, cells[i].s, cells[i].len, err);
	}
	r->nrows++;
	return th_buf_putc(&r->rows, '\n', err);
}

static void res_dispose(result *r)
{
	th_buf_dispose(&r->cols);
	th_buf_dispose(&r->rows);
	memset(r, 0, sizeof(*r));
}

/* Run sql at ref with opts (NULL: defaults) into *r; returns the code, message in *err. */
static int run(result *r, const char *ref, const char *sql, const th_query_opts *o,
               th_query_info *info, th_error *err)
{
	th_query_target t = target(ref);
	th_sql_sink sink = { res_columns, res_row, r };

	memset(r, 0, sizeof(*r));
	return th_query_run(info, &t, sql, o, &sink, err);
}

/* The rows of sql at ref, or "ERROR: msg" (malloc'd). */
static char *rows_of(const char *ref, const char *sql)
{
	result r;
	th_error err = { 0 };
	char *s;

	if (run(&r, ref, sql, NULL, NULL, &err) != 0) {
		size_t n = strlen(err.msg) + 8;
		s = malloc(n);
		snprintf(s, n, "ERROR: %s", err.msg);
	} else {
		s = strdup(r.rows.ptr ? r.rows.ptr : "");
	}
	res_dispose(&r);
	return s;
}

#define CHECK_ROWS(ref, sql, expected)                                                             \
	do {                                                                                       \
		char *got_ = rows_of((ref), (sql));                                                \
		CHECK_STR(got_, (expected));                                                       \
		free(got_);                                                                        \
	} while (0)

static char *git(const char *fmt_args)
{
	char *out = NULL;

	if (t_sh(&out, "git -C %s/repos/alice/shop.git %s", data, fmt_args) != 0) {
		free(out);
		return NULL;
	}
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* A listing of every file under the data dir with its size and content hash. */
static char *tree_state(void)
{
	char *out = NULL;

	t_sh(&out, "cd %s && find . -type f ! -name '*.building' -exec sha1sum {} + | sort", data);
	return out;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_rows_match_fixture(void)
{
	result r;
	th_error err = { 0 };

	setup();
	CHECK_OK(run(&r, "main", "SELECT * FROM people ORDER BY id", NULL, NULL, &err), &err);
	CHECK_STR(r.cols.ptr, "id:integer|name:text|age:integer|joined:date|active:boolean|"
	                      "score:real");
	/* The fixture: booleans read as true/false, as the table's CSV holds them, numbers as
	 * the CSV has them (an integral real without ".0"), NULLs kept. */
	CHECK_STR(r.rows.ptr, "1|Alice|34|2021-03-04|true|91.5\n"
	                      "2|Bob|\\N|2020-12-31|false|78\n"
	                      "3|Carol, Jr.|29|2024-02-29|true|\\N\n"
	                      "4|Dan|41|\\N|false|88.25\n");
	/* Only a boolean column reads as true/false; an expression over it is a number. */
	CHECK_ROWS("main", "SELECT active, active + 0, NOT active FROM people WHERE id = 1",
	           "true|1|0\n");
	res_dispose(&r);
	/* Without ORDER BY a keyed table reads in key order. */
	CHECK_ROWS("main", "SELECT \"order\", customer, total FROM orders",
	           "1001|Smith | Sons|12.5\n1002|O'Brien|\\N\n1003|multi\nline|3\n");
	CHECK_ROWS("main", "SELECT item, qty, note FROM inventory ORDER BY item",
	           "bolt|100|steel, zinc\nnut|\\N|tab\there\nwasher|7|  padded  \n");
	/* SQL over the types: real comparisons, booleans, dates as text, aggregates. */
	CHECK_ROWS("main", "SELECT name FROM people WHERE active AND score > 90", "Alice\n");
	CHECK_ROWS("main", "SELECT count(*), sum(age), max(joined) FROM people",
	           "4|104|2024-02-29\n");
	CHECK_ROWS(
	        "main",
	        "SELECT p.name, o.total FROM people p JOIN orders o ON o.\"order\" = 1000 + p.id",
	        "Alice|12.5\nBob|\\N\nCarol, Jr.|3\n");
	/* Expressions get the type of their first value. */
	CHECK_OK(run(&r, "main", "SELECT 1 + 1 AS two, 'x' AS s, 2.5 AS f, NULL AS n", NULL, NULL,
	             &err),
	         &err);
	CHECK_STR(r.cols.ptr, "two:integer|s:text|f:real|n:text");
	res_dispose(&r);
	/* Introspection works; the schema is as declared. */
	CHECK_ROWS("main", "SELECT name FROM pragma_table_info('people') WHERE pk > 0", "id\n");
	CHECK_ROWS("main", "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
	           "inventory\norders\npeople\n");
	/* An SQL error is the client's. */
	CHECK(run(&r, "main", "SELECT nope FROM people", NULL, NULL, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "no such column: nope");
	res_dispose(&r);
	CHECK(run(&r, "main", "   ", NULL, NULL, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "empty query");
	res_dispose(&r);
	teardown();
}

static void test_every_ref_kind(void)
{
	char *full, *old, sql[] = "SELECT group_concat(name, ',') FROM people";
	th_query_info info;
	result r;
	th_error err = { 0 };

	setup();
	old = git("rev-parse main");
	CHECK(old != NULL && strlen(old) == 40);
	CHECK(t_sh(NULL, "git -C %s/repos/alice/shop.git tag v1 main", data) == 0);
	CHECK(t_sh(NULL, "git -C %s/repos/alice/shop.git tag -a v1-annotated -m release main",
	           data) == 0);
	/* main moves on: Eve is added, Bob renamed. */
	CHECK(import_text("people", TH_OP_UPDATE, NULL, "Csv", "id,name\n2,Robert\n5,Eve\n",
	                  "main") == 0);
	full = git("rev-parse main");
	CHECK_ROWS("main", sql, "Alice,Robert,Carol, Jr.,Dan,Eve\n");
	CHECK_ROWS(NULL, sql, "Alice,Robert,Carol, Jr.,Dan,Eve\n"); /* no ref: main */
	CHECK_ROWS("v1", sql, "Alice,Bob,Carol, Jr.,Dan\n");
	CHECK_ROWS("v1-annotated", sql, "Alice,Bob,Carol, Jr.,Dan\n");
	CHECK_ROWS(old, sql, "Alice,Bob,Carol, Jr.,Dan\n");
	CHECK_ROWS(full, sql, "Alice,Robert,Carol, Jr.,Dan,Eve\n");
	old[8] = '\0'; /* a short commit id */
	CHECK_ROWS(old, sql, "Alice,Bob,Carol, Jr.,Dan\n");
	CHECK_ROWS("main~1", sql, "Alice,Bob,Carol, Jr.,Dan\n");
	/* The commit each ran on is reported. */
	CHECK_OK(run(&r, "v1", sql, NULL, &info, &err), &err);
	CHECK(strncmp(info.commit, old, 8) == 0);
	res_dispose(&r);
	/* Bad refs, missing refs and databases. */
	CHECK(run(&r, "nope", sql, NULL, NULL, &err) == TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "ref 'nope' not found in database 'alice/shop'");
	res_dispose(&r);
	CHECK(run(&r, "main@{1}", sql, NULL, NULL, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "bad ref 'main@{1}'");
	res_dispose(&r);
	CHECK(run(&r, "../main", sql, NULL, NULL, &err) == TH_EINVALID);
	res_dispose(&r);
	{
		th_query_target t = { data, "alice", "nothere", "main" };
		th_sql_sink sink = { res_columns, res_row, &r };
		memset(&r, 0, sizeof(r));
		CHECK(th_query_run(NULL, &t, sql, NULL, &sink, &err) == TH_ENOTFOUND);
		CHECK_CONTAINS(err.msg, "database 'alice/nothere' not found");
		res_dispose(&r);
	}
	free(full);
	free(old);
	teardown();
}

static int count_snapshots(void)
{
	char *out = NULL;
	int n;

	t_sh(&out, "ls %s/cache/alice/shop 2>/dev/null | grep -c '\\.sqlite$'", data);
	n = out ? atoi(out) : -1;
	free(out);
	return n;
}

/* Every table of a ref as text, read from a snapshot. */
static char *dump(const char *ref)
{
	th_buf all = TH_BUF_INIT;
	const char *tables[] = { "people", "orders", "inventory", "extra", NULL };
	size_t i;
	char sql[200];

	for (i = 0; tables[i]; i++) {
		char *rows;
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" ORDER BY 1, 2", tables[i]);
		rows = rows_of(ref, sql);
		th_buf_printf(&all, NULL, "[%s]\n%s", tables[i], rows);
		free(rows);
	}
	return th_buf_detach(&all);
}

/* Commit main without table `name`, as a user's drop would. */
static int drop_table(const char *name)
{
	char repo_path[4200];
	th_repo *repo = NULL;
	th_commit_info ci;
	th_oid head, root, commit;
	th_error err = { 0 };
	int error;

	memset(&ci, 0, sizeof(ci));
	snprintf(repo_path, sizeof(repo_path), "%s/repos/alice/shop.git", data);
	if ((error = th_repo_open(&repo, repo_path, 1, &err)) == 0 &&
	    (error = th_repo_branch_get(&head, repo, "main", &err)) == 0 &&
	    (error = th_repo_commit_read(&ci, repo, &head, &err)) == 0 &&
	    (error = th_table_store(&root, repo, &ci.tree, name, NULL, NULL, 0, &err)) == 0 &&
	    (error = th_repo_commit_write(&commit, repo, &root, &head, 1, "alice", "a@x", "drop",
	                                  &err)) == 0)
		error = th_repo_branch_cas(repo, "main", &commit, &head, "drop", &err);
	if (error != 0)
		fprintf(stderr, "drop failed: %s\n", err.msg);
	th_commit_info_dispose(&ci);
	th_repo_free(repo);
	return error;
}

static void test_snapshots_shared_and_advanced(void)
{
	th_query_info info;
	th_error err = { 0 };
	result r;
	char *head, *incremental, *scratch, path[4300];
	th_buf snap = TH_BUF_INIT;
	th_query_target t;

	setup();
	CHECK_OK(run(&r, "main", "SELECT 1", NULL, &info, &err), &err);
	CHECK(info.origin == TH_SNAP_BUILT);
	res_dispose(&r);
	/* The snapshot is named by the tables tree. */
	head = git("rev-parse main:tables");
	snprintf(path, sizeof(path), "%s/cache/alice/shop/%s.sqlite", data, head ? head : "?");
	CHECK(access(path, F_OK) == 0);
	CHECK_STR(info.tables_tree, head);
	free(head);
	/* A tag and a commit id of the same commit share it. */
	CHECK(t_sh(NULL, "git -C %s/repos/alice/shop.git tag v1 main", data) == 0);
	CHECK_OK(run(&r, "v1", "SELECT 1", NULL, &info, &err), &err);
	CHECK(info.origin == TH_SNAP_CACHED);
	res_dispose(&r);
	CHECK(count_snapshots() == 1);

	/* A one-row change on a new branch: built from main's snapshot, not anew, and as main's
	 * head's snapshot is the one most asked for, it is copied and stays. */
	CHECK(t_sh(NULL, "git -C %s/repos/alice/shop.git branch feature main", data) == 0);
	CHECK(import_text("people", TH_OP_UPDATE, NULL, "Csv", "id,age\n1,35\n", "feature") == 0);
	CHECK_OK(run(&r, "feature", "SELECT age FROM people WHERE id = 1", NULL, &info, &err),
	         &err);
	CHECK(info.origin == TH_SNAP_ADVANCED);
	CHECK_STR(r.rows.ptr, "35\n");
	res_dispose(&r);
	CHECK(count_snapshots() == 2);
	CHECK(access(path, F_OK) == 0);
	CHECK_OK(run(&r, "main", "SELECT age FROM people WHERE id = 1", NULL, &info, &err), &err);
	CHECK(info.origin == TH_SNAP_CACHED);
	CHECK_STR(r.rows.ptr, "34\n");
	res_dispose(&r);

	/* main moves on: its previous snapshot is no longer main's head, so it would be taken
	 * over, but a query is reading it (a shared lock on it): it is copied. */
	{
		int fd;
		CHECK(import_text("people", TH_OP_UPDATE, NULL, "Csv", "id,age\n1,36\n", "main") ==
		      0);
		fd = open(path, O_RDONLY);
		CHECK(fd >= 0 && flock(fd, LOCK_SH) == 0);
		CHECK_OK(run(&r, "main", "SELECT age FROM people WHERE id = 1", NULL, &info, &err),
		         &err);
		CHECK(info.origin == TH_SNAP_ADVANCED);
		CHECK_STR(r.rows.ptr, "36\n");
		res_dispose(&r);
		CHECK(count_snapshots() == 3);
		CHECK(access(path, F_OK) == 0); /* copied */
		close(fd);
		CHECK_ROWS("v1", "SELECT age FROM people WHERE id = 1", "34\n");
	}

	/* Several kinds of change at once: rows replaced and removed, a keyless table changed, a
	 * schema change (rebuilt), a new table, a dropped one (orders is replaced by one row). */
	CHECK(import_text("people", TH_OP_REPLACE, NULL, "Csv",
	                  "id,name,age,joined,active,score\n1,Alice,35,2021-03-04,true,91.5\n"
	                  "3,Carol,30,2024-02-29,true,\n7,Gus,50,,false,1.25\n",
	                  "main") == 0);
	CHECK(import_text("inventory", TH_OP_REPLACE, NULL, "Tsv",
	                  "item\tqty\tnote\nbolt\t100\tsteel, zinc\nbolt\t100\tsteel, zinc\n"
	                  "washer\t8\tnew\n",
	                  "main") == 0);
	CHECK(import_text("orders", TH_OP_OVERWRITE, "order", "Csv",
	                  "order,customer,total,note\nA1,Zed,1.5,x\n", "main") == 0);
	CHECK(import_text("extra", TH_OP_CREATE, "k", "Csv", "k,v\n1,one\n2,two\n", "main") == 0);
	CHECK_OK(run(&r, "main", "SELECT count(*) FROM people", NULL, &info, &err), &err);
	CHECK(info.origin == TH_SNAP_ADVANCED);
	CHECK_STR(r.rows.ptr, "3\n");
	res_dispose(&r);
	/* Taken over, as nobody read it: main's previous snapshot is gone, the others stay; the
	 * old commit gets its snapshot back when asked. */
	CHECK(count_snapshots() == 3);
	CHECK_ROWS("feature", "SELECT age FROM people WHERE id = 1", "35\n");
	CHECK_ROWS("v1", "SELECT count(*) FROM people", "4\n");
	CHECK(count_snapshots() == 3);
	CHECK_ROWS("main~4", "SELECT age FROM people WHERE id = 1", "36\n");
	incremental = dump("main");
	CHECK_CONTAINS(incremental, "[inventory]\nbolt|100|steel, zinc\nbolt|100|steel, zinc\n"
	                            "washer|8|new\n");
	CHECK_CONTAINS(incremental, "[orders]\nA1|Zed|1.5|x\n");
	CHECK_CONTAINS(incremental, "[extra]\n1|one\n2|two\n");
	CHECK_CONTAINS(incremental, "[people]\n1|Alice|35|2021-03-04|true|91.5\n"
	                            "3|Carol|30|2024-02-29|true|\\N\n7|Gus|50|\\N|false|1.25\n");
	/* The same content a snapshot built from the rows has. */
	t = target("main");
	CHECK_OK(th_query_snapshot(&snap, NULL, &t, NULL, &err), &err);
	CHECK(snap.ptr && unlink(snap.ptr) == 0);
	th_buf_dispose(&snap);
	CHECK(t_sh(NULL, "rm -f %s/cache/alice/shop/*.sqlite", data) == 0);
	CHECK_OK(run(&r, "main", "SELECT 1", NULL, &info, &err), &err);
	CHECK(info.origin == TH_SNAP_BUILT);
	res_dispose(&r);
	scratch = dump("main");
	CHECK_STR(incremental, scratch);
	free(incremental);
	free(scratch);

	/* A dropped table goes from the advanced snapshot too. */
	CHECK(drop_table("orders") == 0);
	CHECK_OK(run(&r, "main", "SELECT name FROM sqlite_schema ORDER BY name", NULL, &info, &err),
	         &err);
	CHECK(info.origin == TH_SNAP_ADVANCED);
	CHECK_STR(r.rows.ptr, "extra\ninventory\npeople\n");
	res_dispose(&r);
	/* The first commit has no tables: an empty snapshot. */
	head = git("rev-list --max-parents=0 main");
	CHECK_ROWS(head, "SELECT count(*) FROM sqlite_schema", "0\n");
	free(head);
	teardown();
}

typedef struct racer {
	th_query_info info;
	int rc;
} racer;

static pthread_barrier_t barrier;

static void *race(void *p)
{
	racer *x = p;
	th_error err = { 0 };
	result r;

	pthread_barrier_wait(&barrier);
	x->rc = run(&r, "main", "SELECT count(*) FROM people", NULL, &x->info, &err);
	res_dispose(&r);
	return NULL;
}

static void test_built_once(void)
{
	racer racers[8];
	pthread_t th[8];
	int i, built = 0, ok = 0, fds[2], st;
	pid_t kids[4];
	char c;

	setup();
	/* Threads of one process. */
	pthread_barrier_init(&barrier, NULL, 8);
	for (i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, race, &racers[i]);
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ok += racers[i].rc == 0;
		built += racers[i].info.origin != TH_SNAP_CACHED;
	}
	pthread_barrier_destroy(&barrier);
	CHECK(ok == 8);
	CHECK(built == 1);

	/* Processes: a new commit, four processes started together; exit status 10 means built. */
	CHECK(import_text("people", TH_OP_UPDATE, NULL, "Csv", "id,age\n2,50\n", "main") == 0);
	CHECK(pipe(fds) == 0);
	for (i = 0; i < 4; i++) {
		if ((kids[i] = fork()) == 0) {
			th_query_info info;
			th_error err = { 0 };
			result r;
			close(fds[1]);
			if (read(fds[0], &c, 1) != 0)
				_exit(3);
			if (run(&r, "main", "SELECT age FROM people WHERE id = 2", NULL, &info,
			        &err) != 0 ||
			    strcmp(r.rows.ptr, "50\n") != 0)
				_exit(2);
			res_dispose(&r);
			_exit(info.origin != TH_SNAP_CACHED ? 10 : 0);
		}
	}
	close(fds[0]);
	close(fds[1]); /* go */
	built = 0;
	ok = 0;
	for (i = 0; i < 4; i++) {
		CHECK(waitpid(kids[i], &st, 0) == kids[i]);
		ok += WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 10);
		built += WIFEXITED(st) && WEXITSTATUS(st) == 10;
	}
	CHECK(ok == 4);
	CHECK(built == 1);
	CHECK(count_snapshots() == 1); /* the first was taken over: no branch points at it */
	teardown();
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_lru_eviction(void)
{
	th_query_opts o;
	th_query_info info;
	th_error err = { 0 };
	th_buf p1 = TH_BUF_INIT, p2 = TH_BUF_INIT, p3 = TH_BUF_INIT;
	th_query_target t;
	result r;
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };

	setup();
	th_query_opts_init(&o);
	o.ancestor_depth = 0;
	t = target("main");
	CHECK_OK(th_query_snapshot(&p1, NULL, &t, &o, &err), &err);
	CHECK(import_text("people", TH_OP_UPDATE, NULL, "Csv", "id,age\n1,1\n", "main") == 0);
	CHECK_OK(th_query_snapshot(&p2, NULL, &t, &o, &err), &err);
	CHECK(p1.ptr && p2.ptr && strcmp(p1.ptr, p2.ptr) != 0);
	/* p2 is older than p1 by mtime; a query of p1's commit makes it the most recent anyway. */
	utimensat(AT_FDCWD, p2.ptr, old, 0);
	utimensat(AT_FDCWD, p1.ptr, old, 0);
	old[0].tv_sec = old[1].tv_sec = 1000000500;
	utimensat(AT_FDCWD, p2.ptr, old, 0);
	CHECK_OK(run(&r, "main~1", "SELECT 1", &o, &info, &err), &err);
	CHECK(info.origin == TH_SNAP_CACHED);
	res_dispose(&r);
	/* A budget for two snapshots: building a third evicts the least recently used, p2. */
	o.cache_budget = (uint64_t)(file_size(p1.ptr) + file_size(p2.ptr) + 100);
	CHECK(import_text("people", TH_OP_UPDATE, NULL, "Csv", "id,age\n1,2\n", "main") == 0);
	CHECK_OK(th_query_snapshot(&p3, &info, &t, &o, &err), &err);
	CHECK(info.origin == TH_SNAP_BUILT);
	CHECK(access(p3.ptr, F_OK) == 0);
	CHECK(access(p1.ptr, F_OK) == 0);
	CHECK(access(p2.ptr, F_OK) != 0);
	/* A budget smaller than one snapshot still keeps the one just built. */
	o.cache_budget = 1;
	CHECK(import_text("people", TH_OP_UPDATE, NULL, "Csv", "id,age\n1,3\n", "main") == 0);
	th_buf_clear(&p3);
	CHECK_OK(th_query_snapshot(&p3, NULL, &t, &o, &err), &err);
	CHECK(access(p3.ptr, F_OK) == 0);
	CHECK(count_snapshots() == 1);
	CHECK_ROWS("main", "SELECT age FROM people WHERE id = 1", "3\n");
	/* Evicted snapshots come back when asked for. */
	CHECK_ROWS("main~3", "SELECT age FROM people WHERE id = 1", "34\n");
	th_buf_dispose(&p1);
	th_buf_dispose(&p2);
	th_buf_dispose(&p3);
	teardown();
}

/* Expect `sql` to be refused with `code` and a message containing `msg`, changing no file. */
static void refused(const char *sql, const th_query_opts *o, int code, const char *msg)
{
	char *before = tree_state(), *after;
	th_error err = { 0 };
	result r;
	int rc = run(&r, "main", sql, o, NULL, &err);

	if (rc != code)
		fprintf(stderr, "query %.80s: got %d (%s), want %d\n", sql, rc, err.msg, code);
	CHECK(rc == code);
	CHECK_CONTAINS(err.msg, msg);
	res_dispose(&r);
	after = tree_state();
	CHECK_STR(after, before);
	free(before);
	free(after);
}

static void test_sandbox_refusals(void)
{
	th_query_opts o;
	th_error err = { 0 };
	char other[4300], sql[9000], *big;
	result r;
	th_query_info info;

	setup();
	th_query_opts_init(&o);
	o.time_ms = 300;
	/* Another database with its own snapshot, which ATTACH must not reach. */
	snprintf(other, sizeof(other), "%s/repos/bob/secret.git", data);
	CHECK_OK(th_repo_create(other, "bob", &err), &err);
	{
		th_query_target t = { data, "bob", "secret", "main" };
		th_buf p = TH_BUF_INIT;
		CHECK_OK(th_query_snapshot(&p, NULL, &t, NULL, &err), &err);
		snprintf(other, sizeof(other), "%s", p.ptr ? p.ptr : "");
		th_buf_dispose(&p);
	}
	CHECK_ROWS("main", "SELECT 1", "1\n"); /* main's snapshot exists before the refusals */

	snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s' AS other", other);
	refused(sql, &o, TH_EINVALID, "ATTACH is not allowed");
	snprintf(sql, sizeof(sql), "SELECT * FROM people WHERE 1 IN (SELECT 1) ; ATTACH '%s' AS o",
	         other);
	refused(sql, &o, TH_EINVALID, "only one statement per query is allowed");
	snprintf(sql, sizeof(sql), "VACUUM INTO '%s/stolen.sqlite'", dir);
	refused(sql, &o, TH_EINVALID, "VACUUM is not allowed");
	CHECK(access(sql + 13, F_OK) != 0);
	refused("PRAGMA writable_schema = 1", &o, TH_EINVALID,
	        "PRAGMA writable_schema is not allowed");
	refused("SELECT * FROM pragma_writable_schema", &o, TH_EINVALID,
	        "PRAGMA writable_schema is not allowed");
	refused("PRAGMA journal_mode = DELETE", &o, TH_EINVALID,
	        "PRAGMA journal_mode is not allowed");
	refused("PRAGMA database_list", &o, TH_EINVALID, "PRAGMA database_list is not allowed");
	refused("CREATE TEMP TABLE t(x)", &o, TH_EINVALID, "CREATE is not allowed");
	refused("WITH x AS (SELECT 1) DELETE FROM people", &o, TH_EINVALID,
	        "DELETE is not allowed: queries are read-only");
	refused("WITH x AS (SELECT 1) SELECT * FROM x; CREATE TEMP TABLE t(x)", &o, TH_EINVALID,
	        "only one statement per query is allowed");
	refused("CREATE TABLE t(x)", &o, TH_EINVALID, "CREATE is not allowed");
	refused("INSERT INTO people(id, name) VALUES (9, 'x')", &o, TH_EINVALID,
	        "INSERT is not allowed");
	refused("UPDATE people SET age = 0", &o, TH_EINVALID, "UPDATE is not allowed");
	refused("DELETE FROM people", &o, TH_EINVALID, "DELETE is not allowed");
	refused("DROP TABLE people", &o, TH_EINVALID, "DROP is not allowed");
	refused("BEGIN", &o, TH_EINVALID, "BEGIN is not allowed: queries are read-only");
	refused("SELECT load_extension('/tmp/x.so')", &o, TH_EINVALID,
	        "function load_extension() is not allowed");
	/* Limits: a recursive CTE that never ends, a cross join over 10^12 rows. */
	refused("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
	        "SELECT count(*) FROM c",
	        &o, TH_ELIMIT, "query exceeded the time limit of 300 ms");
	refused("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000) "
	        "SELECT count(*) FROM n a, n b",
	        &o, TH_ELIMIT, "query exceeded the time limit of 300 ms");
	/* The memory limit: a statement whose text alone needs more than it. */
	if (th_snap_heap_limit_available()) {
		size_t n = 2u << 20;
		o.heap_bytes = 1u << 20;
		big = malloc(n + 64);
		strcpy(big, "SELECT length('");
		memset(big + strlen(big), 'x', n);
		strcpy(big + 15 + n, "')");
		refused(big, &o, TH_ELIMIT, "query exceeded the memory limit of 1 MiB");
		free(big);
		o.heap_bytes = TH_QUERY_HEAP_BYTES;
	} else {
		fprintf(stderr, "warning: heap limit unavailable in this process\n");
	}
	/* The default time limit message is in seconds. */
	o.time_ms = 1000;
	refused("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
	        "SELECT count(*) FROM c",
	        &o, TH_ELIMIT, "query exceeded the time limit of 1 s");

	/* The row limit cuts and says so, and is not an error. */
	o.max_rows = 2;
	CHECK_OK(run(&r, "main", "SELECT id FROM people", &o, &info, &err), &err);
	CHECK(info.truncated == 1);
	CHECK(info.rows == 2);
	CHECK_STR(r.rows.ptr, "1\n2\n");
	res_dispose(&r);
	o.max_rows = 4;
	CHECK_OK(run(&r, "main", "SELECT id FROM people", &o, &info, &err), &err);
	CHECK(info.truncated == 0);
	CHECK(r.nrows == 4 && info.rows == 4);
	res_dispose(&r);
	/* After all that, the snapshot still answers. */
	CHECK_ROWS("main", "SELECT count(*) FROM people", "4\n");
	teardown();
}

static char *export_all(const char *ref, const char *table, int *code)
{
	th_query_target t = target(ref);
	th_table_export *x = NULL;
	th_buf out = TH_BUF_INIT;
	th_error err = { 0 };
	int rc;

	if ((*code = th_query_export(&x, th_exporter_find("csv"), &t, table, &err)) < 0)
		return NULL;
	/* Small pieces, as the HTTP stream asks for them. */
	while ((rc = th_table_export_read(x, &out, out.size + 10, &err)) == 1)
		;
	*code = rc;
	th_table_export_free(x);
	return out.ptr ? th_buf_detach(&out) : strdup("");
}

static void test_csv_export(void)
{
	char *csv;
	int code;

	setup();
	CHECK(import_fixture("quoting", "quoting_crlf_bom.csv", "sku", "Csv") == 0);
	csv = export_all("main", "orders", &code);
	CHECK(code == 0);
	CHECK_STR(csv, "order,customer,total\n1001,Smith | Sons,12.50\n1002,O'Brien,\n"
	               "1003,\"multi\nline\",3\n");
	free(csv);
	csv = export_all("main", "quoting", &code);
	CHECK(code == 0);
	CHECK_STR(csv, "sku,description,price\nA-1,\"Widget, large\",9.99\n"
	               "B-2,\"He said \"\"no\"\"\r\nand left\",\"\"\n"
	               "C-3,\xc3\xa9 \xc3\xbc \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80,0.5\n");
	free(csv);
	csv = export_all("main", "inventory", &code);
	CHECK(code == 0);
	CHECK_STR(csv, "item,qty,note\nbolt,100,\"steel, zinc\"\nnut,,tab\there\n"
	               "washer,7,\"  padded  \"\n");
	free(csv);
	CHECK(export_all("main", "nope", &code) == NULL && code == TH_ENOTFOUND);
	CHECK(export_all("nope", "people", &code) == NULL && code == TH_ENOTFOUND);
	CHECK(export_all("main", "../x", &code) == NULL && code == TH_EINVALID);
	/* A table with no rows: the header alone. */
	CHECK(import_text("empty", TH_OP_CREATE, "k", "Csv", "k,v\n", "main") == 0);
	csv = export_all("main", "empty", &code);
	CHECK(code == 0);
	CHECK_STR(csv, "k,v\n");
	free(csv);
	teardown();
}

/* The exporter table: CSV is found by name, in any case; an unknown name is NULL. Each entry
 * exports the same table the same way through th_export_* (begin, row, end) as through a table
 * export. */
static void test_exporters(void)
{
	const char *names[] = { "a", "b,c" }, *types[] = { "integer", "text" };
	th_cell row1[2] = { { "1", 1, 0 }, { "x\"y", 3, 0 } },
	        row2[2] = { { NULL, 0, 1 }, { "", 0, 0 } };
	th_export *x = NULL;
	th_buf out = TH_BUF_INIT;
	th_error err = { 0 };
	size_t i;

	CHECK(th_exporter_find("csv") == &th_exporter_csv);
	CHECK(th_exporter_find("CSV") == &th_exporter_csv);
	CHECK(th_exporter_find("xlsx") == NULL);
	CHECK(th_exporter_find(NULL) == NULL);
	for (i = 0; th_exporters[i] != NULL; i++) {
		CHECK(th_exporters[i]->name != NULL && th_exporters[i]->media_type != NULL &&
		      th_exporters[i]->extension != NULL && th_exporters[i]->begin != NULL &&
		      th_exporters[i]->row != NULL);
		CHECK(th_exporter_find(th_exporters[i]->name) == th_exporters[i]);
	}
	CHECK(i >= 1);
	CHECK_STR(th_exporter_csv.media_type, "text/csv; charset=utf-8");
	CHECK_OK(th_export_new(&x, &th_exporter_csv, &err), &err);
	CHECK_OK(th_export_begin(x, &out, 2, names, types, &err), &err);
	CHECK_OK(th_export_row(x, &out, row1, 2, &err), &err);
	CHECK_OK(th_export_row(x, &out, row2, 2, &err), &err);
	CHECK_OK(th_export_end(x, &out, &err), &err);
	CHECK_STR(out.ptr, "a,\"b,c\"\n1,\"x\"\"y\"\n,\"\"\n");
	th_export_free(x);
	th_buf_dispose(&out);
}

/* The tables at a ref, as a result (SHOW TABLES). */
static void test_tables(void)
{
	th_query_target t;
	th_query_info info;
	th_error err = { 0 };
	result r;
	th_sql_sink sink = { res_columns, res_row, &r };
	char *head;

	setup();
	t = target(NULL);
	memset(&r, 0, sizeof(r));
	CHECK_OK(th_query_tables(&info, &t, &sink, &err), &err);
	CHECK_STR(r.cols.ptr, "Tables_in_shop:text");
	CHECK_STR(r.rows.ptr, "inventory\norders\npeople\n");
	CHECK(info.rows == 3);
	head = git("rev-parse main");
	CHECK_STR(info.commit, head);
	free(head);
	res_dispose(&r);
	/* The first commit has no tables: the column, no rows. */
	head = git("rev-list --max-parents=0 main");
	t = target(head);
	CHECK_OK(th_query_tables(&info, &t, &sink, &err), &err);
	CHECK_STR(r.cols.ptr, "Tables_in_shop:text");
	CHECK(r.rows.ptr == NULL && info.rows == 0);
	res_dispose(&r);
	free(head);
	t = target("nope");
	CHECK(th_query_tables(NULL, &t, &sink, &err) == TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "ref 'nope' not found in database 'alice/shop'");
	res_dispose(&r);
	teardown();
}

/* Commit an empty table `name` of `ncols` text columns (named `names`, or c1, c2...; its
 * schema.json saying `rows` rows) on main straight through the library: the import refuses a
 * table so wide, or with names that differ only in case, but a repository may hold one (made
 * before those rules, or by another tool). */
static void commit_table(const char *name, size_t ncols, const char *const *names, uint64_t rows)
{
	char repo_path[4200];
	th_schema s = TH_SCHEMA_INIT;
	th_commit_info ci;
	th_oid head, root, commit, no_rows;
	th_error err = { 0 };
	th_repo *repo = NULL;
	size_t i;

	memset(&ci, 0, sizeof(ci));
	memset(&no_rows, 0, sizeof(no_rows));
	if ((s.cols = calloc(ncols, sizeof(*s.cols))) == NULL)
		abort();
	for (i = 0; i < ncols; i++) {
		char col[32];
		snprintf(col, sizeof(col), "c%zu", i + 1);
		s.cols[i].name = strdup(names ? names[i] : col);
		s.cols[i].type = TH_TYPE_TEXT;
		s.cols[i].nullable = 1;
		s.ncols++;
	}
	snprintf(repo_path, sizeof(repo_path), "%s/repos/alice/shop.git", data);
	CHECK_OK(th_repo_open(&repo, repo_path, 1, &err), &err);
	CHECK_OK(th_repo_branch_get(&head, repo, "main", &err), &err);
	CHECK_OK(th_repo_commit_read(&ci, repo, &head, &err), &err);
	CHECK_OK(th_table_store(&root, repo, &ci.tree, name, &s, &no_rows, rows, &err), &err);
	CHECK_OK(th_repo_commit_write(&commit, repo, &root, &head, 1, "test", "test@example.com",
	                              "a table too wide for SQL", &err),
	         &err);
	CHECK_OK(th_repo_branch_cas(repo, "main", &commit, &head, "test", &err), &err);
	th_commit_info_dispose(&ci);
	th_schema_dispose(&s);
	th_repo_free(repo);
}

static void commit_wide_table(const char *name, size_t ncols)
{
	commit_table(name, ncols, NULL, 0);
}

/* Tables that cannot go into SQLite (2,001 columns; two column names that differ only in case)
 * are left out of the snapshot, every other table of the commit is queried as usual, and a query
 * naming one of them is told which table and why; the same when the snapshot is advanced from
 * an ancestor's, where such a table changed. */
static void test_table_left_out(void)
{
	static const char *const cased[] = { "id", "A", "a" };
	th_query_info info;
	th_error err = { 0 };
	result r;

	setup();
	commit_wide_table("wide", TH_SCHEMA_MAX_COLUMNS + 1);
	commit_table("cased", 3, cased, 0);
	CHECK_ROWS("main", "SELECT name FROM people WHERE id = 1", "Alice\n");
	CHECK_ROWS("main", "SELECT count(*) FROM orders", "3\n");
	CHECK(run(&r, "main", "SELECT * FROM wide", NULL, NULL, &err) == TH_ELIMIT);
	CHECK_STR(err.msg, "table 'wide' cannot be queried at 'main': it has 2001 columns, more "
	                   "than the 2000 a table may have for SQL; the other tables can be");
	res_dispose(&r);
	CHECK(run(&r, "main", "SELECT count(*) FROM CASED", NULL, NULL, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "table 'cased' cannot be queried at 'main': its columns 'A' and 'a' "
	                   "differ only in case, which SQL does not tell apart; the other tables "
	                   "can be");
	res_dispose(&r);
	/* A table that is simply not there is still SQLite's plain error. */
	CHECK(run(&r, "main", "SELECT * FROM nope", NULL, NULL, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "query error: no such table: nope");
	res_dispose(&r);
	/* The snapshot was made once, without them, and is used as it is. */
	CHECK(run(&r, "main", "SELECT count(*) FROM people", NULL, &info, &err) == TH_OK);
	CHECK(info.origin == TH_SNAP_CACHED);
	res_dispose(&r);

	/* A later commit changes people and the left-out cased: advanced from main's snapshot. */
	CHECK(import_text("people", TH_OP_UPDATE, "id", "Csv", "id,name\n1,Alicia\n", "main") == 0);
	commit_table("cased", 3, cased, 1); /* its schema.json changes */
	CHECK(run(&r, "main", "SELECT name FROM people WHERE id = 1", NULL, &info, &err) == TH_OK);
	CHECK(info.origin == TH_SNAP_ADVANCED);
	CHECK_STR(r.rows.ptr, "Alicia\n");
	res_dispose(&r);
	CHECK(run(&r, "main", "SELECT * FROM cased", NULL, NULL, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "table 'cased' cannot be queried at 'main': its columns");
	res_dispose(&r);
	CHECK(run(&r, "main", "SELECT * FROM wide", NULL, NULL, &err) == TH_ELIMIT);
	res_dispose(&r);
	teardown();
}

/* The `tablehub query` command as a person runs it. */
static void test_cli(void)
{
	char *out = NULL;

	setup();
	CHECK(t_sh(&out,
	           "%s query --data %s alice/shop main "
	           "'SELECT id, name, score FROM people ORDER BY id' 2>&1",
	           TH_BIN, data) == 0);
	CHECK_STR(out, "+----+------------+-------+\n"
	               "| id | name       | score |\n"
	               "+----+------------+-------+\n"
	               "|  1 | Alice      |  91.5 |\n"
	               "|  2 | Bob        |    78 |\n"
	               "|  3 | Carol, Jr. |  NULL |\n"
	               "|  4 | Dan        | 88.25 |\n"
	               "+----+------------+-------+\n"
	               "(4 rows)\n");
	free(out);
	CHECK(t_sh(&out,
	           "%s query --data %s --csv alice/shop main "
	           "'SELECT \"order\", customer FROM orders' 2>&1",
	           TH_BIN, data) == 0);
	CHECK_STR(out, "order,customer\n1001,Smith | Sons\n1002,O'Brien\n1003,\"multi\nline\"\n");
	free(out);
	CHECK(t_sh(&out, "%s query --data %s --json alice/shop main 'SELECT 1 AS one' 2>&1", TH_BIN,
	           data) == 0);
	CHECK_CONTAINS(out, "\"schema\":[{\"columnName\":\"one\",\"columnType\":\"integer\"}],"
	                    "\"rows\":[{\"one\":\"1\"}]}");
	free(out);
	CHECK(t_sh(&out,
	           "%s query --data %s --limit 1 alice/shop main 'SELECT id FROM people' 2>&1",
	           TH_BIN, data) == 0);
	CHECK_CONTAINS(out, "(1 row)\n");
	CHECK_CONTAINS(out, "the result was cut at 1 rows");
	free(out);
	CHECK(t_sh(&out, "%s query --data %s alice/shop main 'DELETE FROM people' 2>&1", TH_BIN,
	           data) == 1);
	CHECK_STR(out, "tablehub query: DELETE is not allowed: queries are read-only\n");
	free(out);
	CHECK(t_sh(&out, "%s query --data %s alice/shop main 2>&1", TH_BIN, data) == 2);
	CHECK_CONTAINS(out, "expected: OWNER/DB REF SQL");
	free(out);
	teardown();
}

int main(void)
{
	th_error err = { 0 };

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	RUN(test_rows_match_fixture);
	RUN(test_every_ref_kind);
	RUN(test_snapshots_shared_and_advanced);
	RUN(test_built_once);
	RUN(test_lru_eviction);
	RUN(test_sandbox_refusals);
	RUN(test_csv_export);
	RUN(test_exporters);
	RUN(test_tables);
	RUN(test_table_left_out);
	RUN(test_cli);
	th_repo_global_shutdown();
	TH_TEST_END();
}
