#!/usr/bin/env python3
"""Writes one variant per listed instantiation into DIR (argv[1]).

The list spans every device template and the constants that change code:
dtype, head dim, GQA ratio, masks, block sets per head and per group,
fused block patterns, LSE, top-k / cumulative rules, forced blocks, budgets
shared by the flattest head, pooling kinds, unions and intersections,
block sets given as input (blocks_from_list).
"""
import os
import sys

out = sys.argv[1]
cases = []


def tensor(h, d, dt, s="?"):
    return f"tensor<?x{h}x{s}x{d}x{dt}>"


def attention(name, dt="bf16", d=64, hq=8, hkv=2, attrs="causal", lse=False):
    q, k = tensor(hq, d, dt), tensor(hkv, d, dt)
    lt = f"tensor<?x{hq}x?xf32>"
    res = f"{q}, {lt}" if lse else q
    outs = "%o, %l" if lse else "%o"
    cases.append((name, f"""func.func @{name}(%q: {q}, %k: {k}, %v: {k}) -> ({res}) {{
  {outs} = sattn.attention %q, %k, %v {{{attrs}}} : {q}, {k}, {k} -> {res}
  return {outs} : {res}
}}"""))


def selected(name, rule, sel, dt="bf16", d=64, hq=8, hkv=2, g=32, bq=64, bk=64, set_heads=8,
             causal=True, kind="mean", budget=False):
    q, k = tensor(hq, d, dt), tensor(hkv, d, dt)
    qp, kp = tensor(hq, d, "f32"), tensor(hkv, d, "f32")
    st = f"!sattn.scores<bq = {bq}, bk = {bk}, heads = {hq}>"
    bt = f"!sattn.blocks<bq = {bq}, bk = {bk}, heads = {set_heads}>"
    c = ", causal" if causal else ""
    bud = ""
    use = ""
    if budget:
        bud = (f"  %b = sattn.head_budget flattest %s {{tau = 0.9 : f64, forced = #sattn.forced<sink = 1, diagonal = true>}}"
               f" : {st} -> !sattn.budget<bq = {bq}, heads = 1>\n")
        use = " budget %b : !sattn.budget<bq = 64, heads = 1>"
    cases.append((name, f"""func.func @{name}(%q: {q}, %k: {k}, %v: {k}) -> {q} {{
  %qp = sattn.pool {kind} %q group {g} : {q} -> {qp}
  %kp = sattn.pool {kind} %k group {g} : {k} -> {kp}
  %s = sattn.scores %qp, %kp of %q, %k {{q_group = {g} : i64, k_group = {g} : i64{c}}} : {qp}, {kp}, {q}, {k} -> {st}
{bud}  %bs = sattn.select_blocks {rule} %s{use} {{{sel}}} : {st} -> {bt}
  %o = sattn.attention %q, %k, %v blocks %bs : {bt} {{{'causal' if causal else ''}}} : {q}, {k}, {k} -> {q}
  return %o : {q}
}}"""))


def static_pair(name, op, dt="bf16", d=64, set_heads=2, fused=False):
    q, k = tensor(8, d, dt), tensor(2, d, dt)
    bt = f"!sattn.blocks<bq = 64, bk = 32, heads = {set_heads}>"
    if fused:
        body = f"""  %c = sattn.static_blocks %q, %k {{causal, window = 256 : i64, sinks = 32 : i64}} : {q}, {k} -> {bt}"""
    else:
        body = f"""  %a = sattn.static_blocks %q, %k {{causal, window = 100 : i64}} : {q}, {k} -> {bt}
  %b = sattn.static_blocks %q, %k {{causal, window = 300 : i64, sinks = 64 : i64}} : {q}, {k} -> {bt}
  %c = sattn.{op} %a, %b : {bt}"""
    cases.append((name, f"""func.func @{name}(%q: {q}, %k: {k}, %v: {k}) -> {q} {{
{body}
  %o = sattn.attention %q, %k, %v blocks %c : {bt} {{causal}} : {q}, {k}, {k} -> {q}
  return %o : {q}
}}"""))


def user_list(name, dt="bf16", d=64, set_heads=8, causal=True, union=False):
    """A block set given as input (blocks_from_list), optionally united with a static set."""
    q, k = tensor(8, d, dt), tensor(2, d, dt)
    bt = f"!sattn.blocks<bq = 128, bk = 64, heads = {set_heads}>"
    body = f"  %u = sattn.static_blocks %q, %k {{causal, window = 256 : i64}} : {q}, {k} -> {bt}\n" \
           f"  %s = sattn.union %bs, %u : {bt}\n" if union else ""
    use = "%s" if union else "%bs"
    cases.append((name, f"""func.func @{name}(%q: {q}, %k: {k}, %v: {k}, %bs: {bt} {{sattn.name = "blocks"}}) -> {q} {{
{body}  %o = sattn.attention %q, %k, %v blocks {use} : {bt} {{{'causal' if causal else ''}}} : {q}, {k}, {k} -> {q}
  return %o : {q}
}}"""))


for dt in ("bf16", "f16"):
    for d in (64, 128):
        attention(f"dense_causal_{dt}_d{d}", dt, d, lse=True)
        attention(f"dense_full_{dt}_d{d}", dt, d, attrs="")
attention("window_sinks", attrs="causal, window = 512 : i64, sinks = 64 : i64", lse=True)
attention("window_only", attrs="causal, window = 128 : i64")
attention("mha_d96", d=96, hq=4, hkv=4)
attention("mqa_d256", d=256, hq=8, hkv=1)
attention("pattern", attrs="causal, block_pattern = #sattn.block_pattern<bq = 64, bk = 64, causal = true, window = 256>")
selected("topk_per_head", "topk", "k = 4 : i64, forced = #sattn.forced<sink = 1, diagonal = true>")
selected("topk_per_group", "topk", "k = 4 : i64", set_heads=2)
selected("topk_local_fp16_d128", "topk", "k = 6 : i64, forced = #sattn.forced<local = 2>", dt="f16", d=128)
selected("topk_noncausal", "topk", "k = 3 : i64", causal=False)
selected("topk_max_pool", "topk", "k = 3 : i64", kind="max")
selected("topk_bq128", "topk", "k = 2 : i64", g=64, bq=128, bk=128)
selected("cumulative", "cumulative", "tau = 0.9 : f64, forced = #sattn.forced<sink = 1, diagonal = true>")
selected("cumulative_capped_group", "cumulative", "tau = 0.95 : f64, k = 8 : i64", set_heads=2)
selected("flattest_budget", "topk", "forced = #sattn.forced<sink = 1, diagonal = true>", budget=True)
static_pair("static_union", "union")
static_pair("static_intersect", "intersect", set_heads=8)
static_pair("static_fused", None, fused=True)
user_list("user_list_per_group_union", dt="f16", d=128, set_heads=2, union=True)
user_list("user_list_noncausal", causal=False)

for name, text in cases:
    with open(os.path.join(out, name + ".mlir"), "w") as f:
        f.write(text + "\n")
print(len(cases))
