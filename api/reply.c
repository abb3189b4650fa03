/* reply.c: JSON replies and the one place where th_code becomes an HTTP status.
 *
 * Every reply is a JSON object. Success bodies start with "status":"Success"; errors are
 * {"status":"Error","message":...,"code":"EINVALID"} plus the request identifiers DoltHub echoes
 * (req->echo). The body is printed with cJSON and copied into the MHD response (MUST_COPY), so
 * each allocator frees its own memory.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"

unsigned api_status_for(int code)
{
	switch (code) {
	case TH_ENOTFOUND:
		return MHD_HTTP_NOT_FOUND;
	case TH_EEXISTS:
	case TH_ECONFLICT:
		return MHD_HTTP_CONFLICT;
	case TH_EINVALID:
	case TH_ELIMIT:
		return MHD_HTTP_BAD_REQUEST;
	case TH_ETOOBIG:
		return MHD_HTTP_CONTENT_TOO_LARGE;
	case TH_EAUTH:
		return MHD_HTTP_UNAUTHORIZED;
	case TH_EBUSY:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

static int set_response(th_req *req, unsigned status, const char *text, size_t len)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return TH_ENOMEM;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
	    MHD_YES) {
		MHD_destroy_response(r);
		return TH_ENOMEM;
	}
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	req->resp = r;
	req->status = status;
	req->resp_len = len;
	return TH_OK;
}

int api_reply_json(th_req *req, unsigned status, cJSON *body, th_error *err)
{
	char *text = NULL;
	int error = TH_OK;

	if (body == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory building a reply");
	if ((text = cJSON_PrintUnformatted(body)) == NULL ||
	    set_response(req, status, text, strlen(text)) < 0)
		error = th_error_set(err, TH_ENOMEM, "out of memory building a reply");

	cJSON_free(text);
	cJSON_Delete(body);
	return error;
}

cJSON *api_success(void)
{
	cJSON *body = cJSON_CreateObject();

	if (body != NULL && cJSON_AddStringToObject(body, "status", "Success") == NULL) {
		cJSON_Delete(body);
		return NULL;
	}
	return body;
}

int api_reply_text(th_req *req, unsigned status, const char *text, size_t len, th_error *err)
{
	if (set_response(req, status, text, len) < 0)
		return th_error_set(err, TH_ENOMEM, "out of memory building a reply");
	return TH_OK;
}

int api_reply_error(th_req *req, unsigned status, const char *code, const char *msg)
{
	cJSON *body = cJSON_CreateObject();
	cJSON *it;
	char *text = NULL;
	int error = TH_OK;

	if (body == NULL || !api_json_str(body, "status", "Error") ||
	    !api_json_str(body, "message", msg) || !api_json_str(body, "code", code))
		goto oom;
	if (req->echo != NULL) {
		cJSON_ArrayForEach(it, req->echo)
		{
			cJSON *copy;
			if (cJSON_HasObjectItem(body, it->string))
				continue;
			if ((copy = cJSON_Duplicate(it, 1)) == NULL)
				goto oom;
			cJSON_AddItemToObject(body, it->string, copy);
		}
	}
	if ((text = cJSON_PrintUnformatted(body)) == NULL)
		goto oom;
	error = set_response(req, status, text, strlen(text));
	cJSON_free(text);
	cJSON_Delete(body);
	return error;

oom:
	cJSON_Delete(body);
	/* Even without memory for cJSON the client gets a truthful status and a JSON body. */
	{
		static const char fallback[] =
		        "{\"status\":\"Error\",\"message\":\"out of memory\",\"code\":\"ENOMEM\"}";
		(void)set_response(req, MHD_HTTP_SERVICE_UNAVAILABLE, fallback,
		                   sizeof(fallback) - 1);
	}
	return TH_ENOMEM;
}

int api_reply_th_error(th_req *req, const th_error *e)
{
	char line[24], col[24];

	if (e->line > 0) {
		snprintf(line, sizeof(line), "%llu", (unsigned long long)e->line);
		snprintf(col, sizeof(col), "%u", (unsigned)e->column);
		if (req->echo == NULL)
			req->echo = cJSON_CreateObject();
		if (req->echo != NULL) {
			cJSON_DeleteItemFromObject(req->echo, "line");
			cJSON_DeleteItemFromObject(req->echo, "column");
			cJSON_AddNumberToObject(req->echo, "line", (double)e->line);
			cJSON_AddNumberToObject(req->echo, "column", (double)e->column);
		}
	}
	return api_reply_error(req, api_status_for(e->code), th_code_name(e->code),
	                       e->msg[0] ? e->msg : "internal error");
}

cJSON *api_json_str(cJSON *obj, const char *key, const char *value)
{
	return value ? cJSON_AddStringToObject(obj, key, value) : cJSON_AddNullToObject(obj, key);
}

int api_json_get_str(const char **out, const cJSON *obj, const char *key, int required,
                     const char *what, th_error *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (it == NULL || cJSON_IsNull(it)) {
		if (required)
			return th_error_set(err, TH_EINVALID, "%s'%s' is required", what, key);
		return TH_OK;
	}
	if (!cJSON_IsString(it) || it->valuestring == NULL)
		return th_error_set(err, TH_EINVALID, "%s'%s' must be a string", what, key);
	*out = it->valuestring;
	return TH_OK;
}

void api_echo(th_req *req, const char *key, const char *value)
{
	if (req->echo == NULL && (req->echo = cJSON_CreateObject()) == NULL)
		return;
	cJSON_DeleteItemFromObject(req->echo, key);
	(void)api_json_str(req->echo, key, value);
}
