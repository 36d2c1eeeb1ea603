/* N x open(O_WRONLY|O_CREAT) + close of one file: the write-open hot path.
 * Usage: wl_open N PATH */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	long n = atol(argv[1]);
	for (long i = 0; i < n; i++) {
		int fd = open(argv[2], O_WRONLY | O_CREAT, 0644);
		if (fd < 0)
			return 1;
		close(fd);
	}
	return 0;
}
