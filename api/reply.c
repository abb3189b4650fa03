/* reply.c: JSON replies and the one place where th_code becomes an HTTP status (api_status_for:
 * every handler, the SQL read included, maps its failures here and nowhere else).
 *
 * Every reply is a JSON object. Success bodies start with "status":"Success"; errors are
 * {"status":"Error","message":...,"code":"EINVALID"} plus the request identifiers DoltHub echoes
 * (req->echo). A body printed with cJSON is copied into the MHD response (MUST_COPY), so each
 * allocator frees its own memory. A body written into th_bufs (the SQL read's, whose rows stream
 * straight into it) is handed to MHD as it is, in pieces, and freed by MHD's completion callback:
 * large results are never copied on the way out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "tablehub/buf.h"
#include "tablehub/text.h"

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
	case TH_EFORBIDDEN:
		return MHD_HTTP_FORBIDDEN;
	case TH_EBUSY:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	case TH_ENOSPC:
		return MHD_HTTP_INSUFFICIENT_STORAGE;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

/* Make `r` (taken; NULL: out of memory) a JSON reply of len bytes with `status`. */
static int install(th_req *req, struct MHD_Response *r, unsigned status, size_t len)
{
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

static int set_response(th_req *req, unsigned status, const char *text, size_t len)
{
	char *clean;
	int error;

	text = api_clean_reply(req, text, &len, &clean); /* valid UTF-8, no server paths */
	error = install(req,
	                MHD_create_response_from_buffer(len, (void *)(uintptr_t)text,
	                                                MHD_RESPMEM_MUST_COPY),
	                status, len);
	free(clean);
	return error;
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

/* The pieces of a body sent from th_bufs, freed when MHD is done with the response. */
typedef struct bufs_body {
	char *piece[2];
} bufs_body;

static void bufs_free(void *cls)
{
	bufs_body *b = cls;

	free(b->piece[0]);
	free(b->piece[1]);
	free(b);
}

int api_reply_json_bufs(th_req *req, unsigned status, th_buf *head, th_buf *rest, th_error *err)
{
	struct MHD_IoVec iov[2];
	struct MHD_Response *r;
	bufs_body *b = calloc(1, sizeof(*b));
	unsigned n = 0;
	size_t len = head->size + rest->size;

	if (b == NULL) {
		th_buf_dispose(head);
		th_buf_dispose(rest);
		return th_error_set(err, TH_ENOMEM, "out of memory building a reply");
	}
	if (head->size > 0) {
		iov[n].iov_base = head->ptr;
		iov[n++].iov_len = head->size;
	}
	if (rest->size > 0) {
		iov[n].iov_base = rest->ptr;
		iov[n++].iov_len = rest->size;
	}
	b->piece[0] = th_buf_detach(head);
	b->piece[1] = th_buf_detach(rest);
	/* From here MHD owns `b`: bufs_free runs when the response is destroyed. */
	if ((r = MHD_create_response_from_iovec(iov, n, bufs_free, b)) == NULL)
		bufs_free(b);
	if (install(req, r, status, len) < 0)
		return th_error_set(err, TH_ENOMEM, "out of memory building a reply");
	return TH_OK;
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
	char *text = NULL, *clean = NULL;
	size_t size;
	int error = TH_OK;

	/* No server folder in a message a client reads (each replacement grows by at most 4). */
	if (msg != NULL) {
		size = strlen(msg) * 3 + 16;
		if ((clean = malloc(size)) == NULL)
			goto oom;
		memcpy(clean, msg, strlen(msg) + 1);
		th_redact(clean, size);
		msg = clean;
	}
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
	free(clean);
	return error;

oom:
	cJSON_Delete(body);
	free(clean);
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
