/* sqlcache_files.c: the snapshot cache directory, DIR/cache/<owner>/<db>/<key>.sqlite: names,
 * the right to build a missing snapshot, copies, publishing by rename, and the size budget (see
 * include/tablehub/sqlcache.h). What goes into a snapshot is the caller's (src/query_build.c);
 * this file only manages the files.
 *
 * DESIGN
 * - Once. Threads of this process that want the same missing snapshot wait on one condition
 *   variable while the first builds it; across processes an flock on <file>.building does the
 *   same. Whoever gets the lock first checks again whether the file appeared meanwhile. The lock
 *   file is removed under the lock by the one who built, so a process waiting on the old lock
 *   file finds the snapshot when it wakes.
 * - Whole or missing. A snapshot is built under a temporary name beside its final one, written
 *   without syncs, then synced once and renamed into place (th_snap_publish): a reader never sees
 *   half a snapshot, and a power loss leaves it whole or missing. Temporary files a crash leaves
 *   behind are removed by the next eviction pass once they are an hour old.
 * - Copies. An older snapshot a build starts from is copied with a reflink where the file system
 *   can, else with copy_file_range, else with reads and writes.
 * - Forgetting. Each use sets the file's atime (th_snap_touch; the mtime stays the content's,
 *   which kept connections check); after a build, if the snapshots under DIR/cache exceed the
 *   budget, the least recently used go first (never the one just built). A snapshot deleted under
 *   a running query stays readable through its open descriptor.
 */
#define _GNU_SOURCE /* copy_file_range */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/log.h"
#include "tablehub/sqlcache.h"

/* th_snap_set_dir's directory ("" = DIR/cache). Set before any query thread starts, read only
 * after. */
static char snap_dir[4096];

int th_snap_set_dir(const char *dir, th_error *err)
{
	char *abs;
	int error;

	if (dir == NULL) {
		snap_dir[0] = '\0';
		return TH_OK;
	}
	if (strlen(dir) >= sizeof(snap_dir) - 256)
		return th_error_set(err, TH_EINVALID, "the cache directory's name is too long");
	if ((error = th_mkdir_p(dir, err)) < 0)
		return error;
	if ((abs = realpath(dir, NULL)) == NULL)
		return th_error_set(err, TH_ESTORE, "cannot resolve the cache directory: %s",
		                    strerror(errno));
	snprintf(snap_dir, sizeof(snap_dir), "%s", abs);
	free(abs);
	return TH_OK;
}

const char *th_snap_dir(void)
{
	return snap_dir[0] ? snap_dir : NULL;
}

int th_snap_path(th_buf *out, const char *datadir, const char *owner, const char *db,
                 const char *key, th_error *err)
{
	if (snap_dir[0])
		return th_buf_printf(out, err, "%s/%s/%s/%s.sqlite", snap_dir, owner, db, key);
	return th_buf_printf(out, err, "%s/cache/%s/%s/%s.sqlite", datadir, owner, db, key);
}

int th_snap_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void th_snap_touch(const char *path)
{
	/* The LRU clock is the atime; the mtime stays the content's (kept connections check it).
	 * A failure only ages the file. */
	utimensat(AT_FDCWD, path, (struct timespec[2]){ { 0, UTIME_NOW }, { 0, UTIME_OMIT } }, 0);
}

/* --- the right to build ----------------------------------------------------------------------- */

/* Threads of this process building a snapshot, by path. */
typedef struct building {
	char *path;
	struct building *next;
} building;

static pthread_mutex_t sf_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sf_cv = PTHREAD_COND_INITIALIZER;
static building *sf_list;

static int sf_busy(const char *path)
{
	building *b;

	for (b = sf_list; b; b = b->next)
		if (strcmp(b->path, path) == 0)
			return 1;
	return 0;
}

static void sf_done(const char *path)
{
	building **pp, *b;

	pthread_mutex_lock(&sf_mu);
	for (pp = &sf_list; (b = *pp) != NULL; pp = &b->next) {
		if (strcmp(b->path, path) == 0) {
			*pp = b->next;
			free(b->path);
			free(b);
			break;
		}
	}
	pthread_cond_broadcast(&sf_cv);
	pthread_mutex_unlock(&sf_mu);
}

struct th_snap_lock {
	char *path;
	th_buf lock_path; /* <path>.building */
	int fd;           /* holds the flock */
};

/* mkdir -p of the directory `path` is in. */
static int make_parent(const char *path, th_error *err)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int error;

	if (slash == NULL || slash == path)
		return TH_OK;
	if ((dir = strndup(path, (size_t)(slash - path))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	error = th_mkdir_p(dir, err);
	free(dir);
	return error;
}

int th_snap_lock_build(th_snap_lock **out, const char *path, th_error *err)
{
	th_snap_lock *lk = NULL;
	building *b = NULL;
	int error;

	*out = NULL;
	pthread_mutex_lock(&sf_mu);
	while (sf_busy(path))
		pthread_cond_wait(&sf_cv, &sf_mu);
	if (th_snap_exists(path)) {
		pthread_mutex_unlock(&sf_mu);
		return TH_OK;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL || (b->path = strdup(path)) == NULL) {
		pthread_mutex_unlock(&sf_mu);
		free(b);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	b->next = sf_list;
	sf_list = b;
	pthread_mutex_unlock(&sf_mu);

	if ((lk = calloc(1, sizeof(*lk))) == NULL || (lk->path = strdup(path)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	lk->fd = -1;
	if ((error = make_parent(path, err)) < 0 ||
	    (error = th_buf_printf(&lk->lock_path, err, "%s.building", path)) < 0)
		goto fail;
	if ((lk->fd = open(lk->lock_path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot open '%s': %s", lk->lock_path.ptr,
		                     strerror(errno));
		goto fail;
	}
	while (flock(lk->fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			error = th_error_set(err, TH_ESTORE, "cannot lock '%s': %s",
			                     lk->lock_path.ptr, strerror(errno));
			goto fail;
		}
	}
	*out = lk;
	return TH_OK;
fail:
	if (lk != NULL) {
		if (lk->fd >= 0)
			close(lk->fd);
		th_buf_dispose(&lk->lock_path);
		free(lk->path);
		free(lk);
	}
	sf_done(path);
	return error;
}

void th_snap_unlock_build(th_snap_lock *lock, int tried)
{
	if (lock == NULL)
		return;
	if (tried)
		unlink(lock->lock_path
		               .ptr); /* under the lock: a waiter on the old file finds `path` */
	close(lock->fd);
	sf_done(lock->path);
	th_buf_dispose(&lock->lock_path);
	free(lock->path);
	free(lock);
}

/* --- building files --------------------------------------------------------------------------- */

int th_snap_tmp_path(th_buf *out, const char *path, th_error *err)
{
	static atomic_uint seq;

	return th_buf_printf(out, err, "%s.tmp.%ld.%u", path, (long)getpid(),
	                     atomic_fetch_add(&seq, 1));
}

int th_snap_copy(const char *src, const char *dst, th_error *err)
{
	int in = -1, out = -1, error = TH_OK;
	struct stat st;
	char buf[1 << 16];

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
		error = th_error_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_ESTORE,
		                     "cannot open '%s': %s", src, strerror(errno));
		goto cleanup;
	}
	if (fstat(in, &st) < 0 ||
	    (out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		error = th_error_set(err, TH_ESTORE, "cannot copy '%s': %s", src, strerror(errno));
		goto cleanup;
	}
	if (ioctl(out, FICLONE, in) == 0)
		goto cleanup;
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(st.st_size - done), 0);
		if (n > 0) {
			done += n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		/* No copy_file_range here (old kernel, odd file system): plain reads and writes
		 * from where it stopped. */
		if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL) {
			error = th_error_set(err, TH_ESTORE, "cannot copy '%s': %s", src,
			                     strerror(errno));
			goto cleanup;
		}
		for (;;) {
			ssize_t r = pread(in, buf, sizeof(buf), done), w = 0;
			if (r == 0)
				goto cleanup;
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 || (w = pwrite(out, buf, (size_t)r, done)) != r) {
				error = th_error_set(err, TH_ESTORE, "cannot copy '%s': %s", src,
				                     w < 0 || r < 0 ? strerror(errno)
				                                    : "short write");
				goto cleanup;
			}
			done += r;
		}
	}
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && error == TH_OK)
		error = th_error_set(err, TH_ESTORE, "cannot write '%s': %s", dst, strerror(errno));
	return error;
}

/* Written without syncs while it was built, the file reaches the disk before its rename: after a
 * power loss a snapshot is whole or missing, never a torn file under its final name. fdatasync:
 * the data and what reading it needs (size, blocks), not the times, so that a snapshot brought up
 * to date in place (the same size, a few pages rewritten) waits for no journal commit. */
static int sync_file(const char *path, th_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), error = TH_OK;

	if (fd < 0 || fdatasync(fd) < 0)
		error = th_error_set(err, TH_ESTORE, "cannot sync '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return error;
}

int th_snap_publish(const char *tmp, const char *path, th_error *err)
{
	int error;

	if ((error = sync_file(tmp, err)) == TH_OK && rename(tmp, path) < 0)
		error = th_error_set(err, TH_ESTORE, "cannot rename snapshot to '%s': %s", path,
		                     strerror(errno));
	if (error < 0)
		unlink(tmp);
	return error;
}

void th_snap_remove(const char *path)
{
	unlink(path);
}

/* --- the cache budget ------------------------------------------------------------------------- */

typedef struct cache_file {
	char *path;
	off_t size;
	time_t used; /* atime: set on each use */
} cache_file;

typedef struct cache_scan {
	cache_file *v;
	size_t n, cap;
	uint64_t total;
} cache_scan;

static void scan_dir(cache_scan *s, const char *dir, int depth, time_t now)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path) ||
		    lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < 2)
				scan_dir(s, path, depth + 1, now);
			continue;
		}
		if (!S_ISREG(st.st_mode) || depth != 2)
			continue;
		if (strstr(e->d_name, ".tmp.") != NULL) {
			if (now - st.st_mtime > 3600) /* left by a crash */
				unlink(path);
			continue;
		}
		if (strlen(e->d_name) < 7 ||
		    strcmp(e->d_name + strlen(e->d_name) - 7, ".sqlite") != 0)
			continue;
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 64;
			cache_file *v = realloc(s->v, cap * sizeof(*v));
			if (v == NULL)
				break;
			s->v = v;
			s->cap = cap;
		}
		if ((s->v[s->n].path = strdup(path)) == NULL)
			break;
		s->v[s->n].size = st.st_size;
		s->v[s->n].used = st.st_atime;
		s->total += (uint64_t)st.st_size;
		s->n++;
	}
	closedir(d);
}

static int by_use(const void *a, const void *b)
{
	const cache_file *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

void th_snap_evict(const char *datadir, uint64_t budget, const char *keep)
{
	cache_scan s;
	char root[4096];
	size_t i;

	memset(&s, 0, sizeof(s));
	if (snap_dir[0])
		snprintf(root, sizeof(root), "%s", snap_dir);
	else
		snprintf(root, sizeof(root), "%s/cache", datadir);
	scan_dir(&s, root, 0, time(NULL));
	if (budget > 0 && s.total > budget) {
		qsort(s.v, s.n, sizeof(*s.v), by_use);
		for (i = 0; i < s.n && s.total > budget; i++) {
			if (keep != NULL && strcmp(s.v[i].path, keep) == 0)
				continue;
			if (unlink(s.v[i].path) == 0) {
				s.total -= (uint64_t)s.v[i].size;
				TH_LOG(TH_LOG_INFO, "snapshot evicted path=%s", s.v[i].path);
			}
		}
	}
	for (i = 0; i < s.n; i++)
		free(s.v[i].path);
	free(s.v);
}
