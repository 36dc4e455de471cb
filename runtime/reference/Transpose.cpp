//===- Transpose.cpp - Block sets read by KV block -----------------------===//
//
// The transpose of a §6 block set: per (b, h, KV block J) the query blocks
// that attend J. The dK/dV backward kernels own one KV block each and loop
// over these, so the reference builds the exact lists a GPU transpose must
// reproduce. The source set is validated first: an index out of range would
// otherwise write outside a column, and an unsorted or repeated row would
// give a column that is not ascending or names a query block twice.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <fmt/format.h>

namespace sattn::ref {

namespace {

void checkBlockSet(const BlockSet &bs) {
  if (bs.bq <= 0 || bs.bk <= 0 || bs.B < 0 || bs.H < 0 || bs.Sq < 0 || bs.Skv < 0)
    throw Error(fmt::format("transpose: block set has invalid geometry B={} H={} Sq={} Skv={} "
                            "blocks {}x{}; block sizes must be positive and the rest >= 0",
                            bs.B, bs.H, bs.Sq, bs.Skv, bs.bq, bs.bk));
  if (bs.nQB != cdiv(bs.Sq, bs.bq) || bs.nKB != cdiv(bs.Skv, bs.bk))
    throw Error(fmt::format("transpose: block set has {}x{} blocks but Sq={}, Skv={} with "
                            "blocks {}x{} need {}x{}",
                            bs.nQB, bs.nKB, bs.Sq, bs.Skv, bs.bq, bs.bk, cdiv(bs.Sq, bs.bq),
                            cdiv(bs.Skv, bs.bk)));
  if (static_cast<int64_t>(bs.lists.size()) != bs.B * bs.H * bs.nQB)
    throw Error(fmt::format("transpose: block set holds {} lists but B*H*nQB = {}", bs.lists.size(),
                            bs.B * bs.H * bs.nQB));
  for (int64_t b = 0; b < bs.B; ++b)
    for (int64_t h = 0; h < bs.H; ++h)
      for (int64_t I = 0; I < bs.nQB; ++I) {
        const std::vector<int32_t> &row = bs.row(b, h, I);
        for (size_t x = 0; x < row.size(); ++x) {
          if (row[x] < 0 || row[x] >= bs.nKB)
            throw Error(fmt::format("transpose: block set row (b={}, h={}, I={}) names KV block "
                                    "{} outside [0, {})",
                                    b, h, I, row[x], bs.nKB));
          if (x > 0 && row[x] <= row[x - 1])
            throw Error(fmt::format("transpose: block set row (b={}, h={}, I={}) is not "
                                    "ascending without duplicates ({} follows {}); sort it "
                                    "and drop repeats",
                                    b, h, I, row[x], row[x - 1]));
        }
      }
}

} // namespace

TransposedBlockSet transposeBlockSet(const BlockSet &bs) {
  checkBlockSet(bs);
  TransposedBlockSet out;
  out.B = bs.B, out.H = bs.H, out.nQB = bs.nQB, out.nKB = bs.nKB;
  out.bq = bs.bq, out.bk = bs.bk, out.Sq = bs.Sq, out.Skv = bs.Skv;
  out.lists.resize(static_cast<size_t>(bs.B * bs.H * bs.nKB));
  // Visiting I in ascending order appends to every column in ascending order.
  for (int64_t b = 0; b < bs.B; ++b)
    for (int64_t h = 0; h < bs.H; ++h)
      for (int64_t I = 0; I < bs.nQB; ++I)
        for (int32_t J : bs.row(b, h, I))
          out.col(b, h, J).push_back(static_cast<int32_t>(I));
  return out;
}

} // namespace sattn::ref
