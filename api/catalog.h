/* catalog.h: what catalog.c and commits.c share (api-private). */
#ifndef TABLEHUB_API_CATALOG_H
#define TABLEHUB_API_CATALOG_H

#include "api.h"
#include "tablehub/repo.h"

/* ?pageToken= (a decimal offset, "" or absent = 0) and ?pageSize= (1..max, absent = def).
 * Returns TH_OK or TH_EINVALID naming the bad argument. */
int api_page_args(size_t *offset, size_t *size, th_req *req, size_t def, size_t max, th_error *err);

/* Resolve ?ref= (absent = "main"; a branch, tag or full or abbreviated commit id) of req's
 * database in `repo` and read that commit into *ci (dispose with th_commit_info_dispose); *ref_out
 * is the ref as given (borrowed from the request). Returns TH_OK, TH_ENOTFOUND ("ref 'x' not
 * found in 'o/d'"), TH_EINVALID (too long) or TH_ESTORE. */
int api_resolve_ref(th_commit_info *ci, const char **ref_out, th_repo *repo, th_req *req,
                    th_error *err);

/* GET /api/v1alpha1/{owner}/{db}/commits (commits.c). */
int api_commits_list(th_req *req, th_error *err);

#endif
