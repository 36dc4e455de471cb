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

/// detail::checkBlockSet, plus rows ascending without duplicates (a column
/// built from them would otherwise be unsorted or name a query block twice).
void checkRowsAscending(const BlockSet &bs) {
  detail::checkBlockSet(bs);
  for (int64_t b = 0; b < bs.B; ++b)
    for (int64_t h = 0; h < bs.H; ++h)
      for (int64_t I = 0; I < bs.nQB; ++I) {
        const std::vector<int32_t> &row = bs.row(b, h, I);
        for (size_t x = 1; x < row.size(); ++x)
          if (row[x] <= row[x - 1])
            throw Error(fmt::format("transpose: block set row (b={}, h={}, I={}) is not "
                                    "ascending without duplicates ({} follows {}); sort it "
                                    "and drop repeats",
                                    b, h, I, row[x], row[x - 1]));
      }
}

} // namespace

TransposedBlockSet transposeBlockSet(const BlockSet &bs) {
  checkRowsAscending(bs);
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
