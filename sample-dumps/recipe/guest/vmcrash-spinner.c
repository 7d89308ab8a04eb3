/* vmcrash-spinner: spins in user space forever (task state R). */
int main(void)
{
	volatile unsigned long n = 0;
	for (;;)
		n++;
}
