/* test_databases.c: creating a database (src/databases.c) and `tablehub db create`, which uses it.
 * A created database has its row and its repository; a failed create leaves neither (the insert
 * is made to fail by a trigger that names a dropped table, so SQLite itself errs); a repository a
 * crash left without its row is adopted; and no message names a path. */
#include <dirent.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "harness.h"
#include "util.h"
#include "tablehub/databases.h"
#include "tablehub/datadir.h"
#include "tablehub/meta.h"
#include "tablehub/repo.h"

/* Run `sql` on DIR/meta.sqlite through a separate connection. */
static void sql_exec(const char *dir, const char *sql)
{
	char path[1024];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/meta.sqlite", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sql_exec: %s\n", sqlite3_errmsg(db));
		abort();
	}
	sqlite3_close(db);
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The number of entries of directory `path` (besides . and ..); -1 when it is missing. */
static int entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The head of `main` of the repository at `path`; zero when it cannot be read. */
static th_oid main_head(const char *path)
{
	th_repo *repo = NULL;
	th_oid head;
	th_error err;

	memset(&head, 0, sizeof(head));
	if (th_repo_open(&repo, path, 0, &err) == TH_OK)
		th_repo_resolve(&head, repo, "main", &err);
	th_repo_free(repo);
	return head;
}

static void test_create(void)
{
	char *dir = t_mkdtemp(), path[4096];
	th_meta *m = NULL;
	th_db_info info;
	th_commit_info ci;
	th_repo *repo = NULL;
	th_oid head;
	th_error err;

	memset(&info, 0, sizeof(info));
	memset(&ci, 0, sizeof(ci));
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_db_create(m, dir, "alice", "museums", "art, mostly", 1, &err), &err);
	CHECK_OK(th_meta_db_get(&info, m, "alice", "museums", &err), &err);
	CHECK_STR(info.description, "art, mostly");
	CHECK(info.is_private == 1);
	snprintf(path, sizeof(path), "%s/repos/alice/museums.git", dir);
	CHECK_OK(th_repo_open(&repo, path, 0, &err), &err);
	if (repo) {
		CHECK_OK(th_repo_resolve(&head, repo, "main", &err), &err);
		CHECK_OK(th_repo_commit_read(&ci, repo, &head, &err), &err);
		CHECK(ci.nparents == 0);
		CHECK_STR(ci.author, "alice");
	}
	/* The repository directory holds nothing else: no temporary leftovers beside it. */
	snprintf(path, sizeof(path), "%s/repos/alice", dir);
	CHECK(entries(path) == 1);
	th_commit_info_dispose(&ci);
	th_repo_free(repo);
	th_db_info_dispose(&info);

	/* A NULL description is stored as "". */
	CHECK_OK(th_db_create(m, dir, "alice", "plain", NULL, 0, &err), &err);
	CHECK_OK(th_meta_db_get(&info, m, "alice", "plain", &err), &err);
	CHECK_STR(info.description, "");
	CHECK(info.is_private == 0);
	th_db_info_dispose(&info);
	th_meta_close(m);
	t_rmdir(dir);
}

static void test_exists_and_bad_names(void)
{
	char *dir = t_mkdtemp(), path[4096];
	th_meta *m = NULL;
	th_oid before, after;
	th_error err;

	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_db_create(m, dir, "alice", "museums", "", 0, &err), &err);
	snprintf(path, sizeof(path), "%s/repos/alice/museums.git", dir);
	before = main_head(path);
	CHECK(!th_oid_is_zero(&before));
	CHECK(th_db_create(m, dir, "alice", "museums", "", 0, &err) == TH_EEXISTS);
	CHECK_STR(err.msg, "database 'alice/museums' already exists");
	after = main_head(path);
	CHECK(th_oid_equal(&before, &after));

	CHECK(th_db_create(m, dir, "alice", "a.b", "", 0, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "bad database name 'alice/a.b'");
	CHECK(th_db_create(m, dir, "", "x", "", 0, &err) == TH_EINVALID);
	snprintf(path, sizeof(path), "%s/repos/alice", dir);
	CHECK(entries(path) == 1);
	th_meta_close(m);
	t_rmdir(dir);
}

/* The insert of the row fails after the repository was made: the create fails and leaves the
 * database in neither place, and a later create of the name succeeds. */
static void test_failed_insert_leaves_nothing(void)
{
	char *dir = t_mkdtemp(), path[4096], parent[4096];
	th_meta *m = NULL;
	th_db_info info;
	th_error err;

	memset(&info, 0, sizeof(info));
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	th_meta_close(m);
	m = NULL;
	sql_exec(dir, "CREATE TABLE gone(x); CREATE TRIGGER fail_insert BEFORE INSERT ON databases "
	              "BEGIN INSERT INTO gone VALUES (1); END; DROP TABLE gone;");
	CHECK_OK(th_meta_open(&m, dir, &err), &err);

	CHECK(th_db_create(m, dir, "alice", "museums", "", 0, &err) == TH_ESTORE);
	CHECK(strstr(err.msg, dir) == NULL);
	CHECK(th_meta_db_get(&info, m, "alice", "museums", &err) == TH_ENOTFOUND);
	snprintf(path, sizeof(path), "%s/repos/alice/museums.git", dir);
	snprintf(parent, sizeof(parent), "%s/repos/alice", dir);
	CHECK(!exists(path));
	CHECK(entries(parent) == 0); /* nor a temporary or renamed-away copy */

	th_meta_close(m);
	m = NULL;
	sql_exec(dir, "DROP TRIGGER fail_insert");
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_db_create(m, dir, "alice", "museums", "", 0, &err), &err);
	CHECK_OK(th_meta_db_get(&info, m, "alice", "museums", &err), &err);
	CHECK(exists(path));
	th_db_info_dispose(&info);
	th_meta_close(m);
	t_rmdir(dir);
}

/* A crash between the repository and the row left a repository without a row: the next create
 * adopts it as it is. Something else at the path is refused, kept, and not named by path. */
static void test_orphans(void)
{
	char *dir = t_mkdtemp(), path[4096], file[4200];
	th_meta *m = NULL;
	th_db_info info;
	th_oid before, after;
	th_error err;

	memset(&info, 0, sizeof(info));
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	snprintf(path, sizeof(path), "%s/repos/alice/museums.git", dir);
	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	before = main_head(path);
	CHECK_OK(th_db_create(m, dir, "alice", "museums", "", 0, &err), &err);
	CHECK_OK(th_meta_db_get(&info, m, "alice", "museums", &err), &err);
	after = main_head(path);
	CHECK(th_oid_equal(&before, &after));
	th_db_info_dispose(&info);

	snprintf(path, sizeof(path), "%s/repos/alice/junk.git", dir);
	CHECK_OK(th_mkdir_p(path, &err), &err);
	snprintf(file, sizeof(file), "%s/notes.txt", path);
	t_write_file(file, "x", 1);
	CHECK(th_db_create(m, dir, "alice", "junk", "", 0, &err) == TH_ESTORE);
	CHECK_STR(err.msg, "the repository of database 'alice/junk' exists but cannot be opened");
	CHECK(exists(file));
	CHECK(th_meta_db_get(&info, m, "alice", "junk", &err) == TH_ENOTFOUND);
	th_meta_close(m);
	t_rmdir(dir);
}

/* th_repo_remove: the path is gone in one step and nothing is left beside it. */
static void test_repo_remove(void)
{
	char *dir = t_mkdtemp(), path[4096];
	th_error err;

	snprintf(path, sizeof(path), "%s/r.git", dir);
	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	CHECK_OK(th_repo_remove(path, &err), &err);
	CHECK(!exists(path));
	CHECK(entries(dir) == 0);
	CHECK(th_repo_remove(path, &err) == TH_ENOTFOUND);
	CHECK(entries(dir) == 0);
	t_rmdir(dir);
}

/* `tablehub db create` makes the row and the repository through th_db_create. */
static void test_cli(void)
{
	char *dir = t_mkdtemp(), *out = NULL, path[4096];
	th_meta *m = NULL;
	th_db_info info;
	th_oid head;
	th_error err;
	int lock = -1;

	memset(&info, 0, sizeof(info));
	CHECK(t_sh(&out, "%s db create --data %s/d alice/museums 2>&1", TH_BIN, dir) == 0);
	CHECK_CONTAINS(out, "created alice/museums in ");
	free(out);
	snprintf(path, sizeof(path), "%s/d", dir);
	CHECK_OK(th_meta_open(&m, path, &err), &err);
	CHECK_OK(th_meta_db_get(&info, m, "alice", "museums", &err), &err);
	th_db_info_dispose(&info);
	th_meta_close(m);
	snprintf(path, sizeof(path), "%s/d/repos/alice/museums.git", dir);
	head = main_head(path);
	CHECK(!th_oid_is_zero(&head));

	CHECK(t_sh(&out, "%s db create --data %s/d alice/museums 2>&1", TH_BIN, dir) == 1);
	CHECK_STR(out, "tablehub: database 'alice/museums' already exists\n");
	free(out);
	CHECK(t_sh(&out, "%s db create --data %s/d alice 2>&1", TH_BIN, dir) == 1);
	CHECK_CONTAINS(out, "OWNER/DB");
	free(out);
	CHECK(t_sh(&out, "%s db create --data %s/d --private alice/x 2>&1", TH_BIN, dir) == 2);
	CHECK_CONTAINS(out, "unknown option '--private'");
	free(out);

	/* Beside a process that holds the data dir, nothing is made. */
	snprintf(path, sizeof(path), "%s/d", dir);
	CHECK_OK(th_datadir_lock(&lock, path, &err), &err);
	CHECK(t_sh(&out, "%s db create --data %s/d alice/other 2>&1", TH_BIN, dir) == 1);
	CHECK_CONTAINS(out, "is in use by another tablehub process");
	free(out);
	th_datadir_unlock(lock);
	snprintf(path, sizeof(path), "%s/d/repos/alice/other.git", dir);
	CHECK(!exists(path));
	t_rmdir(dir);
}

int main(void)
{
	th_error err;

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	RUN(test_create);
	RUN(test_exists_and_bad_names);
	RUN(test_failed_insert_leaves_nothing);
	RUN(test_orphans);
	RUN(test_repo_remove);
	RUN(test_cli);
	th_repo_global_shutdown();
	TH_TEST_END();
}
