/* tests/test_pack.c: the pack writer (storage/pack.c) and its own .idx writer against the real
 * git command line: `git verify-pack`, `git fsck --strict`, `git cat-file` and `git show-index`
 * (including the 64-bit offset table, through th_pack__idx_build), written on the adding thread
 * and by the pack's writer thread (th_pack_async). The pack benchmark prints its time and asserts
 * nothing about it. */
#include <errno.h>

#include "repo_fixture.h"
#include "tablehub/hash.h"
#include "../storage/repo_internal.h"

#define NBLOBS 3000

static size_t blob_size(int i)
{
	uint64_t s = (uint64_t)i * 2654435761u + 7;

	return 1024 + (size_t)(rng_next(&s) % (99 * 1024));
}

/* Blob i repeats blob i-7 for every 10th i: duplicates inside one pack. */
static int blob_seed(int i)
{
	return i % 10 == 9 ? i - 7 : i;
}

/* The pack of NBLOBS blobs, written on the adding thread or (async) by the pack's writer thread:
 * the same bytes either way, so the same pack name, kept in names[async] to compare. */
static char pack_names[2][128];

static void pack_blobs(int async)
{
	char *dir = t_mkdtemp(), *path, *out = NULL, name[32], hex[41];
	th_repo *r = fresh_repo(dir, &path);
	th_tree_entry *entries = calloc(NBLOBS, sizeof(*entries));
	th_oid *ids = calloc(NBLOBS, sizeof(*ids));
	unsigned char *data = malloc(100 * 1024);
	th_buf b = TH_BUF_INIT;
	th_error err = { 0 };
	th_pack *pk = NULL;
	th_oid c0, tree, commit;
	int i, bad = 0, dups = 0;

	if (entries == NULL || ids == NULL || data == NULL)
		abort();
	CHECK_OK(th_pack_new(&pk, r, 6, &err), &err);
	if (async)
		CHECK_OK(th_pack_async(pk, &err), &err);
	for (i = 0; i < NBLOBS && pk; i++) {
		int s = blob_seed(i);
		size_t len = blob_size(s);

		gen_blob(data, len, (uint64_t)s);
		CHECK_OK(th_pack_add_blob(&ids[i], pk, data, len, &err), &err);
		if (s != i) {
			dups++;
			CHECK(th_oid_equal(&ids[i], &ids[s]));
		}
	}
	CHECK(th_pack_count(pk) == (size_t)(NBLOBS - dups));
	CHECK(pack_dir_files(path) == 1); /* just the temporary pack */
	CHECK_OK(th_pack_commit(pk, &err), &err);
	CHECK(pack_dir_files(path) == 2); /* pack-<sha>.pack and .idx, no temporaries */
	CHECK(t_sh(&out, "ls '%s/objects/pack'", path) == 0);
	CHECK(out && strncmp(out, "pack-", 5) == 0 && strstr(out, ".idx\npack-") &&
	      strstr(out, ".pack\n"));
	snprintf(pack_names[async], sizeof(pack_names[async]), "%s", out ? out : "");
	free(out);

	/* Every blob reads back byte-identical, through this handle and a new one. */
	for (i = 0; i < NBLOBS; i++) {
		int s = blob_seed(i);
		size_t len = blob_size(s);

		gen_blob(data, len, (uint64_t)s);
		if (th_repo_blob_read(&b, r, &ids[i], &err) < 0 || b.size != len ||
		    memcmp(b.ptr, data, len) != 0)
			bad++;
	}
	CHECK(bad == 0);
	{
		th_repo *r2 = NULL;

		CHECK_OK(th_repo_open(&r2, path, 0, &err), &err);
		gen_blob(data, blob_size(1234), 1234);
		CHECK_OK(th_repo_blob_read(&b, r2, &ids[1234], &err), &err);
		CHECK(b.size == blob_size(1234) && memcmp(b.ptr, data, b.size) == 0);
		th_repo_free(r2);
	}

	CHECK(t_sh(&out, "git verify-pack -v '%s'/objects/pack/*.idx 2>&1", path) == 0);
	CHECK_CONTAINS(out, ": ok");
	CHECK_CONTAINS(out, "non delta: 2700 objects");
	free(out);

	/* A tree and commit of them on main: git fsck finds nothing wrong. */
	for (i = 0; i < NBLOBS; i++) {
		snprintf(name, sizeof(name), "blob-%04d", i);
		entries[i].name = strdup(name);
		entries[i].oid = ids[i];
		entries[i].is_tree = 0;
	}
	CHECK_OK(th_repo_tree_write(&tree, r, entries, NBLOBS, &err), &err);
	CHECK_OK(th_repo_branch_get(&c0, r, "main", &err), &err);
	CHECK_OK(th_repo_commit_write(&commit, r, &tree, &c0, 1, "alice", "alice@tablehub.local",
	                              "import 3000 blobs\n", &err),
	         &err);
	CHECK_OK(th_repo_branch_cas(r, "main", &commit, &c0, "import", &err), &err);
	CHECK(t_sh(&out, "git -C '%s' fsck --full --strict 2>&1", path) == 0);
	CHECK(out && strstr(out, "error") == NULL && strstr(out, "dangling") == NULL);
	free(out);
	CHECK(t_sh(&out, "git -C '%s' cat-file -p 'main^{tree}'", path) == 0);
	CHECK(out && count_lines(out) == NBLOBS);
	{
		char line[128];

		th_oid_fmt(hex, &ids[2999]);
		snprintf(line, sizeof(line), "100644 blob %s\tblob-2999\n", hex);
		CHECK_CONTAINS(out, line);
		th_oid_fmt(hex, &ids[9]); /* a duplicate of blob 2 */
		snprintf(line, sizeof(line), "100644 blob %s\tblob-0009\n", hex);
		CHECK_CONTAINS(out, line);
	}
	free(out);
	th_oid_fmt(hex, &ids[17]);
	gen_blob(data, blob_size(17), 17);
	CHECK(t_sh(&out, "git -C '%s' cat-file -p %s", path, hex) == 0);
	CHECK(out && memcmp(out, data, blob_size(17)) == 0);
	free(out);

	/* A second pack of the same blobs writes nothing: they are in the repository. */
	pk = NULL;
	CHECK_OK(th_pack_new(&pk, r, 1, &err), &err);
	for (i = 0; i < 20 && pk; i++) {
		th_oid id;

		int s = blob_seed(i);

		gen_blob(data, blob_size(s), (uint64_t)s);
		CHECK_OK(th_pack_add_blob(&id, pk, data, blob_size(s), &err), &err);
		CHECK(th_oid_equal(&id, &ids[i]));
	}
	CHECK(th_pack_count(pk) == 0);
	CHECK_OK(th_pack_commit(pk, &err), &err);
	CHECK(pack_dir_files(path) == 2);

	for (i = 0; i < NBLOBS; i++)
		free(entries[i].name);
	free(entries);
	free(ids);
	free(data);
	th_buf_dispose(&b);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

static void test_pack(void)
{
	pack_blobs(0);
	pack_blobs(1);
	CHECK(pack_names[0][0] != '\0');
	CHECK_STR(pack_names[1], pack_names[0]);
}

/* An async pack abandoned with objects still queued leaves no file behind. */
static void test_pack_async_abandon(void)
{
	char *dir = t_mkdtemp(), *path;
	th_repo *r = fresh_repo(dir, &path);
	unsigned char *data = malloc(100 * 1024);
	th_error err = { 0 };
	th_pack *pk = NULL;
	th_oid id;

	if (data == NULL)
		abort();
	CHECK_OK(th_pack_new(&pk, r, 9, &err), &err);
	CHECK_OK(th_pack_async(pk, &err), &err);
	for (int i = 0; i < 200; i++) {
		gen_blob(data, 100 * 1024, (uint64_t)i);
		CHECK_OK(th_pack_add_blob(&id, pk, data, 100 * 1024, &err), &err);
	}
	CHECK(th_pack_count(pk) == 200);
	th_pack_free(pk);
	CHECK(pack_dir_files(path) == 0);
	free(data);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

/* Blobs that already exist as loose objects are not packed again; an empty pack leaves no file. */
static void test_pack_existing_loose(void)
{
	char *dir = t_mkdtemp(), *path;
	th_repo *r = fresh_repo(dir, &path);
	th_error err = { 0 };
	th_pack *pk = NULL;
	th_buf b = TH_BUF_INIT;
	th_oid a, b1, id;

	CHECK_OK(th_repo_blob_write(&a, r, "loose one\n", 10, &err), &err);
	CHECK_OK(th_repo_blob_write(&b1, r, "loose two\n", 10, &err), &err);
	CHECK_OK(th_pack_new(&pk, r, 1, &err), &err);
	CHECK_OK(th_pack_add_blob(&id, pk, "loose one\n", 10, &err), &err);
	CHECK(th_oid_equal(&id, &a));
	CHECK_OK(th_pack_add_blob(&id, pk, "loose two\n", 10, &err), &err);
	CHECK(th_oid_equal(&id, &b1));
	CHECK(th_pack_count(pk) == 0);
	CHECK_OK(th_pack_commit(pk, &err), &err);
	CHECK(pack_dir_files(path) == 0);

	/* Abandoning a pack removes its temporary file. */
	pk = NULL;
	CHECK_OK(th_pack_new(&pk, r, 1, &err), &err);
	CHECK_OK(th_pack_add_blob(&id, pk, "new\n", 4, &err), &err);
	CHECK(th_pack_count(pk) == 1);
	CHECK(pack_dir_files(path) == 1);
	th_pack_free(pk);
	th_pack_free(NULL);
	CHECK(pack_dir_files(path) == 0);
	CHECK(!th_repo_exists(r, &id));

	/* A one-object pack with an empty blob. */
	pk = NULL;
	CHECK_OK(th_pack_new(&pk, r, 9, &err), &err);
	CHECK_OK(th_pack_add_blob(&id, pk, "", 0, &err), &err);
	CHECK_OK(th_pack_commit(pk, &err), &err);
	CHECK(th_repo_exists(r, &id));
	CHECK_OK(th_repo_blob_read(&b, r, &id, &err), &err);
	CHECK(b.size == 0);
	CHECK(t_sh(NULL, "git verify-pack '%s'/objects/pack/*.idx 2>&1", path) == 0);
	th_buf_dispose(&b);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

/* A batch (th_repo_batch_begin): a blob, a tree and a commit are held in memory, readable through
 * the handle only, no loose object is written; moving the branch writes them as one pack first,
 * which git reads and fsck passes. A tag is written past the batch. Objects never flushed vanish
 * with the handle. */
#define LOOSE "find '%s'/objects -path '*/objects/[0-9a-f][0-9a-f]/*' -type f | wc -l"

static void test_batch(void)
{
	char *dir = t_mkdtemp(), *path, *out = NULL;
	th_repo *r = fresh_repo(dir, &path), *r2 = NULL;
	th_error err = { 0 };
	th_buf b = TH_BUF_INIT;
	th_tree_entry e;
	th_oid blob, tree, commit, c0, lost;
	int loose;

	CHECK(t_sh(&out, LOOSE, path) == 0);
	loose = out ? atoi(out) : -1;
	free(out);
	CHECK_OK(th_repo_batch_begin(r, &err), &err);
	CHECK_OK(th_repo_batch_begin(r, &err), &err); /* idempotent */
	CHECK_OK(th_repo_blob_write(&blob, r, "held row\n", 9, &err), &err);
	memset(&e, 0, sizeof(e));
	e.name = "rows";
	e.oid = blob;
	CHECK_OK(th_repo_tree_write(&tree, r, &e, 1, &err), &err);
	CHECK_OK(th_repo_branch_get(&c0, r, "main", &err), &err);
	CHECK_OK(th_repo_commit_write(&commit, r, &tree, &c0, 1, "alice", "alice@tablehub.local",
	                              "held\n", &err),
	         &err);
	CHECK_OK(th_repo_blob_read(&b, r, &blob, &err), &err);
	CHECK(b.size == 9 && memcmp(b.ptr, "held row\n", 9) == 0);
	CHECK(t_sh(&out, LOOSE, path) == 0);
	CHECK(out && loose > 0 && atoi(out) == loose); /* the first commit's only */
	free(out);
	CHECK_OK(th_repo_open(&r2, path, 0, &err), &err);
	CHECK(!th_repo_exists(r2, &commit));
	th_repo_free(r2);
	CHECK(pack_dir_files(path) == 0);

	CHECK_OK(th_repo_branch_cas(r, "main", &commit, &c0, "batch", &err), &err);
	CHECK(pack_dir_files(path) == 2); /* one .pack and its .idx */
	CHECK(t_sh(&out, "git verify-pack -v '%s'/objects/pack/*.idx 2>&1", path) == 0);
	CHECK_CONTAINS(out, "non delta: 3 objects");
	free(out);
	CHECK(t_sh(&out, "git -C '%s' fsck --full --strict 2>&1", path) == 0);
	CHECK(out && strstr(out, "error") == NULL && strstr(out, "missing") == NULL);
	free(out);
	CHECK(t_sh(&out, "git -C '%s' cat-file -p main:rows", path) == 0);
	CHECK(out && strcmp(out, "held row\n") == 0);
	free(out);

	/* A tag: its object is loose at once, so the tag ref never names a held object. */
	CHECK_OK(th_repo_tag_create(r, "v1", &commit, "alice", "alice@tablehub.local", "one\n",
	                            &err),
	         &err);
	CHECK(t_sh(&out, "git -C '%s' cat-file -t v1", path) == 0);
	CHECK(out && strcmp(out, "tag\n") == 0);
	free(out);

	/* Held and never flushed: gone with the handle, nothing on disk. */
	CHECK_OK(th_repo_blob_write(&lost, r, "never named\n", 12, &err), &err);
	CHECK(th_repo_exists(r, &lost));
	th_repo_free(r);
	CHECK_OK(th_repo_open(&r2, path, 0, &err), &err);
	CHECK(!th_repo_exists(r2, &lost));
	CHECK(pack_dir_files(path) == 2);
	th_repo_free(r2);
	th_buf_dispose(&b);
	free(path);
	t_rmdir(dir);
}

/* The .idx writer's large-offset table (offsets >= 2^31), read back by git show-index. */
static void test_idx_large_offsets(void)
{
	char *dir = t_mkdtemp(), f[4096], *out = NULL, line[128], hex[41];
	static const uint64_t offs[4] = { 12, 0x7fffffffu, 0x80000000u, 0x123456789ull };
	th_pack_entry e[4];
	unsigned char sum[20], *idx = NULL;
	th_error err = { 0 };
	size_t len = 0;
	int i;

	memset(e, 0, sizeof(e));
	memset(sum, 0xab, sizeof(sum));
	for (i = 0; i < 4; i++) {
		e[i].oid[0] = (unsigned char)(0x10 * (i + 1));
		e[i].oid[19] = (unsigned char)i;
		e[i].crc = 0xdeadbe00u + (uint32_t)i;
		e[i].offset = offs[i];
	}
	CHECK_OK(th_pack__idx_build(&idx, &len, e, 4, sum, &err), &err);
	CHECK(len == 8 + 1024 + 4 * 28 + 2 * 8 + 40);
	snprintf(f, sizeof(f), "%s/x.idx", dir);
	t_write_file(f, (const char *)idx, len);
	CHECK(t_sh(&out, "git show-index < '%s' 2>&1", f) == 0);
	for (i = 0; i < 4; i++) {
		th_hex(hex, e[i].oid, 20);
		snprintf(line, sizeof(line), "%llu %s (%08x)\n", (unsigned long long)offs[i], hex,
		         e[i].crc);
		CHECK_CONTAINS(out, line);
	}
	CHECK(out && count_lines(out) == 4);
	free(out);
	free(idx);
	t_rmdir(dir);
}

/* Not a check: the time to pack ~110 MB of ~64 KiB row-like chunks at zlib level 1. */
static void bench_pack(void)
{
	char *dir = t_mkdtemp(), *path;
	th_repo *r = fresh_repo(dir, &path);
	size_t total = 110u * 1000 * 1000, off = 0, n = 0;
	unsigned char *data = malloc(total);
	th_error err = { 0 };
	th_pack *pk = NULL;
	double t0, t1;

	if (data == NULL)
		abort();
	gen_blob(data, total, 1); /* odd seed: text rows */
	t0 = now_s();
	CHECK_OK(th_pack_new(&pk, r, 1, &err), &err);
	while (off < total && pk) {
		size_t len = 48 * 1024 + (n * 7919) % (32 * 1024);
		th_oid id;

		if (len > total - off)
			len = total - off;
		CHECK_OK(th_pack_add_blob(&id, pk, data + off, len, &err), &err);
		off += len;
		n++;
	}
	CHECK_OK(th_pack_commit(pk, &err), &err);
	t1 = now_s();
	printf("pack: %zu MB in %.2f s (%zu blobs, zlib level 1)\n", total / 1000000, t1 - t0, n);
	free(data);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

int main(void)
{
	th_error err = { 0 };

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "th_repo_global_init: %s\n", err.msg);
		return 1;
	}
	RUN(test_pack);
	RUN(test_pack_async_abandon);
	RUN(test_pack_existing_loose);
	RUN(test_batch);
	RUN(test_idx_large_offsets);
	RUN(bench_pack);
	th_repo_global_shutdown();
	TH_TEST_END();
}
