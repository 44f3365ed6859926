#include "matchmaker/backtrace.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

namespace subctx::matchmaker {

namespace {

// Reads are split at this granularity so that a partial process_vm_readv
// stops exactly at the first unreadable page (x86-64 pages are 4 KiB or
// larger multiples of it).
constexpr uint64_t kReadChunk = 4096;
constexpr size_t kReadChunksPerCall = 64;
constexpr size_t kMaxCallLength = 7;

// Copies the readable prefix of [addr, addr+size) of this process's memory
// into out and returns its length.  process_vm_readv on our own pid returns
// an error where a plain load would fault.
size_t read_memory(uint64_t addr, void* out, size_t size) {
  size = static_cast<size_t>(std::min<uint64_t>(size, UINT64_MAX - addr));
  const pid_t self = getpid();
  size_t done = 0;
  while (done < size) {
    iovec remote[kReadChunksPerCall];
    size_t count = 0, batch = 0;
    for (uint64_t at = addr + done; count < kReadChunksPerCall && done + batch < size; ++count) {
      const size_t len = static_cast<size_t>(std::min<uint64_t>(size - done - batch, kReadChunk - at % kReadChunk));
      remote[count] = {reinterpret_cast<void*>(at), len};
      at += len;
      batch += len;
    }
    iovec local = {static_cast<char*>(out) + done, batch};
    const ssize_t got = process_vm_readv(self, &local, 1, remote, count, 0);
    if (got <= 0) break;
    done += static_cast<size_t>(got);
    if (static_cast<size_t>(got) < batch) break;
  }
  return done;
}

// The executable ranges, sorted and merged, for lookups by address.
class CodeMap {
 public:
  explicit CodeMap(std::vector<CodeRange> ranges) {
    std::erase_if(ranges, [](const CodeRange& r) { return r.lo >= r.hi; });
    std::sort(ranges.begin(), ranges.end(), [](const CodeRange& a, const CodeRange& b) { return a.lo < b.lo; });
    for (const CodeRange& r : ranges) {
      if (!ranges_.empty() && r.lo <= ranges_.back().hi) ranges_.back().hi = std::max(ranges_.back().hi, r.hi);
      else ranges_.push_back(r);
    }
  }

  const CodeRange* find(uint64_t addr) const {
    auto it =
        std::upper_bound(ranges_.begin(), ranges_.end(), addr, [](uint64_t a, const CodeRange& r) { return a < r.lo; });
    if (it == ranges_.begin()) return nullptr;
    --it;
    return addr < it->hi ? &*it : nullptr;
  }

 private:
  std::vector<CodeRange> ranges_;
};

// A return address is judged by the byte before it: the call instruction
// lies in code (a noreturn call may be the last instruction of a range).
const CodeRange* code_before(const CodeMap& code, uint64_t ret) { return ret ? code.find(ret - 1) : nullptr; }

// The length of a call r/m64 (ff /2) from its ff byte, by ModRM and SIB.
size_t call_rm64_length(uint8_t modrm, uint8_t sib) {
  const unsigned mod = modrm >> 6, rm = modrm & 7;
  if (mod == 3) return 2;
  const bool has_sib = rm == 4;
  size_t disp = mod == 1 ? 1 : mod == 2 ? 4 : 0;
  if (mod == 0 && rm == 5) disp = 4;                    // rip-relative
  if (mod == 0 && has_sib && (sib & 7) == 5) disp = 4;  // SIB without a base
  return 2 + (has_sib ? 1 : 0) + disp;
}

// True when the word at ret points just after a call instruction in code.
bool is_return_address(const CodeMap& code, uint64_t ret) {
  const CodeRange* range = code_before(code, ret);
  if (!range) return false;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(ret - range->lo, kMaxCallLength));
  uint8_t bytes[kMaxCallLength];
  const uint64_t from = ret - n;
  if (read_memory(from, bytes, n) == n) return ends_with_call({bytes, n});
  // The earlier page may be unreadable: the bytes on ret-1's page still tell.
  const uint64_t page = (ret - 1) & ~(kReadChunk - 1);
  if (page <= from) return false;
  const size_t tail = static_cast<size_t>(ret - page);
  return read_memory(page, bytes, tail) == tail && ends_with_call({bytes, tail});
}

// The readable words of the stack from sp (clamped into the bounds)
// upwards, at most kMaxStackScanBytes, read in one go.
struct StackWindow {
  uint64_t lo = 0;
  std::vector<uint64_t> words;

  bool holds(uint64_t addr) const { return addr >= lo && (addr - lo) / 8 < words.size(); }
  // The word at addr (8-aligned), from the window or else read on its own.
  bool word_at(uint64_t addr, uint64_t* out) const {
    if (holds(addr)) {
      *out = words[(addr - lo) / 8];
      return true;
    }
    return read_memory(addr, out, sizeof *out) == sizeof *out;
  }
};

// sp clamped into the stack bounds (after a stack overflow it lies below
// them) and aligned up to a word.
uint64_t scan_start(const FrameScanInput& in) {
  const uint64_t sp = std::clamp(in.sp, in.stack_lo, in.stack_hi);
  const uint64_t up = (8 - sp % 8) % 8;
  return in.stack_hi - sp < up ? in.stack_hi : sp + up;
}

StackWindow read_stack_window(const FrameScanInput& in) {
  StackWindow w;
  w.lo = scan_start(in);
  const uint64_t hi = w.lo + std::min<uint64_t>(in.stack_hi - w.lo, kMaxStackScanBytes);
  w.words.resize((hi - w.lo) / 8);
  const size_t got = read_memory(w.lo, w.words.data(), w.words.size() * 8);
  w.words.resize(got / 8);
  return w;
}

struct ChainFrame {
  uint64_t slot = 0;  // where the return address is stored
  uint64_t ret = 0;
};

// Follows the rbp chain while each frame record lies in the stack bounds
// at or above sp, above the previous one, and holds a return address in code.
std::vector<ChainFrame> walk_rbp_chain(const FrameScanInput& in, const CodeMap& code, const StackWindow& stack) {
  std::vector<ChainFrame> chain;
  const uint64_t lower = scan_start(in);
  for (uint64_t frame = in.rbp; chain.size() < in.max_frames;) {
    if (frame % 8 != 0 || frame < lower || in.stack_hi < 16 || frame > in.stack_hi - 16) break;
    uint64_t saved_rbp = 0, ret = 0;
    if (!stack.word_at(frame, &saved_rbp) || !stack.word_at(frame + 8, &ret)) break;
    if (!code_before(code, ret)) break;
    chain.push_back({frame + 8, ret});
    if (saved_rbp <= frame) break;
    frame = saved_rbp;
  }
  return chain;
}

// The result being built: at most max entries, adjacent duplicates dropped.
class FrameList {
 public:
  FrameList(std::vector<uint64_t>& out, size_t max) : out_(out), max_(max) {}
  bool full() const { return out_.size() >= max_; }
  // False once the list is full.
  bool add(uint64_t addr) {
    if (full()) return false;
    if (out_.empty() || out_.back() != addr) out_.push_back(addr);
    return !full();
  }

 private:
  std::vector<uint64_t>& out_;
  size_t max_;
};

void collect_frames(const FrameScanInput& in, std::vector<uint64_t>& out) {
  FrameList frames(out, in.max_frames);
  if (!frames.add(in.pc) || in.stack_lo >= in.stack_hi) return;
  const CodeMap code(in.code);
  const StackWindow stack = read_stack_window(in);
  const std::vector<ChainFrame> chain = walk_rbp_chain(in, code, stack);
  // Stack order is call order: merge the chain's records into the scan.
  size_t next = 0;
  for (size_t i = 0; i < stack.words.size(); ++i) {
    const uint64_t at = stack.lo + 8 * i, word = stack.words[i];
    const bool on_chain = next < chain.size() && chain[next].slot == at;
    if (on_chain) ++next;
    if ((on_chain || is_return_address(code, word)) && !frames.add(word)) return;
  }
  for (; next < chain.size(); ++next)
    if (!frames.add(chain[next].ret)) return;
}

}  // namespace

bool ends_with_call(std::span<const uint8_t> before) {
  const size_t n = before.size();
  if (n >= 5 && before[n - 5] == 0xe8) return true;
  for (size_t len : {2, 3, 4, 6, 7}) {
    if (n < len) break;
    const uint8_t* p = before.data() + (n - len);
    if (p[0] != 0xff || ((p[1] >> 3) & 7) != 2) continue;
    if (call_rm64_length(p[1], len >= 3 ? p[2] : 0) == len) return true;
  }
  return false;
}

std::vector<uint64_t> subcontext_frames(const FrameScanInput& in) {
  std::vector<uint64_t> out;
  try {
    collect_frames(in, out);
  } catch (...) {
    // Reporting a fault: what was found so far is still worth returning.
  }
  return out;
}

}  // namespace subctx::matchmaker
