/* test_repack.c: repacking repositories off the request path: the object counts
 * (th_repo_objstats_read, checked against `git count-objects -v`), th_repo_gc (git gc on a
 * repository of many small commits: one pack left, `git fsck --strict` clean, every table of every
 * branch reading back the same; a stop kills it and leaves the repository whole; a failure names
 * no path), and the queue that counts after each write and queues a "repack" operation past a
 * threshold, once per database. */
#include <fcntl.h>
#include <stdint.h>
#include <time.h>

#include "harness.h"
#include "util.h"
#include "dump.h"
#include "tablehub/datadir.h"
#include "tablehub/files.h"
#include "tablehub/import.h"
#include "tablehub/jobs.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"
#include "tablehub/meta_control.h"
#include "tablehub/repo_maint.h"

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* One small import of `csv` as a new table on branch `branch` of the repository at `path`. */
static void small_import(const char *path, const char *dir, const char *branch, const char *table,
                         const char *csv)
{
	const char *pk[] = { "id" };
	char file[600];
	th_repo *repo = NULL;
	th_import_opts o;
	th_import_result res;
	th_error err;
	int fd;

	snprintf(file, sizeof(file), "%s/in.csv", dir);
	t_write_file(file, csv, strlen(csv));
	memset(&o, 0, sizeof(o));
	o.table = table;
	o.op = TH_OP_CREATE;
	o.pk = pk;
	o.npk = 1;
	o.branch = branch;
	o.tmpdir = dir;
	if ((fd = open(file, O_RDONLY)) < 0 || th_repo_open(&repo, path, 1, &err) < 0 ||
	    th_import_fd(&res, repo, fd, &o, &err) < 0) {
		fprintf(stderr, "small_import: %s\n", err.msg);
		abort();
	}
	close(fd);
	th_repo_free(repo);
}

/* `git count-objects -v`'s "count" (loose objects) and "packs". */
static void git_counts(const char *path, long *loose, long *packs)
{
	char *out = NULL, *p;

	*loose = *packs = -1;
	if (t_sh(&out, "git -C '%s' count-objects -v", path) != 0)
		abort();
	if ((p = strstr(out, "count: ")) != NULL)
		*loose = atol(p + 7);
	if ((p = strstr(out, "packs: ")) != NULL)
		*packs = atol(p + 7);
	free(out);
}

static int stop_now(void *payload, th_error *err)
{
	(void)payload;
	return th_error_set(err, TH_ECONFLICT, "stop now");
}

static void test_gc(void)
{
	char *dir = t_mkdtemp(), path[600], csv[256], *before, *after, *out = NULL;
	th_repo_objstats st;
	th_error err;
	long loose, packs;

	snprintf(path, sizeof(path), "%s/repo.git", dir);
	CHECK(th_repo_objstats_read(&st, path, &err) == TH_ENOTFOUND);
	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	{
		th_repo *r = NULL;
		th_oid head;
		CHECK_OK(th_repo_open(&r, path, 1, &err), &err);
		CHECK_OK(th_repo_branch_get(&head, r, "main", &err), &err);
		CHECK_OK(th_repo_branch_cas(r, "dev", &head, NULL, "dev", &err), &err);
		th_repo_free(r);
	}
	for (int i = 0; i < 30; i++) {
		char table[16];
		snprintf(table, sizeof(table), "t%d", i);
		snprintf(csv, sizeof(csv), "id,name\n%d,row %d\n%d,other %d\n", i, i, i + 100, i);
		small_import(path, dir, i % 2 ? "main" : "dev", table, csv);
	}
	/* An object nothing refers to (as a failed import leaves): gone after the repack. */
	{
		th_repo *r = NULL;
		th_oid blob;
		CHECK_OK(th_repo_open(&r, path, 1, &err), &err);
		CHECK_OK(th_repo_blob_write(&blob, r, "unreferenced\n", 13, &err), &err);
		th_repo_free(r);
	}
	CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
	git_counts(path, &loose, &packs);
	CHECK(st.loose > 100 && (long)st.loose == loose);
	CHECK(st.packs == 0 && packs == 0);
	before = t_dump_repo(path);
	CHECK(before != NULL && strstr(before, "== t29\n") != NULL);

	/* Stopped at once: git is killed, the repository is as it was or repacked, never broken. */
	CHECK(th_repo_gc(path, 0, stop_now, NULL, &err) == TH_ECONFLICT);
	CHECK_STR(err.msg, "stop now");
	CHECK(t_sh(NULL, "git -C '%s' fsck --strict 2>&1", path) == 0);

	/* The lock file of a gc killed past its grace (as a crash leaves it) does not block the
	 * next gc. */
	CHECK(t_sh(NULL, "echo 1 > '%s/gc.pid.lock'", path) == 0);
	CHECK_OK(th_repo_gc(path, 0, NULL, NULL, &err), &err);
	CHECK(t_sh(NULL, "test -e '%s/gc.pid.lock'", path) != 0);
	CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
	git_counts(path, &loose, &packs);
	CHECK(st.loose == 0 && loose == 0);
	CHECK(st.packs == 1 && packs == 1);
	CHECK(t_sh(&out, "git -C '%s' fsck --strict 2>&1", path) == 0);
	CHECK_STR(out, "");
	free(out);
	after = t_dump_repo(path);
	CHECK(after != NULL && before != NULL && strcmp(before, after) == 0);
	/* Refs were packed, and libgit2 still moves them. */
	CHECK(t_sh(NULL, "test -s '%s/packed-refs'", path) == 0);
	small_import(path, dir, "main", "later", "id\n1\n");
	CHECK(t_sh(NULL, "git -C '%s' fsck --strict 2>&1", path) == 0);
	free(before);
	free(after);

	/* Keeping what is unreachable (a fork's parent): one pack, nothing deleted. */
	{
		th_repo *r = NULL;
		th_oid blob;
		char hex[41];
		CHECK_OK(th_repo_open(&r, path, 1, &err), &err);
		CHECK_OK(th_repo_blob_write(&blob, r, "kept\n", 5, &err), &err);
		th_repo_free(r);
		th_oid_fmt(hex, &blob);
		CHECK_OK(th_repo_gc(path, 1, NULL, NULL, &err), &err);
		CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
		CHECK(st.loose == 0 && st.packs == 1);
		CHECK(t_sh(NULL, "git -C '%s' cat-file -e %s", path, hex) == 0);
	}

	/* git's failure: its exit status, never the path. */
	snprintf(path, sizeof(path), "%s/not-a-repo", dir);
	CHECK(t_sh(NULL, "mkdir -p '%s/objects'", path) == 0);
	CHECK(th_repo_gc(path, 0, NULL, NULL, &err) == TH_ESTORE);
	CHECK_CONTAINS(err.msg, "git gc failed (exit status");
	CHECK(th_repo_gc(path, 1, NULL, NULL, &err) == TH_ESTORE);
	CHECK_CONTAINS(err.msg, "git repack failed (exit status");
	CHECK(strstr(err.msg, dir) == NULL);
	t_rmdir(dir);
}

/* Write `n` blobs "<tag> <i>" (each after `pad` bytes of shared text, so git finds deltas) with
 * git into one new pack (`git pack-objects`, then `git prune-packed` drops them loose). */
static void git_pack_blobs(const char *path, const char *tag, int n, int pad)
{
	CHECK(t_sh(NULL,
	           "cd '%s' && for i in $(seq %d); do (head -c %d /dev/zero | tr '\\0' x; "
	           "echo '%s' $i) | git hash-object -w --stdin; done | "
	           "git pack-objects -q objects/pack/pack >/dev/null && git prune-packed",
	           path, n, pad, tag) == 0);
}

/* Object count of the pack whose index is `idx`, -1 if none. */
static long idx_objects(const char *path, const char *idx)
{
	char *out = NULL;
	long n = -1;

	if (t_sh(&out, "git show-index < '%s/objects/pack/%s' | wc -l", path, idx) == 0)
		n = atol(out);
	free(out);
	return n;
}

/* The roll-up: the small packs and the loose objects join one pack, copied byte for byte (deltas
 * stay deltas), a larger pack in progression and a kept pack stay, a pack with an object already
 * copied is written object by object, every object reads back, and a corrupt pack stops it with
 * nothing deleted. */
static void test_rollup(void)
{
	char *dir = t_mkdtemp(), path[600], *out = NULL, *big = NULL, *keep = NULL, *all = NULL;
	th_repo_objstats st;
	th_error err;

	long first;

	snprintf(path, sizeof(path), "%s/repo.git", dir);
	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	/* The first commit's two loose objects: packed on their own. */
	CHECK_OK(th_repo_rollup(path, NULL, NULL, &err), &err);
	CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
	CHECK(st.packs == 1 && st.loose == 0);
	CHECK(t_sh(&out, "cd '%s/objects/pack' && cat pack-*.idx | git show-index | wc -l", path) ==
	      0);
	first = out ? atol(out) : 0;
	free(out);
	CHECK(first == 2);
	/* One pack, nothing loose: nothing to join, nothing written. */
	CHECK(t_sh(&all, "ls '%s/objects/pack'", path) == 0);
	CHECK_OK(th_repo_rollup(path, NULL, NULL, &err), &err);
	CHECK(t_sh(&out, "ls '%s/objects/pack'", path) == 0);
	CHECK(all != NULL && out != NULL && strcmp(all, out) == 0);
	free(all);
	free(out);
	all = NULL;

	git_pack_blobs(path, "big", 60, 3000); /* one pack of 60 similar blobs, with deltas */
	CHECK(t_sh(&big, "cd '%s/objects/pack' && ls -t pack-*.idx | head -n1 | tr -d '\\n'",
	           path) == 0);
	CHECK(t_sh(NULL, "git -C '%s' verify-pack -v objects/pack/%s | grep -q 'chain length'",
	           path, big) == 0);
	git_pack_blobs(path, "kept", 2, 10);
	CHECK(t_sh(&keep, "cd '%s/objects/pack' && ls -t pack-*.idx | head -n1 | tr -d '\\n'",
	           path) == 0);
	CHECK(t_sh(NULL, "cd '%s/objects/pack' && touch $(basename %s .idx).keep", path, keep) ==
	      0);
	git_pack_blobs(path, "one", 3, 10);
	git_pack_blobs(path, "two", 3, 10);
	/* A pack holding one of two's objects again, as two imports writing the same blob at once
	 * leave. */
	CHECK(t_sh(NULL,
	           "cd '%s' && ((head -c 10 /dev/zero | tr '\\0' x; echo 'two 3') | git "
	           "hash-object "
	           "--stdin; for i in 1 2; do echo three "
	           "$i | git hash-object -w --stdin; done) | git pack-objects -q objects/pack/pack "
	           ">/dev/null && git prune-packed",
	           path) == 0);
	CHECK(t_sh(NULL,
	           "cd '%s' && echo loose 1 | git hash-object -w --stdin >/dev/null && "
	           "echo loose 2 | git hash-object -w --stdin >/dev/null",
	           path) == 0);
	CHECK(t_sh(&all, "git -C '%s' cat-file --batch-all-objects --batch-check | sort", path) ==
	      0);
	CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
	CHECK(st.packs == 6 && st.loose == 2);

	/* Stopped before the first pack: nothing changes. */
	CHECK(th_repo_rollup(path, stop_now, NULL, &err) == TH_ECONFLICT);
	CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
	CHECK(st.packs == 6 && st.loose == 2);

	/* The first commit's, 3, 3 and 3 objects join with the 2 loose ones (one duplicate); 60 is
	 * more than twice that and stays, and so does the kept pack. */
	CHECK_OK(th_repo_rollup(path, NULL, NULL, &err), &err);
	CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
	CHECK(st.packs == 3 && st.loose == 0);
	CHECK(idx_objects(path, big) == 60);
	CHECK(idx_objects(path, keep) == 2);
	CHECK(t_sh(&out,
	           "cd '%s/objects/pack' && for f in pack-*.idx; do [ $f = %s ] || [ $f = %s ] || "
	           "git show-index < $f | wc -l; done",
	           path, big, keep) == 0);
	CHECK(out != NULL && atol(out) == first + 10);
	free(out);
	CHECK(t_sh(&out, "git -C '%s' fsck --strict --no-dangling 2>&1", path) == 0);
	CHECK_STR(out, "");
	free(out);
	CHECK(t_sh(&out, "git -C '%s' cat-file --batch-all-objects --batch-check | sort", path) ==
	      0);
	CHECK(all != NULL && out != NULL && strcmp(all, out) == 0);
	free(out);
	CHECK(t_sh(&out, "git -C '%s' cat-file -p $(echo loose 2 | git hash-object --stdin)",
	           path) == 0);
	CHECK_STR(out, "loose 2\n");
	free(out);
	CHECK(t_sh(NULL, "ls '%s'/objects/pack | grep -q tmp_", path) != 0);

	/* 40 more: now 12, 40 and 60 are no progression, and all three join, the deltas kept. */
	git_pack_blobs(path, "forty", 40, 10);
	CHECK_OK(th_repo_rollup(path, NULL, NULL, &err), &err);
	CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
	CHECK(st.packs == 2);
	CHECK(t_sh(&out,
	           "cd '%s/objects/pack' && for f in pack-*.idx; do [ $f = %s ] || "
	           "git show-index < $f | wc -l; done",
	           path, keep) == 0);
	CHECK(out != NULL && atol(out) == first + 110);
	free(out);
	CHECK(t_sh(NULL,
	           "cd '%s' && git verify-pack -v $(ls objects/pack/pack-*.idx | grep -v %s) | "
	           "grep -q 'chain length = 1'",
	           path, keep) == 0);
	CHECK(t_sh(&out, "git -C '%s' fsck --strict --no-dangling 2>&1", path) == 0);
	CHECK_STR(out, "");
	free(out);

	/* A corrupt byte in a pack to join: an error naming no path, nothing deleted. */
	git_pack_blobs(path, "five", 5, 10);
	git_pack_blobs(path, "six", 5, 10);
	CHECK(t_sh(NULL,
	           "cd '%s/objects/pack' && f=$(ls -t pack-*.pack | head -n1) && chmod u+w $f && "
	           "printf '\\377\\377' | dd of=$f bs=1 seek=16 conv=notrunc 2>/dev/null",
	           path) == 0);
	CHECK(th_repo_rollup(path, NULL, NULL, &err) == TH_ESTORE);
	CHECK_CONTAINS(err.msg, "corrupt");
	CHECK(strstr(err.msg, dir) == NULL);
	CHECK_OK(th_repo_objstats_read(&st, path, &err), &err);
	CHECK(st.packs == 4);
	CHECK(t_sh(NULL, "ls '%s'/objects/pack | grep -q tmp_", path) != 0);
	CHECK(t_sh(NULL, "git -C '%s' cat-file -e $(echo loose 1 | git hash-object --stdin)",
	           path) == 0);
	free(big);
	free(keep);
	free(all);
	t_rmdir(dir);
}

/* --- the queue ------------------------------------------------------------------------------- */

static void enqueue(char id[TH_UUID_SIZE], th_meta *m, const char *dir, const char *table,
                    const char *csv)
{
	const char *pk[] = { "id" };
	th_import_params p;
	th_upload *u = NULL;
	th_error err;
	char sha[65];
	uint64_t size;

	if (th_upload_begin(&u, dir, 1 << 20, &err) < 0 ||
	    th_upload_write(u, csv, strlen(csv), &err) < 0 ||
	    th_upload_finish(u, sha, &size, &err) < 0)
		abort();
	memset(&p, 0, sizeof(p));
	p.owner = "alice";
	p.db = "museums";
	p.creator = "bob";
	p.upload_sha256 = sha;
	p.bytes_total = size;
	p.file_name = "in.csv";
	p.table_name = table;
	p.op = TH_OP_CREATE;
	p.format = th_format_find("Csv");
	p.pk = pk;
	p.npk = 1;
	if (th_jobs_enqueue_import(id, m, &p, &err) < 0)
		abort();
}

static int wait_done(th_op_info *out, th_meta *m, const char *id)
{
	th_error err;

	for (int i = 0; i < 3000; i++) {
		if (th_meta_op_get(out, m, id, &err) < 0)
			return -1;
		if (out->state == TH_OPSTATE_COMPLETED || out->state == TH_OPSTATE_FAILED)
			return 0;
		th_op_info_dispose(out);
		sleep_ms(20);
	}
	return -1;
}

/* Imports run one after another; past the threshold the queue adds one repack, which leaves one
 * pack and the same tables. */
static void test_queued_repack(void)
{
	char *dir = t_mkdtemp(), ids[12][TH_UUID_SIZE], *before = NULL, *after = NULL;
	th_buf path = TH_BUF_INIT;
	th_meta *m = NULL;
	th_jobs *j = NULL;
	th_error err;
	th_op_info op;
	th_op_list l = { NULL, 0 };
	th_repo_objstats st;
	int queued = -1;

	CHECK_OK(th_datadir_init(dir, &err), &err);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "museums", "", 0, &err), &err);
	CHECK_OK(th_datadir_repo_path(&path, dir, "alice", "museums", &err), &err);
	CHECK_OK(th_repo_create(path.ptr, "alice", &err), &err);

	/* Without thresholds, no repack. */
	CHECK_OK(th_jobs_start(&j, dir, m, 1, &err), &err);
	for (int i = 0; i < 10; i++) {
		char table[16], csv[128];
		snprintf(table, sizeof(table), "t%d", i);
		snprintf(csv, sizeof(csv), "id,name\n%d,row %d\n", i, i);
		enqueue(ids[i], m, dir, table, csv);
	}
	th_jobs_wake(j);
	for (int i = 0; i < 10; i++) {
		if (wait_done(&op, m, ids[i]) == 0) {
			CHECK(op.state == TH_OPSTATE_COMPLETED);
			th_op_info_dispose(&op);
		} else {
			CHECK(0);
		}
	}
	th_jobs_stop(j);
	CHECK_OK(th_meta_op_list_db(&l, NULL, m, "alice", "museums", "repack", NULL, 0, &err),
	         &err);
	CHECK(l.n == 0);
	th_op_list_dispose(&l);
	/* Each import's new objects went to disk as one pack (a job's batch, repo.h). */
	CHECK_OK(th_repo_objstats_read(&st, path.ptr, &err), &err);
	CHECK(st.packs == 10);
	before = t_dump_repo(path.ptr);

	/* Below the threshold, nothing is queued; at it, one repack, and only one. */
	CHECK_OK(
	        th_repack_maybe_enqueue(&queued, m, dir, "alice", "museums", 0, st.packs + 1, &err),
	        &err);
	CHECK(queued == 0);
	CHECK_OK(th_repack_maybe_enqueue(&queued, m, dir, "alice", "museums", 0, 0, &err), &err);
	CHECK(queued == 0);
	CHECK(th_repack_maybe_enqueue(&queued, m, dir, "alice", "nosuchdb", 1, 1, &err) ==
	      TH_ENOTFOUND);

	/* With a threshold the next write queues a repack, which the pool runs: few loose objects,
	 * so it rolls the small packs up (deleting nothing). */
	CHECK_OK(th_jobs_create(&j, dir, m, 1, &err), &err);
	th_jobs_set_repack(j, 0, st.packs);
	CHECK_OK(th_jobs_run(j, &err), &err);
	enqueue(ids[10], m, dir, "t10", "id,name\n10,row 10\n");
	th_jobs_wake(j);
	if (wait_done(&op, m, ids[10]) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		th_op_info_dispose(&op);
	}
	for (int i = 0; i < 500; i++) {
		CHECK_OK(th_meta_op_list_db(&l, NULL, m, "alice", "museums", "repack", NULL, 0,
		                            &err),
		         &err);
		if (l.n == 1 && l.items[0].state == TH_OPSTATE_COMPLETED)
			break;
		th_op_list_dispose(&l);
		sleep_ms(20);
	}
	CHECK(l.n == 1);
	if (l.n == 1) {
		char want[128];
		CHECK(l.items[0].state == TH_OPSTATE_COMPLETED);
		CHECK_STR(l.items[0].creator, "alice");
		snprintf(want, sizeof(want),
		         "\"loose_after\":0,\"packs_after\":1,\"kept_unreachable\":true,"
		         "\"mode\":\"rollup\"}");
		CHECK_CONTAINS(l.items[0].result, want);
		snprintf(want, sizeof(want), "\"packs_before\":%llu,",
		         (unsigned long long)st.packs + 1);
		CHECK_CONTAINS(l.items[0].result, want);
	}
	th_op_list_dispose(&l);
	th_jobs_stop(j);
	CHECK_OK(th_repo_objstats_read(&st, path.ptr, &err), &err);
	CHECK(st.loose == 0 && st.packs == 1);
	CHECK(t_sh(NULL, "git -C '%s' fsck --strict 2>&1", path.ptr) == 0);
	after = t_dump_repo(path.ptr);
	/* The tables of before, the same; the new import's branch besides. */
	CHECK(before != NULL && after != NULL);
	CHECK(before && after && t_dump_contains(after, before));
	CHECK(after && strstr(after, "== t10\n") != NULL);
	free(before);
	free(after);
	th_buf_dispose(&path);
	th_meta_close(m);
	t_rmdir(dir);
}

/* A database with a fork keeps every object through a repack: the fork still reads a branch its
 * parent deleted, whose objects only the parent's store holds. */
static void test_parent_of_fork(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE], op_id[TH_UUID_SIZE], *out = NULL;
	th_buf parent = TH_BUF_INIT, fork = TH_BUF_INIT;
	th_meta *m = NULL;
	th_jobs *j = NULL;
	th_db_info db;
	th_repo *r = NULL;
	th_oid head;
	th_op_info op;
	th_error err;
	int64_t fork_id;
	int queued = 0, found = 0;

	CHECK_OK(th_datadir_init(dir, &err), &err);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "shop", "", 0, &err), &err);
	CHECK_OK(th_meta_db_get(&db, m, "alice", "shop", &err), &err);
	CHECK_OK(th_datadir_repo_path(&parent, dir, "alice", "shop", &err), &err);
	CHECK_OK(th_datadir_repo_path(&fork, dir, "bob", "shop", &err), &err);
	CHECK_OK(th_repo_create(parent.ptr, "alice", &err), &err);
	CHECK_OK(th_repo_open(&r, parent.ptr, 1, &err), &err);
	CHECK_OK(th_repo_branch_get(&head, r, "main", &err), &err);
	CHECK_OK(th_repo_branch_cas(r, "b", &head, NULL, "b", &err), &err);
	th_repo_free(r);
	small_import(parent.ptr, dir, "b", "only_b", "id,v\n1,x\n");
	CHECK_OK(th_uuid4(op_id, &err), &err);
	CHECK_OK(th_meta_fork_record(&fork_id, m, "bob", db.id, op_id, NULL, &err), &err);
	CHECK_OK(th_repo_fork(fork.ptr, parent.ptr, &err), &err);
	CHECK_OK(th_repo_open(&r, parent.ptr, 1, &err), &err);
	CHECK_OK(th_repo_branch_delete(r, "b", &err), &err);
	th_repo_free(r);

	CHECK_OK(th_repack_maybe_enqueue(&queued, m, dir, "alice", "shop", 1, 0, &err), &err);
	CHECK(queued == 1);
	CHECK_OK(th_meta_op_find_unfinished(&found, id, m, "repack", "alice", "shop", &err), &err);
	CHECK(found == 1);
	CHECK_OK(th_jobs_start(&j, dir, m, 1, &err), &err);
	th_jobs_wake(j);
	if (wait_done(&op, m, id) == 0) {
		CHECK(op.state == TH_OPSTATE_COMPLETED);
		CHECK_CONTAINS(op.result, "\"kept_unreachable\":true");
		th_op_info_dispose(&op);
	} else {
		CHECK(0);
	}
	th_jobs_stop(j);
	CHECK(t_sh(NULL, "git -C '%s' fsck --strict --no-dangling 2>&1", fork.ptr) == 0);
	out = t_dump_repo(fork.ptr);
	CHECK(out != NULL && strstr(out, "== only_b\n") != NULL && strstr(out, "1,x") != NULL);
	if (out && strstr(out, "== only_b\n") == NULL)
		fprintf(stderr, "%s\n", out);
	free(out);
	th_db_info_dispose(&db);
	th_buf_dispose(&parent);
	th_buf_dispose(&fork);
	th_meta_close(m);
	t_rmdir(dir);
}

int main(void)
{
	th_error err;

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	RUN(test_gc);
	RUN(test_rollup);
	RUN(test_queued_repack);
	RUN(test_parent_of_fork);
	th_repo_global_shutdown();
	TH_TEST_END();
}
