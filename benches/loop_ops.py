#!/usr/bin/env python3
"""Counts the instructions of the innermost loops of the x86 colour kernels.

    python3 benches/loop_ops.py LIBRARY [FUNCTION...]

LIBRARY is a build of the library with its symbols, for example the rlib of

    CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_LTO=false \\
        cargo build --release --lib --target-dir /tmp/symbols
    python3 benches/loop_ops.py /tmp/symbols/release/deps/libthroatseg-*.rlib

FUNCTION names a function by a part of its mangled name; the default is the two
AVX-512 kernels. The script disassembles with objdump, finds the loops that
contain no other loop, and sorts their instructions by the units that issue
them, as `examples/fma_ports.rs` measures them on a Zen 4 core:

- fma: FMAs, multiplies and VNNI dot products, one 512-bit operation per cycle;
- other: the remaining vector and mask operations, on other units, one per
  cycle, except vreduceps and vscalefps, which count twice (half rate);
- memory: loads and stores that are moves; loads folded into other
  instructions are not counted apart;
- moves: register-to-register vector moves, which the renamer removes;
- scalar: everything else (loop counters, branches).

The larger of fma and other, per loop and summed, is a lower bound on the
cycles of one pass through the loop.
"""

import re
import subprocess
import sys

DEFAULT_FUNCTIONS = ["transfer_avx512", "lab_sums_avx512"]
FMA_UNIT = ("vfmadd", "vfmsub", "vfnmadd", "vfnmsub", "vmulps", "vpdpwssd", "vpdpbusd")
HALF_RATE = ("vreduceps", "vscalefps")


def functions(library, names):
    """Yields (symbol, [(address, instruction)]) for each function whose
    symbol contains one of `names` and is not a closure."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-M", "intel", library],
        check=True, capture_output=True, text=True,
    ).stdout
    symbol, body = None, []
    for line in listing.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if header:
            if symbol:
                yield symbol, body
            name = header.group(1)
            matches = any(n in name for n in names) and "closure" not in name
            symbol, body = (name if matches else None), []
            continue
        instruction = re.match(r"\s+([0-9a-f]+):\s+(.*)", line)
        if symbol and instruction:
            body.append((int(instruction.group(1), 16), instruction.group(2).strip()))
    if symbol:
        yield symbol, body


def innermost_loops(body):
    """Returns the (first, last) addresses of the loops that contain no other
    loop. A backward jump to a target inside the function closes a loop."""
    addresses = {address for address, _ in body}
    loops = []
    for address, text in body:
        jump = re.match(r"j\w+\s+([0-9a-f]+)", text)
        if jump:
            target = int(jump.group(1), 16)
            if target <= address and target in addresses:
                loops.append((target, address))
    return [
        (first, last) for first, last in loops
        if not any((f, l) != (first, last) and first <= f and l <= last for f, l in loops)
    ]


def unit_of(text):
    op = text.split()[0]
    args = text[len(op):]
    if op.startswith(FMA_UNIT):
        return "fma", 1
    if re.match(r"vmov(ap|dq|up)", op) and "PTR" not in args:
        return "moves", 1
    if op.startswith(("vmov", "kmov")) and "PTR" in args:
        return "memory", 1
    if re.search(r"[xyz]mm|\bk\d", args) or op.startswith("k"):
        return "other", 2 if op in HALF_RATE else 1
    return "scalar", 1


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: benches/loop_ops.py LIBRARY [FUNCTION...]")
    library, names = sys.argv[1], sys.argv[2:] or DEFAULT_FUNCTIONS
    found = False
    for symbol, body in functions(library, names):
        found = True
        print(symbol)
        for first, last in innermost_loops(body):
            counts = {"fma": 0, "other": 0, "memory": 0, "moves": 0, "scalar": 0}
            for address, text in body:
                if first <= address <= last:
                    unit, weight = unit_of(text)
                    counts[unit] += weight
            fields = "  ".join(f"{unit} {count:3}" for unit, count in counts.items())
            print(f"  loop {first:5x}-{last:5x}  {fields}")
    if not found:
        sys.exit(f"loop_ops.py: no function matching {names} in {library}; build it with its symbols")


if __name__ == "__main__":
    main()
