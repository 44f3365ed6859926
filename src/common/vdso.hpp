// Function symbols of a vDSO, read from its own ELF symbol table (never from
// an assumed layout: the vDSO changes between kernels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "image/format.hpp"

namespace subctx {

// Parses the vDSO ELF image at [base, base+size); offsets are from base.
// Returns false (with *why) if the image is malformed; every read is
// bounds-checked against size.
bool parse_vdso_symbols(const uint8_t* base, size_t size, std::vector<image::VdsoSymbol>* out, std::string* why);

struct HostVdso {
  uint64_t base = 0;
  uint64_t size = 0;
  std::vector<image::VdsoSymbol> symbols;
  uint64_t address_of(const std::string& name) const;  // 0 if absent
};

// This process's vDSO (AT_SYSINFO_EHDR; size from /proc/self/maps).
HostVdso host_vdso();

}  // namespace subctx
