/* cli_remote_pr.c: `tablehub pr`, pull requests on a server:
 *
 *   pr list OWNER/DB [--state open|closed|merged]      GET  .../pulls (every page)
 *   pr show OWNER/DB ID                                GET  .../pulls/ID
 *   pr diff OWNER/DB ID [--table T] [--stat]           cli_remote_diff.c
 *   pr comment OWNER/DB ID TEXT                        POST .../pulls/ID/comments
 *   pr approve OWNER/DB ID [--comment C]               POST .../pulls/ID/reviews (Approved)
 *   pr merge OWNER/DB ID [--wait]                      POST .../pulls/ID/merge, then with --wait
 *                                                      GET .../pulls/ID/merge?operationName=
 *   pr create OWNER/DB --from B [--from-db FORK] [--into B] [--title T] [--description D]
 *                                                      POST .../pulls (from a branch of OWNER/DB,
 *                                                      or of its fork FORK)
 *   pr close OWNER/DB ID                               PATCH .../pulls/ID {"state":"closed"}
 *
 * A merge that fails on conflicts prints them (table, key, column: base, ours, theirs) and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_remote.h"
#include "tablehub/text.h"

static const char pr_usage[] =
        "expected: pr list OWNER/DB [--state S] | pr show|diff OWNER/DB ID | pr comment OWNER/DB "
        "ID TEXT | pr approve OWNER/DB ID [--comment C] | pr merge OWNER/DB ID [--wait] | pr "
        "create OWNER/DB --from BRANCH [--from-db FORK] [--into BRANCH] [--title T] "
        "[--description D] | pr close OWNER/DB ID";
static const char create_usage[] =
        "expected: pr create OWNER/DB --from BRANCH [--from-db OWNER/DB] [--into BRANCH] "
        "[--title T] [--description D]";

/* Append ".../pulls/ID" + tail to path. */
static int pull_path(th_buf *path, const char *db, const char *id, const char *tail, th_error *err)
{
	int error;

	if ((error = cli_remote_db_path(path, db, err)) < 0 ||
	    (error = th_buf_puts(path, "/pulls/", err)) < 0 ||
	    (error = cli_http_escape(path, id, err)) < 0 ||
	    (error = th_buf_puts(path, tail, err)) < 0)
		return error;
	return TH_OK;
}

static int pr_list(cli_remote *r, int argc, char **argv, th_error *err)
{
	int missing = 0, first = 1, error;
	const char *state = cli_take_opt(&argc, argv, "--state", &missing);
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, token = TH_BUF_INIT;
	const cJSON *p;

	if (missing || cli_reject_unknown(argc, argv) != 0 || argc != 3)
		return cli_remote_usage(r,
		                        "expected: pr list OWNER/DB [--state open|closed|merged]");
	do {
		th_buf_clear(&path);
		if ((error = cli_remote_db_path(&path, argv[2], err)) < 0 ||
		    (error = th_buf_puts(&path, "/pulls?x=", err)) < 0 ||
		    (state && ((error = th_buf_puts(&path, "&filterByState=", err)) < 0 ||
		               (error = cli_http_escape(&path, state, err)) < 0)) ||
		    (token.size && ((error = th_buf_puts(&path, "&pageToken=", err)) < 0 ||
		                    (error = cli_http_escape(&path, token.ptr, err)) < 0)) ||
		    (error = cli_http_call(&reply, r->http, "GET", path.ptr, NULL, err)) < 0)
			goto cleanup;
		if (r->json) {
			cli_remote_print_json(&reply);
		} else {
			if (first)
				printf("%-5s  %-7s  %-10s  %s\n", "ID", "STATE", "AUTHOR", "TITLE");
			cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(reply.json, "pulls"))
			{
				printf("#%-4s  %-7s  %-10s  %s\n", cli_json_str(p, "pull_id"),
				       cli_json_str(p, "state"), cli_json_str(p, "creator"),
				       cli_json_str(p, "title"));
			}
		}
		first = 0;
		th_buf_clear(&token);
		if ((error = th_buf_puts(&token, cli_json_str(reply.json, "next_page_token"),
		                         err)) < 0)
			goto cleanup;
	} while (token.size > 0);
	error = 0;
cleanup:
	th_buf_dispose(&path);
	th_buf_dispose(&token);
	cli_reply_dispose(&reply);
	return error < 0 ? cli_remote_fail(r, err) : 0;
}

static int pr_show(cli_remote *r, int argc, char **argv, th_error *err)
{
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT;
	const cJSON *j, *n;
	int error;

	if (cli_reject_unknown(argc, argv) != 0 || argc != 4)
		return cli_remote_usage(r, "expected: pr show OWNER/DB ID");
	if ((error = pull_path(&path, argv[2], argv[3], "", err)) < 0 ||
	    (error = cli_http_call(&reply, r->http, "GET", path.ptr, NULL, err)) < 0)
		goto cleanup;
	j = reply.json;
	if (r->json) {
		cli_remote_print_json(&reply);
		goto cleanup;
	}
	printf("pull request #%s: %s\n", cli_json_str(j, "pull_id"), cli_json_str(j, "title"));
	printf("state:  %s%s%s\n", cli_json_str(j, "state"),
	       cli_json_str(j, "merge_commit")[0] ? ", merge commit " : "",
	       cli_json_str(j, "merge_commit"));
	printf("branch: %s -> %s\n", cli_json_str(j, "from_branch_name"),
	       cli_json_str(j, "to_branch_name"));
	printf("author: %s, %s\n", cli_json_str(j, "author"), cli_json_str(j, "created_at"));
	printf("url:    %s/repositories/%s/pulls/%s\n", cli_http_base(r->http), argv[2],
	       cli_json_str(j, "pull_id"));
	if (cli_json_str(j, "description")[0])
		printf("\n    %s\n", cli_json_str(j, "description"));
	cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(j, "reviews"))
	{
		printf("\nreview by %s: %s%s%s\n", cli_json_str(n, "author"),
		       cli_json_str(n, "review_status"), cli_json_str(n, "comment")[0] ? ": " : "",
		       cli_json_str(n, "comment"));
	}
	cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(j, "comments"))
	{
		printf("\ncomment by %s, %s:\n    %s\n", cli_json_str(n, "author"),
		       cli_json_str(n, "created_at"), cli_json_str(n, "comment"));
	}
cleanup:
	th_buf_dispose(&path);
	cli_reply_dispose(&reply);
	return error < 0 ? cli_remote_fail(r, err) : 0;
}

/* pr comment and pr approve: one POST of {"comment"} or {"reviewStatus", "comment"}. */
static int pr_note(cli_remote *r, int argc, char **argv, int review, th_error *err)
{
	int missing = 0, error;
	const char *comment = review ? cli_take_opt(&argc, argv, "--comment", &missing) : NULL;
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, body = TH_BUF_INIT;

	if (missing || cli_reject_unknown(argc, argv) != 0 || argc != (review ? 4 : 5))
		return cli_remote_usage(r, review ? "expected: pr approve OWNER/DB ID [--comment C]"
		                                  : "expected: pr comment OWNER/DB ID TEXT");
	if (!review)
		comment = argv[4];
	if ((error = pull_path(&path, argv[2], argv[3], review ? "/reviews" : "/comments", err)) <
	            0 ||
	    (error = th_buf_puts(&body, review ? "{\"reviewStatus\":\"Approved\"," : "{", err)) <
	            0 ||
	    (error = th_buf_puts(&body, "\"comment\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&body, comment ? comment : "", err)) < 0 ||
	    (error = th_buf_putc(&body, '}', err)) < 0 ||
	    (error = cli_http_call(&reply, r->http, "POST", path.ptr, body.ptr, err)) < 0)
		goto cleanup;
	if (r->json)
		cli_remote_print_json(&reply);
	else if (review)
		printf("approved pull request #%s of %s\n", argv[3], argv[2]);
	else
		printf("commented on pull request #%s of %s\n", argv[3], argv[2]);
cleanup:
	th_buf_dispose(&path);
	th_buf_dispose(&body);
	cli_reply_dispose(&reply);
	return error < 0 ? cli_remote_fail(r, err) : 0;
}

/* Append `"key":value` (a JSON string) and a comma to body. */
static int put_str(th_buf *body, const char *key, const char *value, th_error *err)
{
	int error;

	if ((error = th_buf_printf(body, err, "\"%s\":", key)) < 0 ||
	    (error = th_buf_put_json_cstr(body, value, err)) < 0)
		return error;
	return th_buf_putc(body, ',', err);
}

static int pr_create(cli_remote *r, int argc, char **argv, th_error *err)
{
	int missing = 0, error;
	const char *from = cli_take_opt(&argc, argv, "--from", &missing);
	const char *from_db = cli_take_opt(&argc, argv, "--from-db", &missing);
	const char *into = cli_take_opt(&argc, argv, "--into", &missing);
	const char *title = cli_take_opt(&argc, argv, "--title", &missing);
	const char *desc = cli_take_opt(&argc, argv, "--description", &missing);
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, body = TH_BUF_INIT, deftitle = TH_BUF_INIT;
	char fowner[65] = "", fdb[65] = "";
	const char *id;

	if (missing || from == NULL || cli_reject_unknown(argc, argv) != 0 || argc != 3)
		return cli_remote_usage(r, create_usage);
	if (into == NULL)
		into = "main";
	if (title == NULL) {
		if ((error = th_buf_printf(&deftitle, err, "Merge %s%s%s into %s",
		                           from_db ? from_db : "", from_db ? ":" : "", from,
		                           into)) < 0)
			goto cleanup;
		title = deftitle.ptr;
	}
	if ((from_db && (error = th_split_db_name(fowner, fdb, from_db, err)) < 0) ||
	    (error = cli_remote_db_path(&path, argv[2], err)) < 0 ||
	    (error = th_buf_puts(&path, "/pulls", err)) < 0 ||
	    (error = th_buf_putc(&body, '{', err)) < 0 ||
	    (error = put_str(&body, "title", title, err)) < 0 ||
	    (error = put_str(&body, "description", desc ? desc : "", err)) < 0 ||
	    (from_db && ((error = put_str(&body, "fromBranchOwnerName", fowner, err)) < 0 ||
	                 (error = put_str(&body, "fromBranchRepoName", fdb, err)) < 0)) ||
	    (error = put_str(&body, "fromBranchName", from, err)) < 0 ||
	    (error = th_buf_puts(&body, "\"toBranchName\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&body, into, err)) < 0 ||
	    (error = th_buf_putc(&body, '}', err)) < 0 ||
	    (error = cli_http_call(&reply, r->http, "POST", path.ptr, body.ptr, err)) < 0)
		goto cleanup;
	id = cli_json_str(reply.json, "pull_id");
	if (r->json)
		cli_remote_print_json(&reply);
	else
		printf("opened pull request #%s of %s: %s%s%s into "
		       "%s\n%s/repositories/%s/pulls/%s\n",
		       id, argv[2], from_db ? from_db : "", from_db ? ":" : "", from, into,
		       cli_http_base(r->http), argv[2], id);
cleanup:
	th_buf_dispose(&path);
	th_buf_dispose(&body);
	th_buf_dispose(&deftitle);
	cli_reply_dispose(&reply);
	return error < 0 ? cli_remote_fail(r, err) : 0;
}

static int pr_close(cli_remote *r, int argc, char **argv, th_error *err)
{
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT;
	int error;

	if (cli_reject_unknown(argc, argv) != 0 || argc != 4)
		return cli_remote_usage(r, "expected: pr close OWNER/DB ID");
	if ((error = pull_path(&path, argv[2], argv[3], "", err)) < 0 ||
	    (error = cli_http_call(&reply, r->http, "PATCH", path.ptr, "{\"state\":\"closed\"}",
	                           err)) < 0)
		goto cleanup;
	if (r->json)
		cli_remote_print_json(&reply);
	else
		printf("closed pull request #%s of %s\n", argv[3], argv[2]);
cleanup:
	th_buf_dispose(&path);
	cli_reply_dispose(&reply);
	return error < 0 ? cli_remote_fail(r, err) : 0;
}

/* A JSON value as text: strings bare, null as NULL. */
static void print_value(FILE *f, const cJSON *v)
{
	char *t;

	if (v == NULL || cJSON_IsNull(v)) {
		fputs("NULL", f);
	} else if (cJSON_IsString(v)) {
		fputs(v->valuestring, f);
	} else if ((t = cJSON_PrintUnformatted(v)) != NULL) {
		fputs(t, f);
		cJSON_free(t);
	}
}

static int pr_merge(cli_remote *r, int argc, char **argv, th_error *err)
{
	int wait = cli_take_flag(&argc, argv, "--wait"), error;
	cli_reply reply = CLI_REPLY_INIT, poll = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, pollpath = TH_BUF_INIT;
	const char *opname;
	const cJSON *c;

	if (cli_reject_unknown(argc, argv) != 0 || argc != 4)
		return cli_remote_usage(r, "expected: pr merge OWNER/DB ID [--wait]");
	if ((error = pull_path(&path, argv[2], argv[3], "/merge", err)) < 0 ||
	    (error = cli_http_call(&reply, r->http, "POST", path.ptr, "{}", err)) < 0)
		goto cleanup;
	opname = cli_json_str(reply.json, "operation_name");
	if (!wait) {
		if (r->json)
			cli_remote_print_json(&reply);
		else
			printf("merging pull request #%s of %s: operation %s\n", argv[3], argv[2],
			       opname);
		goto cleanup;
	}
	if ((error = th_buf_printf(&pollpath, err, "%s?operationName=", path.ptr)) < 0 ||
	    (error = cli_http_escape(&pollpath, opname, err)) < 0)
		goto cleanup;
	error = cli_remote_wait(&poll, r, pollpath.ptr, err);
	if (error < 0 && error != TH_ECONFLICT)
		goto cleanup;
	if (r->json)
		cli_remote_print_json(&poll);
	if (error == TH_OK) {
		fprintf(stderr, "Completed: pull request #%s merged, commit %s\n", argv[3],
		        cli_json_str(poll.json, "merge_commit"));
		goto cleanup;
	}
	fprintf(stderr, "Failed: %s\n", err->msg);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(poll.json, "conflicts"))
	{
		fprintf(stderr, "  conflict in %s, key %s, column %s: base ",
		        cli_json_str(c, "table"), cli_json_str(c, "key"),
		        cli_json_str(c, "column"));
		print_value(stderr, cJSON_GetObjectItemCaseSensitive(c, "base"));
		fputs(", ours ", stderr);
		print_value(stderr, cJSON_GetObjectItemCaseSensitive(c, "ours"));
		fputs(", theirs ", stderr);
		print_value(stderr, cJSON_GetObjectItemCaseSensitive(c, "theirs"));
		fputc('\n', stderr);
	}
	th_buf_dispose(&path);
	th_buf_dispose(&pollpath);
	cli_reply_dispose(&reply);
	cli_reply_dispose(&poll);
	return 1;
cleanup:
	th_buf_dispose(&path);
	th_buf_dispose(&pollpath);
	cli_reply_dispose(&reply);
	cli_reply_dispose(&poll);
	return error < 0 ? cli_remote_fail(r, err) : 0;
}

int cli_pr(int argc, char **argv)
{
	cli_remote r;
	th_error err = { 0 };
	const char *sub;
	int rc;

	if ((rc = cli_remote_open(&r, "pr", &argc, argv)) != 0)
		goto done;
	sub = argc >= 2 ? argv[1] : "";
	if (strcmp(sub, "list") == 0)
		rc = pr_list(&r, argc, argv, &err);
	else if (strcmp(sub, "show") == 0)
		rc = pr_show(&r, argc, argv, &err);
	else if (strcmp(sub, "diff") == 0)
		rc = cli_remote_pr_diff(&r, argc, argv);
	else if (strcmp(sub, "comment") == 0)
		rc = pr_note(&r, argc, argv, 0, &err);
	else if (strcmp(sub, "approve") == 0)
		rc = pr_note(&r, argc, argv, 1, &err);
	else if (strcmp(sub, "merge") == 0)
		rc = pr_merge(&r, argc, argv, &err);
	else if (strcmp(sub, "create") == 0)
		rc = pr_create(&r, argc, argv, &err);
	else if (strcmp(sub, "close") == 0)
		rc = pr_close(&r, argc, argv, &err);
	else
		rc = cli_remote_usage(&r, pr_usage);
done:
	cli_remote_close(&r);
	return rc;
}
