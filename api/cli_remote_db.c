/* cli_remote_db.c: databases, branches, history and table downloads on a server:
 *
 *   db list [--owner O]                     GET  /api/v1alpha1/databases (every page)
 *   db create OWNER/DB [--private] [--description D]      POST /api/v1alpha1/database
 *   db show OWNER/DB [REF]                  GET  .../tables?ref= and .../branches
 *   fork OWNER/DB                           POST /api/v1alpha1/fork into the caller's account
 *   branch list OWNER/DB                    GET  .../branches
 *   branch create OWNER/DB NEW [--from REF] POST .../branches
 *   log OWNER/DB [REF]                      GET  .../commits?ref= (every page), printed as the
 *                                           local `log` prints
 *   export OWNER/DB REF TABLE               GET  /csv/OWNER/DB/REF/TABLE, streamed to stdout
 *
 * Each prints for people by default, and the server's JSON with --json.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_remote.h"
#include "tablehub/text.h"

/* GET path and print the JSON with --json; leaves the reply in *reply. */
static int get(cli_reply *reply, cli_remote *r, const char *path, th_error *err)
{
	return cli_http_call(reply, r->http, "GET", path, NULL, err);
}

/* --- db ----------------------------------------------------------------------------------------
 */

static int db_list(cli_remote *r, int argc, char **argv)
{
	int missing = 0, rc = 1, first = 1;
	const char *owner = cli_take_opt(&argc, argv, "--owner", &missing);
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, token = TH_BUF_INIT;
	th_error err = { 0 };
	const cJSON *it;

	if (missing || cli_reject_unknown(argc, argv) != 0 || argc != 2)
		return cli_remote_usage(r, "expected: db list [--owner O] [--json]");
	do {
		th_buf_clear(&path);
		if (th_buf_puts(&path, "/api/v1alpha1/databases?pageSize=500", &err) < 0 ||
		    (owner && (th_buf_puts(&path, "&owner=", &err) < 0 ||
		               cli_http_escape(&path, owner, &err) < 0)) ||
		    (token.size && (th_buf_puts(&path, "&pageToken=", &err) < 0 ||
		                    cli_http_escape(&path, token.ptr, &err) < 0)) ||
		    get(&reply, r, path.ptr, &err) < 0)
			goto cleanup;
		if (r->json) {
			cli_remote_print_json(&reply);
		} else {
			if (first)
				printf("%-40s %-10s %s\n", "DATABASE", "VISIBILITY", "DESCRIPTION");
			cJSON_ArrayForEach(
			        it, cJSON_GetObjectItemCaseSensitive(reply.json, "databases"))
			{
				char name[140];
				snprintf(name, sizeof(name), "%s/%s",
				         cli_json_str(it, "database_owner"),
				         cli_json_str(it, "database_name"));
				printf("%-40s %-10s %s\n", name, cli_json_str(it, "visibility"),
				       cli_json_str(it, "description"));
			}
		}
		first = 0;
		th_buf_clear(&token);
		if (th_buf_puts(&token, cli_json_str(reply.json, "next_page_token"), &err) < 0)
			goto cleanup;
	} while (token.size > 0);
	rc = 0;
cleanup:
	if (rc)
		cli_remote_fail(r, &err);
	th_buf_dispose(&path);
	th_buf_dispose(&token);
	cli_reply_dispose(&reply);
	return rc;
}

static int db_create(cli_remote *r, int argc, char **argv)
{
	int missing = 0, rc = 1;
	const char *desc = cli_take_opt(&argc, argv, "--description", &missing);
	int priv = cli_take_flag(&argc, argv, "--private");
	cli_reply reply = CLI_REPLY_INIT;
	th_buf body = TH_BUF_INIT;
	th_error err = { 0 };
	char owner[65], db[65];

	if (missing || cli_reject_unknown(argc, argv) != 0 || argc != 3)
		return cli_remote_usage(
		        r, "expected: db create OWNER/DB [--private] [--description D] [--json]");
	if (th_split_db_name(owner, db, argv[2], &err) < 0)
		goto cleanup;
	if (th_buf_puts(&body, "{\"ownerName\":", &err) < 0 ||
	    th_buf_put_json_cstr(&body, owner, &err) < 0 ||
	    th_buf_puts(&body, ",\"repoName\":", &err) < 0 ||
	    th_buf_put_json_cstr(&body, db, &err) < 0 ||
	    th_buf_puts(&body, ",\"description\":", &err) < 0 ||
	    th_buf_put_json_cstr(&body, desc ? desc : "", &err) < 0 ||
	    th_buf_printf(&body, &err, ",\"visibility\":\"%s\"}", priv ? "private" : "public") < 0)
		goto cleanup;
	if (cli_http_call(&reply, r->http, "POST", "/api/v1alpha1/database", body.ptr, &err) < 0)
		goto cleanup;
	if (r->json)
		cli_remote_print_json(&reply);
	else
		printf("created %s/%s (%s) on %s\n", owner, db, priv ? "private" : "public",
		       cli_http_base(r->http));
	rc = 0;
cleanup:
	if (rc)
		cli_remote_fail(r, &err);
	th_buf_dispose(&body);
	cli_reply_dispose(&reply);
	return rc;
}

/* Print the columns of a table item of GET .../tables: "id integer, name text". */
static void print_columns(const cJSON *table)
{
	const cJSON *c;
	int n = 0;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(table, "columns"))
	{
		printf("%s%s %s", n++ ? ", " : "", cli_json_str(c, "name"),
		       cli_json_str(c, "type"));
	}
}

static int db_show(cli_remote *r, int argc, char **argv)
{
	cli_reply tables = CLI_REPLY_INIT, branches = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, bpath = TH_BUF_INIT;
	th_error err = { 0 };
	const cJSON *t, *b;
	const char *ref;
	int rc = 1;

	if (cli_reject_unknown(argc, argv) != 0 || (argc != 3 && argc != 4))
		return cli_remote_usage(r, "expected: db show OWNER/DB [REF] [--json]");
	ref = argc == 4 ? argv[3] : "main";
	if (cli_remote_db_path(&path, argv[2], &err) < 0 ||
	    th_buf_puts(&bpath, path.ptr, &err) < 0 ||
	    th_buf_puts(&path, "/tables?ref=", &err) < 0 || cli_http_escape(&path, ref, &err) < 0 ||
	    th_buf_puts(&bpath, "/branches", &err) < 0 || get(&tables, r, path.ptr, &err) < 0 ||
	    get(&branches, r, bpath.ptr, &err) < 0)
		goto cleanup;
	if (r->json) {
		cli_remote_print_json(&tables);
		cli_remote_print_json(&branches);
		rc = 0;
		goto cleanup;
	}
	printf("%s at %s (commit %.12s)\n", argv[2], ref, cli_json_str(tables.json, "commit_id"));
	printf("tables:\n");
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(tables.json, "tables"))
	{
		const cJSON *k;
		int n = 0;
		printf("  %s: %.0f rows; ", cli_json_str(t, "table_name"),
		       cli_json_num(t, "row_count"));
		print_columns(t);
		printf("; key: ");
		cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(t, "primary_key"))
		{
			printf("%s%s", n++ ? ", " : "", cJSON_GetStringValue(k));
		}
		printf("%s\n", n ? "" : "(none)");
	}
	printf("branches:\n");
	cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(branches.json, "branches"))
	{
		printf("  %s\n", cli_json_str(b, "branch_name"));
	}
	rc = 0;
cleanup:
	if (rc)
		cli_remote_fail(r, &err);
	th_buf_dispose(&path);
	th_buf_dispose(&bpath);
	cli_reply_dispose(&tables);
	cli_reply_dispose(&branches);
	return rc;
}

int cli_remote_db(int argc, char **argv)
{
	cli_remote r;
	int rc;

	if ((rc = cli_remote_open(&r, "db", &argc, argv)) != 0)
		goto done;
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		rc = db_list(&r, argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "create") == 0)
		rc = db_create(&r, argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "show") == 0)
		rc = db_show(&r, argc, argv);
	else
		rc = cli_remote_usage(&r, "expected: db list|create|show ...");
done:
	cli_remote_close(&r);
	return rc;
}

/* --- fork ------------------------------------------------------------------------------------ */

int cli_fork(int argc, char **argv)
{
	cli_remote r;
	cli_reply reply = CLI_REPLY_INIT;
	th_buf body = TH_BUF_INIT;
	th_error err = { 0 };
	char owner[65], db[65];
	int rc;

	if ((rc = cli_remote_open(&r, "fork", &argc, argv)) != 0)
		goto done;
	if (cli_reject_unknown(argc, argv) != 0 || argc != 2) {
		rc = cli_remote_usage(&r, "expected: fork OWNER/DB [--json]");
		goto done;
	}
	rc = 1;
	if (th_split_db_name(owner, db, argv[1], &err) < 0 || cli_remote_whoami(&r, &err) < 0 ||
	    th_buf_puts(&body, "{\"parentOwnerName\":", &err) < 0 ||
	    th_buf_put_json_cstr(&body, owner, &err) < 0 ||
	    th_buf_puts(&body, ",\"parentDatabaseName\":", &err) < 0 ||
	    th_buf_put_json_cstr(&body, db, &err) < 0 ||
	    th_buf_puts(&body, ",\"ownerName\":", &err) < 0 ||
	    th_buf_put_json_cstr(&body, r.user, &err) < 0 || th_buf_putc(&body, '}', &err) < 0 ||
	    cli_http_call(&reply, r.http, "POST", "/api/v1alpha1/fork", body.ptr, &err) < 0) {
		cli_remote_fail(&r, &err);
		goto done;
	}
	if (r.json)
		cli_remote_print_json(&reply);
	else
		printf("forked %s into %s/%s; change it there, then propose the changes with\n"
		       "  tablehub pr create %s --from-db %s/%s --from BRANCH\n",
		       argv[1], cli_json_str(reply.json, "forked_owner"),
		       cli_json_str(reply.json, "forked_database"), argv[1],
		       cli_json_str(reply.json, "forked_owner"),
		       cli_json_str(reply.json, "forked_database"));
	rc = 0;
done:
	th_buf_dispose(&body);
	cli_reply_dispose(&reply);
	cli_remote_close(&r);
	return rc;
}

/* --- branch ------------------------------------------------------------------------------------
 */

int cli_branch(int argc, char **argv)
{
	cli_remote r;
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, body = TH_BUF_INIT;
	th_error err = { 0 };
	int missing = 0, rc;
	const char *from;

	if ((rc = cli_remote_open(&r, "branch", &argc, argv)) != 0)
		goto done;
	from = cli_take_opt(&argc, argv, "--from", &missing);
	rc = 1;
	if (missing || cli_reject_unknown(argc, argv) != 0) {
		rc = cli_remote_usage(&r, "expected: branch list OWNER/DB | branch create OWNER/DB "
		                          "NEW [--from REF]");
		goto done;
	}
	if (argc == 3 && strcmp(argv[1], "list") == 0) {
		const cJSON *b;
		if (cli_remote_db_path(&path, argv[2], &err) < 0 ||
		    th_buf_puts(&path, "/branches", &err) < 0 ||
		    get(&reply, &r, path.ptr, &err) < 0)
			goto fail;
		if (r.json)
			cli_remote_print_json(&reply);
		else
			cJSON_ArrayForEach(b,
			                   cJSON_GetObjectItemCaseSensitive(reply.json, "branches"))
			{
				printf("%s\n", cli_json_str(b, "branch_name"));
			}
		rc = 0;
	} else if (argc == 4 && strcmp(argv[1], "create") == 0) {
		if (cli_remote_db_path(&path, argv[2], &err) < 0 ||
		    th_buf_puts(&path, "/branches", &err) < 0 ||
		    th_buf_puts(&body, "{\"revisionType\":\"ref\",\"revisionName\":", &err) < 0 ||
		    th_buf_put_json_cstr(&body, from ? from : "main", &err) < 0 ||
		    th_buf_puts(&body, ",\"newBranchName\":", &err) < 0 ||
		    th_buf_put_json_cstr(&body, argv[3], &err) < 0 ||
		    th_buf_putc(&body, '}', &err) < 0 ||
		    cli_http_call(&reply, r.http, "POST", path.ptr, body.ptr, &err) < 0)
			goto fail;
		if (r.json)
			cli_remote_print_json(&reply);
		else
			printf("created branch %s from %s in %s\n", argv[3], from ? from : "main",
			       argv[2]);
		rc = 0;
	} else {
		rc = cli_remote_usage(&r, "expected: branch list OWNER/DB | branch create OWNER/DB "
		                          "NEW [--from REF]");
	}
	goto done;
fail:
	rc = cli_remote_fail(&r, &err);
done:
	th_buf_dispose(&path);
	th_buf_dispose(&body);
	cli_reply_dispose(&reply);
	cli_remote_close(&r);
	return rc;
}

/* --- log, export -------------------------------------------------------------------------------
 */

/* One commit as the local `log` prints it. */
static void print_commit(const cJSON *c)
{
	const cJSON *parents = cJSON_GetObjectItemCaseSensitive(c, "parents");
	const char *p, *when = cli_json_str(c, "committed_at");

	printf("commit %s\n", cli_json_str(c, "commit_id"));
	if (cJSON_GetArraySize(parents) > 1)
		printf("Merge: %.7s %.7s\n", cJSON_GetStringValue(cJSON_GetArrayItem(parents, 0)),
		       cJSON_GetStringValue(cJSON_GetArrayItem(parents, 1)));
	/* committed_at is ISO 8601 UTC ("2024-05-01T10:00:00.000Z"): shown as `log` shows it. */
	printf("Author: %s\nDate:   %.10s %.8s +0000\n\n", cli_json_str(c, "author"), when,
	       strlen(when) > 11 ? when + 11 : "");
	for (p = cli_json_str(c, "message"); *p;) {
		size_t n = strcspn(p, "\n");
		printf("    %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
	printf("\n");
}

int cli_remote_log(int argc, char **argv)
{
	cli_remote r;
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, token = TH_BUF_INIT;
	th_error err = { 0 };
	const cJSON *c;
	int rc;

	if ((rc = cli_remote_open(&r, "log", &argc, argv)) != 0)
		goto done;
	if (cli_reject_unknown(argc, argv) != 0 || (argc != 2 && argc != 3)) {
		rc = cli_remote_usage(&r, "expected: log OWNER/DB [REF] [--json]");
		goto done;
	}
	rc = 1;
	do {
		th_buf_clear(&path);
		if (cli_remote_db_path(&path, argv[1], &err) < 0 ||
		    th_buf_puts(&path, "/commits?pageSize=100&ref=", &err) < 0 ||
		    cli_http_escape(&path, argc == 3 ? argv[2] : "main", &err) < 0 ||
		    (token.size && (th_buf_puts(&path, "&pageToken=", &err) < 0 ||
		                    cli_http_escape(&path, token.ptr, &err) < 0)) ||
		    get(&reply, &r, path.ptr, &err) < 0) {
			rc = cli_remote_fail(&r, &err);
			goto done;
		}
		if (r.json)
			cli_remote_print_json(&reply);
		else
			cJSON_ArrayForEach(c,
			                   cJSON_GetObjectItemCaseSensitive(reply.json, "commits"))
			{
				print_commit(c);
			}
		th_buf_clear(&token);
		if (th_buf_puts(&token, cli_json_str(reply.json, "next_page_token"), &err) < 0) {
			rc = cli_remote_fail(&r, &err);
			goto done;
		}
	} while (token.size > 0);
	rc = 0;
done:
	th_buf_dispose(&path);
	th_buf_dispose(&token);
	cli_reply_dispose(&reply);
	cli_remote_close(&r);
	return rc;
}

int cli_remote_export(int argc, char **argv)
{
	cli_remote r;
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT;
	th_error err = { 0 };
	char owner[65], db[65];
	int rc;

	if ((rc = cli_remote_open(&r, "export", &argc, argv)) != 0)
		goto done;
	if (cli_reject_unknown(argc, argv) != 0 || argc != 4) {
		rc = cli_remote_usage(&r, "expected: export OWNER/DB REF TABLE");
		goto done;
	}
	if (th_split_db_name(owner, db, argv[1], &err) < 0 ||
	    th_buf_puts(&path, "/csv/", &err) < 0 || cli_http_escape(&path, owner, &err) < 0 ||
	    th_buf_putc(&path, '/', &err) < 0 || cli_http_escape(&path, db, &err) < 0 ||
	    th_buf_putc(&path, '/', &err) < 0 || cli_http_escape(&path, argv[2], &err) < 0 ||
	    th_buf_putc(&path, '/', &err) < 0 || cli_http_escape(&path, argv[3], &err) < 0 ||
	    cli_http_download(&reply, r.http, path.ptr, stdout, &err) < 0 || fflush(stdout) != 0) {
		if (err.code == TH_OK)
			th_error_set(&err, TH_ESTORE, "cannot write the output");
		rc = cli_remote_fail(&r, &err);
		goto done;
	}
	rc = 0;
done:
	th_buf_dispose(&path);
	cli_reply_dispose(&reply);
	cli_remote_close(&r);
	return rc;
}
