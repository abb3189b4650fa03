/* test_saved.c: saved queries in the library (src/saved.c): a definition read from JSON and
 * written back unchanged, every way a definition is refused, and the three-way merge of the
 * queries/ directory of commit trees, case by case (added, changed or removed on one side, the
 * same change on both, a conflict), through th_merge_trees as a pull request's merge runs it. */
#include "harness.h"
#include "util.h"
#include "tablehub/merge.h"
#include "tablehub/repo.h"
#include "tablehub/saved.h"

static char *dir;
static th_repo *repo;

/* Read `json` (a string literal) as query `name`. */
#define FROM(q, name, json) th_saved_from_json((q), (name), (json), strlen(json), &err)

static void test_definition(void)
{
	static const char json[] = "{\"query\":\"SELECT :a, :b\",\"description\":\"x\",\"params\":["
	                           "\"a\",{\"name\":\"b\",\"type\":\"real\"}],\"other\":1}";
	th_saved_query q, back;
	th_buf text = TH_BUF_INIT, again = TH_BUF_INIT;
	th_error err = { 0 };

	CHECK_OK(th_saved_from_json(&q, "two", json, strlen(json), &err), &err);
	CHECK_STR(q.name, "two");
	CHECK(q.nparams == 2 && q.params[0].type == TH_TYPE_TEXT &&
	      q.params[1].type == TH_TYPE_REAL);
	CHECK_OK(th_saved_to_json(&text, &q, &err), &err);
	CHECK_STR(text.ptr, "{\n  \"name\": \"two\",\n  \"description\": \"x\",\n  \"query\": "
	                    "\"SELECT :a, :b\",\n  \"params\": [\n    {\"name\": \"a\", \"type\": "
	                    "\"text\"},\n    {\"name\": \"b\", \"type\": \"real\"}\n  ]\n}\n");
	CHECK_OK(th_saved_from_json(&back, "two", text.ptr, text.size, &err), &err);
	CHECK_OK(th_saved_to_json(&again, &back, &err), &err);
	CHECK_STR(again.ptr, text.ptr);
	th_saved_dispose(&q);
	th_saved_dispose(&back);
	th_buf_dispose(&text);
	th_buf_dispose(&again);

	CHECK(th_saved_from_json(&q, "a.b", json, strlen(json), &err) == TH_EINVALID);
	CHECK(FROM(&q, "x", "{\"query\":\"\"}") == TH_EINVALID);
	CHECK(FROM(&q, "x", "{\"query\":1}") == TH_EINVALID);
	CHECK(FROM(&q, "x", "{\"query\":\"SELECT 1\",\"params\":[\"1a\"]}") == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "params: item 1 needs a name");
	CHECK(FROM(&q, "x", "{\"query\":\"SELECT 1\",\"params\":[\"format\"]}") == TH_EINVALID);
	CHECK(FROM(&q, "x", "{\"query\":\"SELECT 1\",\"params\":{}}") == TH_EINVALID);
	CHECK(FROM(&q, "x", "not json") == TH_EINVALID);
	CHECK(th_saved_name_valid("by_item-2") && !th_saved_name_valid("") &&
	      !th_saved_name_valid("-x") && !th_saved_name_valid("a/b"));
}

/* A root tree holding queries/<name>.json = `text` for each pair (NULL text: none). */
static th_oid root_of(const char *const *files)
{
	th_oid root, blob;
	th_error err = { 0 };
	char path[128];
	size_t i;

	th_repo_empty_tree(&root);
	for (i = 0; files[i] != NULL; i += 2) {
		if (files[i + 1] == NULL)
			continue;
		snprintf(path, sizeof(path), "queries/%s.json", files[i]);
		CHECK_OK(th_repo_blob_write(&blob, repo, files[i + 1], strlen(files[i + 1]), &err),
		         &err);
		CHECK_OK(th_repo_tree_update(&root, repo, &root, path, &blob, 0, &err), &err);
	}
	return root;
}

/* The files of queries/ in `root` as "name=text;" pairs. */
static char *files_of(const th_oid *root)
{
	th_buf out = TH_BUF_INIT, text = TH_BUF_INIT;
	th_tree_list l = { NULL, 0 };
	th_error err = { 0 };
	th_oid tree;
	size_t i;
	int is_tree = 0;

	if (th_repo_tree_lookup(&tree, &is_tree, repo, root, "queries", &err) == TH_OK &&
	    th_repo_tree_read(&l, repo, &tree, &err) == TH_OK)
		for (i = 0; i < l.n; i++) {
			th_buf_clear(&text);
			th_repo_blob_read(&text, repo, &l.entries[i].oid, &err);
			th_buf_printf(&out, NULL, "%s=%s;", l.entries[i].name,
			              text.ptr ? text.ptr : "");
		}
	th_tree_list_dispose(&l);
	th_buf_dispose(&text);
	return out.ptr ? th_buf_detach(&out) : strdup("");
}

static void expect_merge(const char *const *base, const char *const *ours,
                         const char *const *theirs, int code, const char *want)
{
	th_oid b = root_of(base), o = root_of(ours), t = root_of(theirs), out;
	th_conflicts c;
	th_error err = { 0 };
	char *got;
	int error;

	memset(&c, 0, sizeof(c));
	memset(&out, 0, sizeof(out));
	error = th_merge_trees(&out, NULL, &c, repo, &b, &o, &t, 0, &err);
	CHECK(error == code);
	if (error != code)
		fprintf(stderr, "  merge: %d %s\n", error, err.msg);
	if (code == TH_OK) {
		got = files_of(&out);
		CHECK_STR(got, want);
		free(got);
	} else {
		CHECK(c.n == 1 && strcmp(c.v[0].table, want) == 0);
	}
	th_conflicts_dispose(&c);
}

static void test_merge(void)
{
	static const char *const base[] = { "a", "A", "b", "B", "c", "C", NULL };
	th_error err = { 0 };
	char path[4200];

	dir = t_mkdtemp();
	snprintf(path, sizeof(path), "%s/r.git", dir);
	CHECK_OK(th_repo_create(path, "test", &err), &err);
	CHECK_OK(th_repo_open(&repo, path, 1, &err), &err);
	{
		/* theirs adds d, changes b, removes c; ours changes a */
		const char *const ours[] = { "a", "A2", "b", "B", "c", "C", NULL };
		const char *const theirs[] = { "a", "A", "b", "B3", "d", "D", NULL };
		expect_merge(base, ours, theirs, TH_OK, "a.json=A2;b.json=B3;d.json=D;");
	}
	{
		/* ours removes a, theirs leaves it: removed; both change c alike */
		const char *const ours[] = { "b", "B", "c", "C5", NULL };
		const char *const theirs[] = { "a", "A", "b", "B", "c", "C5", NULL };
		expect_merge(base, ours, theirs, TH_OK, "b.json=B;c.json=C5;");
	}
	{
		/* only theirs changed: taken whole, also when it removed every query */
		const char *const theirs[] = { NULL };
		expect_merge(base, base, theirs, TH_OK, "");
	}
	{
		/* changed differently on both sides, or removed on one and changed on the other */
		const char *const ours[] = { "a", "A", "b", "Bo", "c", "C", NULL };
		const char *const theirs[] = { "a", "A", "b", "Bt", "c", "C", NULL };
		const char *const ours2[] = { "a", "A", "b", "B", NULL };
		const char *const theirs2[] = { "a", "A", "b", "B", "c", "Ct", NULL };
		expect_merge(base, ours, theirs, TH_ECONFLICT, "queries/b");
		expect_merge(base, ours2, theirs2, TH_ECONFLICT, "queries/c");
	}
	{
		/* no common ancestor: both added the same name differently */
		const char *const none[] = { NULL };
		const char *const ours[] = { "x", "X1", NULL };
		const char *const theirs[] = { "x", "X2", "y", "Y", NULL };
		expect_merge(none, ours, theirs, TH_ECONFLICT, "queries/x");
	}
	th_repo_free(repo);
	repo = NULL;
	t_rmdir(dir);
}

int main(void)
{
	th_error err = { 0 };

	if (th_repo_global_init(&err) < 0)
		return 1;
	RUN(test_definition);
	RUN(test_merge);
	th_repo_global_shutdown();
	TH_TEST_END();
}
