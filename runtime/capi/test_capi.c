/*===- test_capi.c - the C ABI, used from plain C -------------------------===
 *
 * Compiles the dense causal pattern on the CPU, runs it on host float32
 * buffers against a naive causal attention written here, and checks that
 * every misuse (wrong counts, wrong shapes, NULL pointers, invalid IR, bad
 * dtype/device/pattern strings) returns a nonzero status with a message
 * that says what went wrong. Exits nonzero on the first failed check.
 *
 *===----------------------------------------------------------------------===*/
#include "sattn/sattn_c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                              \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
      ++failures;                                                                                  \
    }                                                                                              \
  } while (0)

#define OK(call)                                                                                   \
  do {                                                                                             \
    int st_ = (call);                                                                              \
    if (st_ != SATTN_OK) {                                                                         \
      fprintf(stderr, "FAIL %s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, st_,          \
              sattn_last_error());                                                                 \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

/* The call must fail with a message containing `needle`. */
static void expect_error(int status, const char *what, const char *needle) {
  const char *msg = sattn_last_error();
  if (status == SATTN_OK) {
    fprintf(stderr, "FAIL: %s succeeded, expected an error\n", what);
    ++failures;
    return;
  }
  if (!msg || !strstr(msg, needle)) {
    fprintf(stderr, "FAIL: %s: message \"%s\" lacks \"%s\"\n", what, msg ? msg : "(null)", needle);
    ++failures;
    return;
  }
  printf("ok: %s -> [%d] %.*s\n", what, status, (int)strcspn(msg, "\n"), msg);
}

enum { B = 1, H = 4, HKV = 2, SQ = 9, SKV = 9, D = 16 };

static void reference(const float *q, const float *k, const float *v, double *o) {
  int group = H / HKV;
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < SQ; ++i) {
      const float *qi = q + (h * SQ + i) * D;
      int last = i + SKV - SQ;
      double s[SKV], mx = -INFINITY, sum = 0;
      for (int j = 0; j <= last; ++j) {
        const float *kj = k + ((h / group) * SKV + j) * D;
        double dot = 0;
        for (int d = 0; d < D; ++d)
          dot += (double)qi[d] * kj[d];
        s[j] = dot / sqrt((double)D);
        if (s[j] > mx)
          mx = s[j];
      }
      for (int j = 0; j <= last; ++j)
        sum += (s[j] = exp(s[j] - mx));
      for (int d = 0; d < D; ++d) {
        double acc = 0;
        for (int j = 0; j <= last; ++j)
          acc += s[j] * v[((h / group) * SKV + j) * D + d];
        o[(h * SQ + i) * D + d] = acc / sum;
      }
    }
}

int main(void) {
  printf("sattn %s\n", sattn_version());

  /* Pattern text, with the size-query protocol. */
  size_t needed = 0;
  OK(sattn_pattern_text("dense_causal", H, HKV, D, "bf16", 0, 0, 0, NULL, 0, &needed));
  CHECK(needed > 10, "needed = %zu", needed);
  char *ir = malloc(needed);
  size_t needed2 = 0;
  OK(sattn_pattern_text("dense_causal", H, HKV, D, "bf16", 0, 0, 0, ir, needed, &needed2));
  CHECK(needed2 == needed && strlen(ir) + 1 == needed, "sizes %zu %zu %zu", needed, needed2,
        strlen(ir));
  CHECK(strstr(ir, "sattn.attention") != NULL, "IR: %s", ir);
  char small[8];
  OK(sattn_pattern_text("dense_causal", H, HKV, D, NULL, 0, 0, 0, small, sizeof small, NULL));
  CHECK(strlen(small) == sizeof small - 1, "truncation gave '%s'", small);

  sattn_session *session = NULL;
  OK(sattn_session_create("cpu", NULL, &session));
  char name[64];
  OK(sattn_session_device(session, name, sizeof name));
  CHECK(strcmp(name, "cpu") == 0, "device name '%s'", name);
  size_t released = 99;
  OK(sattn_session_release_workspace(session, &released));
  CHECK(released == 0, "a CPU session released %zu workspace bytes", released);
  OK(sattn_session_release_workspace(session, NULL));

  sattn_program *program = NULL;
  OK(sattn_compile(session, ir, NULL, &program));
  int n_in = 0, n_out = 0, device = -1;
  OK(sattn_program_num_inputs(program, &n_in));
  OK(sattn_program_num_outputs(program, &n_out));
  OK(sattn_program_device(program, &device));
  CHECK(n_in == 3 && n_out == 1 && device == SATTN_CPU, "%d inputs %d outputs device %d", n_in,
        n_out, device);
  sattn_arg_info info;
  OK(sattn_program_input_info(program, 1, &info));
  CHECK(info.dtype == SATTN_BF16 && info.ndim == 4 && info.shape[0] == -1 && info.shape[1] == HKV &&
            info.shape[2] == -1 && info.shape[3] == D,
        "k info dtype %d ndim %d [%lld %lld %lld %lld]", info.dtype, info.ndim,
        (long long)info.shape[0], (long long)info.shape[1], (long long)info.shape[2],
        (long long)info.shape[3]);
  char argname[16];
  OK(sattn_program_input_name(program, 2, argname, sizeof argname, NULL));
  CHECK(strcmp(argname, "v") == 0, "input 2 is '%s'", argname);
  char key[65];
  OK(sattn_program_key(program, key, sizeof key));
  CHECK(strlen(key) == 64, "key '%s'", key);
  OK(sattn_program_lowered_ir(program, NULL, 0, &needed));
  CHECK(needed > 1, "lowered IR size %zu", needed);

  /* fp16 rebinding reaches the program's signature. */
  sattn_program *half = NULL;
  OK(sattn_compile(session, ir, "fp16", &half));
  OK(sattn_program_output_info(half, 0, &info));
  CHECK(info.dtype == SATTN_FP16, "fp16 program output dtype %d", info.dtype);
  OK(sattn_program_destroy(half));

  /* Run on host float32 buffers; K and V are read through strides from a
   * [B, S, Hkv, D] (BSHD) buffer. */
  float q[B * H * SQ * D], kv_bshd[2][B * SKV * HKV * D], k[B * HKV * SKV * D],
      v[B * HKV * SKV * D], o[B * H * SQ * D];
  double ref[B * H * SQ * D];
  srand(7);
  for (int i = 0; i < B * H * SQ * D; ++i)
    q[i] = (float)rand() / RAND_MAX * 2 - 1;
  for (int t = 0; t < 2; ++t)
    for (int s = 0; s < SKV; ++s)
      for (int h = 0; h < HKV; ++h)
        for (int d = 0; d < D; ++d) {
          float x = (float)rand() / RAND_MAX * 2 - 1;
          kv_bshd[t][(s * HKV + h) * D + d] = x;
          (t ? v : k)[(h * SKV + s) * D + d] = x;
        }
  reference(q, k, v, ref);
  for (int i = 0; i < B * H * SQ * D; ++i)
    o[i] = NAN;

  int64_t qshape[4] = {B, H, SQ, D}, kvshape[4] = {B, HKV, SKV, D};
  int64_t bshd_strides[4] = {SKV * HKV * D, D, HKV * D, 1};
  sattn_tensor in[3] = {
      {q, SATTN_F32, SATTN_CPU, 4, qshape, NULL},
      {kv_bshd[0], SATTN_F32, SATTN_CPU, 4, kvshape, bshd_strides},
      {kv_bshd[1], SATTN_F32, SATTN_CPU, 4, kvshape, bshd_strides},
  };
  sattn_tensor out[1] = {{o, SATTN_F32, SATTN_CPU, 4, qshape, NULL}};
  OK(sattn_program_run(program, in, 3, out, 1, NULL));
  double num = 0, den = 0;
  int nans = 0;
  for (int i = 0; i < B * H * SQ * D; ++i) {
    if (isnan(o[i]))
      ++nans;
    num += (o[i] - ref[i]) * (o[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  double rel = sqrt(num / den);
  printf("dense causal on the CPU: rel err %.3g, %d NaN\n", rel, nans);
  CHECK(nans == 0 && rel < 1e-5, "rel err %g, %d NaN", rel, nans);

  /* A block set given as input: the "block_mask" pattern takes a fourth
   * input "blocks", int32 [B, set heads, nQB, cap]. Listing every block in
   * any order with -1 padding gives dense causal attention. */
  {
    size_t n = 0;
    OK(sattn_pattern_text("block_mask", H, HKV, D, NULL, 4, 1, HKV, NULL, 0, &n));
    char *mask_ir = malloc(n);
    OK(sattn_pattern_text("block_mask", H, HKV, D, NULL, 4, 1, HKV, mask_ir, n, NULL));
    sattn_program *masked = NULL;
    OK(sattn_compile(session, mask_ir, NULL, &masked));
    free(mask_ir);
    int n4 = 0;
    OK(sattn_program_num_inputs(masked, &n4));
    CHECK(n4 == 4, "block_mask takes %d inputs", n4);
    OK(sattn_program_input_info(masked, 3, &info));
    CHECK(info.dtype == SATTN_I32 && info.ndim == 4 && info.shape[0] == -1 &&
              info.shape[1] == HKV && info.shape[2] == -1 && info.shape[3] == -1,
          "blocks info dtype %d ndim %d heads %lld", info.dtype, info.ndim,
          (long long)info.shape[1]);
    OK(sattn_program_input_name(masked, 3, argname, sizeof argname, NULL));
    CHECK(strcmp(argname, "blocks") == 0, "input 3 is '%s'", argname);
    enum { NQB = (SQ + 3) / 4, NKB = (SKV + 3) / 4, CAP = NKB + 1 };
    int32_t list[B * HKV * NQB * CAP];
    for (int r = 0; r < B * HKV * NQB; ++r)
      for (int x = 0; x < CAP; ++x)
        list[r * CAP + x] = x < NKB ? NKB - 1 - x : -1;
    int64_t lshape[4] = {B, HKV, NQB, CAP};
    sattn_tensor in4[4] = {in[0], in[1], in[2], {list, SATTN_I32, SATTN_CPU, 4, lshape, NULL}};
    for (int i = 0; i < B * H * SQ * D; ++i)
      o[i] = NAN;
    OK(sattn_program_run(masked, in4, 4, out, 1, NULL));
    double mnum = 0, mden = 0;
    for (int i = 0; i < B * H * SQ * D; ++i) {
      mnum += (o[i] - ref[i]) * (o[i] - ref[i]);
      mden += ref[i] * ref[i];
    }
    CHECK(sqrt(mnum / mden) < 1e-5, "block_mask with every block: rel err %g", sqrt(mnum / mden));
    list[0] = NKB;
    expect_error(sattn_program_run(masked, in4, 4, out, 1, NULL), "block out of range",
                 "outside the valid range");
    OK(sattn_program_destroy(masked));
    printf("block_mask with a user block list on the CPU: ok\n");
  }

  /* The selection report of a dense program: density 1, no other stage. */
  sattn_selection_report rep = {0, 0, 0};
  OK(sattn_program_run_selection(program, in, 3, out, 1, NULL, &rep));
  CHECK(rep.density == 1.0 && rep.active_rows == -1.0 && rep.kv_kept == -1.0,
        "selection report %g %g %g", rep.density, rep.active_rows, rep.kv_kept);
  expect_error(sattn_program_run_selection(program, in, 3, out, 1, NULL, NULL), "null report",
               "report");

  /* OmniSparse decode over a slimmed cache: slim once, append, decode; the
   * cache reports its bytes and outlives its program. */
  {
    enum { SP = 70, SK = 100 };
    OK(sattn_pattern_text("omnisparse_decode", H, HKV, D, NULL, 0, 0, 0, NULL, 0, &needed));
    char *dir = malloc(needed);
    OK(sattn_pattern_text("omnisparse_decode", H, HKV, D, NULL, 0, 0, 0, dir, needed, NULL));
    sattn_program *dec = NULL;
    OK(sattn_compile(session, dir, NULL, &dec));
    free(dir);
    int idx[4] = {-1, -1, -1, -1}, n_dec = 0;
    OK(sattn_program_decode_inputs(dec, idx, 4, &n_dec));
    CHECK(n_dec == 1 && idx[0] == 3, "decode inputs %d [%d]", n_dec, idx[0]);
    static float pr[H * SP * D], kc[HKV * SK * D], vc[HKV * SK * D], qd[H * D], kn[HKV * D],
        od[H * D], ld[H];
    for (int i = 0; i < H * SP * D; ++i)
      pr[i] = (float)sin(0.37 * i);
    for (int i = 0; i < HKV * SK * D; ++i)
      kc[i] = (float)cos(0.11 * i), vc[i] = (float)sin(0.23 * i);
    for (int i = 0; i < H * D; ++i)
      qd[i] = (float)cos(0.5 * i);
    for (int i = 0; i < HKV * D; ++i)
      kn[i] = (float)sin(0.05 * i);
    int64_t sp[4] = {1, H, SP, D}, sk[4] = {1, HKV, SK, D}, sq1[4] = {1, H, 1, D},
            sn[4] = {1, HKV, 1, D}, sl[3] = {1, H, 1};
    sattn_tensor slim_in[3] = {{pr, SATTN_F32, SATTN_CPU, 4, sp, NULL},
                               {kc, SATTN_F32, SATTN_CPU, 4, sk, NULL},
                               {vc, SATTN_F32, SATTN_CPU, 4, sk, NULL}};
    sattn_slim_cache *cache = NULL;
    expect_error(sattn_program_slim(dec, slim_in, 2, 0, NULL, &cache), "slim input count",
                 "takes 3 inputs (prompt, k, v)");
    CHECK(cache == NULL, "a failed slim left a cache");
    OK(sattn_program_slim(dec, slim_in, 3, 1, NULL, &cache));
    sattn_slim_info si;
    OK(sattn_slim_cache_info(cache, &si));
    CHECK(si.batch == 1 && si.kv_heads == HKV && si.head_dim == D && si.device == SATTN_CPU &&
              si.bytes_before == 2LL * HKV * SK * D * 2 && si.tokens > 0 &&
              si.bytes_after == 2 * (si.tokens + HKV) * D * 2 + HKV * 12,
          "slim info: tokens %lld bytes %lld -> %lld", (long long)si.tokens,
          (long long)si.bytes_before, (long long)si.bytes_after);
    int64_t len = 0, cap = 0;
    OK(sattn_slim_cache_length(cache, 0, 1, &len, &cap));
    CHECK(cap == len + 1, "length %lld capacity %lld", (long long)len, (long long)cap);
    sattn_tensor knew = {kn, SATTN_F32, SATTN_CPU, 4, sn, NULL};
    OK(sattn_slim_cache_append(cache, &knew, &knew, NULL));
    expect_error(sattn_slim_cache_append(cache, &knew, &knew, NULL), "append past reserve",
                 "larger reserve");
    sattn_tensor qin = {qd, SATTN_F32, SATTN_CPU, 4, sq1, NULL};
    sattn_tensor dout[2] = {{od, SATTN_F32, SATTN_CPU, 4, sq1, NULL},
                            {ld, SATTN_F32, SATTN_CPU, 3, sl, NULL}};
    OK(sattn_program_decode(dec, cache, &qin, 1, dout, 2, NULL, NULL));
    int finite = 1;
    for (int i = 0; i < H * D; ++i)
      finite &= isfinite(od[i]) != 0;
    for (int i = 0; i < H; ++i)
      finite &= isfinite(ld[i]) != 0;
    CHECK(finite, "slimmed decode wrote a non-finite value");
    double ms = 0;
    expect_error(sattn_program_decode(dec, cache, &qin, 1, dout, 2, NULL, &ms),
                 "timed decode on the CPU", "needs a GPU program");
    expect_error(sattn_program_decode(program, cache, &qin, 1, dout, 2, NULL, NULL),
                 "decode with a dense program", "no sattn.decode_attention reading the tokens");
    OK(sattn_program_destroy(dec)); /* the cache does not need its program */
    OK(sattn_slim_cache_info(cache, &si));
    OK(sattn_slim_cache_destroy(cache));
    OK(sattn_slim_cache_destroy(NULL));
    printf("slimmed decode cache on the CPU: ok\n");
  }

  /* Error paths: each returns nonzero with a message naming the problem. */
  expect_error(sattn_program_run(program, in, 2, out, 1, NULL), "two inputs", "takes 3 inputs");
  expect_error(sattn_program_run(program, in, 3, out, 0, NULL), "no outputs", "returns 1");
  int64_t badshape[4] = {B, HKV + 1, SKV, D};
  sattn_tensor bad[3] = {in[0], in[1], in[2]};
  bad[1].shape = badshape;
  bad[1].strides = NULL;
  expect_error(sattn_program_run(program, bad, 3, out, 1, NULL), "wrong head count", "dimension 1");
  bad[1] = in[1];
  bad[1].ndim = 3;
  bad[1].strides = NULL;
  expect_error(sattn_program_run(program, bad, 3, out, 1, NULL), "wrong rank", "rank 3");
  bad[1] = in[1];
  bad[1].data = NULL;
  expect_error(sattn_program_run(program, bad, 3, out, 1, NULL), "null data", "NULL data");
  bad[1] = in[1];
  bad[1].dtype = 9;
  expect_error(sattn_program_run(program, bad, 3, out, 1, NULL), "dtype code", "dtype code 9");
  bad[1] = in[1];
  bad[1].device = SATTN_GPU;
  expect_error(sattn_program_run(program, bad, 3, out, 1, NULL), "GPU view on CPU", "GPU");
  bad[1] = in[1];
  bad[1].shape = NULL;
  expect_error(sattn_program_run(program, bad, 3, out, 1, NULL), "null shape", "NULL shape");
  expect_error(sattn_program_run(NULL, in, 3, out, 1, NULL), "null program", "program is NULL");
  expect_error(sattn_program_run(program, NULL, 3, out, 1, NULL), "null inputs", "inputs is NULL");
  expect_error(sattn_compile(session, "func.func @f( {", NULL, &half), "invalid IR",
               "not valid sattn IR");
  CHECK(half == NULL, "a failed compile left a program");
  expect_error(sattn_compile(session, ir, "fp8", &half), "bad dtype", "unknown dtype 'fp8'");
  expect_error(sattn_compile(session, NULL, NULL, &half), "null text", "mlir_text is NULL");
  expect_error(sattn_compile(NULL, ir, NULL, &half), "null session", "session is NULL");
  expect_error(sattn_compile(session, ir, NULL, NULL), "null out", "out is NULL");
  expect_error(sattn_session_create("tpu", NULL, &session), "bad device", "unknown device 'tpu'");
  expect_error(sattn_session_create("cpu", NULL, NULL), "null session out", "out is NULL");
  expect_error(sattn_pattern_text("bogus", H, HKV, D, NULL, 0, 0, 0, NULL, 0, &needed),
               "bad pattern", "unknown pattern 'bogus'");
  expect_error(sattn_pattern_text("dense", 3, 2, D, NULL, 0, 0, 0, NULL, 0, &needed), "bad GQA",
               "multiple of kv_heads");
  expect_error(sattn_pattern_text("dense", H, HKV, D, "int4", 0, 0, 0, NULL, 0, &needed),
               "bad pattern dtype", "unknown dtype 'int4'");
  expect_error(sattn_program_key(program, key, 10), "small key buffer", "65 are needed");
  expect_error(sattn_program_input_info(program, 3, &info), "input index", "out of range");
  expect_error(sattn_program_num_inputs(NULL, &n_in), "null program count", "program is NULL");
  expect_error(sattn_session_device(NULL, name, sizeof name), "null session device",
               "session is NULL");
  expect_error(sattn_session_release_workspace(NULL, NULL), "null session release",
               "session is NULL");
  /* "gpu" either works or says why (this machine may have no GPU). */
  sattn_session *gpu = NULL;
  if (sattn_session_create("gpu", NULL, &gpu) == SATTN_OK) {
    OK(sattn_session_device(gpu, name, sizeof name));
    printf("ok: GPU session on %s\n", name);
    OK(sattn_session_destroy(gpu));
  } else {
    CHECK(gpu == NULL && strlen(sattn_last_error()) > 0, "no message for a failed GPU session");
    printf("ok: no GPU session: %s\n", sattn_last_error());
  }

  OK(sattn_program_destroy(program));
  OK(sattn_program_destroy(NULL));
  OK(sattn_session_destroy(session));
  OK(sattn_session_destroy(NULL));
  free(ir);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("all C ABI checks passed\n");
  return 0;
}
