/* cli_remote_upload.c: `tablehub upload` and `tablehub jobs`, against a server.
 *
 *   upload OWNER/DB FILE --table T [--op OP] [--pk COL[,COL]] [--branch B] [--type FORMAT]
 *          [--wait]                   POST .../upload (multipart: file + DoltHub's params), then
 *                                     with --wait GET .../upload?operationName= until it ends
 *   jobs [OWNER/DB] [--watch]         GET .../jobs, or the caller's operations without OWNER/DB
 *
 * While the file goes up, stderr shows a progress bar (bytes, rate, time left) when it is a
 * terminal, and nothing otherwise. --wait then shows the import's own progress (rows, state) and
 * ends on its final state: "Completed" with the pull request's URL (also alone on stdout, for
 * scripts), or "Failed" with the message and the rejected rows. Exit status as the local import:
 * 0 done, 1 failed, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_remote.h"

static const char upload_usage[] =
        "expected: upload OWNER/DB FILE --table T [--op create|overwrite|update|replace|append] "
        "[--pk COL[,COL]] [--branch B] [--type FORMAT] [--wait] [--json]";

/* --- the progress bar ---------------------------------------------------------------------------
 */

typedef struct bar {
	double start, last_draw;
	int drawn;
} bar;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "12.3 MB" style sizes. */
static void human(char *out, size_t n, double bytes)
{
	if (bytes >= 1e9)
		snprintf(out, n, "%.2f GB", bytes / 1e9);
	else if (bytes >= 1e6)
		snprintf(out, n, "%.1f MB", bytes / 1e6);
	else if (bytes >= 1e3)
		snprintf(out, n, "%.1f kB", bytes / 1e3);
	else
		snprintf(out, n, "%.0f B", bytes);
}

static void on_progress(void *payload, uint64_t sent, uint64_t total)
{
	bar *b = payload;
	double t = now_s(), rate, left;
	char s[32], tot[32], r[32];
	int i, fill;

	if (total == 0 || (t - b->last_draw < 0.1 && sent < total))
		return;
	b->last_draw = t;
	rate = t > b->start ? (double)sent / (t - b->start) : 0;
	left = rate > 0 ? (double)(total - sent) / rate : 0;
	fill = (int)(30.0 * (double)sent / (double)total);
	human(s, sizeof(s), (double)sent);
	human(tot, sizeof(tot), (double)total);
	human(r, sizeof(r), rate);
	fputs("\r\033[Kuploading [", stderr);
	for (i = 0; i < 30; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3d%% %s of %s, %s/s, %.0f s left", (int)(100.0 * sent / total), s, tot,
	        r, left);
	fflush(stderr);
	b->drawn = 1;
}

static void bar_clear(bar *b)
{
	if (b->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	b->drawn = 0;
}

/* --- upload ------------------------------------------------------------------------------------
 */

/* DoltHub's params for the upload: tableName, fileName, branchName, fileType, importOp,
 * primaryKeys. */
static int params_json(th_buf *out, const char *table, const char *file_name, const char *branch,
                       const char *type, const char *op, const char *pk, th_error *err)
{
	const char *p = pk;
	int error, n = 0;

	if ((error = th_buf_puts(out, "{\"tableName\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(out, table, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"fileName\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(out, file_name, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"branchName\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(out, branch ? branch : "main", err)) < 0 ||
	    (error = th_buf_puts(out, ",\"importOp\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(out, op ? op : "Create", err)) < 0)
		return error;
	if (type != NULL && ((error = th_buf_puts(out, ",\"fileType\":", err)) < 0 ||
	                     (error = th_buf_put_json_cstr(out, type, err)) < 0))
		return error;
	if ((error = th_buf_puts(out, ",\"primaryKeys\":[", err)) < 0)
		return error;
	while (p != NULL && *p) {
		size_t len = strcspn(p, ",");
		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		if (len > 0 && ((n++ && (error = th_buf_putc(out, ',', err)) < 0) ||
		                (error = th_buf_put_json_string(out, p, len, err)) < 0))
			return error;
		p += len + (p[len] == ',');
	}
	return th_buf_puts(out, "]}", err);
}

/* Print the final state of an import (stderr) and the pull's URL (stdout); 0 or 1. */
static int report_import(cli_remote *r, const char *db, const cli_reply *poll, int ok,
                         const th_error *err)
{
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(poll->json, "result");
	const char *pull = cli_json_str(poll->json, "pull_id");

	if (r->json) {
		cli_remote_print_json(poll);
		if (!ok)
			fprintf(stderr, "Failed: %s\n", err->msg);
		return ok ? 0 : 1;
	}
	if (!ok) {
		fprintf(stderr, "Failed: %s\n", err->msg); /* the message names line and column */
		cli_remote_print_rejected(poll->json);
		return 1;
	}
	fprintf(stderr,
	        "Completed: rows added: %.0f, modified: %.0f, removed: %.0f (table '%s' has %.0f "
	        "rows on branch %s)\n",
	        cli_json_num(res, "rows_added"), cli_json_num(res, "rows_modified"),
	        cli_json_num(res, "rows_removed"), cli_json_str(poll->json, "table_name"),
	        cli_json_num(res, "rows"), cli_json_str(res, "branch"));
	if (pull[0]) {
		fprintf(stderr, "pull request #%s: %s/repositories/%s/pulls/%s\n", pull,
		        cli_http_base(r->http), db, pull);
		printf("%s/repositories/%s/pulls/%s\n", cli_http_base(r->http), db, pull);
	}
	return 0;
}

int cli_upload(int argc, char **argv)
{
	cli_remote r;
	cli_reply reply = CLI_REPLY_INIT, poll = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, params = TH_BUF_INIT, pollpath = TH_BUF_INIT;
	th_error err = { 0 };
	bar b = { 0, 0, 0 };
	int missing = 0, wait, rc, error;
	const char *table, *op, *pk, *branch, *type, *file, *name, *opname;

	if ((rc = cli_remote_open(&r, "upload", &argc, argv)) != 0)
		goto done;
	table = cli_take_opt(&argc, argv, "--table", &missing);
	op = cli_take_opt(&argc, argv, "--op", &missing);
	pk = cli_take_opt(&argc, argv, "--pk", &missing);
	branch = cli_take_opt(&argc, argv, "--branch", &missing);
	type = cli_take_opt(&argc, argv, "--type", &missing);
	wait = cli_take_flag(&argc, argv, "--wait");
	if (missing || cli_reject_unknown(argc, argv) != 0 || argc != 3 || table == NULL) {
		rc = cli_remote_usage(&r, upload_usage);
		goto done;
	}
	rc = 1;
	file = argv[2];
	name = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	if (cli_remote_db_path(&path, argv[1], &err) < 0 ||
	    th_buf_puts(&pollpath, path.ptr, &err) < 0 || th_buf_puts(&path, "/upload", &err) < 0 ||
	    params_json(&params, table, name, branch, type, op, pk, &err) < 0)
		goto fail;
	b.start = now_s();
	error = cli_http_upload(&reply, r.http, path.ptr, file, name, params.ptr,
	                        r.err_tty ? on_progress : NULL, &b, &err);
	bar_clear(&b);
	if (error < 0)
		goto fail;
	opname = cli_json_str(reply.json, "operation_name");
	if (!wait) {
		if (r.json)
			cli_remote_print_json(&reply);
		else
			printf("uploaded %s; import operation %s\n(follow it with `tablehub jobs "
			       "%s`)\n",
			       name, opname, argv[1]);
		rc = 0;
		goto done;
	}
	if (th_buf_puts(&pollpath, "/upload?operationName=", &err) < 0 ||
	    cli_http_escape(&pollpath, opname, &err) < 0)
		goto fail;
	error = cli_remote_wait(&poll, &r, pollpath.ptr, &err);
	if (error < 0 && error != TH_ECONFLICT)
		goto fail;
	rc = report_import(&r, argv[1], &poll, error == TH_OK, &err);
	goto done;
fail:
	rc = cli_remote_fail(&r, &err);
done:
	th_buf_dispose(&path);
	th_buf_dispose(&params);
	th_buf_dispose(&pollpath);
	cli_reply_dispose(&reply);
	cli_reply_dispose(&poll);
	cli_remote_close(&r);
	return rc;
}

/* --- jobs --------------------------------------------------------------------------------------
 */

/* The uuid at the end of an operation name, shortened to 8 characters. */
static void short_id(char out[9], const char *name)
{
	const char *slash = strrchr(name, '/');

	snprintf(out, 9, "%s", slash ? slash + 1 : name);
}

/* Print the list; returns how many operations are unfinished. */
static int print_jobs(const cJSON *list, int user_view)
{
	const cJSON *it;
	int open = 0;

	printf("%-8s  %-6s  %-11s  %-24s  %s\n", "ID", "TYPE", "STATUS", "CREATED", "DESCRIPTION");
	cJSON_ArrayForEach(it, list)
	{
		const char *st = cli_json_str(it, "job_status");
		char id[9];
		short_id(id, cli_json_str(it, user_view ? "operation_name" : "job_id"));
		if (strcmp(st, "Completed") != 0 && strcmp(st, "Failed") != 0)
			open++;
		printf("%-8s  %-6s  %-11s  %-24s  %s", id,
		       cli_json_str(it, user_view ? "operation_type" : "job_type"), st,
		       cli_json_str(it, "created_at"), cli_json_str(it, "description"));
		if (cli_json_str(it, "pull_id")[0] &&
		    strcmp(cli_json_str(it, user_view ? "operation_type" : "job_type"), "Import") ==
		            0)
			printf(" (pull request #%s)", cli_json_str(it, "pull_id"));
		if (cli_json_str(it, "error")[0])
			printf(": %s", cli_json_str(it, "error"));
		putchar('\n');
	}
	return open;
}

int cli_jobs(int argc, char **argv)
{
	cli_remote r;
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, last = TH_BUF_INIT;
	th_error err = { 0 };
	int watch, rc, user_view;

	if ((rc = cli_remote_open(&r, "jobs", &argc, argv)) != 0)
		goto done;
	watch = cli_take_flag(&argc, argv, "--watch");
	if (cli_reject_unknown(argc, argv) != 0 || argc > 2) {
		rc = cli_remote_usage(&r, "expected: jobs [OWNER/DB] [--watch] [--json]");
		goto done;
	}
	rc = 1;
	user_view = argc == 1;
	if (user_view) {
		if (cli_remote_whoami(&r, &err) < 0 ||
		    th_buf_puts(&path, "/api/v1alpha1/users/", &err) < 0 ||
		    cli_http_escape(&path, r.user, &err) < 0 ||
		    th_buf_puts(&path, "/operations", &err) < 0)
			goto fail;
	} else if (cli_remote_db_path(&path, argv[1], &err) < 0 ||
	           th_buf_puts(&path, "/jobs", &err) < 0) {
		goto fail;
	}
	for (;;) {
		const cJSON *list;
		int open;
		if (cli_http_call(&reply, r.http, "GET", path.ptr, NULL, &err) < 0)
			goto fail;
		list = cJSON_GetObjectItemCaseSensitive(reply.json,
		                                        user_view ? "operations" : "jobs");
		if (r.json) {
			cli_remote_print_json(&reply);
			open = 0;
			cJSON *it;
			cJSON_ArrayForEach(it, list)
			{
				const char *st = cli_json_str(it, "job_status");
				open += strcmp(st, "Completed") != 0 && strcmp(st, "Failed") != 0;
			}
		} else if (watch && last.size == reply.body.size &&
		           memcmp(last.ptr, reply.body.ptr, last.size) == 0) {
			open = 1; /* nothing changed: nothing to print */
		} else {
			if (watch && r.out_tty)
				fputs("\033[H\033[2J", stdout);
			open = print_jobs(list, user_view);
			fflush(stdout);
		}
		if (!watch || open == 0)
			break;
		th_buf_clear(&last);
		if (th_buf_put(&last, reply.body.ptr, reply.body.size, &err) < 0)
			goto fail;
		sleep(1);
	}
	rc = 0;
	goto done;
fail:
	rc = cli_remote_fail(&r, &err);
done:
	th_buf_dispose(&path);
	th_buf_dispose(&last);
	cli_reply_dispose(&reply);
	cli_remote_close(&r);
	return rc;
}
