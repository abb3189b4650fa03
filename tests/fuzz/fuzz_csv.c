/* fuzz_csv.c: libFuzzer target for the CSV reader (src/csv.c) and th_utf8_valid.
 *
 * The first byte picks the format (Csv, Psv or Tsv); the rest is the file, read through a
 * descriptor as an upload would be. Every record is read to the end or the first error, and each
 * is checked for what reader.h promises: cells NUL-terminated at their length, NULL cells of length
 * 0, lines that never go backwards. th_utf8_valid is checked against a plain reference decoder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/reader.h"
#include "tablehub/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Well-formed UTF-8 per RFC 3629, the slow obvious way. Returns the offset of the first bad
 * sequence, or len. */
static size_t utf8_ref(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (len - i - 1 < n)
			return i; /* truncated */
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

static int input_fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const formats[] = { "Csv", "Psv", "Tsv" };
	th_reader *csv = NULL;
	th_reader_row row;
	th_error err = { 0 };
	uint64_t last_line = 0;
	size_t bad = SIZE_MAX, ref;
	int valid, rc;
	const th_format *format;

	ref = utf8_ref(data, size);
	valid = th_utf8_valid((const char *)data, size, &bad);
	if (valid != (ref == size) || (!valid && bad != ref))
		abort();

	if (size < 1)
		return 0;
	format = th_format_find(formats[data[0] % 3]);
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

	if (th_reader_open(&csv, format, input_fd, NULL, 0, &err) < 0)
		abort();
	while ((rc = th_reader_next(csv, &row, &err)) == 1) {
		if (row.n == 0 || row.line < last_line || row.line == 0)
			abort();
		last_line = row.line;
		for (size_t i = 0; i < row.n; i++) {
			if (row.cells[i] == NULL) {
				if (row.lens[i] != 0)
					abort();
			} else if (row.cells[i][row.lens[i]] != '\0' || row.lens[i] > size ||
			           !th_utf8_valid(row.cells[i], row.lens[i], NULL)) {
				abort();
			}
		}
	}
	if (rc != 0 && rc != TH_EINVALID)
		abort();
	if (rc == TH_EINVALID && (err.msg[0] == '\0' || err.code != TH_EINVALID))
		abort();
	if (rc == 0 && th_reader_bytes(csv) != size)
		abort(); /* a clean end must have read everything */
	th_reader_close(csv);
	return 0;
}
