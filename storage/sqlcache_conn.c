/* sqlcache_conn.c: the read-only connections th_snap_query runs on, kept between queries, and
 * the file locks that let a builder take over a snapshot nobody reads (th_snap_steal).
 *
 * Opening a snapshot costs a parse of its schema and, worse, the page faults of a fresh memory
 * map: a count(*) over a million rows takes ~5 ms in a new connection and ~0.2 ms in a used one.
 * So read-only connections are kept, up to POOL_MAX, each used by one query at a time and closed
 * least recently used first. A kept connection holds no state between queries (nothing a query
 * can do survives it: writes, temp objects and pragmas that set are refused). Entries made by
 * another process (after a fork) are never touched.
 *
 * A query holds a shared flock on its snapshot file while it runs, so that a builder may take
 * over a snapshot nobody reads (th_snap_steal) instead of copying it. A query therefore opens the
 * file, locks it, checks that the path still names that file (it was not taken over meanwhile),
 * and has SQLite open that very file through /proc/self/fd, read-only and `immutable` (no SQLite
 * locks, no change checks: a snapshot never changes under a reader), memory-mapped. A kept
 * connection is reused only for the same file unchanged (device, inode, size and mtime; the
 * cache's use marks set only atime).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tablehub/buf.h"
#include "sqlcache_internal.h"

/* "file:" + path with the characters a URI reserves escaped + "?immutable=1". */
static int immutable_uri(th_buf *out, const char *path, th_error *err)
{
	const char *p;
	int error;

	if ((error = th_buf_puts(out, "file:", err)) < 0)
		return error;
	for (p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (isalnum(c) || strchr("/-._~", c) != NULL)
			error = th_buf_putc(out, (char)c, err);
		else
			error = th_buf_printf(out, err, "%%%02X", c);
		if (error < 0)
			return error;
	}
	return th_buf_puts(out, "?immutable=1", err);
}

#define POOL_MAX 16

typedef struct pooled {
	char *path;
	sqlite3 *db;
	th_sqlcache_file_id id;
	pid_t pid;
	uint64_t last_use;
} pooled;

static pooled pool[POOL_MAX];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t pool_clock;

static void file_id_of(th_sqlcache_file_id *out, const struct stat *st)
{
	memset(out, 0, sizeof(*out));
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->mtime = st->st_mtim;
}

static int file_id_equal(const th_sqlcache_file_id *a, const th_sqlcache_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static int conn_open(sqlite3 **out, int fd, const char *path, th_error *err)
{
	char proc[64];
	th_buf uri = TH_BUF_INIT;
	sqlite3 *db = NULL;
	int rc, error;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((error = immutable_uri(&uri, proc, err)) < 0)
		return error;
	rc = sqlite3_open_v2(uri.ptr, &db,
	                     SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX |
	                             SQLITE_OPEN_PRIVATECACHE,
	                     NULL);
	th_buf_dispose(&uri);
	if (rc != SQLITE_OK) {
		error = th_error_set(err, TH_ESTORE, "cannot open snapshot '%s': %s", path,
		                     db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close_v2(db);
		return error;
	}
	/* Settings first, while nothing is refused; the authorizer comes with each query. */
	sqlite3_exec(db, "PRAGMA mmap_size=2147418112", NULL, NULL, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	if (sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL) != SQLITE_OK) {
		error = th_sqlcache__error(err, db, "cannot set up query");
		sqlite3_close_v2(db);
		return error;
	}
	*out = db;
	return TH_OK;
}

int th_sqlcache__conn_acquire(sqlite3 **out, int *lock_fd, th_sqlcache_file_id *id,
                              const char *path, th_error *err)
{
	struct stat st, now;
	sqlite3 *stale = NULL;
	pid_t me = getpid();
	size_t i;
	int fd, error;

	*out = NULL;
	*lock_fd = -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return th_error_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_ESTORE,
		                    "cannot open snapshot '%s': %s", path, strerror(errno));
	while (flock(fd, LOCK_SH) < 0) {
		if (errno != EINTR) {
			error = th_error_set(err, TH_ESTORE, "cannot lock snapshot '%s': %s", path,
			                     strerror(errno));
			close(fd);
			return error;
		}
	}
	if (fstat(fd, &st) < 0 || stat(path, &now) < 0 || now.st_ino != st.st_ino ||
	    now.st_dev != st.st_dev) {
		close(fd);
		return th_error_set(err, TH_ENOTFOUND, "snapshot '%s' was replaced", path);
	}
	file_id_of(id, &st);
	pthread_mutex_lock(&pool_mu);
	for (i = 0; i < POOL_MAX; i++) {
		pooled *e = &pool[i];
		if (e->db == NULL || e->pid != me || strcmp(e->path, path) != 0)
			continue;
		if (file_id_equal(&e->id, id))
			*out = e->db;
		else
			stale = e->db;
		free(e->path);
		memset(e, 0, sizeof(*e));
		break;
	}
	pthread_mutex_unlock(&pool_mu);
	sqlite3_close_v2(stale);
	if (*out == NULL && (error = conn_open(out, fd, path, err)) < 0) {
		close(fd);
		return error;
	}
	*lock_fd = fd;
	return TH_OK;
}

void th_sqlcache__conn_release(sqlite3 *db, int lock_fd, const th_sqlcache_file_id *id,
                               const char *path, int keep)
{
	sqlite3 *closing = db;
	pid_t me = getpid();
	char *copy = NULL;
	size_t i, slot = POOL_MAX;

	if (lock_fd >= 0)
		close(lock_fd);
	if (!keep || (copy = strdup(path)) == NULL) {
		sqlite3_close_v2(db);
		return;
	}
	pthread_mutex_lock(&pool_mu);
	for (i = 0; i < POOL_MAX; i++) {
		if (pool[i].db == NULL) {
			slot = i;
			break;
		}
		if (pool[i].pid == me &&
		    (slot == POOL_MAX || pool[i].last_use < pool[slot].last_use))
			slot = i;
	}
	if (slot < POOL_MAX) {
		pooled *e = &pool[slot];
		closing = e->db; /* NULL for a free slot */
		free(e->path);
		e->path = copy;
		e->db = db;
		e->id = *id;
		e->pid = me;
		e->last_use = ++pool_clock;
		copy = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	free(copy);
	sqlite3_close_v2(closing);
}

int th_snap_steal(int *lock_fd, const char *path, const char *to, th_error *err)
{
	struct stat st, now;
	int fd, e;

	*lock_fd = -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return th_error_set(err, TH_ENOTFOUND, "cannot open snapshot '%s': %s", path,
		                    strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return th_error_set(err, TH_EBUSY, "snapshot '%s' is being read", path);
	}
	if (fstat(fd, &st) < 0 || stat(path, &now) < 0 || now.st_ino != st.st_ino ||
	    now.st_dev != st.st_dev) {
		close(fd);
		return th_error_set(err, TH_ENOTFOUND, "snapshot '%s' was replaced", path);
	}
	if (rename(path, to) < 0) {
		e = errno;
		close(fd);
		return th_error_set(err, TH_ESTORE, "cannot rename '%s': %s", path, strerror(e));
	}
	*lock_fd = fd;
	return TH_OK;
}
