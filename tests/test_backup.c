/* test_backup.c: th_backup and th_restore (storage/backup.c) on a data directory whose
 * repository keeps changing while the backups run: a thread commits small imports and repacks
 * (git gc --prune=now, moving every object) in a loop, as a server would. Each backup restores
 * into a data directory whose repository passes `git fsck --strict` and whose main branch holds a
 * commit of the original with the same tables. A fork, whose objects are its parent's, restores
 * whole. Also the refusals: an existing destination, a
 * directory that is no backup, a damaged backup (nothing is left behind), a target that is not
 * empty. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "harness.h"
#include "util.h"
#include "dump.h"
#include "tablehub/backup.h"
#include "tablehub/datadir.h"
#include "tablehub/import.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"
#include "tablehub/repo_maint.h"

static void small_import(const char *path, const char *dir, const char *table, const char *csv)
{
	const char *pk[] = { "id" };
	char file[600];
	th_repo *repo = NULL;
	th_import_opts o;
	th_import_result res;
	th_error err;
	int fd;

	snprintf(file, sizeof(file), "%s/in-%s.csv", dir, table);
	t_write_file(file, csv, strlen(csv));
	memset(&o, 0, sizeof(o));
	o.table = table;
	o.op = TH_OP_CREATE;
	o.pk = pk;
	o.npk = 1;
	o.branch = "main";
	o.tmpdir = dir;
	if ((fd = open(file, O_RDONLY)) < 0 || th_repo_open(&repo, path, 1, &err) < 0 ||
	    th_import_fd(&res, repo, fd, &o, &err) < 0) {
		fprintf(stderr, "small_import: %s\n", err.msg);
		abort();
	}
	close(fd);
	unlink(file);
	th_repo_free(repo);
}

/* Every table of commit `hex` of the repository at `path`, as text (malloc'd), or NULL. */
static char *dump_commit(const char *path, const char *hex)
{
	th_buf out = TH_BUF_INIT;
	th_repo *repo = NULL;
	th_commit_info ci;
	th_oid c;
	th_error err;
	char **tables = NULL;
	int ok = 0;

	memset(&ci, 0, sizeof(ci));
	if (th_repo_open(&repo, path, 0, &err) < 0 || th_oid_parse(&c, hex, &err) < 0 ||
	    th_repo_commit_read(&ci, repo, &c, &err) < 0 ||
	    th_table_names(&tables, repo, &ci.tree, &err) < 0)
		goto done;
	for (size_t k = 0; tables[k] != NULL; k++) {
		th_buf_printf(&out, &err, "== %s\n", tables[k]);
		if (t_dump_table(&out, path, &ci.tree, tables[k], &err) < 0)
			goto done;
	}
	ok = 1;
done:
	if (!ok)
		fprintf(stderr, "dump_commit %s: %s\n", hex, err.msg);
	th_strv_free(tables);
	th_commit_info_dispose(&ci);
	th_repo_free(repo);
	if (!ok) {
		th_buf_dispose(&out);
		return NULL;
	}
	return th_buf_detach(&out);
}

#define NBACKUPS 30

struct writer {
	const char *path, *dir;
	atomic_int stop;
	int commits, repacks;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	th_error err;

	while (!atomic_load(&w->stop)) {
		char table[32], csv[128];
		snprintf(table, sizeof(table), "w%d", w->commits);
		snprintf(csv, sizeof(csv), "id,v\n%d,a\n%d,b\n", w->commits, w->commits + 1000);
		small_import(w->path, w->dir, table, csv);
		w->commits++;
		if (w->commits % 2 == 0) {
			if (th_repo_gc(w->path, 0, NULL, NULL, &err) < 0) {
				fprintf(stderr, "gc: %s\n", err.msg);
				abort();
			}
			w->repacks++;
		}
	}
	return NULL;
}

static void test_backup_while_writing(void)
{
	char *dir = t_mkdtemp(), *work = t_mkdtemp(), src_repo[600], out[1000], back[700];
	char rest[700], rrepo[800], *out_text = NULL;
	th_buf repo_path = TH_BUF_INIT;
	th_meta *m = NULL;
	th_backup_stats st;
	th_error err;
	struct writer w;
	pthread_t t;
	uint64_t rescans = 0;

	CHECK_OK(th_datadir_init(dir, &err), &err);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "shop", "", 0, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "empty", "", 1, &err), &err);
	CHECK_OK(th_datadir_repo_path(&repo_path, dir, "alice", "shop", &err), &err);
	CHECK_OK(th_repo_create(repo_path.ptr, "alice", &err), &err);
	snprintf(src_repo, sizeof(src_repo), "%s", repo_path.ptr);
	th_buf_clear(&repo_path);
	CHECK_OK(th_datadir_repo_path(&repo_path, dir, "alice", "empty", &err), &err);
	CHECK_OK(th_repo_create(repo_path.ptr, "alice", &err), &err);
	CHECK(t_sh(NULL, "printf 'id\\n1\\n' > '%s/uploads/%064d'", dir, 0) == 0);
	CHECK(t_sh(NULL, "mkdir -p '%s/tus' && printf 'id\\n' > '%s/tus/abc.part'", dir, dir) == 0);
	for (int i = 0; i < 20; i++) {
		char table[32];
		snprintf(table, sizeof(table), "t%d", i);
		small_import(src_repo, work, table, "id,v\n1,x\n2,y\n");
	}

	memset(&w, 0, sizeof(w));
	w.path = src_repo;
	w.dir = work;
	pthread_create(&t, NULL, write_loop, &w);
	for (int i = 0; i < NBACKUPS; i++) {
		char *restored = NULL, *original = NULL, *head = NULL;
		snprintf(back, sizeof(back), "%s/backup-%d", work, i);
		snprintf(rest, sizeof(rest), "%s/restored-%d", work, i);
		CHECK_OK(th_backup(&st, dir, back, &err), &err);
		CHECK(st.databases == 2);
		rescans += st.rescans;
		CHECK_OK(th_restore(&st, back, rest, &err), &err);
		CHECK(st.databases == 2);
		snprintf(rrepo, sizeof(rrepo), "%s/repos/alice/shop.git", rest);
		CHECK(t_sh(&out_text, "git -C '%s' fsck --strict --no-dangling 2>&1", rrepo) == 0);
		CHECK_STR(out_text, "");
		free(out_text);
		/* Its main is a commit of the original's history, with the same tables. */
		CHECK(t_sh(&head, "git -C '%s' rev-parse main", rrepo) == 0);
		if (head) {
			head[strcspn(head, "\n")] = '\0';
			CHECK(t_sh(NULL, "git -C '%s' merge-base --is-ancestor %s main", src_repo,
			           head) == 0);
			restored = dump_commit(rrepo, head);
			original = dump_commit(src_repo, head);
			CHECK(restored && original && strcmp(restored, original) == 0);
			CHECK(restored && strstr(restored, "== t19\n") != NULL);
		}
		free(head);
		free(restored);
		free(original);
		/* The data directory's other parts. */
		snprintf(out, sizeof(out), "%s/uploads/%064d", rest, 0);
		CHECK(access(out, R_OK) == 0);
		snprintf(out, sizeof(out), "%s/tus/abc.part", rest);
		CHECK(access(out, R_OK) == 0);
		snprintf(out, sizeof(out), "%s/tmp", rest);
		CHECK(access(out, R_OK) == 0);
		snprintf(out, sizeof(out), "%s/BACKUP", rest);
		CHECK(access(out, F_OK) != 0);
	}
	atomic_store(&w.stop, 1);
	pthread_join(t, NULL);
	printf("%d backups beside %d commits and %d repacks; object lists read again %llu times\n",
	       NBACKUPS, w.commits, w.repacks, (unsigned long long)rescans);
	CHECK(w.repacks > 0);
	th_buf_dispose(&repo_path);
	th_meta_close(m);
	t_rmdir(dir);
	t_rmdir(work);
}

static void test_refusals(void)
{
	char *dir = t_mkdtemp(), *work = t_mkdtemp(), back[700], rest[700], path[800];
	char *out = NULL;
	th_meta *m = NULL;
	th_buf repo_path = TH_BUF_INIT;
	th_error err;

	snprintf(back, sizeof(back), "%s/b0", work);
	CHECK(th_backup(NULL, work, back, &err) == TH_ENOTFOUND); /* no meta.sqlite there */
	CHECK(access(back, F_OK) != 0);
	CHECK_OK(th_datadir_init(dir, &err), &err);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "shop", "", 0, &err), &err);
	CHECK_OK(th_datadir_repo_path(&repo_path, dir, "alice", "shop", &err), &err);
	CHECK_OK(th_repo_create(repo_path.ptr, "alice", &err), &err);
	small_import(repo_path.ptr, work, "t", "id\n1\n");
	CHECK_OK(th_repo_gc(repo_path.ptr, 0, NULL, NULL, &err), &err); /* one pack */
	snprintf(back, sizeof(back), "%s/b", work);
	CHECK_OK(th_backup(NULL, dir, back, &err), &err);
	CHECK(th_backup(NULL, dir, back, &err) == TH_EEXISTS);

	/* Not a backup; a target that is not empty. */
	snprintf(rest, sizeof(rest), "%s/r", work);
	CHECK(th_restore(NULL, dir, rest, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "is not a tablehub backup");
	CHECK(th_restore(NULL, back, dir, &err) == TH_EEXISTS);
	CHECK_CONTAINS(err.msg, "is not empty");
	/* An empty directory is fine. */
	CHECK(mkdir(rest, 0755) == 0);
	CHECK_OK(th_restore(NULL, back, rest, &err), &err);

	/* Damaged: its pack gone. Refused, and nothing half-made stays. */
	CHECK(t_sh(NULL, "rm -f '%s'/repos/alice/shop.git/objects/pack/*.pack", back) == 0);
	snprintf(rest, sizeof(rest), "%s/r2", work);
	CHECK(th_restore(NULL, back, rest, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "damaged backup");
	CHECK(strstr(err.msg, work) == NULL); /* the message names files in the backup only */
	CHECK(t_sh(&out, "ls '%s'", work) == 0);
	CHECK(strstr(out, "r2") == NULL);
	free(out);
	snprintf(path, sizeof(path), "%s/r2", work);
	CHECK(access(path, F_OK) != 0);
	th_buf_dispose(&repo_path);
	th_meta_close(m);
	t_rmdir(dir);
	t_rmdir(work);
}

/* A fork borrows its parent's objects (objects/info/alternates, a relative path): its backup
 * needs the parent's, whichever is copied first, and reads them from the restored parent. */
static void test_fork(void)
{
	char *dir = t_mkdtemp(), *work = t_mkdtemp(), back[700], rest[700], rfork[800];
	char op_id[TH_UUID_SIZE], *out = NULL;
	th_buf parent = TH_BUF_INIT, fork = TH_BUF_INIT;
	th_meta *m = NULL;
	th_db_info db;
	th_repo *r = NULL;
	th_oid head;
	th_error err;
	int64_t fork_id;

	CHECK_OK(th_datadir_init(dir, &err), &err);
	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "shop", "", 0, &err), &err);
	CHECK_OK(th_meta_db_get(&db, m, "alice", "shop", &err), &err);
	CHECK_OK(th_datadir_repo_path(&parent, dir, "alice", "shop", &err), &err);
	CHECK_OK(th_datadir_repo_path(&fork, dir, "aaron", "shop", &err), &err); /* copied first */
	CHECK_OK(th_repo_create(parent.ptr, "alice", &err), &err);
	small_import(parent.ptr, work, "items", "id,v\n1,x\n2,y\n");
	CHECK_OK(th_uuid4(op_id, &err), &err);
	CHECK_OK(th_meta_fork_record(&fork_id, m, "aaron", db.id, op_id, NULL, &err), &err);
	CHECK_OK(th_repo_fork(fork.ptr, parent.ptr, &err), &err);
	/* The parent moves on and repacks (keeping everything, as it has a fork). */
	CHECK_OK(th_repo_open(&r, parent.ptr, 1, &err), &err);
	CHECK_OK(th_repo_branch_get(&head, r, "main", &err), &err);
	th_repo_free(r);
	small_import(parent.ptr, work, "more", "id\n1\n");
	CHECK_OK(th_repo_gc(parent.ptr, 1, NULL, NULL, &err), &err);

	snprintf(back, sizeof(back), "%s/b", work);
	snprintf(rest, sizeof(rest), "%s/r", work);
	CHECK_OK(th_backup(NULL, dir, back, &err), &err);
	CHECK_OK(th_restore(NULL, back, rest, &err), &err);
	snprintf(rfork, sizeof(rfork), "%s/repos/aaron/shop.git", rest);
	CHECK(t_sh(NULL, "git -C '%s' fsck --strict --no-dangling 2>&1", rfork) == 0);
	CHECK(t_sh(&out, "cat '%s/objects/info/alternates'", rfork) == 0);
	CHECK(out && out[0] != '/'); /* relative: it names the restored parent */
	free(out);
	out = t_dump_repo(rfork);
	CHECK(out != NULL && strstr(out, "== items\n") != NULL && strstr(out, "== more") == NULL);
	free(out);
	th_db_info_dispose(&db);
	th_buf_dispose(&parent);
	th_buf_dispose(&fork);
	th_meta_close(m);
	t_rmdir(dir);
	t_rmdir(work);
}

int main(void)
{
	th_error err;

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	RUN(test_backup_while_writing);
	RUN(test_refusals);
	RUN(test_fork);
	th_repo_global_shutdown();
	TH_TEST_END();
}
