/* main.c: the `tablehub` command line. Dispatches to a subcommand (api/cli.h) and holds the table
 * engine's local commands: db create, import, export, log (serve, user, token, query and diff live
 * in api/cli_*.c). Writing commands take the data dir's lock (DESIGN §2); reading commands need
 * none and work beside a running server. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tablehub/text.h"
#include "tablehub/csv.h"
#include "tablehub/datadir.h"
#include "tablehub/import.h"
#include "tablehub/meta.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"
#include "cli.h"

static const char usage[] =
        "usage: tablehub <command> [options]\n"
        "\n"
        "  db create [--data DIR] OWNER/DB      create a database (a git repository)\n"
        "  import    [--data DIR] OWNER/DB --table T [--op "
        "create|overwrite|update|replace|append]\n"
        "            [--pk COL[,COL]] [--branch B] [--type csv|psv|tsv|json] [--message M] FILE|-\n"
        "  export    [--data DIR] OWNER/DB REF TABLE   print a table as CSV\n"
        "  log       [--data DIR] OWNER/DB [REF]       show the history of a branch or commit\n"
        "  diff      [--data DIR] OWNER/DB FROM TO     rows and cells changed between two refs\n"
        "  query     [--data DIR] OWNER/DB REF SQL     run a read-only SQL query at a ref\n"
        "\n"
        "  serve     [--data DIR] [--listen 127.0.0.1:8080] [--workers N] [--max-upload-mb 100]\n"
        "  user add  [--data DIR] NAME               create a user; prints its first API token\n"
        "  token create [--data DIR] NAME            print another API token for a user\n"
        "\n"
        "--data defaults to ./data. Exit status: 0 ok, 1 failed, 2 usage.\n";

const char *cli_take_opt(int *argc, char **argv, const char *name, int *missing_value)
{
	size_t nlen = strlen(name);
	const char *val = NULL;
	int i, j, take;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], name, nlen) != 0)
			continue;
		if (argv[i][nlen] == '=') {
			val = argv[i] + nlen + 1;
			take = 1;
		} else if (argv[i][nlen] == '\0') {
			if (i + 1 >= *argc) {
				if (missing_value)
					*missing_value = 1;
				return NULL;
			}
			val = argv[i + 1];
			take = 2;
		} else {
			continue;
		}
		for (j = i; j + take < *argc; j++)
			argv[j] = argv[j + take];
		*argc -= take;
		return val;
	}
	return NULL;
}

const char *cli_take_data_dir(int *argc, char **argv)
{
	const char *d = cli_take_opt(argc, argv, "--data", NULL);

	return d ? d : "./data";
}

static int fail(const th_error *err)
{
	fprintf(stderr, "tablehub: %s\n", err->msg);
	return 1;
}

/* Print the rejected rows of a failed import (its report) after its error: the first ten. */
static void print_rejected(const th_buf *report)
{
	cJSON *r = report->size ? cJSON_Parse(report->ptr) : NULL, *rows, *row;
	int shown = 0;
	double total;

	rows = cJSON_GetObjectItem(r, "rejected_rows");
	total = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "rejected_total"));
	if (!cJSON_IsArray(rows) || total < 2) {
		cJSON_Delete(r);
		return;
	}
	fprintf(stderr, "rejected rows (%.0f):\n", total);
	cJSON_ArrayForEach(row, rows)
	{
		if (shown++ == 10) {
			fprintf(stderr, "  ... and %.0f more\n", total - 10);
			break;
		}
		fprintf(stderr, "  line %.0f, column %.0f: %s\n",
		        cJSON_GetNumberValue(cJSON_GetObjectItem(row, "line")),
		        cJSON_GetNumberValue(cJSON_GetObjectItem(row, "column")),
		        cJSON_GetStringValue(cJSON_GetObjectItem(row, "reason")));
	}
	cJSON_Delete(r);
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "tablehub: %s\n\n%s", msg, usage);
	return 2;
}

/* Any option left in argv is unknown. */
static int reject_unknown(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] == '-') {
			char msg[256];
			snprintf(msg, sizeof(msg), "unknown option '%s'", argv[i]);
			return usage_error(msg);
		}
	return 0;
}

int cli_repo_open(th_repo **out, const char *data_dir, const char *name, int writer, th_error *err)
{
	char owner[65], db[65];
	int error;

	if ((error = th_split_db_name(owner, db, name, err)) < 0)
		return error;
	error = th_datadir_repo_open(out, data_dir, owner, db, writer, err);
	if (error == TH_ENOTFOUND)
		error = th_error_set(err, TH_ENOTFOUND,
		                     "database '%s' not found in '%s'; create it with `tablehub db "
		                     "create %s`",
		                     name, data_dir, name);
	return error;
}

int cli_db(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	th_error err = { 0 };
	th_meta *meta = NULL;
	th_buf path = TH_BUF_INIT;
	char owner[65], db[65];
	int lock = -1, rc = 1, error;

	if ((error = reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != 3 || strcmp(argv[1], "create") != 0)
		return usage_error("expected: db create [--data DIR] OWNER/DB");
	if (th_split_db_name(owner, db, argv[2], &err) < 0)
		return fail(&err);
	if (th_datadir_lock(&lock, data, &err) < 0 || th_meta_open(&meta, data, &err) < 0 ||
	    th_datadir_repo_path(&path, data, owner, db, &err) < 0)
		goto cleanup;
	if (th_meta_db_create(meta, owner, db, "", 0, &err) < 0)
		goto cleanup;
	if (th_repo_create(path.ptr, owner, &err) < 0)
		goto cleanup;
	printf("created %s/%s in %s\n", owner, db, path.ptr);
	rc = 0;
cleanup:
	if (rc)
		fail(&err);
	th_buf_dispose(&path);
	th_meta_close(meta);
	th_datadir_unlock(lock);
	return rc;
}

typedef struct progress_state {
	int tty;
	double start;
} progress_state;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_progress(void *payload, uint64_t bytes, uint64_t rows)
{
	progress_state *p = payload;

	if (!p->tty)
		return;
	fprintf(stderr, "\rimporting: %.1f MB read, %llu rows (%.1f s)  ", (double)bytes / 1e6,
	        (unsigned long long)rows, now_s() - p->start);
}

int cli_import(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	int missing = 0;
	const char *table = cli_take_opt(&argc, argv, "--table", &missing);
	const char *op = cli_take_opt(&argc, argv, "--op", &missing);
	const char *pk = cli_take_opt(&argc, argv, "--pk", &missing);
	const char *branch = cli_take_opt(&argc, argv, "--branch", &missing);
	const char *type = cli_take_opt(&argc, argv, "--type", &missing);
	const char *message = cli_take_opt(&argc, argv, "--message", &missing);
	th_import_opts o;
	th_import_result res;
	th_buf report = TH_BUF_INIT;
	th_error err = { 0 };
	th_repo *repo = NULL;
	progress_state prog = { isatty(2), now_s() };
	char *pkcopy = NULL, *pknames[64], *tok, *save = NULL;
	char oid[41], tmpdir[4096];
	const char *file;
	int lock = -1, fd = -1, rc = 1, error;

	if (missing)
		return usage_error("an option is missing its value");
	if ((error = reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != 3 || table == NULL)
		return usage_error("expected: import OWNER/DB --table T [options] FILE|-");
	memset(&o, 0, sizeof(o));
	o.table = table;
	o.op = op ? th_import_op_parse(op) : TH_OP_CREATE;
	o.format = type ? th_file_format_parse(type) : TH_FMT_CSV;
	o.branch = branch ? branch : "main";
	o.message = message;
	file = argv[2];
	o.file_name = strcmp(file, "-") == 0 ? "stdin" : file;
	if (strrchr(o.file_name, '/'))
		o.file_name = strrchr(o.file_name, '/') + 1;
	if (o.op == 0)
		return usage_error("--op must be create, overwrite, update, replace or append");
	if (o.format == 0)
		return usage_error("--type must be csv, psv, tsv or json");
	if (pk) {
		if ((pkcopy = strdup(pk)) == NULL)
			return 1;
		for (tok = strtok_r(pkcopy, ",", &save); tok && o.npk < 64;
		     tok = strtok_r(NULL, ",", &save)) {
			while (*tok == ' ')
				tok++;
			pknames[o.npk++] = tok;
		}
		o.pk = (const char *const *)pknames;
	}
	o.report = &report;
	o.progress = on_progress;
	o.progress_payload = &prog;
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", data);
	o.tmpdir = tmpdir;

	if (strcmp(file, "-") == 0) {
		fd = 0;
	} else if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		th_error_set(&err, TH_EINVALID, "cannot open '%s': %s", file, strerror(errno));
		goto cleanup;
	}
	if (th_datadir_lock(&lock, data, &err) < 0 || th_repo_global_init(&err) < 0 ||
	    cli_repo_open(&repo, data, argv[1], 1, &err) < 0)
		goto cleanup;
	if (th_import_fd(&res, repo, fd, &o, &err) < 0)
		goto cleanup;
	if (prog.tty)
		fprintf(stderr, "\r\033[K");
	th_oid_fmt(oid, &res.commit);
	printf("%s\n", oid);
	printf("rows added: %llu, modified: %llu, removed: %llu (table '%s' now has %llu rows)\n",
	       (unsigned long long)res.added, (unsigned long long)res.modified,
	       (unsigned long long)res.removed, table, (unsigned long long)res.rows);
	if (res.duplicates)
		printf("%llu rows repeated an earlier key of the file; the last one was kept\n",
		       (unsigned long long)res.duplicates);
	rc = 0;
cleanup:
	if (rc) {
		if (prog.tty)
			fprintf(stderr, "\r\033[K");
		fail(&err);
		print_rejected(&report);
	}
	th_buf_dispose(&report);
	if (fd > 0)
		close(fd);
	th_repo_free(repo);
	th_datadir_unlock(lock);
	free(pkcopy);
	return rc;
}

int cli_export(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	th_error err = { 0 };
	th_repo *repo = NULL;
	th_table t = TH_TABLE_INIT;
	th_commit_info ci;
	th_row_iter *it = NULL;
	th_cells cells = TH_CELLS_INIT;
	th_buf out = TH_BUF_INIT;
	th_oid commit;
	th_row row;
	size_t i;
	int rc = 1, error;

	memset(&ci, 0, sizeof(ci));
	if ((error = reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != 4)
		return usage_error("expected: export [--data DIR] OWNER/DB REF TABLE");
	if (cli_repo_open(&repo, data, argv[1], 0, &err) < 0 ||
	    th_repo_resolve(&commit, repo, argv[2], &err) < 0 ||
	    th_repo_commit_read(&ci, repo, &commit, &err) < 0 ||
	    th_table_load(&t, repo, &ci.tree, argv[3], &err) < 0 ||
	    th_row_iter_new(&it, repo, &t, &err) < 0)
		goto cleanup;
	for (i = 0; i < t.schema.ncols; i++) {
		if (i && th_buf_putc(&out, ',', &err) < 0)
			goto cleanup;
		if (th_csv_write_field(&out, t.schema.cols[i].name, strlen(t.schema.cols[i].name),
		                       0, ',', &err) < 0)
			goto cleanup;
	}
	if (th_buf_putc(&out, '\n', &err) < 0)
		goto cleanup;
	while ((error = th_row_iter_next(it, &row, &err)) == 1) {
		if (th_row_decode(&cells, &t.schema, row.line, row.linelen, &err) < 0)
			goto cleanup;
		for (i = 0; i < cells.n; i++) {
			if (i && th_buf_putc(&out, ',', &err) < 0)
				goto cleanup;
			if (th_csv_write_field(&out, cells.c[i].s, cells.c[i].len,
			                       cells.c[i].is_null, ',', &err) < 0)
				goto cleanup;
		}
		if (th_buf_putc(&out, '\n', &err) < 0)
			goto cleanup;
		if (out.size > (1 << 20)) {
			if (fwrite(out.ptr, 1, out.size, stdout) != out.size)
				goto write_failed;
			th_buf_clear(&out);
		}
	}
	if (error < 0)
		goto cleanup;
	if (fwrite(out.ptr ? out.ptr : "", 1, out.size, stdout) != out.size || fflush(stdout) != 0)
		goto write_failed;
	rc = 0;
	goto cleanup;
write_failed:
	th_error_set(&err, TH_ESTORE, "cannot write to standard output");
cleanup:
	if (rc)
		fail(&err);
	th_buf_dispose(&out);
	th_cells_dispose(&cells);
	th_row_iter_free(it);
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

	if ((error = reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != 2 && argc != 3)
		return usage_error("expected: log [--data DIR] OWNER/DB [REF]");
	if (cli_repo_open(&repo, data, argv[1], 0, &err) < 0 ||
	    th_repo_resolve(&start, repo, argc == 3 ? argv[2] : "main", &err) < 0 ||
	    th_repo_log(repo, &start, 0, print_commit, NULL, &err) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc)
		fail(&err);
	th_repo_free(repo);
	return rc;
}

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "db", cli_db },       { "import", cli_import }, { "export", cli_export },
	{ "log", cli_log },     { "serve", cli_serve },   { "user", cli_user },
	{ "token", cli_token }, { "query", cli_query },   { "diff", cli_diff },
};

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		th_error err = { 0 };
		int rc;

		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if (th_repo_global_init(&err) < 0) {
			fprintf(stderr, "tablehub: %s\n", err.msg);
			return 1;
		}
		rc = commands[i].fn(argc - 1, argv + 1);
		th_repo_global_shutdown();
		return rc;
	}
	fprintf(stderr, "tablehub: unknown command '%s'\n\n%s", argv[1], usage);
	return 2;
}
