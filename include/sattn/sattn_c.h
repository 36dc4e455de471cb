/*===- sattn_c.h - the sattn C ABI (libsattn.so) ---------------------------===
 *
 * A plain C interface to the C++ API in sattn.h, for other languages
 * (Python through ctypes, Rust, Julia). libsattn.so carries the whole MLIR
 * pipeline inside, hidden: it exports only the `sattn_*` functions below and
 * needs nothing beyond the C runtime, so it loads into a process that already
 * holds another LLVM (PyTorch with Triton) (design §6, §9).
 *
 * Conventions:
 *  - Every function except sattn_last_error and sattn_version returns an int
 *    status: SATTN_OK (0) on success, nonzero on failure. The message of the
 *    last failure on the calling thread is sattn_last_error().
 *  - No C++ exception crosses this boundary; a null handle or pointer is an
 *    error (SATTN_ERR_ARGUMENT), never a crash.
 *  - Strings out use one buffer protocol: the function writes at most `n`
 *    bytes including the terminating NUL (truncating if it must) and, when
 *    `needed` is not NULL, stores the full size including the NUL there.
 *    `buf` may be NULL when `n` is 0, to ask for the size. Functions without
 *    a `needed` argument fail with SATTN_ERR_ARGUMENT when `n` is too small.
 *  - A program stays valid after its session is destroyed. Handles may be
 *    used from several threads; sattn_compile serialises on its session.
 *
 *===----------------------------------------------------------------------===*/
#ifndef SATTN_SATTN_C_H
#define SATTN_SATTN_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SATTN_C_API __attribute__((visibility("default")))
#else
#define SATTN_C_API
#endif

/* Status codes. */
#define SATTN_OK 0
#define SATTN_ERR_ARGUMENT 1 /* null pointer, bad option string, small buffer */
#define SATTN_ERR_SATTN 2    /* sattn::Error: bad IR, shapes, missing GPU/NVRTC */
#define SATTN_ERR_INTERNAL 3 /* any other failure (out of memory, a bug) */

/* Element types (sattn_tensor.dtype). */
#define SATTN_BF16 0
#define SATTN_FP16 1
#define SATTN_F32 2
#define SATTN_I32 3

/* Devices (sattn_tensor.device, sattn_program_device). */
#define SATTN_CPU 0
#define SATTN_GPU 1

/* Most dimensions sattn_arg_info reports. */
#define SATTN_MAX_RANK 8

typedef struct sattn_session sattn_session; /* opaque */
typedef struct sattn_program sattn_program; /* opaque */

/* A non-owning tensor view, laid out as DLPack describes one. */
typedef struct sattn_tensor {
  void *data;             /* host pointer (CPU) or CUdeviceptr (GPU) */
  int32_t dtype;          /* SATTN_BF16, SATTN_FP16, SATTN_F32, SATTN_I32 */
  int32_t device;         /* SATTN_CPU or SATTN_GPU */
  int32_t ndim;           /* 0..SATTN_MAX_RANK */
  const int64_t *shape;   /* ndim entries */
  const int64_t *strides; /* ndim entries, in elements; NULL = contiguous */
} sattn_tensor;

/* What a program expects of one input or output. */
typedef struct sattn_arg_info {
  int32_t dtype;                 /* SATTN_BF16 ... SATTN_I32, -1 if none */
  int32_t ndim;                  /* -1 if the value is not a ranked tensor */
  int64_t shape[SATTN_MAX_RANK]; /* -1 for a dimension known only at run time */
} sattn_arg_info;

/* The message of the last failure on this thread ("" if none). Valid until
 * the next failing call on the same thread. Never NULL. */
SATTN_C_API const char *sattn_last_error(void);

/* The library version, e.g. "0.1.0". Never NULL. */
SATTN_C_API const char *sattn_version(void);

/* device: "auto" (or NULL): the GPU when one is usable, else the CPU;
 * "cpu"; "gpu" (fails if no GPU is usable). cache_dir: NULL or "" for
 * $SATTN_CACHE_DIR, else ~/.cache/sattn. */
SATTN_C_API int sattn_session_create(const char *device, const char *cache_dir,
                                     sattn_session **out);
/* Destroying NULL is a no-op that returns SATTN_OK. */
SATTN_C_API int sattn_session_destroy(sattn_session *session);
/* The GPU's name, or "cpu". */
SATTN_C_API int sattn_session_device(const sattn_session *session, char *buf, size_t n);
/* Returns to the driver the GPU workspace sattn's memory pool keeps unused
 * (call once the work using it has finished); *released (may be NULL): the
 * bytes released, 0 on a CPU session. */
SATTN_C_API int sattn_session_release_workspace(sattn_session *session, size_t *released);

/* Compiles a variant (one func.func in the sattn dialect, as text). dtype:
 * NULL or "" to keep the variant's element type, "bf16" or "fp16" to rebind
 * Q/K/V/O. Compiling the same text again returns a program from the
 * session's cache. Invalid IR fails with the MLIR diagnostics as message. */
SATTN_C_API int sattn_compile(sattn_session *session, const char *mlir_text, const char *dtype,
                              sattn_program **out);

/* The IR of a ready-made pattern, to show or to compile:
 *   "dense"         a = 1 to also return LSE (b, c unused)
 *   "dense_causal"  a = 1 to also return LSE (b, c unused)
 *   "streaming"     a = window, b = sinks (c unused)
 *   "topk_blocks"   a = pooling group, b = block size, c = k blocks kept
 *   "block_mask"    a = block size, b = 1 for causal, c = heads of the block
 *                   set (0: heads); a fourth input "blocks" takes the list
 *   "omnisparse"    OmniSparse prefill with design §10 defaults (a, b, c unused)
 *   "omnisparse_decode"  OmniSparse decode slimming, defaults (a, b, c unused);
 *                   inputs prompt, k, v, q; returns O and LSE
 *   "xattention"    a = stride (0: 8), b = tau in thousandths (0: 900),
 *                   c = blocks kept past tau (0: the paper's rule; 1: the
 *                   mit-han-lab/x-attention prefill selection)
 *   "flexprefill"   a = gamma in thousandths (0: 900), b = sqrt-JSD threshold
 *                   of the query-aware test in thousandths (0: 100; < 0: no
 *                   query-aware heads), c = minimum budget in tokens (0: 1024)
 *   "minference_vertical_slash"  token-level vertical-slash: a = columns
 *                   kept (0: 1000), b = slashes kept (0: 6096), c = query
 *                   block / band width (0: 64)
 *   "unisparse"     granularities 16 and 64, a = tau in thousandths (0: 900),
 *                   b = cap on the blocks kept (0: none)
 *   "quest"         a = page size (0: 16), b = pages kept (0: 64), c != 0: page
 *                   bounds are inputs kmin, kmax (f32 [B, kv_heads,
 *                   ceil(Skv / page), head_dim]: min / max of each page's keys)
 *                   instead of pooled per call
 * dtype: NULL, "bf16" or "fp16". Buffer protocol above. */
SATTN_C_API int sattn_pattern_text(const char *name, int heads, int kv_heads, int head_dim,
                                   const char *dtype, int64_t a, int64_t b, int64_t c, char *buf,
                                   size_t n, size_t *needed);

/* Runs the program: inputs bind to the variant's arguments in order (q, k,
 * v, ...), outputs to its results (O, then LSE). A block-set input
 * (!sattn.blocks) takes an int32 tensor [B, H, nQB, cap] of KV block indices
 * per (batch, head, query block), -1 for unused slots (docs/semantics.md
 * §14); on the GPU, entries outside [0, nKB) are dropped. A GPU program runs on
 * `stream` (a CUstream; NULL: the legacy default stream) and returns once
 * the work is queued; a CPU program runs synchronously and ignores it. */
SATTN_C_API int sattn_program_run(const sattn_program *program, const sattn_tensor *inputs,
                                  int n_in, const sattn_tensor *outputs, int n_out, void *stream);

/* Gradients of sum(dout * O), O the variant's first result (a sattn.attention
 * over its inputs q, k, v), with respect to q, k, v: written to grads[0..2]
 * (dq, dk, dv, shaped like q, k, v). The forward's selections are recomputed
 * and held constant (docs/training.md). A CPU program runs the float64
 * reference; a GPU program the backward kernels on `stream` (grads in the
 * program's dtype), in the fast mode (atomic dQ). */
SATTN_C_API int sattn_program_backward(const sattn_program *program, const sattn_tensor *inputs,
                                       int n_in, const sattn_tensor *dout,
                                       const sattn_tensor *grads, int n_grads, void *stream);

/* Flags of sattn_program_backward_ex. */
/* The default (flags 0) is the deterministic backward: the same bits on every
 * run, and on the H100 also the faster one (docs/training.md). */
#define SATTN_BACKWARD_DETERMINISTIC 1 /* same bits on every run (no atomics): the default */
#define SATTN_BACKWARD_ATOMIC_DQ 2     /* dQ by fp32 atomics in the dK/dV pass (order varies) */

/* sattn_program_backward with options: `out` and `lse` (both or neither;
 * NULL: recomputed) are the forward's O and its [B, Hq, Sq] f32 LSE, read
 * instead of recomputing the attention; `flags` is a set of
 * SATTN_BACKWARD_* bits. */
SATTN_C_API int sattn_program_backward_ex(const sattn_program *program,
                                          const sattn_tensor *inputs, int n_in,
                                          const sattn_tensor *out, const sattn_tensor *lse,
                                          const sattn_tensor *dout, const sattn_tensor *grads,
                                          int n_grads, int flags, void *stream);

/* sattn_program_run, then waits for the kernels and reports the GPU time of
 * each launch in order (CUDA events around each): up to `cap` values in
 * `ms`, their count in `*count`, and the kernel names newline-separated in
 * `names` (buffer protocol; may be NULL). For profiling; GPU programs only. */
SATTN_C_API int sattn_program_run_timed(const sattn_program *program, const sattn_tensor *inputs,
                                        int n_in, const sattn_tensor *outputs, int n_out,
                                        void *stream, double *ms, int cap, int *count, char *names,
                                        size_t n, size_t *needed);

/* sattn_program_run, then waits and reports what the run selected: the
 * design section 2 density of its prefill attention (attended / causally
 * valid block pairs), the share of active query rows (query selection) and
 * the share of cached tokens kv_slim kept; -1 where the variant has no such
 * stage. Copies the block, query and token sets to the host: for
 * evaluation, not for the timed path. */
typedef struct sattn_selection_report {
  double density;
  double active_rows;
  double kv_kept;
} sattn_selection_report;
SATTN_C_API int sattn_program_run_selection(const sattn_program *program,
                                            const sattn_tensor *inputs, int n_in,
                                            const sattn_tensor *outputs, int n_out, void *stream,
                                            sattn_selection_report *report);

/* The block set of the last sattn_program_run_selection on this handle
 * (the prefill attention's, or its fused static pattern's) as a boolean
 * mask, 1 = attended: mask[((b * heads + h) * q_blocks + I) * kv_blocks + J].
 * Fills *info and *needed (bytes); copies the mask when `mask` holds
 * `needed` bytes (n >= needed), else copies nothing (mask may be NULL).
 * An error when no run_selection ran on the handle or its variant had no
 * block set. Not synchronised with concurrent runs on the same handle. */
typedef struct sattn_block_mask_info {
  int64_t batch, heads, q_blocks, kv_blocks, bq, bk;
} sattn_block_mask_info;
SATTN_C_API int sattn_program_last_blocks(const sattn_program *program, sattn_block_mask_info *info,
                                          uint8_t *mask, size_t n, size_t *needed);

/* OmniSparse decode in two calls (docs/patterns/omnisparse.md section 3), for
 * a variant whose decode_attention reads the tokens of a kv_slim over a
 * dense cache (the "omnisparse_decode" pattern). */
typedef struct sattn_slim_cache sattn_slim_cache; /* opaque */

/* The indices of the inputs sattn_program_decode takes (the decode query);
 * sattn_program_slim takes the others, in order. Up to `cap` indices. */
SATTN_C_API int sattn_program_decode_inputs(const sattn_program *program, int *indices, int cap,
                                            int *count);
/* Runs kv_slim once and compacts the kept K/V per (batch, KV head) into a
 * new cache of exactly those tokens plus `reserve` free rows per head
 * (for sattn_slim_cache_append). Waits for the GPU once (the allocation
 * needs the kept counts) and returns when the cache is built: the full
 * cache may be freed at once. Destroy the cache with
 * sattn_slim_cache_destroy (it may outlive the program). */
SATTN_C_API int sattn_program_slim(const sattn_program *program, const sattn_tensor *inputs,
                                   int n_in, int64_t reserve, void *stream, sattn_slim_cache **out);
/* One decode step over a slimmed cache: inputs are the decode step's own
 * (sattn_program_decode_inputs), outputs the variant's results. With
 * `kernel_ms` NULL it is queued on `stream` without waiting; else it waits
 * and stores the decode kernel's GPU time (CUDA events; GPU only). */
SATTN_C_API int sattn_program_decode(const sattn_program *program, const sattn_slim_cache *cache,
                                     const sattn_tensor *inputs, int n_in,
                                     const sattn_tensor *outputs, int n_out, void *stream,
                                     double *kernel_ms);
typedef struct sattn_slim_info {
  int64_t batch, kv_heads, head_dim;
  int64_t bytes_before; /* K and V of the full cache it was built from */
  int64_t bytes_after;  /* K and V rows it holds (reserve included) + per-head index */
  int64_t tokens;       /* entries held over all (batch, KV head) */
  int device;           /* SATTN_CPU or SATTN_GPU */
} sattn_slim_info;
SATTN_C_API int sattn_slim_cache_info(const sattn_slim_cache *cache, sattn_slim_info *out);
/* Entries held and rows reserved for (batch b, KV head h). */
SATTN_C_API int sattn_slim_cache_length(const sattn_slim_cache *cache, int64_t b, int64_t h,
                                        int64_t *length, int64_t *capacity);
/* Appends k, v [B, Hkv, t, D] as the next t entries of every head (the
 * decode step's own tokens go in before the step). Queued on `stream`. */
SATTN_C_API int sattn_slim_cache_append(sattn_slim_cache *cache, const sattn_tensor *k,
                                        const sattn_tensor *v, void *stream);
/* Destroying NULL is a no-op that returns SATTN_OK. */
SATTN_C_API int sattn_slim_cache_destroy(sattn_slim_cache *cache);

SATTN_C_API int sattn_program_num_inputs(const sattn_program *program, int *out);
SATTN_C_API int sattn_program_num_outputs(const sattn_program *program, int *out);
/* SATTN_CPU or SATTN_GPU. */
SATTN_C_API int sattn_program_device(const sattn_program *program, int *out);
/* What input or output `index` must be (after specialisation). */
SATTN_C_API int sattn_program_input_info(const sattn_program *program, int index,
                                         sattn_arg_info *out);
SATTN_C_API int sattn_program_output_info(const sattn_program *program, int index,
                                          sattn_arg_info *out);
/* The name of input `index` (q, k, v, or its sattn.name). Buffer protocol. */
SATTN_C_API int sattn_program_input_name(const sattn_program *program, int index, char *buf,
                                         size_t n, size_t *needed);
/* The JIT cache key: 64 hex digits (a buffer of 65 bytes suffices). */
SATTN_C_API int sattn_program_key(const sattn_program *program, char *buf, size_t n);
/* Kernel-level IR and generated CUDA C++ ("" for a CPU program). */
SATTN_C_API int sattn_program_lowered_ir(const sattn_program *program, char *buf, size_t n,
                                         size_t *needed);
SATTN_C_API int sattn_program_cuda_source(const sattn_program *program, char *buf, size_t n,
                                          size_t *needed);
/* Destroying NULL is a no-op that returns SATTN_OK. */
SATTN_C_API int sattn_program_destroy(sattn_program *program);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SATTN_SATTN_C_H */
