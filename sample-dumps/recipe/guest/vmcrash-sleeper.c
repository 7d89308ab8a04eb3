/* vmcrash-sleeper: sleeps forever (task state S, in hrtimer_nanosleep). */
#include <time.h>
int main(void)
{
	struct timespec ts = { .tv_sec = 1000, .tv_nsec = 0 };
	for (;;)
		nanosleep(&ts, 0);
}
