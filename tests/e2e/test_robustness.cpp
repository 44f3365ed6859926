// Crashes the containment promise covers (issue 14): an image file truncated
// or overwritten under a mapped client, hostile thread records, an image
// segment in the client's stack growth room, fork() while another thread is
// inside a call.  Each case that once killed or hung the client runs in a
// forked child of this process (the same mappings and Matchmaker): a crash
// or a hang fails the test, not the test process.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "image/format.hpp"
#include "protection_names.hpp"
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;
using subctx::Protection;
namespace fmt = subctx::image;

constexpr uint64_t kPage = 4096;

const std::string& fault_image() {
  static const std::string path = build_image(paths::kFaultServer, "robust-fault.img");
  return path;
}

// ---- a forked child that reports --------------------------------------

// What the child found; fail() marks it failed.
struct Report {
  std::string text;
  bool failed = false;
  void fail(const std::string& why) {
    failed = true;
    text += "FAILED: " + why + "\n";
  }
  void expect(bool ok, const std::string& what) {
    if (!ok) fail(what);
  }
};

struct ChildOutcome {
  bool exited = false;
  int code = -1, signal = 0;
  bool timed_out = false;
  std::string report;
  bool ok() const { return exited && code == 0 && !timed_out; }
  std::string describe() const {
    std::string s = timed_out ? "child timed out (killed): it hung"
                    : exited  ? "child exited " + std::to_string(code)
                              : "child killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
    return s + "\n" + report;
  }
};

// Runs body in a forked child; its report comes back through a pipe.
ChildOutcome in_child(const std::function<void(Report&)>& body, Millis timeout = Millis(20000)) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    close(p[0]);
    Report r;
    try {
      body(r);
    } catch (const std::exception& e) {
      r.fail(std::string("uncaught exception: ") + e.what());
    }
    for (size_t done = 0; done < r.text.size();) {
      const ssize_t n = write(p[1], r.text.data() + done, r.text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    _exit(r.failed ? 1 : 0);
  }
  close(p[1]);
  ChildOutcome o;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      o.timed_out = true;
      break;
    }
    pollfd pf{p[0], POLLIN, 0};
    if (poll(&pf, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    o.report.append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  int status = 0;
  while (!o.timed_out) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) o.timed_out = true;
    else std::this_thread::sleep_for(Millis(5));
  }
  if (o.timed_out) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return o;
  }
  o.exited = WIFEXITED(status);
  if (o.exited) o.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) o.signal = WTERMSIG(status);
  return o;
}

bool has_all(const std::string& text, std::initializer_list<std::string> words, std::string* missing) {
  for (const auto& w : words)
    if (text.find(w) == std::string::npos) {
      *missing = w;
      return false;
    }
  return true;
}

// In the child: fn must throw E (a subctx::Error of code) with every word.
template <class E, class Fn>
std::string expect_throws(Report& r, const std::string& what, Errc code, std::initializer_list<std::string> words,
                          Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    std::string missing;
    r.expect(e.code() == code, what + ": code " + subctx::errc_name(e.code()) + ", expected " +
                                   subctx::errc_name(code) + ": " + e.what());
    r.expect(has_all(e.what(), words, &missing), what + ": message lacks \"" + missing + "\": " + e.what());
    r.text += what + ": " + e.what() + "\n";
    return e.what();
  } catch (const std::exception& e) {
    r.fail(what + ": unexpected exception: " + e.what());
    return "";
  }
  r.fail(what + ": no exception");
  return "";
}

// ---- image helpers ----------------------------------------------------

struct ThreadNote {
  uint64_t at = 0;  // file offset of the descriptor
  uint64_t tcb = 0, gate_lo = 0, gate_hi = 0, stdout_file = 0;
};
ThreadNote thread_note(const std::string& path) {
  ThreadNote t;
  t.at = read_layout(path).notes.at(fmt::kNoteThread).desc_offset;
  t.tcb = read_value<uint64_t>(path, t.at);
  t.gate_lo = read_value<uint64_t>(path, t.at + 8);
  t.gate_hi = read_value<uint64_t>(path, t.at + 16);
  t.stdout_file = read_value<uint64_t>(path, t.at + 24);
  return t;
}

// The program header (index into phdrs, 1-based for PT_LOADs) holding a; 0: none.
size_t phdr_holding(const ImageLayout& l, uint64_t a) {
  for (size_t i = 1; i < l.phdrs.size(); ++i)
    if (a >= l.phdrs[i].p_vaddr && a - l.phdrs[i].p_vaddr < l.phdrs[i].p_memsz) return i;
  return 0;
}

// The file offset of address a, or UINT64_MAX where it has no file data.
uint64_t file_offset_of(const ImageLayout& l, uint64_t a) {
  const size_t i = phdr_holding(l, a);
  if (!i || a - l.phdrs[i].p_vaddr >= l.phdrs[i].p_filesz) return UINT64_MAX;
  return l.phdrs[i].p_offset + (a - l.phdrs[i].p_vaddr);
}

// Overwrites path in place with from's bytes, as `cp from path` does: the
// same inode, truncated and written.
void overwrite_in_place(const std::string& from, const std::string& path) {
  std::ifstream in(from, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string data = bytes.str();
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) throw std::runtime_error("write " + path);
    done += static_cast<size_t>(n);
  }
  close(fd);
}

subctx::MapOptions with(Protection p) {
  subctx::MapOptions o;
  o.protection = p;
  return o;
}

// ---- 1. truncated or shrunk image -------------------------------------

class TruncatedImage : public E2eTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "pkey" && !pkeys_work()) GTEST_SKIP() << "no protection keys here";
    backend_ = subctx::testing::protection_named(GetParam());
  }
  Protection backend_ = Protection::None;
};

// Every page of the file cut before the first call: the export's first
// instruction raises SIGBUS, and so did the handler's read of the thread
// record (a page of the image never touched) -- the client died.
TEST_P(TruncatedImage, CutBeforeTheFirstCallFailsTheCall) {
  const std::string path = copy_image(fault_image(), std::string("cut-all-") + GetParam() + ".img");
  const uint64_t header_end = read_layout(path).header_end;
  const ChildOutcome o = in_child([&](Report& r) {
    subctx::Subcontext sc = mm().request_map(path, with(backend_));
    r.expect(truncate(path.c_str(), static_cast<off_t>(header_end)) == 0, "truncate");
    expect_throws<subctx::SubcontextFault>(r, "first call", Errc::Fault,
                                           {path, "SIGBUS", "changed on disk", "its size went from", "rename",
                                            "the subcontext is poisoned"},
                                           [&] { sc.call<int64_t(int64_t)>("bump", 1); });
    expect_throws<subctx::SubcontextPoisoned>(r, "next call", Errc::Poisoned, {path, "changed on disk"},
                                              [&] { sc.call<int64_t(int64_t)>("bump", 1); });
    expect_throws<subctx::BadImage>(r, "reset", Errc::BadImage, {"cannot reset", path, "changed on disk", "rename"},
                                    [&] { sc.reset(); });
    mm().unmap(sc);
    // The client is whole: another image maps and runs.
    subctx::Subcontext basic = mm().request_map(basic_image(), with(backend_));
    r.expect(basic.call<int64_t(int64_t)>("square", 7) == 49, "square(7) after the unmap");
  });
  EXPECT_TRUE(o.ok()) << o.describe();
}

// The file cut from the page that holds the subcontext's stdout FILE on,
// after calls ran: the call itself completes (its pages are private copies
// by now), then the Matchmaker's check for pending output read the FILE --
// SIGBUS in the client's own code, once misreported as a client read
// violation that stopped the process.
TEST_P(TruncatedImage, CutUnderTheStdoutStreamFailsTheCall) {
  const std::string path = copy_image(fault_image(), std::string("cut-stdout-") + GetParam() + ".img");
  const ImageLayout l = read_layout(path);
  const ThreadNote t = thread_note(path);
  const uint64_t at = file_offset_of(l, t.stdout_file);
  ASSERT_NE(at, UINT64_MAX) << "stdout's FILE has no file data";
  const uint64_t cut = at & ~(kPage - 1);
  // The call must not need the pages cut: the executable's code and data
  // and the gate stack lie before libc's data in the file.
  ASSERT_LT(file_offset_of(l, t.gate_hi - 8), cut) << "this layout puts the gate stack after stdout's FILE";
  const ChildOutcome o = in_child([&](Report& r) {
    subctx::Subcontext sc = mm().request_map(path, with(backend_));
    r.expect(sc.call<int64_t(int64_t)>("bump", 1) == 101, "bump(1) before the cut");
    r.expect(truncate(path.c_str(), static_cast<off_t>(cut)) == 0, "truncate");
    expect_throws<subctx::SubcontextFault>(r, "call after the cut", Errc::Fault,
                                           {path, "SIGBUS", "reading the subcontext's stdout stream after the call",
                                            "changed on disk", "rename"},
                                           [&] { sc.call<int64_t(int64_t)>("bump", 1); });
    expect_throws<subctx::SubcontextPoisoned>(r, "next call", Errc::Poisoned, {"changed on disk"},
                                              [&] { sc.call<int64_t(int64_t)>("bump", 1); });
    mm().unmap(sc);
  });
  EXPECT_TRUE(o.ok()) << o.describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, TruncatedImage, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

// ---- 2. overwritten in place ------------------------------------------

class ReplacedImage : public E2eTest {};

// `cp new.img live.img` over a mapped image: the next reset would bring
// the new file's bytes back under the old layout; it is refused and the
// subcontext poisoned.
TEST_F(ReplacedImage, OverwrittenInPlaceIsNotResetOnto) {
  const std::string path = copy_image(fault_image(), "live.img");
  const ChildOutcome o = in_child([&](Report& r) {
    subctx::Subcontext sc = mm().request_map(path);
    r.expect(sc.call<int64_t(int64_t)>("bump", 5) == 105, "bump(5)");
    std::this_thread::sleep_for(Millis(30));  // past the file system's timestamp granularity
    overwrite_in_place(fault_image(), path);  // the same bytes, even: the file was written
    expect_throws<subctx::BadImage>(r, "reset", Errc::BadImage,
                                    {"cannot reset", path, "changed on disk", "modification time", "rename"},
                                    [&] { sc.reset(); });
    expect_throws<subctx::SubcontextPoisoned>(r, "call after the refused reset", Errc::Poisoned,
                                              {path, "changed on disk", "rename"},
                                              [&] { sc.call<int64_t(int64_t)>("bump", 5); });
    mm().unmap(sc);
  });
  EXPECT_TRUE(o.ok()) << o.describe();
}

// A fault after the overwrite: the message says the image changed and the
// subcontext is poisoned rather than reset onto the new contents.
TEST_F(ReplacedImage, FaultAfterAnOverwriteSaysSoAndPoisons) {
  const std::string path = copy_image(fault_image(), "live-fault.img");
  const ChildOutcome o = in_child([&](Report& r) {
    subctx::Subcontext sc = mm().request_map(path);
    r.expect(sc.call<int64_t(int64_t)>("bump", 5) == 105, "bump(5)");
    std::this_thread::sleep_for(Millis(30));
    overwrite_in_place(fault_image(), path);
    const std::string msg = expect_throws<subctx::SubcontextFault>(
        r, "fault", Errc::Fault, {"crash_null", "SIGSEGV", path, "changed on disk", "the subcontext is poisoned"},
        [&] { sc.call<int64_t(int64_t)>("crash_null", 0); });
    r.expect(msg.find("reset to its snapshot") == std::string::npos, "the message claims a reset: " + msg);
    expect_throws<subctx::SubcontextPoisoned>(r, "next call", Errc::Poisoned, {"changed on disk"},
                                              [&] { sc.call<int64_t(int64_t)>("bump", 5); });
  });
  EXPECT_TRUE(o.ok()) << o.describe();
}

// The supported way: a new file renamed over the old name.  The mapped
// subcontext keeps its inode (unlinked now) and resets onto it as before.
TEST_F(ReplacedImage, ReplacedByRenameKeepsWorking) {
  const std::string path = copy_image(fault_image(), "renamed.img");
  subctx::Subcontext sc = mm().request_map(path);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 5), 105);
  std::this_thread::sleep_for(Millis(30));
  const std::string next = copy_image(fault_image(), "renamed.img.new");
  ASSERT_EQ(rename(next.c_str(), path.c_str()), 0);
  subctx::ResetInfo info = sc.reset();
  EXPECT_GE(info.pages_restored, 1u);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 5), 105);
  try {
    sc.call<int64_t(int64_t)>("crash_null", 0);
    ADD_FAILURE() << "crash_null returned";
  } catch (const subctx::SubcontextFault& f) {
    EXPECT_TRUE(f.reset_done()) << f.what();
    EXPECT_EQ(std::string(f.what()).find("changed on disk"), std::string::npos) << f.what();
  }
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 5), 105);
  // Metadata alone is not a change of contents.
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  EXPECT_NO_THROW(sc.reset());
}

// ---- 3. hostile thread records ----------------------------------------

class HostileThreadRecord : public E2eTest {
 protected:
  void SetUp() override {
    layout_ = read_layout(basic_image());
    note_ = thread_note(basic_image());
  }
  void TearDown() override {
    E2eTest::TearDown();
    expect_valid_map_works();
  }
  std::string patched(const std::string& name, const std::function<void(const std::string&)>& fn) {
    const std::string p = copy_image(basic_image(), name);
    fn(p);
    reseal(p);
    return p;
  }
  const Elf64_Phdr& tcb_segment() const { return layout_.phdrs.at(phdr_holding(layout_, note_.tcb)); }
  ImageLayout layout_;
  ThreadNote note_;
};

TEST_F(HostileThreadRecord, RealImageHasAWholeThreadRecord) {
  const Elf64_Phdr& s = tcb_segment();
  EXPECT_TRUE(s.p_flags & PF_W);
  EXPECT_LE(note_.tcb + 2368, s.p_vaddr + s.p_memsz);
  EXPECT_EQ(read_value<uint64_t>(basic_image(), file_offset_of(layout_, note_.tcb)), note_.tcb);
}

// The thread pointer on a page of zeros inside a writable segment: the
// handler (which found the subcontext by the TCB's first word) took the
// first fault inside a call for the client's own and the process died.
TEST_F(HostileThreadRecord, ThreadPointerOnAZeroPageIsRefused) {
  uint64_t zero_at = 0;
  for (size_t i = 1; i < layout_.phdrs.size() && !zero_at; ++i) {
    const Elf64_Phdr& s = layout_.phdrs[i];
    if (!(s.p_flags & PF_W) || (s.p_flags & PF_X)) continue;
    for (uint64_t a = s.p_vaddr; a + 2368 <= s.p_vaddr + s.p_memsz && !zero_at; a += kPage) {
      const uint64_t off = file_offset_of(layout_, a);
      if ((off == UINT64_MAX || read_value<uint64_t>(basic_image(), off) == 0) &&
          !(a < note_.gate_hi && note_.gate_lo < a + 2368))
        zero_at = a;
    }
  }
  ASSERT_NE(zero_at, 0u) << "no zero page in a writable segment";
  const std::string p =
      patched("tcb-zero.img", [&](const std::string& f) { patch_value<uint64_t>(f, note_.at, zero_at); });
  expect_map_refused(p, Errc::BadImage, {p, "thread record", "does not start with its own address (it holds 0x0)"},
                     layout_.all_ranges());
}

// The thread pointer in the last 8 bytes of its segment (its first word
// even holding its own address): glibc's struct pthread runs past the end.
TEST_F(HostileThreadRecord, ThreadRecordPastItsSegmentIsRefused) {
  const Elf64_Phdr& s = tcb_segment();
  const uint64_t tcb = s.p_vaddr + s.p_memsz - 8;
  const std::string p = patched("tcb-last8.img", [&](const std::string& f) {
    patch_value<uint64_t>(f, note_.at, tcb);
    if (const uint64_t off = file_offset_of(layout_, tcb); off != UINT64_MAX) patch_value<uint64_t>(f, off, tcb);
  });
  expect_map_refused(p, Errc::BadImage, {p, "thread record", "runs past the end of its segment"}, layout_.all_ranges());
}

// The gate stack laid over the thread record: the first call's frames
// overwrite the TCB.
TEST_F(HostileThreadRecord, GateStackOverTheThreadRecordIsRefused) {
  const Elf64_Phdr& s = tcb_segment();
  const uint64_t lo = s.p_vaddr, hi = (std::min(s.p_vaddr + s.p_memsz, note_.tcb + 0x1000)) & ~uint64_t{15};
  const std::string p = patched("gate-over-tcb.img", [&](const std::string& f) {
    patch_value<uint64_t>(f, note_.at + 8, lo);
    patch_value<uint64_t>(f, note_.at + 16, hi);
  });
  expect_map_refused(p, Errc::BadImage, {p, "gate stack", "overlaps the thread record"}, layout_.all_ranges());
}

// ---- 4. a segment in the client's stack growth room --------------------

// This process's [stack].
Range own_stack() {
  const std::string line = line_containing(read_self_maps(), "[stack]");
  Range r;
  std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64, &r.lo, &r.hi);
  return r;
}

// Grows this thread's stack by about `bytes`, touching every page.
__attribute__((noinline)) uint64_t grow_stack(uint64_t bytes) {
  volatile char frame[64 * 1024];
  for (size_t i = 0; i < sizeof frame; i += kPage) frame[i] = static_cast<char>(i);
  if (bytes <= sizeof frame) return frame[0];
  return grow_stack(bytes - sizeof frame) + frame[kPage];
}

class StackRoom : public E2eTest {
 protected:
  // A copy of the fault image with its highest segment moved to end
  // `below` bytes under this client's [stack] (images of older versions
  // had the server's stack there, at random); "" when the image's other
  // ranges are in the way.
  std::string moved_below_stack(const std::string& name, uint64_t below) {
    const std::string p = copy_image(fault_image(), name);
    const ImageLayout l = read_layout(p);
    const size_t last = l.phdrs.size() - 1;
    const Range stack = own_stack();
    const uint64_t size = l.phdrs[last].p_memsz;
    const uint64_t vaddr = (stack.lo - below - size) & ~(kPage - 1);
    if (vaddr < l.phdrs[last - 1].p_vaddr + l.phdrs[last - 1].p_memsz) return "";
    if (l.vdso.hi && vaddr < l.vdso.hi && l.vdso.lo < vaddr + size) return "";
    patch_value<uint64_t>(p, ImageLayout::phdr_offset(last) + offsetof(Elf64_Phdr, p_vaddr), vaddr);
    patch_value<uint64_t>(p, ImageLayout::phdr_offset(last) + offsetof(Elf64_Phdr, p_paddr), vaddr);
    reseal(p);
    return p;
  }
};

// 4 MiB below [stack], well inside RLIMIT_STACK's room: accepted, the
// client crashed when its stack later grew there.  Refused now; the
// client's stack still grows.
TEST_F(StackRoom, SegmentInTheStacksGrowthRoomIsRefused) {
  struct rlimit rl {};
  ASSERT_EQ(getrlimit(RLIMIT_STACK, &rl), 0);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (uint64_t{8} << 20))
    GTEST_SKIP() << "RLIMIT_STACK is below 8 MiB here";
  const std::string p = moved_below_stack("below-stack.img", uint64_t{4} << 20);
  if (p.empty()) GTEST_SKIP() << "the image's other ranges lie near this client's stack";
  const ChildOutcome o = in_child([&](Report& r) {
    expect_throws<subctx::AddressConflict>(r, "map", Errc::Conflict, {p, "[stack]", "RLIMIT_STACK", "stack_guard_gap"},
                                           [&] { mm().request_map(p); });
    r.expect(grow_stack(uint64_t{6} << 20) != 12345, "");  // what the segment would have stopped
    r.text += "grew the stack by 6 MiB\n";
  });
  EXPECT_TRUE(o.ok()) << o.describe();
}

// Just below the growth room, inside the kernel's guard gap (256 pages by
// default): growing the stack to its limit would fail there.
TEST_F(StackRoom, SegmentInTheGuardGapIsRefused) {
  struct rlimit rl {};
  ASSERT_EQ(getrlimit(RLIMIT_STACK, &rl), 0);
  const uint64_t limit = rl.rlim_cur == RLIM_INFINITY ? uint64_t{8} << 20 : rl.rlim_cur;
  const Range stack = own_stack();
  // below counts from the stack's current bottom: end the segment 512 KiB
  // past the growth limit.
  const uint64_t below = limit - (stack.hi - stack.lo) + (512 << 10);
  const std::string p = moved_below_stack("in-guard-gap.img", below);
  if (p.empty()) GTEST_SKIP() << "the image's other ranges lie near this client's stack";
  expect_error([&] { mm().request_map(p); }, Errc::Conflict, {p, "[stack]", "RLIMIT_STACK", "stack_guard_gap"});
  // Beyond the gap: fine.
  const std::string far = moved_below_stack("past-guard-gap.img", limit + (uint64_t{4} << 20));
  if (far.empty()) return;
  subctx::Subcontext sc = mm().request_map(far);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
}

// ---- 5. fork() while another thread is inside a call --------------------

class ForkDuringCall : public E2eTest {};

// The child inherited the call mutex held by a thread it does not have: its
// first call of that subcontext waited forever.  Now the subcontext is
// poisoned in the child (its memory is mid-call); reset() brings it back.
TEST_F(ForkDuringCall, ChildGetsAPoisonedSubcontextNotADeadlock) {
  subctx::Subcontext sc = mm().request_map(fault_image());
  std::atomic<int64_t> spun{-1};
  std::thread caller([&] { spun = sc.call<int64_t(int64_t)>("spin", 1500); });
  std::this_thread::sleep_for(Millis(300));  // the caller is inside spin() now
  const ChildOutcome o = in_child(
      [&](Report& r) {
        expect_throws<subctx::SubcontextPoisoned>(r, "call in the child", Errc::Poisoned,
                                                  {fault_image(), "poisoned in this child process",
                                                   "inside a call of it", "reset()"},
                                                  [&] { sc.call<int64_t(int64_t)>("bump", 1); });
        const subctx::ResetInfo info = sc.reset();
        r.text += "reset restored " + std::to_string(info.pages_restored) + " pages\n";
        r.expect(sc.call<int64_t(int64_t)>("bump", 5) == 105, "bump(5) after the reset");
        // The rest of the Matchmaker works: another map, a fault, an unmap.
        subctx::Subcontext basic = mm().request_map(basic_image());
        r.expect(basic.call<int64_t(int64_t)>("square", 7) == 49, "square(7) in the child");
        expect_throws<subctx::SubcontextFault>(r, "fault in the child", Errc::Fault, {"reset to its snapshot"},
                                               [&] { sc.call<int64_t(int64_t)>("crash_null", 0); });
        mm().unmap(basic);
        mm().unmap(sc);
      },
      Millis(15000));
  caller.join();
  EXPECT_TRUE(o.ok()) << o.describe();
  EXPECT_EQ(spun.load(), 1500);
  // The parent's subcontext is untouched by the child.
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
}

// Forks while another thread maps, calls and unmaps: the child must never
// inherit the registry's (or the fault views') lock held.
TEST_F(ForkDuringCall, ForkWhileAnotherThreadMapsAndUnmaps) {
#if defined(__SANITIZE_ADDRESS__)
  // GCC's libasan does not take its allocator's locks around fork(): a child
  // forked while the other thread allocates may hang in its first malloc.
  GTEST_SKIP() << "the sanitizer runtime's allocator is not fork-safe";
#endif
  const std::string other = copy_image(fault_image(), "fork-churn.img");
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0};
  std::thread churn([&] {
    while (!stop) {
      subctx::Subcontext s = mm().request_map(basic_image());
      s.call<int64_t(int64_t)>("square", 3);
      mm().unmap(s);
      ++rounds;
    }
  });
  while (rounds < 3) std::this_thread::sleep_for(Millis(1));
  int failures = 0;
  for (int i = 0; i < 20 && failures == 0; ++i) {
    const ChildOutcome o = in_child(
        [&](Report& r) {
          subctx::Subcontext s = mm().request_map(other);
          r.expect(s.call<int64_t(int64_t)>("bump", 1) == 101, "bump(1) in the child");
          mm().unmap(s);
        },
        Millis(10000));
    if (!o.ok()) {
      ++failures;
      ADD_FAILURE() << "fork " << i << ": " << o.describe();
    }
  }
  stop = true;
  churn.join();
}

}  // namespace
}  // namespace e2e
