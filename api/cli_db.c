/* cli_db.c: `tablehub db create [--data DIR] OWNER/DB`, a new database in a local data dir, made by
 * th_db_create as POST /database makes it. It takes the data dir's write lock, so it refuses to run
 * beside a server on the same dir. */
#include <stdio.h>
#include <string.h>

#include "tablehub/text.h"
#include "tablehub/databases.h"
#include "tablehub/datadir.h"
#include "tablehub/meta.h"
#include "cli.h"

int cli_db(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	th_error err = { 0 };
	th_meta *meta = NULL;
	th_buf path = TH_BUF_INIT;
	char owner[65], db[65];
	int lock = -1, rc = 1, error;

	if ((error = cli_reject_unknown(argc, argv)) != 0)
		return error;
	if (argc != 3 || strcmp(argv[1], "create") != 0)
		return cli_usage_error("expected: db create [--data DIR] OWNER/DB");
	if (th_split_db_name(owner, db, argv[2], &err) < 0)
		return cli_fail(&err);
	if (th_datadir_lock(&lock, data, &err) < 0 || th_meta_open(&meta, data, &err) < 0 ||
	    th_db_create(meta, data, owner, db, "", 0, &err) < 0 ||
	    th_datadir_repo_path(&path, data, owner, db, &err) < 0)
		goto cleanup;
	printf("created %s/%s in %s\n", owner, db, path.ptr);
	rc = 0;
cleanup:
	if (rc)
		cli_fail(&err);
	th_buf_dispose(&path);
	th_meta_close(meta);
	th_datadir_unlock(lock);
	return rc;
}
