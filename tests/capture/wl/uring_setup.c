/* io_uring_setup through the raw syscall (no liburing needed). */
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	unsigned char params[120]; /* struct io_uring_params */
	memset(params, 0, sizeof(params));
	long fd = syscall(425 /* __NR_io_uring_setup */, 4, params);
	printf("%ld\n", fd);
	return 0;
}
