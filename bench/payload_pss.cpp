// Page sharing (issue 5): N clients (default 20) map the same payload image
// at once, each runs the first input and holds the mapping
// (bench_payload_holder); this program then sums their proportional set
// size (Pss, /proc/PID/smaps_rollup): a page of the image that N clients
// share counts 1/N in each.  Compared with
//   - the image: file size and allocated bytes (st_blocks * 512),
//   - N x one client's RSS (what the same pages would cost unshared),
//   - N x the peak RSS of a native process doing init + the first input
//     (`payload_<name>_server first`, ru_maxrss from wait4): N fresh
//     processes each holding its own initialized state.
// image_* counters count only the image's address ranges (/proc/PID/smaps).
//
//   bench_payload_pss [--payload=NAME] [--server=PATH --inputs=PATH] [--clients=N]
//
// Default payload: python, else the first payload built (PAYLOAD_PSS_CHOICES,
// "name|server|inputs" entries separated by commas, from CMake).  One
// benchmark row "pss/<name>" (Iterations(1)); its time is the wall time until
// every client was ready.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <subctx/subctx.hpp>
#include <vector>

#include "support.hpp"

extern char** environ;

namespace {

struct Config {
  std::string name, server, inputs;
  int clients = 20;
};
Config config;

// "Key:   123 kB" lines of smaps_rollup (or of one smaps entry), in bytes.
using Fields = std::map<std::string, double>;

Fields rollup(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
  if (!f) throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/smaps_rollup");
  Fields out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    std::string key;
    double kb;
    if (s >> key >> kb && key.back() == ':') out[key.substr(0, key.size() - 1)] = kb * 1024;
  }
  return out;
}

// Pss and Rss of the mappings of /proc/PID/smaps inside the image's ranges.
Fields image_part(pid_t pid, const std::vector<bench::Range>& ranges) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps");
  if (!f) throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/smaps");
  Fields out{{"Pss", 0}, {"Rss", 0}, {"Private_Dirty", 0}};
  bool inside = false;
  std::string line;
  while (std::getline(f, line)) {
    unsigned long lo, hi;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = false;
      for (const auto& r : ranges) inside |= lo < r.hi && hi > r.lo;
      continue;
    }
    if (!inside) continue;
    std::istringstream s(line);
    std::string key;
    double kb;
    if (s >> key >> kb && key.back() == ':') {
      key.pop_back();
      if (out.count(key)) out[key] += kb * 1024;
    }
  }
  return out;
}

struct Client {
  pid_t pid = -1;
  int in = -1;   // its stdin (closed: it unmaps and exits)
  int out = -1;  // its stdout ("ready" or "error: ...")
};

Client start_client(const std::string& holder, const std::string& image) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  const char* argv[] = {holder.c_str(), image.c_str(), config.inputs.c_str(), nullptr};
  Client c;
  const int err = posix_spawn(&c.pid, argv[0], &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  if (err != 0) {
    close(in[1]);
    close(out[0]);
    throw std::runtime_error("cannot start " + holder + ": " + std::strerror(err));
  }
  c.in = in[1];
  c.out = out[0];
  return c;
}

// The client's first line.
std::string first_line(const Client& c) {
  std::string line;
  char ch;
  for (;;) {
    const ssize_t n = read(c.out, &ch, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || ch == '\n') return line;
    line.push_back(ch);
  }
}

void stop(std::vector<Client>& clients) {
  for (Client& c : clients) {
    if (c.in >= 0) close(c.in);
    if (c.out >= 0) close(c.out);
    c.in = c.out = -1;
  }
  for (Client& c : clients)
    if (c.pid > 0) {
      while (waitpid(c.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      c.pid = -1;
    }
}

// Peak RSS (bytes) of a fresh native process doing init + the first input.
double native_peak_rss() {
  pid_t pid;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  const char* argv[] = {config.server.c_str(), "first", config.inputs.c_str(), nullptr};
  const int err = posix_spawn(&pid, argv[0], &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) throw std::runtime_error("cannot start " + config.server + ": " + std::strerror(err));
  int status = 0;
  struct rusage ru {};
  while (wait4(pid, &status, 0, &ru) < 0)
    if (errno != EINTR) throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(config.server + " first: failed");
  return static_cast<double>(ru.ru_maxrss) * 1024;
}

void BM_pss(benchmark::State& state) {
  const std::string image = bench::temp_dir().file(config.name + ".img");
  bench::make_image(image, {config.server, "snapshot", image});
  const bench::ImageStats stats = bench::image_stats(image);
  const std::vector<bench::Range> ranges = bench::image_ranges(image);
  const std::string holder = bench::sibling_program("bench_payload_holder");

  std::vector<Client> clients;
  Fields sum, image_sum;
  std::string error;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      for (int i = 0; i < config.clients; ++i) clients.push_back(start_client(holder, image));
      for (const Client& c : clients) {
        const std::string line = first_line(c);
        if (line != "ready" && error.empty()) error = "client " + std::to_string(c.pid) + ": " + line;
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (error.empty()) {
      // All clients hold the image now: Pss splits each shared page among them.
      for (const Client& c : clients) {
        for (const auto& [k, v] : rollup(c.pid)) sum[k] += v;
        for (const auto& [k, v] : image_part(c.pid, ranges)) image_sum[k] += v;
      }
    }
    stop(clients);
  }
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  const double native = native_peak_rss();
  const double n = config.clients, MB = 1e6;
  auto& c = state.counters;
  c["clients"] = n;
  c["pss_total_MB"] = sum["Pss"] / MB;
  c["pss_per_client_MB"] = sum["Pss"] / n / MB;
  c["rss_per_client_MB"] = sum["Rss"] / n / MB;
  c["rss_x_clients_MB"] = sum["Rss"] / MB;
  c["pss_anon_total_MB"] = sum["Pss_Anon"] / MB;
  c["pss_file_total_MB"] = sum["Pss_File"] / MB;
  c["private_dirty_per_client_MB"] = sum["Private_Dirty"] / n / MB;
  c["image_pss_total_MB"] = image_sum["Pss"] / MB;
  c["image_rss_per_client_MB"] = image_sum["Rss"] / n / MB;
  c["image_private_dirty_per_client_MB"] = image_sum["Private_Dirty"] / n / MB;
  c["image_file_MB"] = static_cast<double>(stats.file_bytes) / MB;
  c["image_disk_MB"] = static_cast<double>(stats.disk_bytes) / MB;
  c["native_peak_rss_MB"] = native / MB;
  c["native_x_clients_MB"] = native * n / MB;
  c["pss_total_per_rss_x_clients"] = sum["Pss"] / sum["Rss"];
  c["pss_total_per_image_disk"] = sum["Pss"] / static_cast<double>(stats.disk_bytes);
  c["pss_total_per_native_x_clients"] = sum["Pss"] / (native * n);
  state.SetLabel(config.name);
}

// "name|server|inputs,name|server|inputs,..." from CMake.
std::vector<Config> choices() {
  std::vector<Config> out;
  std::istringstream list(PAYLOAD_PSS_CHOICES);
  std::string entry;
  while (std::getline(list, entry, ',')) {
    Config c;
    std::istringstream fields(entry);
    std::getline(fields, c.name, '|');
    std::getline(fields, c.server, '|');
    std::getline(fields, c.inputs, '|');
    if (!c.name.empty()) out.push_back(c);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string want;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) {
      const std::string f = std::string("--") + flag + "=";
      return a.rfind(f, 0) == 0 ? a.substr(f.size()) : std::string();
    };
    if (!value("payload").empty()) want = value("payload");
    else if (!value("server").empty()) config.server = value("server");
    else if (!value("inputs").empty()) config.inputs = value("inputs");
    else if (!value("clients").empty()) config.clients = std::atoi(value("clients").c_str());
    else argv[kept++] = argv[i];
  }
  argc = kept;
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  if (config.server.empty() != config.inputs.empty() || config.clients < 1) {
    std::fprintf(stderr, "usage: %s [--payload=NAME] [--server=PATH --inputs=PATH] [--clients=N]\n", argv[0]);
    return 2;
  }
  if (config.server.empty()) {
    const std::vector<Config> all = choices();
    for (const Config& c : all) {  // python, else the first one built
      if (access(c.server.c_str(), X_OK) != 0 || (!want.empty() && c.name != want)) continue;
      if (config.server.empty() || (want.empty() && c.name == "python")) {
        config.name = c.name;
        config.server = c.server;
        config.inputs = c.inputs;
      }
    }
    if (config.server.empty()) {
      std::fprintf(stderr, "%s: no payload server built%s\n", argv[0], want.empty() ? "" : (" for " + want).c_str());
      return 1;
    }
  } else {
    config.name = want.empty() ? "payload" : want;
  }
  benchmark::RegisterBenchmark(("pss/" + config.name).c_str(), BM_pss)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  return bench::run_benchmarks(argv[0]);
}
