/* test_meta_sync.c: which commits of the operations table reach the disk before they return.
 *
 * A shim VFS ("count", registered as the default over the real one) counts the xSync calls on
 * meta.sqlite's WAL. An operation's creation (the POST's answer names it) and its end (Completed or
 * Failed, which polls show) each sync the WAL before they return; the claim, the lease extension
 * and progress, which nobody is told of, do not. And since a WAL keeps its commits in order, the
 * next synced commit carries the unsynced ones with it: after a completion, a separate connection
 * reads the claim's attempt and the progress rows the completion followed. Ends that arrive
 * while a commit syncs share the next commit (group commit, storage/meta_queue.c). */
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "util.h"
#include "tablehub/meta.h"

static sqlite3_vfs *real;
static sqlite3_vfs count_vfs;
static int wal_syncs;

/* While `hold` is set, a WAL sync waits (and says so in `held`) until it is cleared. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold, held;

struct cfile {
	sqlite3_file base; /* first: methods */
	int wal;
	sqlite3_file *real; /* the real file, allocated after this struct */
};

static sqlite3_io_methods methods;

static int c_close(sqlite3_file *f)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xClose(c->real);
}
static int c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xRead(c->real, b, n, o);
}
static int c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xWrite(c->real, b, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xTruncate(c->real, size);
}
static int c_sync(sqlite3_file *f, int flags)
{
	struct cfile *c = (struct cfile *)f;
	if (c->wal) {
		__atomic_add_fetch(&wal_syncs, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&hold_mu);
		while (hold) {
			held = 1;
			pthread_cond_broadcast(&hold_cv);
			pthread_cond_wait(&hold_cv, &hold_mu);
		}
		pthread_mutex_unlock(&hold_mu);
	}
	return c->real->pMethods->xSync(c->real, flags);
}
static int c_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xFileSize(c->real, size);
}
static int c_lock(sqlite3_file *f, int l)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xLock(c->real, l);
}
static int c_unlock(sqlite3_file *f, int l)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xUnlock(c->real, l);
}
static int c_check(sqlite3_file *f, int *out)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xCheckReservedLock(c->real, out);
}
static int c_fcntl(sqlite3_file *f, int op, void *arg)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xFileControl(c->real, op, arg);
}
static int c_sector(sqlite3_file *f)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xSectorSize(c->real);
}
static int c_chars(sqlite3_file *f)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xDeviceCharacteristics(c->real);
}
static int c_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xShmMap(c->real, pg, sz, ext, p);
}
static int c_shmlock(sqlite3_file *f, int off, int n, int flags)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xShmLock(c->real, off, n, flags);
}
static void c_shmbarrier(sqlite3_file *f)
{
	struct cfile *c = (struct cfile *)f;
	c->real->pMethods->xShmBarrier(c->real);
}
static int c_shmunmap(sqlite3_file *f, int del)
{
	struct cfile *c = (struct cfile *)f;
	return c->real->pMethods->xShmUnmap(c->real, del);
}

static int c_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct cfile *c = (struct cfile *)f;
	int rc;

	(void)v;
	c->real = (sqlite3_file *)(c + 1);
	c->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = real->xOpen(real, name, c->real, flags, out_flags);
	c->base.pMethods = c->real->pMethods ? &methods : NULL;
	return rc;
}

static void count_install(void)
{
	real = sqlite3_vfs_find(NULL);
	methods = (sqlite3_io_methods){ .iVersion = 2,
		                        .xClose = c_close,
		                        .xRead = c_read,
		                        .xWrite = c_write,
		                        .xTruncate = c_truncate,
		                        .xSync = c_sync,
		                        .xFileSize = c_size,
		                        .xLock = c_lock,
		                        .xUnlock = c_unlock,
		                        .xCheckReservedLock = c_check,
		                        .xFileControl = c_fcntl,
		                        .xSectorSize = c_sector,
		                        .xDeviceCharacteristics = c_chars,
		                        .xShmMap = c_shmmap,
		                        .xShmLock = c_shmlock,
		                        .xShmBarrier = c_shmbarrier,
		                        .xShmUnmap = c_shmunmap };
	count_vfs = *real;
	count_vfs.zName = "count";
	count_vfs.szOsFile = (int)sizeof(struct cfile) + real->szOsFile;
	count_vfs.xOpen = c_open;
	if (sqlite3_vfs_register(&count_vfs, 1) != SQLITE_OK)
		abort();
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
	count_install();
	RUN(test_syncs);
	RUN(test_group_commit);
	TH_TEST_END();
}
