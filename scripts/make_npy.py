#!/usr/bin/env python3
"""Writes .npy test inputs without numpy (so the lit suite needs only python3).

  make_npy.py OUT.npy SHAPE [--dtype f4] [--seed N] [--fortran] [--truncate N]
              [--values a,b,c] [--range LO,HI] [--big-endian] [--garbage]

SHAPE is comma separated (e.g. 1,4,100,64). Values are N(0,1) from a seeded
generator unless --values gives them (repeated to fill); integer dtypes
draw uniformly from [0, 100), or from [LO, HI] with --range (e.g. a block
list: --dtype i4 --range=-1,7). --truncate drops the
last N bytes; --garbage writes bytes that are not an .npy file at all.
"""
import argparse
import random
import struct

CODES = {"f2": "e", "f4": "f", "f8": "d", "i4": "i", "i8": "q", "u1": "B"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("shape")
    ap.add_argument("--dtype", default="f4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fortran", action="store_true")
    ap.add_argument("--big-endian", action="store_true")
    ap.add_argument("--truncate", type=int, default=0)
    ap.add_argument("--values")
    ap.add_argument("--range")
    ap.add_argument("--garbage", action="store_true")
    a = ap.parse_args()
    if a.garbage:
        with open(a.out, "wb") as f:
            f.write(bytes(range(256)) * 4)
        return
    shape = [int(s) for s in a.shape.split(",") if s]
    n = 1
    for s in shape:
        n *= s
    rng = random.Random(a.seed)
    if a.values:
        base = [float(x) for x in a.values.split(",")]
        vals = [base[i % len(base)] for i in range(n)]
    elif a.dtype.startswith("f"):
        vals = [rng.gauss(0.0, 1.0) for _ in range(n)]
    elif a.range:
        lo, hi = (int(x) for x in a.range.split(","))
        vals = [rng.randint(lo, hi) for _ in range(n)]
    else:
        vals = [rng.randrange(0, 100) for _ in range(n)]
    code = CODES[a.dtype]
    if not a.dtype.startswith("f"):
        vals = [int(v) for v in vals]
    order = ">" if a.big_endian else "<"
    descr = ("|" if a.dtype == "u1" else order) + a.dtype
    tup = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if a.fortran else "False", tup)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    data = struct.pack(order + code * n, *vals)
    blob = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data
    if a.truncate:
        blob = blob[: -a.truncate]
    with open(a.out, "wb") as f:
        f.write(blob)


if __name__ == "__main__":
    main()
