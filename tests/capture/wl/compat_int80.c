/* Two ia32 syscalls through int $0x80 from a 64-bit process (build with -no-pie):
 * invisible to x86-64 syscall tracepoints, flagged once per process by logira. */
#include <stdio.h>

static long int80(long nr)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
	return ret;
}

int main(void)
{
	long a = int80(20); /* ia32 getpid */
	long b = int80(20);
	printf("%ld %ld\n", a, b);
	return 0;
}
