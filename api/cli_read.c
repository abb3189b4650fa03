/* cli_read.c: `tablehub export` (a table at a ref as CSV, JSON, JSON lines or SQL, through the
 * exporters that the HTTP download shares) and `tablehub log` (the history of a ref), read straight
 * from the repository: no lock, so they run beside a server. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tablehub/buf.h"
#include "tablehub/export.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"
#include "cli.h"

int cli_export(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	const th_exporter *fmt = &th_exporter_csv;
	const char *format;
	th_error err = { 0 };
	th_repo *repo = NULL;
	th_table t = TH_TABLE_INIT;
	th_table_export *x = NULL;
	int missing = 0;
	th_commit_info ci;
	th_buf out = TH_BUF_INIT;
	th_oid commit;
	int rc = 1, error;

	memset(&ci, 0, sizeof(ci));
	format = cli_take_opt(&argc, argv, "--format", &missing);
	if (missing)
		return cli_usage_error("--format needs a value: csv, json, jsonl or sql");
	if (format != NULL && (fmt = th_exporter_find(format)) == NULL) {
		fprintf(stderr,
		        "tablehub export: unknown format '%s': use csv, json, jsonl or sql\n",
		        format);
		return 2;
	}
	if ((error = cli_reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != 4)
		return cli_usage_error("expected: export [--data DIR] [--format "
		                       "csv|json|jsonl|sql] OWNER/DB REF TABLE");
	if (cli_repo_open(&repo, data, argv[1], 0, &err) < 0 ||
	    th_repo_resolve(&commit, repo, argv[2], &err) < 0 ||
	    th_repo_commit_read(&ci, repo, &commit, &err) < 0 ||
	    th_table_load(&t, repo, &ci.tree, argv[3], &err) < 0)
		goto cleanup;
	error = th_table_export_new(&x, fmt, repo, &t, &err); /* takes repo, t */
	repo = NULL;
	if (error < 0 || th_table_export_set_name(x, argv[3], &err) < 0)
		goto cleanup;
	while ((error = th_table_export_read(x, &out, 1 << 20, &err)) >= 0) {
		if (fwrite(out.ptr ? out.ptr : "", 1, out.size, stdout) != out.size)
			goto write_failed;
		th_buf_clear(&out);
		if (error == 0)
			break;
	}
	if (error < 0)
		goto cleanup;
	if (fflush(stdout) != 0)
		goto write_failed;
	rc = 0;
	goto cleanup;
write_failed:
	th_error_set(&err, TH_ESTORE, "cannot write to standard output");
cleanup:
	if (rc)
		cli_fail(&err);
	th_buf_dispose(&out);
	th_table_export_free(x);
	th_table_dispose(&t);
	th_commit_info_dispose(&ci);
	th_repo_free(repo);
	return rc;
}

static int print_commit(const th_commit_info *ci, void *payload)
{
	char id[41], when[64];
	time_t t = (time_t)ci->time;
	struct tm tm;
	const char *p;

	(void)payload;
	th_oid_fmt(id, &ci->id);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S +0000", &tm);
	printf("commit %s\n", id);
	if (ci->nparents > 1) {
		char a[41], b[41];
		th_oid_fmt(a, &ci->parents[0]);
		th_oid_fmt(b, &ci->parents[1]);
		printf("Merge: %.7s %.7s\n", a, b);
	}
	printf("Author: %s <%s>\nDate:   %s\n\n", ci->author, ci->email, when);
	for (p = ci->message ? ci->message : ""; *p;) {
		size_t n = strcspn(p, "\n");
		printf("    %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
	printf("\n");
	return 0;
}

int cli_log(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	th_error err = { 0 };
	th_repo *repo = NULL;
	th_oid start;
	int rc = 1, error;

	if ((error = cli_reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != 2 && argc != 3)
		return cli_usage_error("expected: log [--data DIR] OWNER/DB [REF]");
	if (cli_repo_open(&repo, data, argv[1], 0, &err) < 0 ||
	    th_repo_resolve(&start, repo, argc == 3 ? argv[2] : "main", &err) < 0 ||
	    th_repo_log(repo, &start, 0, print_commit, NULL, &err) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc)
		cli_fail(&err);
	th_repo_free(repo);
	return rc;
}
