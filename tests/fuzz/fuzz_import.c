/* fuzz_import.c: libFuzzer target for a whole import (src/import.c): CSV reading, type
 * inference, spill files, sorting, key checks, chunking and the commit.
 *
 * One repository per process in a temporary directory. The first input byte picks the operation
 * (create a new table, keyless or keyed on column "a", or update/replace/append into a table
 * "fixed" made at start-up with columns a integer (key) and b text); the rest is the CSV file.
 * Any result is acceptable, but a failure must leave the branch where it was, a success must move
 * it to the reported commit, and no spill file may be left behind. Keep inputs small
 * (-max_len=4096): every success writes objects to disk.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/import.h"
#include "tablehub/repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key of the keyed tables: static, as th_import_fd reads it after the block that sets it. */
static const char *const pk_a[] = { "a" };
static char dir[64], spill[96];
static th_repo *repo;
static int input_fd = -1;
static unsigned long runs;

static void cleanup(void)
{
	char cmd[128];

	th_repo_free(repo);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_import: cannot remove %s\n", dir);
}

static void load(const char *bytes, size_t len)
{
	if (ftruncate(input_fd, 0) != 0 || pwrite(input_fd, bytes, len, 0) != (ssize_t)len ||
	    lseek(input_fd, 0, SEEK_SET) != 0)
		abort();
}

static void setup(void)
{
	static const char fixed[] = "a,b\n1,x\n2,\n3,\"z\"\n";
	th_import_opts o;
	th_import_result r;
	th_error err;
	char path[128];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/th-fuzz-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL || th_repo_global_init(&err) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/r.git", dir);
	snprintf(spill, sizeof(spill), "%s/spill", dir);
	if (th_repo_create(path, "fuzz", &err) < 0 || th_repo_open(&repo, path, 1, &err) < 0 ||
	    mkdir(spill, 0700) != 0)
		abort();
	atexit(cleanup);
	if ((f = tmpfile()) == NULL)
		abort();
	input_fd = fileno(f); /* kept open for the life of the process */

	memset(&o, 0, sizeof(o));
	o.table = "fixed";
	o.op = TH_OP_CREATE;
	o.pk = (const char *const[]){ "a" };
	o.npk = 1;
	o.format = th_format_find("Csv");
	o.branch = "main";
	o.tmpdir = spill;
	load(fixed, sizeof(fixed) - 1);
	if (th_import_fd(&r, repo, input_fd, &o, &err) < 0) {
		fprintf(stderr, "fuzz_import: %s\n", err.msg);
		abort();
	}
}

/* Is the spill directory empty? */
static int spill_empty(void)
{
	DIR *d = opendir(spill);
	struct dirent *e;
	int empty = 1;

	if (d == NULL)
		abort();
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	}
	closedir(d);
	return empty;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const th_import_op ops[] = { TH_OP_CREATE, TH_OP_CREATE, TH_OP_UPDATE, TH_OP_REPLACE,
		                            TH_OP_APPEND };
	th_import_opts o;
	th_import_result r;
	th_error err = { 0 };
	th_oid before, after;
	char table[32];
	int rc;

	if (repo == NULL)
		setup();
	if (size < 1)
		return 0;
	memset(&o, 0, sizeof(o));
	o.op = ops[data[0] % 5];
	if (o.op == TH_OP_CREATE) {
		snprintf(table, sizeof(table), "t%lu", runs++);
		o.table = table;
		if (data[0] % 5 == 1) {
			o.pk = pk_a;
			o.npk = 1;
		}
	} else {
		o.table = "fixed";
	}
	o.format = th_format_find("Csv");
	o.branch = "main";
	o.tmpdir = spill;
	o.mem_budget = 1024; /* several sorted runs even for small inputs */
	load((const char *)data + 1, size - 1);

	if (th_repo_branch_get(&before, repo, "main", &err) < 0)
		abort();
	memset(&r, 0, sizeof(r));
	rc = th_import_fd(&r, repo, input_fd, &o, &err);
	if (th_repo_branch_get(&after, repo, "main", &err) < 0)
		abort();
	if (rc == TH_OK) {
		if (!th_oid_equal(&after, &r.commit) || th_oid_equal(&after, &before))
			abort();
	} else {
		if (!th_oid_equal(&after, &before) || err.msg[0] == '\0')
			abort();
		/* Bad input is the client's fault; anything else would be a bug here. */
		if (rc != TH_EINVALID && rc != TH_ENOTFOUND)
			abort();
	}
	if (!spill_empty())
		abort();
	return 0;
}
