// The agent's two headline figures, measured on the real daemon over loopback:
//  1. webhook ingress: verified, durably committed deliveries per second, and
//     the answer's p50/p99 latency, with C concurrent senders for S seconds;
//  2. push to first job running, with a warm mirror: the time from the webhook
//     POST until the run's first job has started, p50 and p95 over N pushes.
// Everything it starts (a git daemon, a test forge, `sandci serve`) listens on
// 127.0.0.1 and is stopped at the end.
//
// Usage: bench_agent_bench [SECONDS=5] [CLIENTS=32] [PUSHES=10]
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/forge/signing.h"
#include "agent/http/http_client.h"
#include "agent/http/http_server.h"
#include "support/bench_support.h"

namespace {

namespace fs = std::filesystem;
namespace http = sandci::agent::http;
namespace forge = sandci::agent::forge;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace sandci::bench;

const char* kSecret = "bench-webhook-secret";

fs::path job_images() {
  for (const char* dir : {"/var/cache/sandci/image-test-state/images", "/var/lib/sandci/images"})
    if (fs::exists(fs::path(dir) / "debian%3A12")) return dir;
  return {};
}

std::string push_body(const std::string& ref, const std::string& sha, const std::string& clone,
                      const std::string& repository = "bench/repo") {
  return json{{"ref", ref},
              {"before", std::string(40, '0')},
              {"after", sha},
              {"repository", {{"full_name", repository}, {"clone_url", clone}}},
              {"head_commit", {{"id", sha}, {"message", "bench"}}}}
      .dump();
}

struct Bench {
  fs::path dir;
  int agent_port = 0, git_port = 0;
  pid_t agent = -1, git_daemon = -1;
  std::unique_ptr<http::HttpServer> forge;
  http::HttpClient client;

  std::string agent_url() const { return "http://127.0.0.1:" + std::to_string(agent_port); }
  std::string clone_url() const { return "git://127.0.0.1:" + std::to_string(git_port) + "/bench/repo"; }

  http::ClientResponse post(const std::string& body, const std::string& delivery) {
    http::ClientRequest request;
    request.method = "POST";
    request.url = agent_url() + "/webhook";
    request.body = body;
    request.timeout = 30s;
    request.headers.set("Content-Type", "application/json");
    for (const auto& [k, v] :
         forge::webhook_headers(forge::ForgeKind::github, "push", delivery, body, kSecret, std::chrono::system_clock::now()))
      request.headers.add(k, v);
    auto r = client.send(request);
    return r ? *r : http::ClientResponse{0, {}, r.error()};
  }

  json get_json(const std::string& path) {
    http::ClientRequest request;
    request.url = agent_url() + path;
    request.timeout = 10s;
    auto r = client.send(request);
    return r ? json::parse(r->body, nullptr, false) : json();
  }

  std::string commit(const std::string& content) {
    const std::string work = (dir / "work").string();
    std::ofstream(dir / "work/change.txt") << content;
    sh("git -C " + work + " add -A && git -C " + work + " -c user.name=b -c user.email=b@b.invalid commit -qm '" +
       content + "' && git -C " + work + " push -q origin HEAD:refs/heads/main");
    return capture("git -C " + work + " rev-parse HEAD");
  }

  bool setup() {
    dir = fs::path("/var/tmp") / ("sandci-agent-bench-" + std::to_string(getpid()));
    fs::create_directories(dir / "git/bench");
    fs::create_directories(dir / "state");
    const fs::path images = job_images();
    if (images.empty()) {
      std::printf("no debian:12 image: run scripts/test-setup.sh (make test does) first\n");
      return false;
    }
    fs::create_directory_symlink(images, dir / "state/images");
    const std::string bare = (dir / "git/bench/repo").string(), work = (dir / "work").string();
    sh("git init -q --bare -b main " + bare + " && git init -q -b main " + work + " && git -C " + work +
       " remote add origin " + bare);
    fs::create_directories(dir / "work/.github/workflows");
    // Bench branches trigger nothing (each delivery is still verified, committed and
    // its run checked out); main runs one trivial job.
    std::ofstream(dir / "work/.github/workflows/ci.yml")
        << "name: ci\non:\n  push:\n    branches: [main]\njobs:\n  first:\n    runs-on: linux\n    steps:\n"
           "      - run: 'true'\n";
    commit("initial");
    git_port = free_port();
    git_daemon = spawn({"git", "daemon", "--base-path=" + (dir / "git").string(), "--export-all", "--reuseaddr",
                        "--listen=127.0.0.1", "--port=" + std::to_string(git_port), (dir / "git").string()},
                       dir / "git-daemon.log");
    http::HttpServerOptions forge_options;
    forge_options.handler_threads = 2;
    auto server = http::HttpServer::start(forge_options, [](http::HttpRequest, http::Responder respond) {
      respond(http::HttpResponse::json(201, "{}"));
    });
    if (!server) return false;
    forge = std::move(*server);
    for (const char* name : {"webhook", "token"}) {
      std::ofstream(dir / name) << (std::string(name) == "webhook" ? kSecret : "bench-token") << "\n";
      fs::permissions(dir / name, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    }
    agent_port = free_port();
    std::ofstream(dir / "agent.yml") << "listen: 127.0.0.1:" << agent_port << "\npublic_url: " << agent_url()
                                     << "\nstate_dir: " << (dir / "state").string()
                                     << "\ncapacity: 2\nlog_level: warn\nrepositories:\n  - name: bench/repo\n"
                                     << "    forge: github\n    api_url: http://127.0.0.1:" << forge->port()
                                     << "\n    webhook_secret: {file: " << (dir / "webhook").string() << "}\n"
                                     << "    api_token: {file: " << (dir / "token").string() << "}\n"
                                     << "    clone_url: " << clone_url() << "\n"
                                     // Its pushes are verified and recorded, then ignored: the intake alone.
                                     << "  - name: bench/recorded\n    forge: github\n    api_url: http://127.0.0.1:"
                                     << forge->port() << "\n    webhook_secret: {file: " << (dir / "webhook").string()
                                     << "}\n    api_token: {file: " << (dir / "token").string() << "}\n"
                                     << "    events: [tag]\n";
    agent = spawn({SANDCI_BINARY, "serve", "--config", (dir / "agent.yml").string()}, dir / "agent.log");
    for (int i = 0; i < 200; ++i) {
      if (get_json("/healthz").is_object()) return true;
      std::this_thread::sleep_for(50ms);
    }
    std::printf("the agent did not start:\n%s\n", capture("cat " + (dir / "agent.log").string()).c_str());
    return false;
  }

  void wait_idle() {
    for (int i = 0; i < 6000; ++i) {
      auto h = get_json("/healthz");
      if (h.is_object() && h.value("queued", 1) == 0 && h.value("running", 1) == 0) return;
      std::this_thread::sleep_for(50ms);
    }
  }

  // `repository` bench/repo: each delivery queues a run (the worker runs them
  // beside the intake); bench/recorded: each is verified and recorded, then
  // answered "ignored" (the intake alone).
  void ingress(int seconds, int clients, const std::string& repository) {
    const std::string sha = capture("git -C " + (dir / "work").string() + " rev-parse HEAD");
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::vector<double> latencies;
    std::atomic<long> accepted{0}, other{0};
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        std::vector<double> mine;
        const std::string body = push_body("refs/heads/bench-" + std::to_string(c), sha, clone_url(), repository);
        const int wanted = repository == "bench/repo" ? 202 : 200;
        for (long n = 0; !stop; ++n) {
          const auto t0 = Clock::now();
          auto r = post(body, repository + "-" + std::to_string(c) + "-" + std::to_string(n));
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          (r.status == wanted ? accepted : other)++;
        }
        std::lock_guard lock(mutex);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    stop = true;
    for (auto& t : threads) t.join();
    const double took = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("webhook ingress (%s): %d senders, %.1f s: %ld deliveries verified and committed, %ld other answers\n",
                repository == "bench/repo" ? "each queues a run, runs going on beside" : "recorded, nothing queued",
                clients, took, accepted.load(), other.load());
    std::printf("  %.0f deliveries/s; answer latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                static_cast<double>(accepted) / took, percentile(latencies, 0.5), percentile(latencies, 0.99),
                percentile(latencies, 1.0));
  }

  // Per push: until the run's first job has started (checkout, workflow loaded,
  // planned, job handed to the runner), and until that trivial job has finished
  // (its gVisor sandbox created, `true` run, sandbox gone).
  void push_to_first_job(int pushes) {
    std::vector<double> started, finished;
    for (int i = 0; i <= pushes; ++i) {
      const std::string sha = commit("change " + std::to_string(i));  // pushed to the git daemon first
      const auto t0 = Clock::now();
      auto accepted = post(push_body("refs/heads/main", sha, clone_url()), "push-" + std::to_string(i));
      auto answer = json::parse(accepted.body, nullptr, false);
      if (!answer.is_object() || !answer.contains("run")) {
        std::printf("push %d not accepted: %d %s\n", i, accepted.status, accepted.body.c_str());
        return;
      }
      const std::string run = "/api/runs/" + std::to_string(answer["run"].get<long>());
      double start_ms = -1, end_ms = -1;
      for (int poll = 0; poll < 60000 && end_ms < 0; ++poll) {
        auto state = get_json(run);
        if (!state.is_object()) {
          std::printf("%s does not answer JSON: is the sandci binary current?\n", run.c_str());
          return;
        }
        const double now = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        for (const auto& job : state["jobs"]) {
          const std::string s = job.value("state", "");
          if (s != "queued" && start_ms < 0) start_ms = now;
          if (s != "queued" && s != "running") end_ms = now;
        }
        if (end_ms < 0) std::this_thread::sleep_for(2ms);
      }
      if (i > 0) {  // the first push warms the mirror
        started.push_back(start_ms);
        finished.push_back(end_ms);
      }
      wait_idle();
    }
    std::printf("push to first job started (warm mirror, %d pushes): p50 %.0f ms, p95 %.0f ms\n", pushes,
                percentile(started, 0.5), percentile(started, 0.95));
    std::printf("push to that trivial job finished in its sandbox: p50 %.0f ms, p95 %.0f ms\n",
                percentile(finished, 0.5), percentile(finished, 0.95));
  }

  ~Bench() {
    stop(agent, 30s);
    stop(git_daemon, 30s);
    forge.reset();
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int clients = argc > 2 ? std::atoi(argv[2]) : 32;
  const int pushes = argc > 3 ? std::atoi(argv[3]) : 10;
  signal(SIGPIPE, SIG_IGN);
  std::printf("agent bench: loadavg %s, %u cores\n", capture("cut -d' ' -f1-3 /proc/loadavg").c_str(),
              std::thread::hardware_concurrency());
  Bench bench;
  if (!bench.setup()) return 1;
  bench.ingress(seconds, clients, "bench/recorded");
  bench.ingress(seconds, clients, "bench/repo");
  bench.wait_idle();
  bench.push_to_first_job(pushes);
  std::printf("loadavg after: %s\n", capture("cut -d' ' -f1-3 /proc/loadavg").c_str());
  return 0;
}
