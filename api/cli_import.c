/* cli_import.c: `tablehub import`, the import engine run locally on a data dir (the embedded mode:
 * no server, no job, no pull request; the rows are committed straight onto the branch). It takes
 * the data dir's write lock. On a terminal it shows progress on stderr; a failed import prints its
 * error and the first rejected rows. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tablehub/datadir.h"
#include "tablehub/import.h"
#include "tablehub/repo.h"
#include "cli.h"

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

/* --null NA --null '' or --null NA,N/A,-: the markers read as NULL, copied into a static buffer
 * (the command runs once). Returns 0 or the usage error's exit status. */
static int take_nulls(const char **nulls, size_t *n, int *argc, char **argv, int *missing)
{
	static char buf[TH_IMPORT_NULLS_MAX * (TH_IMPORT_NULL_LEN + 1)];
	const char *opt;
	size_t used = 0;

	while ((opt = cli_take_opt(argc, argv, "--null", missing)) != NULL) {
		const char *p = opt;
		do {
			size_t len = strcspn(p, ",");
			if (*n == TH_IMPORT_NULLS_MAX || len > TH_IMPORT_NULL_LEN)
				return cli_usage_error("--null: at most 64 markers of at most 256 "
				                       "bytes");
			memcpy(buf + used, p, len);
			buf[used + len] = '\0';
			nulls[(*n)++] = buf + used;
			used += len + 1;
			p += len;
		} while (*p++ == ',');
	}
	return 0;
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
	const char *sheet = cli_take_opt(&argc, argv, "--sheet", &missing);
	const char *nulls[TH_IMPORT_NULLS_MAX];
	size_t nnulls = 0;
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

	if ((error = take_nulls(nulls, &nnulls, &argc, argv, &missing)) != 0)
		return error;
	if ((error = cli_reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != 3 || table == NULL)
		return cli_usage_error("expected: import OWNER/DB --table T [options] FILE|-");
	memset(&o, 0, sizeof(o));
	o.table = table;
	file = argv[2];
	o.op = op ? th_import_op_parse(op) : TH_OP_CREATE;
	o.format = type ? th_format_find(type) : th_format_guess(file);
	o.branch = branch ? branch : "main";
	o.message = message;
	o.sheet = sheet;
	o.nulls = nulls;
	o.nnulls = nnulls;
	o.file_name = strcmp(file, "-") == 0 ? "stdin" : file;
	if (strrchr(o.file_name, '/'))
		o.file_name = strrchr(o.file_name, '/') + 1;
	if (o.op == 0)
		return cli_usage_error("--op must be create, overwrite, update, replace or append");
	if (o.format == NULL) {
		char names[128], msg[200];
		th_format_names(names, sizeof(names));
		snprintf(msg, sizeof(msg), "--type must be %s (in any case)", names);
		return cli_usage_error(msg);
	}
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
		cli_fail(&err);
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
