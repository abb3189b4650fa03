/* cli_sql.c: `tablehub sql`, SQL writes run locally on a data dir (the embedded mode of the write
 * endpoint: no server, no job): the statements run on a branch and their result is committed
 * there (src/sqlwrite.c). It takes the data dir's write lock. The statements come from the
 * command line or, streamed, from a file (--file, `-` for stdin). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/datadir.h"
#include "tablehub/sqlwrite.h"
#include "tablehub/text.h"
#include "cli.h"

static void print_result(const th_sqlwrite_result *r, const char *branch)
{
	char from[41], to[41];
	size_t i;

	th_oid_fmt(from, &r->from_commit);
	th_oid_fmt(to, &r->to_commit);
	printf("%s\n", to);
	if (!r->committed) {
		printf("nothing changed on '%s'%s (%llu statements)\n", branch,
		       r->branch_created ? " (branch made)" : "",
		       (unsigned long long)r->statements);
		return;
	}
	printf("from %s, %llu statements, %llu rows affected\n", from,
	       (unsigned long long)r->statements, (unsigned long long)r->rows_affected);
	for (i = 0; i < r->ntables; i++) {
		const th_sqlwrite_table *t = &r->tables[i];
		printf("  %s: %s%s, rows added %llu, modified %llu, removed %llu\n", t->name,
		       th_sqlwrite_change_name(t->change),
		       t->schema_changed && t->change == TH_SQLWRITE_MODIFIED ? " (schema changed)"
		                                                              : "",
		       (unsigned long long)t->rows_added, (unsigned long long)t->rows_modified,
		       (unsigned long long)t->rows_removed);
	}
}

int cli_sql(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	int missing = 0;
	const char *branch = cli_take_opt(&argc, argv, "--branch", &missing);
	const char *from = cli_take_opt(&argc, argv, "--from", &missing);
	const char *file = cli_take_opt(&argc, argv, "--file", &missing);
	const char *message = cli_take_opt(&argc, argv, "--message", &missing);
	th_sqlwrite_opts o;
	th_sqlwrite_result res;
	th_error err = { 0 };
	th_repo *repo = NULL;
	char owner[65], db[65];
	int lock = -1, fd = -1, rc = 1, error;

	if (missing)
		return cli_usage_error("an option is missing its value");
	if ((error = cli_reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != (file ? 2 : 3))
		return cli_usage_error("expected: sql OWNER/DB [--branch B] [--from F] 'SQL' "
		                       "(or --file FILE instead of SQL)");
	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	o.datadir = data;
	o.branch = branch ? branch : "main";
	o.from = from;
	o.message = message;
	if (th_split_db_name(owner, db, argv[1], &err) < 0)
		return cli_fail(&err);
	o.owner = owner;
	o.db = db;
	if (file != NULL && strcmp(file, "-") == 0) {
		fd = 0;
	} else if (file != NULL && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		th_error_set(&err, TH_EINVALID, "cannot open '%s': %s", file, strerror(errno));
		goto cleanup;
	}
	if (th_datadir_lock(&lock, data, &err) < 0 ||
	    cli_repo_open(&repo, data, argv[1], 1, &err) < 0)
		goto cleanup;
	if (file != NULL)
		error = th_sqlwrite_run_fd(&res, repo, fd, &o, &err);
	else
		error = th_sqlwrite_run(&res, repo, argv[2], &o, &err);
	if (error < 0)
		goto cleanup;
	print_result(&res, o.branch);
	rc = 0;
cleanup:
	if (rc)
		cli_fail(&err);
	th_sqlwrite_result_dispose(&res);
	if (fd > 0)
		close(fd);
	th_repo_free(repo);
	th_datadir_unlock(lock);
	return rc;
}
