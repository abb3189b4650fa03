/* dirsync.c: shared fsyncs of directories and files (see include/tablehub/dirsync.h).
 *
 * Each directory or file being synced has a slot: a count of callers that arrived (`asked`), the
 * count a finished fsync covered (`covered`) and whether an fsync runs now. A caller takes the next
 * number; while `covered` is below it, it either waits for the running fsync or, when none runs,
 * runs one that covers every number taken so far. An fsync that started after a caller took its
 * number started after that caller's changes, so it covers them.
 *
 * Slots are a small table hashed by path. A slot idle (nobody syncing or waiting) may be taken
 * for another directory; a caller whose slot is busy with another directory fsyncs on its own,
 * which is always correct, only not shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/dirsync.h"
#include "tablehub/hash.h"

#define NSLOTS 64
#define PATH_CAP 512

struct slot {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char path[PATH_CAP];
	uint64_t asked, covered;
	unsigned users; /* callers inside th_dirsync for this path */
	int running;
};

static struct slot slots[NSLOTS];
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t nsyncs;
static int (*sync_fn)(int fd) = fsync;
static int (*data_sync_fn)(int fd) = fdatasync;

static void slots_init(void)
{
	for (size_t i = 0; i < NSLOTS; i++) {
		pthread_mutex_init(&slots[i].mu, NULL);
		pthread_cond_init(&slots[i].cv, NULL);
	}
}

/* One sync of `path` of our own: fsync of a directory, fdatasync of a file. Returns 0 or -1 with
 * errno set. */
static int sync_path(const char *path, int dir)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0)), rc, saved;

	if (fd < 0)
		return -1;
	atomic_fetch_add(&nsyncs, 1);
	rc = dir ? sync_fn(fd) : data_sync_fn(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc < 0 ? -1 : 0;
}

/* th_dirsync and th_filesync: `dir` tells which. */
static int shared_sync(const char *path, int dir)
{
	size_t len = strlen(path);
	struct slot *s;
	uint64_t mine;
	int rc = 0;

	if (len >= PATH_CAP)
		return sync_path(path, dir);
	pthread_once(&slots_once, slots_init);
	s = &slots[th_hash64(path, len) % NSLOTS];
	pthread_mutex_lock(&s->mu);
	if (strcmp(s->path, path) != 0) {
		if (s->users > 0) { /* busy with another directory */
			pthread_mutex_unlock(&s->mu);
			return sync_path(path, dir);
		}
		memcpy(s->path, path, len + 1);
		s->asked = s->covered = 0;
	}
	s->users++;
	mine = ++s->asked;
	while (s->covered < mine) {
		if (s->running) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		uint64_t upto = s->asked;
		int saved;

		s->running = 1;
		pthread_mutex_unlock(&s->mu);
		rc = sync_path(path, dir);
		saved = errno;
		pthread_mutex_lock(&s->mu);
		s->running = 0;
		if (rc == 0 && upto > s->covered)
			s->covered = upto;
		pthread_cond_broadcast(&s->cv);
		if (rc < 0) {
			errno = saved;
			break; /* our own failure; the waiters try their own fsync */
		}
	}
	s->users--;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int th_dirsync(const char *path)
{
	return shared_sync(path, 1);
}

int th_dirsync_err(const char *path, const char *name, th_error *err)
{
	if (th_dirsync(path) < 0)
		return th_error_os(err, errno, "fsync", name);
	return TH_OK;
}

int th_filesync(const char *path)
{
	return shared_sync(path, 0);
}

uint64_t th_dirsync_count(void)
{
	return atomic_load(&nsyncs);
}

void th_dirsync_set_sync(int (*fn)(int fd))
{
	sync_fn = fn ? fn : fsync;
	data_sync_fn = fn ? fn : fdatasync;
}
