// The whole agent, measured on the real `sandci serve` over loopback (issue 15's
// performance report, section "The whole agent" of docs/performance.md):
//  1. webhook ingress: signed GitHub push deliveries, each with its own delivery
//     id, sent over C kept-alive connections for S seconds by a load generator
//     in this process (one epoll thread); counted are answers that say the
//     delivery was verified and committed, and the store is asked afterwards
//     how many deliveries it holds;
//  2. push to first job running (warm mirror): from the webhook POST to the
//     first step's start (the "##[step]" line of the job's log) and to the
//     job's start in the run's JSON, p50/p95 over P pushes;
//  3. how cost grows: 1, 10, 100 runs of a one-job workflow pushed at once
//     (runs/s, each run's latency from its POST to its end, p50/p95), and one
//     workflow of J independent jobs (validate and plan time of the binary,
//     run time through the agent).
// Everything it starts (a git daemon, a test forge, the agent) listens on
// 127.0.0.1 and is stopped at the end; its folder is removed.
//
// Usage: bench_whole_agent [--seconds S=10] [--connections C=64] [--pushes P=20]
//          [--scale 1,10,100] [--jobs J=1000] [--capacity N=2] [--sandci BINARY]
//          [--only ingress|push|scale|big] [--warm W]
// --warm sets the agent's sandbox.warm (unset: the agent's default), so that
// one binary can be measured with sandboxes started ahead and without.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/bench_support.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace sandci::bench;

const char* kSecret = "bench-webhook-secret";

struct Options {
  int seconds = 10, connections = 64, pushes = 20, jobs = 1000, capacity = 2;
  int warm = -1;  // -1: the agent's default
  std::vector<int> scale{1, 10, 100};
  std::string sandci = SANDCI_BINARY;
  std::string only;
};

std::string loadavg() { return capture("cut -d' ' -f1-3 /proc/loadavg"); }

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

std::string hex(const unsigned char* data, std::size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

// A GitHub delivery as GitHub sends it: the event, the delivery id and the
// HMAC-SHA256 of the body under the hook's secret.
std::string signed_request(const std::string& body, const std::string& delivery) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), kSecret, static_cast<int>(std::strlen(kSecret)),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &mac_size);
  std::string request = "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
                        "Content-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: ";
  request += delivery;
  request += "\r\nX-Hub-Signature-256: sha256=" + hex(mac, mac_size);
  request += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  request += body;
  return request;
}

std::string push_body(const std::string& repository, const std::string& ref, const std::string& sha,
                      const std::string& clone, const std::string& message) {
  return json{{"ref", ref},
              {"before", std::string(40, '0')},
              {"after", sha},
              {"repository", {{"full_name", repository}, {"clone_url", clone}}},
              {"pusher", {{"name", "bench"}}},
              {"head_commit", {{"id", sha}, {"message", message}}}}
      .dump();
}

// One HTTP/1.1 exchange on a fresh connection (the bench's own control requests).
struct Reply {
  int status = 0;
  std::string body;
};

// Reads one response from `fd` into `buffer`; returns true once a whole one
// (headers and Content-Length bytes of body) is there.
bool whole_response(const std::string& buffer, Reply& reply, std::size_t& used) {
  const auto end = buffer.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::size_t length = 0;
  std::string headers = buffer.substr(0, end);
  std::transform(headers.begin(), headers.end(), headers.begin(), [](unsigned char c) { return std::tolower(c); });
  if (auto at = headers.find("content-length:"); at != std::string::npos)
    length = std::strtoul(headers.c_str() + at + 15, nullptr, 10);
  if (buffer.size() < end + 4 + length) return false;
  reply.status = std::atoi(buffer.c_str() + 9);
  reply.body = buffer.substr(end + 4, length);
  used = end + 4 + length;
  return true;
}

Reply http_exchange(int port, const std::string& request) {
  Reply reply;
  int fd = connect_loopback(port);
  if (fd < 0) return reply;
  timeval timeout{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  for (std::size_t sent = 0; sent < request.size();) {
    auto n = write(fd, request.data() + sent, request.size() - sent);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string buffer;
  char chunk[65536];
  std::size_t used = 0;
  while (!whole_response(buffer, reply, used)) {
    auto n = read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  close(fd);
  return reply;
}

// The load generator's figures.
struct Load {
  long committed = 0, other = 0, errors = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;
  std::map<std::string, long> others;  // answer -> count, for the report
};

// C connections, each sending one delivery at a time and the next as soon as its
// answer is in (closed-loop, like GitHub's hook senders), for `seconds`.
Load generate(int port, int connections, int seconds, const std::string& repository, const std::string& sha,
              const std::string& clone) {
  struct Conn {
    int fd = -1;
    std::string out, in;
    std::size_t sent = 0;
    Clock::time_point t0;
    long n = 0;
  };
  Load load;
  std::vector<Conn> conns(static_cast<std::size_t>(connections));
  int ep = epoll_create1(0);
  const std::string run_tag = std::to_string(getpid()) + "-" + std::to_string(now_ms());
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  auto next = [&](std::size_t i) {
    Conn& c = conns[i];
    const std::string delivery = "bench-" + run_tag + "-" + std::to_string(i) + "-" + std::to_string(c.n++);
    c.out = signed_request(push_body(repository, "refs/heads/main", sha, clone, "delivery " + delivery), delivery);
    c.sent = 0;
    c.in.clear();
    c.t0 = Clock::now();
    auto n = write(c.fd, c.out.data(), c.out.size());
    if (n > 0) c.sent = static_cast<std::size_t>(n);
    epoll_event ev{};
    ev.events = EPOLLIN | (c.sent < c.out.size() ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  };
  auto open = [&](std::size_t i) {
    Conn& c = conns[i];
    c.fd = connect_loopback(port);
    if (c.fd < 0) return false;
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  };
  auto reopen = [&](std::size_t i) {
    close(conns[i].fd);
    ++load.errors;
    if (open(i) && Clock::now() < deadline) next(i);
  };
  const auto start = Clock::now();
  for (std::size_t i = 0; i < conns.size(); ++i)
    if (open(i)) next(i);
  int busy = connections;
  std::vector<epoll_event> events(static_cast<std::size_t>(connections));
  char chunk[65536];
  while (busy > 0) {
    int ready = epoll_wait(ep, events.data(), connections, 1000);
    for (int e = 0; e < ready; ++e) {
      const auto i = static_cast<std::size_t>(events[static_cast<std::size_t>(e)].data.u64);
      Conn& c = conns[i];
      if (c.sent < c.out.size()) {
        auto n = write(c.fd, c.out.data() + c.sent, c.out.size() - c.sent);
        if (n > 0) c.sent += static_cast<std::size_t>(n);
        if (c.sent == c.out.size()) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = i;
          epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
      }
      auto n = read(c.fd, chunk, sizeof chunk);
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        reopen(i);
        if (Clock::now() >= deadline) --busy;
        continue;
      }
      if (n < 0) continue;
      c.in.append(chunk, static_cast<std::size_t>(n));
      Reply reply;
      std::size_t used = 0;
      if (!whole_response(c.in, reply, used)) continue;
      load.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - c.t0).count());
      // 200 "ignored: ..." is the answer once the delivery is verified and committed.
      if (reply.status == 200 && reply.body.rfind("ignored:", 0) == 0) {
        ++load.committed;
      } else {
        ++load.other;
        ++load.others[std::to_string(reply.status) + " " + reply.body.substr(0, reply.body.find('\n'))];
      }
      if (Clock::now() < deadline) {
        next(i);
      } else {
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        close(c.fd);
        --busy;
      }
    }
  }
  load.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  close(ep);
  return load;
}

// "HH:MM:SS.mmm" of a log line (UTC) -> ms since the epoch, on the day of `near_ms`.
std::optional<std::int64_t> log_time_ms(const std::string& line, std::int64_t near_ms) {
  int h, m, s, ms;
  if (std::sscanf(line.c_str(), "%d:%d:%d.%d", &h, &m, &s, &ms) != 4) return std::nullopt;
  const std::int64_t day = 86'400'000;
  std::int64_t t = near_ms / day * day + ((h * 60 + m) * 60 + s) * 1000LL + ms;
  if (t < near_ms - day / 2) t += day;  // the push just before midnight
  return t;
}

char g_dir[512];  // the bench's folder, for on_interrupt

struct Agent {
  Options options;
  fs::path dir;
  int agent_port = 0, git_port = 0, forge_port = 0;
  pid_t agent = -1, git_daemon = -1, forge = -1;

  std::string clone_url(const std::string& name) const {
    return "git://127.0.0.1:" + std::to_string(git_port) + "/bench/" + name;
  }

  Reply post(const std::string& body, const std::string& delivery) {
    return http_exchange(agent_port, signed_request(body, delivery));
  }

  json get_json(const std::string& path) {
    Reply reply = http_exchange(agent_port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    return reply.status == 200 ? json::parse(reply.body, nullptr, false) : json();
  }

  // A repository on the git daemon with one workflow file; returns its HEAD.
  std::string make_repo(const std::string& name, const std::string& workflow) {
    const std::string bare = (dir / "git/bench" / name).string(), work = (dir / ("work-" + name)).string();
    sh("git init -q --bare -b main " + bare + " && git init -q -b main " + work + " && git -C " + work +
       " remote add origin " + bare);
    fs::create_directories(fs::path(work) / ".github/workflows");
    std::ofstream(fs::path(work) / ".github/workflows/ci.yml") << workflow;
    return commit(name, "initial");
  }

  std::string commit(const std::string& name, const std::string& message) {
    const std::string work = (dir / ("work-" + name)).string();
    std::ofstream(fs::path(work) / "change.txt") << message << "\n";
    sh("git -C " + work + " add -A && git -C " + work + " -c user.name=b -c user.email=b@b.invalid commit -qm '" +
       message + "' && git -C " + work + " push -q origin HEAD:refs/heads/main");
    return capture("git -C " + work + " rev-parse HEAD");
  }

  static std::string repository_yaml(const std::string& name, int forge_port, const fs::path& dir,
                                     const std::string& clone, const std::string& extra) {
    return "  - name: bench/" + name + "\n    forge: github\n    api_url: http://127.0.0.1:" +
           std::to_string(forge_port) + "\n    webhook_secret: {file: " + (dir / "webhook").string() +
           "}\n    api_token: {file: " + (dir / "token").string() + "}\n    clone_url: " + clone + "\n    pages: public\n" + extra;
  }

  bool setup(const fs::path& images) {
    dir = fs::path("/var/tmp") / ("sandci-whole-agent-" + std::to_string(getpid()));
    std::snprintf(g_dir, sizeof g_dir, "%s", dir.c_str());
    fs::create_directories(dir / "git/bench");
    fs::create_directories(dir / "state");
    fs::create_directory_symlink(images, dir / "state/images");
    make_repo("one", "name: ci\non: push\njobs:\n  only:\n    runs-on: linux\n    steps:\n      - run: 'true'\n");
    // Ingress only: its pushes are verified, deduplicated and committed as
    // deliveries, then answered "ignored" (push events are not configured for it).
    make_repo("recorded", "name: ci\non: push\njobs:\n  only:\n    runs-on: linux\n    steps:\n      - run: 'true'\n");
    std::string big = "name: big\non: push\njobs:\n";
    char name[32];
    for (int j = 0; j < options.jobs; ++j) {
      std::snprintf(name, sizeof name, "j%04d", j);
      big += std::string("  ") + name + ":\n    runs-on: linux\n    steps:\n      - run: 'true'\n";
    }
    make_repo("big", big);
    git_port = free_port();
    git_daemon = spawn({"git", "daemon", "--base-path=" + (dir / "git").string(), "--export-all", "--reuseaddr",
                        "--listen=127.0.0.1", "--port=" + std::to_string(git_port), (dir / "git").string()},
                       dir / "git-daemon.log");
    // The forge that takes the commit statuses: a one-line HTTP server that
    // answers 201 to everything (python3's http.server, kept alive).
    forge_port = free_port();
    std::ofstream(dir / "forge.py")
        << "import http.server\nclass H(http.server.BaseHTTPRequestHandler):\n"
           "    protocol_version = 'HTTP/1.1'\n"
           "    def do_POST(self):\n"
           "        self.rfile.read(int(self.headers.get('Content-Length', 0)))\n"
           "        self.send_response(201); self.send_header('Content-Length', '2'); self.end_headers()\n"
           "        self.wfile.write(b'{}')\n"
           "    def log_message(self, *a): pass\n"
           "http.server.ThreadingHTTPServer(('127.0.0.1', "
        << forge_port << "), H).serve_forever()\n";
    forge = spawn({"python3", (dir / "forge.py").string()}, dir / "forge.log");
    for (const char* file : {"webhook", "token"}) {
      std::ofstream(dir / file) << (std::string(file) == "webhook" ? kSecret : "bench-token") << "\n";
      fs::permissions(dir / file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    }
    agent_port = free_port();
    std::ofstream(dir / "agent.yml") << "listen: 127.0.0.1:" << agent_port << "\npublic_url: http://127.0.0.1:"
                                     << agent_port << "\nstate_dir: " << (dir / "state").string()
                                     << "\ncapacity: " << options.capacity << "\nlog_level: warn\n"
                                     << (options.warm >= 0 ? "sandbox:\n  warm: " + std::to_string(options.warm) + "\n"
                                                           : std::string())
                                     << "repositories:\n"
                                     << repository_yaml("one", forge_port, dir, clone_url("one"), "")
                                     << repository_yaml("big", forge_port, dir, clone_url("big"), "")
                                     << repository_yaml("recorded", forge_port, dir, clone_url("recorded"),
                                                        "    events: [tag]\n");
    agent = spawn({options.sandci, "serve", "--config", (dir / "agent.yml").string()}, dir / "agent.log");
    for (int i = 0; i < 400; ++i) {
      if (get_json("/healthz").is_object()) return true;
      std::this_thread::sleep_for(50ms);
    }
    std::printf("the agent did not start:\n%s\n", capture("tail -n 20 " + (dir / "agent.log").string()).c_str());
    return false;
  }

  void wait_idle() {
    for (int i = 0; i < 24000; ++i) {
      auto h = get_json("/healthz");
      if (h.is_object() && h.value("queued", 1) == 0 && h.value("running", 1) == 0) return;
      std::this_thread::sleep_for(25ms);
    }
  }

  // Waits until run `id` has finished; returns its JSON (null if it never did).
  json wait_run(std::int64_t id, std::chrono::seconds limit = 3600s) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      json run = get_json("/api/runs/" + std::to_string(id));
      if (run.is_object() && run.value("finished_ms", std::int64_t{0}) > 0) return run;
      std::this_thread::sleep_for(20ms);
    }
    return json();
  }

  long deliveries_in_store(const std::string& repository) {
    const std::string n = capture("sqlite3 -readonly " + (dir / "state/agent.db").string() +
                                  " \"SELECT count(*) FROM deliveries WHERE repository = '" + repository + "'\"");
    return std::atol(n.c_str());
  }

  void ingress() {
    const std::string sha = capture("git -C " + (dir / "work-recorded").string() + " rev-parse HEAD");
    generate(agent_port, options.connections, 1, "bench/recorded", sha, clone_url("recorded"));  // warm-up
    const long before = deliveries_in_store("bench/recorded");
    Load load = generate(agent_port, options.connections, options.seconds, "bench/recorded", sha,
                         clone_url("recorded"));
    const long stored = deliveries_in_store("bench/recorded") - before;
    std::printf("webhook ingress: %d kept-alive connections, %.1f s, signed GitHub pushes with unique delivery ids\n",
                options.connections, load.seconds);
    std::printf("  %ld answered verified and committed (200 ignored), %ld other answers, %ld connection errors; "
                "the store holds %ld more deliveries\n",
                load.committed, load.other, load.errors, stored);
    for (const auto& [answer, count] : load.others) std::printf("  other answer x%ld: %s\n", count, answer.c_str());
    std::printf("  RESULT ingress %.0f deliveries/s, latency p50 %.2f ms, p99 %.2f ms, max %.2f ms "
                "(target 5000/s, p99 < 20 ms: %s)\n",
                static_cast<double>(load.committed) / load.seconds, percentile(load.latencies_ms, 0.5),
                percentile(load.latencies_ms, 0.99), percentile(load.latencies_ms, 1.0),
                static_cast<double>(load.committed) / load.seconds >= 5000 && percentile(load.latencies_ms, 0.99) < 20
                    ? "met"
                    : "not met");
  }

  // The first "##[step]" line of the run's job log: when the runner started the
  // first step (its sandbox is up).
  std::optional<std::int64_t> first_step_ms(std::int64_t run, std::int64_t near_ms) {
    std::optional<std::int64_t> first;
    std::error_code ec;
    const fs::path logs = dir / "state/runs" / std::to_string(run) / "logs";
    for (auto it = fs::recursive_directory_iterator(logs, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      // A finished run's logs are gzip-compressed (<job>.log.gz).
      std::istringstream in(it->path().extension() == ".gz" ? capture("zcat '" + it->path().string() + "'")
                                                             : capture("cat '" + it->path().string() + "'"));
      std::string line;
      while (std::getline(in, line))
        if (line.find(" ##[step] ") != std::string::npos) {
          auto t = log_time_ms(line, near_ms);
          if (t && (!first || *t < *first)) first = t;
          break;
        }
    }
    return first;
  }

  void push_to_first_job() {
    std::vector<double> to_job, to_step, to_end;
    for (int i = 0; i <= options.pushes; ++i) {
      const std::string sha = commit("one", "change " + std::to_string(i));  // on the git server first
      const std::int64_t t0 = now_ms();
      Reply accepted = post(push_body("bench/one", "refs/heads/main", sha, clone_url("one"), "change"),
                            "push-" + std::to_string(getpid()) + "-" + std::to_string(i));
      auto answer = json::parse(accepted.body, nullptr, false);
      if (!answer.is_object() || !answer.contains("run")) {
        std::printf("push %d not accepted: %d %s\n", i, accepted.status, accepted.body.c_str());
        return;
      }
      const std::int64_t id = answer["run"].get<std::int64_t>();
      json run = wait_run(id, 600s);
      if (!run.is_object() || run["jobs"].empty()) {
        std::printf("run %lld did not finish or has no job\n", static_cast<long long>(id));
        return;
      }
      const auto& job = run["jobs"][0];
      auto step = first_step_ms(id, t0);
      if (i == 0) continue;  // the first push fills the mirror
      to_job.push_back(static_cast<double>(job.value("started_ms", std::int64_t{0}) - t0));
      if (step) to_step.push_back(static_cast<double>(*step - t0));
      to_end.push_back(static_cast<double>(job.value("finished_ms", std::int64_t{0}) - t0));
    }
    std::printf("push to first job (warm mirror, %d pushes one after another, one trivial job each):\n",
                options.pushes);
    std::printf("  RESULT push to first job started (the run's JSON): p50 %.0f ms, p95 %.0f ms\n", percentile(to_job, 0.5),
                percentile(to_job, 0.95));
    std::printf("  RESULT push to first step running: p50 %.0f ms, p95 %.0f ms (target p50 < 500 ms: %s)\n",
                percentile(to_step, 0.5), percentile(to_step, 0.95), percentile(to_step, 0.5) < 500 ? "met" : "not met");
    std::printf("  RESULT push to that job's end (sandbox gone): p50 %.0f ms, p95 %.0f ms\n", percentile(to_end, 0.5),
                percentile(to_end, 0.95));
  }

  // N runs of the one-job workflow at once: N branches, one push each, POSTed
  // back to back; each run's latency is from its POST to its end.
  void scale(int n) {
    const std::string work = (dir / "work-one").string();
    std::string refspecs;
    for (int i = 0; i < n; ++i) refspecs += " HEAD:refs/heads/s" + std::to_string(n) + "-" + std::to_string(i);
    sh("git -C " + work + " push -q origin" + refspecs);
    const std::string sha = capture("git -C " + work + " rev-parse HEAD");
    std::vector<std::pair<std::int64_t, std::int64_t>> posted;  // run, t0
    const std::int64_t start = now_ms();
    for (int i = 0; i < n; ++i) {
      const std::int64_t t0 = now_ms();
      const std::string ref = "refs/heads/s" + std::to_string(n) + "-" + std::to_string(i);
      Reply r = post(push_body("bench/one", ref, sha, clone_url("one"), "scale"),
                     "scale-" + std::to_string(getpid()) + "-" + std::to_string(n) + "-" + std::to_string(i));
      auto answer = json::parse(r.body, nullptr, false);
      if (answer.is_object() && answer.contains("run")) posted.emplace_back(answer["run"].get<std::int64_t>(), t0);
    }
    std::vector<double> latencies;
    std::int64_t last = start;
    int ok = 0;
    for (const auto& [id, t0] : posted) {
      json run = wait_run(id);
      if (!run.is_object()) continue;
      const std::int64_t end = run.value("finished_ms", std::int64_t{0});
      if (run.value("state", "") == "success") ++ok;
      latencies.push_back(static_cast<double>(end - t0) / 1000.0);
      last = std::max(last, end);
    }
    const double took = static_cast<double>(last - start) / 1000.0;
    std::printf("  RESULT %3d runs at once: %3d succeeded in %6.1f s, %.2f runs/s; per run p50 %.2f s, p95 %.2f s\n",
                n, ok, took, ok / std::max(took, 0.001), percentile(latencies, 0.5), percentile(latencies, 0.95));
  }

  double timed_command(const std::string& command) {
    const auto t0 = Clock::now();
    const int rc = sh(command + " > /dev/null 2>&1");
    const double took = std::chrono::duration<double>(Clock::now() - t0).count();
    return rc == 0 ? took : -took;
  }

  void big() {
    const std::string work = (dir / "work-big").string();
    const double validate = timed_command(options.sandci + " validate " + work);
    const double plan = timed_command(options.sandci + " plan " + work);
    std::printf("  RESULT %d-job workflow: sandci validate %.3f s%s, sandci plan %.3f s%s\n", options.jobs,
                std::abs(validate), validate < 0 ? " (FAILED)" : "", std::abs(plan), plan < 0 ? " (FAILED)" : "");
    const std::string sha = commit("big", "big run");
    const std::int64_t t0 = now_ms();
    Reply r = post(push_body("bench/big", "refs/heads/main", sha, clone_url("big"), "big"),
                   "big-" + std::to_string(getpid()));
    auto answer = json::parse(r.body, nullptr, false);
    if (!answer.is_object() || !answer.contains("run")) {
      std::printf("  the big push was not accepted: %d %s\n", r.status, r.body.c_str());
      return;
    }
    json run = wait_run(answer["run"].get<std::int64_t>());
    if (!run.is_object()) {
      std::printf("  the %d-job run did not finish\n", options.jobs);
      return;
    }
    long succeeded = 0;
    std::int64_t first_start = 0;
    for (const auto& job : run["jobs"]) {
      if (job.value("state", "") == "success") ++succeeded;
      const auto s = job.value("started_ms", std::int64_t{0});
      if (s > 0 && (first_start == 0 || s < first_start)) first_start = s;
    }
    const double took = static_cast<double>(run.value("finished_ms", std::int64_t{0}) - t0) / 1000.0;
    std::printf("  RESULT %d-job run through the agent (capacity %d): %ld jobs succeeded, %.1f s from the POST to the "
                "run's end (first job started after %.2f s), %.2f jobs/s\n",
                options.jobs, options.capacity, succeeded, took, static_cast<double>(first_start - t0) / 1000.0,
                static_cast<double>(succeeded) / std::max(took, 0.001));
  }

  ~Agent() {
    stop(agent, 60s);
    stop(git_daemon, 60s);
    stop(forge, 60s);
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

// Interrupted (Ctrl-C, a timeout): stop what it started and remove its folder.
// Only async-signal-safe calls: kill, then exec rm in place of the bench.

Agent* g_agent = nullptr;

void on_interrupt(int) {
  if (g_agent) {
    for (pid_t pid : {g_agent->agent, g_agent->git_daemon, g_agent->forge})
      if (pid > 0) kill(pid, SIGTERM);
    for (pid_t pid : {g_agent->agent, g_agent->git_daemon, g_agent->forge})
      if (pid > 0) waitpid(pid, nullptr, 0);  // nothing writes into the folder any more
    if (g_dir[0]) execlp("rm", "rm", "-rf", "--one-file-system", g_dir, static_cast<char*>(nullptr));
  }
  _exit(130);
}

fs::path job_images() {
  if (const char* dir = std::getenv("SANDCI_BENCH_IMAGES")) return dir;
  for (const char* dir : {"/var/lib/sandci/images", "/var/cache/sandci/image-test-state/images"})
    if (fs::exists(fs::path(dir) / "debian%3A12")) return dir;
  return {};
}

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::atoi(item.c_str()));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--seconds") options.seconds = std::atoi(value.c_str());
    else if (flag == "--connections") options.connections = std::atoi(value.c_str());
    else if (flag == "--pushes") options.pushes = std::atoi(value.c_str());
    else if (flag == "--jobs") options.jobs = std::atoi(value.c_str());
    else if (flag == "--capacity") options.capacity = std::atoi(value.c_str());
    else if (flag == "--warm") options.warm = std::atoi(value.c_str());
    else if (flag == "--scale") options.scale = parse_list(value);
    else if (flag == "--sandci") options.sandci = value;
    else if (flag == "--only") options.only = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const fs::path images = job_images();
  if (images.empty()) {
    std::printf("whole agent: no debian:12 image (run make demo or scripts/test-setup.sh first)\n");
    return 1;
  }
  std::printf("whole agent bench: %u cores, load average %s at the start; agent capacity %d; sandbox.warm %s; %s\n",
              std::thread::hardware_concurrency(), loadavg().c_str(), options.capacity,
              options.warm >= 0 ? std::to_string(options.warm).c_str() : "(default)", options.sandci.c_str());
  Agent agent;
  agent.options = options;
  g_agent = &agent;
  signal(SIGINT, on_interrupt);
  signal(SIGTERM, on_interrupt);
  if (!agent.setup(images)) return 1;
  auto wanted = [&](const char* part) { return options.only.empty() || options.only == part; };
  if (wanted("ingress")) agent.ingress();
  agent.wait_idle();
  if (wanted("push")) agent.push_to_first_job();
  if (wanted("scale")) {
    std::printf("how cost grows: N runs of a one-job workflow (a trivial step) pushed at once, capacity %d:\n",
                options.capacity);
    for (int n : options.scale) {
      agent.scale(n);
      agent.wait_idle();
    }
  }
  if (wanted("big")) agent.big();
  std::printf("whole agent bench: load average %s at the end\n", loadavg().c_str());
  return 0;
}
