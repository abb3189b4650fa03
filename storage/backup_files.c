/* backup_files.c: the file copying of backups and restores (see backup_internal.h): each file
 * read, written and fsynced; messages name files by their place in the data directory, never by
 * the server's path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_internal.h"
#include "tablehub/text.h"

int th_backup__path_of(char *out, size_t size, const char *root, const char *rel, th_error *err)
{
	if ((size_t)snprintf(out, size, "%s/%s", root, rel) >= size)
		return th_error_set(err, TH_EINVALID, "path too long: '%s'", rel);
	return TH_OK;
}

int th_backup__exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* Copy c->src/rel to c->dst/rel (which must not exist), fsynced. When the source is missing:
 * with `vanished` set *vanished = 1 and TH_OK, else TH_ENOTFOUND. */
int th_backup__copy_file(copier *c, const char *rel, int *vanished, th_error *err)
{
	char from[4096], to[4096];
	int in = -1, out = -1, error = TH_OK;
	ssize_t n;

	if ((error = th_backup__path_of(from, sizeof(from), c->src, rel, err)) < 0 ||
	    (error = th_backup__path_of(to, sizeof(to), c->dst, rel, err)) < 0)
		return error;
	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT && vanished) {
			*vanished = 1;
			return TH_OK;
		}
		if (errno == ENOENT)
			return th_error_set(err, TH_ENOTFOUND, "'%s' is missing", rel);
		return th_error_os(err, errno, "read", rel);
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		error = th_error_os(err, errno, "create", rel);
		goto cleanup;
	}
	while ((n = read(in, c->buf, sizeof(c->buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error = th_error_os(err, errno, "read", rel);
			goto cleanup;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, c->buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				error = th_error_os(err, w < 0 ? errno : ENOSPC, "write", rel);
				goto cleanup;
			}
			done += w;
		}
		c->st.bytes += (uint64_t)n;
	}
	if (fsync(out) != 0) {
		error = th_error_os(err, errno, "write", rel);
		goto cleanup;
	}
	c->st.files++;
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && error == TH_OK)
		error = th_error_os(err, errno, "write", rel);
	if (error < 0 && out >= 0)
		unlink(to);
	return error;
}

int th_backup__make_dir(copier *c, const char *rel, th_error *err)
{
	char path[4096];
	int error;

	if ((error = th_backup__path_of(path, sizeof(path), c->dst, rel, err)) < 0)
		return error;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return th_error_os(err, errno, "create", rel);
	return TH_OK;
}

/* Remove `path` and everything under it (no symlink is followed). */
void th_backup__remove_tree(const char *path)
{
	struct stat sb;
	DIR *d;
	struct dirent *e;
	char sub[4096];

	if (lstat(path, &sb) != 0)
		return;
	if (!S_ISDIR(sb.st_mode)) {
		unlink(path);
		return;
	}
	if ((d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) <
			    sizeof(sub))
				th_backup__remove_tree(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

/* Copy the directory c->src/rel into c->dst/rel, everything under it (regular files and
 * directories; nothing else is in a data directory we wrote). */
int th_backup__copy_tree(copier *c, const char *rel, th_error *err)
{
	char path[4096], sub[4096];
	struct dirent *e;
	struct stat sb;
	DIR *d;
	int error;

	if ((error = th_backup__path_of(path, sizeof(path), c->src, rel, err)) < 0 ||
	    (error = th_backup__make_dir(c, rel, err)) < 0)
		return error;
	if ((d = opendir(path)) == NULL)
		return th_error_os(err, errno, "read", rel);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name) >= sizeof(sub)) {
			error = th_error_set(err, TH_EINVALID, "path too long in '%s'", rel);
			break;
		}
		if ((error = th_backup__path_of(path, sizeof(path), c->src, sub, err)) < 0)
			break;
		/* A file gone since the listing was a temporary one (git's info/refs_XXXXXX while
		 * a repack updates info/refs) or one removed meanwhile: nothing to copy. */
		if (lstat(path, &sb) != 0) {
			if (errno == ENOENT)
				continue;
			error = th_error_os(err, errno, "read", sub);
			break;
		}
		if (S_ISDIR(sb.st_mode)) {
			error = th_backup__copy_tree(c, sub, err);
		} else if (S_ISREG(sb.st_mode)) {
			int gone = 0;
			error = th_backup__copy_file(c, sub, &gone, err);
		}
		if (error < 0)
			break;
	}
	closedir(d);
	return error;
}
