/* datadir.c: creating a data directory and holding its write lock. The lock is an flock on
 * DIR/LOCK, which the kernel releases when the process dies, so a crash never leaves the data dir
 * locked; the holder writes its pid into the file so a refusal can say who holds it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tablehub/datadir.h"
#include "tablehub/text.h"

int th_mkdir_p(const char *path, th_error *err)
{
	char tmp[4096];
	size_t i, len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return th_error_set(err, TH_EINVALID, "bad directory '%s'", path);
	memcpy(tmp, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return th_error_set(err, TH_ESTORE, "cannot create directory '%s': %s", tmp,
			                    strerror(errno));
		if (i < len)
			tmp[i] = '/';
	}
	return TH_OK;
}

int th_datadir_init(const char *dir, th_error *err)
{
	static const char *subdirs[] = { "repos", "uploads", "cache", "tmp" };
	char path[4096];
	size_t i;
	int error;

	if ((error = th_mkdir_p(dir, err)) < 0)
		return error;
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		if ((error = th_mkdir_p(path, err)) < 0)
			return error;
	}
	return TH_OK;
}

int th_datadir_lock(int *fd_out, const char *dir, th_error *err)
{
	char path[4096], pid[32];
	int fd, error, n;

	if ((error = th_datadir_init(dir, err)) < 0)
		return error;
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return th_error_set(err, TH_ESTORE, "cannot open '%s': %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (saved == EWOULDBLOCK)
			return th_error_set(err, TH_EBUSY,
			                    "data dir '%s' is in use by another tablehub process "
			                    "(pid %s); stop it, or use another --data",
			                    dir, pid[0] ? pid : "unknown");
		return th_error_set(err, TH_ESTORE, "cannot lock '%s': %s", path, strerror(saved));
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		close(fd);
		return th_error_set(err, TH_ESTORE, "cannot write '%s': %s", path, strerror(errno));
	}
	*fd_out = fd;
	return TH_OK;
}

void th_datadir_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int th_datadir_repo_path(th_buf *out, const char *dir, const char *owner, const char *db,
                         th_error *err)
{
	return th_buf_printf(out, err, "%s/repos/%s/%s.git", dir, owner, db);
}

int th_datadir_repo_open(th_repo **out, const char *dir, const char *owner, const char *db,
                         int writer, th_error *err)
{
	th_buf path = TH_BUF_INIT;
	int error;

	if (!th_name_valid(owner) || !th_name_valid(db))
		return th_error_set(err, TH_EINVALID,
		                    "bad database name '%s/%s': each part is 1-64 of [A-Za-z0-9_-]",
		                    owner ? owner : "", db ? db : "");
	if ((error = th_datadir_repo_path(&path, dir, owner, db, err)) == TH_OK &&
	    (error = th_repo_open(out, path.ptr, writer, err)) == TH_ENOTFOUND)
		error = th_error_set(err, TH_ENOTFOUND, "database '%s/%s' not found", owner, db);
	th_buf_dispose(&path);
	return error;
}
