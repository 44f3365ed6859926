// Image files for the tool tests: one written by the real basic_server per
// test binary, and damaged copies of it.  The ELF program headers are read
// here with <elf.h>, independently of the reader under test.
#pragma once

#include <elf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace subctx::test {

using TempDir = subctx::testing::TempDir;

std::vector<uint8_t> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes, unsigned mode = 0600);

// The program headers: [0] is the PT_NOTE, [1..] one PT_LOAD per segment.
std::vector<Elf64_Phdr> program_headers(const std::string& image);

// XORs the byte at offset with 0xff in place.
void flip_byte(const std::string& path, uint64_t offset);

}  // namespace subctx::test
