/* types.c: the column types and what text each can hold (see include/tablehub/table.h).
 *
 * Inference classifies every non-NULL value of a column into a set of types it could be stored as
 * and ANDs the sets; th_type_pick() then takes the most specific survivor. The sets nest where a
 * value of one type is also a value of another (an integer is also a real, a date also a
 * datetime), so a column of 1 and 2.5 is real and a column of dates and datetimes is datetime.
 * The grammars are strict on purpose: whatever is accepted here is stored verbatim and must load
 * into SQLite and round-trip through JSON unchanged ("007" would lose its zeros, so it is text).
 * One exception: a real written without its leading zero (".097", "-.5", as spreadsheets and R
 * print them) is a number to any user; the row codec stores it with the zero ("0.097"), the same
 * double. "+1" (a phone number's sign), "1." (a list's numbering) and "007" stay text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tablehub/value.h"

static const char *const type_names[] = { NULL,   "integer",  "real", "boolean",
	                                  "date", "datetime", "text" };

const char *th_type_name(th_type t)
{
	if (t < TH_TYPE_INTEGER || t > TH_TYPE_TEXT)
		return "unknown";
	return type_names[t];
}

th_type th_type_parse(const char *name)
{
	int t;

	if (name == NULL)
		return 0;
	for (t = TH_TYPE_INTEGER; t <= TH_TYPE_TEXT; t++) {
		if (strcmp(name, type_names[t]) == 0)
			return (th_type)t;
	}
	return 0;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* -?(0|[1-9][0-9]*) that fits in int64. */
static int is_integer(const char *s, size_t len)
{
	static const char max[] = "9223372036854775807", min[] = "9223372036854775808";
	size_t i = 0, ndig;
	int neg = 0;

	if (i < len && s[i] == '-') {
		neg = 1;
		i++;
	}
	ndig = len - i;
	if (ndig == 0 || (s[i] == '0' && ndig > 1))
		return 0;
	for (size_t k = i; k < len; k++) {
		if (!is_digit(s[k]))
			return 0;
	}
	if (ndig < 19)
		return 1;
	if (ndig > 19)
		return 0;
	return memcmp(s + i, neg ? min : max, 19) <= 0;
}

/* The JSON number grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?, finite as a double. Integers
 * match too; the caller decides whether a plain integer may be real. *plain is set when there is
 * neither fraction nor exponent. */
static int is_json_number(const char *s, size_t len, int *plain)
{
	size_t i = 0, start;
	int frac = 0, exp = 0;

	if (i < len && s[i] == '-')
		i++;
	if (i >= len)
		return 0;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < len && is_digit(s[i]))
			i++;
	} else {
		return 0;
	}
	if (i < len && s[i] == '.') {
		start = ++i;
		while (i < len && is_digit(s[i]))
			i++;
		if (i == start)
			return 0;
		frac = 1;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		start = i;
		while (i < len && is_digit(s[i]))
			i++;
		if (i == start)
			return 0;
		exp = 1;
	}
	if (i != len)
		return 0;
	*plain = !frac && !exp;
	if (exp || len > 300) {
		/* Could overflow to infinity, which neither JSON nor the key encoding can hold. */
		char tmp[401];
		if (len >= sizeof(tmp))
			return 0;
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		if (!isfinite(strtod(tmp, NULL)))
			return 0;
	}
	return 1;
}

/* A real without its leading zero: -?\.[0-9]+([eE][+-]?[0-9]+)?, finite. */
static int is_bare_fraction(const char *s, size_t len)
{
	char tmp[404];
	size_t i = 0;
	int plain;

	if (i < len && s[i] == '-')
		i++;
	if (i + 1 >= len || s[i] != '.' || !is_digit(s[i + 1]) || len + 1 >= sizeof(tmp))
		return 0;
	/* With the zero put back it must be a JSON number. */
	memcpy(tmp, s, i);
	tmp[i] = '0';
	memcpy(tmp + i + 1, s + i, len - i);
	return is_json_number(tmp, len + 1, &plain);
}

static int is_boolean(const char *s, size_t len)
{
	return (len == 4 && strncasecmp(s, "true", 4) == 0) ||
	       (len == 5 && strncasecmp(s, "false", 5) == 0);
}

/* Parse n digits at s into *v. */
static int digits(const char *s, size_t n, int *v)
{
	int x = 0;

	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return 0;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return 1;
}

/* YYYY-MM-DD with a real calendar day, in s[0..10). */
static int is_date_prefix(const char *s, size_t len)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d, dim;

	if (len < 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m) ||
	    !digits(s + 8, 2, &d))
		return 0;
	if (m < 1 || m > 12 || d < 1)
		return 0;
	dim = mdays[m - 1];
	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		dim = 29;
	return d <= dim;
}

/* HH:MM:SS[.frac][Z|+HH:MM|-HH:MM] filling s[0..len) exactly. */
static int is_time(const char *s, size_t len)
{
	int h, m, sec;
	size_t i = 8;

	if (len < 8 || s[2] != ':' || s[5] != ':' || !digits(s, 2, &h) || !digits(s + 3, 2, &m) ||
	    !digits(s + 6, 2, &sec) || h > 23 || m > 59 || sec > 59)
		return 0;
	if (i < len && s[i] == '.') {
		size_t start = ++i;
		while (i < len && is_digit(s[i]))
			i++;
		if (i == start)
			return 0;
	}
	if (i == len)
		return 1;
	if (s[i] == 'Z')
		return i + 1 == len;
	if (s[i] == '+' || s[i] == '-') {
		if (len - i != 6 || s[i + 3] != ':' || !digits(s + i + 1, 2, &h) ||
		    !digits(s + i + 4, 2, &m) || h > 23 || m > 59)
			return 0;
		return 1;
	}
	return 0;
}

unsigned th_type_classify(const char *s, size_t len)
{
	unsigned mask = TH_TYPEBIT(TH_TYPE_TEXT);
	int plain = 0;

	if (len == 0)
		return mask;
	if (s[0] == '.' || (s[0] == '-' && len > 1 && s[1] == '.')) {
		if (is_bare_fraction(s, len))
			mask |= TH_TYPEBIT(TH_TYPE_REAL);
	} else if (is_digit(s[0]) || s[0] == '-') {
		if (is_integer(s, len))
			mask |= TH_TYPEBIT(TH_TYPE_INTEGER) | TH_TYPEBIT(TH_TYPE_REAL);
		else if (is_json_number(s, len, &plain) && !plain)
			mask |= TH_TYPEBIT(TH_TYPE_REAL); /* an int64 overflow stays text */
		if (len == 10 && is_date_prefix(s, len))
			mask |= TH_TYPEBIT(TH_TYPE_DATE) | TH_TYPEBIT(TH_TYPE_DATETIME);
		else if (len >= 19 && is_date_prefix(s, len) && (s[10] == 'T' || s[10] == ' ') &&
		         is_time(s + 11, len - 11))
			mask |= TH_TYPEBIT(TH_TYPE_DATETIME);
	} else if (is_boolean(s, len)) {
		mask |= TH_TYPEBIT(TH_TYPE_BOOLEAN);
	}
	return mask;
}

th_type th_type_pick(unsigned mask)
{
	/* No value is both a number and a boolean, so the full set means no value was seen. */
	if ((mask & TH_TYPEMASK_ALL) == TH_TYPEMASK_ALL)
		return TH_TYPE_TEXT;
	if (mask & TH_TYPEBIT(TH_TYPE_INTEGER))
		return TH_TYPE_INTEGER;
	if (mask & TH_TYPEBIT(TH_TYPE_REAL))
		return TH_TYPE_REAL;
	if (mask & TH_TYPEBIT(TH_TYPE_BOOLEAN))
		return TH_TYPE_BOOLEAN;
	if (mask & TH_TYPEBIT(TH_TYPE_DATE))
		return TH_TYPE_DATE;
	if (mask & TH_TYPEBIT(TH_TYPE_DATETIME))
		return TH_TYPE_DATETIME;
	return TH_TYPE_TEXT;
}

size_t th_real_format(char out[TH_REAL_TEXT_MAX], double d)
{
	int prec, n = 0;
	char *e;

	if (isnan(d))
		return (size_t)snprintf(out, TH_REAL_TEXT_MAX, "NaN");
	if (isinf(d))
		return (size_t)snprintf(out, TH_REAL_TEXT_MAX, d < 0 ? "-Inf" : "Inf");
	/* %.15g is exact for every decimal of up to 15 digits; 17 digits always read back. */
	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(out, TH_REAL_TEXT_MAX, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	/* "1e-07" -> "1e-7", as JSON writers and most CSVs have it */
	if ((e = strchr(out, 'e')) != NULL) {
		char *digits = e + 2, *p = digits;
		while (*p == '0' && p[1] != '\0')
			p++;
		memmove(digits, p, strlen(p) + 1);
		n -= (int)(p - digits);
	}
	return (size_t)n;
}
