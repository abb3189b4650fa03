/* test_fault.c: imports and merges under injected failures (tests/fault.h): the n-th allocation
 * (ours, cJSON's or SQLite's) or the n-th file open, read, write, fsync or rename of ours fails,
 * for n = 1, 2, ... until the operation no longer reaches the n-th call. After each run: an error
 * came back (or, where the code may go on without what failed, a correct result), nothing crashed,
 * the branch either did not move or moved to a complete commit with the right rows, the repository
 * passes `git fsck`, and the same operation without faults succeeds. LeakSanitizer checks at exit
 * that no failure path leaked (scripts/test runs it with detect_leaks=1).
 *
 * Two parts, in the scene of tests/fault_scene.h (test_fault_jobs.c does the server's part):
 * - the library calls, single-threaded and deterministic: th_import_fd (Update of a keyed table,
 *   with a small sort budget so the sorter writes runs) and th_pull_merge (a three-way merge);
 * - the metadata store as a job uses it (an operation created, claimed and completed; a pull
 *   created and merged), under SQLite's allocation failures: each call fails with a message and
 *   leaves the row as it was, or stores exactly what it was given.
 * Every failure point of each class is run (a few hundred each; seconds under ASan).
 */
#include "fault_scene.h"

/* --- the library calls ----------------------------------------------------------------------- */

static int import_point(th_fault_class c, long n)
{
	th_import_result res;
	th_error err;
	th_oid now;
	char *rows;
	int rc, fired;

	set_branch(repo, "imp", &base_head);
	th_error_clear(&err);
	th_fault_arm(c, n, 0);
	rc = import_file(&res, repo, "imp", csv_path, TH_OP_UPDATE, &err);
	fired = th_fault_fired();
	th_fault_disarm();

	now = head(repo, "imp");
	if (rc == TH_OK) {
		CHECK(th_oid_equal(&now, &res.commit));
		rows = rows_at(repo, &now);
		CHECK_STR(rows, want_import);
		free(rows);
		return fired;
	}
	CHECK(fired); /* no failure without a fault */
	CHECK(err.msg[0] != '\0');
	CHECK(th_oid_equal(&now, &base_head));
	/* The handle is still good: the same import without faults succeeds. */
	CHECK_OK(import_file(&res, repo, "imp", csv_path, TH_OP_UPDATE, &err), &err);
	now = head(repo, "imp");
	rows = rows_at(repo, &now);
	CHECK_STR(rows, want_import);
	free(rows);
	return fired;
}

static int merge_point(th_fault_class c, long n)
{
	th_pull_merge_result res;
	th_conflicts conflicts = TH_CONFLICTS_INIT;
	th_commit_info ci;
	th_error err;
	th_oid now;
	char *rows;
	int rc, fired;

	memset(&ci, 0, sizeof(ci));
	set_branch(repo, "main", &base_head);
	th_error_clear(&err);
	th_fault_arm(c, n, 0);
	rc = th_pull_merge(&res, &conflicts, repo, "feature", "main", 1, "alice", NULL, &err);
	fired = th_fault_fired();
	th_fault_disarm();
	th_conflicts_dispose(&conflicts);

	now = head(repo, "main");
	if (rc != TH_OK) {
		CHECK(fired);
		CHECK(err.msg[0] != '\0');
		CHECK(th_oid_equal(&now, &base_head));
		CHECK_OK(th_pull_merge(&res, NULL, repo, "feature", "main", 1, "alice", NULL, &err),
		         &err);
		now = head(repo, "main");
	}
	CHECK(th_oid_equal(&now, &res.commit));
	if (th_repo_commit_read(&ci, repo, &now, &err) == TH_OK) {
		CHECK(ci.nparents == 2 && th_oid_equal(&ci.parents[0], &base_head) &&
		      th_oid_equal(&ci.parents[1], &feature_head));
		th_commit_info_dispose(&ci);
	} else {
		CHECK(0);
	}
	rows = rows_at(repo, &now);
	CHECK_STR(rows, want_merge);
	free(rows);
	return fired;
}

static void test_library_calls(void)
{
	each_point(TH_FAULT_ALLOC, import_point, "import");
	each_point(TH_FAULT_IO, import_point, "import");
	/* The merge writes its objects and moves its ref through libgit2 only, out of the I/O
	 * hook's reach: allocations only. */
	each_point(TH_FAULT_ALLOC, merge_point, "merge");
	set_branch(repo, "main", &base_head);
}

/* --- the metadata store as a job uses it --------------------------------------------- */

static int64_t meta_db_id;
/* Longer than SQLite's lookaside slots, so that copying them takes memory from the allocator. */
static char long_result[2100], long_title[1600];

static int64_t meta_ops(void)
{
	th_op_list l;
	th_error err;
	int64_t n;
	int was = th_fault_exempt(1);

	memset(&l, 0, sizeof(l));
	CHECK_OK(th_meta_op_list_db(&l, NULL, meta, "alice", "meta", NULL, NULL, 1000, &err), &err);
	n = (int64_t)l.n;
	th_op_list_dispose(&l);
	th_fault_exempt(was);
	return n;
}

/* An operation's life (create, claim, complete with a result) and a pull's (create, merge) in
 * meta.sqlite, with SQLite failing at point n: each call fails with a message and leaves the row as
 * it was (or, for the claim, claimed), or succeeds and stored exactly what it was given. */
static int meta_point(th_fault_class c, long n)
{
	th_op_new nw;
	th_op_info op, got;
	th_pull_info pull;
	th_error err;
	char id[TH_UUID_SIZE], from[64];
	int64_t before = meta_ops(), pid = 0;
	int rc, fired;

	memset(&nw, 0, sizeof(nw));
	memset(&op, 0, sizeof(op));
	memset(&pull, 0, sizeof(pull));
	nw.kind = "import";
	nw.owner = "alice";
	nw.db = "meta";
	nw.creator = "bob";
	nw.params = "{\"importOp\":\"Update\"}";
	nw.file_name = "f.csv";
	nw.table_name = "items";
	th_error_clear(&err);
	th_fault_arm(c, n, 0);
	if ((rc = th_meta_op_create(id, meta, &nw, &err)) == TH_OK &&
	    (rc = th_meta_op_claim(&op, meta, 600000, &err)) == TH_OK) {
		CHECK_STR(op.id, id);
		rc = th_meta_op_complete(meta, id, op.attempts, long_result, 7, &err);
	}
	fired = th_fault_fired();
	th_fault_disarm();
	if (rc != TH_OK) {
		CHECK(fired);
		CHECK(err.msg[0] != '\0');
	}
	if (meta_ops() == before) {
		CHECK(rc != TH_OK);
	} else if (th_meta_op_get(&got, meta, id, &err) == TH_OK) {
		CHECK(meta_ops() == before + 1);
		CHECK_STR(got.params, nw.params);
		CHECK_STR(got.file_name, "f.csv");
		CHECK_STR(got.table_name, "items");
		if (rc == TH_OK) {
			CHECK(got.state == TH_OPSTATE_COMPLETED && got.pull_id == 7);
			CHECK_STR(got.result, long_result);
		} else {
			CHECK(got.state == TH_OPSTATE_PENDING ||
			      got.state == TH_OPSTATE_IN_PROGRESS);
			CHECK_OK(th_meta_op_fail(meta, id, 0, "ended by the test", 0, 0, &err),
			         &err);
		}
		th_op_info_dispose(&got);
	} else {
		CHECK(0);
	}
	th_op_info_dispose(&op);

	/* A branch of its own: a pull left Open by a failure holds its branch's one open pull. */
	snprintf(from, sizeof(from), "bob/import-%ld", n);
	th_fault_arm(c, n, 0);
	if ((rc = th_meta_pull_create(&pid, meta, meta_db_id, long_title, "Rows added: 3", "bob",
	                              from, "main", &err)) == TH_OK)
		rc = th_meta_pull_set_state(meta, meta_db_id, pid, TH_PULL_MERGED,
		                            "0123456789012345678901234567890123456789", &err);
	fired |= th_fault_fired();
	th_fault_disarm();
	if (rc != TH_OK) {
		CHECK(th_fault_fired() || fired);
		CHECK(err.msg[0] != '\0');
	}
	if (pid > 0 && th_meta_pull_get(&pull, meta, meta_db_id, pid, &err) == TH_OK) {
		CHECK_STR(pull.title, long_title);
		CHECK_STR(pull.description, "Rows added: 3");
		CHECK_STR(pull.author, "bob");
		CHECK_STR(pull.from_branch, from);
		CHECK_STR(pull.to_branch, "main");
		if (rc == TH_OK)
			CHECK(pull.state == TH_PULL_MERGED &&
			      strcmp(pull.merge_commit,
			             "0123456789012345678901234567890123456789") == 0);
		else
			CHECK(pull.state == TH_PULL_OPEN && pull.merge_commit[0] == '\0');
		th_pull_info_dispose(&pull);
	}
	return fired;
}

static void test_meta_calls(void)
{
	th_db_info dbi;
	th_error err;

	memset(&dbi, 0, sizeof(dbi));
	snprintf(long_result, sizeof(long_result), "{\"rows\":3,\"note\":\"%02000d\"}", 7);
	snprintf(long_title, sizeof(long_title), "Import %01500d.csv", 7);
	CHECK_OK(th_meta_db_create(meta, "alice", "meta", "", 0, &err), &err);
	CHECK_OK(th_meta_db_get(&dbi, meta, "alice", "meta", &err), &err);
	meta_db_id = dbi.id;
	th_db_info_dispose(&dbi);
	if (th_t_failed_checks == 0)
		each_point(TH_FAULT_SQLITE, meta_point, "meta");
}

int main(void)
{
	if (scene_setup() < 0)
		return 1;
	RUN(test_library_calls);
	RUN(test_meta_calls);
	scene_teardown();
	TH_TEST_END();
}
