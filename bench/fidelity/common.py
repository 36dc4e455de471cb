"""What the fidelity scripts share: importing a staged reference without
editing it, the agreement metric and argument parsing helpers."""
import importlib
import os
import sys


def import_staged(ref_dir, module, marker, stager="bench/fidelity/stage_reference.sh"):
    """Imports `module` from the staged copy in `ref_dir` (the file `marker`
    must exist there) and returns (module, revision). Exits with a message
    when nothing is staged or the import resolves elsewhere."""
    if not os.path.isfile(os.path.join(ref_dir, marker)):
        sys.exit("no reference at %s (missing %s): run %s first" % (ref_dir, marker, stager))
    sys.path.insert(0, os.path.abspath(ref_dir))
    mod = importlib.import_module(module)
    if not os.path.abspath(mod.__file__).startswith(os.path.abspath(ref_dir)):
        sys.exit("imported %s from %s, not from %s" % (module, mod.__file__, ref_dir))
    rev_path = os.path.join(ref_dir, "REVISION")
    rev = open(rev_path).read().strip() if os.path.isfile(rev_path) else "unknown"
    return mod, rev


def agreement(x, y, valid):
    """Share of causally valid (batch, head, q-block, k-block) pairs where the
    bool masks x and y ([B, H, nQB, nKB]) agree; valid is [nQB, nKB]."""
    return float((x == y)[:, :, valid].float().mean())


def csv_of(kind):
    return lambda s: [kind(x) for x in s.split(",")]


def sattn_mask(prog, q, k, device, block):
    """sattn's selected blocks as a bool [B, H, nQB, nKB] mask on q's device
    (run_selection with blocks=True: the block set the attention used) and
    the density run_selection reports. device "cpu" runs the float64
    reference executor, which takes float32 numpy arrays."""
    import torch
    v = torch.randn_like(k)
    args = [x.float().numpy() for x in (q, k, v)] if device == "cpu" else [q, k, v]
    _, report = prog.run_selection(*args, blocks=True)
    assert report["block_size"] == (block, block), report["block_size"]
    return torch.from_numpy(report["blocks"]).to(q.device), report.get("density")
