/* import_spill.c: an import's spill file (see import_impl.h): pass 1's rows in memory while they
 * fit, in an unlinked temporary file past that. */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "import_impl.h"

void th_import__spill_init(th_import__spill *s, const char *tmpdir)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->tmpdir = tmpdir;
}

static int write_all(int fd, const unsigned char *p, size_t n, th_error *err)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return th_error_set(err, errno == ENOSPC ? TH_ENOSPC : TH_ESTORE,
			                    "cannot write the spill file: %s",
			                    w < 0 ? strerror(errno) : "nothing written");
		p += w;
		n -= (size_t)w;
	}
	return TH_OK;
}

/* Write what mem holds to the file, creating it first. */
static int spill_flush(th_import__spill *s, th_error *err)
{
	int error;

	if (s->fd < 0 && (error = th_sorter_tmpfd(&s->fd, s->tmpdir, err)) < 0)
		return error;
	if ((error = write_all(s->fd, s->mem, s->len, err)) < 0)
		return error;
	s->len = 0;
	return TH_OK;
}

int th_import__spill_put_slow(th_import__spill *s, const void *p, size_t n, th_error *err)
{
	int error;

	if (s->mem == NULL) {
		void *m = mmap(NULL, TH_IMPORT_SPILL_MEM, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		s->mem = m;
	}
	if (n > TH_IMPORT_SPILL_MEM - s->len && (error = spill_flush(s, err)) < 0)
		return error;
	if (n > TH_IMPORT_SPILL_MEM) {
		if ((error = write_all(s->fd, p, n, err)) < 0)
			return error;
	} else {
		memcpy(s->mem + s->len, p, n);
		s->len += n;
	}
	s->size += n;
	return TH_OK;
}

int th_import__spill_rewind(th_import__spill *s, th_error *err)
{
	int error;

	s->rd = 0;
	if (s->fd < 0)
		return TH_OK;
	if (s->len > 0 && (error = spill_flush(s, err)) < 0)
		return error;
	if (lseek(s->fd, 0, SEEK_SET) != 0)
		return th_error_set(err, TH_ESTORE, "cannot read the spill file: %s",
		                    strerror(errno));
	return TH_OK;
}

int th_import__spill_read(th_import__spill *s, void *buf, size_t n, size_t *got, th_error *err)
{
	ssize_t r;

	if (s->fd < 0) {
		size_t left = s->len - s->rd;

		*got = n < left ? n : left;
		if (*got > 0)
			memcpy(buf, s->mem + s->rd, *got);
		s->rd += *got;
		return TH_OK;
	}
	do
		r = read(s->fd, buf, n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return th_error_set(err, TH_ESTORE, "cannot read the spill file: %s",
		                    strerror(errno));
	*got = (size_t)r;
	return TH_OK;
}

void th_import__spill_dispose(th_import__spill *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->mem != NULL)
		munmap(s->mem, TH_IMPORT_SPILL_MEM);
	th_import__spill_init(s, s->tmpdir);
}
