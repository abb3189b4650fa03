/* auth.c: who is calling. The authorization header carries an API token in one of the forms
 * DoltHub's clients send: "token T" (DoltHub's documented form), a bare "T" (its older examples)
 * or "Bearer T" (its v2 API). The token itself goes to the meta store, which keeps only hashes
 * and compares them in constant time; nothing here logs or keeps the token.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "tablehub/hash.h"
#include "tablehub/meta.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

const char *api_token_from_header(const char *value, size_t *len)
{
	const char *p = value, *end;

	if (value == NULL)
		return NULL;
	while (is_space(*p))
		p++;
	if (strncasecmp(p, "token", 5) == 0 && is_space(p[5]))
		p += 5;
	else if (strncasecmp(p, "bearer", 6) == 0 && is_space(p[6]))
		p += 6;
	while (is_space(*p))
		p++;
	end = p + strlen(p);
	while (end > p && is_space(end[-1]))
		end--;
	if (end == p)
		return NULL;
	/* A token is one word: "token a b" is not a token. */
	for (const char *q = p; q < end; q++)
		if (is_space(*q))
			return NULL;
	*len = (size_t)(end - p);
	return p;
}

int api_auth(th_req *req, th_error *err)
{
	const char *value = api_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *tok;
	char token[256], key[65], user[65];
	size_t len = 0;
	int error;

	req->user[0] = req->token_key[0] = '\0';
	if (value == NULL)
		return TH_OK;
	if ((tok = api_token_from_header(value, &len)) == NULL || len >= sizeof(token))
		return th_error_set(err, TH_EAUTH, "invalid authorization header");
	memcpy(token, tok, len);
	token[len] = '\0';
	/* The cache is keyed by the token's SHA-256, never the token itself. */
	th_sha256_hex(key, token, len);
	if (api_cache_get(req->srv->tokens, key, user, sizeof(user))) {
		memcpy(req->user, user, sizeof(user));
		error = TH_OK;
	} else if ((error = th_meta_token_lookup(user, req->srv->meta, token, err)) == TH_OK) {
		memcpy(req->user, user, sizeof(user));
		api_cache_put(req->srv->tokens, key, user, sizeof(user), 0);
	}
	memset(token, 0, sizeof(token));
	if (error == TH_OK)
		memcpy(req->token_key, key, sizeof(key)); /* the rate limit's key (admit.c) */
	return error;
}

/* GET /api/v1alpha1/user: who the token belongs to (DoltHub's fields; tablehub keeps no profile,
 * so those are empty). */
int api_user_get(th_req *req, th_error *err)
{
	cJSON *body = api_success();

	if (body == NULL || !api_json_str(body, "username", req->user) ||
	    !api_json_str(body, "display_name", req->user) || !api_json_str(body, "bio", "") ||
	    !api_json_str(body, "location", "") || !api_json_str(body, "url", "") ||
	    !api_json_str(body, "profile_picture_url", "") ||
	    !cJSON_AddArrayToObject(body, "email_addresses")) {
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}
