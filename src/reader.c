/* reader.c: the one table of input formats, and dispatch to their readers (see reader.h).
 *
 * The table is written once, as the list TH_FORMATS below, and expanded twice: into declarations
 * of the readers it names (`th_reader_<reader>`, defined in src/<reader>.c) and into the array
 * the look-ups search. So a new format is one new line there; a new reader is also its own file,
 * listed in src/CMakeLists.txt, whose one public symbol the line names:
 *
 *	X("Xlsx", "xlsx", xlsx, .delim = 0)  // src/xlsx.c defines th_reader_xlsx
 *
 * The columns of a line: DoltHub's fileType (names are matched in any case), the extensions that
 * pick it (lower case, space-separated, also accepted as a fileType), the reader, and the
 * reader's options as designated initializers of th_reader_opts (at least one: `.delim = 0` when
 * none applies). The first line is the default format.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tablehub/reader.h"

/* fileType, extensions, reader, options. */
#define TH_FORMATS(X)                                                                              \
	X("Csv", "csv", csv, .delim = ',')                                                         \
	X("Psv", "psv", csv, .delim = '|')                                                         \
	X("Tsv", "tsv", csv, .delim = '\t')                                                        \
	X("Json", "json jsonl ndjson", jsonrows, .delim = 0)                                       \
	X("Xlsx", "xlsx", xlsx, .delim = 0)                                                        \
	X("Sql", "sql", sql, .delim = 0) /* sqlstmt.c: statements, run by src/sqlwrite.c */        \
	/* (every line ends in a backslash, so a new format is one line above this comment) */

#define DECLARE_READER(name, exts, reader, ...) extern const th_reader_type th_reader_##reader;
TH_FORMATS(DECLARE_READER)
#undef DECLARE_READER

static const th_format formats[] = {
#define FORMAT_ENTRY(name, exts, reader, ...) { name, exts, &th_reader_##reader, { __VA_ARGS__ } },
	TH_FORMATS(FORMAT_ENTRY)
#undef FORMAT_ENTRY
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

/* Is `s` (len bytes) one of the space-separated words of `list`, in any case? */
static int in_list(const char *list, const char *s, size_t len)
{
	const char *w = list;

	while (*w) {
		size_t n = strcspn(w, " ");
		if (n == len && strncasecmp(w, s, len) == 0)
			return 1;
		w += n;
		w += strspn(w, " ");
	}
	return 0;
}

const th_format *th_format_find(const char *s)
{
	size_t i, len;

	if (s == NULL || (len = strlen(s)) == 0)
		return NULL;
	for (i = 0; i < NFORMATS; i++)
		if (strcasecmp(formats[i].name, s) == 0 || in_list(formats[i].extensions, s, len))
			return &formats[i];
	return NULL;
}

const th_format *th_format_guess(const char *file_name)
{
	const char *dot = file_name ? strrchr(file_name, '.') : NULL;
	size_t i;

	if (dot != NULL && dot[1] != '\0')
		for (i = 0; i < NFORMATS; i++)
			if (in_list(formats[i].extensions, dot + 1, strlen(dot + 1)))
				return &formats[i];
	return &formats[0];
}

const th_format *th_format_at(size_t i)
{
	return i < NFORMATS ? &formats[i] : NULL;
}

void th_format_names(char *out, size_t size)
{
	size_t i, used = 0;

	if (size == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < NFORMATS && used < size; i++) {
		const char *sep = i == 0 ? "" : i + 1 == NFORMATS ? " or " : ", ";
		int n = snprintf(out + used, size - used, "%s%s", sep, formats[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int th_reader_looks_utf16(const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i, pairs, zeros[2] = { 0, 0 };

	if (n >= 2 && ((p[0] == 0xff && p[1] == 0xfe) || (p[0] == 0xfe && p[1] == 0xff)))
		return 1;
	if (n > 1024)
		n = 1024;
	pairs = n / 2;
	for (i = 0; i < pairs * 2; i++)
		zeros[i & 1] += p[i] == 0;
	/* Text in UTF-8 has no NUL byte; ASCII in UTF-16 has one in every pair, on one side. */
	return pairs >= 2 && (zeros[0] * 2 >= pairs || zeros[1] * 2 >= pairs);
}

int th_reader_open(th_reader **out, const th_format *f, int fd, const char *const *columns,
                   size_t ncolumns, th_error *err)
{
	th_reader_opts opts;

	if (f == NULL)
		f = &formats[0];
	opts = f->opts;
	opts.columns = columns;
	opts.ncolumns = columns ? ncolumns : 0;
	return f->reader->open(out, fd, &opts, err);
}

int th_reader_open_with(th_reader **out, const th_format *f, int fd, const th_reader_opts *given,
                        th_error *err)
{
	th_reader_opts opts;

	if (f == NULL)
		f = &formats[0];
	opts = f->opts;
	opts.columns = given->columns;
	opts.ncolumns = given->columns ? given->ncolumns : 0;
	opts.sheet = given->sheet;
	return f->reader->open(out, fd, &opts, err);
}

int th_reader_next(th_reader *r, th_reader_row *row, th_error *err)
{
	return r->type->next(r, row, err);
}

void th_reader_error_pos(const th_reader *r, uint64_t *line, uint32_t *column)
{
	r->type->error_pos(r, line, column);
}

uint64_t th_reader_bytes(const th_reader *r)
{
	return r->type->bytes(r);
}

void th_reader_close(th_reader *r)
{
	if (r != NULL)
		r->type->close(r);
}
