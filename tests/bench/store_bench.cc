// Durable webhook intake: accept_delivery() rate and latency for 1, 8 and 64 concurrent
// callers, with group commit (many deliveries share one transaction and one fsync) and
// without (one transaction per delivery), on a file on a real disk (/var/tmp, not tmpfs).
//
//   build/tests/bench_store_bench [seconds per case, default 3] [directory, default /var/tmp]
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "agent/store/run_store.h"
#include "agent/store/sqlite_run_store.h"

namespace {

namespace fs = std::filesystem;
using namespace sandci::agent::store;
using Clock = std::chrono::steady_clock;

struct Result {
  std::size_t accepted = 0;
  double seconds = 0;
  double p50_ms = 0, p99_ms = 0;
  std::uint64_t transactions = 0;
  bool failed = false;
};

NewRun sample_run() {
  NewRun run;
  run.repository = "acme/app";
  run.forge = "github";
  run.event = "push";
  run.ref = "refs/heads/main";
  run.sha = "0123456789abcdef0123456789abcdef01234567";
  run.clone_url = "https://example.invalid/acme/app.git";
  run.trigger = "webhook";
  run.concurrency_key = "acme/app:refs/heads/main";
  run.title = "Fix the build";
  // About the size of a small push payload.
  run.payload_json = R"({"ref":"refs/heads/main","commits":[)" + std::string(3000, 'x') + "]}";
  return run;
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

Result run_case(const fs::path& dir, int callers, std::size_t max_batch, double seconds) {
  Result result;
  fs::path file =
      dir / ("bench-" + std::to_string(callers) + "-" + std::to_string(max_batch) + ".db");
  auto opened = open_sqlite_store(file, SqliteStoreOptions{.max_batch = max_batch});
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().message.c_str());
    result.failed = true;
    return result;
  }
  auto& store = **opened;
  const NewRun run = sample_run();
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(callers));
  std::atomic<bool> failed{false};
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);

  std::vector<std::thread> threads;
  for (int c = 0; c < callers; ++c) {
    threads.emplace_back([&, c] {
      auto& mine = latencies[static_cast<std::size_t>(c)];
      for (std::size_t i = 0; Clock::now() < deadline; ++i) {
        DeliveryRecord delivery{
            "github", std::to_string(c) + "-" + std::to_string(i), "acme/app", "push", 0, "queued"};
        auto t0 = Clock::now();
        auto accepted = store.accept_delivery(delivery, run);
        auto t1 = Clock::now();
        if (!accepted || accepted->duplicate) {
          if (!accepted) std::fprintf(stderr, "accept: %s\n", accepted.error().message.c_str());
          failed = true;
          return;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> all;
  for (auto& mine : latencies) all.insert(all.end(), mine.begin(), mine.end());
  result.accepted = all.size();
  result.p50_ms = percentile(all, 0.50);
  result.p99_ms = percentile(all, 0.99);
  if (auto* sqlite = dynamic_cast<SqliteRunStore*>(&store)) {
    result.transactions = sqlite->write_transactions();
  }
  result.failed = failed;
  opened->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix);
  return result;
}

void print(const char* mode, int callers, const Result& r) {
  const double rate = r.seconds > 0 ? static_cast<double>(r.accepted) / r.seconds : 0;
  const double per_tx = r.transactions > 0
                            ? static_cast<double>(r.accepted) / static_cast<double>(r.transactions)
                            : 0;
  std::printf("%-14s %7d %10zu %12.0f %9.2f %9.2f %10.1f%s\n", mode, callers, r.accepted, rate,
              r.p50_ms, r.p99_ms, per_tx, r.failed ? "  (errors!)" : "");
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  const fs::path base = argc > 2 ? fs::path(argv[2]) : fs::path("/var/tmp");
  std::string tmpl = (base / "sandci-store-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path dir = tmpl;
  std::printf("accept_delivery (delivery + queued run, synchronous=FULL) on %s, %.1f s per case\n",
              dir.c_str(), seconds);
  std::printf("%-14s %7s %10s %12s %9s %9s %10s\n", "mode", "callers", "accepted", "per second",
              "p50 ms", "p99 ms", "per fsync");
  bool failed = false;
  for (int callers : {1, 8, 64}) {
    Result grouped = run_case(dir, callers, SqliteStoreOptions{}.max_batch, seconds);
    Result single = run_case(dir, callers, 1, seconds);
    print("group commit", callers, grouped);
    print("one tx each", callers, single);
    const double ratio = single.accepted > 0
                             ? (static_cast<double>(grouped.accepted) / grouped.seconds) /
                                   (static_cast<double>(single.accepted) / single.seconds)
                             : 0;
    std::printf("%-14s %7d %10s %11.1fx\n", "gain", callers, "", ratio);
    failed = failed || grouped.failed || single.failed;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return failed ? 1 : 0;
}
