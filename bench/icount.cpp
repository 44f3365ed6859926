// bench_icount: user-space instructions and system calls of one call through
// the gate, per protection backend, counted by single-stepping it
// (instruction_count.hpp): deterministic, and available on machines without
// hardware counters or FSGSBASE, where timings are dominated by the system
// calls the gate needs.  Beside each: a direct call of the same function and
// the floor gate (floor_gate.hpp), counted the same way in the same run.
//
//   bench_icount [--json FILE] [--only BACKEND/OPERATION]
// (with BENCH_ICOUNT_TRACE=FILE and --only: bench/icount_profile.py FILE
// shows the instructions per function)
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <subctx/subctx.h>
#include <subctx/subctx.hpp>

#include "add1.hpp"
#include "floor_gate.hpp"
#include "instruction_count.hpp"
#include "support.hpp"

namespace {

std::string g_only;  // --only: "none/handle"; empty: all

using Sig = int64_t(int64_t);

struct Context {
  const subctx::Subcontext* sc = nullptr;
  subctx::Function<Sig> fn;
  int handle = -1;
  Sig* raw = nullptr;
  const bench::FloorGate* floor = nullptr;
  volatile int64_t x = 0;
};

Context* ctx_of(void* p) { return static_cast<Context*>(p); }

// The operations: each is what one benchmark iteration does.
void op_direct(void* p) {
  Sig* volatile f = add1;
  ctx_of(p)->x = f(ctx_of(p)->x);
}
void op_floor(void* p) { ctx_of(p)->x = (*ctx_of(p)->floor)(add1, ctx_of(p)->x); }
void op_handle(void* p) { ctx_of(p)->x = ctx_of(p)->fn(ctx_of(p)->x); }
void op_by_name(void* p) { ctx_of(p)->x = ctx_of(p)->sc->call<Sig>("add1", ctx_of(p)->x); }
void op_c_api(void* p) {
  Context* c = ctx_of(p);
  uint64_t arg = static_cast<uint64_t>(c->x), ret = 0;
  if (sbc_request_call(c->handle, "add1", &arg, 1, &ret) != 0) std::abort();
  c->x = static_cast<int64_t>(ret);
}
void op_raw(void* p) { ctx_of(p)->x = ctx_of(p)->raw(ctx_of(p)->x); }
void op_reset(void* p) { ctx_of(p)->sc->reset(); }

struct Operation {
  const char* name;
  void (*run)(void*);
  bool needs_subcontext;
};
const Operation kOperations[] = {
    {"direct", op_direct, false},    {"floor", op_floor, false}, {"handle", op_handle, true},
    {"by_name", op_by_name, true},   {"c_api", op_c_api, true},  {"raw", op_raw, true},
    {"reset_clean", op_reset, true},
};

void prepare(void* p) {
  // What a thread's first call sets up once (alternate signal stack,
  // Syscall User Dispatch after the fork, lazy binding) is not counted.
  Context* c = ctx_of(p);
  for (const Operation& o : kOperations)
    if (c->sc || !o.needs_subcontext) o.run(p);
}

struct Row {
  std::string backend, operation;
  bench::InstructionCount count;
};

std::vector<Row> count_backend(const std::string& image, subctx::Protection protection, const char* backend) {
  std::vector<Row> rows;
  subctx::MapOptions options;
  options.protection = protection;
  subctx::Subcontext sc;
  try {
    sc = subctx::Matchmaker::instance().request_map(image, options);
  } catch (const subctx::Error& e) {
    Row skipped{backend, "skipped", {}};
    skipped.count.error = e.what();
    rows.push_back(skipped);
    return rows;
  }
  const bench::FloorGate floor(protection == subctx::Protection::Pkey);
  Context c;
  c.sc = &sc;
  c.fn = sc.function<Sig>("add1");
  c.handle = sc.handle();
  void* raw = nullptr;
  if (sbc_lookup(c.handle, "add1", &raw) != 0) std::abort();
  c.raw = reinterpret_cast<Sig*>(raw);
  c.floor = &floor;
  for (const Operation& o : kOperations) {
    if (!o.needs_subcontext) continue;
    if (!g_only.empty() && g_only != std::string(backend) + "/" + o.name) continue;
    rows.push_back({backend, o.name, bench::count_instructions(prepare, o.run, &c)});
  }
  subctx::Matchmaker::instance().unmap(sc);
  return rows;
}

// A direct call of the same function, and the floor gates this machine has.
std::vector<Row> baselines() {
  std::vector<Row> rows;
  Context c;
  const bench::FloorGate none_floor(false), pkey_floor(true);
  c.floor = &none_floor;
  rows.push_back({"-", "direct", bench::count_instructions(prepare, op_direct, &c)});
  rows.push_back({"-", std::string("floor (") + none_floor.name() + ")",
                  bench::count_instructions(prepare, op_floor, &c)});
  if (bench::gate_features().pkeys) {
    c.floor = &pkey_floor;
    rows.push_back({"-", std::string("floor_pkey (") + pkey_floor.name() + ")",
                    bench::count_instructions(prepare, op_floor, &c)});
  }
  return rows;
}

void print(const std::vector<Row>& rows) {
  std::printf("%-9s %-44s %8s %8s %7s  %s\n", "backend", "operation", "instr", "syscalls", "signals", "system calls");
  for (const Row& r : rows) {
    if (!r.count.error.empty()) {
      std::printf("%-9s %-44s %s\n", r.backend.c_str(), r.operation.c_str(), r.count.error.c_str());
      continue;
    }
    std::printf("%-9s %-44s %8llu %8llu %7llu  %s\n", r.backend.c_str(), r.operation.c_str(),
                static_cast<unsigned long long>(r.count.instructions),
                static_cast<unsigned long long>(r.count.syscalls), static_cast<unsigned long long>(r.count.signals),
                r.count.syscall_list().c_str());
  }
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
  }
  return out;
}

void write_json(const std::string& file, const std::vector<Row>& rows) {
  std::ofstream out(file);
  out << "{\"machine\": \"" << bench::describe(bench::gate_features()) << "\", \"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    out << "  {\"backend\": \"" << r.backend << "\", \"operation\": \"" << json_escape(r.operation)
        << "\", \"instructions\": " << r.count.instructions << ", \"syscalls\": " << r.count.syscalls
        << ", \"signals\": " << r.count.signals << ", \"system_calls\": \"" << r.count.syscall_list()
        << "\", \"error\": \"" << json_escape(r.count.error) << "\"}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  out << "]}\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string json;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json = argv[++i];
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      g_only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--only BACKEND/OPERATION]\n", argv[0]);
      return 2;
    }
  }
  try {
    const std::string image = bench::temp_dir().file("icount.img");
    bench::make_image(image, {bench::sibling_program("bench_image_server"), image, "--heap-mb", "1"});
    std::printf("machine: %s (instructions in user space, single-stepped; system calls by number)\n",
                bench::describe(bench::gate_features()).c_str());
    std::vector<Row> rows = baselines();
    for (auto [p, name] :
         {std::pair{subctx::Protection::None, "none"}, std::pair{subctx::Protection::Mprotect, "mprotect"},
          std::pair{subctx::Protection::Pkey, "pkey"}}) {
      std::vector<Row> more = count_backend(image, p, name);
      rows.insert(rows.end(), more.begin(), more.end());
    }
    print(rows);
    if (!json.empty()) write_json(json, rows);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_icount: %s\n", e.what());
    return 1;
  }
  return 0;
}
