/* cli_http.h: the HTTP client of the `tablehub` commands that talk to a server (api/cli_http.c),
 * a wrapper of one libcurl easy handle. Internal to the th_cli library.
 *
 * A client holds the server's base URL ("http://host:port", no trailing slash) and a token sent as
 * "authorization: token T"; the one easy handle is reused, so a command's requests share a
 * keep-alive connection. Every call fills a cli_reply (status, body, the body parsed as JSON) and
 * returns TH_OK for a 2xx answer; any other answer, and a request that got no answer, sets err to
 * a message that says what went wrong and what to do (log in again, check the name, try later).
 */
#ifndef TABLEHUB_CLI_HTTP_H
#define TABLEHUB_CLI_HTTP_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tablehub/buf.h"
#include "tablehub/error.h"

typedef struct cli_http cli_http;

typedef struct cli_reply {
	long status;   /* the HTTP status; 0 when no answer came */
	th_buf body;   /* the body as received */
	cJSON *json;   /* the body parsed as JSON, NULL when it is not JSON */
	int net_error; /* no answer: the connection could not be made, or broke */
} cli_reply;

#define CLI_REPLY_INIT                                                                             \
	{                                                                                          \
		0, TH_BUF_INIT, NULL, 0                                                            \
	}

/* Release a reply's body and JSON; the reply is empty afterwards. Accepts NULL. */
void cli_reply_dispose(cli_reply *r);

/* A client of the server at `base` (http:// or https://; a trailing slash and a trailing
 * "/api/v1alpha1" are dropped) sending `token` (NULL or "" for none). Both are copied. *out is
 * the caller's: cli_http_free. Returns TH_OK, TH_EINVALID (not an http(s) URL) or TH_ENOMEM. */
int cli_http_new(cli_http **out, const char *base, const char *token, th_error *err);
void cli_http_free(cli_http *h);

/* The base URL in use (borrowed from h), e.g. "http://127.0.0.1:8080". */
const char *cli_http_base(const cli_http *h);

/* Append s percent-encoded for a URL path segment or query value (unreserved bytes kept). Returns
 * TH_OK or TH_ENOMEM. */
int cli_http_escape(th_buf *out, const char *s, th_error *err);

/* `method` `path` (from the base: "/api/v1alpha1/alice/db/branches", its query escaped by the
 * caller) with `json_body` (NULL: none) sent as application/json. *out (the caller's:
 * cli_reply_dispose, also on failure) gets the answer. Returns TH_OK for a 2xx answer, else
 * TH_EAUTH (401), TH_ENOTFOUND (404), TH_ECONFLICT (409), TH_ETOOBIG (413), TH_EBUSY (429, 503),
 * TH_EINVALID (other 4xx), TH_ERROR (5xx, or no answer: out->net_error) or TH_ENOMEM, with err
 * saying what to do. */
int cli_http_call(cli_reply *out, cli_http *h, const char *method, const char *path,
                  const char *json_body, th_error *err);

/* GET `path` and write a 2xx body to `to` as it arrives (an error's body is kept in out->body).
 * Returns as cli_http_call; TH_ESTORE when `to` cannot be written. */
int cli_http_download(cli_reply *out, cli_http *h, const char *path, FILE *to, th_error *err);

/* Progress of a request body going up: bytes sent of total (0 while unknown). */
typedef void (*cli_http_progress)(void *payload, uint64_t sent, uint64_t total);

/* POST multipart/form-data to `path`: part "file" streamed from the file at `file_path` (named
 * `file_name` in the part), part "params" holding `params_json`. `progress` (may be NULL) is called
 * as bytes go up. Returns as cli_http_call; TH_EINVALID when the file cannot be read. */
int cli_http_upload(cli_reply *out, cli_http *h, const char *path, const char *file_path,
                    const char *file_name, const char *params_json, cli_http_progress progress,
                    void *payload, th_error *err);

#endif
