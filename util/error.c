/* error.c: setting and naming th_error values (see include/tablehub/error.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tablehub/error.h"

/* The format attribute lets the compiler check fmt at every caller's th_error_set* instead. */
TH_PRINTF(3, 0) static void set_va(th_error *err, th_code code, const char *fmt, va_list ap)
{
	err->code = code;
	err->line = 0;
	err->column = 0;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int th_error_set(th_error *err, th_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	va_start(ap, fmt);
	set_va(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int th_error_os(th_error *err, int e, const char *action, const char *name)
{
	if (e == ENOSPC || e == EDQUOT)
		return th_error_set(
		        err, TH_ENOSPC,
		        "the disk is full: cannot %s '%s'; try again once there is free space",
		        action, name);
	return th_error_set(err, TH_ESTORE, "cannot %s '%s': %s", action, name, strerror(e));
}

int th_error_set_at(th_error *err, th_code code, uint64_t line, uint32_t column, const char *fmt,
                    ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	va_start(ap, fmt);
	set_va(err, code, fmt, ap);
	va_end(ap);
	err->line = line;
	err->column = column;
	return code;
}

void th_error_clear(th_error *err)
{
	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
}

const char *th_code_name(int code)
{
	switch (code) {
	case TH_OK:
		return "OK";
	case TH_ENOTFOUND:
		return "ENOTFOUND";
	case TH_EEXISTS:
		return "EEXISTS";
	case TH_EINVALID:
		return "EINVALID";
	case TH_ECONFLICT:
		return "ECONFLICT";
	case TH_EBUSY:
		return "EBUSY";
	case TH_ENOMEM:
		return "ENOMEM";
	case TH_ESTORE:
		return "ESTORE";
	case TH_ETOOBIG:
		return "ETOOBIG";
	case TH_EAUTH:
		return "EAUTH";
	case TH_ELIMIT:
		return "ELIMIT";
	case TH_EFORBIDDEN:
		return "EFORBIDDEN";
	case TH_ENOSPC:
		return "ENOSPC";
	default:
		return "ERROR";
	}
}
