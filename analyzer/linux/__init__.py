"""Linux guests: finding the kernel's page tables, and (through drgn) its
tasks, stacks, log and modules."""
