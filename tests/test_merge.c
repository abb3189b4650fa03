/* test_merge.c: three-way cell-wise merges, conflicts, racing merges and the pull-request diff,
 * on real repositories in temp dirs, with tables written by real imports (th_import_fd).
 *
 * Each scenario makes a database with a table on main, branches from it, imports different
 * changes on the branches, and merges them with th_pull_merge as the merge operation does; the
 * result is checked by exporting main's table (a full read) and by reading the merge commits. The
 * diff property test compares th_tree_diff's counts and the paged diff (th_pull_diff_page, the
 * values the API's JSON is made of) with a full-table comparison of the two exported versions,
 * over many random seeds.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "tablehub/import.h"
#include "tablehub/merge.h"
#include "tablehub/pulls.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

static char *tmp;
static int repo_seq;

/* --- helpers ---------------------------------------------------------------------------------- */

static th_repo *new_repo(char *path_out, size_t cap)
{
	th_repo *repo = NULL;
	th_error err;

	snprintf(path_out, cap, "%s/db%d.git", tmp, ++repo_seq);
	CHECK_OK(th_repo_create(path_out, "tester", &err), &err);
	CHECK_OK(th_repo_open(&repo, path_out, 1, &err), &err);
	return repo;
}

/* Import CSV text into `table` on `branch`. `pk` is a comma-free single key column or NULL. */
static int import_csv(th_repo *repo, const char *branch, const char *table, th_import_op op,
                      const char *pk, const char *csv, th_error *err)
{
	char path[4096];
	const char *pks[1] = { pk };
	th_import_opts o;
	th_import_result res;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/in.csv", tmp);
	t_write_file(path, csv, strlen(csv));
	if ((fd = open(path, O_RDONLY)) < 0)
		abort();
	memset(&o, 0, sizeof(o));
	o.table = table;
	o.op = op;
	o.pk = pk ? pks : NULL;
	o.npk = pk ? 1 : 0;
	o.format = th_format_find("Csv");
	o.branch = branch;
	o.tmpdir = tmp;
	rc = th_import_fd(&res, repo, fd, &o, err);
	close(fd);
	return rc;
}

static void branch_from(th_repo *repo, const char *name, const char *from)
{
	th_oid head;
	th_error err;

	CHECK_OK(th_repo_branch_get(&head, repo, from, &err), &err);
	CHECK_OK(th_repo_branch_cas(repo, name, &head, NULL, "branch", &err), &err);
}

/* The rows of `table` at `rev`, one line each, "\n"-terminated (malloc'd; "" when empty, NULL
 * when the table does not exist). */
static char *export_rows(th_repo *repo, const char *rev, const char *table)
{
	th_oid c;
	th_commit_info ci;
	th_table t = TH_TABLE_INIT;
	th_row_iter *it = NULL;
	th_buf out = TH_BUF_INIT;
	th_row r;
	th_error err;
	int rc;

	memset(&ci, 0, sizeof(ci));
	CHECK_OK(th_repo_resolve(&c, repo, rev, &err), &err);
	CHECK_OK(th_repo_commit_read(&ci, repo, &c, &err), &err);
	if (th_table_load(&t, repo, &ci.tree, table, &err) == TH_ENOTFOUND) {
		th_commit_info_dispose(&ci);
		return NULL;
	}
	CHECK_OK(th_row_iter_new(&it, repo, &t, &err), &err);
	while ((rc = th_row_iter_next(it, &r, &err)) > 0) {
		th_buf_put(&out, r.line, r.linelen, &err);
		th_buf_putc(&out, '\n', &err);
	}
	CHECK(rc == 0);
	th_row_iter_free(it);
	th_table_dispose(&t);
	th_commit_info_dispose(&ci);
	if (out.ptr == NULL)
		return strdup("");
	return th_buf_detach(&out);
}

static void check_rows(th_repo *repo, const char *rev, const char *table, const char *want)
{
	char *got = export_rows(repo, rev, table);

	CHECK_STR(got, want);
	free(got);
}

static th_oid head_of(th_repo *repo, const char *branch)
{
	th_oid h;
	th_error err;

	memset(&h, 0, sizeof(h));
	CHECK_OK(th_repo_branch_get(&h, repo, branch, &err), &err);
	return h;
}

/* Is branch at commit `c`? */
static int head_is(th_repo *repo, const char *branch, const th_oid *c)
{
	th_oid h = head_of(repo, branch);

	return th_oid_equal(&h, c);
}

/* A table t(id integer key, name text, score integer) with five rows on main. */
static const char *BASE_CSV = "id,name,score\n1,a,10\n2,b,20\n3,c,30\n4,d,40\n5,e,50\n";

static th_repo *scenario(char *path, size_t cap)
{
	th_repo *repo = new_repo(path, cap);
	th_error err;

	CHECK_OK(import_csv(repo, "main", "t", TH_OP_CREATE, "id", BASE_CSV, &err), &err);
	branch_from(repo, "a", "main");
	branch_from(repo, "b", "main");
	return repo;
}

static void check_merge_commit(th_repo *repo, const th_pull_merge_result *res, const char *msg)
{
	th_commit_info ci;
	th_error err;

	memset(&ci, 0, sizeof(ci));
	CHECK_OK(th_repo_commit_read(&ci, repo, &res->commit, &err), &err);
	CHECK(ci.nparents == 2);
	CHECK(th_oid_equal(&ci.parents[0], &res->ours));
	CHECK(th_oid_equal(&ci.parents[1], &res->theirs));
	CHECK_CONTAINS(ci.message, msg);
	th_commit_info_dispose(&ci);
}

/* --- scenarios -------------------------------------------------------------------------------- */

/* Two imports touching different rows of one table: both merge, main holds both changes. */
static void test_different_rows(void)
{
	char path[4096];
	th_repo *repo = scenario(path, sizeof(path));
	th_pull_merge_result r1, r2;
	th_conflicts c = TH_CONFLICTS_INIT;
	th_error err;

	CHECK_OK(import_csv(repo, "a", "t", TH_OP_UPDATE, NULL, "id,name\n2,B-from-a\n", &err),
	         &err);
	CHECK_OK(import_csv(repo, "b", "t", TH_OP_UPDATE, NULL, "id,score\n4,444\n6,600\n", &err),
	         &err);
	CHECK_OK(th_pull_merge(&r1, &c, repo, "a", "main", 1, "alice", NULL, &err), &err);
	CHECK(c.total == 0);
	check_merge_commit(repo, &r1, "Merge pull request #1 from a");
	CHECK_OK(th_pull_merge(&r2, &c, repo, "b", "main", 2, "alice", NULL, &err), &err);
	CHECK(c.total == 0);
	check_merge_commit(repo, &r2, "Merge pull request #2 from b");
	CHECK(th_oid_equal(&r2.ours, &r1.commit));
	CHECK(head_is(repo, "main", &r2.commit));
	check_rows(repo, "main", "t",
	           "[1,\"a\",10]\n[2,\"B-from-a\",20]\n[3,\"c\",30]\n[4,\"d\",444]\n[5,\"e\",50]\n"
	           "[6,null,600]\n");
	th_conflicts_dispose(&c);
	th_repo_free(repo);
}

/* A table of several chunks: a three-way merge rewrites one of them and records the merged
 * table's row count (the schema's "rows"), not the count of the rows it rewrote. */
static void test_row_count_after_merge(void)
{
	char path[4096];
	th_repo *repo = new_repo(path, sizeof(path));
	th_pull_merge_result r1, r2;
	th_conflicts c = TH_CONFLICTS_INIT;
	th_buf csv = TH_BUF_INIT;
	th_table t = TH_TABLE_INIT;
	th_commit_info ci;
	th_error err;
	int i;

	th_buf_puts(&csv, "id,name,score\n", &err);
	for (i = 1; i <= 20000; i++)
		th_buf_printf(&csv, &err, "%d,name number %d,%d\n", i, i, i * 7);
	CHECK_OK(import_csv(repo, "main", "t", TH_OP_CREATE, "id", csv.ptr, &err), &err);
	branch_from(repo, "a", "main");
	branch_from(repo, "b", "main");
	CHECK_OK(import_csv(repo, "a", "t", TH_OP_UPDATE, NULL, "id,score\n10,1\n", &err), &err);
	CHECK_OK(import_csv(repo, "b", "t", TH_OP_UPDATE, NULL, "id,score\n19000,2\n20001,3\n",
	                    &err),
	         &err);
	CHECK_OK(th_pull_merge(&r1, &c, repo, "a", "main", 1, "alice", NULL, &err), &err);
	CHECK_OK(th_pull_merge(&r2, &c, repo, "b", "main", 2, "alice", NULL, &err), &err);
	CHECK(c.total == 0 && r2.stats.rows_changed == 2);
	memset(&ci, 0, sizeof(ci));
	CHECK_OK(th_repo_commit_read(&ci, repo, &r2.commit, &err), &err);
	CHECK_OK(th_table_load(&t, repo, &ci.tree, "t", &err), &err);
	CHECK(t.row_count == 20001);
	th_table_dispose(&t);
	th_commit_info_dispose(&ci);
	th_buf_dispose(&csv);
	th_conflicts_dispose(&c);
	th_repo_free(repo);
}

/* Two imports touching different cells of one row merge cell-wise. */
static void test_different_cells(void)
{
	char path[4096];
	th_repo *repo = scenario(path, sizeof(path));
	th_pull_merge_result r;
	th_conflicts c = TH_CONFLICTS_INIT;
	th_error err;

	CHECK_OK(import_csv(repo, "a", "t", TH_OP_UPDATE, NULL, "id,name\n3,C-from-a\n", &err),
	         &err);
	CHECK_OK(import_csv(repo, "b", "t", TH_OP_UPDATE, NULL, "id,score\n3,333\n", &err), &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "a", "main", 1, "alice", NULL, &err), &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "b", "main", 2, "alice", NULL, &err), &err);
	CHECK(c.total == 0);
	CHECK(r.stats.cells_merged == 1);
	check_merge_commit(repo, &r, "Merge pull request #2 from b");
	check_rows(
	        repo, "main", "t",
	        "[1,\"a\",10]\n[2,\"b\",20]\n[3,\"C-from-a\",333]\n[4,\"d\",40]\n[5,\"e\",50]\n");
	th_conflicts_dispose(&c);
	th_repo_free(repo);
}

/* The same cell changed differently on both sides: a conflict, listed; nothing changes. */
static void test_same_cell_conflict(void)
{
	char path[4096];
	th_repo *repo = scenario(path, sizeof(path));
	th_pull_merge_result r;
	th_conflicts c = TH_CONFLICTS_INIT, preview = TH_CONFLICTS_INIT;
	th_buf json = TH_BUF_INIT;
	th_oid before;
	th_error err;
	char *rows_before;
	int rc;

	CHECK_OK(import_csv(repo, "a", "t", TH_OP_UPDATE, NULL, "id,name\n3,from-a\n", &err), &err);
	CHECK_OK(import_csv(repo, "b", "t", TH_OP_UPDATE, NULL, "id,name,score\n3,from-b,31\n",
	                    &err),
	         &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "a", "main", 1, "alice", NULL, &err), &err);
	before = head_of(repo, "main");
	rows_before = export_rows(repo, "main", "t");

	/* The preview lists the conflict and writes nothing. */
	CHECK_OK(th_pull_conflicts(&preview, repo, "b", "main", &err), &err);
	CHECK(preview.total == 1);

	rc = th_pull_merge(&r, &c, repo, "b", "main", 2, "alice", NULL, &err);
	CHECK(rc == TH_ECONFLICT);
	CHECK_CONTAINS(err.msg, "merge conflict");
	CHECK(c.total == 1 && c.n == 1);
	if (c.n == 1) {
		CHECK_STR(c.v[0].table, "t");
		CHECK_STR(c.v[0].key, "3");
		CHECK_STR(c.v[0].column, "name");
		CHECK_STR(c.v[0].base, "\"c\"");
		CHECK_STR(c.v[0].ours, "\"from-a\"");
		CHECK_STR(c.v[0].theirs, "\"from-b\"");
	}
	CHECK(preview.n == 1 && strcmp(preview.v[0].column, "name") == 0);
	CHECK_OK(th_conflicts_to_json(&json, &c, &err), &err);
	CHECK_STR(json.ptr, "[{\"table\":\"t\",\"key\":\"3\",\"column\":\"name\",\"base\":\"c\","
	                    "\"ours\":\"from-a\",\"theirs\":\"from-b\",\"reason\":\"both sides "
	                    "changed the cell\"}]");
	/* Nothing changed: the branch, its rows. */
	CHECK(head_is(repo, "main", &before));
	check_rows(repo, "main", "t", rows_before);
	free(rows_before);
	th_buf_dispose(&json);
	th_conflicts_dispose(&c);
	th_conflicts_dispose(&preview);
	th_repo_free(repo);
}

/* A row deleted on one side and changed on the other is a conflict; deleted on both is not. */
static void test_delete_vs_change(void)
{
	char path[4096];
	th_repo *repo = scenario(path, sizeof(path));
	th_pull_merge_result r;
	th_conflicts c = TH_CONFLICTS_INIT;
	th_error err;
	int rc;

	/* a removes row 2 and row 5; b changes row 2 and removes row 5. */
	CHECK_OK(import_csv(repo, "a", "t", TH_OP_REPLACE, NULL,
	                    "id,name,score\n1,a,10\n3,c,30\n4,d,40\n", &err),
	         &err);
	CHECK_OK(import_csv(repo, "b", "t", TH_OP_REPLACE, NULL,
	                    "id,name,score\n1,a,10\n2,b2,20\n3,c,30\n4,d,40\n", &err),
	         &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "a", "main", 1, "alice", NULL, &err), &err);
	rc = th_pull_merge(&r, &c, repo, "b", "main", 2, "alice", NULL, &err);
	CHECK(rc == TH_ECONFLICT);
	CHECK(c.total == 1);
	if (c.n == 1) {
		CHECK_STR(c.v[0].key, "2");
		CHECK(c.v[0].column == NULL);
		CHECK_STR(c.v[0].ours, "null");
		CHECK_STR(c.v[0].base, "{\"id\":\"2\",\"name\":\"b\",\"score\":\"20\"}");
		CHECK_STR(c.v[0].theirs, "{\"id\":\"2\",\"name\":\"b2\",\"score\":\"20\"}");
		CHECK_CONTAINS(c.v[0].reason, "deleted");
	}
	check_rows(repo, "main", "t", "[1,\"a\",10]\n[3,\"c\",30]\n[4,\"d\",40]\n");
	th_conflicts_dispose(&c);
	th_repo_free(repo);
}

/* Tables added, dropped and re-schemaed on one side; an incompatible schema change. */
static void test_tables_and_schemas(void)
{
	char path[4096];
	th_repo *repo = scenario(path, sizeof(path));
	th_pull_merge_result r;
	th_conflicts c = TH_CONFLICTS_INIT;
	th_error err;
	char *rows;
	int rc;

	/* a adds table u; b overwrites t with a new column. */
	CHECK_OK(import_csv(repo, "a", "u", TH_OP_CREATE, "k", "k,v\nx,1\ny,2\n", &err), &err);
	CHECK_OK(
	        import_csv(repo, "b", "t", TH_OP_OVERWRITE, "id",
	                   "id,name,score,extra\n1,a,10,e1\n2,b,20,e2\n3,c,30,\n4,d,40,\n5,e,50,\n",
	                   &err),
	        &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "a", "main", 1, "alice", NULL, &err), &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "b", "main", 2, "alice", NULL, &err), &err);
	check_rows(repo, "main", "u", "[\"x\",1]\n[\"y\",2]\n");
	check_rows(
	        repo, "main", "t",
	        "[1,\"a\",10,\"e1\"]\n[2,\"b\",20,\"e2\"]\n[3,\"c\",30,null]\n[4,\"d\",40,null]\n"
	        "[5,\"e\",50,null]\n");

	/* Now c changes rows of t on the old schema... */
	branch_from(repo, "c", "a");
	CHECK_OK(import_csv(repo, "c", "t", TH_OP_UPDATE, NULL, "id,name\n1,changed\n", &err),
	         &err);
	rc = th_pull_merge(&r, &c, repo, "c", "main", 3, "alice", NULL, &err);
	CHECK(rc == TH_ECONFLICT);
	CHECK(c.n == 1 && c.v[0].key == NULL && c.v[0].reason &&
	      strstr(c.v[0].reason, "schema") != NULL);

	/* ...and d drops nothing but a table dropped on main meanwhile: d changed u, main drops
	 * it through e -> conflict; a branch that leaves u alone merges and keeps it dropped. */
	branch_from(repo, "d", "main");
	branch_from(repo, "e", "main");
	CHECK_OK(import_csv(repo, "d", "u", TH_OP_UPDATE, NULL, "k,v\nx,100\n", &err), &err);
	CHECK_OK(import_csv(repo, "e", "t", TH_OP_UPDATE, NULL, "id,name\n5,E\n", &err), &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "e", "main", 4, "alice", NULL, &err), &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "d", "main", 5, "alice", NULL, &err), &err);
	check_rows(repo, "main", "u", "[\"x\",100]\n[\"y\",2]\n");
	rows = export_rows(repo, "main", "t");
	CHECK_CONTAINS(rows, "[5,\"E\",50,null]");
	free(rows);
	th_conflicts_dispose(&c);
	th_repo_free(repo);
}

/* Keyless tables: rows are multisets; appends on both sides add up. */
static void test_keyless(void)
{
	char path[4096];
	th_repo *repo = new_repo(path, sizeof(path));
	th_pull_merge_result r;
	th_conflicts c = TH_CONFLICTS_INIT;
	th_error err;

	CHECK_OK(import_csv(repo, "main", "k", TH_OP_CREATE, NULL, "x,y\n1,a\n1,a\n2,b\n", &err),
	         &err);
	branch_from(repo, "a", "main");
	branch_from(repo, "b", "main");
	CHECK_OK(import_csv(repo, "a", "k", TH_OP_APPEND, NULL, "x,y\n3,c\n", &err), &err);
	CHECK_OK(import_csv(repo, "b", "k", TH_OP_APPEND, NULL, "x,y\n1,a\n0,z\n", &err), &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "a", "main", 1, "alice", NULL, &err), &err);
	CHECK_OK(th_pull_merge(&r, &c, repo, "b", "main", 2, "alice", NULL, &err), &err);
	check_rows(repo, "main", "k",
	           "[0,\"z\"]\n[1,\"a\"]\n[1,\"a\"]\n[1,\"a\"]\n[2,\"b\"]\n[3,\"c\"]\n");
	th_conflicts_dispose(&c);
	th_repo_free(repo);
}

/* A pull whose branch is already contained in the target writes no commit. */
static void test_up_to_date(void)
{
	char path[4096];
	th_repo *repo = scenario(path, sizeof(path));
	th_pull_merge_result r;
	th_oid before = head_of(repo, "main");
	th_error err;

	CHECK_OK(th_pull_merge(&r, NULL, repo, "a", "main", 1, "alice", NULL, &err), &err);
	CHECK(r.up_to_date);
	CHECK(head_is(repo, "main", &before));
	CHECK(th_pull_merge(&r, NULL, repo, "nope", "main", 1, "alice", NULL, &err) ==
	      TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "branch 'nope' not found");
	th_repo_free(repo);
}

/* Merging a pull again after its merge commit landed (an attempt that died before saying so) finds
 * that commit instead of writing another, even with a later merge on top; th_pull_merge_done
 * describes it the same way; another pull's name or a non-merge commit is not taken for it. */
static void test_merge_again_finds_commit(void)
{
	char path[4096];
	th_repo *repo = scenario(path, sizeof(path));
	th_pull_merge_result r1, r2, again, done;
	th_oid main_head;
	th_error err;

	CHECK_OK(import_csv(repo, "a", "t", TH_OP_UPDATE, NULL, "id,name\n2,B-from-a\n", &err),
	         &err);
	CHECK_OK(import_csv(repo, "b", "t", TH_OP_UPDATE, NULL, "id,score\n4,444\n", &err), &err);
	CHECK_OK(th_pull_merge(&r1, NULL, repo, "a", "main", 1, "alice", NULL, &err), &err);
	CHECK(!r1.recovered && !r1.up_to_date);
	CHECK_OK(th_pull_merge(&r2, NULL, repo, "b", "main", 2, "alice", NULL, &err), &err);
	main_head = head_of(repo, "main");

	CHECK_OK(th_pull_merge(&again, NULL, repo, "a", "main", 1, "alice", NULL, &err), &err);
	CHECK(again.recovered && !again.up_to_date);
	CHECK(th_oid_equal(&again.commit, &r1.commit));
	CHECK(th_oid_equal(&again.ours, &r1.ours) && th_oid_equal(&again.theirs, &r1.theirs));
	CHECK(again.stats.rows_changed == r1.stats.rows_changed);
	CHECK(again.stats.tables_changed == r1.stats.tables_changed);
	CHECK(head_is(repo, "main", &main_head));

	CHECK_OK(th_pull_merge_done(&done, repo, "main", &r1.commit, &err), &err);
	CHECK(done.recovered && th_oid_equal(&done.commit, &r1.commit));
	CHECK(done.stats.rows_changed == r1.stats.rows_changed);
	/* Another pull of the same branch is merely up to date; a one-parent commit is no merge. */
	CHECK_OK(th_pull_merge(&again, NULL, repo, "a", "main", 9, "alice", NULL, &err), &err);
	CHECK(again.up_to_date && !again.recovered);
	CHECK(th_pull_merge_done(&done, repo, "main", &r1.theirs, &err) == TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "not a merge commit");
	CHECK(th_pull_merge_done(&done, repo, "a", &r2.commit, &err) == TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "is not on branch 'a'");
	CHECK(head_is(repo, "main", &main_head));
	th_repo_free(repo);
}

/* --- 20 merges racing on one target ---------------------------------------------------------- */

#define RACERS 20

typedef struct racer {
	const char *path;
	int i;
	int rc;
	th_error err;
	th_pull_merge_result res;
} racer;

static pthread_barrier_t race_start;

static void *race(void *arg)
{
	racer *r = arg;
	th_repo *repo = NULL;
	char branch[32];

	snprintf(branch, sizeof(branch), "racer%d", r->i);
	if ((r->rc = th_repo_open(&repo, r->path, 0, &r->err)) < 0)
		return NULL;
	pthread_barrier_wait(&race_start);
	r->rc = th_pull_merge(&r->res, NULL, repo, branch, "main", r->i + 1, "racer", NULL,
	                      &r->err);
	th_repo_free(repo);
	return NULL;
}

typedef struct seen {
	th_oid want[RACERS];
	int found[RACERS];
	int merges;
} seen;

static int log_cb(const th_commit_info *ci, void *payload)
{
	seen *s = payload;
	int i;

	for (i = 0; i < RACERS; i++)
		if (th_oid_equal(&ci->id, &s->want[i]))
			s->found[i] = 1;
	s->merges += ci->nparents == 2;
	return 0;
}

static void test_racing_merges(void)
{
	char path[4096], csv[256], want[8192];
	th_repo *repo = new_repo(path, sizeof(path));
	pthread_t th[RACERS];
	racer rs[RACERS];
	seen s;
	th_oid head;
	th_error err;
	size_t wl = 0;
	int i, ok = 1;

	memset(&s, 0, sizeof(s));
	CHECK_OK(import_csv(repo, "main", "t", TH_OP_CREATE, "id", "id,v\n0,base\n", &err), &err);
	for (i = 0; i < RACERS; i++) {
		char branch[32];

		snprintf(branch, sizeof(branch), "racer%d", i);
		branch_from(repo, branch, "main");
		snprintf(csv, sizeof(csv), "id,v\n%d,r%d\n", i + 1, i);
		CHECK_OK(import_csv(repo, branch, "t", TH_OP_UPDATE, NULL, csv, &err), &err);
		s.want[i] = head_of(repo, branch);
	}
	pthread_barrier_init(&race_start, NULL, RACERS);
	for (i = 0; i < RACERS; i++) {
		rs[i].path = path;
		rs[i].i = i;
		rs[i].rc = -1;
		pthread_create(&th[i], NULL, race, &rs[i]);
	}
	for (i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&race_start);
	for (i = 0; i < RACERS; i++) {
		if (rs[i].rc != 0) {
			fprintf(stderr, "racer %d: %d %s\n", i, rs[i].rc, rs[i].err.msg);
			ok = 0;
		}
	}
	CHECK(ok);
	/* Every racer's commit is reachable from main, through 20 merge commits, and main's table
	 * holds every racer's row. */
	head = head_of(repo, "main");
	CHECK_OK(th_repo_log(repo, &head, 0, log_cb, &s, &err), &err);
	for (i = 0; i < RACERS; i++)
		CHECK(s.found[i]);
	CHECK(s.merges == RACERS);
	wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "[0,\"base\"]\n");
	for (i = 0; i < RACERS; i++)
		wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "[%d,\"r%d\"]\n", i + 1, i);
	check_rows(repo, "main", "t", want);
	th_repo_free(repo);
}

/* --- the diff against a full-table comparison of two exports --------------------------------- */

static uint64_t rng_state;

static unsigned rnd_below(unsigned n)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return (unsigned)(x % n);
}

typedef struct exp_row {
	char *id;
	th_cells cells;
} exp_row;

/* Export a table fully: its schema and decoded rows (in key order). */
typedef struct exported {
	th_schema schema;
	exp_row *rows;
	size_t n;
	int present;
} exported;

static void export_full(exported *e, th_repo *repo, const th_oid *commit, const char *table)
{
	th_commit_info ci;
	th_table t = TH_TABLE_INIT;
	th_row_iter *it = NULL;
	th_row r;
	th_error err;
	size_t cap = 0;

	memset(e, 0, sizeof(*e));
	memset(&ci, 0, sizeof(ci));
	if (th_oid_is_zero(commit))
		return;
	CHECK_OK(th_repo_commit_read(&ci, repo, commit, &err), &err);
	if (th_table_load(&t, repo, &ci.tree, table, &err) == TH_OK) {
		e->present = 1;
		CHECK_OK(th_row_iter_new(&it, repo, &t, &err), &err);
		while (th_row_iter_next(it, &r, &err) > 0) {
			th_cells init = TH_CELLS_INIT;
			if (e->n == cap) {
				cap = cap ? cap * 2 : 256;
				e->rows = realloc(e->rows, cap * sizeof(*e->rows));
			}
			e->rows[e->n].cells = init;
			CHECK_OK(th_row_decode(&e->rows[e->n].cells, &t.schema, r.line, r.linelen,
			                       &err),
			         &err);
			e->rows[e->n].id = strdup(e->rows[e->n].cells.c[0].s);
			e->n++;
		}
		th_row_iter_free(it);
		th_schema_copy(&e->schema, &t.schema, &err);
	}
	th_table_dispose(&t);
	th_commit_info_dispose(&ci);
}

static void exported_dispose(exported *e)
{
	size_t i;

	for (i = 0; i < e->n; i++) {
		free(e->rows[i].id);
		th_cells_dispose(&e->rows[i].cells);
	}
	free(e->rows);
	th_schema_dispose(&e->schema);
}

static const th_cell *cell_by_name(const exported *e, const exp_row *r, const char *col)
{
	int j = th_schema_find(&e->schema, col);

	return j < 0 ? NULL : &r->cells.c[j];
}

static int cells_differ(const th_cell *x, const th_cell *y)
{
	int xn = x == NULL || x->is_null, yn = y == NULL || y->is_null;

	if (xn || yn)
		return xn != yn;
	return x->len != y->len || memcmp(x->s, y->s, x->len) != 0;
}

typedef struct counts {
	uint64_t added, removed, modified, cells;
} counts;

/* Compare two exports by id (text ids, compared as the integers they are), column by name. */
static counts compare_exports(const exported *a, const exported *b)
{
	counts c = { 0, 0, 0, 0 };
	size_t i = 0, j = 0, k;

	while (i < a->n || j < b->n) {
		long long ia = i < a->n ? atoll(a->rows[i].id) : LLONG_MAX;
		long long ib = j < b->n ? atoll(b->rows[j].id) : LLONG_MAX;
		uint64_t cells = 0;

		if (ia < ib) {
			c.removed++;
			i++;
			continue;
		}
		if (ib < ia) {
			c.added++;
			j++;
			continue;
		}
		for (k = 0; k < b->schema.ncols; k++)
			cells += cells_differ(cell_by_name(a, &a->rows[i], b->schema.cols[k].name),
			                      &b->rows[j].cells.c[k]);
		for (k = 0; k < a->schema.ncols; k++)
			if (th_schema_find(&b->schema, a->schema.cols[k].name) < 0)
				cells += !a->rows[i].cells.c[k].is_null;
		if (cells) {
			c.modified++;
			c.cells += cells;
		}
		i++;
		j++;
	}
	return c;
}

typedef struct summary {
	int tables;
	counts c;
} summary;

static int sum_end(void *payload, const th_table_diff *t, th_error *err)
{
	summary *s = payload;

	(void)err;
	s->tables++;
	s->c.added += t->rows_added;
	s->c.removed += t->rows_removed;
	s->c.modified += t->rows_modified;
	s->c.cells += t->cells_modified;
	return 0;
}

/* A CSV of the rows of ids present in `present` (each byte a content version, 0 = absent).
 * shape 0: id,name,score; 1: an extra column; 2: the score column dropped. */
static char *random_csv(int shape, const unsigned char *present, unsigned nids)
{
	th_buf b = TH_BUF_INIT;
	unsigned id;

	th_buf_puts(&b,
	            shape == 1   ? "id,name,score,extra\n"
	            : shape == 2 ? "id,name\n"
	            : shape == 3 ? "id,name,points\n"
	                         : "id,name,score\n",
	            NULL);
	for (id = 0; id < nids; id++) {
		unsigned v = present[id];
		if (!v)
			continue;
		/* v is the row's content version: name and score derive from it. */
		th_buf_printf(&b, NULL, "%u,n%u_%u", id, id, v % 7);
		if (shape != 2) {
			if (v % 5 == 0)
				th_buf_puts(&b, ",", NULL);
			else
				th_buf_printf(&b, NULL, ",%u", v * 3 + id);
		}
		if (shape == 1)
			th_buf_printf(&b, NULL, ",%s", v % 2 ? "x" : "");
		th_buf_putc(&b, '\n', NULL);
	}
	return th_buf_detach(&b);
}

/* --- the values of a diff page, as the API gets them ----------------------------------------- */

#define PAGE_MAX 64

typedef struct page_row {
	th_change_kind kind;
	char key[64];
	int has_before, has_after;
	char before_score[16], after_score[16]; /* "null" for NULL */
	size_t nchanged;                        /* changed columns, dropped ones included */
	char first_changed[32];
} page_row;

typedef struct page_vals {
	size_t ntables, nrows;
	th_table_diff tables[8]; /* the counts; name and schemas are not kept */
	char table_names[8][32];
	page_row rows[PAGE_MAX];
} page_vals;

static void score_of(char out[16], const th_schema *s, const th_cells *c)
{
	int i = th_schema_find(s, "score");

	snprintf(out, 16, "%s", i < 0 || c->c[i].is_null ? "null" : c->c[i].s);
}

static int pv_table_end(void *payload, const th_table_diff *t, th_error *err)
{
	page_vals *p = payload;

	(void)err;
	if (p->ntables < 8) {
		p->tables[p->ntables] = *t;
		snprintf(p->table_names[p->ntables], 32, "%s", t->name);
	}
	p->ntables++;
	return 0;
}

static int pv_row(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err)
{
	page_vals *p = payload;
	page_row *pr;
	size_t i;

	(void)err;
	if (p->nrows++ >= PAGE_MAX)
		return 0;
	pr = &p->rows[p->nrows - 1];
	memset(pr, 0, sizeof(*pr));
	pr->kind = r->kind;
	snprintf(pr->key, sizeof(pr->key), "%s", r->key);
	if ((pr->has_before = r->before != NULL))
		score_of(pr->before_score, t->from_schema, r->before);
	if ((pr->has_after = r->after != NULL))
		score_of(pr->after_score, t->to_schema, r->after);
	if (r->kind != TH_CHANGE_MODIFIED)
		return 0;
	for (i = 0; i < t->to_schema->ncols; i++)
		if (r->changed[i] && pr->nchanged++ == 0)
			snprintf(pr->first_changed, 32, "%s", t->to_schema->cols[i].name);
	for (i = 0; i < t->from_schema->ncols; i++)
		if (r->dropped[i] && pr->nchanged++ == 0)
			snprintf(pr->first_changed, 32, "%s", t->from_schema->cols[i].name);
	return 0;
}

/* One page of the diff as values (the visitor th_pull_diff_page feeds the API with). */
static int diff_page(page_vals *out, th_buf *next, th_repo *repo, const th_oid *from,
                     const th_oid *to, const th_pull_diff_opts *o, th_error *err)
{
	th_diff_visitor v;

	memset(out, 0, sizeof(*out));
	memset(&v, 0, sizeof(v));
	v.row = pv_row;
	v.table_end = pv_table_end;
	v.payload = out;
	th_buf_clear(next);
	return th_pull_diff_page(next, repo, from, to, o, &v, err);
}

/* Count rows listed by paging through the diff with a small page size. */
static void page_through(th_repo *repo, const th_oid *from, const th_oid *to, const char *type,
                         uint64_t want, uint64_t want_cells)
{
	th_pull_diff_opts o;
	th_buf token = TH_BUF_INIT;
	char pos[4096] = "";
	uint64_t rows = 0, cells = 0;
	int pages = 0;

	memset(&o, 0, sizeof(o));
	o.page_size = 37;
	o.kinds = type ? 1u << th_change_kind_parse(type) : 0;
	for (;;) {
		static page_vals pv;
		th_error err;
		size_t i;

		o.page_token = pos;
		CHECK_OK(diff_page(&pv, &token, repo, from, to, &o, &err), &err);
		CHECK(pv.nrows <= 37);
		for (i = 0; i < pv.nrows && i < PAGE_MAX; i++) {
			rows++;
			if (type)
				CHECK_STR(th_change_kind_name(pv.rows[i].kind), type);
			cells += pv.rows[i].nchanged;
		}
		snprintf(pos, sizeof(pos), "%s", token.ptr ? token.ptr : "");
		pages++;
		if (!*pos || pages > 10000)
			break;
	}
	th_buf_dispose(&token);
	CHECK(rows == want);
	if (rows != want)
		fprintf(stderr, "paged %" PRIu64 " rows of type %s, want %" PRIu64 "\n", rows,
		        type ? type : "any", want);
	if (want_cells != UINT64_MAX)
		CHECK(cells == want_cells);
}

static void test_diff_property(void)
{
	int seed;

	for (seed = 1; seed <= 30; seed++) {
		char path[4096];
		th_repo *repo = new_repo(path, sizeof(path));
		unsigned nids = 50 + (unsigned)seed * 97 % 3000, id, nedits, e;
		unsigned char *pa = calloc(nids, 1), *pb;
		int shape = seed % 6 == 0 ? 1 : seed % 6 == 3 ? 2 : seed % 10 == 7 ? 3 : 0;
		char *csv;
		th_oid base, head;
		exported ea, eb;
		counts want;
		summary got;
		th_diff_visitor v;
		th_error err;

		rng_state = 0x2545f4914f6cdd1dull * (uint64_t)seed;
		for (id = 0; id < nids; id++)
			pa[id] = rnd_below(10) < 8 ? (unsigned char)(1 + rnd_below(250)) : 0;
		pa[0] = 1;
		csv = random_csv(0, pa, nids);
		CHECK_OK(import_csv(repo, "main", "t", TH_OP_CREATE, "id", csv, &err), &err);
		free(csv);
		branch_from(repo, "edit", "main");
		pb = malloc(nids);
		memcpy(pb, pa, nids);
		nedits = seed % 4 == 0 ? nids / 2 : 1 + rnd_below(15);
		for (e = 0; e < nedits; e++) {
			id = rnd_below(nids);
			pb[id] = rnd_below(4) == 0 ? 0 : (unsigned char)(1 + rnd_below(250));
		}
		pb[0] = 1;
		csv = random_csv(shape, pb, nids);
		CHECK_OK(import_csv(repo, "edit", "t", shape ? TH_OP_OVERWRITE : TH_OP_REPLACE,
		                    shape ? "id" : NULL, csv, &err),
		         &err);
		free(csv);

		CHECK_OK(th_pull_diff_commits(&base, &head, repo, "edit", "main", &err), &err);
		export_full(&ea, repo, &base, "t");
		export_full(&eb, repo, &head, "t");
		want = compare_exports(&ea, &eb);

		memset(&got, 0, sizeof(got));
		memset(&v, 0, sizeof(v));
		v.table_end = sum_end;
		v.payload = &got;
		v.summary_only = 1;
		{
			th_commit_info cb, ch;
			memset(&cb, 0, sizeof(cb));
			memset(&ch, 0, sizeof(ch));
			CHECK_OK(th_repo_commit_read(&cb, repo, &base, &err), &err);
			CHECK_OK(th_repo_commit_read(&ch, repo, &head, &err), &err);
			CHECK_OK(th_tree_diff(repo, &cb.tree, &ch.tree, NULL, &v, &err), &err);
			th_commit_info_dispose(&cb);
			th_commit_info_dispose(&ch);
		}
		if (got.c.added != want.added || got.c.removed != want.removed ||
		    got.c.modified != want.modified || got.c.cells != want.cells) {
			fprintf(stderr,
			        "seed %d: diff +%" PRIu64 " -%" PRIu64 " ~%" PRIu64
			        " cells %" PRIu64 "; exports +%" PRIu64 " -%" PRIu64 " ~%" PRIu64
			        " cells %" PRIu64 "\n",
			        seed, got.c.added, got.c.removed, got.c.modified, got.c.cells,
			        want.added, want.removed, want.modified, want.cells);
			CHECK(0);
		}
		CHECK(got.tables == (want.added + want.removed + want.modified ? 1 : 0) ||
		      (shape && got.tables == 1));
		/* The paged JSON lists the same rows, and the type filter splits them. */
		page_through(repo, &base, &head, NULL, want.added + want.removed + want.modified,
		             want.cells);
		if (seed % 3 == 0) {
			page_through(repo, &base, &head, "added", want.added, UINT64_MAX);
			page_through(repo, &base, &head, "removed", want.removed, UINT64_MAX);
			page_through(repo, &base, &head, "modified", want.modified, UINT64_MAX);
		}
		exported_dispose(&ea);
		exported_dispose(&eb);
		free(pa);
		free(pb);
		th_repo_free(repo);
	}
}

/* The values of a small diff, field by field; a bad page token is refused. */
static void test_diff_values(void)
{
	char path[4096];
	th_repo *repo = scenario(path, sizeof(path));
	th_pull_diff_opts o;
	th_buf next = TH_BUF_INIT;
	th_oid base, head;
	th_error err;
	static page_vals pv;
	const th_table_diff *t;
	const page_row *r;

	CHECK_OK(import_csv(repo, "a", "t", TH_OP_REPLACE, NULL,
	                    "id,name,score\n1,a,11\n2,b,20\n4,d,40\n5,e,50\n7,g,\n", &err),
	         &err);
	CHECK_OK(th_pull_diff_commits(&base, &head, repo, "a", "main", &err), &err);
	memset(&o, 0, sizeof(o));
	CHECK_OK(diff_page(&pv, &next, repo, &base, &head, &o, &err), &err);
	CHECK(pv.ntables == 1);
	t = &pv.tables[0];
	CHECK_STR(pv.table_names[0], "t");
	CHECK_STR(th_table_change_name(t->change), "modified");
	CHECK(t->rows_added == 1);
	CHECK(t->rows_removed == 1);
	CHECK(t->rows_modified == 1);
	CHECK(t->cells_modified == 1);
	CHECK(!t->schema_changed);
	CHECK(pv.nrows == 3);
	r = &pv.rows[0];
	CHECK_STR(th_change_kind_name(r->kind), "modified");
	CHECK_STR(r->key, "1");
	CHECK_STR(r->before_score, "10");
	CHECK_STR(r->after_score, "11");
	CHECK_STR(r->first_changed, "score");
	r = &pv.rows[1];
	CHECK_STR(th_change_kind_name(r->kind), "removed");
	CHECK(!r->has_after);
	r = &pv.rows[2];
	CHECK_STR(r->key, "7");
	CHECK(r->has_after);
	CHECK_STR(r->after_score, "null");
	CHECK(next.size == 0);

	o.page_token = "zz";
	CHECK(diff_page(&pv, &next, repo, &base, &head, &o, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "pageToken");
	o.page_token = NULL;
	o.table = "nosuch";
	CHECK_OK(diff_page(&pv, &next, repo, &base, &head, &o, &err), &err);
	CHECK(pv.ntables == 0 && pv.nrows == 0 && next.size == 0);
	th_buf_dispose(&next);
	th_repo_free(repo);
}

int main(void)
{
	th_error err;

	tmp = t_mkdtemp();
	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return 1;
	}
	RUN(test_different_rows);
	RUN(test_row_count_after_merge);
	RUN(test_different_cells);
	RUN(test_same_cell_conflict);
	RUN(test_delete_vs_change);
	RUN(test_tables_and_schemas);
	RUN(test_keyless);
	RUN(test_up_to_date);
	RUN(test_merge_again_finds_commit);
	RUN(test_diff_values);
	RUN(test_diff_property);
	RUN(test_racing_merges);
	th_repo_global_shutdown();
	t_rmdir(tmp);
	TH_TEST_END();
}
