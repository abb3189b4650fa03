/* multinode_jobs.c: the job pool's coordination with other nodes (src/jobs.c, meta_coord.h), with
 * two "nodes" in one process: two th_meta handles on one meta.sqlite, each with its own node id
 * and a coordination ops table of this test's (a writer lock per key and notices shared by both
 * handles, as PostgreSQL's advisory locks and NOTIFY are shared by every node). It checks that
 * the pool asks the store for the writer lock around every writer, so writers of one database on
 * two nodes never overlap, and that an operation queued through one node is claimed at once by
 * the idle worker of the other, long before that worker's poll would have found it.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "harness.h"
#include "util.h"
#include "../storage/meta_backend.h"
#include "tablehub/jobs.h"
#include "tablehub/meta.h"
#include "tablehub/meta_coord.h"

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

/* --- the shared "store": locks by key and a notice counter ------------------------------------ */

#define MAXKEYS 16

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t held[MAXKEYS];
	int nheld;
	int takes, releases;
	unsigned long notices;
} g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, 0, 0, 0, 0 };

struct held {
	int64_t key;
};

static int is_held(int64_t key)
{
	for (int i = 0; i < g.nheld; i++)
		if (g.held[i] == key)
			return 1;
	return 0;
}

static int fake_take(void **held_out, th_meta *m, int64_t key, int shared, th_error *err)
{
	struct held *h = malloc(sizeof(*h));

	(void)m;
	(void)shared; /* every take is exclusive here: the test's kind is an exclusive writer */
	if (h == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	h->key = key;
	pthread_mutex_lock(&g.mu);
	while (is_held(key) || g.nheld == MAXKEYS)
		pthread_cond_wait(&g.cv, &g.mu);
	g.held[g.nheld++] = key;
	g.takes++;
	pthread_mutex_unlock(&g.mu);
	*held_out = h;
	return TH_OK;
}

static void fake_release(th_meta *m, void *held)
{
	struct held *h = held;

	(void)m;
	pthread_mutex_lock(&g.mu);
	for (int i = 0; i < g.nheld; i++) {
		if (g.held[i] == h->key) {
			g.held[i] = g.held[--g.nheld];
			break;
		}
	}
	g.releases++;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	free(h);
}

static int fake_notify(th_meta *m, th_error *err)
{
	(void)m;
	(void)err;
	pthread_mutex_lock(&g.mu);
	g.notices++;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	return TH_OK;
}

/* The notices each handle has seen, by handle (two handles at most). */
static th_meta *seen_by[2];
static unsigned long seen[2];

static int fake_wait(th_meta *m, int64_t timeout_ms, th_error *err)
{
	struct timespec until;
	int i = seen_by[0] == m ? 0 : 1, got;

	(void)err;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(timeout_ms / 1000);
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g.mu);
	while (g.notices == seen[i] && pthread_cond_timedwait(&g.cv, &g.mu, &until) == 0)
		;
	got = g.notices != seen[i];
	seen[i] = g.notices;
	pthread_mutex_unlock(&g.mu);
	return got;
}

static void fake_close(th_meta *m)
{
	(void)m;
}

static const th_meta_coord_ops fake_coord = { fake_take, fake_release, fake_notify, fake_wait,
	                                      fake_close };

/* Two handles (nodes "n1", "n2") on dir's store, made shared with the fake coordination. */
static th_meta_ops shared_ops;

static void open_nodes(th_meta *m[2], const char *dir)
{
	th_meta_options o;
	th_error err;

	for (int i = 0; i < 2; i++) {
		memset(&o, 0, sizeof(o));
		o.node_id = i == 0 ? "n1" : "n2";
		if (th_meta_open_with(&m[i], dir, &o, &err) < 0) {
			fprintf(stderr, "open: %s\n", err.msg);
			abort();
		}
		shared_ops = *m[i]->ops;
		shared_ops.coord = &fake_coord;
		m[i]->ops = &shared_ops;
		seen_by[i] = m[i];
		seen[i] = g.notices;
	}
}

static void op_create(char id[TH_UUID_SIZE], th_meta *m, const char *db, const char *what)
{
	th_op_new n;
	th_error err;

	memset(&n, 0, sizeof(n));
	n.kind = "import";
	n.owner = "alice";
	n.db = db;
	n.creator = "bob";
	n.file_name = what;
	n.table_name = "t";
	if (th_meta_op_create(id, m, &n, &err) < 0) {
		fprintf(stderr, "op_create: %s\n", err.msg);
		abort();
	}
}

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
		sleep_ms(10);
	}
}

/* --- the runner: counts how many run at once, and blocks on "block" ------------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int cur, max, ran, blocked, released;
} r = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0 };

static int run(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	struct timespec until;

	(void)payload;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 300 * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r.mu);
	if (++r.cur > r.max)
		r.max = r.cur;
	r.ran++;
	pthread_cond_broadcast(&r.cv);
	if (strcmp(job->file_name, "block") == 0) {
		r.blocked = 1;
		pthread_cond_broadcast(&r.cv);
		while (!r.released)
			pthread_cond_wait(&r.cv, &r.mu);
	} else {
		/* Give a second writer the time to overlap, were it let in. */
		while (r.cur < 2 && pthread_cond_timedwait(&r.cv, &r.mu, &until) == 0)
			;
	}
	r.cur--;
	pthread_mutex_unlock(&r.mu);
	return th_job_set_result(ctx, "{}", 0, err);
}

static const th_job_kind writer = { "import", "Import", run, TH_JOB_WRITES_REPO, "again", NULL };
static const th_job_kind reader = { "import", "Import", run, 0, "again", NULL };

static th_jobs *pool(const char *dir, th_meta *m, int n, const th_job_kind *k, int64_t poll)
{
	th_jobs *j = NULL;
	th_error err;

	if (th_jobs_create(&j, dir, m, n, &err) < 0 || th_jobs_register(j, k, NULL, &err) < 0)
		abort();
	th_jobs_set_timing(j, 5000, poll);
	if (th_jobs_run(j, &err) < 0) {
		fprintf(stderr, "th_jobs_run: %s\n", err.msg);
		abort();
	}
	return j;
}

/* Writers of one database on two nodes, two workers each, never overlap: each holds the store's
 * lock of the database, which the pool took and released once per run. Writers of another
 * database take another key. */
static void test_writers_across_nodes(void)
{
	char *dir = t_mkdtemp(), ids[5][TH_UUID_SIZE];
	th_meta *m[2];
	th_jobs *j[2];
	th_op_info op;
	int i, takes0;

	CHECK(th_meta_dblock_key("alice", "a") == th_meta_dblock_key("alice", "a"));
	CHECK(th_meta_dblock_key("alice", "a") != th_meta_dblock_key("alice", "b"));
	CHECK(th_meta_dblock_key("al", "ice/a") != th_meta_dblock_key("alice", "a"));
	open_nodes(m, dir);
	CHECK(th_meta_shared(m[0]) == 1);
	r.max = r.ran = 0;
	takes0 = g.takes;
	for (i = 0; i < 4; i++)
		op_create(ids[i], m[i % 2], "museums", "ok");
	j[0] = pool(dir, m[0], 2, &writer, 20);
	j[1] = pool(dir, m[1], 2, &writer, 20);
	for (i = 0; i < 4; i++) {
		if (wait_done(&op, m[0], ids[i], 20000) == 0) {
			CHECK(op.state == TH_OPSTATE_COMPLETED);
			th_op_info_dispose(&op);
		} else {
			CHECK(0);
		}
	}
	CHECK(r.ran == 4);
	CHECK(r.max == 1);
	CHECK(g.takes - takes0 == 4);
	pthread_mutex_lock(&g.mu);
	CHECK(g.nheld == 0);
	CHECK(g.takes == g.releases);
	pthread_mutex_unlock(&g.mu);
	/* Two databases: their writers run side by side. */
	r.max = 0;
	op_create(ids[0], m[0], "one", "ok");
	op_create(ids[1], m[1], "two", "ok");
	th_jobs_wake(j[0]);
	for (i = 0; i < 2; i++) {
		if (wait_done(&op, m[0], ids[i], 20000) == 0)
			th_op_info_dispose(&op);
		else
			CHECK(0);
	}
	CHECK(r.max == 2);
	th_jobs_stop(j[0]);
	th_jobs_stop(j[1]);
	th_meta_close(m[0]);
	th_meta_close(m[1]);
	t_rmdir(dir);
}

/* Node 1's only worker is busy; an operation queued through node 1 is run by node 2's idle worker
 * at once, woken by the notice, though its poll interval is a minute. A kind that does not write
 * takes no lock. */
static void test_notice_wakes_other_node(void)
{
	char *dir = t_mkdtemp(), busy[TH_UUID_SIZE], id[TH_UUID_SIZE];
	th_meta *m[2];
	th_jobs *j[2];
	th_op_info op;
	int64_t t0;
	int takes0 = g.takes;

	open_nodes(m, dir);
	r.blocked = r.released = 0;
	j[0] = pool(dir, m[0], 1, &reader, 60000);
	j[1] = pool(dir, m[1], 1, &reader, 60000);
	/* Both workers looked once at start and now sleep for their minute. */
	sleep_ms(200);
	op_create(busy, m[0], "museums", "block");
	th_jobs_wake(j[0]);
	pthread_mutex_lock(&r.mu);
	while (!r.blocked)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	sleep_ms(100);
	t0 = mono_ms();
	op_create(id, m[0], "museums", "ok");
	th_jobs_wake(j[0]);
	if (wait_done(&op, m[0], id, 5000) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		CHECK(mono_ms() - t0 < 3000);
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	/* Whichever node ran the blocker, the other one ran the second operation. */
	{
		th_op_info b;
		th_error err;
		CHECK_OK(th_meta_op_get(&b, m[0], busy, &err), &err);
		CHECK_OK(th_meta_op_get(&op, m[0], id, &err), &err);
		CHECK(strcmp(b.lease_owner, op.lease_owner) != 0);
		th_op_info_dispose(&b);
		th_op_info_dispose(&op);
	}
	pthread_mutex_lock(&r.mu);
	r.released = 1;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.mu);
	if (wait_done(&op, m[0], busy, 5000) == 0)
		th_op_info_dispose(&op);
	CHECK(g.takes == takes0);
	th_jobs_stop(j[0]);
	th_jobs_stop(j[1]);
	th_meta_close(m[0]);
	th_meta_close(m[1]);
	t_rmdir(dir);
}

/* A store one process holds alone (SQLite as it is): not shared, the lock holds nothing, a notice
 * is a no-op and a wait is refused. */
static void test_sqlite_alone(void)
{
	char *dir = t_mkdtemp();
	th_meta *m = NULL;
	th_meta_dblock *l = (th_meta_dblock *)&l;
	th_error err;

	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK(th_meta_shared(m) == 0);
	CHECK_OK(th_meta_dblock_take(&l, m, "alice", "museums", 0, &err), &err);
	CHECK(l == NULL);
	th_meta_dblock_release(m, l);
	CHECK(th_meta_dblock_take(&l, m, "alice", "../x", 0, &err) == TH_EINVALID);
	CHECK_OK(th_meta_work_notify(m, &err), &err);
	CHECK(th_meta_work_wait(m, 10, &err) == TH_EINVALID);
	th_meta_close(m);
	t_rmdir(dir);
}

int main(void)
{
	RUN(test_sqlite_alone);
	RUN(test_writers_across_nodes);
	RUN(test_notice_wakes_other_node);
	TH_TEST_END();
}
