/* tests/test_repo.c: the content store (storage/repo*.c) against real libgit2 and the real git
 * command line, one temporary directory per test: object ids, create and open, refs and their
 * compare-and-swap, trees, blobs, commits and stale lock files. What is checked is what a user of
 * the repository would see: refs, trees and blobs read back, `git fsck`, `git cat-file`. The pack
 * writer has its own test, test_pack.c. */
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "repo_fixture.h"
#include "tablehub/hash.h"
#include "../storage/repo_internal.h"

/* --- helpers --------------------------------------------------------------------------------- */

static int file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int commit_file(th_oid *out, th_repo *r, const th_oid *parent, const char *path,
                       const char *content, th_error *err)
{
	th_commit_info ci;
	th_oid blob, tree;
	int error;

	if ((error = th_repo_commit_read(&ci, r, parent, err)) < 0)
		return error;
	error = th_repo_blob_write(&blob, r, content, strlen(content), err);
	if (error == 0)
		error = th_repo_tree_update(&tree, r, &ci.tree, path, &blob, 0, err);
	if (error == 0)
		error = th_repo_commit_write(out, r, &tree, parent, 1, "bob", "bob@example.com",
		                             content, err);
	th_commit_info_dispose(&ci);
	return error;
}

/* --- tests ----------------------------------------------------------------------------------- */

static void test_oid(void)
{
	th_error err = { 0 };
	th_oid a, b;
	char hex[41];

	CHECK_OK(th_oid_parse(&a, "4b825dc642cb6eb9a060e54bf8d69288fbee4904", &err), &err);
	th_repo_empty_tree(&b);
	CHECK(th_oid_equal(&a, &b));
	th_oid_fmt(hex, &a);
	CHECK_STR(hex, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
	CHECK_OK(th_oid_parse(&a, "4B825DC642CB6EB9A060E54BF8D69288FBEE4904", &err), &err);
	CHECK(th_oid_equal(&a, &b));
	CHECK(!th_oid_is_zero(&a));
	memset(&a, 0, sizeof(a));
	CHECK(th_oid_is_zero(&a));
	CHECK(th_oid_parse(&a, "4b825dc", &err) == TH_EINVALID);
	CHECK(th_oid_parse(&a, "4b825dc642cb6eb9a060e54bf8d69288fbee490g", &err) == TH_EINVALID);
	CHECK(th_oid_parse(&a, "4b825dc642cb6eb9a060e54bf8d69288fbee49041", &err) == TH_EINVALID);
	CHECK(th_oid_is_zero(&a)); /* untouched on error */
}

static void test_create_open(void)
{
	char *dir = t_mkdtemp(), *path = repo_path(dir), *out = NULL;
	th_error err = { 0 };
	th_commit_info ci;
	th_repo *r = NULL;
	th_oid main_id, empty;

	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	CHECK(th_repo_create(path, "alice", &err) == TH_EEXISTS);
	CHECK_CONTAINS(err.msg, "already exists");
	CHECK_OK(th_repo_open(&r, path, 0, &err), &err);
	CHECK_OK(th_repo_branch_get(&main_id, r, "main", &err), &err);
	CHECK_OK(th_repo_commit_read(&ci, r, &main_id, &err), &err);
	th_repo_empty_tree(&empty);
	CHECK(th_oid_equal(&ci.tree, &empty));
	CHECK(ci.nparents == 0);
	CHECK_STR(ci.author, "alice");
	CHECK_STR(ci.email, "alice@tablehub.local");
	CHECK_STR(ci.message, "Initial commit");
	CHECK(ci.time > 0 && ci.time <= (int64_t)time(NULL));
	th_commit_info_dispose(&ci);
	th_repo_free(r);

	/* What git itself sees: a bare repository, HEAD on main, one commit, no leftovers. */
	CHECK(t_sh(&out, "git -C '%s' rev-parse --is-bare-repository", path) == 0);
	CHECK_STR(out, "true\n");
	free(out);
	CHECK(t_sh(&out, "git -C '%s' symbolic-ref HEAD", path) == 0);
	CHECK_STR(out, "refs/heads/main\n");
	free(out);
	CHECK(t_sh(&out, "git -C '%s' log --format='%%an <%%ae> %%s' main", path) == 0);
	CHECK_STR(out, "alice <alice@tablehub.local> Initial commit\n");
	free(out);
	CHECK(t_sh(&out, "ls '%s/alice'", dir) == 0);
	CHECK_STR(out, "db.git\n");
	free(out);
	CHECK(t_sh(NULL, "git -C '%s' fsck --full --strict 2>&1", path) == 0);

	/* Open: a missing path and a directory that is not a repository are both ENOTFOUND. */
	r = NULL;
	sprintf(path, "%s/nope.git", dir);
	CHECK(th_repo_open(&r, path, 0, &err) == TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "not found");
	CHECK(r == NULL);
	CHECK(th_repo_open(&r, dir, 1, &err) == TH_ENOTFOUND);
	CHECK(r == NULL);
	/* An empty directory may be created into. */
	sprintf(path, "%s/empty.git", dir);
	CHECK(mkdir(path, 0777) == 0);
	CHECK_OK(th_repo_create(path, "bob", &err), &err);
	CHECK_OK(th_repo_open(&r, path, 0, &err), &err);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

static void test_resolve(void)
{
	char *dir = t_mkdtemp(), *path, short_hex[8], hex[41];
	th_repo *r = fresh_repo(dir, &path);
	th_error err = { 0 };
	th_oid main_id, id, second;

	CHECK_OK(th_repo_branch_get(&main_id, r, "main", &err), &err);
	CHECK_OK(th_repo_resolve(&id, r, "main", &err), &err);
	CHECK(th_oid_equal(&id, &main_id));
	CHECK_OK(th_repo_resolve(&id, r, "HEAD", &err), &err);
	CHECK(th_oid_equal(&id, &main_id));
	CHECK_OK(th_repo_resolve(&id, r, "refs/heads/main", &err), &err);
	CHECK(th_oid_equal(&id, &main_id));
	th_oid_fmt(hex, &main_id);
	CHECK_OK(th_repo_resolve(&id, r, hex, &err), &err);
	CHECK(th_oid_equal(&id, &main_id));
	memcpy(short_hex, hex, 7);
	short_hex[7] = '\0';
	CHECK_OK(th_repo_resolve(&id, r, short_hex, &err), &err);
	CHECK(th_oid_equal(&id, &main_id));

	/* A branch with a slash, and a tag made by git. */
	CHECK_OK(commit_file(&second, r, &main_id, "a.txt", "second\n", &err), &err);
	CHECK_OK(th_repo_branch_cas(r, "alice/import-1a2b", &second, NULL, "import", &err), &err);
	CHECK_OK(th_repo_resolve(&id, r, "alice/import-1a2b", &err), &err);
	CHECK(th_oid_equal(&id, &second));
	CHECK(t_sh(NULL, "git -C '%s' tag v1 alice/import-1a2b", path) == 0);
	CHECK_OK(th_repo_resolve(&id, r, "v1", &err), &err);
	CHECK(th_oid_equal(&id, &second));
	CHECK(t_sh(NULL, "git -C '%s' -c user.name=t -c user.email=t@t tag -a -m ann v2 main",
	           path) == 0);
	CHECK_OK(th_repo_resolve(&id, r, "v2", &err), &err); /* an annotated tag peels */
	CHECK(th_oid_equal(&id, &main_id));
	CHECK_OK(th_repo_resolve(&id, r, "alice/import-1a2b~1", &err), &err);
	CHECK(th_oid_equal(&id, &main_id));

	memset(&id, 0, sizeof(id));
	CHECK(th_repo_resolve(&id, r, "nope", &err) == TH_ENOTFOUND);
	CHECK_STR(err.msg, "revision 'nope' not found");
	CHECK(th_repo_resolve(&id, r, "", &err) == TH_ENOTFOUND);
	CHECK(th_repo_resolve(&id, r, "0000000000000000000000000000000000000001", &err) ==
	      TH_ENOTFOUND);
	/* A tree id names no commit. */
	CHECK(th_repo_resolve(&id, r, "4b825dc642cb6eb9a060e54bf8d69288fbee4904", &err) ==
	      TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "not a commit");
	CHECK(th_oid_is_zero(&id));
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

static void test_branch_cas(void)
{
	char *dir = t_mkdtemp(), *path, *out = NULL, hex[41];
	th_repo *r = fresh_repo(dir, &path);
	th_error err = { 0 };
	th_oid c0, c1, c2, id;

	CHECK_OK(th_repo_branch_get(&c0, r, "main", &err), &err);
	CHECK_OK(commit_file(&c1, r, &c0, "a", "one\n", &err), &err);
	CHECK_OK(commit_file(&c2, r, &c1, "a", "two\n", &err), &err);

	/* Create, then move with the right expected value. */
	CHECK_OK(th_repo_branch_cas(r, "feature", &c0, NULL, "create", &err), &err);
	CHECK_OK(th_repo_branch_cas(r, "feature", &c1, &c0, "move", &err), &err);
	CHECK_OK(th_repo_branch_get(&id, r, "feature", &err), &err);
	CHECK(th_oid_equal(&id, &c1));

	/* A stale expected value is a conflict, and the ref stays where it was. */
	CHECK(th_repo_branch_cas(r, "feature", &c2, &c0, "stale", &err) == TH_ECONFLICT);
	CHECK_STR(err.msg, "branch 'feature' moved");
	CHECK_OK(th_repo_branch_get(&id, r, "feature", &err), &err);
	CHECK(th_oid_equal(&id, &c1));
	th_oid_fmt(hex, &c1);
	CHECK(t_sh(&out, "git -C '%s' rev-parse refs/heads/feature", path) == 0);
	CHECK(out && strncmp(out, hex, 40) == 0);
	free(out);

	/* Creating a branch that exists is a conflict too. */
	CHECK(th_repo_branch_cas(r, "feature", &c2, NULL, "again", &err) == TH_ECONFLICT);
	CHECK_STR(err.msg, "branch 'feature' already exists");
	CHECK_OK(th_repo_branch_get(&id, r, "feature", &err), &err);
	CHECK(th_oid_equal(&id, &c1));

	/* Moving a branch that does not exist (deleted meanwhile) is a conflict. */
	CHECK(th_repo_branch_cas(r, "ghost", &c2, &c1, "move", &err) == TH_ECONFLICT);
	CHECK(th_repo_branch_get(&id, r, "ghost", &err) == TH_ENOTFOUND);
	CHECK_STR(err.msg, "branch 'ghost' not found");

	/* Names: git's rules, slashes allowed. */
	CHECK(th_repo_branch_name_valid("alice/import-1a2b"));
	CHECK(th_repo_branch_name_valid("main"));
	CHECK(!th_repo_branch_name_valid(""));
	CHECK(!th_repo_branch_name_valid("a..b"));
	CHECK(!th_repo_branch_name_valid("a b"));
	CHECK(!th_repo_branch_name_valid("a~1"));
	CHECK(!th_repo_branch_name_valid("x.lock"));
	CHECK(!th_repo_branch_name_valid("/x"));
	CHECK(!th_repo_branch_name_valid("x/"));
	CHECK(!th_repo_branch_name_valid("-x"));
	CHECK(!th_repo_branch_name_valid("HEAD"));
	CHECK(!th_repo_branch_name_valid("a:b"));
	CHECK(th_repo_branch_cas(r, "bad..name", &c2, NULL, NULL, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "not a valid branch name");

	/* A target that does not exist is refused. */
	memset(&id, 0x11, sizeof(id));
	CHECK(th_repo_branch_cas(r, "dangling", &id, NULL, NULL, &err) < 0);
	CHECK(th_repo_branch_get(&id, r, "dangling", &err) == TH_ENOTFOUND);

	CHECK(t_sh(NULL, "git -C '%s' fsck --full --strict 2>&1", path) == 0);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

struct race {
	const char *path;
	int id, ok, conflicts, failures;
};

static void *race_main(void *arg)
{
	struct race *rc = arg;
	th_error err = { 0 };
	th_repo *r = NULL;
	int i;

	if (th_repo_open(&r, rc->path, 0, &err) < 0) {
		rc->failures++;
		return NULL;
	}
	for (i = 0; i < 15; i++) {
		char name[32], content[64];
		th_oid head, c;
		int error;

		snprintf(name, sizeof(name), "t%d/f%d", rc->id, i);
		snprintf(content, sizeof(content), "thread %d step %d\n", rc->id, i);
		if (th_repo_branch_get(&head, r, "main", &err) < 0 ||
		    commit_file(&c, r, &head, name, content, &err) < 0) {
			rc->failures++;
			continue;
		}
		error = th_repo_branch_cas(r, "main", &c, &head, "race", &err);
		if (error == 0)
			rc->ok++;
		else if (error == TH_ECONFLICT)
			rc->conflicts++;
		else {
			fprintf(stderr, "race: %s\n", err.msg);
			rc->failures++;
		}
	}
	th_repo_free(r);
	return NULL;
}

static int count_cb(const th_commit_info *ci, void *payload)
{
	(void)ci;
	(*(int *)payload)++;
	return 0;
}

/* Writers on separate handles and threads: every successful CAS is a commit in main's history. */
static void test_cas_race(void)
{
	char *dir = t_mkdtemp(), *path;
	th_repo *r = fresh_repo(dir, &path);
	struct race rc[4];
	pthread_t th[4];
	th_error err = { 0 };
	int i, ok = 0, n = 0;
	th_oid head;

	for (i = 0; i < 4; i++) {
		memset(&rc[i], 0, sizeof(rc[i]));
		rc[i].path = path;
		rc[i].id = i;
		CHECK(pthread_create(&th[i], NULL, race_main, &rc[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(rc[i].failures == 0);
		ok += rc[i].ok;
	}
	CHECK(ok >= 1);
	CHECK_OK(th_repo_branch_get(&head, r, "main", &err), &err);
	CHECK_OK(th_repo_log(r, &head, 0, count_cb, &n, &err), &err);
	CHECK(n == ok + 1);
	CHECK(t_sh(NULL, "git -C '%s' fsck --full --strict 2>&1", path) == 0);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

static void test_trees(void)
{
	char *dir = t_mkdtemp(), *path, *out = NULL;
	th_repo *r = fresh_repo(dir, &path);
	th_error err = { 0 };
	th_oid b1, b2, b3, t1, t2, root, root2, root3, id, empty;
	th_tree_list l = { NULL, 0 };
	int is_tree = -1;

	CHECK_OK(th_repo_blob_write(&b1, r, "one\n", 4, &err), &err);
	CHECK_OK(th_repo_blob_write(&b2, r, "two\n", 4, &err), &err);
	CHECK_OK(th_repo_blob_write(&b3, r, "three\n", 6, &err), &err);

	/* Written in any order, read back in tree order. */
	{
		th_tree_entry e[3] = { { "zeta", b1, 0 }, { "alpha", b2, 0 }, { "mid", b3, 0 } };

		CHECK_OK(th_repo_tree_write(&t1, r, e, 3, &err), &err);
	}
	CHECK_OK(th_repo_tree_read(&l, r, &t1, &err), &err);
	CHECK(l.n == 3);
	if (l.n == 3) {
		CHECK_STR(l.entries[0].name, "alpha");
		CHECK(th_oid_equal(&l.entries[0].oid, &b2));
		CHECK_STR(l.entries[1].name, "mid");
		CHECK_STR(l.entries[2].name, "zeta");
		CHECK(!l.entries[2].is_tree);
	}
	th_tree_list_dispose(&l);
	{
		th_tree_entry e[2] = { { "sub", t1, 1 }, { "file", b1, 0 } };

		CHECK_OK(th_repo_tree_write(&t2, r, e, 2, &err), &err);
	}
	CHECK_OK(th_repo_tree_read(&l, r, &t2, &err), &err);
	CHECK(l.n == 2 && l.entries[1].is_tree && th_oid_equal(&l.entries[1].oid, &t1));
	th_tree_list_dispose(&l);

	/* Bad trees: duplicate names, a missing object, a slash in a name. */
	{
		th_tree_entry dup[2] = { { "a", b1, 0 }, { "a", b2, 0 } };
		th_tree_entry missing[1] = { { "a", b1, 0 } };
		th_tree_entry slash[1] = { { "a/b", b1, 0 } };

		memset(&missing[0].oid, 0x42, sizeof(th_oid));
		CHECK(th_repo_tree_write(&id, r, dup, 2, &err) == TH_EINVALID);
		CHECK_STR(err.msg, "duplicate tree entry 'a'");
		CHECK(th_repo_tree_write(&id, r, missing, 1, &err) == TH_EINVALID);
		CHECK_CONTAINS(err.msg, "not found");
		CHECK(th_repo_tree_write(&id, r, slash, 1, &err) == TH_EINVALID);
	}

	/* Lookup, nested. */
	CHECK_OK(th_repo_tree_lookup(&id, &is_tree, r, &t2, "sub/mid", &err), &err);
	CHECK(th_oid_equal(&id, &b3) && is_tree == 0);
	CHECK_OK(th_repo_tree_lookup(&id, &is_tree, r, &t2, "sub", &err), &err);
	CHECK(th_oid_equal(&id, &t1) && is_tree == 1);
	CHECK(th_repo_tree_lookup(&id, &is_tree, r, &t2, "sub/nope", &err) == TH_ENOTFOUND);
	CHECK_STR(err.msg, "path 'sub/nope' not found");
	memset(&id, 0x42, sizeof(id));
	CHECK(th_repo_tree_lookup(&id, &is_tree, r, &id, "x", &err) == TH_ENOTFOUND);

	/* Update: create a nested path from nothing, replace it, add a sibling, delete (pruning
	 * the intermediate trees that become empty). */
	CHECK_OK(th_repo_tree_update(&root, r, NULL, "tables/users/rows/0001", &b1, 0, &err), &err);
	CHECK_OK(th_repo_tree_lookup(&id, &is_tree, r, &root, "tables/users/rows/0001", &err),
	         &err);
	CHECK(th_oid_equal(&id, &b1) && is_tree == 0);
	CHECK_OK(th_repo_tree_update(&root2, r, &root, "tables/users/rows/0001", &b2, 0, &err),
	         &err);
	CHECK_OK(th_repo_tree_lookup(&id, &is_tree, r, &root2, "tables/users/rows/0001", &err),
	         &err);
	CHECK(th_oid_equal(&id, &b2));
	CHECK_OK(th_repo_tree_update(&root2, r, &root2, "tables/users/schema.json", &b3, 0, &err),
	         &err);
	CHECK_OK(th_repo_tree_update(&root2, r, &root2, "tables/orders", &t1, 1, &err), &err);
	CHECK_OK(th_repo_tree_lookup(&id, &is_tree, r, &root2, "tables/orders/zeta", &err), &err);
	CHECK(th_oid_equal(&id, &b1));
	CHECK_OK(th_repo_tree_read(&l, r, &root2, &err), &err);
	CHECK(l.n == 1 && strcmp(l.entries[0].name, "tables") == 0 && l.entries[0].is_tree);
	th_tree_list_dispose(&l);

	CHECK_OK(th_repo_tree_update(&root3, r, &root2, "tables/users/rows/0001", NULL, 0, &err),
	         &err);
	CHECK(th_repo_tree_lookup(&id, &is_tree, r, &root3, "tables/users/rows", &err) ==
	      TH_ENOTFOUND); /* pruned: it became empty */
	CHECK_OK(th_repo_tree_lookup(&id, &is_tree, r, &root3, "tables/users/schema.json", &err),
	         &err);
	CHECK_OK(th_repo_tree_update(&root3, r, &root3, "tables/users/schema.json", NULL, 0, &err),
	         &err);
	CHECK(th_repo_tree_lookup(&id, &is_tree, r, &root3, "tables/users", &err) == TH_ENOTFOUND);
	CHECK_OK(th_repo_tree_update(&root3, r, &root3, "tables/orders", NULL, 1, &err), &err);
	th_repo_empty_tree(&empty);
	CHECK(th_oid_equal(&root3, &empty)); /* everything pruned */
	/* Removing a path that is not there changes nothing. */
	CHECK_OK(th_repo_tree_update(&id, r, &root2, "tables/nope/x", NULL, 0, &err), &err);
	CHECK(th_oid_equal(&id, &root2));
	CHECK(th_repo_tree_update(&id, r, &root2, "/abs", &b1, 0, &err) == TH_EINVALID);
	CHECK(th_repo_tree_update(&id, r, &root2, "a//b", &b1, 0, &err) == TH_EINVALID);
	CHECK(th_repo_tree_update(&id, r, &root2, "a/../b", &b1, 0, &err) == TH_EINVALID);

	/* git agrees about the final tree. */
	{
		char hex[41];

		th_oid_fmt(hex, &root2);
		CHECK(t_sh(&out, "git -C '%s' ls-tree -r --name-only %s", path, hex) == 0);
		CHECK_STR(out, "tables/orders/alpha\ntables/orders/mid\ntables/orders/zeta\n"
		               "tables/users/rows/0001\ntables/users/schema.json\n");
		free(out);
	}
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

static void test_blobs(void)
{
	char *dir = t_mkdtemp(), *path, *out = NULL, hex[41];
	th_repo *r = fresh_repo(dir, &path);
	th_error err = { 0 };
	th_buf b = TH_BUF_INIT;
	unsigned char bin[1000];
	th_oid id, missing;
	size_t i;

	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7);
	CHECK_OK(th_repo_blob_write(&id, r, bin, sizeof(bin), &err), &err);
	CHECK(th_repo_exists(r, &id));
	CHECK_OK(th_repo_blob_read(&b, r, &id, &err), &err);
	CHECK(b.size == sizeof(bin) && memcmp(b.ptr, bin, sizeof(bin)) == 0);

	CHECK_OK(th_repo_blob_write(&id, r, "hello\n", 6, &err), &err);
	th_oid_fmt(hex, &id);
	CHECK_STR(hex, "ce013625030ba8dba906f756967f9e9ca394464a"); /* git hash-object */
	CHECK_OK(th_repo_blob_read(&b, r, &id, &err), &err);
	CHECK(b.size == 6 && memcmp(b.ptr, "hello\n", 6) == 0);
	CHECK(t_sh(&out, "git -C '%s' cat-file -p %s", path, hex) == 0);
	CHECK_STR(out, "hello\n");
	free(out);

	CHECK_OK(th_repo_blob_write(&id, r, "", 0, &err), &err);
	th_oid_fmt(hex, &id);
	CHECK_STR(hex, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
	CHECK_OK(th_repo_blob_read(&b, r, &id, &err), &err);
	CHECK(b.size == 0);

	memset(&missing, 0x42, sizeof(missing));
	CHECK(!th_repo_exists(r, &missing));
	CHECK(th_repo_blob_read(&b, r, &missing, &err) == TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "not found");
	th_repo_empty_tree(&id); /* a tree is not a blob */
	CHECK(th_repo_blob_read(&b, r, &id, &err) == TH_ENOTFOUND);
	th_buf_dispose(&b);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

struct log_rec {
	th_oid ids[16];
	int n, stop_at;
};

static int log_cb(const th_commit_info *ci, void *payload)
{
	struct log_rec *lr = payload;

	if (lr->n < 16)
		lr->ids[lr->n] = ci->id;
	lr->n++;
	return lr->stop_at && lr->n == lr->stop_at ? 42 : 0;
}

static void test_commits(void)
{
	char *dir = t_mkdtemp(), *path, *out = NULL, hex[41];
	th_repo *r = fresh_repo(dir, &path);
	th_error err = { 0 };
	th_oid c0, a1, a2, b1, m, base, parents[2], missing, id;
	struct log_rec lr;
	th_commit_info ci;

	CHECK_OK(th_repo_branch_get(&c0, r, "main", &err), &err);
	CHECK_OK(commit_file(&a1, r, &c0, "a", "a1\n", &err), &err);
	CHECK_OK(commit_file(&a2, r, &a1, "a", "a2\n", &err), &err);
	CHECK_OK(commit_file(&b1, r, &c0, "b", "b1\n", &err), &err);

	/* A merge commit with two parents. */
	{
		th_commit_info ca;

		CHECK_OK(th_repo_commit_read(&ca, r, &a2, &err), &err);
		parents[0] = a2;
		parents[1] = b1;
		CHECK_OK(th_repo_commit_write(&m, r, &ca.tree, parents, 2, "Carol Smith",
		                              "carol@example.com", "Merge b into a\n\nBody.\n",
		                              &err),
		         &err);
		th_commit_info_dispose(&ca);
	}
	CHECK_OK(th_repo_commit_read(&ci, r, &m, &err), &err);
	CHECK(ci.nparents == 2);
	CHECK(th_oid_equal(&ci.parents[0], &a2) && th_oid_equal(&ci.parents[1], &b1));
	CHECK(th_oid_equal(&ci.id, &m));
	CHECK_STR(ci.author, "Carol Smith");
	CHECK_STR(ci.email, "carol@example.com");
	CHECK_STR(ci.message, "Merge b into a\n\nBody.\n");
	CHECK(ci.time >= (int64_t)time(NULL) - 60);
	th_commit_info_dispose(&ci);
	th_oid_fmt(hex, &m);
	CHECK(t_sh(&out, "git -C '%s' log -1 --format='%%P|%%an|%%s' %s", path, hex) == 0);
	{
		char expect[200], ha[41], hb[41];

		th_oid_fmt(ha, &a2);
		th_oid_fmt(hb, &b1);
		snprintf(expect, sizeof(expect), "%s %s|Carol Smith|Merge b into a\n", ha, hb);
		CHECK_STR(out, expect);
	}
	free(out);

	memset(&missing, 0x42, sizeof(missing));
	CHECK(th_repo_commit_read(&ci, r, &missing, &err) == TH_ENOTFOUND);
	CHECK(th_repo_commit_write(&id, r, &missing, NULL, 0, "x", "x@x", "m", &err) < 0);
	{
		th_oid tree;

		th_repo_empty_tree(&tree);
		CHECK(th_repo_commit_write(&id, r, &tree, &missing, 1, "x", "x@x", "m", &err) < 0);
	}

	/* Merge base. */
	CHECK_OK(th_repo_merge_base(&base, r, &a2, &b1, &err), &err);
	CHECK(th_oid_equal(&base, &c0));
	CHECK_OK(th_repo_merge_base(&base, r, &m, &a1, &err), &err);
	CHECK(th_oid_equal(&base, &a1));
	{
		th_oid tree, orphan;

		th_repo_empty_tree(&tree);
		CHECK_OK(th_repo_commit_write(&orphan, r, &tree, NULL, 0, "x", "x@x", "orphan",
		                              &err),
		         &err);
		CHECK(th_repo_merge_base(&base, r, &orphan, &a1, &err) == TH_ENOTFOUND);
	}

	/* Log: newest first, children before parents, all parents; limit; early stop. */
	memset(&lr, 0, sizeof(lr));
	CHECK_OK(th_repo_log(r, &m, 0, log_cb, &lr, &err), &err);
	CHECK(lr.n == 5);
	CHECK(th_oid_equal(&lr.ids[0], &m));
	CHECK(th_oid_equal(&lr.ids[4], &c0));
	{
		int i, pos_a1 = -1, pos_a2 = -1, pos_b1 = -1;

		for (i = 0; i < 5 && i < lr.n; i++) {
			if (th_oid_equal(&lr.ids[i], &a1))
				pos_a1 = i;
			if (th_oid_equal(&lr.ids[i], &a2))
				pos_a2 = i;
			if (th_oid_equal(&lr.ids[i], &b1))
				pos_b1 = i;
		}
		CHECK(pos_a2 >= 1 && pos_a1 > pos_a2 && pos_b1 >= 1);
	}
	memset(&lr, 0, sizeof(lr));
	CHECK_OK(th_repo_log(r, &a2, 2, log_cb, &lr, &err), &err);
	CHECK(lr.n == 2 && th_oid_equal(&lr.ids[0], &a2) && th_oid_equal(&lr.ids[1], &a1));
	memset(&lr, 0, sizeof(lr));
	lr.stop_at = 3;
	CHECK(th_repo_log(r, &m, 0, log_cb, &lr, &err) == 42);
	CHECK(lr.n == 3);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

static void test_branch_list_delete(void)
{
	char *dir = t_mkdtemp(), *path;
	th_repo *r = fresh_repo(dir, &path);
	th_error err = { 0 };
	char **v = NULL;
	th_oid c0;

	CHECK_OK(th_repo_branch_get(&c0, r, "main", &err), &err);
	CHECK_OK(th_repo_branch_cas(r, "zed", &c0, NULL, NULL, &err), &err);
	CHECK_OK(th_repo_branch_cas(r, "alice/import-1", &c0, NULL, NULL, &err), &err);
	CHECK_OK(th_repo_branch_cas(r, "bob", &c0, NULL, NULL, &err), &err);
	CHECK_OK(th_repo_branch_list(&v, r, &err), &err);
	CHECK(v && v[0] && v[1] && v[2] && v[3] && !v[4]);
	if (v && v[0] && v[1] && v[2] && v[3]) {
		CHECK_STR(v[0], "alice/import-1");
		CHECK_STR(v[1], "bob");
		CHECK_STR(v[2], "main");
		CHECK_STR(v[3], "zed");
	}
	th_strv_free(v);

	CHECK_OK(th_repo_branch_delete(r, "bob", &err), &err);
	CHECK(th_repo_branch_delete(r, "bob", &err) == TH_ENOTFOUND);
	CHECK_STR(err.msg, "branch 'bob' not found");
	CHECK(th_repo_branch_get(&c0, r, "bob", &err) == TH_ENOTFOUND);
	CHECK_OK(th_repo_branch_delete(r, "alice/import-1", &err), &err);
	CHECK(th_repo_branch_delete(r, "main", &err) == TH_EINVALID); /* HEAD's branch */
	CHECK_OK(th_repo_branch_list(&v, r, &err), &err);
	CHECK(v && v[0] && v[1] && !v[2]);
	if (v && v[0] && v[1]) {
		CHECK_STR(v[0], "main");
		CHECK_STR(v[1], "zed");
	}
	th_strv_free(v);
	th_strv_free(NULL);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

static void test_stale_locks(void)
{
	char *dir = t_mkdtemp(), *path = repo_path(dir), f[4096];
	th_error err = { 0 };
	th_repo *r = NULL;
	th_oid c0, c1, c2, id;

	/* Set up through a reader: the first writer open in a process is the one that clears. */
	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	CHECK_OK(th_repo_open(&r, path, 0, &err), &err);
	CHECK_OK(th_repo_branch_get(&c0, r, "main", &err), &err);
	CHECK_OK(commit_file(&c1, r, &c0, "a", "x\n", &err), &err);
	CHECK_OK(commit_file(&c2, r, &c1, "a", "y\n", &err), &err);
	th_repo_free(r);
	r = NULL;

	/* What a crash leaves behind. */
	snprintf(f, sizeof(f), "%s/refs/heads/main.lock", path);
	t_write_file(f, "junk\n", 5);
	snprintf(f, sizeof(f), "%s/refs/heads/alice", path);
	CHECK(mkdir(f, 0777) == 0);
	snprintf(f, sizeof(f), "%s/refs/heads/alice/import-1.lock", path);
	t_write_file(f, "junk\n", 5);
	snprintf(f, sizeof(f), "%s/packed-refs.lock", path);
	t_write_file(f, "", 0);
	snprintf(f, sizeof(f), "%s/HEAD.lock", path);
	t_write_file(f, "", 0);
	snprintf(f, sizeof(f), "%s/objects/pack/tmp_pack_abcdef", path);
	t_write_file(f, "PACK", 4);

	/* A reader leaves them alone, and the lock blocks a ref update. */
	CHECK_OK(th_repo_open(&r, path, 0, &err), &err);
	CHECK(th_repo_branch_cas(r, "main", &c1, &c0, "blocked", &err) == TH_ECONFLICT);
	snprintf(f, sizeof(f), "%s/refs/heads/main.lock", path);
	CHECK(file_exists(f));
	th_repo_free(r);
	r = NULL;

	/* The writer clears them; the update then works. */
	CHECK_OK(th_repo_open(&r, path, 1, &err), &err);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/refs/heads/alice/import-1.lock", path);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/packed-refs.lock", path);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/HEAD.lock", path);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/objects/pack/tmp_pack_abcdef", path);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/refs/heads/alice", path);
	CHECK(file_exists(f)); /* only lock files go */
	CHECK_OK(th_repo_branch_cas(r, "main", &c1, &c0, "after crash", &err), &err);
	CHECK_OK(th_repo_branch_get(&id, r, "main", &err), &err);
	CHECK(th_oid_equal(&id, &c1));
	th_repo_free(r);
	r = NULL;

	/* Later writer opens in the same process leave lock files alone: such a lock belongs to
	 * another thread's update in progress. */
	snprintf(f, sizeof(f), "%s/refs/heads/main.lock", path);
	t_write_file(f, "busy\n", 5);
	CHECK_OK(th_repo_open(&r, path, 1, &err), &err);
	CHECK(file_exists(f));
	CHECK(th_repo_branch_cas(r, "main", &c2, &c1, "blocked", &err) == TH_ECONFLICT);
	CHECK(unlink(f) == 0);
	CHECK_OK(th_repo_branch_cas(r, "main", &c2, &c1, "unblocked", &err), &err);
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

/* Set `path`'s times to `age_s` seconds ago. */
static void backdate(const char *path, time_t age_s)
{
	struct timeval tv[2];

	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age_s;
	tv[1] = tv[0];
	CHECK(utimes(path, tv) == 0);
}

/* Write `path` (empty) last changed `age_s` seconds ago. */
static void aged_file(const char *path, time_t age_s)
{
	t_write_file(path, "", 0);
	backdate(path, age_s);
}

/* On a store shared with other servers the first writer open removes only lock files and
 * temporary packs left alone long enough: a fresh one may be another server's, in use. */
static void test_stale_locks_shared(void)
{
	char *dir = t_mkdtemp(), *path = repo_path(dir), f[4096];
	th_error err = { 0 };
	th_repo *r = NULL;
	th_oid c0, c1;

	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	CHECK_OK(th_repo_open(&r, path, 0, &err), &err);
	CHECK_OK(th_repo_branch_get(&c0, r, "main", &err), &err);
	CHECK_OK(commit_file(&c1, r, &c0, "a", "x\n", &err), &err);
	th_repo_free(r);
	r = NULL;
	snprintf(f, sizeof(f), "%s/refs/heads/main.lock", path);
	aged_file(f, 5); /* another server's update, under way */
	snprintf(f, sizeof(f), "%s/refs/heads/old.lock", path);
	aged_file(f, 120); /* a crashed server's */
	snprintf(f, sizeof(f), "%s/packed-refs.lock", path);
	aged_file(f, 120);
	snprintf(f, sizeof(f), "%s/objects/pack/tmp_pack_live", path);
	aged_file(f, 120); /* a large pack another server is writing */
	snprintf(f, sizeof(f), "%s/objects/pack/tmp_pack_dead", path);
	aged_file(f, 3600);

	th_repo_set_shared(1);
	CHECK_OK(th_repo_open(&r, path, 1, &err), &err);
	th_repo_set_shared(0);
	snprintf(f, sizeof(f), "%s/refs/heads/main.lock", path);
	CHECK(file_exists(f));
	CHECK(th_repo_branch_cas(r, "main", &c1, &c0, "blocked", &err) == TH_ECONFLICT);
	snprintf(f, sizeof(f), "%s/refs/heads/old.lock", path);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/packed-refs.lock", path);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/objects/pack/tmp_pack_live", path);
	CHECK(file_exists(f));
	snprintf(f, sizeof(f), "%s/objects/pack/tmp_pack_dead", path);
	CHECK(!file_exists(f));
	th_repo_free(r);
	free(path);
	t_rmdir(dir);
}

/* Make `path` a directory holding one file, last changed `age_s` seconds ago. */
static void old_dir(const char *path, time_t age_s)
{
	char f[4096];

	CHECK(mkdir(path, 0777) == 0);
	snprintf(f, sizeof(f), "%s/HEAD", path);
	t_write_file(f, "ref: refs/heads/main\n", 21);
	backdate(path, age_s);
}

static void test_sweep_stale(void)
{
	char *dir = t_mkdtemp(), f[4096];
	th_error err = { 0 };
	int n = -1;

	/* Nothing to do in a data dir without repositories. */
	CHECK_OK(th_repo_sweep_stale(&n, dir, 3600 * 1000, &err), &err);
	CHECK(n == 0);
	snprintf(f, sizeof(f), "%s/repos/alice/db1.git", dir);
	CHECK_OK(th_repo_create(f, "alice", &err), &err);
	snprintf(f, sizeof(f), "%s/repos/alice/db2.git.tmp-AbC123", dir);
	old_dir(f, 7200);
	snprintf(f, sizeof(f), "%s/repos/alice/db3.git.rm-zz9zz9", dir);
	old_dir(f, 7200);
	snprintf(f, sizeof(f), "%s/repos/alice/db4.git.tmp-fresh1", dir);
	old_dir(f, 10); /* a creation in progress: left alone */
	snprintf(f, sizeof(f), "%s/repos/alice/db5.tmp-AbC123", dir);
	old_dir(f, 7200); /* not ours: no .git before the suffix */
	snprintf(f, sizeof(f), "%s/repos/alice/db6.git.tmp-toolong1", dir);
	old_dir(f, 7200);

	CHECK_OK(th_repo_sweep_stale(&n, dir, 3600 * 1000, &err), &err);
	CHECK(n == 2);
	snprintf(f, sizeof(f), "%s/repos/alice/db2.git.tmp-AbC123", dir);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/repos/alice/db3.git.rm-zz9zz9", dir);
	CHECK(!file_exists(f));
	snprintf(f, sizeof(f), "%s/repos/alice/db4.git.tmp-fresh1", dir);
	CHECK(file_exists(f));
	snprintf(f, sizeof(f), "%s/repos/alice/db5.tmp-AbC123", dir);
	CHECK(file_exists(f));
	snprintf(f, sizeof(f), "%s/repos/alice/db6.git.tmp-toolong1", dir);
	CHECK(file_exists(f));
	snprintf(f, sizeof(f), "%s/repos/alice/db1.git/HEAD", dir);
	CHECK(file_exists(f));
	t_rmdir(dir);
}

int main(void)
{
	th_error err = { 0 };

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "th_repo_global_init: %s\n", err.msg);
		return 1;
	}
	RUN(test_oid);
	RUN(test_create_open);
	RUN(test_resolve);
	RUN(test_branch_cas);
	RUN(test_cas_race);
	RUN(test_trees);
	RUN(test_blobs);
	RUN(test_commits);
	RUN(test_branch_list_delete);
	RUN(test_sweep_stale);
	RUN(test_stale_locks);
	RUN(test_stale_locks_shared);
	th_repo_global_shutdown();
	TH_TEST_END();
}
