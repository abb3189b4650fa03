/* test_ops.c: stopping operations: cancel requests in the store (storage/meta_control.c), the
 * queue's th_job_check with cancels and time caps (src/jobs.c), the import engine's check calls
 * (th_import_opts.check) and a real import job cancelled while it runs, which commits nothing.
 * Queue mechanics run with a test kind registered in place of the built-in "import" or "merge";
 * the import runs for real on a real repository. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "harness.h"
#include "util.h"
#include "tablehub/datadir.h"
#include "tablehub/files.h"
#include "tablehub/import.h"
#include "tablehub/jobs.h"
#include "tablehub/meta.h"
#include "tablehub/meta_control.h"
#include "tablehub/repo.h"

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until operation `id` is in `state` (or has ended, for state 0), at most timeout_ms; then
 * read it into *out (dispose it). Returns 0, or -1 on a timeout. */
static int wait_state(th_op_info *out, th_meta *m, const char *id, th_op_state state,
                      int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	th_error err;

	for (;;) {
		if (th_meta_op_get(out, m, id, &err) < 0)
			return -1;
		if (state ? out->state == state
		          : out->state == TH_OPSTATE_COMPLETED || out->state == TH_OPSTATE_FAILED)
			return 0;
		th_op_info_dispose(out);
		if (mono_ms() > end) {
			fprintf(stderr, "operation %s did not reach state %d in %d ms\n", id,
			        (int)state, timeout_ms);
			return -1;
		}
		sleep_ms(10);
	}
}

static void op_create(char id[TH_UUID_SIZE], th_meta *m, const char *kind, const char *what)
{
	th_op_new n;
	th_error err;

	memset(&n, 0, sizeof(n));
	n.kind = kind;
	n.owner = "alice";
	n.db = "museums";
	n.creator = "bob";
	n.file_name = what;
	n.table_name = "t";
	if (th_meta_op_create(id, m, &n, &err) < 0) {
		fprintf(stderr, "op_create: %s\n", err.msg);
		abort();
	}
}

/* --- the store ------------------------------------------------------------------------------- */

static void test_cancel_store(void)
{
	char *dir = t_mkdtemp(), pend[TH_UUID_SIZE], run[TH_UUID_SIZE], other[TH_UUID_SIZE];
	char by[65], found_id[TH_UUID_SIZE];
	th_meta *m = NULL;
	th_error err;
	th_op_info op;
	th_op_state st = (th_op_state)0;
	int req = -1, found = -1;

	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	op_create(run, m, "import", "run");
	op_create(pend, m, "import", "pending");
	op_create(other, m, "merge", "x");
	CHECK_OK(th_meta_op_claim(&op, m, 60000, &err), &err); /* the oldest: run */
	CHECK_STR(op.id, run);
	th_op_info_dispose(&op);

	/* Pending: ends at once, Failed with who cancelled it. */
	CHECK_OK(th_meta_op_cancel(&st, m, pend, "carol", &err), &err);
	CHECK(st == TH_OPSTATE_FAILED);
	CHECK_OK(th_meta_op_get(&op, m, pend, &err), &err);
	CHECK(op.state == TH_OPSTATE_FAILED);
	CHECK_STR(op.error_message, "cancelled by carol");
	th_op_info_dispose(&op);
	CHECK(th_meta_op_cancel(&st, m, pend, "carol", &err) == TH_ECONFLICT);
	CHECK_CONTAINS(err.msg, "has already ended (Failed)");
	/* A cancelled Pending operation is never claimed. */
	CHECK_OK(th_meta_op_claim(&op, m, 60000, &err), &err);
	CHECK_STR(op.id, other);
	th_op_info_dispose(&op);

	/* In Progress: the request is recorded, the state left to the worker. */
	CHECK_OK(th_meta_op_cancel_requested(&req, by, m, run, &err), &err);
	CHECK(req == 0);
	CHECK_STR(by, "");
	CHECK_OK(th_meta_op_cancel(&st, m, run, "dave", &err), &err);
	CHECK(st == TH_OPSTATE_IN_PROGRESS);
	CHECK_OK(th_meta_op_cancel(&st, m, run, "eve", &err), &err); /* again: no error */
	CHECK_OK(th_meta_op_cancel_requested(&req, by, m, run, &err), &err);
	CHECK(req == 1);
	CHECK_STR(by, "dave"); /* the first request is the one on record */
	CHECK_OK(th_meta_op_get(&op, m, run, &err), &err);
	CHECK(op.state == TH_OPSTATE_IN_PROGRESS);
	CHECK_OK(th_meta_op_complete(m, run, op.attempts, "{}", 0, &err), &err);
	th_op_info_dispose(&op);
	CHECK(th_meta_op_cancel(&st, m, run, "dave", &err) == TH_ECONFLICT);
	CHECK_CONTAINS(err.msg, "(Completed)");

	CHECK(th_meta_op_cancel(&st, m, "00000000-0000-4000-8000-000000000000", "dave", &err) ==
	      TH_ENOTFOUND);
	CHECK(th_meta_op_cancel(&st, m, other, "", &err) == TH_EINVALID);

	/* The unfinished operation of a kind: the merge (In Progress) is; no import is left. */
	CHECK_OK(th_meta_op_find_unfinished(&found, found_id, m, "merge", "alice", "museums", &err),
	         &err);
	CHECK(found == 1);
	CHECK_STR(found_id, other);
	CHECK_OK(
	        th_meta_op_find_unfinished(&found, found_id, m, "import", "alice", "museums", &err),
	        &err);
	CHECK(found == 0);
	CHECK_OK(th_meta_op_find_unfinished(&found, found_id, m, "merge", "alice", "other", &err),
	         &err);
	CHECK(found == 0);
	th_meta_close(m);
	t_rmdir(dir);
}

/* --- the queue: a test kind that runs until th_job_check says stop -------------------------- */

struct looper {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int runs;           /* runner calls */
	int checks;         /* th_job_check calls that said go on */
	char stopped[512];  /* the reason th_job_check gave */
	int block, blocked; /* "block" jobs wait for release */
	int released;
};

static void looper_init(struct looper *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
}

static void looper_dispose(struct looper *l)
{
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
}

/* file_name "loop": check every 5 ms for at most 20 s; "quick": check once, complete; "block":
 * hold until released (the writer lock with it, for a writing kind). */
static int loop_run(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	struct looper *l = payload;
	int64_t end = mono_ms() + 20000;
	int rc;

	pthread_mutex_lock(&l->mu);
	l->runs++;
	pthread_mutex_unlock(&l->mu);
	if (strcmp(job->file_name, "block") == 0) {
		pthread_mutex_lock(&l->mu);
		l->blocked = 1;
		pthread_cond_broadcast(&l->cv);
		while (!l->released)
			pthread_cond_wait(&l->cv, &l->mu);
		pthread_mutex_unlock(&l->mu);
		return th_job_set_result(ctx, "{}", 0, err);
	}
	for (;;) {
		if ((rc = th_job_check(ctx, err)) < 0) {
			pthread_mutex_lock(&l->mu);
			snprintf(l->stopped, sizeof(l->stopped), "%s", err->msg);
			pthread_mutex_unlock(&l->mu);
			/* Sticky: asked again, the same answer. */
			return th_job_check(ctx, err) == rc ? rc : TH_ERROR;
		}
		pthread_mutex_lock(&l->mu);
		l->checks++;
		pthread_mutex_unlock(&l->mu);
		if (strcmp(job->file_name, "quick") == 0 || mono_ms() > end)
			return th_job_set_result(ctx, "{\"done\":true}", 0, err);
		sleep_ms(5);
	}
}

static const th_job_kind loop_import = { "import",           "Import",         loop_run,
	                                 TH_JOB_WRITES_REPO, "start it again", NULL };
static const th_job_kind loop_merge = { "merge",          "Merge", loop_run, TH_JOB_WRITES_REPO,
	                                "start it again", NULL };

static th_jobs *loop_pool(const char *dir, th_meta *m, int n, struct looper *l, int64_t cap_s)
{
	th_jobs *j = NULL;
	th_error err;

	if (th_jobs_create(&j, dir, m, n, &err) < 0 ||
	    th_jobs_register(j, &loop_import, l, &err) < 0 ||
	    th_jobs_register(j, &loop_merge, l, &err) < 0 ||
	    th_jobs_set_max_seconds(j, "import", cap_s, &err) < 0) {
		fprintf(stderr, "loop_pool: %s\n", err.msg);
		abort();
	}
	th_jobs_set_timing(j, 5000, 20);
	if (th_jobs_run(j, &err) < 0)
		abort();
	return j;
}

/* A running job asked to stop sees it at its next check and ends Failed "cancelled by ...". */
static void test_cancel_running(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE];
	static struct looper l;
	th_meta *m = NULL;
	th_jobs *j;
	th_error err;
	th_op_info op;
	th_op_state st;
	int64_t t0;

	looper_init(&l);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	op_create(id, m, "import", "loop");
	j = loop_pool(dir, m, 1, &l, 0);
	th_jobs_wake(j);
	CHECK(wait_state(&op, m, id, TH_OPSTATE_IN_PROGRESS, 10000) == 0);
	th_op_info_dispose(&op);
	sleep_ms(50); /* let it check a few times */
	t0 = mono_ms();
	CHECK_OK(th_meta_op_cancel(&st, m, id, "alice", &err), &err);
	CHECK(st == TH_OPSTATE_IN_PROGRESS);
	if (wait_state(&op, m, id, 0, 10000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK_STR(op.error_message, "cancelled by alice");
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	CHECK(mono_ms() - t0 < 5000); /* the store is asked every 200 ms */
	th_jobs_stop(j);
	CHECK(l.runs == 1 && l.checks > 1);
	CHECK_STR(l.stopped, "cancelled by alice");
	looper_dispose(&l);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Past its kind's time cap a job is told to stop; other kinds keep the default cap. */
static void test_time_cap(void)
{
	char *dir = t_mkdtemp(), slow[TH_UUID_SIZE], quick[TH_UUID_SIZE], merge[TH_UUID_SIZE];
	static struct looper l;
	th_meta *m = NULL;
	th_jobs *j = NULL;
	th_error err;
	th_op_info op;
	int64_t t0;

	looper_init(&l);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	/* The setting itself. */
	CHECK_OK(th_jobs_create(&j, dir, m, 1, &err), &err);
	CHECK(th_jobs_set_max_seconds(j, "nosuchkind", 5, &err) == TH_ENOTFOUND);
	CHECK(th_jobs_set_max_seconds(j, NULL, -1, &err) == TH_EINVALID);
	CHECK_OK(th_jobs_set_max_seconds(j, NULL, 0, &err), &err);
	th_jobs_stop(j);

	op_create(quick, m, "import", "quick");
	op_create(slow, m, "import", "loop");
	op_create(merge, m, "merge", "quick");
	t0 = mono_ms();
	j = loop_pool(dir, m, 1, &l, 1);
	th_jobs_wake(j);
	if (wait_state(&op, m, slow, 0, 15000) == 0) {
		int64_t took = mono_ms() - t0;
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK_STR(op.error_message, "took longer than 1 s");
		CHECK(took >= 1000 && took < 8000);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	if (wait_state(&op, m, quick, 0, 15000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		th_op_info_dispose(&op);
	}
	if (wait_state(&op, m, merge, 0, 15000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		th_op_info_dispose(&op);
	}
	th_jobs_stop(j);
	CHECK_STR(l.stopped, "took longer than 1 s");
	looper_dispose(&l);
	th_meta_close(m);
	t_rmdir(dir);
}

/* A job claimed while another writer of its database holds the lock, cancelled while it waits:
 * it ends without its runner ever running. */
static void test_cancel_while_waiting(void)
{
	char *dir = t_mkdtemp(), holder[TH_UUID_SIZE], waiter[TH_UUID_SIZE];
	static struct looper l;
	th_meta *m = NULL;
	th_jobs *j;
	th_error err;
	th_op_info op;

	looper_init(&l);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	op_create(holder, m, "merge", "block");
	j = loop_pool(dir, m, 2, &l, 0);
	th_jobs_wake(j);
	pthread_mutex_lock(&l.mu);
	while (!l.blocked)
		pthread_cond_wait(&l.cv, &l.mu);
	pthread_mutex_unlock(&l.mu);
	/* Queued once the holder has the lock: queued together, the waiter's worker could take
	 * the lock first, run and end before the holder even started. */
	op_create(waiter, m, "import", "quick");
	th_jobs_wake(j);
	CHECK(wait_state(&op, m, waiter, TH_OPSTATE_IN_PROGRESS, 10000) == 0);
	th_op_info_dispose(&op);
	CHECK_OK(th_meta_op_cancel(NULL, m, waiter, "alice", &err), &err);
	pthread_mutex_lock(&l.mu);
	l.released = 1;
	pthread_cond_broadcast(&l.cv);
	pthread_mutex_unlock(&l.mu);
	if (wait_state(&op, m, waiter, 0, 10000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK_STR(op.error_message, "cancelled by alice");
		th_op_info_dispose(&op);
	}
	if (wait_state(&op, m, holder, 0, 10000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		th_op_info_dispose(&op);
	}
	th_jobs_stop(j);
	CHECK(l.runs == 1); /* the holder only */
	looper_dispose(&l);
	th_meta_close(m);
	t_rmdir(dir);
}

/* --- the import engine ----------------------------------------------------------------------- */

/* A CSV of n rows "id,name,score" with keys in a scrambled order, written to `path`. */
static void write_csv(const char *path, long n)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		abort();
	fprintf(f, "id,name,score\n");
	for (long i = 0; i < n; i++) {
		long k = (i * 7919) % n;
		fprintf(f, "%ld,name %ld with some text to make the row longer,%ld.%02ld\n", k, k,
		        k % 1000, k % 100);
	}
	if (fclose(f) != 0)
		abort();
}

struct stopper {
	int calls, stop_at;
};

static int stop_check(void *payload, th_error *err)
{
	struct stopper *s = payload;

	if (++s->calls == s->stop_at)
		return th_error_set(err, TH_ECONFLICT, "stopped at call %d", s->calls);
	return TH_OK;
}

/* The import asks its check between steps and every 1024 rows of each pass; a stop at any call
 * fails it with the check's error and leaves the branch where it was. */
static void test_import_checks(void)
{
	char *dir = t_mkdtemp(), *path, csv[600];
	const char *pk[] = { "id" };
	th_repo *repo = NULL;
	th_import_opts o;
	th_import_result res;
	struct stopper s;
	th_oid before, after;
	th_error err;
	int fd, total = 0, stop;

	path = malloc(strlen(dir) + 16);
	sprintf(path, "%s/repo.git", dir);
	snprintf(csv, sizeof(csv), "%s/rows.csv", dir);
	write_csv(csv, 5000);
	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	CHECK_OK(th_repo_open(&repo, path, 1, &err), &err);
	CHECK_OK(th_repo_branch_get(&before, repo, "main", &err), &err);
	memset(&o, 0, sizeof(o));
	o.table = "scores";
	o.op = TH_OP_CREATE;
	o.pk = pk;
	o.npk = 1;
	o.branch = "main";
	o.tmpdir = dir;
	o.check = stop_check;
	o.progress_payload = &s;
	/* Counted without stopping: 5000 rows give 4 checks in each of the three passes, and the
	 * checks between steps. */
	for (stop = 0; stop < 40; stop++) {
		s.calls = 0;
		s.stop_at = stop == 0 ? -1 : stop;
		if ((fd = open(csv, O_RDONLY)) < 0)
			abort();
		if (stop == 0) {
			o.table = "counted";
			CHECK_OK(th_import_fd(&res, repo, fd, &o, &err), &err);
			total = s.calls;
			CHECK(total >= 14);
			close(fd);
			CHECK_OK(th_repo_branch_get(&before, repo, "main", &err), &err);
			continue;
		}
		if (stop > total) {
			close(fd);
			break;
		}
		o.table = "scores";
		CHECK(th_import_fd(&res, repo, fd, &o, &err) == TH_ECONFLICT);
		{
			char want[64];
			snprintf(want, sizeof(want), "stopped at call %d", stop);
			CHECK_STR(err.msg, want);
		}
		close(fd);
		CHECK_OK(th_repo_branch_get(&after, repo, "main", &err), &err);
		CHECK(th_oid_equal(&before, &after));
	}
	CHECK(stop > total); /* every place was tried */
	th_repo_free(repo);
	free(path);
	t_rmdir(dir);
}

/* --- a real import, cancelled while it runs ----------------------------------------------------
 */

static void upload_file(char sha[65], uint64_t *size, const char *dir, const char *path)
{
	th_upload *u = NULL;
	th_error err;
	char buf[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL || th_upload_begin(&u, dir, (uint64_t)1 << 30, &err) < 0)
		abort();
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (th_upload_write(u, buf, n, &err) < 0)
			abort();
	fclose(f);
	if (th_upload_finish(u, sha, size, &err) < 0)
		abort();
}

static void enqueue_import(char id[TH_UUID_SIZE], th_meta *m, const char *dir, const char *csv)
{
	const char *pk[] = { "id" };
	th_import_params p;
	th_error err;
	char sha[65];
	uint64_t size;

	upload_file(sha, &size, dir, csv);
	memset(&p, 0, sizeof(p));
	p.owner = "alice";
	p.db = "museums";
	p.creator = "bob";
	p.upload_sha256 = sha;
	p.bytes_total = size;
	p.file_name = "scores.csv";
	p.table_name = "scores";
	p.op = TH_OP_CREATE;
	p.format = th_format_find("Csv");
	p.pk = pk;
	p.npk = 1;
	if (th_jobs_enqueue_import(id, m, &p, &err) < 0) {
		fprintf(stderr, "enqueue: %s\n", err.msg);
		abort();
	}
}

static void test_cancel_real_import(void)
{
	char *dir = t_mkdtemp(), csv[600], id[TH_UUID_SIZE], queued[TH_UUID_SIZE], *out = NULL;
	th_buf repo_path = TH_BUF_INIT;
	th_meta *m = NULL;
	th_jobs *j = NULL;
	th_error err;
	th_op_info op;
	th_db_info dbi;
	th_pull_list pulls = { NULL, 0 };
	th_op_state st;

	CHECK_OK(th_datadir_init(dir, &err), &err);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "museums", "", 0, &err), &err);
	CHECK_OK(th_meta_db_get(&dbi, m, "alice", "museums", &err), &err);
	CHECK_OK(th_datadir_repo_path(&repo_path, dir, "alice", "museums", &err), &err);
	CHECK_OK(th_repo_create(repo_path.ptr, "alice", &err), &err);
	snprintf(csv, sizeof(csv), "%s/scores.csv", dir);
	write_csv(csv, 1000000); /* ~70 MB: seconds of work, the first progress after 4 MB */
	enqueue_import(id, m, dir, csv);
	enqueue_import(queued, m, dir, csv);
	/* A Pending import cancelled before any worker sees it never runs. */
	CHECK_OK(th_meta_op_cancel(&st, m, queued, "bob", &err), &err);
	CHECK(st == TH_OPSTATE_FAILED);

	CHECK_OK(th_jobs_start(&j, dir, m, 1, &err), &err);
	th_jobs_wake(j);
	/* Cancel once the first progress shows it reading. */
	for (int64_t end = mono_ms() + 30000; mono_ms() < end; sleep_ms(5)) {
		int go;
		if (th_meta_op_get(&op, m, id, &err) < 0)
			break;
		go = op.bytes_read > 0 || op.state == TH_OPSTATE_COMPLETED ||
		     op.state == TH_OPSTATE_FAILED;
		th_op_info_dispose(&op);
		if (go)
			break;
	}
	CHECK_OK(th_meta_op_cancel(&st, m, id, "alice", &err), &err);
	CHECK(st == TH_OPSTATE_IN_PROGRESS);
	if (wait_state(&op, m, id, 0, 60000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK_STR(op.error_message, "cancelled by alice");
		CHECK(op.pull_id == 0);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	th_jobs_stop(j);
	if (wait_state(&op, m, queued, 0, 1000) == 0) {
		CHECK(op.attempts == 0); /* never claimed */
		CHECK_STR(op.error_message, "cancelled by bob");
		th_op_info_dispose(&op);
	}
	/* Nothing left: no import branch, no pull request, main as it was. */
	CHECK(t_sh(&out, "git -C '%s' for-each-ref --format='%%(refname)'", repo_path.ptr) == 0);
	CHECK_STR(out, "refs/heads/main\n");
	free(out);
	CHECK(t_sh(&out, "git -C '%s' ls-tree -r main", repo_path.ptr) == 0);
	CHECK(strstr(out, "scores") == NULL);
	free(out);
	CHECK_OK(th_meta_pull_list(&pulls, NULL, m, dbi.id, 0, NULL, 0, &err), &err);
	CHECK(pulls.n == 0);
	th_pull_list_dispose(&pulls);
	th_db_info_dispose(&dbi);
	th_buf_dispose(&repo_path);
	th_meta_close(m);
	t_rmdir(dir);
}

int main(void)
{
	th_error err;

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	RUN(test_cancel_store);
	RUN(test_cancel_running);
	RUN(test_time_cap);
	RUN(test_cancel_while_waiting);
	RUN(test_import_checks);
	RUN(test_cancel_real_import);
	th_repo_global_shutdown();
	TH_TEST_END();
}
