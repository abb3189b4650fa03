/* test_jobs.c: the job queue's worker pool (src/jobs.c). The queue mechanics (claims, leases,
 * heartbeats, retries, recovery after a crash, the writer lock) run with a test kind registered
 * by th_jobs_register in place of the built-in import; the import and merge kinds run for real: a
 * CSV uploaded into a data dir becomes a commit on an import branch of a real git repository and
 * a pull request, and a merge retried after a crash completes with the commit it made. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "util.h"
#include "tablehub/datadir.h"
#include "tablehub/files.h"
#include "tablehub/hash.h"
#include "tablehub/jobs.h"
#include "tablehub/meta.h"
#include "tablehub/pulls.h"
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

/* Wait until operation `id` has ended (Completed or Failed), at most timeout_ms; then read it. */
static int wait_done(th_op_info *out, th_meta *m, const char *id, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	th_error err;

	for (;;) {
		if (th_meta_op_get(out, m, id, &err) < 0)
			return -1;
		if (out->state == TH_OPSTATE_COMPLETED || out->state == TH_OPSTATE_FAILED)
			return 0;
		th_op_info_dispose(out);
		if (mono_ms() > end) {
			fprintf(stderr, "operation %s did not end in %d ms\n", id, timeout_ms);
			return -1;
		}
		sleep_ms(20);
	}
}

/* --- the test runner: what it does is named by the operation's file name ------------------- */

#define MAXRUN 256

struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int blocked, released;
	char ran[MAXRUN][TH_UUID_SIZE];
	int nran;
	int progress_rc;
};

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
}

static void fake_dispose(struct fake *f)
{
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
}

static int times_ran(struct fake *f, const char *id)
{
	int i, n = 0;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < f->nran; i++)
		n += strcmp(f->ran[i], id) == 0;
	pthread_mutex_unlock(&f->mu);
	return n;
}

static int fake_run(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	struct fake *f = payload;
	char result[128];

	pthread_mutex_lock(&f->mu);
	if (f->nran < MAXRUN)
		memcpy(f->ran[f->nran++], job->id, TH_UUID_SIZE);
	pthread_mutex_unlock(&f->mu);

	if (strcmp(job->file_name, "fail") == 0)
		return th_error_set_at(err, TH_EINVALID, 4, 2, "line 4, column 'n': 'x' is bad");
	if (strcmp(job->file_name, "pathfail") == 0) /* an error quoting a server path */
		return th_error_set(err, TH_ENOSPC,
		                    "cannot create '/srv/th/data/repos/alice/museums.git/objects/"
		                    "pack/tmp_pack_1': No space left on device");
	if (strcmp(job->file_name, "slow") == 0)
		sleep_ms(1500); /* three leases long, no progress reported */
	if (strcmp(job->file_name, "block") == 0) {
		pthread_mutex_lock(&f->mu);
		f->blocked = 1;
		pthread_cond_broadcast(&f->cv);
		while (!f->released)
			pthread_cond_wait(&f->cv, &f->mu);
		pthread_mutex_unlock(&f->mu);
	}
	if (strcmp(job->file_name, "progress") == 0) {
		int rc = th_job_progress(ctx, 500, 5);
		pthread_mutex_lock(&f->mu);
		f->progress_rc = rc;
		pthread_mutex_unlock(&f->mu);
	}
	snprintf(result, sizeof(result), "{\"echo\":\"%s\"}", job->id);
	return th_job_set_result(ctx, result, 3, err);
}

/* The test kind. The store knows only the kinds "import" and "merge", so it takes the name
 * "import", replacing the built-in runner in the pools of these tests. */
static const th_job_kind fake_kind = { "import", "Import", fake_run, 0, "upload the file again",
	                               NULL };

static void op_create(char id[TH_UUID_SIZE], th_meta *m, const char *what)
{
	th_op_new n;
	th_error err;

	memset(&n, 0, sizeof(n));
	n.kind = "import";
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

static th_jobs *pool_new(const char *dir, th_meta *m, int n, struct fake *f, int64_t lease,
                         int64_t poll)
{
	th_jobs *j = NULL;
	th_error err;

	if (th_jobs_create(&j, dir, m, n, &err) < 0 || th_jobs_register(j, &fake_kind, f, &err) < 0)
		abort();
	th_jobs_set_timing(j, lease, poll);
	if (th_jobs_run(j, &err) < 0) {
		fprintf(stderr, "th_jobs_run: %s\n", err.msg);
		abort();
	}
	return j;
}

static void test_each_job_once(void)
{
	char *dir = t_mkdtemp(), ids[40][TH_UUID_SIZE], bad[TH_UUID_SIZE], prog[TH_UUID_SIZE],
	     pathfail[TH_UUID_SIZE];
	static struct fake f;
	th_meta *m = NULL;
	th_jobs *j;
	th_error err;
	th_op_info op;
	int i;

	fake_init(&f);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	for (i = 0; i < 40; i++)
		op_create(ids[i], m, "ok");
	op_create(bad, m, "fail");
	op_create(prog, m, "progress");
	op_create(pathfail, m, "pathfail");
	j = pool_new(dir, m, 4, &f, 5000, 50);
	th_jobs_wake(j);
	for (i = 0; i < 40; i++) {
		char want[1600];
		if (wait_done(&op, m, ids[i], 10000) < 0) {
			CHECK(0);
			continue;
		}
		CHECK(op.state == TH_OPSTATE_COMPLETED && op.attempts == 1 && op.pull_id == 3);
		snprintf(want, sizeof(want), "{\"echo\":\"%s\"}", ids[i]);
		CHECK_STR(op.result, want);
		th_op_info_dispose(&op);
	}
	if (wait_done(&op, m, bad, 10000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK_STR(op.error_message, "line 4, column 'n': 'x' is bad");
		CHECK(op.error_line == 4 && op.error_column == 2 && op.result == NULL);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	if (wait_done(&op, m, prog, 10000) == 0) {
		CHECK(op.bytes_read == 500 && op.rows_processed == 5);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	/* A runner's error that quotes a file by the server's path is recorded (and logged) naming
	 * it by its place in the repository only. */
	if (wait_done(&op, m, pathfail, 10000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK_STR(op.error_message,
		          "cannot create 'objects/pack/tmp_pack_1': No space left on device");
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	th_jobs_stop(j);
	CHECK(f.progress_rc == TH_OK);
	CHECK(f.nran == 43);
	for (i = 0; i < 40; i++)
		CHECK(times_ran(&f, ids[i]) == 1);
	fake_dispose(&f);
	th_meta_close(m);
	t_rmdir(dir);
}

/* A job that runs three leases long keeps its lease through the heartbeat: no second worker
 * takes it over. */
static void test_heartbeat_keeps_lease(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE];
	static struct fake f;
	th_meta *m = NULL;
	th_jobs *j;
	th_error err;
	th_op_info op;

	fake_init(&f);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	op_create(id, m, "slow");
	j = pool_new(dir, m, 2, &f, 500, 30);
	th_jobs_wake(j);
	if (wait_done(&op, m, id, 10000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		CHECK(op.attempts == 1);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	th_jobs_stop(j);
	CHECK(times_ran(&f, id) == 1);
	fake_dispose(&f);
	th_meta_close(m);
	t_rmdir(dir);
}

/* A process claimed a job and died (its lease would run another minute): the next process's pool
 * re-queues it at start and runs it at once. */
static void test_crash_recovery(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE], other[TH_UUID_SIZE];
	static struct fake f;
	th_meta *m = NULL;
	th_jobs *j;
	th_error err;
	th_op_info op, dead;
	int64_t t0;

	fake_init(&f);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	op_create(id, m, "ok");
	op_create(other, m, "ok");
	CHECK_OK(th_meta_op_claim(&dead, m, 60000, &err), &err);
	CHECK_STR(dead.id, id);
	th_op_info_dispose(&dead);
	t0 = mono_ms();
	j = pool_new(dir, m, 2, &f, 5000, 1000);
	if (wait_done(&op, m, id, 5000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		CHECK(op.attempts == 2);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	CHECK(mono_ms() - t0 < 3000);
	if (wait_done(&op, m, other, 5000) == 0) {
		CHECK(op.attempts == 1);
		th_op_info_dispose(&op);
	}
	th_jobs_stop(j);
	CHECK(times_ran(&f, id) == 1);
	fake_dispose(&f);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Interrupted three times: the fourth claim fails it with a message saying what to do. */
static void test_max_attempts(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE];
	static struct fake f;
	th_meta *m = NULL;
	th_jobs *j;
	th_error err;
	th_op_info op, dead;
	int i;

	fake_init(&f);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	op_create(id, m, "ok");
	for (i = 1; i <= 3; i++) {
		CHECK_OK(th_meta_op_claim(&dead, m, 1, &err), &err);
		CHECK(dead.attempts == i);
		th_op_info_dispose(&dead);
		sleep_ms(5);
	}
	j = pool_new(dir, m, 1, &f, 5000, 50);
	if (wait_done(&op, m, id, 5000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK_STR(op.error_message,
		          "import was interrupted 3 times; upload the file again");
		CHECK(op.attempts == 4);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	th_jobs_stop(j);
	CHECK(times_ran(&f, id) == 0);
	fake_dispose(&f);
	th_meta_close(m);
	t_rmdir(dir);
}

/* While the pool runs, a job whose lease expires (another process died holding it) is found by
 * polling, without any wake-up. */
static void test_expired_lease_reclaimed(void)
{
	char *dir = t_mkdtemp(), first[TH_UUID_SIZE], second[TH_UUID_SIZE];
	static struct fake f;
	th_meta *m = NULL;
	th_jobs *j;
	th_error err;
	th_op_info op, dead;

	fake_init(&f);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	op_create(first, m, "block");
	j = pool_new(dir, m, 1, &f, 5000, 50);
	th_jobs_wake(j);
	pthread_mutex_lock(&f.mu);
	while (!f.blocked)
		pthread_cond_wait(&f.cv, &f.mu);
	pthread_mutex_unlock(&f.mu);
	/* The only worker is busy: "another process" claims the second job and dies. */
	op_create(second, m, "ok");
	CHECK_OK(th_meta_op_claim(&dead, m, 200, &err), &err);
	CHECK_STR(dead.id, second);
	th_op_info_dispose(&dead);
	pthread_mutex_lock(&f.mu);
	f.released = 1;
	pthread_cond_broadcast(&f.cv);
	pthread_mutex_unlock(&f.mu);
	if (wait_done(&op, m, second, 5000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED && op.attempts == 2);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	if (wait_done(&op, m, first, 5000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED && op.attempts == 1);
		th_op_info_dispose(&op);
	}
	th_jobs_stop(j);
	CHECK(times_ran(&f, second) == 1);
	fake_dispose(&f);
	th_meta_close(m);
	t_rmdir(dir);
}

/* With a 10 s poll, only th_jobs_wake can start a new job quickly; th_jobs_stop does not wait for
 * the poll either. */
static void test_wake_and_stop(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE];
	static struct fake f;
	th_meta *m = NULL;
	th_jobs *j;
	th_error err;
	th_op_info op;
	int64_t t0;

	fake_init(&f);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	j = pool_new(dir, m, 2, &f, 5000, 10000);
	sleep_ms(100); /* the workers are idle, waiting */
	op_create(id, m, "ok");
	t0 = mono_ms();
	th_jobs_wake(j);
	if (wait_done(&op, m, id, 3000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	CHECK(mono_ms() - t0 < 2000);
	t0 = mono_ms();
	th_jobs_stop(j);
	CHECK(mono_ms() - t0 < 2000);
	th_jobs_wake(NULL);
	th_jobs_stop(NULL);
	CHECK(th_jobs_start(&j, dir, m, 0, &err) == TH_EINVALID);
	fake_dispose(&f);
	th_meta_close(m);
	t_rmdir(dir);
}

/* --- the writer lock ------------------------------------------------------------------------- */

struct overlap {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int cur, max, ran;
	int merges;        /* exclusive jobs running now ("merge", a "repack" that is no roll-up) */
	int mixed;         /* an exclusive job ran beside another job */
	int imports;       /* most shared jobs seen running at once */
	int rollups;       /* "repack" roll-ups running now */
	int rollup_beside; /* a roll-up ran beside another job */
};

static void overlap_init(struct overlap *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
}

static int is_rollup(const th_op_info *op)
{
	return strcmp(op->kind, "repack") == 0 && strstr(op->params, "rollup") != NULL;
}

static int is_exclusive(const th_op_info *op)
{
	return strcmp(op->kind, "merge") == 0 ||
	       (strcmp(op->kind, "repack") == 0 && !is_rollup(op));
}

/* Wait (a while) for a second job to run beside this one; record how many ran at once. */
static int overlap_run(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	struct overlap *o = payload;
	struct timespec until;
	int mine;

	/* A roll-up waits longer: on a loaded machine another worker may take a while to start,
	 * and the test is whether one runs beside it. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += is_rollup(job) ? 10 : 1;
	pthread_mutex_lock(&o->mu);
	if (++o->cur > o->max)
		o->max = o->cur;
	mine = ++o->ran;
	if (is_exclusive(job))
		o->merges++;
	if (is_rollup(job))
		o->rollups++;
	if (o->merges > 0 && o->cur > 1)
		o->mixed = 1;
	if (o->merges == 0 && o->cur > o->imports)
		o->imports = o->cur;
	pthread_cond_broadcast(&o->cv);
	/* Until a second job runs beside this one, or one started since (and may have left). */
	while (o->cur < 2 && o->ran == mine && pthread_cond_timedwait(&o->cv, &o->mu, &until) == 0)
		;
	if (o->rollups > 0 && o->cur > 1)
		o->rollup_beside = 1;
	o->cur--;
	if (is_exclusive(job))
		o->merges--;
	if (is_rollup(job))
		o->rollups--;
	pthread_mutex_unlock(&o->mu);
	return th_job_set_result(ctx, "{}", 0, err);
}

/* Run the n queued operations ids with a pool of four workers and the kinds (NULL-terminated),
 * each registered with payload o; every one must end Completed within wait_ms. */
static void run_overlap(const char *dir, th_meta *m, const th_job_kind *const *kinds,
                        struct overlap *o, char (*ids)[TH_UUID_SIZE], int n, int wait_ms)
{
	th_jobs *j = NULL;
	th_error err;
	th_op_info op;
	int i;

	CHECK_OK(th_jobs_create(&j, dir, m, 4, &err), &err);
	for (i = 0; kinds[i] != NULL; i++)
		CHECK_OK(th_jobs_register(j, kinds[i], o, &err), &err);
	th_jobs_set_timing(j, 5000, 20);
	CHECK_OK(th_jobs_run(j, &err), &err);
	th_jobs_wake(j);
	for (i = 0; i < n; i++) {
		if (wait_done(&op, m, ids[i], wait_ms) == 0) {
			CHECK(op.state == TH_OPSTATE_COMPLETED);
			th_op_info_dispose(&op);
		} else {
			CHECK(0);
		}
	}
	th_jobs_stop(j);
}

/* Jobs of a kind that writes the repository run one at a time on one database, even with four
 * workers; jobs of a kind that does not run side by side. */
static void test_writer_lock(void)
{
	static const th_job_kind writer = { "import",           "Import", overlap_run,
		                            TH_JOB_WRITES_REPO, "again",  NULL };
	static const th_job_kind reader = { "import", "Import", overlap_run, 0, "again", NULL };
	int pass;

	for (pass = 0; pass < 2; pass++) {
		char *dir = t_mkdtemp(), ids[4][TH_UUID_SIZE];
		struct overlap o;
		th_meta *m = NULL;
		const th_job_kind *kinds[2] = { NULL, NULL };
		th_error err;
		int i;

		overlap_init(&o);
		CHECK_OK(th_meta_open(&m, dir, &err), &err);
		for (i = 0; i < 4; i++)
			op_create(ids[i], m, "ok");
		kinds[0] = pass == 0 ? &writer : &reader;
		run_overlap(dir, m, kinds, &o, ids, 4, 20000);
		CHECK(o.ran == 4);
		if (pass == 0)
			CHECK(o.max == 1);
		else
			CHECK(o.max >= 2);
		pthread_mutex_destroy(&o.mu);
		pthread_cond_destroy(&o.cv);
		th_meta_close(m);
		t_rmdir(dir);
	}
}

/* Own-branch writers (imports) of one database run side by side, and so does a kind whose
 * lock_shared says so for the operation (a repack that rolls up); an exclusive writer (a merge, a
 * gc) of the same database never runs beside any of them: six imports, two merges, a roll-up and
 * a gc, four workers. The roll-up and three imports come first, so the four workers claim them
 * before any merge: a merge waiting for the lock (writers are preferred) would keep the imports
 * out, and the roll-up would run alone. */
static void test_writer_lock_shared(void)
{
	static const th_job_kind shared = { "import",    "Import",
		                            overlap_run, TH_JOB_WRITES_REPO | TH_JOB_OWN_BRANCH,
		                            "again",     NULL };
	static const th_job_kind excl = { "merge", "Merge", overlap_run, TH_JOB_WRITES_REPO,
		                          "again", NULL };
	/* Shared or not by its params (lock_shared), as the real repack kind. */
	static const th_job_kind repack = { "repack",           "Repack", overlap_run,
		                            TH_JOB_WRITES_REPO, "again",  is_rollup };
	char *dir = t_mkdtemp(), ids[10][TH_UUID_SIZE];
	struct overlap o;
	th_meta *m = NULL;
	const th_job_kind *kinds[] = { &shared, &excl, &repack, NULL };
	th_error err;
	int i;

	overlap_init(&o);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	/* A roll-up first, among imports; a gc last. */
	for (i = 0; i < 10; i++) {
		th_op_new n;
		memset(&n, 0, sizeof(n));
		n.kind = i == 4 || i == 6 ? "merge" : i == 0 || i == 9 ? "repack" : "import";
		n.owner = "alice";
		n.db = "shop";
		n.creator = "alice";
		n.params = i == 0 ? "{\"mode\":\"rollup\"}" : i == 9 ? "{\"mode\":\"gc\"}" : "{}";
		CHECK_OK(th_meta_op_create(ids[i], m, &n, &err), &err);
	}
	run_overlap(dir, m, kinds, &o, ids, 10, 30000);
	CHECK(o.ran == 10);
	CHECK(o.mixed == 0);
	CHECK(o.imports >= 2);
	CHECK(o.rollup_beside == 1);
	pthread_mutex_destroy(&o.mu);
	pthread_cond_destroy(&o.cv);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Writers of different databases run side by side: four databases, four workers, and the jobs
 * overlap. The databases are picked so that they fell on one stripe of the 32 striped mutexes the
 * writer locks used to be, where they took turns. */
static void test_writer_lock_dbs(void)
{
	static const th_job_kind writer = { "import",           "Import", overlap_run,
		                            TH_JOB_WRITES_REPO, "again",  NULL };
	char *dir = t_mkdtemp(), ids[4][TH_UUID_SIZE], names[4][16];
	uint64_t owner_h = th_hash64("alice", 5), stripe = 0;
	struct overlap o;
	th_meta *m = NULL;
	const th_job_kind *kinds[] = { &writer, NULL };
	th_error err;
	th_op_new n;
	int i, found = 0;

	for (i = 0; found < 4 && i < 100000; i++) {
		char name[16];
		uint64_t h;
		snprintf(name, sizeof(name), "db%d", i);
		h = (owner_h ^ (th_hash64(name, strlen(name)) * 31)) % 32;
		if (found == 0)
			stripe = h;
		if (h == stripe)
			memcpy(names[found++], name, sizeof(name));
	}
	CHECK(found == 4);
	overlap_init(&o);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	for (i = 0; i < 4; i++) {
		memset(&n, 0, sizeof(n));
		n.kind = "import";
		n.owner = "alice";
		n.db = names[i];
		n.creator = "bob";
		n.file_name = "ok";
		n.table_name = "t";
		CHECK_OK(th_meta_op_create(ids[i], m, &n, &err), &err);
	}
	run_overlap(dir, m, kinds, &o, ids, 4, 20000);
	CHECK(o.ran == 4);
	CHECK(o.max >= 2);
	pthread_mutex_destroy(&o.mu);
	pthread_cond_destroy(&o.cv);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Kinds are checked when registered. */
static void test_register(void)
{
	static const th_job_kind noname = { "", NULL, overlap_run, 0, NULL, NULL };
	static const th_job_kind long_name = {
		"a-kind-name-too-long", NULL, overlap_run, 0, NULL, NULL
	};
	static const th_job_kind norun = { "merge", "Merge", NULL, 0, NULL, NULL };
	char *dir = t_mkdtemp();
	th_meta *m = NULL;
	th_jobs *j = NULL;
	th_error err;

	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_jobs_create(&j, dir, m, 1, &err), &err);
	CHECK(th_jobs_register(j, &noname, NULL, &err) == TH_EINVALID);
	CHECK(th_jobs_register(j, &long_name, NULL, &err) == TH_EINVALID);
	CHECK(th_jobs_register(j, &norun, NULL, &err) == TH_EINVALID);
	CHECK(th_jobs_register(j, NULL, NULL, &err) == TH_EINVALID);
	CHECK_OK(th_jobs_register(j, &fake_kind, NULL, &err), &err);
	th_jobs_stop(j);
	/* The built-in kinds: import, merge, sqlwrite and repack, all writers. */
	CHECK_STR(th_job_kinds[0]->name, "import");
	CHECK_STR(th_job_kinds[1]->name, "merge");
	CHECK_STR(th_job_kinds[2]->name, "sqlwrite");
	CHECK_STR(th_job_kinds[3]->name, "repack");
	CHECK(th_job_kinds[4] == NULL);
	CHECK(th_job_kinds[0]->flags & TH_JOB_WRITES_REPO);
	CHECK(th_job_kinds[1]->flags & TH_JOB_WRITES_REPO);
	CHECK(th_job_kinds[2]->flags & TH_JOB_WRITES_REPO);
	CHECK(th_job_kinds[3]->flags & TH_JOB_WRITES_REPO);
	th_meta_close(m);
	t_rmdir(dir);
}

static const char *const sha_empty =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void test_enqueue_import(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE];
	const char *pk[] = { "id", "we\"ird" };
	th_import_params p;
	th_meta *m = NULL;
	th_error err;
	th_op_info op;

	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	memset(&p, 0, sizeof(p));
	p.owner = "alice";
	p.db = "museums";
	p.creator = "bob";
	p.upload_sha256 = sha_empty;
	p.bytes_total = 42;
	p.file_name = "lacma.csv";
	p.table_name = "lacma";
	p.op = TH_OP_UPDATE;
	p.format = th_format_find("Psv");
	p.pk = pk;
	p.npk = 2;
	CHECK_OK(th_jobs_enqueue_import(id, m, &p, &err), &err);
	CHECK_OK(th_meta_op_get(&op, m, id, &err), &err);
	CHECK_STR(op.kind, "import");
	CHECK(op.state == TH_OPSTATE_PENDING && op.bytes_total == 42);
	CHECK_STR(op.upload_sha256, sha_empty);
	CHECK_STR(op.table_name, "lacma");
	CHECK_STR(op.branch_name, "");
	CHECK_STR(op.params, "{\"tableName\":\"lacma\",\"fileName\":\"lacma.csv\",\"branchName\":"
	                     "\"\",\"fileType\":\"Psv\",\"importOp\":\"Update\",\"primaryKeys\":"
	                     "[\"id\",\"we\\\"ird\"]}");
	th_op_info_dispose(&op);

	p.upload_sha256 = "../../etc/passwd";
	CHECK(th_jobs_enqueue_import(id, m, &p, &err) == TH_EINVALID);
	p.upload_sha256 = sha_empty;
	p.table_name = "";
	CHECK(th_jobs_enqueue_import(id, m, &p, &err) == TH_EINVALID);
	p.table_name = "t";
	p.creator = "a b";
	CHECK(th_jobs_enqueue_import(id, m, &p, &err) == TH_EINVALID);
	p.creator = "bob";
	p.op = (th_import_op)0;
	CHECK(th_jobs_enqueue_import(id, m, &p, &err) == TH_EINVALID);
	th_meta_close(m);
	t_rmdir(dir);
}

/* --- the real import ------------------------------------------------------------------------- */

static void upload(char sha[65], uint64_t *size, const char *dir, const char *text)
{
	th_upload *u = NULL;
	th_error err;

	if (th_upload_begin(&u, dir, 1048576, &err) < 0 ||
	    th_upload_write(u, text, strlen(text), &err) < 0 ||
	    th_upload_finish(u, sha, size, &err) < 0) {
		fprintf(stderr, "upload: %s\n", err.msg);
		abort();
	}
}

/* Queue the import of csv into table of alice/museums by bob; base as th_import_params.base. */
static void enqueue(char id[TH_UUID_SIZE], th_meta *m, const char *dir, const char *csv,
                    const char *table, th_import_op op, const char *branch, const th_oid *base)
{
	const char *pk[] = { "id" };
	th_import_params p;
	th_error err;
	char sha[65];
	uint64_t size;

	upload(sha, &size, dir, csv);
	memset(&p, 0, sizeof(p));
	p.owner = "alice";
	p.db = "museums";
	p.creator = "bob";
	p.upload_sha256 = sha;
	p.bytes_total = size;
	p.file_name = "people.csv";
	p.table_name = table;
	p.branch_name = branch;
	p.op = op;
	p.format = th_format_find("Csv");
	p.pk = pk;
	p.npk = 1;
	p.base = base;
	if (th_jobs_enqueue_import(id, m, &p, &err) < 0) {
		fprintf(stderr, "enqueue: %s\n", err.msg);
		abort();
	}
}

/* A data dir `dir` with the database alice/museums, its metadata store open in *m, its record in
 * *dbi and its repository's path in *repo_path (the caller disposes of all three). */
static void museums_setup(th_meta **m, th_db_info *dbi, th_buf *repo_path, const char *dir)
{
	th_error err;

	CHECK_OK(th_datadir_init(dir, &err), &err);
	CHECK_OK(th_meta_open(m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(*m, "alice", "museums", "", 0, &err), &err);
	CHECK_OK(th_meta_db_get(dbi, *m, "alice", "museums", &err), &err);
	CHECK_OK(th_datadir_repo_path(repo_path, dir, "alice", "museums", &err), &err);
	CHECK_OK(th_repo_create(repo_path->ptr, "alice", &err), &err);
}

static void test_real_import(void)
{
	char *dir = t_mkdtemp(), ok[TH_UUID_SIZE], retry[TH_UUID_SIZE], missing[TH_UUID_SIZE],
	     nobranch[TH_UUID_SIZE], badval[TH_UUID_SIZE], branch[64], *out = NULL;
	th_buf repo_path = TH_BUF_INIT;
	th_meta *m = NULL;
	th_jobs *j = NULL;
	th_error err;
	th_op_info op, dead;
	th_db_info dbi;
	th_pull_info pull;
	th_repo *repo = NULL;
	th_oid main_head, stale;

	museums_setup(&m, &dbi, &repo_path, dir);

	enqueue(ok, m, dir, "id,name,age\n1,ann,30\n2,bob,41\n3,cy,\n", "people", TH_OP_CREATE,
	        NULL, NULL);
	/* This one was claimed by a process that died after making its branch; the retry must
	 * rebuild the branch from scratch. */
	enqueue(retry, m, dir, "id,city\n1,Oslo\n", "cities", TH_OP_CREATE, "main", NULL);
	CHECK_OK(th_meta_op_claim(&dead, m, 60000, &err), &err); /* claims `ok` (oldest) */
	th_op_info_dispose(&dead);
	CHECK_OK(th_meta_op_claim(&dead, m, 60000, &err), &err);
	CHECK_STR(dead.id, retry);
	th_op_info_dispose(&dead);
	CHECK_OK(th_repo_open(&repo, repo_path.ptr, 0, &err), &err);
	CHECK_OK(th_repo_branch_get(&main_head, repo, "main", &err), &err);
	snprintf(branch, sizeof(branch), "bob/import-%.8s", retry);
	CHECK_OK(th_repo_branch_cas(repo, branch, &main_head, NULL, "stale", &err), &err);
	th_repo_free(repo);
	repo = NULL;

	enqueue(missing, m, dir, "id,name\n1,x\n", "nosuchtable", TH_OP_UPDATE, "", NULL);
	enqueue(nobranch, m, dir, "id,name\n1,x\n", "people", TH_OP_CREATE, "nope", NULL);
	enqueue(badval, m, dir, "id,name\n1,x\n1,y\n", "dups", TH_OP_CREATE, "", NULL);

	CHECK_OK(th_jobs_start(&j, dir, m, 2, &err), &err);
	th_jobs_wake(j);

	/* The good import: a commit on bob/import-<id>, a pull request into main. */
	if (wait_done(&op, m, ok, 30000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		if (op.state != TH_OPSTATE_COMPLETED)
			fprintf(stderr, "import failed: %s\n", op.error_message);
		CHECK(op.pull_id >= 1);
		CHECK(op.attempts == 2);
		snprintf(branch, sizeof(branch), "bob/import-%.8s", ok);
		CHECK_CONTAINS(op.result, branch);
		CHECK_CONTAINS(op.result, "\"rows_added\":3");
		CHECK_CONTAINS(op.result, "\"commit\":\"");
		CHECK(op.bytes_read == op.bytes_total);
		if (th_meta_pull_get(&pull, m, dbi.id, op.pull_id, &err) == TH_OK) {
			CHECK_STR(pull.title, "Import people.csv into people");
			CHECK_STR(pull.description, "Rows added: 3, modified: 0, removed: 0");
			CHECK_STR(pull.author, "bob");
			CHECK_STR(pull.from_branch, branch);
			CHECK_STR(pull.to_branch, "main");
			CHECK(pull.state == TH_PULL_OPEN);
			th_pull_info_dispose(&pull);
		} else {
			CHECK(0);
		}
		CHECK(t_sh(&out, "git -C '%s' show '%s:tables/people/schema.json'", repo_path.ptr,
		           branch) == 0);
		CHECK_CONTAINS(out, "age");
		free(out);
		CHECK(t_sh(&out, "git -C '%s' log --format=%%an '%s' | head -1", repo_path.ptr,
		           branch) == 0);
		CHECK_CONTAINS(out, "bob");
		free(out);
		/* main itself is untouched until the pull request is merged. */
		CHECK(t_sh(NULL, "git -C '%s' show main:tables/people/schema.json 2>/dev/null",
		           repo_path.ptr) != 0);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}

	/* The retried one: its stale branch was rebuilt (now it has the table). */
	if (wait_done(&op, m, retry, 30000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED && op.attempts == 2);
		snprintf(branch, sizeof(branch), "bob/import-%.8s", retry);
		CHECK(t_sh(NULL, "git -C '%s' show '%s:tables/cities/schema.json' >/dev/null",
		           repo_path.ptr, branch) == 0);
		CHECK_OK(th_repo_open(&repo, repo_path.ptr, 0, &err), &err);
		if (repo) {
			CHECK_OK(th_repo_branch_get(&stale, repo, branch, &err), &err);
			CHECK(!th_oid_equal(&stale, &main_head));
			th_repo_free(repo);
			repo = NULL;
		}
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}

	/* Failures: no such table, no such base branch, duplicate keys. Each leaves no branch. */
	if (wait_done(&op, m, missing, 30000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		/* The message names the branch the user uploaded to, not the import branch. */
		CHECK_STR(op.error_message,
		          "table 'nosuchtable' not found on branch 'main'; use importOp Create");
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	if (wait_done(&op, m, nobranch, 30000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK_STR(op.error_message, "branch 'nope' not found");
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	if (wait_done(&op, m, badval, 30000) == 0) {
		CHECK(op.state == TH_OPSTATE_FAILED);
		CHECK(op.error_message != NULL && op.error_line > 0);
		if (op.error_message)
			fprintf(stderr, "duplicate key import failed as expected: %s (line %llu)\n",
			        op.error_message, (unsigned long long)op.error_line);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	th_jobs_stop(j);
	CHECK(t_sh(&out, "git -C '%s' for-each-ref --format='%%(refname:short)' refs/heads",
	           repo_path.ptr) == 0);
	{
		char want[64];
		snprintf(want, sizeof(want), "bob/import-%.8s", missing);
		CHECK(strstr(out, want) == NULL);
		snprintf(want, sizeof(want), "bob/import-%.8s", nobranch);
		CHECK(strstr(out, want) == NULL);
		snprintf(want, sizeof(want), "bob/import-%.8s", badval);
		CHECK(strstr(out, want) == NULL);
		snprintf(want, sizeof(want), "bob/import-%.8s", ok);
		CHECK_CONTAINS(out, want);
	}
	free(out);
	/* Only the two good imports opened pull requests. */
	{
		th_pull_list l;
		CHECK_OK(th_meta_pull_list(&l, NULL, m, dbi.id, 0, NULL, 0, &err), &err);
		CHECK(l.n == 2);
		th_pull_list_dispose(&l);
	}
	th_db_info_dispose(&dbi);
	th_buf_dispose(&repo_path);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Run the queued import `id` with a one-worker pool, then merge its pull into main as alice.
 * Returns the finished operation in *op (the caller disposes of it), or -1. */
static int import_and_merge(th_op_info *op, const char *dir, th_meta *m, th_repo *repo,
                            int64_t db_id, const char *id)
{
	th_jobs *j = NULL;
	th_pull_info pull;
	th_pull_merge_result res;
	th_error err;
	int rc;

	CHECK_OK(th_jobs_start(&j, dir, m, 1, &err), &err);
	th_jobs_wake(j);
	rc = wait_done(op, m, id, 30000);
	th_jobs_stop(j);
	if (rc < 0)
		return -1;
	CHECK(op->state == TH_OPSTATE_COMPLETED);
	if (op->state != TH_OPSTATE_COMPLETED) {
		fprintf(stderr, "import failed: %s\n", op->error_message);
		th_op_info_dispose(op);
		return -1;
	}
	CHECK_OK(th_meta_pull_get(&pull, m, db_id, op->pull_id, &err), &err);
	rc = th_pull_merge(&res, NULL, repo, pull.from_branch, "main", op->pull_id, "alice", NULL,
	                   &err);
	CHECK_OK(rc, &err);
	th_pull_info_dispose(&pull);
	return rc < 0 ? -1 : 0;
}

/* An import starts from the commit its upload was taken at (th_import_params.base), not from where
 * the branch moved while it waited in the queue: a Replace queued before another pull was merged
 * neither removes that pull's row nor shows it as its own change, and its branch's parent is the
 * commit it was queued at. */
static void test_import_base_pinned(void)
{
	char *dir = t_mkdtemp(), first[TH_UUID_SIZE], more[TH_UUID_SIZE], repl[TH_UUID_SIZE],
	     branch[64], *out = NULL;
	th_buf repo_path = TH_BUF_INIT;
	th_meta *m = NULL;
	th_repo *repo = NULL;
	th_error err;
	th_op_info op;
	th_db_info dbi;
	th_commit_info ci;
	th_oid queued_at, tip;

	museums_setup(&m, &dbi, &repo_path, dir);
	CHECK_OK(th_repo_open(&repo, repo_path.ptr, 1, &err), &err);
	enqueue(first, m, dir, "id,name\n1,ann\n2,bob\n", "people", TH_OP_CREATE, NULL, NULL);
	if (import_and_merge(&op, dir, m, repo, dbi.id, first) == 0)
		th_op_info_dispose(&op);
	/* The upload of the Replace is taken here, at main's head (the server pins it then); then
	 * another pull adds row 3 and is merged before the Replace is queued and runs. */
	CHECK_OK(th_repo_branch_get(&queued_at, repo, "main", &err), &err);
	enqueue(more, m, dir, "id,name\n3,cy\n", "people", TH_OP_UPDATE, "main", NULL);
	if (import_and_merge(&op, dir, m, repo, dbi.id, more) == 0)
		th_op_info_dispose(&op);
	CHECK(t_sh(&out, "git -C '%s' show main:tables/people/schema.json", repo_path.ptr) == 0);
	CHECK_CONTAINS(out, "\"rows\": 3");
	free(out);
	out = NULL;
	/* Now the Replace runs and is merged. */
	enqueue(repl, m, dir, "id,name\n1,ann\n2,bo\n", "people", TH_OP_REPLACE, "main",
	        &queued_at);
	if (import_and_merge(&op, dir, m, repo, dbi.id, repl) == 0) {
		CHECK_CONTAINS(op.result,
		               "\"rows_added\":0,\"rows_modified\":1,\"rows_removed\":0");
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	snprintf(branch, sizeof(branch), "bob/import-%.8s", repl);
	CHECK_OK(th_repo_branch_get(&tip, repo, branch, &err), &err);
	if (th_repo_commit_read(&ci, repo, &tip, &err) == TH_OK) {
		CHECK(ci.nparents == 1 && th_oid_equal(&ci.parents[0], &queued_at));
		th_commit_info_dispose(&ci);
	} else {
		CHECK(0);
	}
	/* Merged, the Replace kept row 3 of the other pull. */
	CHECK(t_sh(&out, "git -C '%s' show main:tables/people/schema.json", repo_path.ptr) == 0);
	CHECK_CONTAINS(out, "\"rows\": 3");
	free(out);
	th_repo_free(repo);
	th_db_info_dispose(&dbi);
	th_buf_dispose(&repo_path);
	th_meta_close(m);
	t_rmdir(dir);
}

/* A merge whose process died right after it moved the target branch, before (marked = 0) or after
 * (marked = 1) it marked the pull Merged, is retried: the retry completes with the merge commit
 * already made (its parents, its counts) and writes no second one. */
static void test_merge_retry_idempotent(void)
{
	int marked;

	for (marked = 0; marked <= 1; marked++) {
		char *dir = t_mkdtemp(), imp[TH_UUID_SIZE], mid[TH_UUID_SIZE], hex[41], want[200];
		th_buf repo_path = TH_BUF_INIT;
		th_meta *m = NULL;
		th_jobs *j = NULL;
		th_repo *repo = NULL;
		th_error err;
		th_op_info op, dead;
		th_db_info dbi;
		th_pull_info pull;
		th_pull_merge_result res;
		th_oid head;
		int64_t pull_id = 0;

		museums_setup(&m, &dbi, &repo_path, dir);
		enqueue(imp, m, dir, "id,name\n1,ann\n2,bob\n", "people", TH_OP_CREATE, NULL, NULL);
		CHECK_OK(th_jobs_start(&j, dir, m, 1, &err), &err);
		th_jobs_wake(j);
		if (wait_done(&op, m, imp, 30000) == 0) {
			CHECK(op.state == TH_OPSTATE_COMPLETED);
			pull_id = op.pull_id;
			th_op_info_dispose(&op);
		}
		th_jobs_stop(j);
		CHECK(pull_id == 1);

		/* The process that ran the merge: claimed it, merged, maybe marked the pull, died.
		 */
		CHECK_OK(th_pulls_enqueue_merge(mid, m, "alice", "museums", "alice", pull_id, NULL,
		                                &err),
		         &err);
		CHECK_OK(th_meta_op_claim(&dead, m, 60000, &err), &err);
		CHECK_STR(dead.id, mid);
		th_op_info_dispose(&dead);
		CHECK_OK(th_meta_pull_get(&pull, m, dbi.id, pull_id, &err), &err);
		CHECK_OK(th_repo_open(&repo, repo_path.ptr, 1, &err), &err);
		CHECK_OK(th_pull_merge(&res, NULL, repo, pull.from_branch, "main", pull_id, "alice",
		                       NULL, &err),
		         &err);
		th_oid_fmt(hex, &res.commit);
		if (marked)
			CHECK_OK(th_meta_pull_set_state(m, dbi.id, pull_id, TH_PULL_MERGED, hex,
			                                &err),
			         &err);
		th_pull_info_dispose(&pull);

		/* The next process retries it. */
		CHECK_OK(th_jobs_start(&j, dir, m, 1, &err), &err);
		if (wait_done(&op, m, mid, 30000) == 0) {
			char ours[41], theirs[41];
			CHECK(op.state == TH_OPSTATE_COMPLETED);
			if (op.state != TH_OPSTATE_COMPLETED)
				fprintf(stderr, "retried merge failed: %s\n", op.error_message);
			CHECK(op.attempts == 2);
			snprintf(want, sizeof(want), "\"commit\":\"%s\"", hex);
			CHECK_CONTAINS(op.result, want);
			th_oid_fmt(ours, &res.ours);
			th_oid_fmt(theirs, &res.theirs);
			snprintf(want, sizeof(want), "\"parents\":[\"%s\",\"%s\"]", ours, theirs);
			CHECK_CONTAINS(op.result, want);
			CHECK_CONTAINS(op.result, "\"up_to_date\":false");
			snprintf(want, sizeof(want),
			         "\"tables_changed\":%llu,\"rows_changed\":%llu",
			         (unsigned long long)res.stats.tables_changed,
			         (unsigned long long)res.stats.rows_changed);
			CHECK_CONTAINS(op.result, want);
			th_op_info_dispose(&op);
		} else {
			CHECK(0);
		}
		th_jobs_stop(j);
		CHECK_OK(th_meta_pull_get(&pull, m, dbi.id, pull_id, &err), &err);
		CHECK(pull.state == TH_PULL_MERGED);
		CHECK_STR(pull.merge_commit, hex);
		th_pull_info_dispose(&pull);
		CHECK_OK(th_repo_branch_get(&head, repo, "main", &err), &err);
		CHECK(th_oid_equal(&head, &res.commit));
		th_repo_free(repo);
		th_db_info_dispose(&dbi);
		th_buf_dispose(&repo_path);
		th_meta_close(m);
		t_rmdir(dir);
	}
}

int main(void)
{
	th_error err;

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	RUN(test_each_job_once);
	RUN(test_heartbeat_keeps_lease);
	RUN(test_crash_recovery);
	RUN(test_max_attempts);
	RUN(test_expired_lease_reclaimed);
	RUN(test_wake_and_stop);
	RUN(test_writer_lock);
	RUN(test_writer_lock_shared);
	RUN(test_writer_lock_dbs);
	RUN(test_register);
	RUN(test_enqueue_import);
	RUN(test_real_import);
	RUN(test_import_base_pinned);
	RUN(test_merge_retry_idempotent);
	th_repo_global_shutdown();
	TH_TEST_END();
}
