#!/usr/bin/env python3
"""Resource and SASS summary of the attention kernels of sattn modules.

For each variant and architecture: compile with sattn-compile --emit=cubin,
disassemble with cuobjdump, and count per attention kernel the SASS
instructions, HGMMA / HMMA (tensor cores), LDL / STL (local memory) overall
and inside the hot loop (between the first and last HGMMA/HMMA), mbarrier
(SYNCS) and TMA (UTMALDG) instructions, registers and local bytes.

  python3 bench/kernels/sass_report.py --cuobjdump PATH --compile build/tools/sattn-compile \
      examples/*.mlir
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def kernels(sass, res):
    regs = {m.group(1): (m.group(2), m.group(5)) for m in re.finditer(
        r"Function (\w+):\s*\n\s*REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", res)}
    for part in re.split(r"\n\s+Function : ", sass)[1:]:
        name = part.split("\n")[0].strip()
        if "attn" not in name:
            continue
        ops = re.findall(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", part)
        mma = [i for i, o in enumerate(ops) if o.startswith(("HGMMA", "HMMA"))]
        lo, hi = (mma[0], mma[-1]) if mma else (0, -1)
        local = [i for i, o in enumerate(ops) if o.startswith(("LDL", "STL"))]
        count = lambda p: sum(1 for o in ops if o.startswith(p))  # noqa: E731
        r, loc = regs.get(name, ("?", "?"))
        yield dict(kernel=name, instr=len(ops), hgmma=count("HGMMA"), hmma=count("HMMA"),
                   local=len(local), local_loop=sum(1 for i in local if lo <= i <= hi),
                   syncs=count("SYNCS"), tma=count("UTMALDG"), regs=r, local_bytes=loc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cuobjdump", default="cuobjdump")
    ap.add_argument("--compile", default="build/tools/sattn-compile")
    ap.add_argument("--archs", default="sm_90a,sm_80")
    ap.add_argument("variants", nargs="+")
    a = ap.parse_args()
    print("| variant | arch | kernel | SASS | HGMMA | HMMA | LDL+STL (in loop) | SYNCS | TMA "
          "| regs | local B |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for v in a.variants:
            for arch in a.archs.split(","):
                cubin = os.path.join(tmp, "m.cubin")
                subprocess.run([a.compile, v, "--emit=cubin", "--arch=" + arch, "-o", cubin],
                               check=True)
                sass = subprocess.run([a.cuobjdump, "-sass", cubin], check=True,
                                      capture_output=True, text=True).stdout
                res = subprocess.run([a.cuobjdump, "-res-usage", cubin], check=True,
                                     capture_output=True, text=True).stdout
                for k in kernels(sass, res):
                    print(f"| {os.path.basename(v)} | {arch} | {k['kernel']} | {k['instr']} | "
                          f"{k['hgmma']} | {k['hmma']} | {k['local']} ({k['local_loop']}) | "
                          f"{k['syncs']} | {k['tma']} | {k['regs']} | {k['local_bytes']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
