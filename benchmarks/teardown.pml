/* The ZONE_DEVICE teardown race (scenarios/teardown.py::teardown) in Promela, for SPIN: NU users
 * each drop one reference to a device-private page while the driver unmaps the pgmap.  The
 * same abstraction as teardown.m.in (Murphi): V518=1 follows v5.18 (the free path re-arms the
 * page refcount to 1 and memunmap_pages drops the pgmap's initial reference and the one
 * memremap_pages took for the pages: the memmap can go while users still hold references ->
 * use-after-free); V518=0 follows v6.1 (0dc45ca1ce18: a freed page drops its pgmap reference,
 * so the memmap goes only after the last put: safe).
 *   spin -DV518=1 -DNU=4 -a teardown.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -E
 */
#ifndef NU
#define NU 2
#endif
#ifndef V518
#define V518 0
#endif

byte refcount = NU;    /* one reference per user */
byte pgref = 2;        /* the pgmap's initial reference + the pages' */
bool dying;
bool memmap_gone;
byte frees;

active [NU] proctype user()
{
	bool c;
	/* put_page: page_ref_dec_and_test, one atomic RMW; the page must still exist */
	atomic { assert(!memmap_gone); refcount--; c = (refcount == 0) }
	if
	:: c -> frees++;
#if V518
		refcount = 1            /* free_zone_device_page re-arms the count (v5.18) */
#else
		pgref--                 /* put_dev_pagemap for the freed page (v6.1) */
#endif
	:: else -> skip
	fi
}

active proctype unmap()
{
	dying = true;               /* percpu_ref_kill */
	pgref--;                    /* the initial reference */
#if V518
	pgref--;                    /* put_dev_pagemap_many for the pages (v5.18) */
#endif
	(pgref == 0);               /* wait_for_completion(&pgmap->done) */
	memmap_gone = true          /* arch_remove_memory: the struct pages are gone */
}
