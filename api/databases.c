/* databases.c: POST /api/v1alpha1/database, DoltHub's create-database call. It checks the request
 * (names, visibility, the caller's right to the owner name) and shapes the reply; the database
 * itself is made by th_db_create (src/databases.c), the rule `tablehub db create` follows too.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "tablehub/text.h"
#include "tablehub/databases.h"

int api_databases_create(th_req *req, th_error *err)
{
	const char *owner, *name, *description, *visibility;
	int is_private = 0, error;
	cJSON *body;

	if ((error = api_json_get_str(&owner, req->json, "ownerName", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&name, req->json, "repoName", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&description, req->json, "description", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&visibility, req->json, "visibility", 0, "", err)) < 0)
		return error;
	api_echo(req, "repository_owner", owner);
	api_echo(req, "repository_name", name);
	if (!th_name_valid(owner))
		return th_error_set(err, TH_EINVALID,
		                    "'ownerName' must be 1-64 of [A-Za-z0-9_-] (got '%.64s')",
		                    owner);
	if (!th_name_valid(name))
		return th_error_set(err, TH_EINVALID,
		                    "'repoName' must be 1-64 of [A-Za-z0-9_-] (got '%.64s')", name);
	if (visibility == NULL || strcasecmp(visibility, "public") == 0)
		is_private = 0;
	else if (strcasecmp(visibility, "private") == 0)
		is_private = 1;
	else
		return th_error_set(err, TH_EINVALID,
		                    "'visibility' must be 'public' or 'private' (got '%.64s')",
		                    visibility);
	if (strcmp(owner, req->user) != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg),
		         "'ownerName' must be your own user name '%s': you cannot create databases "
		         "for '%s'",
		         req->user, owner);
		return api_reply_error(req, MHD_HTTP_FORBIDDEN, "EFORBIDDEN", msg) < 0 ? TH_ENOMEM
		                                                                       : TH_OK;
	}
	if ((error = th_db_create(req->srv->meta, req->srv->cfg.data_dir, owner, name, description,
	                          is_private, err)) < 0)
		return error;
	body = api_success();
	if (body == NULL || !api_json_str(body, "description", description ? description : "") ||
	    !api_json_str(body, "repository_owner", owner) ||
	    !api_json_str(body, "repository_name", name) ||
	    !api_json_str(body, "visibility", is_private ? "private" : "public")) {
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}
