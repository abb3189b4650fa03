/* test_meta_files.c: files as resources and tus uploads in the metadata store
 * (storage/meta_files.c), and the part files of resumable uploads (storage/files_part.c), each
 * test in its own temporary data dir against the real SQLite file: records, the operations that
 * read a file, deletion refused while one is unfinished, retention, disk usage, the backfill of
 * uploads that operations named before the migration, and a part file that is cut back to the
 * recorded offset when it is opened again; and the operations lists' state filter. */
#include <sqlite3.h>
#include <sys/stat.h>

#include "harness.h"
#include "meta_store.h"
#include "util.h"
#include "tablehub/files.h"
#include "tablehub/hash.h"
#include "tablehub/meta.h"
#include "tablehub/meta_files.h"

#define SHA_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_B "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static char *dir;
static th_meta *m;
static int64_t db_id;

static void setup(void)
{
	th_error err = { 0 };
	th_db_info d = { 0 };

	dir = t_mkdtemp();
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "shop", NULL, 0, &err), &err);
	CHECK_OK(th_meta_db_get(&d, m, "alice", "shop", &err), &err);
	db_id = d.id;
	th_db_info_dispose(&d);
}

static void teardown(void)
{
	th_meta_close(m);
	m = NULL;
	t_rmdir(dir);
}

/* A Pending import of sha by alice; its id into id. */
/* A Pending import of alice/shop reading the upload `sha`, linked to file record file_id (NULL:
 * none) as an upload's is. Returns what th_meta_op_create returned. */
static int op_new(char id[TH_UUID_SIZE], const char *sha, const char *file_id, th_error *err)
{
	th_op_new o;

	memset(&o, 0, sizeof(o));
	o.kind = "import";
	o.owner = "alice";
	o.db = "shop";
	o.creator = "alice";
	o.upload_sha256 = sha;
	o.file_name = "a.csv";
	o.table_name = "t";
	o.file_id = file_id;
	return th_meta_op_create(id, m, &o, err);
}

static void op_of(char id[TH_UUID_SIZE], const char *sha)
{
	th_error err = { 0 };

	CHECK_OK(op_new(id, sha, NULL, &err), &err);
}

static void test_records(void)
{
	char a[TH_UUID_SIZE], b[TH_UUID_SIZE], op[TH_UUID_SIZE], next[TH_PAGE_TOKEN_SIZE];
	char long_name[400];
	th_file_info f, *items = NULL;
	th_file_use *uses = NULL;
	th_error err = { 0 };
	uint64_t bytes = 0, count = 0;
	size_t n = 0;

	setup();
	/* A name over the limit is cut at a character boundary: 300 bytes of "é". */
	for (size_t i = 0; i < 300; i += 2)
		memcpy(long_name + i, "\xc3\xa9", 2);
	long_name[300] = '\0';
	CHECK_OK(th_meta_file_add(a, m, db_id, "a.csv", 10, SHA_A, "Csv", "alice", &err), &err);
	CHECK_OK(th_meta_file_add(b, m, db_id, long_name, 20, SHA_B, "", "bob", &err), &err);
	CHECK(th_meta_file_add(b, m, db_id, "x", 1, "nothex", "", "bob", &err) == TH_EINVALID);
	CHECK_OK(th_meta_file_get(&f, m, db_id, b, &err), &err);
	CHECK(strlen(f.name) == 254 && f.size == 20 && strcmp(f.uploader, "bob") == 0);
	CHECK(th_meta_file_get(&f, m, db_id + 1, a, &err) == TH_ENOTFOUND);
	CHECK(th_meta_file_get(&f, m, db_id, "nope", &err) == TH_ENOTFOUND);
	/* Newest first, paged. */
	CHECK_OK(th_meta_file_list(&items, &n, next, m, db_id, NULL, 1, &err), &err);
	CHECK(n == 1 && strcmp(items[0].id, b) == 0 && strcmp(next, "1") == 0);
	free(items);
	CHECK_OK(th_meta_file_list(&items, &n, next, m, db_id, next, 1, &err), &err);
	CHECK(n == 1 && strcmp(items[0].id, a) == 0 && next[0] == '\0');
	free(items);
	CHECK(th_meta_file_list(&items, &n, next, m, db_id, "x1", 1, &err) == TH_EINVALID);
	/* Two records of one content count once on disk. */
	CHECK_OK(th_meta_file_add(b, m, db_id, "again.csv", 10, SHA_A, "Csv", "alice", &err), &err);
	CHECK_OK(th_meta_files_usage(&bytes, &count, m, db_id, &err), &err);
	CHECK(bytes == 30 && count == 2);
	/* An operation reads a: it is listed with its state, and it is the op's file. */
	op_of(op, SHA_A);
	CHECK_OK(th_meta_file_use(m, a, op, &err), &err);
	CHECK(th_meta_file_use(m, "nope", op, &err) == TH_ENOTFOUND);
	CHECK_OK(th_meta_file_uses(&uses, &n, m, a, &err), &err);
	CHECK(n == 1 && strcmp(uses[0].op_id, op) == 0 && uses[0].state == TH_OPSTATE_PENDING &&
	      strcmp(uses[0].kind, "import") == 0);
	free(uses);
	CHECK_OK(th_meta_file_of_op(&f, m, op, &err), &err);
	CHECK(strcmp(f.id, a) == 0 && f.ops_unfinished == 1);
	CHECK(th_meta_file_of_op(&f, m, "other", &err) == TH_ENOTFOUND);
	teardown();
}

/* An upload's path: the file record made lazily (th_meta_lazy), then an operation that names it
 * in th_op_new.file_id: one durable commit makes the operation and the link; a file that does not
 * exist fails the operation with nothing of it written. */
static void test_op_with_file(void)
{
	char a[TH_UUID_SIZE], op[TH_UUID_SIZE], op2[TH_UUID_SIZE];
	th_file_info f;
	th_file_use *uses = NULL;
	th_op_list list;
	th_error err = { 0 };
	size_t n = 0;

	setup();
	th_meta_lazy(m, 1);
	CHECK_OK(th_meta_file_add(a, m, db_id, "a.csv", 10, SHA_A, "Csv", "alice", &err), &err);
	th_meta_lazy(m, 0);
	CHECK_OK(op_new(op, SHA_A, a, &err), &err);
	CHECK_OK(th_meta_file_of_op(&f, m, op, &err), &err);
	CHECK(strcmp(f.id, a) == 0 && f.ops_unfinished == 1);
	CHECK_OK(th_meta_file_uses(&uses, &n, m, a, &err), &err);
	CHECK(n == 1 && strcmp(uses[0].op_id, op) == 0);
	free(uses);
	CHECK(op_new(op2, SHA_A, "no-such-file", &err) == TH_ENOTFOUND);
	CHECK(strstr(err.msg, "not found") != NULL);
	CHECK_OK(th_meta_op_list_db(&list, NULL, m, "alice", "shop", NULL, NULL, 0, &err), &err);
	CHECK(list.n == 1 && strcmp(list.items[0].id, op) == 0);
	th_op_list_dispose(&list);
	CHECK_OK(th_meta_file_uses(&uses, &n, m, a, &err), &err);
	CHECK(n == 1);
	free(uses);
	teardown();
}

static void test_delete_and_expire(void)
{
	char a[TH_UUID_SIZE], b[TH_UUID_SIZE], c[TH_UUID_SIZE], op[TH_UUID_SIZE], sha[65];
	char(*shas)[65] = NULL;
	th_error err = { 0 };
	size_t n = 0, files = 0;
	int sha_free = -1;

	setup();
	CHECK_OK(th_meta_file_add(a, m, db_id, "a.csv", 10, SHA_A, "Csv", "alice", &err), &err);
	CHECK_OK(th_meta_file_add(b, m, db_id, "b.csv", 10, SHA_A, "Csv", "alice", &err), &err);
	CHECK_OK(th_meta_file_add(c, m, db_id, "c.csv", 20, SHA_B, "Csv", "alice", &err), &err);
	/* Refused while an unfinished operation reads it; the message names the operation. */
	op_of(op, SHA_A);
	CHECK_OK(th_meta_file_use(m, a, op, &err), &err);
	CHECK(th_meta_file_delete(sha, &sha_free, m, db_id, a, &err) == TH_ECONFLICT);
	CHECK_CONTAINS(err.msg, op);
	CHECK_OK(th_meta_op_fail(m, op, 0, "stop", 0, 0, &err), &err);
	/* Now it goes; its bytes stay, since b names them too. */
	CHECK_OK(th_meta_file_delete(sha, &sha_free, m, db_id, a, &err), &err);
	CHECK(sha_free == 0 && strcmp(sha, SHA_A) == 0);
	CHECK(th_meta_file_delete(sha, &sha_free, m, db_id, a, &err) == TH_ENOTFOUND);
	/* Retention: everything last used before now + 1 s goes, and both contents are free. */
	CHECK_OK(th_meta_files_expire(&shas, &n, &files, m, th_now_ms() - 60000, &err), &err);
	CHECK(n == 0 && files == 0);
	free(shas);
	CHECK_OK(th_meta_files_expire(&shas, &n, &files, m, th_now_ms() + 1000, &err), &err);
	CHECK(files == 2 && n == 2);
	free(shas);
	/* A content an unfinished operation still names is not free, even without a record. */
	CHECK_OK(th_meta_file_add(a, m, db_id, "a.csv", 10, SHA_A, "Csv", "alice", &err), &err);
	op_of(op, SHA_A);
	CHECK_OK(th_meta_files_expire(&shas, &n, &files, m, th_now_ms() + 1000, &err), &err);
	CHECK(files == 1 && n == 0);
	free(shas);
	teardown();
}

static void test_tus_records(void)
{
	char id[TH_UUID_SIZE];
	char(*ids)[TH_UUID_SIZE] = NULL;
	th_tus_info t;
	th_error err = { 0 };
	size_t n = 0;

	setup();
	CHECK_OK(
	        th_meta_tus_create(id, m, db_id, "alice", 100, "tableName dA==", "{\"x\":1}", &err),
	        &err);
	CHECK(th_meta_tus_create(id, m, db_id, "no body", 1, NULL, NULL, &err) == TH_EINVALID);
	CHECK_OK(th_meta_tus_get(&t, m, db_id, id, &err), &err);
	CHECK(t.length == 100 && t.offset == 0 && t.state == TH_TUS_OPEN);
	CHECK_STR(t.metadata, "tableName dA==");
	CHECK_STR(t.params, "{\"x\":1}");
	th_tus_info_dispose(&t);
	CHECK(th_meta_tus_get(&t, m, db_id + 1, id, &err) == TH_ENOTFOUND);
	CHECK_OK(th_meta_tus_set_offset(m, id, 40, &err), &err);
	CHECK(th_meta_tus_set_offset(m, id, 101, &err) == TH_ENOTFOUND); /* past the length */
	CHECK_OK(th_meta_tus_done(m, id, "file", "op", &err), &err);
	CHECK(th_meta_tus_set_offset(m, id, 50, &err) == TH_ENOTFOUND); /* done: no more */
	CHECK_OK(th_meta_tus_get(&t, m, db_id, id, &err), &err);
	CHECK(t.state == TH_TUS_DONE && t.offset == 100 && strcmp(t.op_id, "op") == 0);
	th_tus_info_dispose(&t);
	CHECK_OK(th_meta_tus_stale(&ids, &n, m, th_now_ms() + 1000, &err), &err);
	CHECK(n == 1 && strcmp(ids[0], id) == 0);
	free(ids);
	CHECK_OK(th_meta_tus_delete(m, id, &err), &err);
	CHECK(th_meta_tus_delete(m, id, &err) == TH_ENOTFOUND);
	teardown();
}

/* A store of the schema before the files' migration whose operations named uploads gets a file
 * per database and content, linked to those operations. */
static void test_backfill(void)
{
	char op1[TH_UUID_SIZE], op2[TH_UUID_SIZE], path[1024], sql[256];
	th_file_info f;
	th_file_use *uses = NULL;
	th_error err = { 0 };
	sqlite3 *db;
	size_t n = 0;

	if (meta_on_pg()) /* a migration of SQLite's (PostgreSQL's schema starts with files) */
		return;
	setup();
	op_of(op1, SHA_A);
	op_of(op2, SHA_A);
	th_meta_close(m);
	snprintf(path, sizeof(path), "%s/meta.sqlite", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	snprintf(sql, sizeof(sql),
	         "DROP TABLE file_operations; DROP TABLE files; DROP TABLE tus_uploads; "
	         "PRAGMA user_version = %d",
	         TH_META_FILES_MIGRATION - 1);
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_file_of_op(&f, m, op1, &err), &err);
	CHECK(strcmp(f.sha256, SHA_A) == 0 && f.db_id == db_id && strcmp(f.name, "a.csv") == 0);
	CHECK(strlen(f.id) == 36 && f.id[8] == '-');
	CHECK_OK(th_meta_file_uses(&uses, &n, m, f.id, &err), &err);
	CHECK(n == 2);
	free(uses);
	teardown();
}

static void hash_update(void *ctx, const void *data, size_t len)
{
	th_sha256_update(ctx, data, len);
}

static void test_part_files(void)
{
	const char *id = "0123abcd-0000-4000-8000-00000000beef";
	th_part *p = NULL;
	th_error err = { 0 };
	th_sha256 *h = th_sha256_new();
	unsigned char digest[32];
	char sha[65], want[65], path[1024];
	struct stat sb;

	dir = t_mkdtemp();
	CHECK(th_part_create(dir, "../x", &err) == TH_EINVALID);
	CHECK_OK(th_part_create(dir, id, &err), &err);
	CHECK(th_part_create(dir, id, &err) == TH_EEXISTS);
	CHECK_OK(th_part_open(&p, dir, id, 0, &err), &err);
	CHECK_OK(th_part_write(p, "hello ", 6, &err), &err);
	CHECK_OK(th_part_sync(p, &err), &err);
	CHECK_OK(th_part_write(p, "unrecorded", 10, &err), &err);
	th_part_close(p);
	/* Opened again at the recorded offset 6: the unrecorded bytes are cut. */
	CHECK(th_part_open(&p, dir, id, 100, &err) == TH_EINVALID);
	CHECK_OK(th_part_open(&p, dir, id, 6, &err), &err);
	CHECK(th_part_offset(p) == 6);
	CHECK_OK(th_part_write(p, "world!", 6, &err), &err);
	CHECK_OK(th_part_truncate(p, 11, &err), &err);
	CHECK(th_part_offset(p) == 11);
	th_part_close(p);
	CHECK_OK(th_part_read(dir, id, 0, hash_update, h, &err), &err);
	th_sha256_final(h, digest);
	th_hex(sha, digest, 32);
	th_sha256_hex(want, "hello world", 11);
	CHECK_STR(sha, want);
	CHECK_OK(th_part_finish(dir, id, sha, &err), &err);
	snprintf(path, sizeof(path), "%s/uploads/%s", dir, sha);
	CHECK(stat(path, &sb) == 0 && sb.st_size == 11);
	CHECK(th_part_open(&p, dir, id, 0, &err) == TH_ENOTFOUND);
	CHECK_OK(th_part_remove(dir, id, &err), &err); /* none: no error */
	{
		uint64_t bytes = 0;
		CHECK_OK(th_upload_remove(&bytes, dir, sha, &err), &err);
		CHECK(bytes == 11 && stat(path, &sb) != 0);
	}
	th_sha256_free(h);
	t_rmdir(dir);
}

/* th_meta_op_list: by database or creator, narrowed by kind and state, paged. */
static void test_op_query(void)
{
	char a[TH_UUID_SIZE], b[TH_UUID_SIZE], c[TH_UUID_SIZE], next[TH_PAGE_TOKEN_SIZE];
	th_op_query q = { "alice", "shop", NULL, NULL, TH_OPSTATE_FAILED };
	th_op_list l = { NULL, 0 };
	th_error err = { 0 };

	setup();
	op_of(a, SHA_A);
	op_of(b, SHA_A);
	op_of(c, SHA_B);
	CHECK_OK(th_meta_op_fail(m, b, 0, "no", 0, 0, &err), &err);
	CHECK_OK(th_meta_op_list(&l, next, m, &q, NULL, 0, &err), &err);
	CHECK(l.n == 1 && strcmp(l.items[0].id, b) == 0);
	th_op_list_dispose(&l);
	q.state = TH_OPSTATE_PENDING;
	CHECK_OK(th_meta_op_list(&l, next, m, &q, NULL, 1, &err), &err);
	CHECK(l.n == 1 && strcmp(l.items[0].id, c) == 0 && strcmp(next, "1") == 0);
	th_op_list_dispose(&l);
	q.kind = "merge";
	CHECK_OK(th_meta_op_list(&l, next, m, &q, NULL, 0, &err), &err);
	CHECK(l.n == 0);
	th_op_list_dispose(&l);
	q.kind = NULL;
	q.state = 0;
	q.creator = "alice"; /* across databases */
	CHECK_OK(th_meta_op_list(&l, next, m, &q, NULL, 0, &err), &err);
	CHECK(l.n == 3);
	th_op_list_dispose(&l);
	q.state = (th_op_state)9;
	CHECK(th_meta_op_list(&l, next, m, &q, NULL, 0, &err) == TH_EINVALID);
	teardown();
}

int main(void)
{
	RUN(test_op_query);
	RUN(test_records);
	RUN(test_op_with_file);
	RUN(test_delete_and_expire);
	RUN(test_tus_records);
	RUN(test_backfill);
	RUN(test_part_files);
	TH_TEST_END();
}
