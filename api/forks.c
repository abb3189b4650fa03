/* forks.c: forks of a database, as DoltHub has them, and pull requests from a fork's branch.
 *
 *   POST /api/v1alpha1/fork                       {parentOwnerName, parentDatabaseName,
 *                                                 ownerName}: the fork, and its operation name
 *   GET  /api/v1alpha1/fork?operationName=N       poll it (done: true with the fork's name)
 *   GET  /api/v1alpha1/{owner}/{db}/forks         the forks of a database and its network
 *
 * A fork borrows its parent's objects (git alternates: src/databases.c, th_db_fork), so making
 * one takes milliseconds and almost no disk; it is made within the request, and its operation is
 * done when the POST answers (the poll says so at once). Anyone who reads a database may fork it
 * into their own account; a fork of a private database is private.
 *
 * A pull request into a database may come from a branch of one of its forks (POST .../pulls with
 * fromBranchOwnerName and fromBranchRepoName naming the fork): whoever reads the parent and writes
 * the fork may open one. The fork's branch is brought into the parent as "forks/<owner>/<branch>"
 * when the pull is opened and again whenever the open pull is read or acted on
 * (api_pull_fork_sync), so its diff, conflicts, reviews and merge work as for a branch of the
 * parent; the pull shows the fork's names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulls_api.h"
#include "tablehub/databases.h"
#include "tablehub/ids.h"
#include "tablehub/meta_access.h"

#define API "/api/v1alpha1"
#define MAX_NETWORK 10000 /* members of one fork network counted, at most */

static int fork_create(th_req *req, th_error *err);
static int fork_poll(th_req *req, th_error *err);
static int forks_list(th_req *req, th_error *err);

const api_route api_forks_routes[] = { { "POST", API "/fork", fork_create, R_WRITE | R_JSON },
	                               { "GET", API "/fork", fork_poll, R_AUTH },
	                               { "GET", API "/:owner/:db/forks", forks_list, R_READ },
	                               { NULL, NULL, NULL, 0 } };

static int oom(th_error *err)
{
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

/* May req's caller read database f? */
static int can_read(int *out, th_req *req, const th_fork_info *f, th_error *err)
{
	th_role r = TH_ROLE_NONE;
	int error = api_role_of(&r, req, req->user, f->id, f->owner, f->is_private, err);

	*out = r >= TH_ROLE_READ;
	return error;
}

static int fork_create(th_req *req, th_error *err)
{
	const char *powner, *pname, *owner;
	char op[TH_UUID_SIZE], target[140], detail[300];
	th_fork_info parent;
	th_db_info d;
	th_event_new ev;
	int64_t id = 0;
	int readable = 0, error;
	cJSON *body;

	if ((error = api_json_get_str(&powner, req->json, "parentOwnerName", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&pname, req->json, "parentDatabaseName", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&owner, req->json, "ownerName", 1, "", err)) < 0)
		return error;
	api_echo(req, "parent_owner", powner);
	api_echo(req, "parent_database", pname);
	if (strcmp(owner, req->user) != 0)
		return th_error_set(err, TH_EFORBIDDEN,
		                    "you can fork only into your own account: 'ownerName' must be "
		                    "'%s'",
		                    req->user);
	memset(&d, 0, sizeof(d));
	error = th_meta_db_get(&d, req->srv->meta, powner, pname, err);
	th_db_info_dispose(&d);
	if (error == TH_OK &&
	    (error = th_meta_fork_info(&parent, req->srv->meta, d.id, err)) == TH_OK)
		error = can_read(&readable, req, &parent, err);
	if (error == TH_ENOTFOUND || (error == TH_OK && !readable))
		return th_error_set(err, TH_ENOTFOUND, "database '%.64s/%.64s' not found", powner,
		                    pname);
	if (error < 0)
		return error;
	if ((error = th_uuid4(op, err)) < 0)
		return error;
	snprintf(target, sizeof(target), "%s/%s", owner, parent.name);
	snprintf(detail, sizeof(detail), "{\"parent\":\"%s/%s\",\"operation\":\"%s\"}",
	         parent.owner, parent.name, op);
	ev = api_event(req, "fork.create", target, detail);
	ev.db_id = parent.id;
	if ((error = th_db_fork(&id, req->srv->meta, req->srv->cfg.data_dir, &parent, owner, op,
	                        &ev, err)) < 0)
		return error;
	body = api_success();
	if (body == NULL || !api_json_str(body, "parent_owner", parent.owner) ||
	    !api_json_str(body, "parent_database", parent.name) ||
	    !api_json_str(body, "forked_owner", owner) ||
	    !api_json_str(body, "forked_database", parent.name) ||
	    !api_json_str(body, "operation_name",
	                  api_pool_printf(&req->pool, "operations/%s", op))) {
		cJSON_Delete(body);
		return oom(err);
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

static int fork_poll(th_req *req, th_error *err)
{
	const char *name = api_arg(req, "operationName"), *id;
	th_fork_info f;
	int readable = 0, error;
	cJSON *body;

	if (name == NULL || *name == '\0')
		return th_error_set(err, TH_EINVALID,
		                    "query parameter 'operationName' is required");
	api_echo(req, "operation_name", name);
	/* "operations/<uuid>" as POST /fork answers, DoltHub's "operations/jobs/<uuid>", or the
	 * bare uuid. */
	id = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	error = th_meta_fork_by_op(&f, req->srv->meta, id, err);
	if (error == TH_OK)
		error = can_read(&readable, req, &f, err);
	if (error == TH_ENOTFOUND || (error == TH_OK && !readable))
		return th_error_set(err, TH_ENOTFOUND, "fork operation '%.200s' not found", name);
	if (error < 0)
		return error;
	body = api_success();
	if (body == NULL || !cJSON_AddTrueToObject(body, "done") ||
	    !api_json_str(body, "operation_name", name) ||
	    !api_json_str(body, "database_owner", f.owner) ||
	    !api_json_str(body, "database_name", f.name)) {
		cJSON_Delete(body);
		return oom(err);
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

/* Count the members of the network under `root` the caller may read (root included). */
static int count_network(size_t *n, th_req *req, const th_fork_info *root, int depth, th_error *err)
{
	th_fork_list l = { NULL, 0 };
	int readable = 0, error;

	if ((error = can_read(&readable, req, root, err)) < 0)
		return error;
	*n += readable;
	if (depth > 100 || *n > MAX_NETWORK)
		return TH_OK;
	if ((error = th_meta_fork_list(&l, req->srv->meta, root->id, err)) < 0)
		return error;
	for (size_t i = 0; i < l.n && error == TH_OK; i++)
		error = count_network(n, req, &l.items[i], depth + 1, err);
	th_fork_list_dispose(&l);
	return error;
}

static int forks_list(th_req *req, th_error *err)
{
	th_fork_info self, parent, root;
	th_fork_list l = { NULL, 0 };
	size_t members = 0;
	int parent_readable = 0, error;
	cJSON *body = NULL, *arr;

	if ((error = th_meta_fork_info(&self, req->srv->meta, req->db.id, err)) < 0 ||
	    (error = th_meta_fork_list(&l, req->srv->meta, req->db.id, err)) < 0)
		return error;
	/* Up to the root of the network, through the parents the caller may see. */
	root = self;
	memset(&parent, 0, sizeof(parent));
	for (int depth = 0; root.parent_id != 0 && depth < 100; depth++) {
		th_fork_info up;
		int readable = 0;
		if ((error = th_meta_fork_info(&up, req->srv->meta, root.parent_id, err)) ==
		    TH_ENOTFOUND)
			break;
		if (error < 0 || (error = can_read(&readable, req, &up, err)) < 0)
			goto cleanup;
		if (!readable)
			break;
		if (depth == 0) {
			parent = up;
			parent_readable = 1;
		}
		root = up;
	}
	if ((error = count_network(&members, req, &root, 0, err)) < 0)
		goto cleanup;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    (arr = cJSON_AddArrayToObject(body, "forks")) == NULL)
		goto nomem;
	for (size_t i = 0; i < l.n; i++) {
		int readable = 0;
		cJSON *it;
		if ((error = can_read(&readable, req, &l.items[i], err)) < 0)
			goto cleanup;
		if (!readable)
			continue; /* a private fork the caller may not read does not exist for them
			           */
		if ((it = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto nomem;
		}
		if (!api_json_str(it, "database_owner", l.items[i].owner) ||
		    !api_json_str(it, "database_name", l.items[i].name))
			goto nomem;
	}
	if (!api_json_str(body, "parent_owner", parent_readable ? parent.owner : NULL) ||
	    !api_json_str(body, "parent_database_name", parent_readable ? parent.name : NULL) ||
	    !api_json_str(body, "network_root_owner", root.owner) ||
	    !api_json_str(body, "network_root_database_name", root.name) ||
	    !cJSON_AddNumberToObject(body, "fork_network_count", (double)members))
		goto nomem;
	th_fork_list_dispose(&l);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
nomem:
	error = oom(err);
cleanup:
	cJSON_Delete(body);
	th_fork_list_dispose(&l);
	return error;
}

/* --- pull requests from a fork ---------------------------------------------------------------- */

int api_pull_fork_source(th_fork_info *fork, char *branch, size_t size, th_req *req,
                         const char *from, th_error *err)
{
	const char *o = NULL, *r = NULL;
	th_db_info d;
	th_role role = TH_ROLE_NONE;
	th_oid head;
	int error;

	fork->id = 0;
	if ((error = api_json_get_str(&o, req->json, "fromBranchOwnerName", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&r, req->json, "fromBranchRepoName", 0, "", err)) < 0)
		return error;
	if ((o == NULL || *o == '\0' || strcmp(o, req->db.owner) == 0) &&
	    (r == NULL || *r == '\0' || strcmp(r, req->db.name) == 0)) {
		/* A branch of this database: opening a pull request on it needs write. */
		if (req->role < TH_ROLE_WRITE)
			return th_error_set(err, TH_EFORBIDDEN,
			                    "this needs the write role on '%s/%s'", req->db.owner,
			                    req->db.name);
		snprintf(branch, size, "%s", from);
		return TH_OK;
	}
	if (o == NULL || *o == '\0')
		o = req->db.owner;
	if (r == NULL || *r == '\0')
		r = req->db.name;
	memset(&d, 0, sizeof(d));
	error = th_meta_db_get(&d, req->srv->meta, o, r, err);
	th_db_info_dispose(&d);
	if (error == TH_OK && (error = th_meta_fork_info(fork, req->srv->meta, d.id, err)) == TH_OK)
		error = api_role_of(&role, req, req->user, fork->id, fork->owner, fork->is_private,
		                    err);
	if (error == TH_ENOTFOUND || (error == TH_OK && role == TH_ROLE_NONE))
		return th_error_set(err, TH_ENOTFOUND, "database '%.64s/%.64s' not found", o, r);
	if (error < 0)
		return error;
	if (fork->parent_id != req->db.id)
		return th_error_set(err, TH_EINVALID, "'%s/%s' is not a fork of '%s/%s'",
		                    fork->owner, fork->name, req->db.owner, req->db.name);
	if (role < TH_ROLE_WRITE || req->scope < TH_ROLE_WRITE)
		return th_error_set(err, TH_EFORBIDDEN,
		                    "a pull request from '%s/%s' needs the write role there",
		                    fork->owner, fork->name);
	if (th_fork_pull_branch(branch, size, fork->owner, from) < 0)
		return th_error_set(err, TH_EINVALID, "branch name '%.200s' is too long", from);
	return th_fork_sync(&head, req->srv->cfg.data_dir, fork, req->db.owner, from, branch, err);
}

/* The fork's branch of a pull brought over to the parent: the part after "forks/<owner>/". */
static const char *fork_branch(const th_pull_info *p, const th_fork_info *f)
{
	size_t n = strlen(f->owner);

	if (strncmp(p->from_branch, "forks/", 6) == 0 &&
	    strncmp(p->from_branch + 6, f->owner, n) == 0 && p->from_branch[6 + n] == '/')
		return p->from_branch + 7 + n;
	return p->from_branch;
}

int api_pull_fork_of(th_fork_info *out, th_req *req, const th_pull_info *p, th_error *err)
{
	int64_t from_db = 0;
	int error;

	out->id = 0;
	if ((error = th_meta_pull_source(&from_db, req->srv->meta, req->db.id, p->pull_id, err)) <
	    0)
		return error;
	if (from_db == 0)
		return TH_OK;
	error = th_meta_fork_info(out, req->srv->meta, from_db, err);
	if (error == TH_ENOTFOUND) /* the fork is gone: the branch brought over stays as it was */
		out->id = 0;
	return error == TH_ENOTFOUND ? TH_OK : error;
}

int api_pull_fork_sync(th_req *req, const th_pull_info *p, th_error *err)
{
	th_fork_info f;
	th_oid head;
	int error;

	if ((error = api_pull_fork_of(&f, req, p, err)) < 0)
		return error;
	if (f.id == 0 || p->state != TH_PULL_OPEN)
		return TH_OK;
	error = th_fork_sync(&head, req->srv->cfg.data_dir, &f, req->db.owner, fork_branch(p, &f),
	                     p->from_branch, err);
	/* A branch deleted in the fork leaves the pull with what was brought over last. */
	return error == TH_ENOTFOUND ? TH_OK : error;
}

int api_pull_fork_fields(cJSON *body, const th_pull_info *p, const th_fork_info *f)
{
	const char *branch = fork_branch(p, f);

	if (f->id == 0)
		return TH_OK;
	cJSON_DeleteItemFromObject(body, "from_branch_owner");
	cJSON_DeleteItemFromObject(body, "from_branch_database");
	cJSON_DeleteItemFromObject(body, "from_branch_name");
	cJSON_DeleteItemFromObject(body, "from_branch");
	if (!api_json_str(body, "from_branch_owner", f->owner) ||
	    !api_json_str(body, "from_branch_database", f->name) ||
	    !api_json_str(body, "from_branch_name", branch) ||
	    !api_json_str(body, "from_branch", branch) ||
	    !api_json_str(body, "from_branch_in_parent", p->from_branch))
		return TH_ENOMEM;
	return TH_OK;
}
