/* test_base.c: the base library: buffers, JSON string escaping, errors, uuids, hashes, the text
 * scrubbers that keep replies valid JSON and free of server paths, and shared directory fsyncs.
 * The hash vectors are the published SHA-1/SHA-256 test vectors; th_hash64's values are pinned
 * because chunk boundaries (the storage format) depend on them. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "tablehub/dirsync.h"
#include "tablehub/buf.h"
#include "tablehub/error.h"
#include "tablehub/hash.h"
#include "tablehub/ids.h"
#include "tablehub/text.h"

static void test_buf(void)
{
	th_buf b = TH_BUF_INIT;
	th_error err;
	int i;

	CHECK_OK(th_buf_puts(&b, "abc", &err), &err);
	CHECK_OK(th_buf_printf(&b, &err, "-%d-", 42), &err);
	CHECK_STR(b.ptr, "abc-42-");
	for (i = 0; i < 10000; i++)
		CHECK_OK(th_buf_putc(&b, 'x', &err), &err);
	CHECK(b.size == 7 + 10000);
	CHECK(b.ptr[b.size] == '\0');
	th_buf_clear(&b);
	CHECK(b.size == 0 && b.ptr[0] == '\0');
	CHECK_OK(th_buf_set(&b, "hello", 5, &err), &err);
	CHECK_STR(b.ptr, "hello");
	th_buf_dispose(&b);
	CHECK(b.ptr == NULL && b.size == 0);
	th_buf_dispose(NULL);
}

static void test_json_string(void)
{
	th_buf b = TH_BUF_INIT;
	th_error err;
	const char in[] = "a\"b\\c\nd\re\tf\x01g\xc3\xa9";

	CHECK_OK(th_buf_put_json_string(&b, in, sizeof(in) - 1, &err), &err);
	CHECK_STR(b.ptr, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\xc3\xa9\"");
	th_buf_clear(&b);
	CHECK_OK(th_buf_put_json_string(&b, "", 0, &err), &err);
	CHECK_STR(b.ptr, "\"\"");
	th_buf_dispose(&b);
}

static void test_error(void)
{
	th_error err;

	CHECK(th_error_set(&err, TH_EINVALID, "bad '%s'", "x") == TH_EINVALID);
	CHECK_STR(err.msg, "bad 'x'");
	CHECK(err.line == 0 && err.column == 0);
	CHECK(th_error_set_at(&err, TH_EINVALID, 3, 4, "line %d", 3) == TH_EINVALID);
	CHECK(err.line == 3 && err.column == 4);
	CHECK(th_error_set(NULL, TH_ENOMEM, "ignored") == TH_ENOMEM);
	CHECK_STR(th_code_name(TH_ENOTFOUND), "ENOTFOUND");
	CHECK_STR(th_code_name(12345), "ERROR");
	/* A system call's error names the file as given; a full disk or quota is TH_ENOSPC. */
	CHECK(th_error_os(&err, ENOSPC, "write", "tus/x.part") == TH_ENOSPC);
	CHECK_STR(err.msg, "the disk is full: cannot write 'tus/x.part'; try again once there is "
	                   "free space");
	CHECK(th_error_os(&err, EDQUOT, "create", "uploads") == TH_ENOSPC);
	CHECK(th_error_os(&err, EACCES, "open", "meta.sqlite") == TH_ESTORE);
	CHECK_STR(err.msg, "cannot open 'meta.sqlite': Permission denied");
}

static void test_uuid(void)
{
	char id[TH_UUID_SIZE];
	th_error err;

	CHECK_OK(th_uuid4(id, &err), &err);
	CHECK(th_uuid_valid(id, 1) && th_uuid_valid(id, 0));
	CHECK(th_uuid_valid("0123abcd-ef01-4567-89ab-cdef01234567", 1));
	CHECK(!th_uuid_valid("0123ABCD-ef01-4567-89ab-cdef01234567", 1));
	CHECK(th_uuid_valid("0123ABCD-ef01-4567-89ab-cdef01234567", 0));
	CHECK(!th_uuid_valid("0123abcd-ef01-4567-89ab-cdef0123456", 0));   /* short */
	CHECK(!th_uuid_valid("0123abcd-ef01-4567-89ab-cdef012345678", 0)); /* long */
	CHECK(!th_uuid_valid("0123abcd0ef01-4567-89ab-cdef01234567", 0));  /* a dash missing */
	CHECK(!th_uuid_valid("0123abcg-ef01-4567-89ab-cdef01234567", 0));  /* not hex */
	CHECK(!th_uuid_valid("", 0));
}

static void test_hashes(void)
{
	unsigned char md[32];
	char hex[65];
	th_sha1 *s1 = th_sha1_new();
	th_sha256 *s2 = th_sha256_new();

	CHECK(s1 && s2);
	th_sha1_update(s1, "ab", 2);
	th_sha1_update(s1, "c", 1);
	th_sha1_final(s1, md);
	th_hex(hex, md, 20);
	CHECK_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	th_sha1_update(s1, "abc", 3); /* reusable after final */
	th_sha1_final(s1, md);
	th_hex(hex, md, 20);
	CHECK_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	th_sha256_update(s2, "abc", 3);
	th_sha256_final(s2, md);
	th_hex(hex, md, 32);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	th_sha256_hex(hex, "", 0);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	th_sha1_free(s1);
	th_sha256_free(s2);
	/* Pinned: changing th_hash64 would move every stored chunk boundary. */
	CHECK(th_hash64("", 0) == 0xefd01f60ba992926ULL);
	CHECK(th_hash64("a", 1) == 0x82a2a958a9bece5bULL);
	CHECK(th_hash64("\x02\x80\x00\x00\x00\x00\x00\x00\x01", 9) == 0x52882e65743d19c1ULL);
	CHECK(th_hash64("tablehub", 8) == th_hash64("tablehub", 8));
}

static void test_scrub(void)
{
	char out[64], msg[256];
	size_t n;

	/* Invalid bytes become U+FFFD; valid text, multi-byte included, is kept. */
	n = th_utf8_scrub(out,
	                  "a\xff"
	                  "b\xc3\xa9\xe2\x82",
	                  8);
	out[n] = '\0';
	CHECK_STR(out, "a\xef\xbf\xbd"
	               "b\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd");
	CHECK(th_utf8_valid(out, n, NULL));
	n = th_utf8_scrub(out, "plain", 5);
	CHECK(n == 5 && memcmp(out, "plain", 5) == 0);

	snprintf(msg, sizeof(msg),
	         "cannot update branch 'x': invalid path for filesystem "
	         "'/srv/data/repos/alice/shop.git/refs/heads/x': File name too long");
	th_scrub_paths(msg);
	CHECK_STR(msg, "cannot update branch 'x': invalid path for filesystem 'refs/heads/x': File "
	               "name too long");
	snprintf(msg, sizeof(msg), "can't open '/srv/data/tmp/upload-Ab12': No space left; '/x'");
	th_scrub_paths(msg);
	CHECK_STR(msg, "can't open 'upload-Ab12': No space left; '/x'");
	snprintf(msg, sizeof(msg), "no such endpoint: GET /api/v1alpha1/a/b 'it' '/a/b.git/'");
	th_scrub_paths(msg);
	CHECK_STR(msg, "no such endpoint: GET /api/v1alpha1/a/b 'it' ''");
	CHECK_STR(th_code_name(TH_ENOSPC), "ENOSPC");

	/* Registered server folders read "<data>" wherever they stand as a path, and only there. */
	CHECK(th_redact_add("/srv/th/data/") == 0);
	CHECK(th_redact_add("d") == -1); /* too short to stand for a folder */
	snprintf(msg, sizeof(msg),
	         "serving /srv/th/data on x; cannot open '/srv/th/data/repos/a.git'"
	         " (/srv/th/data) /srv/th/database x=/srv/th/data");
	CHECK(th_redact(msg, sizeof(msg)) == 4);
	CHECK_STR(msg, "serving <data> on x; cannot open '<data>/repos/a.git' (<data>) "
	               "/srv/th/database x=<data>");
	{
		char small[16] = "/srv/th/data/abc";
		small[15] = '\0'; /* "/srv/th/data/ab" in 16 bytes: the result is cut to fit */
		CHECK(th_redact(small, sizeof(small)) == 1);
		CHECK_STR(small, "<data>/ab");
		snprintf(small, sizeof(small), "x /srv/th/data");
		CHECK(th_redact(small, 10) == 1);
		CHECK_STR(small, "x <data>");
	}
}

/* --- th_dirsync: shared fsyncs of one directory ---------------------------------------------- */

#define DS_THREADS 8
#define DS_ROUNDS 4
#define DS_MAX_SYNCS (DS_THREADS * DS_ROUNDS)

/* A logical clock: every caller's entry and exit and every fsync's start and end take a tick. */
static _Atomic unsigned ds_clock;
static unsigned ds_start[DS_MAX_SYNCS * 2], ds_end[DS_MAX_SYNCS * 2];
static _Atomic unsigned ds_nsync;
static int ds_fail;
static char ds_dir[64];

/* The fsync of the test: slow enough that callers arriving together overlap it. */
static int ds_sync(int fd)
{
	unsigned i = atomic_fetch_add(&ds_nsync, 1);

	(void)fd;
	if (i < DS_MAX_SYNCS * 2)
		ds_start[i] = atomic_fetch_add(&ds_clock, 1) + 1;
	usleep(20000);
	if (i < DS_MAX_SYNCS * 2)
		ds_end[i] = atomic_fetch_add(&ds_clock, 1) + 1;
	if (ds_fail) {
		errno = EIO;
		return -1;
	}
	return 0;
}

struct ds_caller {
	unsigned enter[DS_ROUNDS], leave[DS_ROUNDS];
	int rc[DS_ROUNDS], err[DS_ROUNDS];
};

static pthread_barrier_t ds_barrier;

static void *ds_thread(void *arg)
{
	struct ds_caller *c = arg;

	for (int r = 0; r < DS_ROUNDS; r++) {
		pthread_barrier_wait(&ds_barrier);
		c->enter[r] = atomic_fetch_add(&ds_clock, 1) + 1;
		errno = 0;
		c->rc[r] = th_dirsync(ds_dir);
		c->err[r] = errno;
		c->leave[r] = atomic_fetch_add(&ds_clock, 1) + 1;
	}
	return NULL;
}

/* Runs DS_THREADS callers, DS_ROUNDS times each all at once; returns the fsyncs made. */
static unsigned ds_run(struct ds_caller *c)
{
	pthread_t t[DS_THREADS];

	atomic_store(&ds_nsync, 0);
	pthread_barrier_init(&ds_barrier, NULL, DS_THREADS);
	for (int i = 0; i < DS_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, ds_thread, &c[i]) == 0);
	for (int i = 0; i < DS_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&ds_barrier);
	return atomic_load(&ds_nsync);
}

static void test_dirsync(void)
{
	struct ds_caller c[DS_THREADS];
	uint64_t before;
	unsigned n;

	snprintf(ds_dir, sizeof(ds_dir), "/tmp/th-dirsync-XXXXXX");
	CHECK(mkdtemp(ds_dir) != NULL);

	/* The real fsync: a directory syncs, a missing one fails with ENOENT. */
	before = th_dirsync_count();
	CHECK(th_dirsync(ds_dir) == 0);
	CHECK(th_dirsync_count() == before + 1);
	errno = 0;
	CHECK(th_dirsync("/tmp/th-dirsync-no-such-dir") == -1 && errno == ENOENT);

	/* Callers arriving together share fsyncs, and each returns only after an fsync that
	 * started after it called and ended before it returned. */
	th_dirsync_set_sync(ds_sync);
	memset(c, 0, sizeof(c));
	n = ds_run(c);
	CHECK(n >= DS_ROUNDS);
	CHECK(n <= DS_THREADS * DS_ROUNDS / 2);
	for (int i = 0; i < DS_THREADS; i++)
		for (int r = 0; r < DS_ROUNDS; r++) {
			int covered = 0;
			CHECK(c[i].rc[r] == 0);
			for (unsigned k = 0; k < n && k < DS_MAX_SYNCS * 2; k++)
				covered |= ds_start[k] > c[i].enter[r] && ds_end[k] < c[i].leave[r];
			CHECK(covered);
		}

	/* A failing fsync fails every caller with its errno; none is told it is durable. */
	ds_fail = 1;
	memset(c, 0, sizeof(c));
	ds_run(c);
	for (int i = 0; i < DS_THREADS; i++)
		for (int r = 0; r < DS_ROUNDS; r++)
			CHECK(c[i].rc[r] == -1 && c[i].err[r] == EIO);
	ds_fail = 0;
	th_dirsync_set_sync(NULL);
	CHECK(rmdir(ds_dir) == 0);
}

int main(void)
{
	RUN(test_buf);
	RUN(test_json_string);
	RUN(test_error);
	RUN(test_uuid);
	RUN(test_hashes);
	RUN(test_scrub);
	RUN(test_dirsync);
	TH_TEST_END();
}
