/* cli_http.c: the client commands' HTTP calls (see cli_http.h), on one libcurl easy handle.
 *
 * The handle is reset before each request (curl_easy_reset keeps its connection cache, so requests
 * reuse one keep-alive connection) and given the options of that request. Replies are buffered
 * into a th_buf and parsed with cJSON, except downloads, whose 2xx body goes straight to a FILE.
 *
 * Errors are mapped once, here, to a message that says what to do: no answer ("cannot reach ...:
 * is the server running? is the URL right?"), 401 (log in again), 404 (check the name), 429 and
 * 503 (wait and try again), 5xx (try later; the server's log says why). The server's own message
 * (its JSON "message") is quoted in each.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli_http.h"

struct cli_http {
	CURL *curl;
	char *base;
	struct curl_slist *headers; /* authorization, accept */
	char errbuf[CURL_ERROR_SIZE];
};

void cli_reply_dispose(cli_reply *r)
{
	if (r == NULL)
		return;
	th_buf_dispose(&r->body);
	cJSON_Delete(r->json);
	memset(r, 0, sizeof(*r));
}

int cli_http_new(cli_http **out, const char *base, const char *token, th_error *err)
{
	static int curl_ready;
	cli_http *h;
	size_t n;
	char *auth = NULL;

	if (base == NULL || (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0))
		return th_error_set(err, TH_EINVALID,
		                    "server URL must start with http:// or https:// (got '%.200s')",
		                    base ? base : "");
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return th_error_set(err, TH_ERROR, "cannot initialise libcurl");
		curl_ready = 1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL || (h->base = strdup(base)) == NULL)
		goto oom;
	n = strlen(h->base);
	while (n > 0 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	if (n >= 13 && strcmp(h->base + n - 13, "/api/v1alpha1") == 0)
		h->base[n - 13] = '\0';
	if ((h->curl = curl_easy_init()) == NULL)
		goto oom;
	if ((h->headers = curl_slist_append(NULL, "accept: application/json")) == NULL)
		goto oom;
	if (token != NULL && token[0] != '\0') {
		struct curl_slist *l;
		if ((auth = malloc(strlen(token) + 32)) == NULL)
			goto oom;
		sprintf(auth, "authorization: token %s", token);
		if ((l = curl_slist_append(h->headers, auth)) == NULL)
			goto oom;
		h->headers = l;
		free(auth);
	}
	*out = h;
	return TH_OK;
oom:
	free(auth);
	cli_http_free(h);
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

void cli_http_free(cli_http *h)
{
	if (h == NULL)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->headers);
	free(h->base);
	free(h);
}

const char *cli_http_base(const cli_http *h)
{
	return h->base;
}

int cli_http_escape(th_buf *out, const char *s, th_error *err)
{
	static const char hex[] = "0123456789ABCDEF";
	int error = TH_OK;

	for (; *s && error == TH_OK; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~')
			error = th_buf_putc(out, (char)c, err);
		else
			error = th_buf_printf(out, err, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
	return error;
}

/* --- one request ------------------------------------------------------------------------------ */

typedef struct sink {
	cli_reply *reply;
	CURL *curl;
	FILE *to;      /* downloads: where a 2xx body goes */
	int to_failed; /* fwrite to `to` failed */
	int nomem;
} sink;

static size_t on_data(char *data, size_t size, size_t nmemb, void *payload)
{
	sink *s = payload;
	size_t len = size * nmemb;
	long status = 0;

	if (s->to != NULL) {
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			if (fwrite(data, 1, len, s->to) != len) {
				s->to_failed = 1;
				return 0;
			}
			return len;
		}
	}
	if (th_buf_put(&s->reply->body, data, len, NULL) < 0) {
		s->nomem = 1;
		return 0;
	}
	return len;
}

/* The server's own words for a failed request: its JSON "message", else the start of the body. */
static void server_message(char *out, size_t outsz, const cli_reply *r)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(r->json, "message");
	size_t n;

	if (cJSON_IsString(m) && m->valuestring[0]) {
		snprintf(out, outsz, "%s", m->valuestring);
		return;
	}
	n = r->body.size < 200 ? r->body.size : 200;
	snprintf(out, outsz, "%.*s", (int)n, r->body.ptr ? r->body.ptr : "");
	if (out[0] == '\0')
		snprintf(out, outsz, "no message");
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* Map an answer (or its absence) to a code and a message that says what to do. */
static int map_error(cli_http *h, cli_reply *r, CURLcode rc, th_error *err)
{
	char msg[400];
	long st = r->status;

	if (rc != CURLE_OK) {
		r->net_error = 1;
		return th_error_set(
		        err, TH_ERROR,
		        "cannot reach the server at %s: %s; check that it is running and "
		        "that the URL is right (tablehub login URL, --remote URL or "
		        "TABLEHUB_URL)",
		        h->base, h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
	}
	server_message(msg, sizeof(msg), r);
	if (st == 401)
		return th_error_set(err, TH_EAUTH,
		                    "the server at %s did not accept the token (%s); log in again "
		                    "with `tablehub login %s`, or set TABLEHUB_TOKEN or --token",
		                    h->base, msg, h->base);
	if (st == 403)
		return th_error_set(err, TH_EAUTH, "not allowed: %s", msg);
	if (st == 404)
		return th_error_set(
		        err, TH_ENOTFOUND,
		        "%s; check the name (`tablehub db list` shows the databases you "
		        "can see)",
		        msg);
	if (st == 409)
		return th_error_set(err, TH_ECONFLICT, "%s", msg);
	if (st == 413)
		return th_error_set(err, TH_ETOOBIG, "%s", msg);
	if (st == 429 || st == 503)
		return th_error_set(
		        err, TH_EBUSY,
		        "the server is busy (HTTP %ld: %s); wait a moment and try again", st, msg);
	if (st >= 500)
		return th_error_set(err, TH_ERROR,
		                    "the server failed (HTTP %ld: %s); try again later, and if it "
		                    "goes on, the server's log says why",
		                    st, msg);
	if (st >= 400)
		return th_error_set(err, TH_EINVALID, "%s", msg);
	return th_error_set(err, TH_ERROR, "unexpected answer from the server (HTTP %ld)", st);
}

/* Set the options every request shares: URL, headers, body sink, timeouts. */
static int prepare(cli_http *h, const char *path, sink *s, struct curl_slist *headers,
                   th_error *err)
{
	th_buf url = TH_BUF_INIT;
	int error;

	curl_easy_reset(h->curl);
	h->errbuf[0] = '\0';
	if ((error = th_buf_printf(&url, err, "%s%s", h->base, path)) < 0)
		return error;
	curl_easy_setopt(h->curl, CURLOPT_URL, url.ptr);
	th_buf_dispose(&url); /* libcurl copies the URL */
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "tablehub/0.1");
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A server that stops answering mid-reply is given up on after a minute of silence. */
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	return TH_OK;
}

/* Run the prepared request and fill r; returns TH_OK for a 2xx answer, else map_error's code. */
static int perform(cli_http *h, cli_reply *r, sink *s, th_error *err)
{
	CURLcode rc = curl_easy_perform(h->curl);

	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (s->nomem)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if (s->to_failed)
		return th_error_set(err, TH_ESTORE, "cannot write the output");
	if (r->body.size > 0)
		r->json = cJSON_ParseWithLength(r->body.ptr, r->body.size);
	if (rc != CURLE_OK || r->status < 200 || r->status >= 300)
		return map_error(h, r, rc, err);
	return TH_OK;
}

int cli_http_call(cli_reply *out, cli_http *h, const char *method, const char *path,
                  const char *json_body, th_error *err)
{
	struct curl_slist *headers = h->headers, *extra = NULL;
	sink s = { out, h->curl, NULL, 0, 0 };
	int error;

	cli_reply_dispose(out);
	if (json_body != NULL) {
		if ((extra = curl_slist_append(NULL, "content-type: application/json")) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		for (const struct curl_slist *l = h->headers; l; l = l->next)
			if (curl_slist_append(extra, l->data) == NULL) {
				curl_slist_free_all(extra);
				return th_error_set(err, TH_ENOMEM, "out of memory");
			}
		headers = extra;
	}
	if ((error = prepare(h, path, &s, headers, err)) < 0)
		goto cleanup;
	if (json_body != NULL) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, json_body);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)strlen(json_body));
	}
	if (strcmp(method, "GET") != 0 && !(strcmp(method, "POST") == 0 && json_body != NULL))
		curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	error = perform(h, out, &s, err);
cleanup:
	curl_slist_free_all(extra);
	return error;
}

int cli_http_download(cli_reply *out, cli_http *h, const char *path, FILE *to, th_error *err)
{
	sink s = { out, h->curl, to, 0, 0 };
	int error;

	cli_reply_dispose(out);
	if ((error = prepare(h, path, &s, h->headers, err)) < 0)
		return error;
	return perform(h, out, &s, err);
}

typedef struct progress_cb {
	cli_http_progress fn;
	void *payload;
} progress_cb;

static int on_xfer(void *payload, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
	progress_cb *p = payload;

	(void)dltotal;
	(void)dlnow;
	p->fn(p->payload, (uint64_t)ulnow, (uint64_t)ultotal);
	return 0;
}

int cli_http_upload(cli_reply *out, cli_http *h, const char *path, const char *file_path,
                    const char *file_name, const char *params_json, cli_http_progress progress,
                    void *payload, th_error *err)
{
	sink s = { out, h->curl, NULL, 0, 0 };
	progress_cb pcb = { progress, payload };
	curl_mime *mime = NULL;
	curl_mimepart *part;
	FILE *probe;
	int error;

	cli_reply_dispose(out);
	if ((probe = fopen(file_path, "rb")) == NULL)
		return th_error_set(err, TH_EINVALID, "cannot read '%s'", file_path);
	fclose(probe);
	if ((error = prepare(h, path, &s, h->headers, err)) < 0)
		return error;
	if ((mime = curl_mime_init(h->curl)) == NULL || (part = curl_mime_addpart(mime)) == NULL ||
	    curl_mime_name(part, "params") != CURLE_OK ||
	    curl_mime_data(part, params_json, CURL_ZERO_TERMINATED) != CURLE_OK ||
	    curl_mime_type(part, "application/json") != CURLE_OK ||
	    (part = curl_mime_addpart(mime)) == NULL || curl_mime_name(part, "file") != CURLE_OK ||
	    curl_mime_filedata(part, file_path) != CURLE_OK ||
	    curl_mime_filename(part, file_name) != CURLE_OK) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	curl_easy_setopt(h->curl, CURLOPT_MIMEPOST, mime);
	if (progress != NULL) {
		curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_xfer);
		curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, &pcb);
		curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	}
	error = perform(h, out, &s, err);
cleanup:
	curl_mime_free(mime);
	return error;
}
