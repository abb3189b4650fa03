/* fault.c: the fault-injection hook of fault.h. Each __wrap_X is what our objects call instead of
 * X (ld --wrap=X); it asks should_fail() and either fails the way X fails or calls __real_X, which
 * is the real function (and so still ASan's interceptor under -fsanitize=address). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "fault.h"

static atomic_int armed_class = -1; /* -1 = disarmed */
static atomic_long target, calls;
static atomic_int persistent, fired;
static _Thread_local int exempt;

void th_fault_arm(th_fault_class c, long n, int persist)
{
	atomic_store(&armed_class, -1);
	atomic_store(&calls, 0);
	atomic_store(&fired, 0);
	atomic_store(&target, n);
	atomic_store(&persistent, persist);
	atomic_store(&armed_class, (int)c);
}

long th_fault_disarm(void)
{
	atomic_store(&armed_class, -1);
	return atomic_load(&calls);
}

int th_fault_fired(void)
{
	return atomic_load(&fired);
}

int th_fault_exempt(int on)
{
	int was = exempt;

	exempt = on;
	return was;
}

static int should_fail(th_fault_class c)
{
	long k;

	if (exempt || atomic_load(&armed_class) != (int)c)
		return 0;
	k = atomic_fetch_add(&calls, 1) + 1;
	if (k == atomic_load(&target) || (atomic_load(&persistent) && k > atomic_load(&target))) {
		atomic_store(&fired, 1);
		return 1;
	}
	return 0;
}

/* --- allocation ---------------------------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

#define FAIL_ALLOC()                                                                               \
	do {                                                                                       \
		if (should_fail(TH_FAULT_ALLOC)) {                                                 \
			errno = ENOMEM;                                                            \
			return NULL;                                                               \
		}                                                                                  \
	} while (0)

void *__wrap_malloc(size_t n)
{
	FAIL_ALLOC();
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	FAIL_ALLOC();
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	FAIL_ALLOC();
	return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	FAIL_ALLOC();
	return __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	FAIL_ALLOC();
	return __real_strndup(s, n);
}

/* cJSON is a shared library, so --wrap does not reach its calls: its hooks do. */
static void *cjson_malloc(size_t n)
{
	FAIL_ALLOC();
	return __real_malloc(n);
}

/* --- SQLite's allocations, through its own allocator hook ------------------------------------
 * (libgit2's hook is left alone: libgit2 1.5 itself crashes on some allocation failures, e.g. in
 * git_config_snapshot under git_reference_create_matching, which is not ours to test.) */

#define FAIL_SQLITE()                                                                              \
	do {                                                                                       \
		if (should_fail(TH_FAULT_SQLITE))                                                  \
			return NULL;                                                               \
	} while (0)

static sqlite3_mem_methods sqlite_real;

static void *sqlite_malloc(int n)
{
	FAIL_SQLITE();
	return sqlite_real.xMalloc(n);
}

static void *sqlite_realloc(void *p, int n)
{
	FAIL_SQLITE();
	return sqlite_real.xRealloc(p, n);
}

void th_fault_install(void)
{
	static sqlite3_mem_methods mem;
	cJSON_Hooks hooks = { cjson_malloc, free };

	cJSON_InitHooks(&hooks);
	/* Before SQLite is initialized: the allocator is fixed then. */
	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_real) != SQLITE_OK)
		abort();
	mem = sqlite_real;
	mem.xMalloc = sqlite_malloc;
	mem.xRealloc = sqlite_realloc;
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK)
		abort();
}

/* --- file I/O -------------------------------------------------------------------------------- */

int __real_open(const char *path, int flags, ...);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_pread(int fd, void *buf, size_t n, off_t at);
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t at);
int __real_fsync(int fd);
int __real_rename(const char *from, const char *to);
int __real_mkstemp(char *tmpl);
FILE *__real_fopen(const char *path, const char *mode);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __real_fflush(FILE *f);
int __wrap_open(const char *path, int flags, ...);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t at);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t at);
int __wrap_fsync(int fd);
int __wrap_rename(const char *from, const char *to);
int __wrap_mkstemp(char *tmpl);
FILE *__wrap_fopen(const char *path, const char *mode);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __wrap_fflush(FILE *f);

#define FAIL_IO(code, value)                                                                       \
	do {                                                                                       \
		if (should_fail(TH_FAULT_IO)) {                                                    \
			errno = (code);                                                            \
			return (value);                                                            \
		}                                                                                  \
	} while (0)

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	FAIL_IO(EIO, -1);
	return __real_open(path, flags, mode);
}

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	FAIL_IO(EIO, -1);
	return __real_read(fd, buf, n);
}

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t at)
{
	FAIL_IO(EIO, -1);
	return __real_pread(fd, buf, n, at);
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	FAIL_IO(ENOSPC, -1);
	return __real_write(fd, buf, n);
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t at)
{
	FAIL_IO(ENOSPC, -1);
	return __real_pwrite(fd, buf, n, at);
}

int __wrap_fsync(int fd)
{
	FAIL_IO(EIO, -1);
	return __real_fsync(fd);
}

int __wrap_rename(const char *from, const char *to)
{
	FAIL_IO(EIO, -1);
	return __real_rename(from, to);
}

int __wrap_mkstemp(char *tmpl)
{
	FAIL_IO(ENOSPC, -1);
	return __real_mkstemp(tmpl);
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
	FAIL_IO(EIO, NULL);
	return __real_fopen(path, mode);
}

size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	FAIL_IO(ENOSPC, 0);
	return __real_fwrite(p, size, n, f);
}

int __wrap_fflush(FILE *f)
{
	FAIL_IO(ENOSPC, EOF);
	return __real_fflush(f);
}
