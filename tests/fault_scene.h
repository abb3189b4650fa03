/* fault_scene.h: what test_fault.c and test_fault_jobs.c share. The scene: a data dir (on tmpfs
 * when there is one) holding database alice/shop, whose main has a 30-row table `items`; branch
 * feature holds the import under test (an Update: rows changed and added), and main then changed
 * another row, so merging feature is three-way. The helpers import, read rows, move branches,
 * count directory entries, run git fsck, and walk failure points (each_point). Everything is
 * static: one copy per test executable, as harness.h's counters are. */
#ifndef TABLEHUB_TEST_FAULT_SCENE_H
#define TABLEHUB_TEST_FAULT_SCENE_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "fault.h"
#include "harness.h"
#include "util.h"
#include "tablehub/buf.h"
#include "tablehub/databases.h"
#include "tablehub/import.h"
#include "tablehub/meta.h"
#include "tablehub/pulls.h"
#include "tablehub/reader.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

static char *dir, repo_path[4096], csv_path[4096];
static th_meta *meta;
static int points_run;

static const char *const class_name[] = { "alloc", "io", "sqlite" };

static th_repo *repo;                  /* alice/shop, open for the whole test */
static th_oid base_head, feature_head; /* main (with row 1 changed) and feature */
static char *want_import, *want_merge; /* the rows of items after each, one line each */

static inline int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- fixtures -------------------------------------------------------------------------------- */

/* 30 rows on main: id, name, qty. */
static inline void base_csv(th_buf *b)
{
	th_error err;
	int i;

	th_buf_puts(b, "id,name,qty\n", &err);
	for (i = 1; i <= 30; i++)
		th_buf_printf(b, &err, "%d,item %d,%d\n", i, i, i * 10);
}

/* The import under test: an Update that changes rows 2 and 4 and adds rows 31-40. */
static const char update_csv[] = "id,name,qty\n2,second,21\n4,fourth,41\n31,item 31,310\n"
                                 "32,item 32,320\n33,\"item, 33\",330\n34,item 34,340\n"
                                 "35,item 35,350\n36,item 36,360\n37,item 37,370\n"
                                 "38,item 38,380\n39,item 39,390\n40,item 40,400\n";

static inline int import_file(th_import_result *res, th_repo *r, const char *branch,
                              const char *path, th_import_op op, th_error *err)
{
	static const char *const pk[] = { "id" };
	th_import_opts o;
	int fd, rc, was;

	was = th_fault_exempt(1); /* the test's own open, even when armed */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	th_fault_exempt(was);
	if (fd < 0)
		abort();
	memset(&o, 0, sizeof(o));
	o.table = "items";
	o.op = op;
	o.pk = pk;
	o.npk = 1;
	o.format = th_format_find("Csv");
	o.branch = branch;
	o.author = "alice";
	o.tmpdir = dir;
	o.mem_budget = 1024; /* a few sort runs on disk */
	rc = th_import_fd(res, r, fd, &o, err);
	close(fd);
	return rc;
}

/* The rows of table "items" at `commit`, one line each (malloc'd); NULL when unreadable. */
static inline char *rows_at(th_repo *r, const th_oid *commit)
{
	th_commit_info ci;
	th_table t = TH_TABLE_INIT;
	th_row_iter *it = NULL;
	th_buf out = TH_BUF_INIT;
	th_row row;
	th_error err;
	int rc = -1;

	memset(&ci, 0, sizeof(ci));
	if (th_repo_commit_read(&ci, r, commit, &err) == TH_OK &&
	    th_table_load(&t, r, &ci.tree, "items", &err) == TH_OK &&
	    th_row_iter_new(&it, r, &t, &err) == TH_OK) {
		while ((rc = th_row_iter_next(it, &row, &err)) > 0)
			if (th_buf_put(&out, row.line, row.linelen, &err) < 0 ||
			    th_buf_putc(&out, '\n', &err) < 0)
				abort();
	}
	th_row_iter_free(it);
	th_table_dispose(&t);
	th_commit_info_dispose(&ci);
	if (rc != 0) {
		th_buf_dispose(&out);
		return NULL;
	}
	return th_buf_detach(&out);
}

static inline th_oid head(th_repo *r, const char *branch)
{
	th_oid h;
	th_error err;

	memset(&h, 0, sizeof(h));
	if (th_repo_branch_get(&h, r, branch, &err) < 0)
		memset(&h, 0, sizeof(h));
	return h;
}

/* Point `branch` at `to` (creating it, or moving it from wherever it is). */
static inline void set_branch(th_repo *r, const char *branch, const th_oid *to)
{
	th_oid cur = head(r, branch);
	th_error err;

	CHECK_OK(th_repo_branch_cas(r, branch, to, th_oid_is_zero(&cur) ? NULL : &cur, "reset",
	                            &err),
	         &err);
}

/* The number of entries of directory `path` (besides . and ..). */
static inline int count_entries(const char *path)
{
	DIR *d;
	struct dirent *e;
	int n = 0, was = th_fault_exempt(1);

	if ((d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL)
			n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
		closedir(d);
	}
	th_fault_exempt(was);
	return n;
}

static inline int fsck_clean(void)
{
	char *out = NULL;
	int rc = t_sh(&out, "git -C '%s' fsck --no-progress --no-dangling 2>&1", repo_path);

	if (rc != 0)
		fprintf(stderr, "git fsck: %s\n", out ? out : "");
	free(out);
	return rc == 0;
}

/* Run every failure point of `c` through run(n), which returns whether the armed failure happened
 * (the operation reached the n-th call), from n = 1 until one is not reached. */
static inline void each_point(th_fault_class c, int (*run)(th_fault_class c, long n),
                              const char *what)
{
	long n;
	int failed_before = th_t_failed_checks;
	int64_t t0 = mono_ms();

	for (n = 1; run(c, n); n++) {
		if (th_t_failed_checks != failed_before) {
			fprintf(stderr, "  at %s, %s failure point %ld\n", what, class_name[c], n);
			return;
		}
		/* git fsck costs a process: every tenth point, and at the end. */
		if (n % 10 == 0 && !fsck_clean()) {
			fprintf(stderr, "  after %s, %s failure point %ld\n", what, class_name[c],
			        n);
			CHECK(0);
			return;
		}
	}
	if (th_t_failed_checks != failed_before)
		fprintf(stderr, "  at %s, %s failure point %ld (not reached)\n", what,
		        class_name[c], n);
	points_run += n - 1;
	CHECK(fsck_clean());
	printf("%s: %ld %s failure points in %.1f s\n", what, n - 1, class_name[c],
	       (double)(mono_ms() - t0) / 1000);
	if (n < 2)
		fprintf(stderr, "%s never reached the %s hook\n", what, class_name[c]);
	CHECK(n >= 2); /* the hook is linked in */
}

/* The data dir is on tmpfs when there is one: SQLite's and our own fsyncs would otherwise take
 * most of the run's time, and durability is not what this test checks. */
static inline char *scratch_dir(void)
{
	char *p;

	if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK) == 0 &&
	    (p = strdup("/dev/shm/th-fault-XXXXXX")) != NULL) {
		if (mkdtemp(p) != NULL)
			return p;
		free(p);
	}
	return t_mkdtemp();
}

static inline void scratch_remove(char *p)
{
	if (strncmp(p, "/dev/shm/th-fault-", 18) == 0 && getenv("TH_KEEP") == NULL)
		t_sh(NULL, "rm -rf '%s'", p);
	if (strncmp(p, "/dev/shm/", 9) == 0)
		free(p);
	else
		t_rmdir(p);
}

/* Make the scene: the hook installed, the data dir, alice/shop with its branches, `repo` open on
 * it, and the rows expected of the import and of the merge. main ends at base_head. Returns 0, or
 * -1 after printing what failed. */
static inline int scene_setup(void)
{
	th_import_result res;
	th_pull_merge_result mres;
	th_buf csv = TH_BUF_INIT;
	th_error err;
	char path[4096];

	th_fault_install();
	dir = scratch_dir();
	/* libgit2's own fsyncs are beyond the hook's reach and would cost most of the run's time
	 * on a disk; ours (packs, uploads) are still made and failed. */
	if (th_repo_global_init(&err) < 0 || git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0) < 0 ||
	    th_meta_open(&meta, dir, &err) < 0 ||
	    th_db_create(meta, dir, "alice", "shop", "", 0, &err) < 0)
		goto fail;
	snprintf(repo_path, sizeof(repo_path), "%s/repos/alice/shop.git", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/update.csv", dir);
	t_write_file(csv_path, update_csv, strlen(update_csv));
	if (th_repo_open(&repo, repo_path, 1, &err) < 0)
		goto fail;

	/* main: 30 rows; feature: the update; then main changes row 1: a three-way merge. */
	base_csv(&csv);
	snprintf(path, sizeof(path), "%s/base.csv", dir);
	t_write_file(path, csv.ptr, csv.size);
	th_buf_dispose(&csv);
	if (import_file(&res, repo, "main", path, TH_OP_CREATE, &err) < 0)
		goto fail;
	set_branch(repo, "feature", &res.commit);
	if (import_file(&res, repo, "feature", csv_path, TH_OP_UPDATE, &err) < 0)
		goto fail;
	feature_head = res.commit;
	t_write_file(path, "id,name,qty\n1,first,11\n", 23);
	if (import_file(&res, repo, "main", path, TH_OP_UPDATE, &err) < 0)
		goto fail;
	base_head = res.commit;
	/* What the import under test makes of main, and the merge of feature into it. */
	set_branch(repo, "imp", &base_head);
	if (import_file(&res, repo, "imp", csv_path, TH_OP_UPDATE, &err) < 0 ||
	    th_pull_merge(&mres, NULL, repo, "feature", "main", 1, "alice", NULL, &err) < 0)
		goto fail;
	want_import = rows_at(repo, &res.commit);
	want_merge = rows_at(repo, &mres.commit);
	set_branch(repo, "main", &base_head);
	if (want_import && want_merge && strstr(want_merge, "\"first\"") &&
	    strstr(want_merge, "\"fourth\""))
		return 0;
	th_error_set(&err, TH_ERROR, "unexpected rows");
fail:
	fprintf(stderr, "set-up: %s\n", err.msg);
	return -1;
}

static inline void scene_teardown(void)
{
	th_repo_free(repo);
	repo = NULL;
	free(want_import);
	free(want_merge);
	th_meta_close(meta);
	th_repo_global_shutdown();
	printf("%d failure points run\n", points_run);
	scratch_remove(dir);
}

#endif
