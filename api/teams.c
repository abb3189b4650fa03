/* teams.c: who works on a database, what protects its branches, and what happened to both.
 *
 *   GET    /api/v1alpha1/{owner}/{db}/collaborators          the owner and every collaborator
 *   GET    /api/v1alpha1/{owner}/{db}/collaborators/{user}   one person's role
 *   PUT    /api/v1alpha1/{owner}/{db}/collaborators/{user}   {"role": "read|write|admin"}
 *   DELETE /api/v1alpha1/{owner}/{db}/collaborators/{user}   take the role away
 *   GET    /api/v1alpha1/{owner}/{db}/branches/{branch}/protection   the rules (anyone who reads)
 *   PUT    /api/v1alpha1/{owner}/{db}/branches/{branch}/protection   {requiredApprovals,
 *                                  allowSelfApproval, dismissStaleApprovals, mergeRole}
 *   DELETE /api/v1alpha1/{owner}/{db}/branches/{branch}/protection   unprotect
 *   GET    /api/v1alpha1/{owner}/{db}/events                 the audit trail, newest first
 *
 * Managing people and rules needs the admin role; the owner is always admin and is no
 * collaborator (their role cannot be set or taken). Every change writes its event (who, what,
 * from where) in the same transaction as the change (meta_access.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"
#include "tablehub/repo.h"

#define API "/api/v1alpha1"
#define EVENTS_PAGE_MAX 500

static int collab_list(th_req *req, th_error *err);
static int collab_get(th_req *req, th_error *err);
static int collab_put(th_req *req, th_error *err);
static int collab_delete(th_req *req, th_error *err);
static int protection_get(th_req *req, th_error *err);
static int protection_put(th_req *req, th_error *err);
static int protection_delete(th_req *req, th_error *err);
static int events_list(th_req *req, th_error *err);

const api_route api_teams_routes[] = {
	{ "GET", API "/:owner/:db/collaborators", collab_list, R_ADMIN },
	{ "GET", API "/:owner/:db/collaborators/:user", collab_get, R_ADMIN },
	{ "PUT", API "/:owner/:db/collaborators/:user", collab_put, R_ADMIN | R_JSON },
	{ "DELETE", API "/:owner/:db/collaborators/:user", collab_delete, R_ADMIN },
	{ "GET", API "/:owner/:db/branches/*branch/protection", protection_get, R_READ },
	{ "PUT", API "/:owner/:db/branches/*branch/protection", protection_put, R_ADMIN | R_JSON },
	{ "DELETE", API "/:owner/:db/branches/*branch/protection", protection_delete, R_ADMIN },
	{ "GET", API "/:owner/:db/events", events_list, R_ADMIN },
	{ NULL, NULL, NULL, 0 }
};

static int oom(th_error *err)
{
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

static cJSON *add_time(cJSON *obj, const char *key, int64_t ms)
{
	char t[32];

	if (ms == 0)
		return cJSON_AddNullToObject(obj, key);
	th_time_fmt(t, ms);
	return cJSON_AddStringToObject(obj, key, t);
}

/* A success body naming the database. */
static cJSON *db_body(th_req *req)
{
	cJSON *body = api_success();

	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name)) {
		cJSON_Delete(body);
		return NULL;
	}
	return body;
}

/* {"role": "..."} and {"a":"b"} JSON details for events, from the pool. */
static const char *detail2(th_req *req, const char *k1, const char *v1, const char *k2,
                           const char *v2)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;
	const char *r = NULL;

	if (o != NULL && api_json_str(o, k1, v1) && (k2 == NULL || api_json_str(o, k2, v2)) &&
	    (text = cJSON_PrintUnformatted(o)) != NULL)
		r = api_pool_strdup(&req->pool, text);
	cJSON_free(text);
	cJSON_Delete(o);
	return r;
}

/* --- collaborators --------------------------------------------------------------------------- */

static int collab_item(cJSON *arr, const char *user, th_role role, int is_owner, int64_t created,
                       int64_t updated)
{
	cJSON *it = cJSON_CreateObject();

	if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
		cJSON_Delete(it);
		return 0;
	}
	return api_json_str(it, "username", user) && api_json_str(it, "role", th_role_name(role)) &&
	       cJSON_AddBoolToObject(it, "is_owner", is_owner) &&
	       add_time(it, "created_at", created) && add_time(it, "updated_at", updated);
}

static int collab_list(th_req *req, th_error *err)
{
	th_collab_list l = { NULL, 0 };
	cJSON *body, *arr;
	int error;

	if ((error = th_meta_collab_list(&l, req->srv->meta, req->db.id, err)) < 0)
		return error;
	if ((body = db_body(req)) == NULL ||
	    (arr = cJSON_AddArrayToObject(body, "collaborators")) == NULL ||
	    !collab_item(arr, req->db.owner, TH_ROLE_ADMIN, 1, 0, 0))
		goto nomem;
	for (size_t i = 0; i < l.n; i++)
		if (!collab_item(arr, l.items[i].user, l.items[i].role, 0, l.items[i].created_at,
		                 l.items[i].updated_at))
			goto nomem;
	th_collab_list_dispose(&l);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
nomem:
	cJSON_Delete(body);
	th_collab_list_dispose(&l);
	return oom(err);
}

static int collab_get(th_req *req, th_error *err)
{
	const char *user = api_cap(req, "user");
	th_role role = TH_ROLE_ADMIN;
	cJSON *body;
	int error;

	if (strcmp(user, req->db.owner) != 0) {
		if ((error = th_meta_collab_role(&role, req->srv->meta, req->db.id, user, err)) < 0)
			return error;
		if (role == TH_ROLE_NONE)
			return th_error_set(err, TH_ENOTFOUND,
			                    "'%s' is not a collaborator of '%s/%s'", user,
			                    req->db.owner, req->db.name);
	}
	if ((body = db_body(req)) == NULL || !api_json_str(body, "username", user) ||
	    !api_json_str(body, "role", th_role_name(role)) ||
	    !cJSON_AddBoolToObject(body, "is_owner", strcmp(user, req->db.owner) == 0)) {
		cJSON_Delete(body);
		return oom(err);
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

static int collab_put(th_req *req, th_error *err)
{
	const char *user = api_cap(req, "user"), *role_s;
	th_role role, old = TH_ROLE_NONE;
	th_event_new ev;
	cJSON *body;
	int created = 0, error;

	api_echo(req, "username", user);
	if ((error = api_json_get_str(&role_s, req->json, "role", 1, "", err)) < 0 ||
	    (error = th_role_parse(&role, role_s, "role", err)) < 0)
		return error;
	if (strcmp(user, req->db.owner) == 0)
		return th_error_set(err, TH_EINVALID,
		                    "'%s' owns '%s/%s' and is always its admin: the owner's role "
		                    "cannot be set",
		                    user, req->db.owner, req->db.name);
	if ((error = th_meta_collab_role(&old, req->srv->meta, req->db.id, user, err)) < 0)
		return error;
	ev = api_event(req, "collaborator.set", user,
	               detail2(req, "role", th_role_name(role), "previous", th_role_name(old)));
	if ((error = th_meta_collab_set(&created, req->srv->meta, req->db.id, user, role, &ev,
	                                err)) < 0)
		return error;
	if ((body = db_body(req)) == NULL || !api_json_str(body, "username", user) ||
	    !api_json_str(body, "role", th_role_name(role)) ||
	    !cJSON_AddBoolToObject(body, "created", created)) {
		cJSON_Delete(body);
		return oom(err);
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

static int collab_delete(th_req *req, th_error *err)
{
	const char *user = api_cap(req, "user");
	th_event_new ev = api_event(req, "collaborator.remove", user, NULL);
	cJSON *body;
	int error;

	api_echo(req, "username", user);
	if (strcmp(user, req->db.owner) == 0)
		return th_error_set(err, TH_EINVALID, "the owner of '%s/%s' cannot be removed",
		                    req->db.owner, req->db.name);
	error = th_meta_collab_remove(req->srv->meta, req->db.id, user, &ev, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "'%s' is not a collaborator of '%s/%s'",
		                    user, req->db.owner, req->db.name);
	if (error < 0)
		return error;
	if ((body = db_body(req)) == NULL || !api_json_str(body, "username", user)) {
		cJSON_Delete(body);
		return oom(err);
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

/* --- protected branches ---------------------------------------------------------------------- */

static const char *branch_arg(th_req *req, th_error *err)
{
	const char *b = api_cap(req, "branch");

	api_echo(req, "branch_name", b);
	if (!th_repo_branch_name_valid(b)) {
		th_error_set(err, TH_EINVALID, "invalid branch name '%.64s'", b);
		return NULL;
	}
	return b;
}

static int protection_reply(th_req *req, const char *branch, const th_protection *p, th_error *err)
{
	cJSON *body = db_body(req);

	if (body == NULL || !api_json_str(body, "branch_name", branch) ||
	    !cJSON_AddBoolToObject(body, "protected", p != NULL) ||
	    !cJSON_AddNumberToObject(body, "requiredApprovals", p ? p->required_approvals : 0) ||
	    !cJSON_AddBoolToObject(body, "allowSelfApproval", p ? p->allow_self_approval : 1) ||
	    !cJSON_AddBoolToObject(body, "dismissStaleApprovals",
	                           p ? p->dismiss_stale_approvals : 0) ||
	    !api_json_str(body, "mergeRole", th_role_name(p ? p->merge_role : TH_ROLE_WRITE)) ||
	    !api_json_str(body, "updated_by", p ? p->updated_by : NULL) ||
	    !add_time(body, "updated_at", p ? p->updated_at : 0)) {
		cJSON_Delete(body);
		return oom(err);
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

static int protection_get(th_req *req, th_error *err)
{
	const char *branch = branch_arg(req, err);
	th_protection p;
	int error;

	if (branch == NULL)
		return TH_EINVALID;
	error = th_meta_protection_get(&p, req->srv->meta, req->db.id, branch, err);
	if (error == TH_ENOTFOUND) /* an unprotected branch: no rules, anyone with write merges */
		return protection_reply(req, branch, NULL, err);
	if (error < 0)
		return error;
	return protection_reply(req, branch, &p, err);
}

/* A boolean member, `def` when absent. */
static int get_bool(int *out, const cJSON *obj, const char *key, int def, th_error *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (it == NULL || cJSON_IsNull(it)) {
		*out = def;
		return TH_OK;
	}
	if (!cJSON_IsBool(it))
		return th_error_set(err, TH_EINVALID, "'%s' must be true or false", key);
	*out = cJSON_IsTrue(it);
	return TH_OK;
}

static int protection_put(th_req *req, th_error *err)
{
	const char *branch = branch_arg(req, err), *role_s;
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(req->json, "requiredApprovals");
	th_protection p;
	th_event_new ev;
	char *detail = NULL;
	int error;

	if (branch == NULL)
		return TH_EINVALID;
	memset(&p, 0, sizeof(p));
	snprintf(p.branch, sizeof(p.branch), "%s", branch);
	p.required_approvals = 1;
	if (n != NULL && !cJSON_IsNull(n)) {
		if (!cJSON_IsNumber(n) || n->valuedouble != (double)(int)n->valuedouble ||
		    n->valueint < 0 || n->valueint > 100)
			return th_error_set(
			        err, TH_EINVALID,
			        "requiredApprovals must be a whole number from 0 to 100");
		p.required_approvals = n->valueint;
	}
	if ((error = get_bool(&p.allow_self_approval, req->json, "allowSelfApproval", 0, err)) <
	            0 ||
	    (error = get_bool(&p.dismiss_stale_approvals, req->json, "dismissStaleApprovals", 1,
	                      err)) < 0 ||
	    (error = api_json_get_str(&role_s, req->json, "mergeRole", 0, "", err)) < 0)
		return error;
	p.merge_role = TH_ROLE_WRITE;
	if (role_s != NULL && (error = th_role_parse(&p.merge_role, role_s, "mergeRole", err)) < 0)
		return error;
	if (p.merge_role == TH_ROLE_READ)
		return th_error_set(err, TH_EINVALID, "mergeRole must be 'write' or 'admin'");
	{
		cJSON *d = cJSON_CreateObject();
		if (d != NULL &&
		    cJSON_AddNumberToObject(d, "requiredApprovals", p.required_approvals) &&
		    cJSON_AddBoolToObject(d, "allowSelfApproval", p.allow_self_approval) &&
		    cJSON_AddBoolToObject(d, "dismissStaleApprovals", p.dismiss_stale_approvals) &&
		    api_json_str(d, "mergeRole", th_role_name(p.merge_role)))
			detail = cJSON_PrintUnformatted(d);
		cJSON_Delete(d);
		if (detail == NULL)
			return oom(err);
	}
	ev = api_event(req, "protection.set", branch, detail);
	error = th_meta_protection_set(req->srv->meta, req->db.id, &p, req->user, &ev, err);
	cJSON_free(detail);
	if (error < 0)
		return error;
	if ((error = th_meta_protection_get(&p, req->srv->meta, req->db.id, branch, err)) < 0)
		return error;
	return protection_reply(req, branch, &p, err);
}

static int protection_delete(th_req *req, th_error *err)
{
	const char *branch = branch_arg(req, err);
	th_event_new ev = api_event(req, "protection.remove", branch, NULL);
	int error;

	if (branch == NULL)
		return TH_EINVALID;
	if ((error = th_meta_protection_remove(req->srv->meta, req->db.id, branch, &ev, err)) < 0)
		return error;
	return protection_reply(req, branch, NULL, err);
}

/* --- events ---------------------------------------------------------------------------------- */

static int events_list(th_req *req, th_error *err)
{
	const char *tok = api_arg(req, "pageToken"), *sz = api_arg(req, "pageSize");
	char next[TH_PAGE_TOKEN_SIZE] = "", id[24];
	th_event_list l = { NULL, 0 };
	size_t size = 50;
	cJSON *body, *arr;
	int error;

	if (sz != NULL && *sz != '\0') {
		char *end;
		long v = strtol(sz, &end, 10);
		if (*end != '\0' || v < 1 || v > EVENTS_PAGE_MAX)
			return th_error_set(err, TH_EINVALID, "'pageSize' must be 1 to %d",
			                    EVENTS_PAGE_MAX);
		size = (size_t)v;
	}
	if ((error = th_meta_event_list(&l, next, req->srv->meta, req->db.id, tok, size, err)) < 0)
		return error;
	if ((body = db_body(req)) == NULL || (arr = cJSON_AddArrayToObject(body, "events")) == NULL)
		goto nomem;
	for (size_t i = 0; i < l.n; i++) {
		const th_event_info *e = &l.items[i];
		cJSON *it = cJSON_CreateObject(), *detail = cJSON_Parse(e->detail);
		if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			cJSON_Delete(detail);
			goto nomem;
		}
		snprintf(id, sizeof(id), "%lld", (long long)e->id);
		if (detail == NULL || !cJSON_AddItemToObject(it, "detail", detail)) {
			cJSON_Delete(detail);
			goto nomem;
		}
		if (!api_json_str(it, "event_id", id) || !api_json_str(it, "actor", e->actor) ||
		    !api_json_str(it, "action", e->action) ||
		    !api_json_str(it, "target", e->target) ||
		    !api_json_str(it, "address", e->address) ||
		    !add_time(it, "created_at", e->created_at))
			goto nomem;
	}
	if (!api_json_str(body, "next_page_token", next))
		goto nomem;
	th_event_list_dispose(&l);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
nomem:
	cJSON_Delete(body);
	th_event_list_dispose(&l);
	return oom(err);
}
