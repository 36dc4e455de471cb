"""CUDA-event timing shared by the benchmarks."""
import torch


def median_ms(fn, reps, warmup=5):
    """Median GPU milliseconds per call of fn(): calls queued back to back,
    an event pair around each, one synchronisation at the end."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
          for _ in range(reps)]
    for a, b in ev:
        a.record()
        fn()
        b.record()
    torch.cuda.synchronize()
    t = sorted(a.elapsed_time(b) for a, b in ev)
    return t[len(t) // 2]
