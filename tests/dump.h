/* dump.h: every table of every branch of a repository as one text, for tests that must show a
 * repository reads back the same after something rewrote its storage (a repack, a backup and
 * restore): "### branch <name> <commit>\n" per branch, then for each table "== <table>\n" and its
 * rows as CSV, through the same exporter as `tablehub export`. */
#ifndef TABLEHUB_TEST_DUMP_H
#define TABLEHUB_TEST_DUMP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/buf.h"
#include "tablehub/export.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

/* Append table `name` of tree `root` as CSV. Returns TH_OK or an error. */
static inline int t_dump_table(th_buf *out, const char *path, const th_oid *root, const char *name,
                               th_error *err)
{
	th_repo *repo = NULL;
	th_table t = TH_TABLE_INIT;
	th_table_export *x = NULL;
	int error;

	if ((error = th_repo_open(&repo, path, 0, err)) < 0)
		return error;
	if ((error = th_table_load(&t, repo, root, name, err)) < 0) {
		th_repo_free(repo);
		return error;
	}
	error = th_table_export_new(&x, &th_exporter_csv, repo, &t, err); /* takes repo, t */
	while (error >= 0) {
		th_buf part =
		        TH_BUF_INIT; /* read fills a buffer up to `want`: a fresh one each time */
		error = th_table_export_read(x, &part, 1 << 20, err);
		if (error >= 0 && part.size > 0 && th_buf_put(out, part.ptr, part.size, err) < 0)
			error = TH_ENOMEM;
		th_buf_dispose(&part);
		if (error == 0)
			break;
	}
	th_table_export_free(x);
	return error < 0 ? error : TH_OK;
}

/* Every branch's commit (unless `no_commits`) and tables of the repository at `path` as malloc'd
 * text, or NULL with the error printed. */
static inline char *t_dump_repo_ex(const char *path, int no_commits)
{
	th_buf out = TH_BUF_INIT;
	th_repo *repo = NULL;
	th_error err;
	char **branches = NULL;
	int ok = 0;

	if (th_repo_open(&repo, path, 0, &err) < 0 ||
	    th_repo_branch_list(&branches, repo, &err) < 0)
		goto done;
	for (size_t i = 0; branches[i] != NULL; i++) {
		th_commit_info ci;
		th_oid c;
		char hex[41], **tables = NULL;

		memset(&ci, 0, sizeof(ci));
		if (th_repo_branch_get(&c, repo, branches[i], &err) < 0 ||
		    th_repo_commit_read(&ci, repo, &c, &err) < 0 ||
		    th_table_names(&tables, repo, &ci.tree, &err) < 0) {
			th_commit_info_dispose(&ci);
			goto done;
		}
		th_oid_fmt(hex, &c);
		th_buf_printf(&out, &err, "### branch %s %s\n", branches[i], no_commits ? "" : hex);
		for (size_t k = 0; tables[k] != NULL; k++) {
			th_buf_printf(&out, &err, "== %s\n", tables[k]);
			if (t_dump_table(&out, path, &ci.tree, tables[k], &err) < 0) {
				th_strv_free(tables);
				th_commit_info_dispose(&ci);
				goto done;
			}
		}
		th_strv_free(tables);
		th_commit_info_dispose(&ci);
	}
	ok = 1;
done:
	if (!ok)
		fprintf(stderr, "t_dump_repo %s: %s\n", path, err.msg);
	th_strv_free(branches);
	th_repo_free(repo);
	if (!ok) {
		th_buf_dispose(&out);
		return NULL;
	}
	return out.ptr ? th_buf_detach(&out) : strdup("");
}

static inline char *t_dump_repo(const char *path)
{
	return t_dump_repo_ex(path, 0);
}

/* Does every branch block of dump `a` appear, as it is, in dump `b`? */
static inline int t_dump_contains(const char *b, const char *a)
{
	const char *p = a;

	while (p != NULL && *p) {
		const char *next = strstr(p + 1, "### branch ");
		size_t n = next ? (size_t)(next - p) : strlen(p);
		char *block = strndup(p, n);
		int found = block != NULL && strstr(b, block) != NULL;
		free(block);
		if (!found)
			return 0;
		p = next;
	}
	return 1;
}

#endif
