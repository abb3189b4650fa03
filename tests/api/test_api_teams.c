/* test_api_teams.c: collaborators, protected branches and the audit trail over HTTP, on a real
 * `tablehub serve`: roles given, changed and taken away (each taking effect at the next request),
 * what the owner and admins may manage and others may not, a private database visible exactly to
 * its readers, protection rules set, read back, refused when malformed and removed, and the events
 * all of that left (who, what, when, from where), which only admins may read. */
#include "../harness.h"
#include "accounts.h"

static t_server srv;
static char *dir, *alice, *bob, *carol;

static void create_db(const char *name, const char *visibility)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"%s\","
	                       "\"visibility\":\"%s\"}' '%s/database'",
	                  alice, name, visibility, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
}

static int new_branch(const char *token, const char *db, const char *name)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                       "\"newBranchName\":\"%s\"}' '%s/%s/branches'",
	                  token, name, srv.base, db);
	int st = r.status;

	t_resp_free(&r);
	return st;
}

static void test_collaborators(void)
{
	t_resp r;
	const cJSON *list;

	create_db("shop", "public");
	/* bob has no role: he reads the public database but may not write it. */
	CHECK(new_branch(bob, "alice/shop", "b1") == 403);
	r = t_http(&srv, AUTH "-X PUT -d '{\"role\":\"write\"}' '%s/alice/shop/collaborators/bob'",
	           alice, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "role"), "write");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "created")));
	t_resp_free(&r);
	CHECK(new_branch(bob, "alice/shop", "b1") == 200);
	/* Changing a role is no new collaborator. */
	r = t_http(&srv, AUTH "-X PUT -d '{\"role\":\"READ\"}' '%s/alice/shop/collaborators/bob'",
	           alice, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "role"), "read");
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "created")));
	t_resp_free(&r);
	CHECK(new_branch(bob, "alice/shop", "b2") == 403); /* at once */

	/* What is refused. */
	r = t_http(&srv, AUTH "-X PUT -d '{\"role\":\"owner\"}' '%s/alice/shop/collaborators/bob'",
	           alice, srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "invalid role 'owner': use read, write or admin");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PUT -d '{}' '%s/alice/shop/collaborators/bob'", alice, srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "'role' is required");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PUT -d '{\"role\":\"read\"}' '%s/alice/shop/collaborators/zed'",
	           alice, srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "user 'zed' not found");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PUT -d '{\"role\":\"read\"}' '%s/alice/shop/collaborators/alice'",
	           alice, srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "is always its admin");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PUT -d '{\"role\":\"admin\"}' '%s/alice/shop/collaborators/bob'",
	           bob, srv.base);
	CHECK(r.status == 403);
	CHECK_STR(t_str(&r, "message"), "this needs the admin role on 'alice/shop'");
	t_resp_free(&r);

	/* An admin manages people too. */
	CHECK(t_set_role(&srv, alice, "alice/shop", "carol", "admin") == 200);
	CHECK(t_set_role(&srv, carol, "alice/shop", "bob", "write") == 200);
	r = t_http(&srv, AUTH "'%s/alice/shop/collaborators'", carol, srv.base);
	CHECK(r.status == 200);
	list = cJSON_GetObjectItem(r.json, "collaborators");
	CHECK(cJSON_GetArraySize(list) == 3);
	CHECK_STR(
	        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "username")),
	        "alice");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "is_owner")));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "role")),
	          "write");
	CHECK_STR(
	        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 2), "username")),
	        "carol");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/collaborators/bob'", carol, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "role"), "write");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/collaborators/zed'", carol, srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);

	/* Taken away: at once. */
	r = t_http(&srv, AUTH "-X DELETE '%s/alice/shop/collaborators/carol'", alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/collaborators'", carol, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/alice/shop/collaborators/carol'", alice, srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "'carol' is not a collaborator of 'alice/shop'");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/alice/shop/collaborators/alice'", alice, srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
}

static void test_private_database(void)
{
	t_resp r;

	create_db("vault", "private");
	r = t_http(&srv, AUTH "'%s/alice/vault/branches'", carol, srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "database 'alice/vault' not found");
	t_resp_free(&r);
	CHECK(t_set_role(&srv, alice, "alice/vault", "carol", "read") == 200);
	r = t_http(&srv, AUTH "'%s/alice/vault/branches'", carol, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	/* A reader of a private database sees it, and is refused writes with 403, not 404. */
	CHECK(new_branch(carol, "alice/vault", "c1") == 403);
	r = t_http(&srv, AUTH "'%s/databases'", carol, srv.base);
	CHECK_CONTAINS(r.body, "\"database_name\":\"vault\"");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/alice/vault/collaborators/carol'", alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/vault/branches'", carol, srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/databases'", carol, srv.base);
	CHECK(strstr(r.body, "vault") == NULL);
	t_resp_free(&r);
}

static void test_protection(void)
{
	t_resp r;

	r = t_http(&srv, "'%s/alice/shop/branches/main/protection'", srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "protected")));
	CHECK(t_num(&r, "requiredApprovals") == 0);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"requiredApprovals\":2,\"allowSelfApproval\":false,"
	                "\"dismissStaleApprovals\":true,\"mergeRole\":\"admin\"}' "
	                "'%s/alice/shop/branches/main/protection'",
	           alice, srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "protected")));
	CHECK(t_num(&r, "requiredApprovals") == 2);
	CHECK_STR(t_str(&r, "mergeRole"), "admin");
	CHECK_STR(t_str(&r, "updated_by"), "alice");
	t_resp_free(&r);
	/* Anyone who reads the database reads its rules. */
	r = t_http(&srv, "'%s/alice/shop/branches/main/protection'", srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "protected")));
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "allowSelfApproval")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "dismissStaleApprovals")));
	t_resp_free(&r);
	/* Defaults: one approval, no self-approval, stale approvals dismissed, write merges. */
	r = t_http(&srv, AUTH "-X PUT -d '{}' '%s/alice/shop/branches/release/protection'", alice,
	           srv.base);
	CHECK(r.status == 200);
	CHECK(t_num(&r, "requiredApprovals") == 1);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "allowSelfApproval")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "dismissStaleApprovals")));
	CHECK_STR(t_str(&r, "mergeRole"), "write");
	t_resp_free(&r);
	/* Malformed rules; writers may not change them. */
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"requiredApprovals\":-1}' "
	                "'%s/alice/shop/branches/main/protection'",
	           alice, srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "requiredApprovals must be a whole number from 0 to 100");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"mergeRole\":\"read\"}' "
	                "'%s/alice/shop/branches/main/protection'",
	           alice, srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"allowSelfApproval\":\"yes\"}' "
	                "'%s/alice/shop/branches/main/protection'",
	           alice, srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "'allowSelfApproval' must be true or false");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PUT -d '{}' '%s/alice/shop/branches/main/protection'", bob,
	           srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/alice/shop/branches/release/protection'", alice,
	           srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "protected")));
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/alice/shop/branches/release/protection'", alice,
	           srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
}

static void test_events(void)
{
	t_resp r;
	const cJSON *ev, *first;
	int n, saw_set = 0, saw_remove = 0, saw_protect = 0;

	r = t_http(&srv, AUTH "'%s/alice/shop/events'", bob, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/events?pageSize=3'", alice, srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "events")) == 3);
	CHECK_STR(t_str(&r, "next_page_token"), "3");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/events?pageSize=100'", alice, srv.base);
	CHECK(r.status == 200);
	ev = cJSON_GetObjectItem(r.json, "events");
	n = cJSON_GetArraySize(ev);
	/* Of shop: 4 roles set, 1 taken, 2 protections set, 1 removed; refusals leave nothing. */
	CHECK(n == 8);
	first = cJSON_GetArrayItem(ev, 0); /* newest first: the last protection removed */
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "action")), "protection.remove");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "target")), "release");
	for (int i = 0; i < n; i++) {
		const cJSON *e = cJSON_GetArrayItem(ev, i);
		const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(e, "action"));
		const char *actor = cJSON_GetStringValue(cJSON_GetObjectItem(e, "actor"));
		const char *target = cJSON_GetStringValue(cJSON_GetObjectItem(e, "target"));
		const cJSON *d = cJSON_GetObjectItem(e, "detail");
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "address")), "127.0.0.1");
		CHECK(cJSON_IsString(cJSON_GetObjectItem(e, "created_at")));
		CHECK(cJSON_IsObject(d));
		if (strcmp(nz(a), "collaborator.set") == 0 && strcmp(nz(actor), "carol") == 0) {
			/* carol, as admin, made bob a writer again */
			CHECK_STR(target, "bob");
			CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(d, "role")), "write");
			CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(d, "previous")), "read");
			saw_set++;
		}
		if (strcmp(nz(a), "collaborator.remove") == 0) {
			CHECK_STR(actor, "alice");
			CHECK_STR(target, "carol");
			saw_remove++;
		}
		if (strcmp(nz(a), "protection.set") == 0 && strcmp(nz(target), "main") == 0) {
			CHECK(cJSON_GetObjectItem(d, "requiredApprovals")->valuedouble == 2);
			saw_protect++;
		}
	}
	CHECK(saw_set == 1 && saw_remove == 1 && saw_protect == 1);
	t_resp_free(&r);
}

static void test_no_secret_in_log(void)
{
	CHECK(t_secrets_check_log(&srv) == 0);
}

int main(void)
{
	const char *extra[] = { "--rate-per-address", "0", "--rate-per-token", "0", NULL };

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, extra) < 0)
		return 1;
	alice = t_user(&srv, "alice");
	bob = t_user(&srv, "bob");
	carol = t_user(&srv, "carol");
	if (alice == NULL || bob == NULL || carol == NULL) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	RUN(test_collaborators);
	RUN(test_private_database);
	RUN(test_protection);
	RUN(test_events);
	RUN(test_no_secret_in_log);
	t_server_stop(&srv, SIGTERM);
	t_secrets_free();
	free(alice);
	free(bob);
	free(carol);
	t_rmdir(dir);
	TH_TEST_END();
}
