/* repo_objects.c: commits, trees and blobs of a database's repository (storage/repo.c has the
 * design). Trees are written through libgit2's treebuilder, which sorts entries git's way; a tree
 * update rewrites only the trees on the path to the changed entry, so unchanged subtrees keep their
 * object ids and are shared with the parent commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo_internal.h"

/* --- commits --------------------------------------------------------------------------------- */

void th_commit_info_dispose(th_commit_info *ci)
{
	if (ci == NULL)
		return;
	free(ci->message);
	ci->message = NULL;
}

static int fill_commit_info(th_commit_info *out, const git_commit *c, th_error *err)
{
	const git_signature *a = git_commit_author(c);
	const char *msg = git_commit_message(c);
	size_t i;

	memset(out, 0, sizeof(*out));
	to_th(&out->id, git_commit_id(c));
	to_th(&out->tree, git_commit_tree_id(c));
	out->nparents = git_commit_parentcount(c);
	for (i = 0; i < out->nparents && i < 2; i++)
		to_th(&out->parents[i], git_commit_parent_id(c, (unsigned int)i));
	if (a) {
		out->time = (int64_t)a->when.time;
		snprintf(out->author, sizeof(out->author), "%s", a->name ? a->name : "");
		snprintf(out->email, sizeof(out->email), "%s", a->email ? a->email : "");
	}
	if ((out->message = strdup(msg ? msg : "")) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return TH_OK;
}

int th_repo_commit_read(th_commit_info *out, th_repo *repo, const th_oid *id, th_error *err)
{
	git_commit *c = NULL;
	th_commit_info ci;
	char hex[41];
	int error;

	if ((error = git_commit_lookup(&c, repo->git, goid(id))) < 0) {
		th_oid_fmt(hex, id);
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "commit '%s' not found", hex);
		return th_repo__git_error(err, error, "cannot read commit");
	}
	if ((error = fill_commit_info(&ci, c, err)) == 0)
		*out = ci;
	git_commit_free(c);
	return error;
}

int th_repo_commit_write(th_oid *out, th_repo *repo, const th_oid *tree, const th_oid *parents,
                         size_t nparents, const char *author, const char *email,
                         const char *message, th_error *err)
{
	git_commit **pc = NULL;
	git_signature *sig = NULL;
	git_tree *t = NULL;
	git_oid id;
	size_t i;
	int error;

	if (nparents && (pc = calloc(nparents, sizeof(*pc))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if ((error = git_tree_lookup(&t, repo->git, goid(tree))) < 0) {
		error = th_repo__git_error(err, error, "cannot read the commit's tree");
		goto cleanup;
	}
	for (i = 0; i < nparents; i++) {
		if ((error = git_commit_lookup(&pc[i], repo->git, goid(&parents[i]))) < 0) {
			error = th_repo__git_error(err, error, "cannot read parent commit");
			goto cleanup;
		}
	}
	if ((error = git_signature_now(&sig, author, email)) < 0) {
		error = th_repo__git_error(err, error, "bad author");
		goto cleanup;
	}
	if ((error = git_commit_create(&id, repo->git, NULL, sig, sig, NULL, message, t, nparents,
	                               (const git_commit **)pc)) < 0) {
		error = th_repo__git_error(err, error, "cannot write commit");
		goto cleanup;
	}
	to_th(out, &id);

cleanup:
	for (i = 0; pc && i < nparents; i++)
		git_commit_free(pc[i]);
	free(pc);
	git_signature_free(sig);
	git_tree_free(t);
	return error;
}

int th_repo_merge_base(th_oid *out, th_repo *repo, const th_oid *a, const th_oid *b, th_error *err)
{
	char ha[41], hb[41];
	git_oid id;
	int error;

	if ((error = git_merge_base(&id, repo->git, goid(a), goid(b))) < 0) {
		th_oid_fmt(ha, a);
		th_oid_fmt(hb, b);
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "no merge base of %.12s and %.12s",
			                    ha, hb);
		return th_repo__git_error(err, error, "cannot find merge base");
	}
	to_th(out, &id);
	return TH_OK;
}

int th_repo_log(th_repo *repo, const th_oid *start, size_t limit,
                int (*cb)(const th_commit_info *ci, void *payload), void *payload, th_error *err)
{
	git_revwalk *walk = NULL;
	size_t seen = 0;
	git_oid id;
	int error;

	/* Time order alone puts commits made in the same second (an import and its merge) in any
	 * order; topological order with time among siblings keeps children before parents. */
	if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
	    (error = git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME)) < 0 ||
	    (error = git_revwalk_push(walk, goid(start))) < 0) {
		error = th_repo__git_error(err, error, "cannot walk history");
		goto cleanup;
	}
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		git_commit *c = NULL;
		th_commit_info ci;
		int rc;

		if ((error = git_commit_lookup(&c, repo->git, &id)) < 0) {
			error = th_repo__git_error(err, error, "cannot read commit");
			goto cleanup;
		}
		error = fill_commit_info(&ci, c, err);
		git_commit_free(c);
		if (error < 0)
			goto cleanup;
		rc = cb(&ci, payload);
		th_commit_info_dispose(&ci);
		if (rc != 0) {
			error = rc;
			goto cleanup;
		}
		if (limit && ++seen >= limit)
			break;
	}
	if (error == GIT_ITEROVER || error == 0)
		error = TH_OK;
	else
		error = th_repo__git_error(err, error, "cannot walk history");

cleanup:
	git_revwalk_free(walk);
	return error;
}

/* --- trees and blobs ------------------------------------------------------------------------- */

void th_tree_list_dispose(th_tree_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->entries[i].name);
	free(l->entries);
	l->entries = NULL;
	l->n = 0;
}

static int tree_lookup(git_tree **out, th_repo *repo, const th_oid *id, th_error *err)
{
	char hex[41];
	int error;

	if ((error = git_tree_lookup(out, repo->git, goid(id))) < 0) {
		th_oid_fmt(hex, id);
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "tree '%s' not found", hex);
		return th_repo__git_error(err, error, "cannot read tree");
	}
	return TH_OK;
}

int th_repo_tree_read(th_tree_list *out, th_repo *repo, const th_oid *tree, th_error *err)
{
	th_tree_list l = { NULL, 0 };
	git_tree *t = NULL;
	size_t i, n;
	int error;

	if ((error = tree_lookup(&t, repo, tree, err)) < 0)
		return error;
	n = git_tree_entrycount(t);
	if (n && (l.entries = calloc(n, sizeof(*l.entries))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if ((l.entries[i].name = strdup(git_tree_entry_name(e))) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		l.n = i + 1;
		to_th(&l.entries[i].oid, git_tree_entry_id(e));
		l.entries[i].is_tree = git_tree_entry_type(e) == GIT_OBJECT_TREE;
	}
	*out = l;
	l.entries = NULL;
	l.n = 0;

cleanup:
	th_tree_list_dispose(&l);
	git_tree_free(t);
	return error;
}

static int entry_name_valid(const char *name)
{
	return name && *name && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0 && strcmp(name, ".git") != 0;
}

int th_repo_tree_write(th_oid *out, th_repo *repo, const th_tree_entry *entries, size_t n,
                       th_error *err)
{
	git_treebuilder *bld = NULL;
	git_oid id;
	size_t i;
	int error;

	if ((error = git_treebuilder_new(&bld, repo->git, NULL)) < 0)
		return th_repo__git_error(err, error, "cannot build tree");
	for (i = 0; i < n; i++) {
		const th_tree_entry *e = &entries[i];
		char hex[41];

		if (!entry_name_valid(e->name)) {
			error = th_error_set(err, TH_EINVALID, "invalid tree entry name '%s'",
			                     e->name ? e->name : "");
			goto cleanup;
		}
		if (git_treebuilder_get(bld, e->name) != NULL) {
			error = th_error_set(err, TH_EINVALID, "duplicate tree entry '%s'",
			                     e->name);
			goto cleanup;
		}
		/* libgit2 (strict object creation) refuses an entry whose object is missing or of
		 * the wrong type: that is the caller's mistake, not a storage failure. */
		if ((error = git_treebuilder_insert(NULL, bld, e->name, goid(&e->oid),
		                                    e->is_tree ? GIT_FILEMODE_TREE
		                                               : GIT_FILEMODE_BLOB)) < 0) {
			th_oid_fmt(hex, &e->oid);
			if (!git_odb_exists(repo->odb, goid(&e->oid)))
				error = th_error_set(err, TH_EINVALID,
				                     "tree entry '%s': object %s not found",
				                     e->name, hex);
			else
				error = th_repo__git_error(err, error, "cannot add tree entry");
			goto cleanup;
		}
	}
	if ((error = git_treebuilder_write(&id, bld)) < 0) {
		error = th_repo__git_error(err, error, "cannot write tree");
		goto cleanup;
	}
	to_th(out, &id);

cleanup:
	git_treebuilder_free(bld);
	return error;
}

int th_repo_tree_lookup(th_oid *out, int *is_tree, th_repo *repo, const th_oid *root,
                        const char *path, th_error *err)
{
	git_tree_entry *e = NULL;
	git_tree *t = NULL;
	int error;

	if ((error = tree_lookup(&t, repo, root, err)) < 0)
		return error;
	if ((error = git_tree_entry_bypath(&e, t, path)) < 0) {
		if (error == GIT_ENOTFOUND)
			error = th_error_set(err, TH_ENOTFOUND, "path '%s' not found", path);
		else
			error = th_repo__git_error(err, error, "cannot look up path");
		goto cleanup;
	}
	to_th(out, git_tree_entry_id(e));
	if (is_tree)
		*is_tree = git_tree_entry_type(e) == GIT_OBJECT_TREE;

cleanup:
	git_tree_entry_free(e);
	git_tree_free(t);
	return error;
}

/* "a/b/c": no empty, "." or ".." components, no leading or trailing slash. */
static int path_valid(const char *path)
{
	const char *s = path, *slash;

	if (path == NULL || *path == '\0')
		return 0;
	for (;;) {
		size_t n;

		slash = strchr(s, '/');
		n = slash ? (size_t)(slash - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		if (slash == NULL)
			return 1;
		s = slash + 1;
	}
}

int th_repo_tree_update(th_oid *out, th_repo *repo, const th_oid *root, const char *path,
                        const th_oid *oid, int is_tree, th_error *err)
{
	git_tree_update upd;
	git_treebuilder *bld = NULL;
	git_tree_entry *e = NULL;
	git_tree *base = NULL;
	git_oid base_id, id;
	int error;

	if (!path_valid(path))
		return th_error_set(err, TH_EINVALID, "invalid tree path '%s'", path ? path : "");
	if (root) {
		if ((error = tree_lookup(&base, repo, root, err)) < 0)
			return error;
	} else {
		/* The empty tree is written (a no-op when present) so it can be the baseline. */
		if ((error = git_treebuilder_new(&bld, repo->git, NULL)) < 0 ||
		    (error = git_treebuilder_write(&base_id, bld)) < 0 ||
		    (error = git_tree_lookup(&base, repo->git, &base_id)) < 0) {
			error = th_repo__git_error(err, error, "cannot write the empty tree");
			goto cleanup;
		}
	}
	if (oid == NULL) {
		/* Removing what is not there leaves the tree as it is. */
		error = git_tree_entry_bypath(&e, base, path);
		if (error == GIT_ENOTFOUND) {
			to_th(out, git_tree_id(base));
			error = TH_OK;
			goto cleanup;
		}
		if (error < 0) {
			error = th_repo__git_error(err, error, "cannot look up path");
			goto cleanup;
		}
	}
	memset(&upd, 0, sizeof(upd));
	upd.action = oid ? GIT_TREE_UPDATE_UPSERT : GIT_TREE_UPDATE_REMOVE;
	if (oid)
		upd.id = *goid(oid);
	upd.filemode = is_tree ? GIT_FILEMODE_TREE : GIT_FILEMODE_BLOB;
	upd.path = path;
	if ((error = git_tree_create_updated(&id, repo->git, base, 1, &upd)) < 0) {
		error = th_repo__git_error(err, error, "cannot update tree");
		goto cleanup;
	}
	to_th(out, &id);

cleanup:
	git_tree_entry_free(e);
	git_tree_free(base);
	git_treebuilder_free(bld);
	return error;
}

void th_repo_empty_tree(th_oid *out)
{
	static const unsigned char empty[20] = { 0x4b, 0x82, 0x5d, 0xc6, 0x42, 0xcb, 0x6e,
		                                 0xb9, 0xa0, 0x60, 0xe5, 0x4b, 0xf8, 0xd6,
		                                 0x92, 0x88, 0xfb, 0xee, 0x49, 0x04 };

	memcpy(out->id, empty, 20);
}

int th_repo_blob_write(th_oid *out, th_repo *repo, const void *data, size_t len, th_error *err)
{
	git_oid id;
	int error;

	if ((error = git_blob_create_from_buffer(&id, repo->git, data, len)) < 0)
		return th_repo__git_error(err, error, "cannot write blob");
	to_th(out, &id);
	return TH_OK;
}

int th_repo_blob_read(th_buf *out, th_repo *repo, const th_oid *id, th_error *err)
{
	git_odb_object *obj = NULL;
	char hex[41];
	int error;

	/* Straight from the object database: a blob needs no parsing, and this skips libgit2's
	 * object cache, which would only hold a second copy of data the caller copies anyway. */
	if ((error = git_odb_read(&obj, repo->odb, goid(id))) < 0) {
		th_oid_fmt(hex, id);
		if (error == GIT_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "blob '%s' not found", hex);
		return th_repo__git_error(err, error, "cannot read blob");
	}
	if (git_odb_object_type(obj) != GIT_OBJECT_BLOB) {
		th_oid_fmt(hex, id);
		error = th_error_set(err, TH_ENOTFOUND, "object '%s' is not a blob", hex);
	} else {
		error = th_buf_set(out, git_odb_object_data(obj), git_odb_object_size(obj), err);
	}
	git_odb_object_free(obj);
	return error;
}

int th_repo_exists(th_repo *repo, const th_oid *id)
{
	return git_odb_exists(repo->odb, goid(id));
}
