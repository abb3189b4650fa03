/* query_archive.c: every table at a ref as one zip archive of exports (see query.h), which the
 * API serves at GET /csv/{owner}/{db}/{ref}, as DoltHub does.
 *
 * The ref is resolved once, at the start, to a commit's tree: the archive is of that commit even
 * if the branch moves while it streams. Then each table in name order is loaded, exported 64 KiB
 * at a time (th_table_export_read) and fed to the zip writer (zipwrite.c), which deflates it into
 * the caller's buffer. One table export is open at a time; each gets its own handle on the
 * repository, which the export owns and releases at its end.
 */
#include <stdlib.h>
#include <string.h>

#include "tablehub/datadir.h"
#include "tablehub/table.h"
#include "query_internal.h"
#include "zipwrite.h"

#define TABLE_BLOCK (64 * 1024)
#define ZIP_LEVEL 1 /* fast: CSV still shrinks to about a fifth, and the CPU is the server's */

struct th_query_archive {
	const th_exporter *fmt;
	char *datadir, *owner, *db;
	th_oid root;
	char **names; /* the tables, NULL-terminated */
	size_t next;  /* the next table to start */
	th_table_export *cur;
	th_zipw *zip;
	th_buf chunk;
	int done;
};

int th_query_archive_new(th_query_archive **out, const th_exporter *fmt, const th_query_target *t,
                         th_error *err)
{
	th_query_archive *a = calloc(1, sizeof(*a));
	th_commit_info ci;
	th_query_resolved r;
	int error;

	memset(&ci, 0, sizeof(ci));
	memset(&r, 0, sizeof(r));
	if (a == NULL || (a->datadir = strdup(t->datadir)) == NULL ||
	    (a->owner = strdup(t->owner)) == NULL || (a->db = strdup(t->db)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	a->fmt = fmt;
	if ((error = th_query__resolve(&r, t, err)) < 0 ||
	    (error = th_repo_commit_read(&ci, r.repo, &r.commit, err)) < 0 ||
	    (error = th_table_names(&a->names, r.repo, &r.root, err)) < 0 ||
	    (error = th_zipw_new(&a->zip, ZIP_LEVEL, ci.time, 0, err)) < 0)
		goto cleanup;
	a->root = r.root;
	*out = a;
	a = NULL;
cleanup:
	th_commit_info_dispose(&ci);
	th_repo_free(r.repo);
	th_query_archive_free(a);
	return error;
}

/* Start the next table's entry. */
static int next_table(th_query_archive *a, th_buf *out, th_error *err)
{
	const char *name = a->names[a->next++];
	th_table tab = TH_TABLE_INIT;
	th_repo *repo = NULL;
	th_buf entry = TH_BUF_INIT;
	int error;

	if ((error = th_datadir_repo_open(&repo, a->datadir, a->owner, a->db, 0, err)) < 0)
		return error;
	if ((error = th_table_load(&tab, repo, &a->root, name, err)) < 0) {
		th_repo_free(repo);
		return error;
	}
	if ((error = th_table_export_new(&a->cur, a->fmt, repo, &tab, err)) < 0) /* takes both */
		return error;
	if ((error = th_buf_printf(&entry, err, "%s.%s", name, a->fmt->extension)) == TH_OK)
		error = th_zipw_begin(a->zip, out, entry.ptr, err);
	th_buf_dispose(&entry);
	return error;
}

int th_query_archive_read(th_query_archive *a, th_buf *out, size_t want, th_error *err)
{
	int rc, error;

	while (!a->done && out->size < want) {
		if (a->cur == NULL) {
			if (a->names[a->next] == NULL) {
				if ((rc = th_zipw_finish(a->zip, out, err)) < 0)
					return rc;
				a->done = 1;
				break;
			}
			if ((rc = next_table(a, out, err)) < 0)
				return rc;
		}
		th_buf_clear(&a->chunk);
		if ((rc = th_table_export_read(a->cur, &a->chunk, TABLE_BLOCK, err)) < 0)
			return rc;
		if (a->chunk.size &&
		    (error = th_zipw_data(a->zip, out, a->chunk.ptr, a->chunk.size, err)) < 0)
			return error;
		if (rc == 0) { /* the table's last rows are in: end its entry */
			th_table_export_free(a->cur);
			a->cur = NULL;
			if ((rc = th_zipw_end(a->zip, out, err)) < 0)
				return rc;
		}
	}
	return a->done ? 0 : 1;
}

void th_query_archive_free(th_query_archive *a)
{
	if (a == NULL)
		return;
	th_table_export_free(a->cur);
	th_zipw_free(a->zip);
	th_strv_free(a->names);
	th_buf_dispose(&a->chunk);
	free(a->datadir);
	free(a->owner);
	free(a->db);
	free(a);
}
