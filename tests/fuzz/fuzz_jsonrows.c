/* fuzz_jsonrows.c: libFuzzer target for the JSON row reader (src/jsonrows.c).
 *
 * The first byte chooses between the first row's keys and three given columns as the header; the
 * rest is the file, read through a descriptor as an upload would be. Every record is read to the
 * end or the first error and checked for what reader.h and jsonrows.c promise: a header first,
 * every row as wide as the header, cells NUL-terminated at their length and valid UTF-8, NULL cells
 * of length 0, lines that never go backwards, errors only TH_EINVALID with a place.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/reader.h"
#include "tablehub/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int input_fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const given[] = { "id", "name", "v" };
	th_reader *r = NULL;
	th_reader_row row;
	th_error err = { 0 };
	uint64_t last_line = 0;
	size_t width = 0, records = 0;
	int rc, fixed;

	if (size < 1)
		return 0;
	fixed = data[0] & 1;
	data++, size--;
	if (input_fd < 0) {
		FILE *f = tmpfile();
		if (f == NULL)
			abort();
		input_fd = fileno(f); /* kept open for the life of the process */
	}
	if (ftruncate(input_fd, 0) != 0 || pwrite(input_fd, data, size, 0) != (ssize_t)size ||
	    lseek(input_fd, 0, SEEK_SET) != 0)
		abort();
	if (th_reader_open(&r, th_format_find("Json"), input_fd, fixed ? given : NULL, 3, &err) < 0)
		abort();
	while ((rc = th_reader_next(r, &row, &err)) == 1) {
		if (records++ == 0) {
			width = row.n; /* the header */
			if (width == 0 || (fixed && width != 3))
				abort();
		} else if (row.n != width) {
			abort();
		}
		if (row.line < last_line || row.line == 0)
			abort();
		last_line = row.line;
		for (size_t i = 0; i < row.n; i++) {
			if (row.cells[i] == NULL) {
				if (row.lens[i] != 0 || records == 1)
					abort(); /* header names are never NULL */
			} else if (row.cells[i][row.lens[i]] != '\0' ||
			           !th_utf8_valid(row.cells[i], row.lens[i], NULL)) {
				abort();
			}
		}
	}
	if (rc != 0 && rc != TH_EINVALID)
		abort();
	if (rc == TH_EINVALID && (err.msg[0] == '\0' || err.line == 0 || err.column == 0))
		abort();
	if (records == 1)
		abort(); /* a header is always followed by the row it came from */
	th_reader_close(r);
	return 0;
}
