/* vmcrash-trigger: writes 'c' to /proc/sysrq-trigger, i.e. panics the kernel
 * via sysrq (the panicking task's comm is then "vmcrash-trigger"). */
#include <fcntl.h>
#include <unistd.h>
int main(void)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY);
	if (fd < 0)
		return 1;
	sync();
	write(fd, "c", 1);
	return 2;	/* not reached */
}
