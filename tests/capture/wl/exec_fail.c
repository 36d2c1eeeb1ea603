/* execve(argv[1], argv+1) and report the errno (exit 0 when it failed as expected). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	execve(argv[1], argv + 1, (char *[]){ 0 });
	printf("%d\n", errno);
	return 0;
}
