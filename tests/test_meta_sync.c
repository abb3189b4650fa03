/* test_meta_sync.c: which commits of the operations table reach the disk before they return.
 *
 * The metadata's SQLite connection commits without syncing under its mutex and syncs the WAL after
 * it (th_filesync, dirsync.h), so a hook on those syncs (th_dirsync_set_sync) counts the syncs of
 * meta.sqlite's WAL. An operation's creation (the POST's answer names it) and its end (Completed
 * or Failed, which polls show) each sync the WAL before they return; the claim, the lease
 * extension and progress, which nobody is told of, do not. And since a WAL keeps its commits in
 * order, the next synced commit carries the unsynced ones with it: after a completion, a separate
 * connection reads the claim's attempt and the progress rows the completion followed. Ends that
 * arrive while a commit syncs share the next commit (group commit, storage/meta_queue.c). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "tablehub/dirsync.h"
#include "tablehub/meta.h"

static int wal_syncs;

/* While `hold` is set, a WAL sync waits (and says so in `held`) until it is cleared. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold, held;

/* The sync th_filesync and th_dirsync make: counts (and may hold) those of a WAL. */
static int count_sync(int fd)
{
	char link[64], path[1024];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n > 4 && memcmp(path + n - 4, "-wal", 4) == 0) {
		__atomic_add_fetch(&wal_syncs, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&hold_mu);
		while (hold) {
			held = 1;
			pthread_cond_broadcast(&hold_cv);
			pthread_cond_wait(&hold_cv, &hold_mu);
		}
		pthread_mutex_unlock(&hold_mu);
	}
	return fsync(fd);
}

static int syncs(void)
{
	return __atomic_load_n(&wal_syncs, __ATOMIC_SEQ_CST);
}

/* One integer from a query on DIR/meta.sqlite, through a separate connection. */
static int64_t sql_int(const char *dir, const char *sql)
{
	char path[1024];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/meta.sqlite", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		abort();
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void op_new(char id[TH_UUID_SIZE], th_meta *m)
{
	th_op_new n;
	th_error err;

	memset(&n, 0, sizeof(n));
	n.kind = "import";
	n.owner = "alice";
	n.db = "museums";
	n.creator = "bob";
	n.file_name = "f.csv";
	n.table_name = "t";
	CHECK_OK(th_meta_op_create(id, m, &n, &err), &err);
}

static void test_syncs(void)
{
	char *dir = t_mkdtemp(), a[TH_UUID_SIZE], b[TH_UUID_SIZE];
	th_meta *m = NULL;
	th_op_info op;
	th_error err;
	int n;

	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	/* Created: synced before it returns. */
	n = syncs();
	op_new(a, m);
	CHECK(syncs() == n + 1);
	op_new(b, m);

	/* Claimed, extended, progress: none synced. */
	n = syncs();
	CHECK_OK(th_meta_op_claim(&op, m, 30000, &err), &err);
	CHECK_STR(op.id, a);
	CHECK(op.attempts == 1);
	CHECK_OK(th_meta_op_extend(m, a, 1, 60000, &err), &err);
	CHECK_OK(th_meta_op_progress(m, a, 1, 123, 45, 60000, &err), &err);
	CHECK(syncs() == n);
	/* ... but committed: another connection sees them at once. */
	CHECK(sql_int(dir, "SELECT rows_processed FROM operations WHERE state = 'In Progress'") ==
	      45);

	/* Completed: synced, and with it everything before it. */
	CHECK_OK(th_meta_op_complete(m, a, 1, "{\"rows\":45}", 0, &err), &err);
	CHECK(syncs() == n + 1);
	CHECK(sql_int(dir, "SELECT count(*) FROM operations WHERE state = 'Completed' AND "
	                   "attempts = 1 AND rows_processed = 45 AND bytes_read = 123") == 1);
	th_op_info_dispose(&op);

	/* Failed: synced as well. */
	CHECK_OK(th_meta_op_claim(&op, m, 30000, &err), &err);
	CHECK_STR(op.id, b);
	n = syncs();
	CHECK_OK(th_meta_op_fail(m, b, 1, "bad row", 3, 1, &err), &err);
	CHECK(syncs() == n + 1);
	th_op_info_dispose(&op);

	/* The connection is back to syncing what it commits after a lazy one. */
	CHECK(th_meta_op_claim(&op, m, 30000, &err) == TH_ENOTFOUND);
	n = syncs();
	op_new(a, m);
	CHECK(syncs() == n + 1);
	th_meta_close(m);
	t_rmdir(dir);
}

struct ender {
	th_meta *m;
	char id[TH_UUID_SIZE];
	int attempt;
	int rc;
	pthread_t th;
};

static void *end_main(void *arg)
{
	struct ender *e = arg;
	th_error err;

	e->rc = th_meta_op_complete(e->m, e->id, e->attempt, "{}", 0, &err);
	return NULL;
}

/* Ends that arrive while a commit is syncing share the next transaction and its one sync; a
 * request whose fence is lost fails alone, the others complete. */
static void test_group_commit(void)
{
	char *dir = t_mkdtemp();
	struct ender e[8];
	struct timespec pause = { 0, 300000000L };
	th_meta *m = NULL;
	th_op_info op;
	th_error err;
	int i, n;

	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	for (i = 0; i < 8; i++) {
		op_new(e[i].id, m);
		e[i].m = m;
	}
	for (i = 0; i < 8; i++) {
		CHECK_OK(th_meta_op_claim(&op, m, 30000, &err), &err);
		th_op_info_dispose(&op);
		e[i].attempt = i == 7 ? 2 : 1; /* the last one names an attempt it does not hold */
	}
	n = syncs();
	pthread_mutex_lock(&hold_mu);
	hold = 1;
	held = 0;
	pthread_mutex_unlock(&hold_mu);
	/* The first leads, and its sync waits... */
	pthread_create(&e[0].th, NULL, end_main, &e[0]);
	pthread_mutex_lock(&hold_mu);
	while (!held)
		pthread_cond_wait(&hold_cv, &hold_mu);
	pthread_mutex_unlock(&hold_mu);
	/* ... while the others queue behind it. */
	for (i = 1; i < 8; i++)
		pthread_create(&e[i].th, NULL, end_main, &e[i]);
	nanosleep(&pause, NULL);
	pthread_mutex_lock(&hold_mu);
	hold = 0;
	pthread_cond_broadcast(&hold_cv);
	pthread_mutex_unlock(&hold_mu);
	for (i = 0; i < 8; i++)
		pthread_join(e[i].th, NULL);
	for (i = 0; i < 7; i++)
		CHECK(e[i].rc == TH_OK);
	CHECK(e[7].rc == TH_ECONFLICT);
	CHECK(sql_int(dir, "SELECT count(*) FROM operations WHERE state = 'Completed'") == 7);
	CHECK(sql_int(dir, "SELECT count(*) FROM operations WHERE state = 'In Progress'") == 1);
	/* Two commits at least (the first, then the rest), fewer than one per request. */
	CHECK(syncs() >= n + 2);
	CHECK(syncs() < n + 7);
	th_meta_close(m);
	t_rmdir(dir);
}

int main(void)
{
	th_dirsync_set_sync(count_sync);
	RUN(test_syncs);
	RUN(test_group_commit);
	TH_TEST_END();
}
