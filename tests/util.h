/* util.h: helpers shared by the tests: a scratch directory per test, running a shell command and
 * capturing its output, reading and writing whole files. Everything here aborts on a failure of
 * the test machinery itself (not of the code under test). */
#ifndef TABLEHUB_TEST_UTIL_H
#define TABLEHUB_TEST_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A new empty directory under $TMPDIR (malloc'd path); removed by t_rmdir. */
static inline char *t_mkdtemp(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p = malloc(strlen(base) + 32);

	if (p == NULL)
		abort();
	sprintf(p, "%s/th-test-XXXXXX", base);
	if (mkdtemp(p) == NULL)
		abort();
	return p;
}

/* Run `fmt` through sh; capture stdout (malloc'd, NUL-terminated) into *out when out is non-NULL.
 * Returns the exit status, or -1 if it could not run. */
static inline int t_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int t_sh(char **out, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	FILE *f;
	size_t n = 0, cap = 4096;
	char *buf;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	if ((buf = malloc(cap)) == NULL)
		abort();
	for (;;) {
		size_t r;
		if (n + 1024 > cap && (buf = realloc(buf, cap *= 2)) == NULL)
			abort();
		if ((r = fread(buf + n, 1, cap - n - 1, f)) == 0)
			break;
		n += r;
	}
	buf[n] = '\0';
	st = pclose(f);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline void t_rmdir(char *path)
{
	if (path && strncmp(path, "/tmp", 4) == 0 && getenv("TH_KEEP") == NULL)
		t_sh(NULL, "rm -rf '%s'", path);
	free(path);
}

/* Write `data` to `path` (created or truncated). */
static inline void t_write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
}

/* The whole file, malloc'd and NUL-terminated, or NULL if it cannot be read. */
static inline char *t_read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if ((buf = malloc((size_t)n + 1)) == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	buf[n] = '\0';
	fclose(f);
	if (len_out)
		*len_out = (size_t)n;
	return buf;
}

#endif
