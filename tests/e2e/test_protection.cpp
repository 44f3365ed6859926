// Protection (docs/protection.md): the none, mprotect and pkey backends;
// violations and their one-line diagnostic; raw calls; the client's
// violation handler; chaining to the client's own SIGSEGV/SIGBUS handlers;
// per-thread rights; map options and their errors; str results copied out.
//
// Everything that faults runs in e2e_protection_client, a helper process
// linked with the plain library (also under subctx_e2e_tests_asan): this
// process only maps, calls and looks.  The helper gets its backend on its
// command line; SUBCTX_* variables of this process are not passed on.
#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "protection_names.hpp"
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;
using subctx::Protection;

// ---- images, machine ----------------------------------------------------

const std::string& protection_image() {  // hits pure_add helper_addr data_addr data_byte motto
  static const std::string path = build_image(paths::kProtectionServer, "protection.img");
  return path;
}

const std::string& policy_image() {  // open_door, restricted admin_reset
  static const std::string path = build_image(paths::kPolicyServer, "policy.img");
  return path;
}

#define SKIP_WITHOUT_PKEYS(backend)                                                        \
  do {                                                                                     \
    if (std::string(backend).rfind("pkey", 0) == 0 && !pkeys_work())                       \
      GTEST_SKIP() << "pkey_alloc fails here: no protection keys (the pkey backend is "    \
                      "covered on machines that have them)";                               \
  } while (0)

using subctx::testing::protection_named;

subctx::MapOptions with(Protection p, bool readable = false, bool exact = false) {
  subctx::MapOptions o;
  o.protection = p;
  o.readable = readable;
  o.exact_permissions = exact;
  return o;
}

uint64_t export_address(const subctx::Subcontext& sc, const std::string& name) {
  for (const auto& e : sc.exports())
    if (e.name == name) return e.address;
  ADD_FAILURE() << "no export " << name;
  return 0;
}

bool inside_image(const std::string& image, uint64_t a) {
  for (const Range& r : read_layout(image).all_ranges())
    if (a >= r.lo && a < r.hi) return true;
  return false;
}

// The bytes the image file holds for [a, a+n) (zeros past a segment's file size).
std::string image_bytes(const std::string& image, uint64_t a, size_t n) {
  const ImageLayout l = read_layout(image);
  std::ifstream f(image, std::ios::binary);
  std::string out(n, '\0');
  for (const Elf64_Phdr& p : l.phdrs) {
    if (p.p_type != PT_LOAD || a < p.p_vaddr || a + n > p.p_vaddr + p.p_memsz) continue;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t at = a + i - p.p_vaddr;
      if (at >= p.p_filesz) continue;
      f.seekg(static_cast<std::streamoff>(p.p_offset + at));
      char c = 0;
      f.get(c);
      out[i] = c;
    }
    return out;
  }
  ADD_FAILURE() << "no segment holds " << std::hex << a;
  return out;
}

// /proc/self/smaps: the "ProtectionKey:" of the mapping that holds a (-1: none found).
int protection_key_at(uint64_t a) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool in = false;
  while (std::getline(f, line)) {
    unsigned long lo, hi;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      in = a >= lo && a < hi;
      continue;
    }
    if (in && line.rfind("ProtectionKey:", 0) == 0) return std::atoi(line.c_str() + 14);
  }
  return -1;
}

std::string maps_line_at(uint64_t a) {
  auto lines = lines_overlapping(read_self_maps(), {{a, a + 1}});
  return lines.size() == 1 ? lines[0] : "(" + std::to_string(lines.size()) + " lines)";
}

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// ---- the helper and what it prints --------------------------------------

ProcessResult client(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv{paths::kProtectionClient};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions o;
  o.env = env;
  return run(argv, o, Millis(40000));
}

// The helper's "expect ADDR HANDLE NEAREST OFFSET" line (the first, or the
// one after `prefix`).
struct Expectation {
  std::string address, handle, nearest, offset;
};
Expectation expectation(const std::string& out, const std::string& prefix = "") {
  const std::string key = prefix + "expect ";
  size_t at = out.rfind(key, 0) == 0 ? 0 : out.find("\n" + key);
  if (at != 0 && at != std::string::npos) ++at;  // past the newline
  Expectation e;
  if (at == std::string::npos) {
    ADD_FAILURE() << "no \"" << key << "\" line in:\n" << out;
    return e;
  }
  std::istringstream in(out.substr(at + key.size(), out.find('\n', at) - at - key.size()));
  in >> e.address >> e.handle >> e.nearest >> e.offset;
  return e;
}

std::string field(const std::string& out, const std::string& key) {  // the word after `key `
  const size_t at = out.find(key + " ");
  if (at == std::string::npos) return "";
  std::istringstream in(out.substr(at + key.size() + 1));
  std::string w;
  in >> w;
  return w;
}

std::vector<std::string> violation_lines(const std::string& err) {
  std::vector<std::string> out;
  std::istringstream in(err);
  std::string line;
  while (std::getline(in, line))
    if (line.find("subctx: violation:") != std::string::npos) out.push_back(line);
  return out;
}

void expect_contains(const std::string& text, const std::string& word, const std::string& what) {
  EXPECT_NE(text.find(word), std::string::npos) << what << " lacks \"" << word << "\":\n" << text;
}

// Death by SIGSEGV with exactly one diagnostic that holds every word; returns it.
std::string expect_violation_death(const ProcessResult& r, std::initializer_list<std::string> words) {
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  const auto lines = violation_lines(r.err);
  EXPECT_EQ(lines.size(), 1u) << r.describe();
  if (lines.empty()) return "";
  const std::string& l = lines[0];
  EXPECT_EQ(l.rfind("subctx: violation: client ", 0), 0u) << l;
  const std::string tail = "; stopping the process with SIGSEGV";
  EXPECT_TRUE(l.size() >= tail.size() && l.compare(l.size() - tail.size(), tail.size(), tail) == 0) << l;
  for (const auto& w : words) expect_contains(l, w, "the diagnostic");
  return l;
}

// ---- the environment ------------------------------------------------------

// Sets (or unsets) SUBCTX_PROTECTION and reinstalls the Matchmaker, which
// reads it at install; restores both at the end of the test.
class ProtectionEnv {
 public:
  ProtectionEnv() {
    if (const char* v = std::getenv("SUBCTX_PROTECTION")) saved_ = v;
  }
  ~ProtectionEnv() {
    if (saved_) setenv("SUBCTX_PROTECTION", saved_->c_str(), 1);
    else unsetenv("SUBCTX_PROTECTION");
    mm().finalize();
    mm().init();
  }
  void set(const char* value) {
    if (value) setenv("SUBCTX_PROTECTION", value, 1);
    else unsetenv("SUBCTX_PROTECTION");
    mm().finalize();
    mm().init();
  }

 private:
  std::optional<std::string> saved_;
};

class ProtectionApi : public E2eTest {
 protected:
  void TearDown() override {
    mm().clear_policy();
    E2eTest::TearDown();
  }
};

// ======================================================================
// 1. Violations, per backend
// ======================================================================

class ProtectionViolation : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
  bool trusted() const { return GetParam() == "none"; }
  ProcessResult go(const std::string& mode) { return client({mode, GetParam(), protection_image()}); }
  // The words every diagnostic of an access at the helper's expected address has.
  std::vector<std::string> where(const Expectation& e) const {
    return {"in subcontext " + e.handle + " (" + protection_image() + ")",
            "nearest export \"" + e.nearest + "\" " + e.offset};
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionViolation, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionViolation, FaultInsideACallIsAnErrorAtTheCallSite) {
  // Not a violation (subcontext code faulted on its own): the call fails
  // with SubcontextFault (test_containment.cpp has the rest), the client
  // goes on with the subcontext reset.
  const ProcessResult r = go("inside-fault");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.find("value"), r.out.find("after value") + 6) << "the faulting call returned: " << r.out;
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
  expect_contains(r.out, "caught SubcontextFault: export \"data_byte\" of subcontext 0 (" + protection_image() +
                             ") faulted: SIGSEGV (address not mapped) at 0x", "stdout");
  expect_contains(r.out, "reset to its snapshot", "stdout");
  expect_contains(r.out, "after value 80", "stdout");
}

TEST_P(ProtectionViolation, ClientReadOfData) {
  const ProcessResult r = go("read-data");
  if (trusted()) {  // no protection: the read is made
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(field(r.out, "value"), "80") << r.out;  // 'P', as the server left it
    return;
  }
  const Expectation e = expectation(r.out);
  const std::string l = expect_violation_death(r, {"client read at " + e.address + " (pc 0x", " rw-"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
  EXPECT_EQ(r.out.find("value"), std::string::npos) << "the read was made: " << r.out;
}

TEST_P(ProtectionViolation, ClientReadOfCode) {
  const ProcessResult r = go("read-code");
  if (trusted()) {
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_NE(field(r.out, "value"), "") << r.out;
    return;
  }
  const Expectation e = expectation(r.out);
  EXPECT_EQ(e.nearest, "pure_add");
  EXPECT_EQ(e.offset, "+0x0");
  const std::string l = expect_violation_death(r, {"client read at " + e.address + " (pc 0x", " r-x"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
}

TEST_P(ProtectionViolation, ClientWriteOfData) {
  const ProcessResult r = go("write-data");
  if (trusted()) {  // made, and the subcontext sees it
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.out.substr(r.out.find("wrote")), "wrote; data_byte 87\n");  // 'W'
    return;
  }
  const Expectation e = expectation(r.out);
  const std::string l = expect_violation_death(r, {"client write at " + e.address + " (pc 0x", " rw-"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
  EXPECT_EQ(r.out.find("wrote"), std::string::npos) << r.out;
}

TEST_P(ProtectionViolation, ClientWriteOfCodeIsAViolationUnderEveryBackend) {
  // Code is never writable outside calls, not even under none (the page
  // is r-x): the Matchmaker reports the fault as what it is.
  const ProcessResult r = go("write-code");
  const Expectation e = expectation(r.out);
  EXPECT_EQ(e.nearest, "pure_add");
  const std::string l = expect_violation_death(r, {"client write at " + e.address + " (pc 0x"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
}

TEST_P(ProtectionViolation, JumpIntoCodeThatIsNoExport) {
  // protection_internal_helper(3): no export; it adds to a counter of the image.
  const ProcessResult r = go("jump-code");
  const Expectation e = expectation(r.out);
  if (trusted()) {  // runs, unmediated
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(field(r.out, "result"), "103");
    return;
  }
  if (GetParam() == "mprotect") {  // the fetch itself faults
    const std::string l = expect_violation_death(r, {"client jump to " + e.address + " (pc " + e.address + ")"});
    for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
  } else {  // pkey: fetches are allowed; its first access to the image's data faults
    // (The fault is at some pc inside the function: same nearest export,
    // same side of it, another offset.)
    expect_violation_death(
        r, {"client jump to 0x", "in subcontext " + e.handle + " (" + protection_image() + ")",
            "nearest export \"" + e.nearest + "\" " + e.offset.substr(0, 3), "subcontext code ran outside a call"});
  }
  EXPECT_EQ(r.out.find("result"), std::string::npos) << r.out;
}

TEST_P(ProtectionViolation, JumpIntoDataIsAViolationUnderEveryBackend) {
  const ProcessResult r = go("jump-data");
  const Expectation e = expectation(r.out);
  const std::string l = expect_violation_death(r, {"client jump to " + e.address + " (pc " + e.address + ")"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
}

TEST_P(ProtectionViolation, CallOfAnExportsRealAddress) {
  // hits(5) through ExportInfo::address, as a plain function pointer.
  const ProcessResult r = go("call-export");
  const Expectation e = expectation(r.out);
  EXPECT_EQ(e.nearest, "hits");
  EXPECT_EQ(e.offset, "+0x0");
  if (GetParam() == "pkey") {  // runs on the client's rights: its first touch of the image faults
    expect_violation_death(r, {"client jump to 0x", "in subcontext " + e.handle + " (" + protection_image() + ")",
                               "subcontext code ran outside a call"});
    EXPECT_EQ(r.out.find("result"), std::string::npos) << r.out;
    return;
  }
  // mprotect: forwarded through the gate like a raw call; none: runs as is.
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("result 105\nthen 106\n"), std::string::npos) << r.out;
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
}

TEST_P(ProtectionViolation, RawCallAddressReadAsData) {
  const ProcessResult r = go("raw-data");
  // Raw-call addresses are inaccessible under every backend.
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  const std::string handle = r.out.substr(r.out.find(raw) + raw.size() + 1, 1);
  expect_violation_death(r, {"client read at " + raw + " (pc 0x",
                             "in subcontext " + handle + " (" + protection_image() + ")", "raw-call addresses"});
  EXPECT_EQ(r.out.find("value"), std::string::npos) << r.out;
}

TEST_P(ProtectionViolation, RawCallAddressWrittenAsData) {
  const ProcessResult r = go("raw-write");
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  expect_violation_death(r, {"client write at " + raw + " (pc 0x", "(" + protection_image() + ")", "raw-call addresses"});
  EXPECT_EQ(r.out.find("wrote"), std::string::npos) << r.out;
}

TEST(ProtectionReadableMap, WriteIsStillAViolation) {
  // mprotect with readable: the client reads, but a write is stopped.
  ProcessResult r = client({"read-data", "mprotect-readable", protection_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(field(r.out, "value"), "80");
  r = client({"write-data", "mprotect-readable", protection_image()});
  const Expectation e = expectation(r.out);
  expect_violation_death(r, {"client write at " + e.address + " (pc 0x", "(" + protection_image() + ")",
                             "nearest export \"" + e.nearest + "\" " + e.offset});
  r = client({"jump-code", "mprotect-readable", protection_image()});
  const Expectation j = expectation(r.out);
  expect_violation_death(r, {"client jump to " + j.address});
}

// ======================================================================
// 2. Raw calls
// ======================================================================

class ProtectionRawCall : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionRawCall, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionRawCall, ResultsArgumentsOutputOrderAndThreads) {
  const ProcessResult r = client({"raw", GetParam(), basic_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "raw is not the export address 1\n"
            "square 49 144\n"
            "bump 101 111\n"
            "hyp 25.000 2.500\n"
            "before say\n"             // the client's, flushed before the call
            "server says: raw hello\n" // the subcontext's, by the time the call returned
            "after say 23\n"
            "sbc_lookup 0 same 1 square 81\n"
            "threads wrong 0\n"
            "bump after 111\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(ProtectionRawCall, DeniedByAPolicySetAfterTheLookupIsAViolation) {
  const ProcessResult r = client({"raw-denied", GetParam(), policy_image()});
  EXPECT_EQ(r.out.substr(0, 8), "first 1\n") << r.describe();
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  expect_violation_death(r, {"client denied raw call to " + raw, "in subcontext 0 (" + policy_image() + ")",
                             "nearest export \"open_door\" +0x0", "deny call export=open_*"});
  EXPECT_EQ(r.out.find("second"), std::string::npos) << r.out;
}

TEST_P(ProtectionRawCall, PointerOfAnUnmappedSubcontextIsAViolation) {
  const ProcessResult r = client({"raw-stale", GetParam(), basic_image()});
  EXPECT_EQ(r.out.substr(0, 8), "first 9\n") << r.describe();
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  expect_violation_death(r, {"client raw call of an unmapped subcontext to " + raw + " (pc " + raw + ")",
                             "unmapped subcontext"});
  EXPECT_EQ(r.out.find("second"), std::string::npos) << r.out;
}

TEST_F(ProtectionApi, LookupRefusesDeniedMissingAndMistypedExports) {
  subctx::Subcontext sc = mm().request_map(policy_image());
  void* fn = nullptr;
  EXPECT_EQ(sbc_lookup(sc.handle(), "admin_reset", &fn), -SBC_E_POLICY);  // restricted: needs a grant
  expect_contains(sbc_last_error(), "restricted", "sbc_last_error()");
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(sbc_lookup(sc.handle(), "no_such_export", &fn), -SBC_E_NO_EXPORT);
  expect_contains(sbc_last_error(), "no_such_export", "sbc_last_error()");
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(sbc_lookup(sc.handle(), nullptr, &fn), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_lookup(sc.handle(), "open_door", nullptr), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_lookup(sc.handle() + 1000, "open_door", &fn), -SBC_E_NO_SUBCONTEXT);
  EXPECT_EQ(sbc_lookup(sc.handle(), "open_door", &fn), 0) << sbc_last_error();
  EXPECT_NE(fn, nullptr);
  // The raw-call address is neither the export nor anything in the image.
  EXPECT_NE(reinterpret_cast<uint64_t>(fn), export_address(sc, "open_door"));
  EXPECT_FALSE(inside_image(policy_image(), reinterpret_cast<uint64_t>(fn)));
  EXPECT_EQ(maps_line_at(reinterpret_cast<uint64_t>(fn)).find("---p") != std::string::npos, true)
      << maps_line_at(reinterpret_cast<uint64_t>(fn));

  expect_error([&] { sc.raw<int64_t()>("admin_reset"); }, Errc::Policy, {"admin_reset"});
  expect_error([&] { sc.raw<int32_t(int64_t)>("open_door"); }, Errc::Signature, {"i64(i64)", "i32(i64)"});
  expect_error([&] { sc.raw<int64_t(int64_t)>("nope"); }, Errc::NoExport, {"nope"});
  expect_error([&] { subctx::Subcontext().raw<int64_t(int64_t)>("open_door"); }, Errc::NoSubcontext, {});

  mm().set_policy("allow map\ndeny call export=open_*\n");
  EXPECT_EQ(sbc_lookup(sc.handle(), "open_door", &fn), -SBC_E_POLICY);
  expect_contains(sbc_last_error(), "deny call export=open_*", "sbc_last_error()");
  expect_error([&] { sc.raw<int64_t(int64_t)>("open_door"); }, Errc::Policy, {"deny call export=open_*"});
}

// ======================================================================
// 3. The client's violation handler
// ======================================================================

class ProtectionHandler : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionHandler, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionHandler, RecordsTheViolationJumpsOutAndTheClientGoesOn) {
  const ProcessResult r = client({"handler", GetParam(), protection_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(violation_lines(r.err).empty()) << "a handler is installed: no diagnostic\n" << r.err;
  const bool trusted = GetParam() == "none";
  // One record: "WHAT: kind K signal 11 subcontext H address-match 1 pc-set 1
  // path P region R export E offset O", checked against the expectation.
  auto check = [&](const std::string& what, int kind, const std::string& region_word, bool with_export) {
    SCOPED_TRACE(what);
    const Expectation e = expectation(r.out, what + " ");
    const std::string prefix = what + ": kind " + std::to_string(kind) + " signal 11 subcontext " + e.handle +
                               " address-match 1 pc-set 1 path " + protection_image() + " region ";
    const size_t at = r.out.find("\n" + what + ": ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string line = r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1);
    EXPECT_EQ(line.rfind(prefix, 0), 0u) << line;
    expect_contains(line, region_word, what);
    if (with_export) expect_contains(line, " export " + e.nearest + " offset " + e.offset, what);
  };
  if (trusted) {
    expect_contains(r.out, "read: no violation, value 80\n", "stdout");
    expect_contains(r.out, "write: no violation\n", "stdout");
    expect_contains(r.out, "read-code: no violation, value ", "stdout");
    check("raw-read", SBC_VIOLATION_READ, "raw-call addresses", false);
    expect_contains(r.out, "violations 1 handle 0\n", "stdout");
  } else {
    check("read", SBC_VIOLATION_READ, " rw-", true);
    check("write", SBC_VIOLATION_WRITE, " rw-", true);
    check("read-code", SBC_VIOLATION_READ, " r-x", true);
    check("raw-read", SBC_VIOLATION_READ, "raw-call addresses", false);
    check("jump-data", SBC_VIOLATION_EXEC, " rw-", true);
    expect_contains(r.out, "violations 5 handle 0\n", "stdout");
  }
  // Afterwards: calls work, and the write was not made (or, under none,
  // wrote 'P' over 'P').
  EXPECT_EQ(r.out.substr(r.out.rfind("after:")), "after: hits 101 pure_add 5 data_byte 80\n") << r.out;
}

TEST_P(ProtectionHandler, AHandlerThatReturnsEndsTheProcessWithSigsegv) {
  const ProcessResult r = client({"handler-returns", GetParam(), protection_image()});
  if (GetParam() == "none") {  // nothing to report
    ASSERT_TRUE(r.ok()) << r.describe();
    return;
  }
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  EXPECT_EQ(r.err, "violation handler ran and returns\n");  // its own line, no diagnostic
  EXPECT_EQ(r.out, "");
}

// ======================================================================
// 4. Chaining to the client's own SIGSEGV / SIGBUS handlers
// ======================================================================

class ProtectionChaining : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
  void expect_chained(const ProcessResult& r) {
    const std::string common =
        "installed 1 sigaction says mine: SIGSEGV 1 SIGBUS 1\n"
        "caught SIGSEGV at (nil)\n"
        "caught SIGBUS at offset 0\n"
        "caught SIGSEGV at (nil)\n"
        "client handler runs 3\n"
        "square 25\n";
    EXPECT_EQ(r.out.substr(0, common.size()), common) << r.describe();
    EXPECT_EQ(r.out.find("the client's handler got"), std::string::npos) << "a violation reached the client: " << r.out;
    if (GetParam() == "none") {  // the read of square's code is made
      EXPECT_TRUE(r.ok()) << r.describe();
      expect_contains(r.out, "value ", "stdout");
      return;
    }
    const Expectation e = expectation(r.out);
    expect_violation_death(r, {"client read at " + e.address, "nearest export \"square\" +0x0"});
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionChaining, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionChaining, HandlersInstalledBeforeTheMatchmaker) {
  expect_chained(client({"chain-early", GetParam(), basic_image()}, {"E2E_PROT_EARLY=1"}));
}

TEST_P(ProtectionChaining, HandlersInstalledAfterTheMatchmaker) {
  expect_chained(client({"chain-late", GetParam(), basic_image()}));
}

TEST_P(ProtectionChaining, ResetHandRunsTheHandlerOnceThenTheDefault) {
  const ProcessResult r = client({"resethand", GetParam(), basic_image()});
  EXPECT_EQ(r.out,
            "mine 1\n"
            "caught SIGSEGV at (nil)\n"
            "default after the first 1\n"
            "square 36\n")
      << r.describe();
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  EXPECT_EQ(r.err.find("subctx:"), std::string::npos) << "a client fault is not the Matchmaker's: " << r.err;
}

TEST_P(ProtectionChaining, DefaultActionIsAPlainSigsegv) {
  const ProcessResult r = client({"dfl", GetParam(), basic_image()});
  EXPECT_EQ(r.out, "default 1 square 16\n") << r.describe();
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  EXPECT_EQ(r.err, "") << "a client fault is not the Matchmaker's";
}

// ======================================================================
// 5. Rights with many threads
// ======================================================================

class ProtectionThreads : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionThreads, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionThreads, ReadsFromAnotherThreadWhileCallsRun) {
  // Five threads call into two subcontexts (basic: square; protection:
  // pure_add) while a sixth keeps reading their memory, a violation handler
  // jumping it back out; its first 2000 reads are made while every caller
  // is still calling.  The helper counts, per read of a subcontext, whether
  // a call of that subcontext could have been in flight.
  const ProcessResult r = client({"threads", GetParam(), basic_image(), protection_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  expect_contains(r.out, "calls>=20000 1 wrong 0\n", "stdout");
  expect_contains(r.out, "attempts>=2000 1 faults+reads=attempts 1\n", "stdout");
  if (GetParam() == "pkey") {
    // Rights are per thread: every read faults, calls in flight or not.
    expect_contains(r.out, "reads none\n", "stdout");
    expect_contains(r.out, "after join faults 2\n", "stdout");
  } else if (GetParam() == "mprotect") {
    // During a call the memory is open to the whole process (the
    // backend's documented window), so reads that overlap a call may
    // succeed; a read while no call of that subcontext was in flight must
    // fault.
    expect_contains(r.out, "quiet reads 0\n", "stdout");
    expect_contains(r.out, "after join faults 2\n", "stdout");
  } else {  // none: nothing faults
    expect_contains(r.out, "after join faults 0\n", "stdout");
  }
}

// ======================================================================
// 6. Map options, backends, errors
// ======================================================================

class ProtectionBackend : public ProtectionApi, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionBackend, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionBackend, ProtectionInfoMapsAndCalls) {
  const Protection p = protection_named(GetParam());
  subctx::Subcontext sc = mm().request_map(basic_image(), with(p));
  const subctx::ProtectionInfo info = sc.protection();
  EXPECT_EQ(info.backend, p);
  EXPECT_EQ(sbc_protection(sc.handle()), static_cast<int>(p));
  EXPECT_FALSE(info.readable);
  EXPECT_FALSE(info.exact_permissions);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 7), 49);
  EXPECT_EQ(sc.call<double(double, double)>("hyp", 3.0, 4.0), 25.0);
  const uint64_t square = export_address(sc, "square");
  const std::string line = maps_line_at(square);
  switch (p) {
    case Protection::Mprotect:
      EXPECT_GE(info.clusters, 1u);
      EXPECT_GE(info.open_syscalls, 1u);
      EXPECT_GE(info.close_syscalls, 1u);
      EXPECT_EQ(info.pkey, -1);
      EXPECT_NE(line.find(" ---p "), std::string::npos) << line;  // closed between calls
      break;
    case Protection::Pkey:
      EXPECT_GE(info.pkey, 1);  // key 0 is everyone's default
      EXPECT_EQ(info.open_syscalls, 0u);
      EXPECT_EQ(info.close_syscalls, 0u);
      EXPECT_NE(line.find(" r-xp "), std::string::npos) << line;
      EXPECT_EQ(protection_key_at(square), info.pkey);
      for (const Range& r : read_layout(basic_image()).segments())
        EXPECT_EQ(protection_key_at(r.lo), info.pkey) << "segment at " << hex(r.lo);
      break;
    default:
      EXPECT_EQ(info.pkey, -1);
      EXPECT_EQ(info.open_syscalls, 0u);
      EXPECT_NE(line.find(" r-xp "), std::string::npos) << line;
      break;
  }
  mm().unmap(sc);
  EXPECT_EQ(sbc_protection(sc.handle()), -SBC_E_NO_SUBCONTEXT);
}

TEST_P(ProtectionBackend, StrResultsAreCopiedWhenTheClientCannotRead) {
  const Protection p = protection_named(GetParam());
  subctx::Subcontext sc = mm().request_map(protection_image(), with(p));
  const char* m = sc.call<const char*()>("motto");
  ASSERT_NE(m, nullptr);
  const bool in_image = inside_image(protection_image(), reinterpret_cast<uint64_t>(m));
  EXPECT_EQ(in_image, p == Protection::None) << "str result at " << static_cast<const void*>(m);
  if (in_image && p != Protection::None) return;  // reading it would be a violation
  EXPECT_STREQ(m, "memory stays where it belongs");
  // Another thread's copy is its own.
  std::string other;
  std::thread([&] { other = sc.call<const char*()>("motto"); }).join();
  EXPECT_EQ(other, "memory stays where it belongs");
  EXPECT_STREQ(m, "memory stays where it belongs");
}

TEST_F(ProtectionApi, ReadableMapUnderMprotect) {
  subctx::Subcontext sc = mm().request_map(protection_image(), with(Protection::Mprotect, /*readable=*/true));
  const subctx::ProtectionInfo info = sc.protection();
  EXPECT_EQ(info.backend, Protection::Mprotect);
  EXPECT_TRUE(info.readable);
  // The client reads code and data in place: the bytes of the image file.
  const uint64_t code = export_address(sc, "pure_add");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(code), 16), image_bytes(protection_image(), code, 16));
  const auto* data = static_cast<const char*>(sc.call<void*()>("data_addr"));
  EXPECT_EQ(std::string(data, 64), std::string(64, 'P'));
  EXPECT_NE(maps_line_at(code).find(" r--p "), std::string::npos) << maps_line_at(code);
  EXPECT_NE(maps_line_at(reinterpret_cast<uint64_t>(data)).find(" r--p "), std::string::npos);
  // str results point into the image: readable, so not copied.
  const char* m = sc.call<const char*()>("motto");
  EXPECT_TRUE(inside_image(protection_image(), reinterpret_cast<uint64_t>(m)));
  EXPECT_STREQ(m, "memory stays where it belongs");
  EXPECT_EQ(sc.call<int64_t(int64_t, int64_t)>("pure_add", 40, 2), 42);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("hits", 1), 101);
  // The write that is refused runs in ProtectionReadableMap.WriteIsStillAViolation.
}

TEST_F(ProtectionApi, ReadableMapsAreUnsupportedWithPkey) {
  ProtectionEnv env;
  env.set(nullptr);
  expect_error([&] { mm().request_map(basic_image(), with(Protection::Pkey, true)); }, Errc::Unsupported,
               {basic_image(), "readable", "pkey", "the map options", "mprotect"});
  EXPECT_EQ(sbc_request_map_with(basic_image().c_str(), SBC_PROTECT_PKEY, SBC_MAP_READABLE), -SBC_E_UNSUPPORTED);
  expect_contains(sbc_last_error(), "readable", "sbc_last_error()");
  // Chosen by the environment: the message says so.
  env.set("pkey");
  expect_error([&] { mm().request_map(basic_image(), with(Protection::Auto, true)); }, Errc::Unsupported,
               {"readable", "SUBCTX_PROTECTION"});
  // Automatic choice: a readable map gets mprotect.
  env.set(nullptr);
  subctx::Subcontext sc = mm().request_map(basic_image(), with(Protection::Auto, true));
  EXPECT_EQ(sc.protection().backend, Protection::Mprotect);
  EXPECT_TRUE(sc.protection().readable);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 3), 9);
}

TEST_F(ProtectionApi, ProtectionKeysRunOutExplicitPkeyFailsAutoFallsBackToMprotect) {
  if (!pkeys_work()) GTEST_SKIP() << "no protection keys here";
  ProtectionEnv env;
  env.set(nullptr);
  // Distinct images (one per key): a process has at most 15 keys.
  std::vector<subctx::Subcontext> mapped;
  std::string refusal;
  for (int i = 0; i < 17 && refusal.empty(); ++i) {
    const std::string image = build_image(paths::kBasicServer, "keys" + std::to_string(i) + ".img");
    try {
      mapped.push_back(mm().request_map(image, with(Protection::Pkey)));
      EXPECT_EQ(mapped.back().protection().backend, Protection::Pkey);
    } catch (const subctx::Error& e) {
      if (e.code() == Errc::Conflict) continue;  // another image's random addresses: not this test's subject
      EXPECT_EQ(e.code(), Errc::Limit) << e.what();
      refusal = e.what();
    }
  }
  ASSERT_FALSE(refusal.empty()) << "17 pkey maps all succeeded";
  EXPECT_LE(mapped.size(), 15u);
  for (const char* w : {"no protection key is free", "Protection::Mprotect", "SUBCTX_PROTECTION=mprotect"})
    expect_contains(refusal, w, "the refusal");
  // The automatic choice takes the next best backend instead.
  subctx::Subcontext more;
  for (int i = 0; i < 3 && !more.valid(); ++i) {
    try {
      more = mm().request_map(build_image(paths::kBasicServer, "keys-auto" + std::to_string(i) + ".img"));
    } catch (const subctx::Error& e) {
      ASSERT_EQ(e.code(), Errc::Conflict) << e.what();
    }
  }
  ASSERT_TRUE(more.valid());
  EXPECT_EQ(more.protection().backend, Protection::Mprotect);
  EXPECT_EQ(more.call<int64_t(int64_t)>("square", 12), 144);
  // Unmapping gives a key back.
  mm().unmap(mapped.back());
  mapped.pop_back();
  subctx::Subcontext again = mm().request_map(build_image(paths::kBasicServer, "keys-again.img"), with(Protection::Pkey));
  EXPECT_EQ(again.protection().backend, Protection::Pkey);
  EXPECT_EQ(again.call<int64_t(int64_t)>("square", 5), 25);
  mm().unmap(again);
  mm().unmap(more);
  for (auto& sc : mapped) mm().unmap(sc);
}

TEST_F(ProtectionApi, AutoPicksPkeyWhereKeysWorkElseMprotect) {
  ProtectionEnv env;
  env.set(nullptr);
  const Protection expected = pkeys_work() ? Protection::Pkey : Protection::Mprotect;
  subctx::Subcontext sc = mm().request_map(basic_image());
  EXPECT_EQ(sc.protection().backend, expected) << subctx::protection_name(sc.protection().backend);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 11), 121);
  mm().unmap(sc);
  const int h = sbc_request_map_with(basic_image().c_str(), SBC_PROTECT_AUTO, 0);
  ASSERT_GE(h, 0) << sbc_last_error();
  EXPECT_EQ(sbc_protection(h), static_cast<int>(expected));
  EXPECT_EQ(sbc_unmap(h), 0);
}

TEST_F(ProtectionApi, EnvironmentChoosesForAutoMapsOnly) {
  ProtectionEnv env;
  std::vector<std::pair<const char*, Protection>> cases = {{"none", Protection::None},
                                                           {"mprotect", Protection::Mprotect}};
  if (pkeys_work()) cases.push_back({"pkey", Protection::Pkey});
  for (const auto& [value, p] : cases) {
    SCOPED_TRACE(value);
    env.set(value);
    subctx::Subcontext sc = mm().request_map(basic_image());
    EXPECT_EQ(sc.protection().backend, p);
    EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 5), 25);
    mm().unmap(sc);
    // The map's own option wins over the environment.
    const Protection other = p == Protection::Mprotect ? Protection::None : Protection::Mprotect;
    sc = mm().request_map(basic_image(), with(other));
    EXPECT_EQ(sc.protection().backend, other);
    mm().unmap(sc);
  }
  env.set("auto");
  subctx::Subcontext sc = mm().request_map(basic_image());
  EXPECT_EQ(sc.protection().backend, pkeys_work() ? Protection::Pkey : Protection::Mprotect);
}

// One rule for every SUBCTX_* variable (docs/policy.md): a malformed value
// fails every map, also one that chooses its backend itself.
TEST_F(ProtectionApi, UnusableEnvironmentValueFailsEveryMap) {
  ProtectionEnv env;
  env.set("bogus");
  expect_map_refused(basic_image(), Errc::InvalidArgument,
                     {basic_image(), "SUBCTX_PROTECTION=bogus", "pkey, mprotect, none or auto"},
                     read_layout(basic_image()).all_ranges());
  EXPECT_EQ(sbc_request_map_with(basic_image().c_str(), SBC_PROTECT_AUTO, 0), -SBC_E_INVALID_ARGUMENT);
  expect_contains(sbc_last_error(), "SUBCTX_PROTECTION", "sbc_last_error()");
  EXPECT_EQ(sbc_request_map_with(basic_image().c_str(), SBC_PROTECT_MPROTECT, 0), -SBC_E_INVALID_ARGUMENT);
  expect_contains(sbc_last_error(), "SUBCTX_PROTECTION=bogus", "sbc_last_error()");
  env.set("PKEY");  // case matters
  expect_error([&] { mm().request_map(basic_image()); }, Errc::InvalidArgument, {"SUBCTX_PROTECTION=PKEY"});
}

TEST_F(ProtectionApi, ExactPermissionsUnderMprotect) {
  subctx::Subcontext sc = mm().request_map(feature_image(), with(Protection::Mprotect, false, /*exact=*/true));
  const subctx::ProtectionInfo exact = sc.protection();
  EXPECT_EQ(exact.backend, Protection::Mprotect);
  EXPECT_TRUE(exact.exact_permissions);
  EXPECT_GE(exact.clusters, 1u);
  EXPECT_GE(exact.open_syscalls, exact.clusters);
  EXPECT_GE(exact.close_syscalls, exact.clusters);
  EXPECT_EQ(sc.call<int64_t(const char*)>("lua_int", "fib(15)"), 610);
  EXPECT_EQ(sc.call<int64_t(const char*)>("sql_int", "SELECT 6*7"), 42);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  EXPECT_NE(maps_line_at(export_address(sc, "bump")).find(" ---p "), std::string::npos);
  mm().unmap(sc);
  // Merged permissions (the default) open the same image in no more calls.
  sc = mm().request_map(feature_image(), with(Protection::Mprotect));
  EXPECT_FALSE(sc.protection().exact_permissions);
  EXPECT_LE(sc.protection().open_syscalls, exact.open_syscalls);
  EXPECT_EQ(sc.call<int64_t(const char*)>("lua_int", "fib(15)"), 610);
}

TEST_F(ProtectionApi, MapWithRejectsUnknownBackendsAndFlags) {
  const char* path = basic_image().c_str();
  EXPECT_EQ(sbc_request_map_with(path, 4, 0), -SBC_E_INVALID_ARGUMENT);
  expect_contains(sbc_last_error(), "unknown protection 4", "sbc_last_error()");
  EXPECT_EQ(sbc_request_map_with(path, -1, 0), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_request_map_with(path, SBC_PROTECT_MPROTECT, 8u), -SBC_E_INVALID_ARGUMENT);
  expect_contains(sbc_last_error(), "unknown flags 8", "sbc_last_error()");
  EXPECT_EQ(sbc_request_map_with(path, SBC_PROTECT_MPROTECT, 0x80000000u), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_request_map_with(nullptr, SBC_PROTECT_MPROTECT, 0), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(join(lines_overlapping(read_self_maps(), read_layout(basic_image()).all_ranges())), "");
  const int h = sbc_request_map_with(path, SBC_PROTECT_MPROTECT, SBC_MAP_READABLE | SBC_MAP_EXACT_PERMISSIONS);
  ASSERT_GE(h, 0) << sbc_last_error();
  EXPECT_EQ(sbc_protection(h), SBC_PROTECT_MPROTECT);
  const subctx::ProtectionInfo info = mm().find(h).protection();
  EXPECT_TRUE(info.readable);
  EXPECT_TRUE(info.exact_permissions);
  EXPECT_EQ(sbc_unmap(h), 0);
  const int n = sbc_request_map_with(path, SBC_PROTECT_NONE, 0);
  ASSERT_GE(n, 0) << sbc_last_error();
  EXPECT_EQ(sbc_protection(n), SBC_PROTECT_NONE);
  EXPECT_EQ(sbc_unmap(n), 0);
  EXPECT_EQ(sbc_protection(n), -SBC_E_NO_SUBCONTEXT);
}

// ======================================================================
// 7. Subcontext code that unmaps part of its own memory
// ======================================================================

TEST_P(ProtectionBackend, SubcontextFreeingItsOwnMemoryLeavesTheRangeToTheClient) {
  const Protection p = protection_named(GetParam());
  subctx::Subcontext sc = mm().request_map(feature_image(), with(p));
  auto* block = sc.call<void*()>("snapshot_block_addr");
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(sc.call<int64_t(void*, int64_t, int64_t)>("check_block", block, int64_t{4} << 20, 0x5a), -1);
  sc.call<void()>("free_snapshot_block");  // munmap inside the image's range, during the call
  EXPECT_EQ(sc.call<int64_t(const char*)>("lua_int", "fib(12)"), 144);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);

  void* hole = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(block) & ~uintptr_t{4095});
  constexpr size_t kSize = 1 << 20;
  void* mine = mmap(hole, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(mine, hole) << "the freed block's range is not free: " << std::strerror(errno);
  const uint64_t at = reinterpret_cast<uint64_t>(mine);
  // Calls open and close the subcontext; the client's memory in the hole
  // is not part of it.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 102 + i);
    EXPECT_EQ(sc.call<int64_t(const char*)>("lua_int", "fib(10)"), 55);
  }
  const std::string line = maps_line_at(at);
  const std::string last = maps_line_at(at + kSize - 1);
  EXPECT_NE(line.find(" rw-p "), std::string::npos) << "the Matchmaker changed the client's memory: " << line;
  EXPECT_NE(last.find(" rw-p "), std::string::npos) << last;
  if (p == Protection::Pkey) {
    EXPECT_EQ(protection_key_at(at), 0) << "the client's memory carries a key";
  }
  if (line.find(" rw-p ") == std::string::npos || last.find(" rw-p ") == std::string::npos ||
      (p == Protection::Pkey && protection_key_at(at) != 0))
    return;  // touching it would be a violation
  std::memset(mine, 0x33, kSize);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 105);
  EXPECT_EQ(static_cast<unsigned char*>(mine)[0], 0x33);
  EXPECT_EQ(static_cast<unsigned char*>(mine)[kSize - 1], 0x33);
  mm().unmap(sc);
  EXPECT_EQ(static_cast<unsigned char*>(mine)[kSize / 2], 0x33);
  EXPECT_NE(maps_line_at(at).find(" rw-p "), std::string::npos) << maps_line_at(at);
  munmap(mine, kSize);
}

}  // namespace
}  // namespace e2e

namespace e2e {
namespace {

// ======================================================================
// 8. During a long call: client signal handlers, memory the call frees
// ======================================================================
// Regressions.  The helper's long calls (rendezvous, release_and_wait)
// return only when the client side says so, and give up after 20 s; the
// helper runs under a 40 s timeout, so a hang is a failure, never a stuck
// test.  Only the protected backends: they are what the fixes were about.

class ProtectionDuringCall : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
  ProcessResult go(const std::string& mode) {
    ProcessResult r = client({mode, GetParam(), protection_image()});
    EXPECT_FALSE(r.timed_out) << "the helper hung: " << r.describe();
    return r;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionDuringCall, ::testing::Values("mprotect", "pkey"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionDuringCall, SignalHandlerCallingTheSubcontextItInterruptedGetsAnError) {
  // SIGALRM while the main thread is inside rendezvous; its handler calls
  // pure_add of the same subcontext through call<> and a Function handle.
  // It used to wait forever for the call it interrupted.
  const ProcessResult r = go("reenter-call");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.substr(r.out.find('\n') + 1),
            "handler runs 1\n"
            "call: tried 1 threw 1 InvalidArgument 1 \"signal handler\" 1 \"would wait for itself\" 1\n"
            "function: tried 1 threw 1 InvalidArgument 1 \"signal handler\" 1 \"would wait for itself\" 1\n"
            "result 4242\n"  // the interrupted call, completed
            "after: call 5 function 50 raw 9\n")
      << r.describe();
  expect_contains(r.err, protection_image(), "the error message");
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
}

TEST_P(ProtectionDuringCall, SignalHandlerRawCallOfTheSubcontextItInterruptedIsAViolation) {
  // The same through a raw pointer: no error can reach a plain function
  // pointer, so it is a refused raw call (it used to hang too).
  const ProcessResult r = go("reenter-raw");
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  expect_contains(r.out, "handler makes the raw call\n", "stdout");
  expect_violation_death(r, {"client denied raw call to " + raw, "in subcontext 0 (" + protection_image() + ")",
                             "nearest export \"pure_add\" +0x0", "signal handler", "would wait for itself"});
  EXPECT_EQ(r.out.find("result"), std::string::npos) << r.out;
}

TEST_P(ProtectionDuringCall, SignalHandlerRawCallRefusalReachesTheViolationHandler) {
  // A violation handler jumps back into the signal handler; the
  // interrupted call then completes.
  const ProcessResult r = go("reenter-raw-handler");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
  expect_contains(r.out, "handler makes the raw call\nhandler runs 1\nraw returned 0\n", "stdout");
  expect_contains(r.out,
                  "raw: kind " + std::to_string(SBC_VIOLATION_DENIED_CALL) +
                      " signal 11 subcontext 0 address-match 1 pc-set 1 path " + protection_image() + " region ",
                  "stdout");
  expect_contains(r.out, " export pure_add offset +0x0\n", "stdout");
  const size_t detail = r.out.find("raw detail: ");
  ASSERT_NE(detail, std::string::npos) << r.out;
  const std::string d = r.out.substr(detail, r.out.find('\n', detail) - detail);
  expect_contains(d, "signal handler", "the violation's detail");
  expect_contains(d, "would wait for itself", "the violation's detail");
  EXPECT_EQ(r.out.substr(r.out.find("result")), "result 4242\nafter: call 5 function 50 raw 9\n") << r.out;
}

TEST_P(ProtectionDuringCall, SigsegvSentToAThreadInsideACallRunsTheClientsHandlerInTheClientsContext) {
  // pthread_kill(SIGSEGV), not a fault: the client's SA_SIGINFO handler
  // runs with the client's thread pointer and stack and the call goes on.
  // It used to run on the subcontext's TLS (mprotect) or kill the process
  // without a word (pkey).
  const ProcessResult r = go("sent-segv");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "handler runs 1 client thread pointer 1 client stack 1 si_signo 1 SI_TKILL 1\n"
            "result 4242\n"
            "after 5\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(ProtectionDuringCall, SiginfoHandlerReadsItsSiginfoAndUcontext) {
  // SIGUSR1 then SIGALRM from another thread; the handler reads si_signo,
  // uc_sigmask (SIGUSR2 was blocked at the interruption) and the FPU state
  // through uc_mcontext.fpregs (MXCSR: the default control bits).  It used
  // to die of a violation on the gate stack (pkey).
  const ProcessResult r = go("signal-context");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "SIGUSR1: runs 1 client thread pointer 1 client stack 1 si_signo 1 SI_TKILL 1 fpregs 1 mxcsr-default 1 "
            "uc_sigmask 1\n"
            "SIGALRM: runs 1 client thread pointer 1 client stack 1 si_signo 1 SI_TKILL 1 fpregs 1 mxcsr-default 1 "
            "uc_sigmask 1\n"
            "result 4242\n"
            "after 5\n")
      << r.err;
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
}

TEST_P(ProtectionDuringCall, ClientPageMappedInARangeTheCallFreedStaysTheClients) {
  // release_and_wait frees (munmaps) a 4 MiB block of the image; during the
  // call another client thread maps a page of its own inside the freed
  // range.  mprotect's repair at close used to take that page for the
  // subcontext's and close it with it.
  const ProcessResult r = go("freed-page");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "result 4242 client page mapped during the call: yes\n"
            "after the call: rw-p key none\n"
            "intact 1\n"
            "client write made 1\n"  // no violation
            "calls: pure_add 5 hits 101 data_byte 80\n"
            "after more calls: rw-p key none\n"
            "intact 1\n"
            "client write made 1\n"
            "after unmap: rw-p key none\n"  // unmap leaves it alone
            "intact 1\n"
            "violations 0\n");
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
}

TEST_P(ProtectionDuringCall, ExitWithTheSubcontextMappedAfterACallThatFreedMemory) {
  // The Matchmaker unmaps it at exit, after the repair of the call above:
  // a clean exit, nothing on stderr.
  const ProcessResult r = go("freed-exit");
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "result 4242 client page mapped during the call: yes\n"
            "pure_add 5; exiting with the subcontext mapped\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(ProtectionDuringCall, ClientAccessToTheRestOfARangeTheCallFreedIsAnOrdinarySegfault) {
  // After the call, the freed range (away from the client's page) is
  // nobody's: reading it is a plain SIGSEGV of the client, not a
  // subcontext violation.
  const std::string common =
      "result 4242 client page mapped during the call: yes\n"
      "freed range at the target: none\n";
  const ProcessResult r = go("freed-rest");
  EXPECT_EQ(r.out, common) << r.describe();
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  EXPECT_TRUE(violation_lines(r.err).empty()) << "reported as a violation:\n" << r.err;
  EXPECT_EQ(r.err, "");

  // With a SIGSEGV handler of its own, the client gets the fault.
  const ProcessResult h = go("freed-rest-handler");
  ASSERT_TRUE(h.ok()) << h.describe();
  EXPECT_EQ(h.out, common +
                       "the client's handler got SIGSEGV address-match 1\n"
                       "after: pure_add 5 page rw-p\n")
      << h.describe();
  EXPECT_TRUE(violation_lines(h.err).empty()) << h.err;
}

}  // namespace
}  // namespace e2e
