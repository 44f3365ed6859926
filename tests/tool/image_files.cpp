#include "image_files.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace subctx::test {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes, unsigned mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  // Explicit mode: the Matchmaker refuses images writable by group or
  // others, whatever the umask of the test run is.
  if (chmod(path.c_str(), mode) != 0) throw std::runtime_error("chmod " + path + ": " + std::strerror(errno));
}

std::vector<Elf64_Phdr> program_headers(const std::string& image) {
  const std::vector<uint8_t> bytes = read_file(image);
  Elf64_Ehdr eh;
  if (bytes.size() < sizeof eh) throw std::runtime_error(image + " is too short for an ELF header");
  std::memcpy(&eh, bytes.data(), sizeof eh);
  if (eh.e_phoff + uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr) > bytes.size())
    throw std::runtime_error(image + ": program headers past the end");
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  std::memcpy(ph.data(), bytes.data() + eh.e_phoff, ph.size() * sizeof(Elf64_Phdr));
  return ph;
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::vector<uint8_t> bytes = read_file(path);
  if (offset >= bytes.size()) throw std::runtime_error("flip_byte: offset past the end of " + path);
  bytes[offset] ^= 0xff;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) throw std::runtime_error("stat " + path);
  write_file(path, bytes, st.st_mode & 07777);
}

}  // namespace subctx::test
