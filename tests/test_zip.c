/* test_zip.c: the streaming zip writer (src/zipwrite.c) checked by other programs: every archive
 * it writes is tested by Info-ZIP's `unzip -t` and read back by Python's zipfile, entry by entry,
 * byte for byte: small and empty entries, incompressible ones, UTF-8 names, no entries at all,
 * and the ZIP64 records (forced, since a test cannot write 4 GiB). Bad entry names are refused. */
#include "harness.h"
#include "util.h"
#include "tablehub/buf.h"
#include "../src/zipwrite.h"

static char *dir;

typedef struct ent {
	const char *name;
	const char *data;
	size_t len;
} ent;

/* Write the archive of `n` entries to DIR/name, `data` fed in pieces of `piece` bytes. */
static void write_zip(const char *name, const ent *e, size_t n, int force64, size_t piece)
{
	char path[4096];
	th_buf out = TH_BUF_INIT;
	th_error err = { 0 };
	th_zipw *z = NULL;
	size_t i, off;

	CHECK_OK(th_zipw_new(&z, 6, 1700000000, force64, &err), &err);
	for (i = 0; i < n; i++) {
		CHECK_OK(th_zipw_begin(z, &out, e[i].name, &err), &err);
		for (off = 0; off < e[i].len; off += piece) {
			size_t k = e[i].len - off < piece ? e[i].len - off : piece;
			CHECK_OK(th_zipw_data(z, &out, e[i].data + off, k, &err), &err);
		}
		CHECK_OK(th_zipw_end(z, &out, &err), &err);
	}
	CHECK_OK(th_zipw_finish(z, &out, &err), &err);
	th_zipw_free(z);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	t_write_file(path, out.ptr ? out.ptr : "", out.size);
	th_buf_dispose(&out);
}

/* unzip -t passes (or says the archive is empty), and zipfile reads each entry as written. */
static void check_zip(const char *name, const ent *e, size_t n)
{
	char *out = NULL, path[4096];
	size_t i;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n > 0) {
		CHECK(t_sh(&out, "unzip -t '%s' 2>&1", path) == 0);
		CHECK_CONTAINS(out, "No errors detected");
		free(out);
	}
	for (i = 0; i < n; i++) {
		char want[4200];
		snprintf(want, sizeof(want), "%s/want-%zu", dir, i);
		t_write_file(want, e[i].data, e[i].len);
		CHECK(t_sh(&out,
		           "python3 -c 'import sys, zipfile\n"
		           "z = zipfile.ZipFile(sys.argv[1])\n"
		           "assert z.testzip() is None\n"
		           "names = [i.filename for i in z.infolist()]\n"
		           "print(len(names), names[int(sys.argv[3])])\n"
		           "sys.exit(z.read(names[int(sys.argv[3])]) != open(sys.argv[2], "
		           "\"rb\").read())"
		           "' '%s' '%s' %zu 2>&1",
		           path, want, i) == 0);
		snprintf(want, sizeof(want), "%zu %s\n", n, e[i].name);
		CHECK_STR(out, want);
		free(out);
	}
	if (n == 0) {
		CHECK(t_sh(&out,
		           "python3 -c 'import sys, zipfile; print(len(zipfile.ZipFile("
		           "sys.argv[1]).infolist()))' '%s'",
		           path) == 0);
		CHECK_STR(out, "0\n");
		free(out);
	}
}

static void test_archives(void)
{
	static char noise[300000], text[200000];
	unsigned x = 12345;
	size_t i;
	ent e[4];

	dir = t_mkdtemp();
	for (i = 0; i < sizeof(noise); i++) {
		x = x * 1103515245 + 12345;
		noise[i] = (char)(x >> 16);
	}
	for (i = 0; i < sizeof(text); i++)
		text[i] = "id,name\n1,abc\n"[i % 14];
	e[0] = (ent){ "people.csv", "id,name\n1,a\n", 12 };
	e[1] = (ent){ "empty.csv", "", 0 };
	e[2] = (ent){ "noise.bin", noise, sizeof(noise) };
	e[3] = (ent){ "caf\xc3\xa9.csv", text, sizeof(text) };
	write_zip("a.zip", e, 4, 0, 1000);
	check_zip("a.zip", e, 4);
	write_zip("b.zip", e, 4, 1, 65536); /* the ZIP64 records */
	check_zip("b.zip", e, 4);
	write_zip("c.zip", e, 0, 0, 1);
	check_zip("c.zip", e, 0);
	write_zip("d.zip", e, 0, 1, 1);
	check_zip("d.zip", e, 0);
	t_rmdir(dir);
}

static void test_bad_names(void)
{
	th_buf out = TH_BUF_INIT;
	th_error err = { 0 };
	th_zipw *z = NULL;

	CHECK_OK(th_zipw_new(&z, 1, 0, 0, &err), &err);
	CHECK(th_zipw_begin(z, &out, "", &err) == TH_EINVALID);
	CHECK(th_zipw_begin(z, &out, "/etc/passwd", &err) == TH_EINVALID);
	CHECK(th_zipw_begin(z, &out, "a/../../b", &err) == TH_EINVALID);
	CHECK_STR(err.msg, "bad zip entry name 'a/../../b'");
	CHECK_OK(th_zipw_begin(z, &out, "a.csv", &err), &err);
	CHECK(th_zipw_begin(z, &out, "b.csv", &err) == TH_EINVALID); /* a.csv is still open */
	CHECK(th_zipw_finish(z, &out, &err) == TH_EINVALID);
	th_zipw_free(z);
	th_buf_dispose(&out);
}

int main(void)
{
	RUN(test_archives);
	RUN(test_bad_names);
	TH_TEST_END();
}
