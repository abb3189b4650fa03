/* test_fault_jobs.c: what the server does, under injected failures (tests/fault.h), in the scene
 * of tests/fault_scene.h: an upload (th_upload_*: a whole file under its name, or none), and the
 * import and merge jobs through the job queue (a pool of one worker). After each failure point
 * the operation row is in a valid state (Pending or In Progress when the failure hit the claim or
 * the completion; Completed with its pull; Failed with a message that names no server path),
 * every Open pull's branch exists, a Merged pull names main's head, the repository passes `git
 * fsck`, and a restarted pool without faults finishes what was left (a new operation when it
 * Failed). LeakSanitizer checks at exit that no failure path leaked.
 *
 * Every failure point of each class is run (about 1,200 in all, the pack an operation writes
 * included; about 70 s under ASan on two cores).
 */
#include "fault_scene.h"
#include "tablehub/files.h"
#include "tablehub/jobs.h"

/* --- the operations through the job queue --------------------------------------------------- */

static int64_t db_id;
static char upload_sha[65];
static uint64_t upload_size;

/* A pool of one worker that polls and renews leases only when told (both every 10 minutes), so
 * nothing runs but the job under test. */
static th_jobs *pool_start(void)
{
	th_jobs *j = NULL;
	th_error err;

	if (th_jobs_create(&j, dir, meta, 1, &err) < 0)
		abort();
	th_jobs_set_timing(j, 600000, 600000);
	if (th_jobs_run(j, &err) < 0) {
		fprintf(stderr, "th_jobs_run: %s\n", err.msg);
		abort();
	}
	return j;
}

/* Wait until operation `id` has ended or, with `until_fired`, the armed failure happened. The
 * polling itself is exempt from faults. Reads the operation into *op. Returns 0, or -1 after 60 s.
 */
static int wait_op(th_op_info *op, const char *id, int until_fired)
{
	int64_t end = mono_ms() + 60000;
	struct timespec ms = { 0, 2000000 };
	th_error err;
	int rc = -1, was = th_fault_exempt(1);

	for (;;) {
		if (th_meta_op_get(op, meta, id, &err) < 0)
			abort();
		if (op->state == TH_OPSTATE_COMPLETED || op->state == TH_OPSTATE_FAILED ||
		    (until_fired && th_fault_fired())) {
			rc = 0;
			break;
		}
		th_op_info_dispose(op);
		if (mono_ms() > end) {
			fprintf(stderr, "operation %s did not end\n", id);
			memset(op, 0, sizeof(*op));
			break;
		}
		nanosleep(&ms, NULL);
	}
	th_fault_exempt(was);
	return rc;
}

/* Every Open pull's branch exists (a failed job may not leave a pull behind whose branch it
 * deleted). */
static void check_open_pulls(th_repo *r)
{
	th_pull_list l;
	th_error err;
	size_t i;

	memset(&l, 0, sizeof(l));
	CHECK_OK(th_meta_pull_list(&l, NULL, meta, db_id, TH_PULL_OPEN, NULL, 1000, &err), &err);
	for (i = 0; i < l.n; i++) {
		th_oid h = head(r, l.items[i].from_branch);
		if (th_oid_is_zero(&h))
			fprintf(stderr, "pull #%lld: branch '%s' is gone\n",
			        (long long)l.items[i].pull_id, l.items[i].from_branch);
		CHECK(!th_oid_is_zero(&h));
	}
	th_pull_list_dispose(&l);
}

/* Run the queued operation `id` with failure point n of class c armed: the pool starts armed, so
 * its worker's calls are counted from its first (it claims the operation at once; the test's
 * thread is exempt), and is stopped once the operation ended or the failure happened (th_jobs_stop
 * waits for the job it runs). The caller disarms. Returns 0, or -1 when the operation hangs. */
static int run_armed(th_fault_class c, long n, const char *id)
{
	th_op_info op;
	th_jobs *j;
	int rc;

	th_fault_exempt(1);
	th_fault_arm(c, n, 0);
	j = pool_start();
	rc = wait_op(&op, id, 1);
	th_jobs_stop(j);
	th_fault_exempt(0);
	if (rc == 0)
		th_op_info_dispose(&op);
	CHECK(rc == 0);
	return rc;
}

static void enqueue_import(char id[TH_UUID_SIZE])
{
	static const char *const pk[] = { "id" };
	th_import_params p;
	th_error err;

	memset(&p, 0, sizeof(p));
	p.owner = "alice";
	p.db = "shop";
	p.creator = "bob";
	p.upload_sha256 = upload_sha;
	p.bytes_total = upload_size;
	p.file_name = "update.csv";
	p.table_name = "items";
	p.branch_name = "main";
	p.op = TH_OP_UPDATE;
	p.format = th_format_find("Csv");
	p.pk = pk;
	p.npk = 1;
	CHECK_OK(th_jobs_enqueue_import(id, meta, &p, &err), &err);
}

/* The import branch of operation `id`: zero, or a complete commit with the imported rows. Returns
 * whether it exists. */
static int check_import_branch(th_repo *r, const char *id)
{
	char branch[64], *rows;
	th_oid h;

	snprintf(branch, sizeof(branch), "bob/import-%.8s", id);
	h = head(r, branch);
	if (th_oid_is_zero(&h))
		return 0;
	rows = rows_at(r, &h);
	CHECK_STR(rows, want_import);
	free(rows);
	return 1;
}

/* After a run: the operation is in a state it may be left in, and a pool without faults ends it
 * Completed (a retry when it was left running, a new operation when it Failed). */
static void finish_op(th_repo *r, const char *id, const th_op_info *op, int is_import,
                      void (*again)(char id[TH_UUID_SIZE]))
{
	char retry[TH_UUID_SIZE];
	th_op_info done;
	th_jobs *j;

	switch (op->state) {
	case TH_OPSTATE_PENDING:
	case TH_OPSTATE_IN_PROGRESS:
		break;
	case TH_OPSTATE_COMPLETED:
		CHECK(op->result != NULL && op->pull_id > 0);
		break;
	case TH_OPSTATE_FAILED:
		CHECK(op->error_message != NULL && op->error_message[0] != '\0');
		CHECK(op->error_message == NULL || strstr(op->error_message, dir) == NULL);
		/* A failed import keeps its branch only for the pull request it opened. */
		if (is_import && check_import_branch(r, id)) {
			char branch[64];
			int64_t pull = 0;
			th_error err;
			snprintf(branch, sizeof(branch), "bob/import-%.8s", id);
			CHECK_OK(th_meta_pull_find_open(&pull, meta, db_id, branch, "main", &err),
			         &err);
		}
		break;
	default:
		CHECK(0);
	}
	check_open_pulls(r);
	if (op->state == TH_OPSTATE_COMPLETED)
		return;
	memcpy(retry, id, TH_UUID_SIZE);
	if (op->state == TH_OPSTATE_FAILED)
		again(retry);
	j = pool_start();
	th_jobs_wake(j);
	if (wait_op(&done, retry, 0) == 0) {
		if (done.state != TH_OPSTATE_COMPLETED)
			fprintf(stderr, "retry: %s\n",
			        done.error_message ? done.error_message : "");
		CHECK(done.state == TH_OPSTATE_COMPLETED);
		if (is_import)
			CHECK(check_import_branch(r, retry));
		th_op_info_dispose(&done);
	} else {
		CHECK(0);
	}
	th_jobs_stop(j);
	check_open_pulls(r);
}

static int import_job_point(th_fault_class c, long n)
{
	char id[TH_UUID_SIZE];
	th_op_info op;
	th_error err;
	int fired;

	enqueue_import(id);
	if (run_armed(c, n, id) < 0)
		return 0;
	fired = th_fault_fired();
	th_fault_disarm();
	CHECK_OK(th_meta_op_get(&op, meta, id, &err), &err);
	if (!fired)
		CHECK(op.state == TH_OPSTATE_COMPLETED);
	finish_op(repo, id, &op, 1, enqueue_import);
	if (op.state == TH_OPSTATE_COMPLETED)
		CHECK(check_import_branch(repo, id));
	th_op_info_dispose(&op);
	return fired;
}

static int64_t merge_pull;

static void enqueue_merge(char id[TH_UUID_SIZE])
{
	th_error err;

	CHECK_OK(th_pulls_enqueue_merge(id, meta, "alice", "shop", "alice", merge_pull, NULL, &err),
	         &err);
}

static int merge_job_point(th_fault_class c, long n)
{
	char id[TH_UUID_SIZE], hex[41];
	th_op_info op;
	th_pull_info pull;
	th_commit_info ci;
	th_error err;
	th_oid now;
	char *rows;
	int fired;

	memset(&ci, 0, sizeof(ci));
	memset(&pull, 0, sizeof(pull));
	set_branch(repo, "main", &base_head);
	CHECK_OK(th_meta_pull_create(&merge_pull, meta, db_id, "feature", "", "alice", "feature",
	                             "main", &err),
	         &err);
	enqueue_merge(id);
	if (run_armed(c, n, id) < 0)
		return 0;
	fired = th_fault_fired();
	th_fault_disarm();
	CHECK_OK(th_meta_op_get(&op, meta, id, &err), &err);
	if (!fired)
		CHECK(op.state == TH_OPSTATE_COMPLETED);

	/* main did not move, or moved to the whole merge; a Merged pull names main's head. */
	now = head(repo, "main");
	th_oid_fmt(hex, &now);
	CHECK_OK(th_meta_pull_get(&pull, meta, db_id, merge_pull, &err), &err);
	if (!th_oid_equal(&now, &base_head)) {
		rows = rows_at(repo, &now);
		CHECK_STR(rows, want_merge);
		free(rows);
	}
	if (pull.state == TH_PULL_MERGED)
		CHECK_STR(pull.merge_commit, hex);
	if (op.state == TH_OPSTATE_COMPLETED)
		CHECK(pull.state == TH_PULL_MERGED);
	th_pull_info_dispose(&pull);

	finish_op(repo, id, &op, 0, enqueue_merge);
	CHECK_OK(th_meta_pull_get(&pull, meta, db_id, merge_pull, &err), &err);
	CHECK(pull.state == TH_PULL_MERGED);
	now = head(repo, "main");
	th_oid_fmt(hex, &now);
	CHECK_STR(pull.merge_commit, hex);
	if (th_repo_commit_read(&ci, repo, &now, &err) == TH_OK) {
		CHECK(ci.nparents == 2 && th_oid_equal(&ci.parents[0], &base_head) &&
		      th_oid_equal(&ci.parents[1], &feature_head));
		th_commit_info_dispose(&ci);
	} else {
		CHECK(0);
	}
	th_pull_info_dispose(&pull);
	th_op_info_dispose(&op);
	return fired;
}

/* An upload: finished with the right name and bytes, or failed leaving no file behind. */
static int upload_point(th_fault_class c, long n)
{
	char sha[65], name[4200], text[64], up[4096], tmp[4096];
	th_upload *u = NULL;
	th_error err;
	uint64_t size;
	int rc, fired, before_up, before_tmp;
	char *got;

	snprintf(text, sizeof(text), "id,n\n1,%ld\n", n + 1000000 * (long)c);
	snprintf(up, sizeof(up), "%s/uploads", dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	before_up = count_entries(up);
	before_tmp = count_entries(tmp);
	th_error_clear(&err);
	th_fault_arm(c, n, 0);
	if ((rc = th_upload_begin(&u, dir, 1048576, &err)) == TH_OK) {
		if ((rc = th_upload_write(u, text, strlen(text), &err)) == TH_OK)
			rc = th_upload_finish(u, sha, &size, &err);
		else
			th_upload_abort(u);
	}
	fired = th_fault_fired();
	th_fault_disarm();
	if (rc == TH_OK) {
		CHECK(size == strlen(text));
		CHECK(count_entries(up) <= before_up + 1);
	} else {
		CHECK(fired);
		CHECK(err.msg[0] != '\0');
		CHECK(count_entries(tmp) == before_tmp);
		/* A failure may come after the file got its name (fsync of the directory): then it
		 * is whole, and uploading the same bytes again finds it. */
		CHECK_OK(th_upload_begin(&u, dir, 0, &err), &err);
		CHECK_OK(th_upload_write(u, text, strlen(text), &err), &err);
		CHECK_OK(th_upload_finish(u, sha, &size, &err), &err);
		CHECK(count_entries(up) == before_up + 1);
	}
	snprintf(name, sizeof(name), "%s/%s", up, sha);
	got = t_read_file(name, NULL);
	CHECK_STR(got, text);
	free(got);
	CHECK(count_entries(tmp) == before_tmp);
	return fired;
}

static void test_operations(void)
{
	th_db_info dbi;
	th_upload *u = NULL;
	th_error err;

	memset(&dbi, 0, sizeof(dbi));
	CHECK_OK(th_meta_db_get(&dbi, meta, "alice", "shop", &err), &err);
	db_id = dbi.id;
	th_db_info_dispose(&dbi);
	CHECK_OK(th_upload_begin(&u, dir, 0, &err), &err);
	CHECK_OK(th_upload_write(u, update_csv, strlen(update_csv), &err), &err);
	CHECK_OK(th_upload_finish(u, upload_sha, &upload_size, &err), &err);
	if (th_t_failed_checks)
		return;

	each_point(TH_FAULT_ALLOC, upload_point, "upload");
	each_point(TH_FAULT_IO, upload_point, "upload");
	/* test_fault ran the import and the merge inside the jobs through every point: here the
	 * first and the last 50 (the claim; the pull, the result, the completion), a sample
	 * between.
	 */
	each_point(TH_FAULT_ALLOC, import_job_point, "import job");
	each_point(TH_FAULT_IO, import_job_point, "import job");
	each_point(TH_FAULT_ALLOC, merge_job_point, "merge job");
	each_point(TH_FAULT_SQLITE, import_job_point, "import job");
	each_point(TH_FAULT_SQLITE, merge_job_point, "merge job");
}

int main(void)
{
	if (scene_setup() < 0)
		return 1;
	RUN(test_operations);
	scene_teardown();
	TH_TEST_END();
}
