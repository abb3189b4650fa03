/* test_meta_access.c: the access part of the metadata store (storage/meta_access.c, meta_users.c,
 * meta_teams.c) against a real meta.sqlite in a temporary data dir: accounts and passwords,
 * tokens and sessions (scopes, expiry, revocation, lists without secrets), collaborators,
 * protected branches, review heads, and the audit trail written with each change (and not
 * written when the change fails). */
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

#include "harness.h"
#include "meta_store.h"
#include "util.h"
#include "tablehub/hash.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"

static th_meta *open_store(char **dir)
{
	th_meta *m = NULL;
	th_error err = { 0 };

	*dir = t_mkdtemp();
	if (meta_open(&m, *dir, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		abort();
	}
	return m;
}

static void close_store(th_meta *m, char *dir)
{
	th_meta_close(m);
	t_rmdir(dir); /* frees dir */
}

static void test_roles(void)
{
	th_error err = { 0 };
	th_role r = TH_ROLE_NONE;

	CHECK_OK(th_role_parse(&r, "Write", "role", &err), &err);
	CHECK(r == TH_ROLE_WRITE);
	CHECK(th_role_parse(&r, "owner", "role", &err) == TH_EINVALID);
	CHECK_STR(err.msg, "invalid role 'owner': use read, write or admin");
	CHECK(th_role_parse(&r, NULL, "scope", &err) == TH_EINVALID);
	CHECK(r == TH_ROLE_WRITE);
	CHECK_STR(th_role_name(TH_ROLE_ADMIN), "admin");
	CHECK_STR(th_role_name(TH_ROLE_NONE), "");
	CHECK(TH_ROLE_READ < TH_ROLE_WRITE && TH_ROLE_WRITE < TH_ROLE_ADMIN);
}

static void test_register_and_passwords(void)
{
	char *dir, tok[TH_TOKEN_SIZE];
	th_meta *m = open_store(&dir);
	th_error err = { 0 };
	th_event_new ev = { 0, "alice", "user.register", "alice", NULL, "10.0.0.7" };
	th_user_info u;

	CHECK_OK(th_meta_user_register(m, "alice", "alice@example.org", "correct horse", 13, &ev,
	                               &err),
	         &err);
	CHECK_OK(th_meta_user_get(&u, m, "alice", &err), &err);
	CHECK_STR(u.name, "alice");
	CHECK(th_meta_user_register(m, "alice", "other@example.org", "correct horse", 13, NULL,
	                            &err) == TH_EEXISTS);
	CHECK_STR(err.msg, "user 'alice' already exists");
	CHECK(th_meta_user_register(m, "alice2", "ALICE@example.org", "correct horse", 13, NULL,
	                            &err) == TH_EEXISTS);
	CHECK_STR(err.msg, "email address 'ALICE@example.org' is taken");
	CHECK(th_meta_user_register(m, "bob", "bob", "correct horse", 13, NULL, &err) ==
	      TH_EINVALID);
	CHECK_STR(err.msg, "invalid email address: want name@domain");
	CHECK(th_meta_user_register(m, "bob", "b ob@x.org", "correct horse", 13, NULL, &err) ==
	      TH_EINVALID);
	CHECK(th_meta_user_register(m, "bob", "bob@x.org", "short", 5, NULL, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "password too short: use at least 8 bytes");
	CHECK(th_meta_user_register(m, "../bob", "bob@x.org", "correct horse", 13, NULL, &err) ==
	      TH_EINVALID);
	/* Only the hash is stored. */
	CHECK(sql_int(dir, "SELECT count(*) FROM users WHERE password_hash LIKE '$argon2id$%'") ==
	      1);
	CHECK(sql_int(dir, "SELECT count(*) FROM users WHERE password_hash LIKE '%correct%'") == 0);

	CHECK_OK(th_meta_user_check_password(m, "alice", "correct horse", 13, &err), &err);
	CHECK(th_meta_user_check_password(m, "alice", "correct horsE", 13, &err) == TH_EAUTH);
	CHECK_STR(err.msg, "wrong user name or password");
	CHECK(th_meta_user_check_password(m, "nobody", "correct horse", 13, &err) == TH_EAUTH);
	CHECK_STR(err.msg, "wrong user name or password");
	CHECK(th_meta_user_check_password(m, "../x", "correct horse", 13, &err) == TH_EAUTH);
	/* A user of `user add` has no password until one is set. */
	CHECK_OK(th_meta_user_create(tok, m, "carol", &err), &err);
	CHECK(th_meta_user_check_password(m, "carol", "", 0, &err) == TH_EAUTH);
	CHECK_OK(th_meta_user_set_password(m, "carol", "carols password", 15, &err), &err);
	CHECK_OK(th_meta_user_check_password(m, "carol", "carols password", 15, &err), &err);
	CHECK(th_meta_user_set_password(m, "dave", "daves password", 14, &err) == TH_ENOTFOUND);

	/* A hash with older parameters is replaced on the next right password. */
	CHECK(sql_int(dir, "UPDATE users SET password_hash = '$argon2id$v=19$m=19456,t=2,p=1$"
	                   "+OaydpC8D9tTbNAOxJiiiw$JT9PqNSL5U1t02IbhUTbCxM8BfBvpHCIeXWYFj+r39E' "
	                   "WHERE name = 'carol'") == 1);
	CHECK_OK(th_meta_user_check_password(m, "carol", "correct horse", 13, &err), &err);
	CHECK(sql_int(dir, "SELECT count(*) FROM users WHERE name = 'carol' AND password_hash LIKE "
	                   "'$argon2id$v=19$m=32768,t=3,p=1$%'") == 1);
	CHECK_OK(th_meta_user_check_password(m, "carol", "correct horse", 13, &err), &err);
	CHECK(sql_int(dir, "SELECT count(*) FROM events WHERE action = 'user.register' AND actor = "
	                   "'alice' AND address = '10.0.0.7'") == 1);
	close_store(m, dir);
}

static void test_tokens(void)
{
	char *dir, first[TH_TOKEN_SIZE], t1[TH_TOKEN_SIZE], t2[TH_TOKEN_SIZE], s1[TH_TOKEN_SIZE];
	char user[65], sql[200];
	th_meta *m = open_store(&dir);
	th_error err = { 0 };
	th_token_info info, a;
	th_token_list l = { 0 };
	th_event_new ev = { 0, "bob", "token.create", NULL, NULL, "127.0.0.1" };
	th_token_spec spec = { "bob", "laptop", TH_ROLE_READ, TH_TOKEN_API, 0 };

	CHECK_OK(th_meta_user_create(first, m, "bob", &err), &err);
	/* The token of `user add` keeps full rights and works as before. */
	CHECK_OK(th_meta_token_auth(&a, m, first, TH_TOKEN_API, &err), &err);
	CHECK(a.scope == TH_ROLE_ADMIN && a.kind == TH_TOKEN_API && a.expires_at == 0);
	CHECK_OK(th_meta_token_lookup(user, m, first, &err), &err);
	CHECK_STR(user, "bob");

	CHECK_OK(th_meta_token_issue(t1, &info, m, &spec, &ev, &err), &err);
	CHECK(strncmp(t1, "thp_", 4) == 0 && strlen(t1) == TH_TOKEN_SIZE - 1);
	CHECK_STR(info.name, "laptop");
	CHECK(info.scope == TH_ROLE_READ && info.token_id > a.token_id);
	CHECK_OK(th_meta_token_auth(&a, m, t1, TH_TOKEN_API, &err), &err);
	CHECK_STR(a.user, "bob");
	CHECK(a.scope == TH_ROLE_READ && a.token_id == info.token_id && a.last_used_at > 0);
	/* The event names the new token's id, never its secret. */
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM events WHERE action = 'token.create' "
	         "AND target = '%lld'",
	         (long long)info.token_id);
	CHECK(sql_int(dir, sql) == 1);
	CHECK(sql_int(dir, "SELECT count(*) FROM tokens WHERE hash LIKE 'thp_%'") == 0);

	/* Bad names, scopes, expiries, users. */
	spec.name = "a\nb";
	CHECK(th_meta_token_issue(t2, NULL, m, &spec, NULL, &err) == TH_EINVALID);
	spec.name = "ci";
	spec.scope = TH_ROLE_NONE;
	CHECK(th_meta_token_issue(t2, NULL, m, &spec, NULL, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "invalid scope: use read, write or admin");
	spec.scope = TH_ROLE_WRITE;
	spec.expires_at = th_now_ms() - 1;
	CHECK(th_meta_token_issue(t2, NULL, m, &spec, NULL, &err) == TH_EINVALID);
	spec.user = "nobody";
	spec.expires_at = 0;
	CHECK(th_meta_token_issue(t2, NULL, m, &spec, &ev, &err) == TH_ENOTFOUND);
	CHECK(sql_int(dir, "SELECT count(*) FROM events") == 1); /* no event for a failure */

	/* An expired token fails at once. */
	spec.user = "bob";
	spec.expires_at = th_now_ms() + 150;
	CHECK_OK(th_meta_token_issue(t2, &info, m, &spec, NULL, &err), &err);
	CHECK_OK(th_meta_token_auth(&a, m, t2, TH_TOKEN_API, &err), &err);
	{
		struct timespec ts = { 0, 200 * 1000000L };
		nanosleep(&ts, NULL);
	}
	CHECK(th_meta_token_auth(&a, m, t2, TH_TOKEN_API, &err) == TH_EAUTH);
	CHECK_STR(err.msg, "invalid token");

	/* Lists: API tokens only, with names and scopes, expired ones included, never a hash. */
	spec.kind = TH_TOKEN_SESSION;
	spec.expires_at = 0;
	CHECK_OK(th_meta_token_issue(s1, NULL, m, &spec, NULL, &err), &err);
	CHECK(strncmp(s1, "ths_", 4) == 0);
	CHECK_OK(th_meta_token_list(&l, m, "bob", &err), &err);
	CHECK(l.n == 3);
	if (l.n == 3) {
		CHECK_STR(l.items[0].name, "");
		CHECK(l.items[0].scope == TH_ROLE_ADMIN);
		CHECK_STR(l.items[1].name, "laptop");
		CHECK(l.items[1].last_used_at > 0);
		CHECK(l.items[2].expires_at > 0);
	}
	th_token_list_dispose(&l);

	/* Kinds do not mix: a session is no API token and the other way round. */
	CHECK(th_meta_token_auth(&a, m, s1, TH_TOKEN_API, &err) == TH_EAUTH);
	CHECK(th_meta_token_auth(&a, m, t1, TH_TOKEN_SESSION, &err) == TH_EAUTH);
	CHECK_OK(th_meta_token_auth(&a, m, s1, TH_TOKEN_SESSION, &err), &err);
	CHECK(a.kind == TH_TOKEN_SESSION);

	/* Revoke by id (only the owner's), and by secret (a logout). */
	ev.action = "token.revoke";
	CHECK(th_meta_token_revoke(m, "alice", info.token_id, &ev, &err) == TH_ENOTFOUND);
	CHECK_OK(th_meta_token_auth(&a, m, t1, TH_TOKEN_API, &err), &err);
	CHECK_OK(th_meta_token_revoke(m, "bob", a.token_id, &ev, &err), &err);
	CHECK(th_meta_token_auth(&a, m, t1, TH_TOKEN_API, &err) == TH_EAUTH);
	CHECK(th_meta_token_revoke(m, "bob", a.token_id, &ev, &err) == TH_ENOTFOUND);
	CHECK(sql_int(dir, "SELECT count(*) FROM events WHERE action = 'token.revoke'") == 1);
	CHECK_OK(th_meta_token_revoke_secret(m, s1, NULL, &err), &err);
	CHECK(th_meta_token_auth(&a, m, s1, TH_TOKEN_SESSION, &err) == TH_EAUTH);
	CHECK(th_meta_token_revoke_secret(m, s1, NULL, &err) == TH_EAUTH);
	CHECK(th_meta_token_revoke_secret(m, "thp_nothex", NULL, &err) == TH_EAUTH);
	CHECK_OK(th_meta_token_list(&l, m, "bob", &err), &err);
	CHECK(l.n == 2);
	th_token_list_dispose(&l);
	close_store(m, dir);
}

static void test_collaborators(void)
{
	char *dir, tok[TH_TOKEN_SIZE];
	th_meta *m = open_store(&dir);
	th_error err = { 0 };
	th_db_info d;
	th_collab_list l = { 0 };
	th_role r = TH_ROLE_ADMIN;
	th_event_new ev = { 0, "alice", "collaborator.set", "bob", "{\"role\":\"write\"}", "::1" };
	int created = -1;

	CHECK_OK(th_meta_user_create(tok, m, "alice", &err), &err);
	CHECK_OK(th_meta_user_create(tok, m, "bob", &err), &err);
	CHECK_OK(th_meta_user_create(tok, m, "carol", &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "museums", "", 1, &err), &err);
	CHECK_OK(th_meta_db_get(&d, m, "alice", "museums", &err), &err);
	ev.db_id = d.id;

	CHECK_OK(th_meta_collab_role(&r, m, d.id, "bob", &err), &err);
	CHECK(r == TH_ROLE_NONE);
	CHECK_OK(th_meta_collab_set(&created, m, d.id, "bob", TH_ROLE_WRITE, &ev, &err), &err);
	CHECK(created == 1);
	CHECK_OK(th_meta_collab_role(&r, m, d.id, "bob", &err), &err);
	CHECK(r == TH_ROLE_WRITE);
	CHECK_OK(th_meta_collab_set(&created, m, d.id, "bob", TH_ROLE_ADMIN, NULL, &err), &err);
	CHECK(created == 0);
	CHECK_OK(th_meta_collab_set(NULL, m, d.id, "carol", TH_ROLE_READ, NULL, &err), &err);
	CHECK(th_meta_collab_set(NULL, m, d.id, "dave", TH_ROLE_READ, &ev, &err) == TH_ENOTFOUND);
	CHECK_STR(err.msg, "user 'dave' not found");
	CHECK(th_meta_collab_set(NULL, m, d.id + 100, "carol", TH_ROLE_READ, &ev, &err) ==
	      TH_ENOTFOUND);
	CHECK(th_meta_collab_set(NULL, m, d.id, "carol", TH_ROLE_NONE, &ev, &err) == TH_EINVALID);
	CHECK(sql_int(dir, "SELECT count(*) FROM events WHERE action = 'collaborator.set'") == 1);

	CHECK_OK(th_meta_collab_list(&l, m, d.id, &err), &err);
	CHECK(l.n == 2);
	if (l.n == 2) {
		CHECK_STR(l.items[0].user, "bob");
		CHECK(l.items[0].role == TH_ROLE_ADMIN);
		CHECK(l.items[0].updated_at >= l.items[0].created_at);
		CHECK_STR(l.items[1].user, "carol");
		CHECK(l.items[1].role == TH_ROLE_READ);
	}
	th_collab_list_dispose(&l);

	ev.action = "collaborator.remove";
	CHECK_OK(th_meta_collab_remove(m, d.id, "carol", &ev, &err), &err);
	CHECK(th_meta_collab_remove(m, d.id, "carol", &ev, &err) == TH_ENOTFOUND);
	CHECK_STR(err.msg, "'carol' is not a collaborator");
	CHECK_OK(th_meta_collab_role(&r, m, d.id, "carol", &err), &err);
	CHECK(r == TH_ROLE_NONE);
	CHECK_OK(th_meta_collab_role(&r, m, d.id, "", &err), &err);
	CHECK(r == TH_ROLE_NONE);
	CHECK(sql_int(dir, "SELECT count(*) FROM events WHERE action = 'collaborator.remove'") ==
	      1);
	th_db_info_dispose(&d);
	close_store(m, dir);
}

static void test_protection_and_review_heads(void)
{
	char *dir, tok[TH_TOKEN_SIZE];
	th_meta *m = open_store(&dir);
	th_error err = { 0 };
	th_db_info d;
	th_protection p = { "main", 2, 0, 1, TH_ROLE_ADMIN, "", 0 }, q;
	th_protection_list l = { 0 };
	th_review_list rl = { 0 };
	th_event_new ev = { 0, "alice", "protection.set", "main", NULL, "" };
	int64_t pull = 0, rid = 0;

	CHECK_OK(th_meta_user_create(tok, m, "alice", &err), &err);
	CHECK_OK(th_meta_db_create(m, "alice", "museums", "", 0, &err), &err);
	CHECK_OK(th_meta_db_get(&d, m, "alice", "museums", &err), &err);
	ev.db_id = d.id;

	CHECK(th_meta_protection_get(&q, m, d.id, "main", &err) == TH_ENOTFOUND);
	CHECK_STR(err.msg, "branch 'main' is not protected");
	CHECK_OK(th_meta_protection_set(m, d.id, &p, "alice", &ev, &err), &err);
	CHECK_OK(th_meta_protection_get(&q, m, d.id, "main", &err), &err);
	CHECK(q.required_approvals == 2 && !q.allow_self_approval && q.dismiss_stale_approvals &&
	      q.merge_role == TH_ROLE_ADMIN);
	CHECK_STR(q.updated_by, "alice");
	CHECK(q.updated_at > 0);
	p.required_approvals = 1;
	p.merge_role = TH_ROLE_WRITE;
	p.allow_self_approval = 5; /* any true value is stored as 1 */
	CHECK_OK(th_meta_protection_set(m, d.id, &p, "alice", NULL, &err), &err);
	CHECK_OK(th_meta_protection_get(&q, m, d.id, "main", &err), &err);
	CHECK(q.required_approvals == 1 && q.allow_self_approval == 1 &&
	      q.merge_role == TH_ROLE_WRITE);
	p.required_approvals = 101;
	CHECK(th_meta_protection_set(m, d.id, &p, "alice", &ev, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "requiredApprovals must be a whole number from 0 to 100");
	p.required_approvals = 1;
	p.merge_role = TH_ROLE_READ;
	CHECK(th_meta_protection_set(m, d.id, &p, "alice", &ev, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "mergeRole must be 'write' or 'admin'");
	p.merge_role = TH_ROLE_WRITE;
	snprintf(p.branch, sizeof(p.branch), "release");
	CHECK_OK(th_meta_protection_set(m, d.id, &p, "alice", NULL, &err), &err);
	CHECK_OK(th_meta_protection_list(&l, m, d.id, &err), &err);
	CHECK(l.n == 2);
	if (l.n == 2) {
		CHECK_STR(l.items[0].branch, "main");
		CHECK_STR(l.items[1].branch, "release");
	}
	th_protection_list_dispose(&l);
	ev.action = "protection.remove";
	CHECK_OK(th_meta_protection_remove(m, d.id, "release", &ev, &err), &err);
	CHECK(th_meta_protection_remove(m, d.id, "release", &ev, &err) == TH_ENOTFOUND);
	CHECK(sql_int(dir, "SELECT count(*) FROM events WHERE db_id > 0") == 2);

	CHECK_OK(th_meta_pull_create(&pull, m, d.id, "t", NULL, "alice", "b", "main", &err), &err);
	CHECK_OK(
	        th_meta_pull_review_add(&rid, m, d.id, pull, "bob", TH_REVIEW_APPROVED, NULL, &err),
	        &err);
	CHECK_OK(th_meta_pull_review_add(NULL, m, d.id, pull, "carol", TH_REVIEW_REJECTED, "no",
	                                 &err),
	         &err);
	CHECK_OK(th_meta_review_set_head(m, d.id, pull, rid,
	                                 "0123456789abcdef0123456789abcdef01234567", &err),
	         &err);
	CHECK(th_meta_review_set_head(m, d.id, pull, rid + 10,
	                              "0123456789abcdef0123456789abcdef01234567",
	                              &err) == TH_ENOTFOUND);
	CHECK(th_meta_review_set_head(m, d.id, pull, rid, "HEAD", &err) == TH_EINVALID);
	CHECK_OK(th_meta_review_heads(&rl, m, d.id, pull, &err), &err);
	CHECK(rl.n == 2);
	if (rl.n == 2) {
		CHECK_STR(rl.items[0].author, "bob");
		CHECK(rl.items[0].status == TH_REVIEW_APPROVED);
		CHECK_STR(rl.items[0].head, "0123456789abcdef0123456789abcdef01234567");
		CHECK_STR(rl.items[1].author, "carol");
		CHECK(rl.items[1].status == TH_REVIEW_REJECTED);
		CHECK_STR(rl.items[1].head, "");
	}
	th_review_list_dispose(&rl);
	th_db_info_dispose(&d);
	close_store(m, dir);
}

static void test_events(void)
{
	char *dir, next[TH_PAGE_TOKEN_SIZE];
	th_meta *m = open_store(&dir);
	th_error err = { 0 };
	th_event_list l = { 0 };
	th_event_new ev = { 7, "alice", "pull.merge", "3", "{\"operation\":\"x\"}", "10.1.2.3" };

	for (int i = 0; i < 5; i++)
		CHECK_OK(th_meta_event_add(m, &ev, &err), &err);
	ev.db_id = 8;
	CHECK_OK(th_meta_event_add(m, &ev, &err), &err);
	ev.actor = "";
	CHECK(th_meta_event_add(m, &ev, &err) == TH_EINVALID);
	CHECK(th_meta_event_add(m, NULL, &err) == TH_EINVALID);

	CHECK_OK(th_meta_event_list(&l, next, m, 7, NULL, 3, &err), &err);
	CHECK(l.n == 3);
	CHECK_STR(next, "3");
	if (l.n == 3) {
		CHECK(l.items[0].id > l.items[1].id); /* newest first */
		CHECK_STR(l.items[0].actor, "alice");
		CHECK_STR(l.items[0].action, "pull.merge");
		CHECK_STR(l.items[0].target, "3");
		CHECK_STR(l.items[0].detail, "{\"operation\":\"x\"}");
		CHECK_STR(l.items[0].address, "10.1.2.3");
		CHECK(l.items[0].created_at > 0 && l.items[0].db_id == 7);
	}
	th_event_list_dispose(&l);
	CHECK_OK(th_meta_event_list(&l, next, m, 7, "3", 3, &err), &err);
	CHECK(l.n == 2);
	CHECK_STR(next, "");
	th_event_list_dispose(&l);
	CHECK(th_meta_event_list(&l, next, m, 7, "x", 3, &err) == TH_EINVALID);
	close_store(m, dir);
}

int main(void)
{
	RUN(test_roles);
	RUN(test_register_and_passwords);
	RUN(test_tokens);
	RUN(test_collaborators);
	RUN(test_protection_and_review_heads);
	RUN(test_events);
	TH_TEST_END();
}
