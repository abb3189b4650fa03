/* csv_export.c: a table downloaded through an exporter (src/export*.c):
 *
 *   GET /csv/{owner}/{db}/{ref}/{table}                                  CSV (DoltHub's path)
 *   GET /api/v1alpha1/{owner}/{db}/{ref}/tables/{table}/export?format=F  csv (the default), json,
 *                                                                        jsonl or sql
 *
 * and GET /csv/{owner}/{db}/{ref}, every table at the ref as a zip archive of CSV files, as
 * DoltHub has it (the archive is written as it streams: th_query_archive_new). Each names its file
 * in Content-Disposition ("<table>.<extension>").
 *
 * Everything that can fail with a proper status (database, ref, table) is checked before the
 * reply starts (th_query_export); then the rows stream from git through the exporter and MHD's
 * content-reader callback, 64 KiB at a time, so a table of a million rows never sits in memory.
 * A failure after the first bytes can only cut the connection (the client sees a short body, no
 * trailing newline). The stream is the exporter's: another format is another exporter handed to
 * the same code (its media type and file extension come with it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "tablehub/buf.h"
#include "tablehub/export.h"
#include "tablehub/log.h"
#include "tablehub/query.h"

#define CSV_BLOCK (64 * 1024)

/* Owned by MHD's response from the start of the stream; freed by csv_free. */
typedef struct csv_stream {
	th_table_export *x;    /* a table, or */
	th_query_archive *zip; /* every table as a zip archive */
	th_buf buf;
	size_t off;
	int end;
	uint64_t req_id;
} csv_stream;

static ssize_t csv_read(void *cls, uint64_t pos, char *out, size_t max)
{
	csv_stream *s = cls;
	th_error err = { 0 };
	size_t n;

	(void)pos;
	if (s->off == s->buf.size) {
		int rc;
		if (s->end)
			return MHD_CONTENT_READER_END_OF_STREAM;
		th_buf_clear(&s->buf);
		s->off = 0;
		rc = s->zip ? th_query_archive_read(s->zip, &s->buf, CSV_BLOCK, &err)
		            : th_table_export_read(s->x, &s->buf, CSV_BLOCK, &err);
		if (rc < 0) {
			TH_LOG(TH_LOG_ERROR, "req=%llu csv export failed: %s",
			       (unsigned long long)s->req_id, err.msg);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		s->end = rc == 0;
		if (s->buf.size == 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
	}
	n = s->buf.size - s->off;
	if (n > max)
		n = max;
	memcpy(out, s->buf.ptr + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void csv_free(void *cls)
{
	csv_stream *s = cls;

	th_table_export_free(s->x);
	th_query_archive_free(s->zip);
	th_buf_dispose(&s->buf);
	free(s);
}

/* Reply with the stream `s` (taken, even on failure) as an attachment named `file`. */
static int reply_stream(th_req *req, csv_stream *s, const char *media_type, const char *file,
                        th_error *err)
{
	struct MHD_Response *r;
	char *disposition;

	/* From here MHD owns `s`: csv_free runs when the response is destroyed, or right away when
	 * it cannot be created. */
	if ((r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, CSV_BLOCK, csv_read, s,
	                                           csv_free)) == NULL) {
		csv_free(s);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	disposition = api_pool_printf(&req->pool, "attachment; filename=\"%s\"", file);
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, media_type) != MHD_YES ||
	    file == NULL || disposition == NULL ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition) !=
	            MHD_YES) {
		MHD_destroy_response(r);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	req->resp = r;
	req->status = MHD_HTTP_OK;
	req->resp_len = 0; /* unknown: streamed */
	return TH_OK;
}

static void target_of(th_query_target *t, th_req *req)
{
	t->datadir = req->srv->cfg.data_dir;
	t->owner = req->db.owner;
	t->db = req->db.name;
	t->ref = api_query_ref(req);
}

#define API "/api/v1alpha1"

static int api_export(th_req *req, th_error *err);

/* With refs of one, two or three segments, as the query routes (query.c). */
const api_route api_export_routes[] = {
	{ "GET", API "/:owner/:db/:ref/tables/:table/export", api_export, R_READ },
	{ "GET", API "/:owner/:db/:ref/:ref2/tables/:table/export", api_export, R_READ },
	{ "GET", API "/:owner/:db/:ref/:ref2/:ref3/tables/:table/export", api_export, R_READ },
	{ NULL, NULL, NULL, 0 }
};

/* Stream `table` at the route's ref through `fmt`: the reply is left in req->resp. */
static int export_stream(th_req *req, const th_exporter *fmt, th_error *err)
{
	const char *table = api_cap(req, "table");
	th_query_target t;
	csv_stream *s;
	int error;

	target_of(&t, req);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	s->req_id = req->id;
	if ((error = th_query_export(&s->x, fmt, &t, table, err)) < 0) {
		free(s);
		return error;
	}
	return reply_stream(req, s, fmt->media_type,
	                    api_pool_printf(&req->pool, "%s.%s", table, fmt->extension), err);
}

int api_csv_export(th_req *req, th_error *err)
{
	return export_stream(req, &th_exporter_csv, err);
}

static int api_export(th_req *req, th_error *err)
{
	const char *name = api_arg(req, "format");
	const th_exporter *fmt = th_exporter_find(name && name[0] ? name : "csv");

	if (fmt == NULL) {
		char names[128] = "";
		for (size_t i = 0; th_exporters[i] != NULL; i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			         i ? ", " : "", th_exporters[i]->name);
		return th_error_set(err, TH_EINVALID, "'format' must be one of %s (got '%.64s')",
		                    names, name);
	}
	return export_stream(req, fmt, err);
}

int api_csv_zip(th_req *req, th_error *err)
{
	th_query_target t;
	csv_stream *s;
	int error;

	target_of(&t, req);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	s->req_id = req->id;
	if ((error = th_query_archive_new(&s->zip, &th_exporter_csv, &t, err)) < 0) {
		free(s);
		return error;
	}
	return reply_stream(req, s, "application/zip",
	                    api_pool_printf(&req->pool, "%s.zip", req->db.name), err);
}
