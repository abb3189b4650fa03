/* test_meta.c: the metadata store (storage/meta*.c: users, tokens, databases, operations) and
 * uploads on disk (storage/files.c), each test in its own temporary data dir, against the real
 * SQLite file, or with TABLEHUB_META set a real PostgreSQL server (tests/meta_store.h; ctest runs
 * it both ways). Pull requests are tested in test_meta_pulls.c. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"
#include "meta_store.h"
#include "util.h"
#include "tablehub/files.h"
#include "tablehub/hash.h"
#include "tablehub/meta.h"

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static size_t count_dir(const char *dir, const char *sub)
{
	char path[1024];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The same on PostgreSQL: versions are rows of th_schema_migrations. */
static void test_migrations_idempotent_pg(void)
{
	char *dir = t_mkdtemp();
	th_error err;
	th_meta *m = NULL;
	int64_t v;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	th_meta_close(m);
	v = sql_int(dir, "SELECT max(version) FROM th_schema_migrations");
	CHECK(v >= 1);
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "first", "d", 0, &err), &err);
	th_meta_close(m);
	/* Opening again neither re-runs a migration nor loses data. */
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK(sql_int(dir, "SELECT max(version) FROM th_schema_migrations") == v);
	CHECK(sql_int(dir, "SELECT count(*) FROM th_schema_migrations") == v);
	CHECK(sql_int(dir, "SELECT count(*) FROM databases") == 1);
	th_meta_close(m);
	/* A schema from a newer tablehub is refused, not downgraded. */
	CHECK(sql_int(dir, "INSERT INTO th_schema_migrations VALUES (999, 0)") == 1);
	CHECK(meta_open(&m, dir, &err) == TH_ESTORE);
	CHECK_CONTAINS(err.msg, "newer");
	/* An address that is not PostgreSQL's is refused up front. */
	{
		th_meta_options o = { NULL, "mysql://x" };
		CHECK(th_meta_open_with(&m, dir, &o, &err) == TH_EINVALID);
	}
	t_rmdir(dir);
}

static void test_migrations_idempotent(void)
{
	char *dir = t_mkdtemp();
	th_error err;
	th_meta *m = NULL;

	if (meta_on_pg()) {
		t_rmdir(dir);
		test_migrations_idempotent_pg();
		return;
	}
	CHECK_OK(meta_open(&m, dir, &err), &err);
	th_meta_close(m);
	CHECK(sql_int(dir, "PRAGMA user_version") == th_meta_schema_version());
	CHECK(th_meta_schema_version() >= 1);
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "first", "d", 0, &err), &err);
	th_meta_close(m);
	/* Opening again neither re-runs a migration nor loses data. */
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK(sql_int(dir, "PRAGMA user_version") == th_meta_schema_version());
	CHECK(sql_int(dir, "SELECT count(*) FROM databases") == 1);
	th_meta_close(m);
	{
		char *out = NULL;
		CHECK(t_sh(&out, "sqlite3 '%s/meta.sqlite' 'PRAGMA journal_mode'", dir) == 0);
		CHECK_CONTAINS(out, "wal");
		free(out);
	}
	/* A file from a newer tablehub is refused, not downgraded. */
	{
		char cmd[1200];
		sqlite3 *db;
		snprintf(cmd, sizeof(cmd), "%s/meta.sqlite", dir);
		CHECK(sqlite3_open(cmd, &db) == SQLITE_OK);
		CHECK(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK);
		sqlite3_close(db);
		CHECK(meta_open(&m, dir, &err) == TH_ESTORE);
		CHECK_CONTAINS(err.msg, "newer");
	}
	t_rmdir(dir);
}

static void test_users_tokens(void)
{
	char *dir = t_mkdtemp(), tok[TH_TOKEN_SIZE], tok2[TH_TOKEN_SIZE], user[65],
	     bad[TH_TOKEN_SIZE];
	th_error err;
	th_meta *m = NULL;
	th_user_info ui;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_user_create(tok, m, "alice", &err), &err);
	CHECK(strncmp(tok, "thp_", 4) == 0 && strlen(tok) == TH_TOKEN_SIZE - 1);
	CHECK(th_meta_user_create(tok2, m, "alice", &err) == TH_EEXISTS);
	CHECK_CONTAINS(err.msg, "user 'alice' already exists");
	CHECK(th_meta_user_create(tok2, m, "bad name", &err) == TH_EINVALID);
	CHECK(th_meta_user_create(tok2, m, "../x", &err) == TH_EINVALID);

	CHECK_OK(th_meta_user_get(&ui, m, "alice", &err), &err);
	CHECK_STR(ui.name, "alice");
	CHECK(ui.created_at > 1600000000000LL);
	CHECK(th_meta_user_get(&ui, m, "bob", &err) == TH_ENOTFOUND);

	CHECK_OK(th_meta_token_lookup(user, m, tok, &err), &err);
	CHECK_STR(user, "alice");
	/* A second token for the same user; both work, and differ. */
	CHECK_OK(th_meta_token_create(tok2, m, "alice", &err), &err);
	CHECK(strcmp(tok, tok2) != 0);
	memset(user, 0, sizeof(user));
	CHECK_OK(th_meta_token_lookup(user, m, tok2, &err), &err);
	CHECK_STR(user, "alice");
	CHECK(th_meta_token_create(tok2, m, "bob", &err) == TH_ENOTFOUND);

	/* Wrong tokens: one changed digit, garbage, empty. The message never echoes the token. */
	memcpy(bad, tok, sizeof(bad));
	bad[10] = bad[10] == 'a' ? 'b' : 'a';
	CHECK(th_meta_token_lookup(user, m, bad, &err) == TH_EAUTH);
	CHECK(strstr(err.msg, bad + 4) == NULL);
	CHECK(th_meta_token_lookup(user, m, "thp_nothex", &err) == TH_EAUTH);
	CHECK(th_meta_token_lookup(user, m, "", &err) == TH_EAUTH);
	CHECK(th_meta_token_lookup(user, m, tok + 4, &err) == TH_EAUTH);
	CHECK(sql_int(dir, "SELECT count(*) FROM tokens WHERE last_used_at > 0") == 2);
	th_meta_close(m);

	/* The token's bytes are nowhere in the database files; its SHA-256 is. */
	{
		const char *suffixes[] = { "", "-wal" };
		char path[1024], hash[65], sql[256];
		size_t i, len;
		for (i = 0; i < 2; i++) {
			char *data;
			snprintf(path, sizeof(path), "%s/meta.sqlite%s", dir, suffixes[i]);
			if ((data = t_read_file(path, &len)) == NULL)
				continue;
			CHECK(memmem(data, len, tok, strlen(tok)) == NULL);
			CHECK(memmem(data, len, tok + 4, strlen(tok + 4)) == NULL);
			CHECK(memmem(data, len, tok2 + 4, strlen(tok2 + 4)) == NULL);
			free(data);
		}
		th_sha256_hex(hash, tok, strlen(tok));
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM tokens WHERE hash = '%s'", hash);
		CHECK(sql_int(dir, sql) == 1);
	}
	t_rmdir(dir);
}

static void test_databases(void)
{
	char *dir = t_mkdtemp();
	th_error err;
	th_meta *m = NULL;
	th_db_info d;
	th_db_list l;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "museums", "art collections", 0, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "secret", NULL, 1, &err), &err);
	CHECK_OK(th_meta_db_create(m, "bob", "museums", "", 0, &err), &err);
	CHECK(th_meta_db_create(m, "alice", "museums", "again", 0, &err) == TH_EEXISTS);
	CHECK_CONTAINS(err.msg, "database 'alice/museums' already exists");
	CHECK(th_meta_db_create(m, "alice", "a/b", NULL, 0, &err) == TH_EINVALID);
	CHECK(th_meta_db_create(m, "", "x", NULL, 0, &err) == TH_EINVALID);

	CHECK_OK(th_meta_db_get(&d, m, "alice", "museums", &err), &err);
	CHECK_STR(d.owner, "alice");
	CHECK_STR(d.name, "museums");
	CHECK_STR(d.description, "art collections");
	CHECK(d.is_private == 0 && d.id > 0 && d.created_at > 0);
	th_db_info_dispose(&d);
	CHECK_OK(th_meta_db_get(&d, m, "alice", "secret", &err), &err);
	CHECK(d.is_private == 1);
	CHECK_STR(d.description, "");
	th_db_info_dispose(&d);
	CHECK(th_meta_db_get(&d, m, "alice", "nope", &err) == TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "database 'alice/nope' not found");

	CHECK_OK(th_meta_db_list(&l, m, "alice", &err), &err);
	CHECK(l.n == 2);
	if (l.n == 2) {
		CHECK_STR(l.items[0].name, "museums");
		CHECK_STR(l.items[1].name, "secret");
	}
	th_db_list_dispose(&l);
	CHECK_OK(th_meta_db_list(&l, m, NULL, &err), &err);
	CHECK(l.n == 3);
	th_db_list_dispose(&l);
	th_meta_close(m);
	t_rmdir(dir);
}

static th_op_new op_new(const char *owner, const char *db, const char *creator)
{
	th_op_new o;

	memset(&o, 0, sizeof(o));
	o.kind = "import";
	o.owner = owner;
	o.db = db;
	o.creator = creator;
	o.params = "{\"tableName\":\"t\"}";
	o.upload_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	o.file_name = "t.csv";
	o.table_name = "t";
	o.bytes_total = 1234;
	return o;
}

static void test_operation_lifecycle(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE], id2[TH_UUID_SIZE], ts[32];
	th_error err;
	th_meta *m = NULL;
	th_op_new n = op_new("alice", "museums", "bob");
	th_op_info op, c;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_op_create(id, m, &n, &err), &err);
	CHECK(strlen(id) == 36 && id[14] == '4' && id[8] == '-');
	CHECK_OK(th_meta_op_get(&op, m, id, &err), &err);
	CHECK(op.state == TH_OPSTATE_PENDING);
	CHECK_STR(th_op_state_name(op.state), "Pending");
	CHECK_STR(op.kind, "import");
	CHECK_STR(op.owner, "alice");
	CHECK_STR(op.db, "museums");
	CHECK_STR(op.creator, "bob");
	CHECK_STR(op.params, "{\"tableName\":\"t\"}");
	CHECK_STR(op.file_name, "t.csv");
	CHECK_STR(op.branch_name, "");
	CHECK(op.bytes_total == 1234 && op.attempts == 0 && op.result == NULL);
	th_time_fmt(ts, op.created_at);
	CHECK(strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z');
	th_op_info_dispose(&op);
	th_time_fmt(ts, 1684864005LL * 1000 + 35);
	CHECK_STR(ts, "2023-05-23T17:46:45.035Z");

	CHECK_OK(th_meta_op_claim(&c, m, 60000, &err), &err);
	CHECK_STR(c.id, id);
	CHECK(c.state == TH_OPSTATE_IN_PROGRESS && c.attempts == 1);
	CHECK(c.lease_expires_at > th_now_ms() + 50000);
	CHECK(th_meta_op_claim(&op, m, 60000, &err) == TH_ENOTFOUND);
	CHECK_OK(th_meta_op_progress(m, id, 1, 1000, 10, 60000, &err), &err);
	CHECK_OK(th_meta_op_extend(m, id, 1, 60000, &err), &err);
	CHECK_OK(th_meta_op_get(&op, m, id, &err), &err);
	CHECK(op.bytes_read == 1000 && op.rows_processed == 10);
	CHECK_STR(th_op_state_name(op.state), "In Progress");
	th_op_info_dispose(&op);
	CHECK_OK(th_meta_op_complete(m, id, 1, "{\"pull_id\":7}", 7, &err), &err);
	CHECK_OK(th_meta_op_get(&op, m, id, &err), &err);
	CHECK(op.state == TH_OPSTATE_COMPLETED && op.pull_id == 7);
	CHECK_STR(op.result, "{\"pull_id\":7}");
	th_op_info_dispose(&op);
	/* A finished operation takes no more updates. */
	CHECK(th_meta_op_fail(m, id, 1, "late", 0, 0, &err) == TH_ECONFLICT);
	CHECK(th_meta_op_fail(m, id, 0, "late", 0, 0, &err) == TH_ECONFLICT);
	CHECK(th_meta_op_extend(m, "00000000-0000-4000-8000-000000000000", 1, 10, &err) ==
	      TH_ENOTFOUND);
	th_op_info_dispose(&c);

	/* Failure with a place in the file. */
	CHECK_OK(th_meta_op_create(id2, m, &n, &err), &err);
	CHECK_OK(th_meta_op_claim(&c, m, 60000, &err), &err);
	CHECK_STR(c.id, id2);
	CHECK_OK(th_meta_op_fail(m, id2, 1, "line 3, column 'age': 'x' is not an integer", 3, 2,
	                         &err),
	         &err);
	CHECK_OK(th_meta_op_get(&op, m, id2, &err), &err);
	CHECK(op.state == TH_OPSTATE_FAILED && op.error_line == 3 && op.error_column == 2);
	CHECK_STR(op.error_message, "line 3, column 'age': 'x' is not an integer");
	th_op_info_dispose(&op);
	th_op_info_dispose(&c);

	/* Bad kinds and names. */
	n.kind = "sql";
	CHECK(th_meta_op_create(id2, m, &n, &err) == TH_EINVALID);
	n.kind = "merge";
	n.creator = NULL;
	CHECK(th_meta_op_create(id2, m, &n, &err) == TH_EINVALID);
	CHECK(th_meta_op_get(&op, m, "nope", &err) == TH_ENOTFOUND);
	th_meta_close(m);
	t_rmdir(dir);
}

static void test_operation_lists(void)
{
	char *dir = t_mkdtemp(), ids[7][TH_UUID_SIZE], next[TH_PAGE_TOKEN_SIZE],
	     tok[TH_PAGE_TOKEN_SIZE];
	th_error err;
	th_meta *m = NULL;
	th_op_list l;
	int i;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	for (i = 0; i < 5; i++) {
		th_op_new n = op_new("alice", "museums", i % 2 ? "bob" : "carol");
		CHECK_OK(th_meta_op_create(ids[i], m, &n, &err), &err);
	}
	{
		th_op_new n = op_new("alice", "other", "bob");
		CHECK_OK(th_meta_op_create(ids[5], m, &n, &err), &err);
		n.kind = "merge";
		n.db = "museums";
		CHECK_OK(th_meta_op_create(ids[6], m, &n, &err), &err);
	}
	/* museums: 6 (merge) 4 3 | 2 1 0, newest first. */
	CHECK_OK(th_meta_op_list_db(&l, next, m, "alice", "museums", NULL, NULL, 3, &err), &err);
	CHECK(l.n == 3);
	if (l.n == 3) {
		CHECK_STR(l.items[0].id, ids[6]);
		CHECK_STR(l.items[1].id, ids[4]);
		CHECK_STR(l.items[2].id, ids[3]);
	}
	CHECK(next[0] != '\0');
	th_op_list_dispose(&l);
	memcpy(tok, next, sizeof(tok));
	CHECK_OK(th_meta_op_list_db(&l, next, m, "alice", "museums", NULL, tok, 3, &err), &err);
	CHECK(l.n == 3);
	if (l.n == 3) {
		CHECK_STR(l.items[0].id, ids[2]);
		CHECK_STR(l.items[2].id, ids[0]);
	}
	CHECK_STR(next, "");
	th_op_list_dispose(&l);
	CHECK_OK(th_meta_op_list_db(&l, next, m, "alice", "museums", "merge", NULL, 0, &err), &err);
	CHECK(l.n == 1 && strcmp(l.items[0].kind, "merge") == 0);
	th_op_list_dispose(&l);
	CHECK(th_meta_op_list_db(&l, next, m, "alice", "museums", NULL, "-1", 3, &err) ==
	      TH_EINVALID);

	/* By creator across databases: bob made 1, 3, 5, 6. */
	CHECK_OK(th_meta_op_list_creator(&l, next, m, "bob", NULL, NULL, 0, &err), &err);
	CHECK(l.n == 4);
	if (l.n == 4) {
		CHECK_STR(l.items[0].id, ids[6]);
		CHECK_STR(l.items[1].id, ids[5]);
		CHECK_STR(l.items[3].id, ids[1]);
	}
	th_op_list_dispose(&l);
	CHECK_OK(th_meta_op_list_creator(&l, next, m, "nobody", NULL, NULL, 0, &err), &err);
	CHECK(l.n == 0 && next[0] == '\0');
	th_op_list_dispose(&l);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Two threads, each with its own connection, claim until the queue is empty. */
#define NCLAIM 120

struct claimer {
	const char *dir;
	char ids[NCLAIM][TH_UUID_SIZE];
	int n;
	int errors;
};

static void *claim_all(void *arg)
{
	struct claimer *c = arg;
	th_meta *m = NULL;
	th_error err;
	th_op_info op;
	int rc;

	if (meta_open(&m, c->dir, &err) < 0) {
		c->errors++;
		return NULL;
	}
	while ((rc = th_meta_op_claim(&op, m, 60000, &err)) != TH_ENOTFOUND) {
		if (rc < 0) {
			fprintf(stderr, "claim: %s\n", err.msg);
			c->errors++;
			break;
		}
		memcpy(c->ids[c->n++], op.id, TH_UUID_SIZE);
		th_op_info_dispose(&op);
	}
	th_meta_close(m);
	return NULL;
}

static void test_claim_exclusive(void)
{
	char *dir = t_mkdtemp();
	static struct claimer a, b;
	th_error err;
	th_meta *m = NULL;
	pthread_t ta, tb;
	int i, k, dup = 0, found;
	static char ids[NCLAIM][TH_UUID_SIZE];

	CHECK_OK(meta_open(&m, dir, &err), &err);
	for (i = 0; i < NCLAIM; i++) {
		th_op_new n = op_new("alice", "museums", "bob");
		CHECK_OK(th_meta_op_create(ids[i], m, &n, &err), &err);
	}
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.dir = b.dir = dir;
	pthread_create(&ta, NULL, claim_all, &a);
	pthread_create(&tb, NULL, claim_all, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(a.errors == 0 && b.errors == 0);
	CHECK(a.n + b.n == NCLAIM);
	/* Each id was claimed by exactly one thread, once. */
	for (i = 0; i < NCLAIM; i++) {
		found = 0;
		for (k = 0; k < a.n; k++)
			found += strcmp(a.ids[k], ids[i]) == 0;
		for (k = 0; k < b.n; k++)
			found += strcmp(b.ids[k], ids[i]) == 0;
		dup += found != 1;
	}
	CHECK(dup == 0);
	CHECK(sql_int(dir, "SELECT count(*) FROM operations WHERE state = 'In Progress' AND "
	                   "attempts = 1") == NCLAIM);
	fprintf(stderr, "claims: %d and %d\n", a.n, b.n);
	th_meta_close(m);
	t_rmdir(dir);
}

static void test_lease_expiry(void)
{
	char *dir = t_mkdtemp(), id[TH_UUID_SIZE];
	th_error err;
	th_meta *m = NULL;
	th_op_new n = op_new("alice", "museums", "bob");
	th_op_info c1, c2, op;
	int requeued = -1;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_op_create(id, m, &n, &err), &err);
	/* A lease long enough that a loaded machine cannot outlast it between two calls. */
	CHECK_OK(th_meta_op_claim(&c1, m, 500, &err), &err);
	CHECK(c1.attempts == 1);
	/* Still leased: nothing to claim. */
	CHECK(th_meta_op_claim(&c2, m, 500, &err) == TH_ENOTFOUND);
	sleep_ms(600);
	CHECK_OK(th_meta_op_claim(&c2, m, 60000, &err), &err);
	CHECK_STR(c2.id, id);
	CHECK(c2.attempts == 2);
	/* The first attempt is fenced off. */
	CHECK(th_meta_op_extend(m, id, 1, 60000, &err) == TH_ECONFLICT);
	CHECK_CONTAINS(err.msg, "no longer held");
	CHECK(th_meta_op_complete(m, id, 1, "{}", 0, &err) == TH_ECONFLICT);
	CHECK(th_meta_op_progress(m, id, 1, 1, 1, 0, &err) == TH_ECONFLICT);
	/* A restart re-queues what was running; the next claim is attempt 3. */
	CHECK_OK(th_meta_op_requeue_running(&requeued, m, &err), &err);
	CHECK(requeued == 1);
	th_op_info_dispose(&c2);
	CHECK_OK(th_meta_op_claim(&c2, m, 60000, &err), &err);
	CHECK(c2.attempts == 3);
	CHECK_OK(th_meta_op_complete(m, id, 3, NULL, 0, &err), &err);
	CHECK_OK(th_meta_op_get(&op, m, id, &err), &err);
	CHECK(op.state == TH_OPSTATE_COMPLETED && op.attempts == 3 && op.lease_expires_at == 0);
	CHECK_STR(op.result, "{}");
	th_op_info_dispose(&op);
	CHECK(th_meta_op_claim(&op, m, 10, &err) == TH_ENOTFOUND);
	th_op_info_dispose(&c1);
	th_op_info_dispose(&c2);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Leases are owned by a node: a node starting up re-queues only what it held itself. */
static void test_node_leases(void)
{
	char *dir = t_mkdtemp(), id1[TH_UUID_SIZE], id2[TH_UUID_SIZE], node[TH_META_NODE_ID_SIZE];
	th_meta_options oa = { "node-a", NULL }, ob = { "node-b", NULL }, bad = { "a b", NULL };
	th_error err;
	th_meta *m = NULL, *a = NULL, *b = NULL;
	th_op_new n = op_new("alice", "museums", "bob");
	th_op_info c, op;
	int requeued = -1;

	/* Without an id a th_meta takes the store's, the same at every open. */
	CHECK_OK(meta_open(&m, dir, &err), &err);
	snprintf(node, sizeof(node), "%s", th_meta_node_id(m));
	CHECK(strlen(node) >= 16);
	th_meta_close(m);
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_STR(th_meta_node_id(m), node);
	CHECK(meta_open_with(&a, dir, &bad, &err) == TH_EINVALID);

	CHECK_OK(meta_open_with(&a, dir, &oa, &err), &err);
	CHECK_OK(meta_open_with(&b, dir, &ob, &err), &err);
	CHECK_STR(th_meta_node_id(a), "node-a");
	CHECK_OK(th_meta_op_create(id1, m, &n, &err), &err);
	CHECK_OK(th_meta_op_create(id2, m, &n, &err), &err);
	CHECK_OK(th_meta_op_claim(&c, a, 60000, &err), &err);
	CHECK_STR(c.id, id1);
	CHECK_STR(c.lease_owner, "node-a");
	th_op_info_dispose(&c);
	CHECK_OK(th_meta_op_claim(&c, b, 60000, &err), &err);
	CHECK_STR(c.id, id2);
	CHECK_STR(c.lease_owner, "node-b");
	th_op_info_dispose(&c);

	/* Node b restarts: only its job is re-queued; a's lease stands. */
	CHECK_OK(th_meta_op_requeue_running(&requeued, b, &err), &err);
	CHECK(requeued == 1);
	CHECK_OK(th_meta_op_get(&op, m, id1, &err), &err);
	CHECK(op.lease_expires_at > th_now_ms() + 50000);
	th_op_info_dispose(&op);
	CHECK_OK(th_meta_op_claim(&c, b, 60000, &err), &err);
	CHECK_STR(c.id, id2);
	CHECK(c.attempts == 2);
	th_op_info_dispose(&c);
	CHECK(th_meta_op_claim(&c, a, 60000, &err) == TH_ENOTFOUND);
	/* Nothing is leased to the store's own node. */
	CHECK_OK(th_meta_op_requeue_running(&requeued, m, &err), &err);
	CHECK(requeued == 0);

	th_meta_close(a);
	th_meta_close(b);
	th_meta_close(m);
	t_rmdir(dir);
}

static void test_upload(void)
{
	char *dir = t_mkdtemp(), sha[65], sha2[65], path[1024], *out = NULL;
	size_t total = 3 * 1024 * 1024 + 17, off;
	char *data = malloc(total);
	th_upload *u = NULL;
	th_error err;
	uint64_t size = 0;
	th_buf p = TH_BUF_INIT;
	int fd = -1;

	for (off = 0; off < total; off++)
		data[off] = (char)('a' + (off * 7919 % 26));
	CHECK_OK(th_upload_begin(&u, dir, 100 * 1048576ULL, &err), &err);
	CHECK(count_dir(dir, "tmp") == 1);
	for (off = 0; off < total; off += 65536) {
		size_t n = total - off < 65536 ? total - off : 65536;
		CHECK_OK(th_upload_write(u, data + off, n, &err), &err);
	}
	CHECK(th_upload_size(u) == total);
	CHECK_OK(th_upload_finish(u, sha, &size, &err), &err);
	CHECK(size == total);
	CHECK(count_dir(dir, "tmp") == 0);
	CHECK(count_dir(dir, "uploads") == 1);
	snprintf(path, sizeof(path), "%s/uploads/%s", dir, sha);
	CHECK(t_sh(&out, "sha256sum '%s' | cut -d' ' -f1", path) == 0);
	CHECK(strncmp(out, sha, 64) == 0);
	free(out);
	{
		size_t len = 0;
		char *back = t_read_file(path, &len);
		CHECK(back && len == total && memcmp(back, data, total) == 0);
		free(back);
	}
	CHECK_OK(th_upload_path(&p, dir, sha, &err), &err);
	CHECK_STR(p.ptr, path);
	th_buf_dispose(&p);
	CHECK_OK(th_upload_open(&fd, dir, sha, &err), &err);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);

	/* The same bytes again: one file, same name, no temp file left. */
	CHECK_OK(th_upload_begin(&u, dir, 0, &err), &err);
	CHECK_OK(th_upload_write(u, data, total, &err), &err);
	CHECK_OK(th_upload_finish(u, sha2, NULL, &err), &err);
	CHECK_STR(sha2, sha);
	CHECK(count_dir(dir, "uploads") == 1 && count_dir(dir, "tmp") == 0);

	/* Over the cap: refused on the write that crosses it; nothing left anywhere. */
	CHECK_OK(th_upload_begin(&u, dir, 2 * 1048576ULL, &err), &err);
	CHECK_OK(th_upload_write(u, data, 1048576, &err), &err);
	CHECK_OK(th_upload_write(u, data, 1048576, &err), &err); /* exactly the cap is fine */
	CHECK(th_upload_write(u, data, 1, &err) == TH_ETOOBIG);
	CHECK_STR(err.msg, "file is larger than the 2 MB upload limit");
	th_upload_abort(u);
	CHECK(count_dir(dir, "uploads") == 1 && count_dir(dir, "tmp") == 0);

	/* Bad names and missing files. */
	CHECK(th_upload_open(&fd, dir, "../../etc/passwd", &err) == TH_EINVALID);
	CHECK(th_upload_open(&fd, dir,
	                     "0000000000000000000000000000000000000000000000000000000000000000",
	                     &err) == TH_ENOTFOUND);
	CHECK(th_upload_sha_valid(sha) && !th_upload_sha_valid("ABC"));

	/* A crash leaves a temp file; the sweep removes it. */
	{
		int swept = -1;
		CHECK_OK(th_upload_begin(&u, dir, 0, &err), &err);
		CHECK_OK(th_upload_write(u, "x", 1, &err), &err);
		CHECK(count_dir(dir, "tmp") == 1);
		CHECK_OK(th_upload_sweep(&swept, dir, &err), &err);
		CHECK(swept == 1 && count_dir(dir, "tmp") == 0);
		th_upload_abort(u);
	}
	free(data);
	t_rmdir(dir);
}

/* The store's address may hold a password: no message says it, nor where the server is. */
static void test_store_address_secret(void)
{
	char *dir = t_mkdtemp();
	th_meta_options o = { NULL, "postgresql://tablehub:s3cr3t-pw@/db?host=/nonexistent/sock&"
		                    "connect_timeout=2" };
	th_error err;
	th_meta *m = NULL;

	CHECK(th_meta_open_with(&m, dir, &o, &err) == TH_ESTORE);
	CHECK_CONTAINS(err.msg, "cannot connect");
	CHECK(strstr(err.msg, "s3cr3t-pw") == NULL);
	CHECK(strstr(err.msg, "nonexistent") == NULL);
	CHECK(strstr(err.msg, "tablehub:") == NULL);
	t_rmdir(dir);
}

/* PostgreSQL: a connection the server drops fails the one call on it (TH_ESTORE, nothing of the
 * address), and the next call connects again, with its statements prepared afresh. */
static void test_connection_lost(void)
{
	char *dir;
	th_error err;
	th_meta *m = NULL;
	th_db_info d;
	int rc, i, failures = 0;

	if (!meta_on_pg())
		return;
	dir = t_mkdtemp();
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "one", NULL, 0, &err), &err);
	CHECK_OK(th_meta_db_get(&d, m, "alice", "one", &err), &err);
	th_db_info_dispose(&d);
	CHECK(sql_int(dir, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
	                   "datname = current_database() AND pid <> pg_backend_pid()") >= 1);
	for (i = 0; i < 4; i++) {
		if ((rc = th_meta_db_get(&d, m, "alice", "one", &err)) == TH_OK) {
			th_db_info_dispose(&d);
			break;
		}
		failures++;
		CHECK(rc == TH_ESTORE);
		CHECK_CONTAINS(err.msg, "connection");
		CHECK(strstr(err.msg, "host=") == NULL && strstr(err.msg, "/tmp") == NULL);
	}
	CHECK(rc == TH_OK && failures <= 1);
	CHECK_OK(th_meta_db_create(m, "alice", "two", NULL, 0, &err), &err);
	th_meta_close(m);
	t_rmdir(dir);
}

int main(void)
{
	RUN(test_migrations_idempotent);
	RUN(test_users_tokens);
	RUN(test_databases);
	RUN(test_operation_lifecycle);
	RUN(test_operation_lists);
	RUN(test_claim_exclusive);
	RUN(test_lease_expiry);
	RUN(test_node_leases);
	RUN(test_upload);
	RUN(test_store_address_secret);
	RUN(test_connection_lost);
	TH_TEST_END();
}
