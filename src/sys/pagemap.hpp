// /proc/self/pagemap: one 64-bit entry per virtual page (the kernel's
// Documentation/admin-guide/mm/pagemap.rst).  The bits subctx reads, once.
#pragma once

#include <cstdint>

namespace subctx::sys::pagemap {

inline constexpr uint64_t kPresent = uint64_t{1} << 63;       // in RAM
inline constexpr uint64_t kSwapped = uint64_t{1} << 62;       // in swap
inline constexpr uint64_t kFileOrShared = uint64_t{1} << 61;  // file page or shared anonymous
inline constexpr uint64_t kEntryBytes = 8;

// The page was touched: in RAM or in swap.
constexpr bool populated(uint64_t entry) { return entry & (kPresent | kSwapped); }

}  // namespace subctx::sys::pagemap
