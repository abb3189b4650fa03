/* replay.c: runs a fuzz target's LLVMFuzzerTestOneInput over every file of its corpus, without
 * libFuzzer, so ctest (any compiler, under ASan and UBSan in scripts/test) replays the inputs the
 * fuzzers kept and every crash reproducer fixed since (tests/fuzz/corpus/<target>/).
 *
 *   usage: replay_<target> DIR|FILE...
 *
 * Files are run in name order, each from a buffer of exactly its size (so an overread is caught),
 * the way libFuzzer calls the target. A directory that is missing or holds no file fails: an empty
 * corpus would pass without testing anything. A target aborts on a broken invariant and the
 * sanitizers abort on their findings (scripts/test sets abort_on_error=1); a SIGABRT handler then
 * names the input that was running.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The path of the input being run, for on_abort. */
static char current[4096];

static void on_abort(int sig)
{
	static const char head[] = "replay: FAILED on ";

	if (write(2, head, sizeof(head) - 1) < 0 || write(2, current, strlen(current)) < 0 ||
	    write(2, "\n", 1) < 0) {
		/* nothing more to say */
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads the whole of path into a fresh malloc'd buffer (*out, the caller frees; NULL when empty)
 * and its length into *len. Returns 0, or -1 with a message on stderr. */
static int slurp(uint8_t **out, size_t *len, const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	long n;
	int rc = -1;

	*out = NULL;
	*len = 0;
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
		goto cleanup;
	}
	if (n > 0) {
		if ((data = malloc((size_t)n)) == NULL) {
			fprintf(stderr, "replay: out of memory for %s\n", path);
			goto cleanup;
		}
		if (fread(data, 1, (size_t)n, f) != (size_t)n) {
			fprintf(stderr, "replay: short read of %s\n", path);
			goto cleanup;
		}
	}
	*out = data;
	*len = (size_t)n;
	data = NULL;
	rc = 0;
cleanup:
	free(data);
	if (f != NULL)
		fclose(f);
	return rc;
}

/* Runs the target on one file. Returns 0, or -1 if the file cannot be read. */
static int run_file(const char *path)
{
	uint8_t *data;
	size_t len;

	if (slurp(&data, &len, path) < 0)
		return -1;
	snprintf(current, sizeof(current), "%s", path);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs the target on every regular file directly in dir, in name order; *count grows by their
 * number. Returns 0, or -1 with a message on stderr. */
static int run_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0, i;
	int rc = -1;

	if (d == NULL) {
		fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			char **more = realloc(names, (cap = cap ? 2 * cap : 256) * sizeof(*names));

			if (more == NULL)
				goto cleanup;
			names = more;
		}
		if ((names[n] = strdup(e->d_name)) == NULL)
			goto cleanup;
		n++;
	}
	qsort(names, n, sizeof(*names), by_name);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (run_file(path) < 0)
			goto cleanup;
	}
	*count += n;
	rc = 0;
cleanup:
	if (rc < 0 && errno == ENOMEM)
		fprintf(stderr, "replay: out of memory listing %s\n", dir);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;

	signal(SIGABRT, on_abort);
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) < 0 : run_file(argv[i]) < 0)
			return 1;
		if (!S_ISDIR(st.st_mode))
			count++;
	}
	if (count == 0) {
		fprintf(stderr, "replay: no input in the corpus\n");
		return 1;
	}
	printf("replay: %zu inputs, no failure\n", count);
	return 0;
}
