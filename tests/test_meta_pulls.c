/* test_meta_pulls.c: pull requests, comments and reviews in the metadata store
 * (storage/meta_pulls.c): ids, states, paging, one Open pull per branch pair, the migration that
 * brought the id counter; requested reviewers, a pull's options, the search behind the list
 * filters, and the merge marked with its event in one step. Each test in its own temporary data
 * dir, against the real SQLite file. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "harness.h"
#include "meta_store.h"
#include "util.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"

static void test_pulls(void)
{
	char *dir = t_mkdtemp(), next[TH_PAGE_TOKEN_SIZE];
	th_error err;
	th_meta *m = NULL;
	th_db_info a, b;
	th_pull_info p;
	th_pull_list l;
	th_pull_note_list notes;
	int64_t id = 0, cid = 0;
	int i;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "one", NULL, 0, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "two", NULL, 0, &err), &err);
	CHECK_OK(th_meta_db_get(&a, m, "alice", "one", &err), &err);
	CHECK_OK(th_meta_db_get(&b, m, "alice", "two", &err), &err);

	/* Pull ids count from 1 in each database, independently. One pull is Open per branch pair,
	 * so each comes from its own branch (the last from "feature"). */
	for (i = 1; i <= 5; i++) {
		char title[32], from[32];
		snprintf(title, sizeof(title), "pull %d", i);
		snprintf(from, sizeof(from), i == 5 ? "feature" : "feature-%d", i);
		CHECK_OK(th_meta_pull_create(&id, m, a.id, title, "desc", "alice", from, "main",
		                             &err),
		         &err);
		CHECK(id == i);
	}
	CHECK_OK(th_meta_pull_create(&id, m, b.id, "other", NULL, "bob", "x", "main", &err), &err);
	CHECK(id == 1);
	CHECK(th_meta_pull_create(&id, m, 9999, "t", NULL, "bob", "x", "main", &err) ==
	      TH_ENOTFOUND);
	CHECK(th_meta_pull_create(&id, m, a.id, "t", NULL, "", "x", "main", &err) == TH_EINVALID);

	CHECK_OK(th_meta_pull_get(&p, m, a.id, 3, &err), &err);
	CHECK_STR(p.title, "pull 3");
	CHECK_STR(p.description, "desc");
	CHECK_STR(p.author, "alice");
	CHECK_STR(p.from_branch, "feature-3");
	CHECK_STR(p.to_branch, "main");
	CHECK(p.state == TH_PULL_OPEN);
	CHECK_STR(th_pull_state_name(p.state), "Open");
	th_pull_info_dispose(&p);
	CHECK(th_meta_pull_get(&p, m, b.id, 2, &err) == TH_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "pull request #2 not found");

	/* Merge #2, close #4; a second state change conflicts. */
	CHECK_OK(th_meta_pull_set_state(m, a.id, 2, TH_PULL_MERGED,
	                                "0123456789abcdef0123456789abcdef01234567", &err),
	         &err);
	CHECK_OK(th_meta_pull_set_state(m, a.id, 4, TH_PULL_CLOSED, NULL, &err), &err);
	CHECK(th_meta_pull_set_state(m, a.id, 2, TH_PULL_CLOSED, NULL, &err) == TH_ECONFLICT);
	CHECK_CONTAINS(err.msg, "already merged");
	CHECK(th_meta_pull_set_state(m, a.id, 42, TH_PULL_CLOSED, NULL, &err) == TH_ENOTFOUND);
	CHECK_OK(th_meta_pull_get(&p, m, a.id, 2, &err), &err);
	CHECK(p.state == TH_PULL_MERGED);
	CHECK_STR(p.merge_commit, "0123456789abcdef0123456789abcdef01234567");
	th_pull_info_dispose(&p);
	CHECK_OK(th_meta_pull_update(m, a.id, 1, "renamed", NULL, &err), &err);
	CHECK_OK(th_meta_pull_get(&p, m, a.id, 1, &err), &err);
	CHECK_STR(p.title, "renamed");
	CHECK_STR(p.description, "desc");
	th_pull_info_dispose(&p);
	CHECK(th_meta_pull_update(m, a.id, 77, "x", NULL, &err) == TH_ENOTFOUND);

	/* Paging, newest first: 5 4 | 3 2 | 1. */
	CHECK_OK(th_meta_pull_list(&l, next, m, a.id, 0, NULL, 2, &err), &err);
	CHECK(l.n == 2 && l.items[0].pull_id == 5 && l.items[1].pull_id == 4);
	CHECK(next[0] != '\0');
	th_pull_list_dispose(&l);
	{
		char tok[TH_PAGE_TOKEN_SIZE];
		memcpy(tok, next, sizeof(tok));
		CHECK_OK(th_meta_pull_list(&l, next, m, a.id, 0, tok, 2, &err), &err);
	}
	CHECK(l.n == 2 && l.items[0].pull_id == 3 && l.items[1].pull_id == 2);
	th_pull_list_dispose(&l);
	{
		char tok[TH_PAGE_TOKEN_SIZE];
		memcpy(tok, next, sizeof(tok));
		CHECK_OK(th_meta_pull_list(&l, next, m, a.id, 0, tok, 2, &err), &err);
	}
	CHECK(l.n == 1 && l.items[0].pull_id == 1);
	CHECK_STR(next, "");
	th_pull_list_dispose(&l);
	CHECK(th_meta_pull_list(&l, next, m, a.id, 0, "abc", 2, &err) == TH_EINVALID);

	/* Filtered by state. */
	CHECK_OK(th_meta_pull_list(&l, next, m, a.id, TH_PULL_OPEN, NULL, 0, &err), &err);
	CHECK(l.n == 3 && l.items[0].pull_id == 5 && l.items[1].pull_id == 3 &&
	      l.items[2].pull_id == 1);
	CHECK_STR(next, "");
	th_pull_list_dispose(&l);
	CHECK_OK(th_meta_pull_list(&l, NULL, m, a.id, th_pull_state_parse("merged"), NULL, 0, &err),
	         &err);
	CHECK(l.n == 1 && l.items[0].pull_id == 2);
	th_pull_list_dispose(&l);
	CHECK(th_pull_state_parse("bogus") == 0);

	CHECK_OK(th_meta_pull_find_open(&id, m, a.id, "feature", "main", &err), &err);
	CHECK(id == 5);
	CHECK(th_meta_pull_find_open(&id, m, a.id, "nope", "main", &err) == TH_ENOTFOUND);

	/* Comments and reviews. */
	CHECK_OK(th_meta_pull_comment_add(&cid, m, a.id, 1, "bob", "looks good", &err), &err);
	CHECK(cid == 1);
	CHECK_OK(th_meta_pull_comment_add(&cid, m, a.id, 1, "alice", "thanks", &err), &err);
	CHECK(cid == 2);
	CHECK_OK(th_meta_pull_comment_add(&cid, m, a.id, 3, "alice", "other pull", &err), &err);
	CHECK(cid == 1);
	CHECK(th_meta_pull_comment_add(&cid, m, a.id, 99, "bob", "x", &err) == TH_ENOTFOUND);
	CHECK(th_meta_pull_comment_add(&cid, m, a.id, 1, "bob", "", &err) == TH_EINVALID);
	CHECK_OK(th_meta_pull_comment_list(&notes, m, a.id, 1, &err), &err);
	CHECK(notes.n == 2);
	if (notes.n == 2) {
		CHECK_STR(notes.items[0].author, "bob");
		CHECK_STR(notes.items[0].body, "looks good");
		CHECK_STR(notes.items[1].body, "thanks");
	}
	th_pull_note_list_dispose(&notes);
	CHECK_OK(th_meta_pull_review_add(&cid, m, a.id, 1, "bob", TH_REVIEW_APPROVED, "ship it",
	                                 &err),
	         &err);
	CHECK_OK(th_meta_pull_review_add(&cid, m, a.id, 1, "carol",
	                                 th_review_status_parse("rejected"), NULL, &err),
	         &err);
	CHECK(th_meta_pull_review_add(&cid, m, a.id, 1, "carol", (th_review_status)0, NULL, &err) ==
	      TH_EINVALID);
	CHECK_OK(th_meta_pull_review_list(&notes, m, a.id, 1, &err), &err);
	CHECK(notes.n == 2);
	if (notes.n == 2) {
		CHECK(notes.items[0].status == TH_REVIEW_APPROVED);
		CHECK_STR(notes.items[0].body, "ship it");
		CHECK_STR(th_review_status_name(notes.items[1].status), "Rejected");
		CHECK_STR(notes.items[1].author, "carol");
	}
	th_pull_note_list_dispose(&notes);

	th_db_info_dispose(&a);
	th_db_info_dispose(&b);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Pull ids come from a counter per database: an id is never given twice, even after its pull row
 * is gone (MAX + 1 would give 3 again below). A store from before the counter seeds it from the
 * pulls there are, and closes all but the newest of duplicate open pulls of a branch pair. */
static void test_pull_ids_counter(void)
{
	char *dir = t_mkdtemp(), path[1024];
	th_error err;
	th_meta *m = NULL;
	th_db_info d;
	th_pull_info p;
	int64_t id = 0;
	sqlite3 *db;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "one", NULL, 0, &err), &err);
	CHECK_OK(th_meta_db_get(&d, m, "alice", "one", &err), &err);
	CHECK_OK(th_meta_pull_create(&id, m, d.id, "a", NULL, "alice", "a", "main", &err), &err);
	CHECK_OK(th_meta_pull_create(&id, m, d.id, "b", NULL, "alice", "b", "main", &err), &err);
	CHECK_OK(th_meta_pull_create(&id, m, d.id, "c", NULL, "alice", "c", "main", &err), &err);
	CHECK(id == 3);
	CHECK(sql_int(dir, "DELETE FROM pulls WHERE pull_id = 3") == 1);
	CHECK_OK(th_meta_pull_create(&id, m, d.id, "d", NULL, "alice", "d", "main", &err), &err);
	CHECK(id == 4);
	th_meta_close(m);
	if (meta_on_pg()) { /* the rest takes SQLite's schema back to an old version */
		th_db_info_dispose(&d);
		t_rmdir(dir);
		return;
	}
	snprintf(path, sizeof(path), "%s/meta.sqlite", dir);

	/* Back to schema 2 (what migrations 3 and 4 add, dropped), with a duplicate open pull of
	 * "a" as the old check-then-act could leave; opening migrates again. */
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
	                   "DROP INDEX databases_parent; DROP INDEX databases_fork_op; "
	                   "ALTER TABLE databases DROP COLUMN parent_id; ALTER TABLE databases "
	                   "DROP COLUMN fork_op; ALTER TABLE pulls DROP COLUMN from_db_id; "
	                   "DROP TABLE pull_counters; DROP INDEX pulls_open_pair; DROP TABLE "
	                   "settings; ALTER TABLE operations DROP COLUMN lease_owner; "
	                   "INSERT INTO pulls(db_id, pull_id, author, from_branch, to_branch, "
	                   "state, created_at, updated_at) SELECT db_id, 6, author, from_branch, "
	                   "to_branch, 'Open', 1, 1 FROM pulls WHERE pull_id = 1; "
	                   "PRAGMA user_version = 2",
	                   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK(sql_int(dir, "PRAGMA user_version") == th_meta_schema_version());
	CHECK_OK(th_meta_pull_get(&p, m, d.id, 1, &err), &err);
	CHECK(p.state == TH_PULL_CLOSED);
	th_pull_info_dispose(&p);
	CHECK_OK(th_meta_pull_find_open(&id, m, d.id, "a", "main", &err), &err);
	CHECK(id == 6);
	CHECK_OK(th_meta_pull_create(&id, m, d.id, "e", NULL, "alice", "e", "main", &err), &err);
	CHECK(id == 7);
	th_db_info_dispose(&d);
	th_meta_close(m);
	t_rmdir(dir);
}

/* Threads, each with its own connection, find or create the pull of one branch pair at once. */
#define NFINDERS 4

struct finder {
	const char *dir;
	int64_t db_id, ids[20];
	int created, errors;
};

static void *find_or_create_all(void *arg)
{
	struct finder *f = arg;
	th_meta *m = NULL;
	th_error err;
	int i, created;

	if (meta_open(&m, f->dir, &err) < 0) {
		f->errors++;
		return NULL;
	}
	for (i = 0; i < 20; i++) {
		created = 0;
		if (th_meta_pull_find_or_create(&f->ids[i], &created, m, f->db_id, "t", NULL, "bob",
		                                "race", "main", &err) < 0) {
			fprintf(stderr, "find_or_create: %s\n", err.msg);
			f->errors++;
		}
		f->created += created;
	}
	th_meta_close(m);
	return NULL;
}

/* "The open pull of a branch pair, else a new one" is one store call, and the store holds at most
 * one Open pull per pair: a plain create of a second one is refused. */
static void test_pull_find_or_create(void)
{
	char *dir = t_mkdtemp();
	static struct finder f[NFINDERS];
	pthread_t t[NFINDERS];
	th_error err;
	th_meta *m = NULL;
	th_db_info d;
	int64_t id = 0, id2 = 0;
	int i, k, created = -1, total = 0;

	CHECK_OK(meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "one", NULL, 0, &err), &err);
	CHECK_OK(th_meta_db_get(&d, m, "alice", "one", &err), &err);
	CHECK_OK(th_meta_pull_find_or_create(&id, &created, m, d.id, "Import", "rows", "bob",
	                                     "bob/import", "main", &err),
	         &err);
	CHECK(id == 1 && created == 1);
	CHECK_OK(th_meta_pull_find_or_create(&id2, &created, m, d.id, "again", NULL, "bob",
	                                     "bob/import", "main", &err),
	         &err);
	CHECK(id2 == 1 && created == 0);
	CHECK(th_meta_pull_create(&id2, m, d.id, "dup", NULL, "bob", "bob/import", "main", &err) ==
	      TH_EEXISTS);
	CHECK_CONTAINS(err.msg, "pull request #1 from 'bob/import' into 'main' is already open");
	CHECK(sql_int(dir, "SELECT count(*) FROM pulls") == 1);
	/* Another pair, and the same pair once the first is closed, get new pulls. */
	CHECK_OK(th_meta_pull_find_or_create(&id2, &created, m, d.id, "x", NULL, "bob",
	                                     "bob/import", "dev", &err),
	         &err);
	CHECK(id2 == 2 && created == 1);
	CHECK_OK(th_meta_pull_set_state(m, d.id, 1, TH_PULL_CLOSED, NULL, &err), &err);
	CHECK_OK(th_meta_pull_find_or_create(&id2, &created, m, d.id, "y", NULL, "bob",
	                                     "bob/import", "main", &err),
	         &err);
	CHECK(id2 == 3 && created == 1);
	CHECK(th_meta_pull_find_or_create(&id2, &created, m, 9999, "y", NULL, "bob", "a", "main",
	                                  &err) == TH_ENOTFOUND);
	CHECK(th_meta_pull_find_or_create(&id2, &created, m, d.id, "y", NULL, "", "a", "main",
	                                  &err) == TH_EINVALID);

	for (i = 0; i < NFINDERS; i++) {
		memset(&f[i], 0, sizeof(f[i]));
		f[i].dir = dir;
		f[i].db_id = d.id;
		pthread_create(&t[i], NULL, find_or_create_all, &f[i]);
	}
	for (i = 0; i < NFINDERS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < NFINDERS; i++) {
		CHECK(f[i].errors == 0);
		total += f[i].created;
		for (k = 0; k < 20; k++)
			CHECK(f[i].ids[k] == 4);
	}
	CHECK(total == 1);
	CHECK(sql_int(dir, "SELECT count(*) FROM pulls WHERE from_branch = 'race'") == 1);
	th_db_info_dispose(&d);
	th_meta_close(m);
	t_rmdir(dir);
}

/* The ids of a search, as "3,1". */
static const char *search(th_meta *m, int64_t db_id, const th_pull_filter *f, const char *tok,
                          size_t limit, char next[TH_PAGE_TOKEN_SIZE])
{
	static char out[100];
	th_pull_list l = { NULL, 0 };
	th_error err;
	size_t n = 0;

	out[0] = '\0';
	CHECK_OK(th_meta_pull_search(&l, next, m, db_id, f, tok, limit, &err), &err);
	for (size_t i = 0; i < l.n; i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%lld", i ? "," : "",
		                      (long long)l.items[i].pull_id);
	th_pull_list_dispose(&l);
	return out;
}

static void test_reviewers_options_search(void)
{
	char *dir = t_mkdtemp(), next[TH_PAGE_TOKEN_SIZE];
	const char *two[] = { "bob", "erin" }, *again[] = { "erin", "carol", "carol" },
	           *bad[] = { "no body" };
	th_error err;
	th_meta *m = NULL;
	th_db_info a;
	th_reviewer_list rl = { NULL, 0 };
	th_pull_options o;
	th_pull_filter f;
	th_pull_info p;
	th_event_new ev = { 0, "alice", "pull.merge", "2", "{}", "127.0.0.1" };
	th_event_list evs = { NULL, 0 };
	int64_t id;
	int added = -1;

	CHECK_OK(th_meta_open(&m, dir, &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "one", NULL, 0, &err), &err);
	CHECK_OK(th_meta_db_get(&a, m, "alice", "one", &err), &err);
	ev.db_id = a.id;
	CHECK_OK(
	        th_meta_pull_create(&id, m, a.id, "Import Cities", "", "alice", "f1", "main", &err),
	        &err);
	CHECK_OK(th_meta_pull_create(&id, m, a.id, "fix towns", "", "bob", "f2", "main", &err),
	         &err);
	CHECK_OK(th_meta_pull_create(&id, m, a.id, "more cities", "", "carol", "f3", "main", &err),
	         &err);

	/* Reviewers: repeated and known names are skipped; the order is the request's. */
	CHECK_OK(th_meta_reviewer_add(&added, m, a.id, 1, two, 2, "alice", NULL, &err), &err);
	CHECK(added == 2);
	CHECK_OK(th_meta_reviewer_add(&added, m, a.id, 1, again, 3, "alice", NULL, &err), &err);
	CHECK(added == 1);
	CHECK_OK(th_meta_reviewer_list(&rl, m, a.id, 1, &err), &err);
	CHECK(rl.n == 3 && strcmp(rl.items[0].user, "bob") == 0 &&
	      strcmp(rl.items[2].user, "carol") == 0 &&
	      strcmp(rl.items[2].requested_by, "alice") == 0);
	th_reviewer_list_dispose(&rl);
	CHECK(th_meta_reviewer_add(&added, m, a.id, 9, two, 2, "alice", NULL, &err) ==
	      TH_ENOTFOUND);
	CHECK(th_meta_reviewer_add(&added, m, a.id, 1, bad, 1, "alice", NULL, &err) == TH_EINVALID);
	CHECK(th_meta_reviewer_add(&added, m, a.id, 1, two, 0, "alice", NULL, &err) == TH_EINVALID);
	CHECK_OK(th_meta_reviewer_remove(m, a.id, 1, "erin", NULL, &err), &err);
	CHECK(th_meta_reviewer_remove(m, a.id, 1, "erin", NULL, &err) == TH_ENOTFOUND);
	CHECK_OK(th_meta_reviewer_list(&rl, m, a.id, 1, &err), &err);
	CHECK(rl.n == 2);
	th_reviewer_list_dispose(&rl);

	/* Options: none until set; a pull that is not there has none to set. */
	CHECK_OK(th_meta_pull_options_get(&o, m, a.id, 2, &err), &err);
	CHECK(o.delete_branch_on_merge == 0 && o.branch_deleted == 0);
	o.delete_branch_on_merge = 1;
	CHECK_OK(th_meta_pull_options_set(m, a.id, 2, &o, &err), &err);
	CHECK(th_meta_pull_options_set(m, a.id, 9, &o, &err) == TH_ENOTFOUND);
	memset(&o, 0, sizeof(o));
	CHECK_OK(th_meta_pull_options_get(&o, m, a.id, 2, &err), &err);
	CHECK(o.delete_branch_on_merge == 1 && o.branch_deleted == 0);

	/* Search: text in title or author (any case), reviewers, reviews, state, paging. */
	memset(&f, 0, sizeof(f));
	CHECK_STR(search(m, a.id, &f, NULL, 0, next), "3,2,1");
	f.query = "CITIES";
	CHECK_STR(search(m, a.id, &f, NULL, 0, next), "3,1");
	f.query = "bob";
	CHECK_STR(search(m, a.id, &f, NULL, 0, next), "2");
	f.query = "%";
	CHECK_STR(search(m, a.id, &f, NULL, 0, next), "");
	f.query = NULL;
	f.assigned = 1;
	CHECK_STR(search(m, a.id, &f, NULL, 0, next), "1");
	f.assigned = 0;
	f.reviewed = 1;
	CHECK_STR(search(m, a.id, &f, NULL, 0, next), "");
	CHECK_OK(th_meta_pull_review_add(NULL, m, a.id, 3, "bob", TH_REVIEW_APPROVED, "", &err),
	         &err);
	CHECK_STR(search(m, a.id, &f, NULL, 0, next), "3");
	f.reviewed = 0;
	CHECK_STR(search(m, a.id, &f, NULL, 2, next), "3,2");
	CHECK_STR(next, "2");
	CHECK_STR(search(m, a.id, &f, next, 2, next), "1");
	CHECK_STR(next, "");

	/* Marked merged with its event in one step; only an Open pull, and no event otherwise. */
	CHECK_OK(th_meta_pull_mark_merged(m, a.id, 2, "0123456789012345678901234567890123456789",
	                                  &ev, &err),
	         &err);
	CHECK_OK(th_meta_pull_get(&p, m, a.id, 2, &err), &err);
	CHECK(p.state == TH_PULL_MERGED &&
	      strcmp(p.merge_commit, "0123456789012345678901234567890123456789") == 0);
	th_pull_info_dispose(&p);
	CHECK(th_meta_pull_mark_merged(m, a.id, 2, "0123456789012345678901234567890123456789", &ev,
	                               &err) == TH_ECONFLICT);
	CHECK(th_meta_pull_mark_merged(m, a.id, 2, "short", &ev, &err) == TH_EINVALID);
	CHECK_OK(th_meta_event_list(&evs, NULL, m, a.id, NULL, 0, &err), &err);
	CHECK(evs.n == 1 && strcmp(evs.items[0].action, "pull.merge") == 0);
	th_event_list_dispose(&evs);
	f.state = TH_PULL_MERGED;
	CHECK_STR(search(m, a.id, &f, NULL, 0, next), "2");

	th_db_info_dispose(&a);
	th_meta_close(m);
	t_rmdir(dir);
}

int main(void)
{
	RUN(test_pulls);
	RUN(test_pull_ids_counter);
	RUN(test_pull_find_or_create);
	RUN(test_reviewers_options_search);
	TH_TEST_END();
}
