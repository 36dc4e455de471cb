#!/usr/bin/env python3
"""Looks in SASS for registers touched while a wgmma (HGMMA) that reads or
writes them may still be running: its accumulators and, for the register-A
form, its four A registers, from issue until the WARPGROUP.DEPBAR that
retires its group (groups end at the HGMMA marked gsb0; `DEPBAR.LE gsb0,
N` leaves the N newest pending). Such an access is undefined behaviour
(PTX ISA, wgmma.wait_group) and shows as irreproducible results.

The scan follows the instructions in address order (no control flow), so
it is a screen, not a proof: a hazard carried around a loop's back edge is
not seen. Used on the backward's overlapped schedule
(docs/performance.md, 2026-12-07): no hazard in 12 instantiations.

  cuobjdump -sass module.cubin > module.sass   # cuobjdump: CUDA toolkit, or
  python3 bench/kernels/wgmma_hazards.py module.sass   # PyPI nvidia-cuda-cuobjdump
"""
import re
import sys


def functions(path):
    """{kernel name: [(address, instruction text)]} of a cuobjdump -sass file."""
    out, cur = {}, None
    for line in open(path):
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            cur = out.setdefault(m.group(1), [])
            continue
        m = re.search(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
        if m and cur is not None:
            cur.append((int(m.group(1), 16), m.group(2)))
    return out


def regs(text):
    """Registers named in an operand text (R2.64 counts R2 and R3)."""
    rs = {int(x) for x in re.findall(r"\bR(\d+)\b", text)}
    return rs | {int(x) + 1 for x in re.findall(r"\bR(\d+)\.64", text)}


def hgmma_regs(ins):
    """Accumulators (N/2 fp32 per thread for m64nN) and register A of an HGMMA."""
    m = re.match(r"HGMMA\.64x(\d+)x\d+\.\S+\s+(.*)", ins)
    ops = [o.strip() for o in m.group(2).split(",")]
    acc = min(regs(ops[0]))
    used = set(range(acc, acc + int(m.group(1)) // 2))
    if ops[1].startswith("R"):
        a = min(regs(ops[1]))
        used |= set(range(a, a + 4))
    return used


def hazards(instructions):
    groups, open_group, found = [], set(), []
    for addr, ins in instructions:
        body = re.sub(r"^@!?U?P\w*\s+", "", ins)
        op = body.split()[0] if body.split() else ""
        if op.startswith("HGMMA"):
            open_group |= hgmma_regs(body)
            if "gsb0" in body:
                groups.append(open_group)
                open_group = set()
            continue
        m = re.match(r"WARPGROUP\.DEPBAR\.LE gsb0, 0x([0-9a-f]+)", body)
        if m:
            keep = int(m.group(1), 16)
            groups = groups[len(groups) - keep:] if keep else []
            continue
        live = set().union(open_group, *groups)
        hit = live & regs(body.split(None, 1)[1]) if live and " " in body else set()
        if hit and not op.startswith(("BRA", "BAR", "WARPSYNC")):
            found.append((addr, ins, sorted(hit)))
    return found


def main(paths):
    bad = 0
    for path in paths:
        for name, ins in functions(path).items():
            h = hazards(ins)
            bad += len(h)
            print("%s %s: %d instructions, %d HGMMA, %d hazards" %
                  (path, name, len(ins), sum("HGMMA" in i for _, i in ins), len(h)))
            for addr, text, hit in h[:10]:
                print("   %#06x  %-70s  R%s" % (addr, text[:70], hit[:6]))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
