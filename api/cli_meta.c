/* cli_meta.c: `tablehub meta migrate --from DIR/meta.sqlite --to postgresql://...`: a single-server
 * installation's metadata moved into an empty PostgreSQL store, after which several `serve
 * --meta postgresql://...` share it (storage/meta_migrate.c does the move). It prints the rows it
 * moved per table on stdout; the URL, which may hold a password, is never printed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/meta_migrate.h"
#include "cli.h"

static const char migrate_usage[] =
        "usage: tablehub meta migrate --from DIR/meta.sqlite --to postgresql://...\n"
        "  copies every table of a data directory's meta.sqlite into an empty PostgreSQL\n"
        "  database, in one transaction; no server may run on DIR meanwhile\n";

/* The data dir of --from: the directory of a path ending in /meta.sqlite, else the path. */
static char *data_dir_of(const char *from)
{
	size_t n = strlen(from);
	char *dir;

	if (n >= 11 && strcmp(from + n - 11, "meta.sqlite") == 0 &&
	    (n == 11 || from[n - 12] == '/'))
		n = n == 11 ? 0 : n - 12;
	if ((dir = malloc(n + 2)) == NULL)
		return NULL;
	if (n == 0)
		strcpy(dir, ".");
	else
		memcpy(dir, from, n), dir[n] = '\0';
	return dir;
}

int cli_meta(int argc, char **argv)
{
	const char *from, *to;
	int missing = 0, rc;
	th_meta_moved_list l = { NULL, 0 };
	th_error err = { 0 };
	int64_t total = 0;
	char *dir;

	if (argc < 2 || strcmp(argv[1], "migrate") != 0) {
		fputs(migrate_usage, stderr);
		return 2;
	}
	argc--;
	argv++;
	from = cli_take_opt(&argc, argv, "--from", &missing);
	to = missing ? NULL : cli_take_opt(&argc, argv, "--to", &missing);
	if (missing || from == NULL || to == NULL || from[0] == '\0') {
		fputs(migrate_usage, stderr);
		return 2;
	}
	if ((rc = cli_reject_unknown(argc, argv)) != 0)
		return rc;
	if (argc != 1) {
		fputs(migrate_usage, stderr);
		return 2;
	}
	if ((dir = data_dir_of(from)) == NULL) {
		fprintf(stderr, "tablehub meta migrate: out of memory\n");
		return 1;
	}
	if (th_meta_migrate(&l, dir, to, &err) < 0) {
		fprintf(stderr, "tablehub meta migrate: %s\n", err.msg);
		free(dir);
		return 1;
	}
	for (size_t i = 0; i < l.n; i++) {
		printf("%-20s %" PRId64 " row(s)\n", l.items[i].table, l.items[i].rows);
		total += l.items[i].rows;
	}
	printf("moved %" PRId64 " row(s) of %zu table(s) from %s/meta.sqlite to PostgreSQL\n",
	       total, l.n, dir);
	th_meta_moved_list_dispose(&l);
	free(dir);
	return fflush(stdout) == 0 ? 0 : 1;
}
