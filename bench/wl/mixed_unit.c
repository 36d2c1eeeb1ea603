/* A small translation unit for the mixed (compile) workload. */
#include <stdio.h>
#include <string.h>

int unit_fn(const char *s)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s-%zu", s, strlen(s));
	return (int)strlen(buf);
}
