/* cli_backup.c: `tablehub backup [--data DIR] OUT` and `tablehub restore IN [--data DIR]`.
 *
 * backup takes no lock: it runs beside a server using DIR, and what it copies is consistent
 * without one (storage/backup.c says how). restore makes a new data directory, which a server
 * then serves; the operations the backup caught unfinished run again there. Both print one line of
 * what they copied to stderr.
 */
#include <inttypes.h>
#include <stdio.h>

#include "tablehub/backup.h"
#include "cli.h"

static void summary(const char *what, const char *from, const char *to, const th_backup_stats *st)
{
	fprintf(stderr,
	        "tablehub %s: %s -> %s: %" PRIu64 " database(s), %" PRIu64 " files, %.1f MB%s\n",
	        what, from, to, st->databases, st->files, (double)st->bytes / 1e6,
	        st->rescans ? " (objects listed again after a repack moved them)" : "");
}

int cli_backup(int argc, char **argv)
{
	const char *dir = cli_take_data_dir(&argc, argv);
	th_backup_stats st;
	th_error err = { 0 };
	int rc;

	if ((rc = cli_reject_unknown(argc, argv)) != 0)
		return rc;
	if (argc != 2)
		return cli_usage_error("expected: backup [--data DIR] OUT");
	if (th_backup(&st, dir, argv[1], &err) < 0)
		return cli_fail(&err);
	summary("backup", dir, argv[1], &st);
	return 0;
}

int cli_restore(int argc, char **argv)
{
	const char *dir = cli_take_data_dir(&argc, argv);
	th_backup_stats st;
	th_error err = { 0 };
	int rc;

	if ((rc = cli_reject_unknown(argc, argv)) != 0)
		return rc;
	if (argc != 2)
		return cli_usage_error("expected: restore IN [--data DIR]");
	if (th_restore(&st, argv[1], dir, &err) < 0)
		return cli_fail(&err);
	summary("restore", argv[1], dir, &st);
	return 0;
}
