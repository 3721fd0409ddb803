#include "/var/lib/rust-klp-shadow/kernel/6.12-debug-b5ab11d692e9/linux-source-6.12/samples/livepatch/livepatch-shadow-mod.c"

// Static wrappers

struct dummy * dummy_alloc__extern(void) { return dummy_alloc(); }
void dummy_free__extern(struct dummy *d) { dummy_free(d); }
bool dummy_check__extern(struct dummy *d, unsigned long jiffies) { return dummy_check(d, jiffies); }
