"""The standard DPOR benchmark programs, written as zonedev scenarios with sync primitives.

Each is the program from the DPOR literature (see docs/checker.md for sources); an optimal DPOR
explores exactly one execution per Mazurkiewicz trace:

    readers(N)     2^N                  (one writer, N readers; Optimal-DPOR, POPL'14)
    lastzero(N)    (N+3) * 2^(N-2)      (Optimal-DPOR, POPL'14)
    indexer(N)     1 for N <= 11, 2^(3(N-11))   (Flanagan-Godefroid, POPL'05)
    filesystem(N)  2^(N-13) for 14 <= N <= 26   (Flanagan-Godefroid, POPL'05)
    refcount(N)    (3N+1)! / 6^N            (every step is an RMW of one counter: no reduction)

    zonedev check scenarios/dpor_benchmarks.py::readers -p n=8

Each declares ``mode="dpor"``: the counts above are DPOR's (``auto`` would run the stateful
search with symmetry on readers' identical readers and refcount's identical workers).
"""

import zonedev
from zonedev.sync import Atomic, Lock, Var


@zonedev.scenario(params={"n": 3}, kernel=False, mode="dpor")
def readers(k, n):
    """One writer ``x = 42``, n readers ``a = x``."""
    x = Var(0, "x")

    def writer():
        x.set(42)

    def reader():
        x.get()

    return zonedev.Run({"writer": writer, **{f"reader{i}": reader for i in range(n)}})


@zonedev.scenario(params={"n": 3}, kernel=False, mode="dpor")
def lastzero(k, n):
    """Thread 0 scans ``array`` down for the last zero; thread j sets array[j] = array[j-1] + 1."""
    array = [Var(0, f"array[{i}]") for i in range(n + 1)]

    def scanner():
        i = n
        while array[i].get() != 0:
            i -= 1

    def setter(j):
        def run():
            array[j].set(array[j - 1].get() + 1)
        return run

    threads = {"scan": scanner}
    for j in range(1, n + 1):
        threads[f"set{j}"] = setter(j)
    return zonedev.Run(threads)


SIZE = 128
MAX = 4


@zonedev.scenario(params={"n": 12}, kernel=False, mode="dpor")
def indexer(k, n):
    """n threads insert 4 values each into a 128-slot hash table by linear probing; the
    compare-and-swap on a slot is done under that slot's lock."""
    table = [Var(0, f"table[{s}]") for s in range(SIZE)]
    locks = [Lock(f"lock[{s}]") for s in range(SIZE)]

    def cas(s, w):
        var, lock = table[s], locks[s]
        lock.lock()
        ok = var.get() == 0
        if ok:
            var.set(w)
        lock.unlock()
        return ok

    def inserter(tid):
        def run():
            for m in range(1, MAX + 1):
                w = m * 11 + tid
                h = w * 7 % SIZE
                while not cas(h, w):
                    h = (h + 1) % SIZE
        return run

    return zonedev.Run({f"t{tid}": inserter(tid) for tid in range(n)})


NUMBLOCKS = 26
NUMINODE = 32


@zonedev.scenario(params={"n": 14}, kernel=False, mode="dpor")
def filesystem(k, n):
    """32 inodes and 26 blocks, each with a lock; thread i allocates a block for inode i,
    starting at block 2i mod 26 and probing on when it is busy."""
    inode = [Var(0, f"inode[{i}]") for i in range(NUMINODE)]
    locki = [Lock(f"locki[{i}]") for i in range(NUMINODE)]
    busy = [Var(False, f"busy[{b}]") for b in range(NUMBLOCKS)]
    lockb = [Lock(f"lockb[{b}]") for b in range(NUMBLOCKS)]

    def thread(tid):
        def run():
            i = tid % NUMINODE
            locki[i].lock()
            if inode[i].get() == 0:
                b = i * 2 % NUMBLOCKS
                while True:
                    lockb[b].lock()
                    if not busy[b].get():
                        busy[b].set(True)
                        inode[i].set(b + 1)
                        lockb[b].unlock()
                        break
                    lockb[b].unlock()
                    b = (b + 1) % NUMBLOCKS
            locki[i].unlock()
        return run

    return zonedev.Run({f"t{tid}": thread(tid) for tid in range(n)})


@zonedev.scenario(params={"n": 2}, kernel=False, mode="dpor")
def refcount(k, n):
    """An owner dropping its reference, and n workers each taking two references and dropping
    them, all on one counter (atomic RMWs, all dependent)."""
    count = Atomic(1, "count")

    def worker():
        count.add_return(1, "get")
        count.add_return(1, "get")
        count.sub_return(2, "put")

    def owner():
        count.sub_return(1, "put")

    return zonedev.Run({"owner": owner, **{f"worker{i}": worker for i in range(n)}})
