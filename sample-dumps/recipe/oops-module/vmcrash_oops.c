// SPDX-License-Identifier: GPL-2.0
/*
 * vmcrash_oops: a module whose init dereferences a NULL pointer, so a sample
 * dump has an oops inside a module (with panic_on_oops=1 it becomes a panic).
 * Load it pinned to a CPU: `taskset -c 1 insmod vmcrash_oops.ko`.
 */
#include <linux/module.h>
#include <linux/kernel.h>

struct vmcrash_victim {
	unsigned long magic;
	unsigned long value;
};

static struct vmcrash_victim *vmcrash_victim_ptr;

static noinline unsigned long vmcrash_oops_read(struct vmcrash_victim *v)
{
	return READ_ONCE(v->value);	/* v is NULL: the oops happens here */
}

static int __init vmcrash_oops_init(void)
{
	pr_info("vmcrash_oops: about to dereference NULL on CPU %d\n",
		raw_smp_processor_id());
	return (int)vmcrash_oops_read(READ_ONCE(vmcrash_victim_ptr));
}

module_init(vmcrash_oops_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmcrash sample: NULL dereference in module init");
