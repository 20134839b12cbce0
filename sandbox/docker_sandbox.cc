#include "sandbox/docker_sandbox.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "sandbox/helper_outcome.h"
#include "sandbox/process.h"

namespace sandci::sandbox {

namespace {
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// After a timed-out step's processes were sent SIGKILL, how long the exec may
// take to end before the whole container is killed instead.
constexpr auto kTreeKillGrace = std::chrono::seconds(5);
// How often a running exec samples the cgroup's counters (the cgroup goes away
// soon after the sandbox dies) and asks the engine whether the exec still runs.
constexpr int kSampleMs = 100;
constexpr auto kInspectEvery = std::chrono::milliseconds(250);
// Once the exec's process has exited, output still arriving is read this long:
// background processes may hold the stream open forever.
constexpr auto kDrainAfterExit = std::chrono::milliseconds(200);
constexpr std::size_t kStdinChunk = 64 * 1024;
// The engine calls about one exec or the container's state (create, inspect,
// kill) get this long each; the kill of a timed-out step too, after which the
// container is taken for wedged and stopped (as with runsc).
constexpr std::chrono::milliseconds kControlTimeout = std::chrono::seconds(20);
// A kill's answer is awaited only this long: the engine carries the kill on
// after its caller stops waiting (it runs apart from the request), and against
// a container whose runtime no longer answers it waits until that runtime does.
constexpr std::chrono::milliseconds kKillAnswerBound = std::chrono::seconds(2);

ExitStatus status(ExitKind kind, std::string detail, int code = 0, int sig = 0) {
  return ExitStatus{kind, code, sig, std::move(detail)};
}

bool inside(const std::string& path, const std::string& dir) {
  return path == dir || path.starts_with(dir.ends_with("/") ? dir : dir + "/");
}

// The wrapper every exec with a timeout or captured descriptors runs in: it
// records its pid (the process group a timeout kills), opens the capture files
// as fds 3, 4, ..., and tells a missing program apart from the command's own 127.
std::string wrapper_script(std::size_t captures) {
  std::string script =
      "t=$1; shift; d=${t%/*}; [ -d \"$d\" ] || mkdir -p -m 1777 \"$d\" 2>/dev/null; "
      "echo $$ > \"$t.pid\"; "
      "command -v -- \"$1\" >/dev/null 2>&1 || { rm -f \"$t.pid\"; "
      "printf 'sandci: cannot run %s: no such program\\n' \"$1\" >&2; exit 127; }; \"$@\"";
  for (std::size_t i = 0; i < captures; ++i) {
    script += " " + std::to_string(3 + i) + ">\"$t." + std::to_string(i) + "\"";
  }
  return script + "; r=$?; rm -f \"$t.pid\"; exit $r";
}

std::string missing_program_line(const std::string& program) {
  return "sandci: cannot run " + program + ": no such program\n";
}
}  // namespace

DockerSandbox::DockerSandbox(const DockerClient& client, std::string id, std::string cgroup, SandboxSpec spec)
    : client_(client),
      id_(std::move(id)),
      spec_(std::move(spec)),
      cgroup_(std::move(cgroup)),
      budget_(spec_.limits.log_bytes) {}

std::expected<std::unique_ptr<DockerSandbox>, SandboxError> DockerSandbox::start(
    const DockerClient& client, std::string id, std::string cgroup, SandboxSpec spec,
    std::chrono::nanoseconds create_time) {
  const auto started_at = Clock::now();
  std::unique_ptr<DockerSandbox> sandbox(new DockerSandbox(client, std::move(id), std::move(cgroup), std::move(spec)));
  // Writable mounts are copies: seeded before start through the archive API
  // (no exec needed), unless they lie inside a tmpfs, which only exists once
  // the container runs.
  auto in_tmpfs = [&](const std::string& path) {
    if (inside(path, "/tmp")) return true;
    return std::any_of(sandbox->spec_.tmpfs.begin(), sandbox->spec_.tmpfs.end(),
                       [&](const std::string& dir) { return inside(path, dir); });
  };
  std::vector<const Mount*> later;
  for (const auto& mount : sandbox->spec_.mounts) {
    if (mount.read_only) continue;
    if (in_tmpfs(mount.container_path)) {
      later.push_back(&mount);
      continue;
    }
    if (auto seeded = sandbox->seed(mount); !seeded) return std::unexpected(seeded.error());
  }
  sandbox->timings_.bundle = create_time + (Clock::now() - started_at);
  const auto start_at = Clock::now();
  auto started = client.call_json("POST", "/containers/" + sandbox->id_ + "/start", nullptr,
                                  "starting container " + sandbox->id_.substr(0, 12));
  if (!started) return std::unexpected(started.error());
  sandbox->timings_.start = Clock::now() - start_at;
  for (const Mount* mount : later) {
    if (auto copied = sandbox->copy_in(mount->host_path, mount->container_path); !copied) {
      return std::unexpected(copied.error());
    }
  }
  return sandbox;
}

DockerSandbox::~DockerSandbox() {
  // force=1 kills whatever still runs; v=1 drops anonymous volumes with it.
  (void)client_.call("DELETE", "/containers/" + id_ + "?force=1&v=1");
  if (!companion_.empty()) (void)client_.call("DELETE", "/containers/" + companion_ + "?force=1&v=1");
}

std::expected<void, SandboxError> DockerSandbox::seed(const Mount& mount) {
  const std::string& dest = mount.container_path;
  if (dest.empty() || dest[0] != '/' || dest.find_first_of(",\\&") != std::string::npos) {
    return std::unexpected(SandboxError{"mount target not supported by the Docker backend: " + dest});
  }
  if (!fs::is_directory(mount.host_path)) {
    return std::unexpected(SandboxError{"writable mount source is not a folder: " + mount.host_path});
  }
  // A tar of the folder whose members are named after the target ("./x" ->
  // "workspace/x"), unpacked at "/": the target need not exist in the image.
  const std::string target = dest == "/" ? "." : dest.substr(1);
  auto pipe = make_pipe();
  auto err = make_memfd("sandci-seed-stderr");
  if (!pipe || !err) return std::unexpected(SandboxError{"seeding " + dest + ": cannot create a pipe"});
  SpawnRequest request{{"tar", "-C", mount.host_path, "--numeric-owner", "--transform=s,^\\.," + target + ",rhS",
                        "-cf", "-", "."},
                       -1, pipe->write.get(), err->get(), {}};
  auto tar = spawn(request);
  pipe->write.reset();
  if (!tar) return std::unexpected(SandboxError{"seeding " + dest + ": " + tar.error()});
  auto put = client_.upload_from_fd("PUT", "/containers/" + id_ + "/archive?path=%2F", pipe->read.get(),
                                    "application/x-tar", bounds_.copy);
  pipe->read.reset();
  const int tar_status = wait_child(*tar);
  if (!put) return std::unexpected(SandboxError{"seeding " + dest + ": " + put.error().message});
  if (put->status != 200) {
    return std::unexpected(SandboxError{"seeding " + dest + ": the Docker engine said " +
                                        std::to_string(put->status) + ": " + put->message()});
  }
  if (!WIFEXITED(tar_status) || WEXITSTATUS(tar_status) != 0) {
    std::string message(4096, '\0');
    ssize_t n = ::pread(err->get(), message.data(), message.size(), 0);
    message.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return std::unexpected(SandboxError{"seeding " + dest + ": tar of " + mount.host_path +
                                        " failed: " + first_lines(message)});
  }
  return {};
}

void DockerSandbox::mark_dead(const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (!dead_) dead_reason_ = reason;
  dead_ = true;
}

std::string DockerSandbox::dead_reason() const {
  std::lock_guard lock(mutex_);
  return dead_reason_;
}

void DockerSandbox::kill() {
  killed_ = true;
  // Running execs end with the container; one the engine does not end is left
  // after kDeadExecGrace (run()).
  kill_container();
}

void DockerSandbox::kill_container() {
  (void)client_.call("POST", "/containers/" + id_ + "/kill?signal=KILL", {}, kKillAnswerBound);
}

std::expected<std::string, SandboxError> DockerSandbox::create_exec(const ExecRequest& request, bool attach_stdin,
                                                                    const std::vector<std::string>& cmd) {
  nlohmann::json body = {
      {"AttachStdin", attach_stdin},
      {"AttachStdout", true},
      {"AttachStderr", true},
      {"Tty", false},
      {"Cmd", cmd},
      {"Env", request.env},
      {"WorkingDir", request.working_dir.empty() ? spec_.working_dir : request.working_dir},
      {"User", std::to_string(spec_.uid) + ":" + std::to_string(spec_.gid)},
  };
  auto created = client_.call_json("POST", "/containers/" + id_ + "/exec", body, "creating an exec", kControlTimeout);
  if (!created) return std::unexpected(created.error());
  if (!created->contains("Id")) return std::unexpected(SandboxError{"creating an exec: no Id in the engine's answer"});
  return (*created)["Id"].get<std::string>();
}

ExitStatus DockerSandbox::run(const ExecRequest& request, const Io& io, LogBudget& budget,
                              const LineCallback& on_line, OnTimeout on_timeout) {
  if (killed_) return status(ExitKind::kKilled, "the job was cancelled");
  if (dead_) return status(ExitKind::kFailed, "the sandbox is gone: " + dead_reason());
  if (request.argv.empty()) return status(ExitKind::kFailed, "nothing to run: empty command");

  // Only a step needs the wrapper for its timeout (its process group is killed);
  // a helper's timeout stops the whole container.
  const bool wrapped =
      (request.timeout.count() > 0 && on_timeout == OnTimeout::kKillStep) || io.capture_count > 0;
  const std::string tag = std::string(kStateDir) + "/exec-" + std::to_string(++exec_counter_);
  std::vector<std::string> cmd;
  if (wrapped) {
    cmd = {"/bin/sh", "-c", wrapper_script(io.capture_count), "sandci-exec", tag};
  }
  cmd.insert(cmd.end(), request.argv.begin(), request.argv.end());

  const std::uint64_t oom_before = cgroup_.oom_kills();
  const std::uint64_t pids_before = cgroup_.pids_limit_hits();
  const bool has_stdin = io.stdin_data != nullptr || io.stdin_fd >= 0;
  auto exec_id = create_exec(request, has_stdin, cmd);
  if (!exec_id) {
    if (killed_) return status(ExitKind::kKilled, "the job was cancelled");
    if (auto death = sandbox_death(pids_before, oom_before, pids_before, oom_before)) return *death;
    return status(ExitKind::kFailed, exec_id.error().message);
  }
  auto stream = client_.start_exec(*exec_id, kControlTimeout);
  if (!stream) return status(ExitKind::kFailed, stream.error().message);

  LineSplitter out_lines(Stream::kStdout, budget, on_line);
  LineSplitter err_lines(Stream::kStderr, budget, on_line);
  std::string err_tail;  // the last bytes of stderr, for the wrapper's own message
  FrameDemuxer demux([&](int stream_no, std::string_view payload) {
    if (stream_no == 1) {
      if (io.raw_stdout) {
        io.raw_stdout(payload);
      } else {
        out_lines.feed(payload);
      }
    } else if (stream_no == 2) {
      err_lines.feed(payload);
      err_tail.append(payload);
      if (err_tail.size() > 1024) err_tail.erase(0, err_tail.size() - 1024);
    }
  });

  std::string_view to_send = io.stdin_data ? std::string_view(*io.stdin_data) : std::string_view();
  bool stdin_open = has_stdin;
  std::string refill;
  auto refill_from_fd = [&] {
    if (io.stdin_fd < 0 || !to_send.empty()) return;
    refill.resize(kStdinChunk);
    ssize_t n;
    do n = ::read(io.stdin_fd, refill.data(), refill.size());
    while (n < 0 && errno == EINTR);
    refill.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    to_send = refill;
  };
  refill_from_fd();
  if (stdin_open && to_send.empty()) {
    (*stream)->close_write();
    stdin_open = false;
  }

  const bool has_deadline = request.timeout.count() > 0;
  const auto deadline = Clock::now() + request.timeout;
  bool timed_out = false, escalated = false, eof = false, forced = false;
  std::optional<Clock::time_point> drain_until;
  auto next_inspect = Clock::now() + kInspectEvery;
  Clock::time_point escalate_at{}, dead_at{};
  std::uint64_t pids_seen = pids_before, oom_seen = oom_before;

  while (!eof) {
    pollfd p{(*stream)->native_handle(), static_cast<short>(POLLIN | (stdin_open ? POLLOUT : 0)), 0};
    int wait_ms = kSampleMs;
    auto now = Clock::now();
    auto until = [&](Clock::time_point t) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() + 1;
      wait_ms = std::min(wait_ms, static_cast<int>(std::max<long long>(ms, 0)));
    };
    if (has_deadline && !timed_out) until(deadline);
    if (timed_out && !escalated) until(escalate_at);
    if (drain_until) until(*drain_until);
    if (dead_at != Clock::time_point{}) until(dead_at + kDeadExecGrace);
    if (::poll(&p, 1, wait_ms) < 0 && errno != EINTR) break;
    if (stdin_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      std::size_t n = (*stream)->write_some(to_send.substr(0, kStdinChunk));
      to_send.remove_prefix(n);
      refill_from_fd();
      if (to_send.empty() || (n == 0 && (p.revents & (POLLERR | POLLHUP)))) {
        (*stream)->close_write();
        stdin_open = false;
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      // Read what is there now, a bounded number of times before looking at the clock again.
      for (int i = 0; i < 64; ++i) {
        auto bytes = (*stream)->read_some();
        if (!bytes) {
          eof = true;
          break;
        }
        if (bytes->empty()) break;
        demux.feed(*bytes);
      }
    }
    pids_seen = std::max(pids_seen, cgroup_.pids_limit_hits());
    oom_seen = std::max(oom_seen, cgroup_.oom_kills());
    now = Clock::now();
    if (eof) break;
    if (drain_until && now >= *drain_until) break;
    if (!drain_until && now >= next_inspect) {
      // Background processes may hold the stream open after the command exited.
      next_inspect = now + kInspectEvery;
      auto inspected = client_.call_json("GET", "/exec/" + *exec_id + "/json", nullptr, "inspecting an exec",
                                         kControlTimeout);
      if (!inspected || !inspected->value("Running", true)) drain_until = now + kDrainAfterExit;
    }
    if (has_deadline && !timed_out && now >= deadline) {
      timed_out = true;
      if (on_timeout == OnTimeout::kStopSandbox) {
        // Nothing more is wanted from this exec: the stream is dropped below.
        mark_dead(stopped_answering(request.timeout));
        kill_container();
        break;
      }
      if (wrapped) kill_step(tag);
      escalate_at = Clock::now() + kTreeKillGrace;
    } else if (timed_out && !escalated && now >= escalate_at) {
      escalated = true;
      mark_dead("a step timed out and its processes could not be stopped");
      kill_container();
    }
    // Once the container is dead (cancelled, stopped above, or by another
    // thread) the engine normally ends the exec's stream at once; one it does not
    // end (a runtime blocked on a wedged container) is dropped after a grace.
    if ((killed_ || dead_) && dead_at == Clock::time_point{}) dead_at = Clock::now();
    if (dead_at != Clock::time_point{} && Clock::now() >= dead_at + kDeadExecGrace) {
      forced = true;
      break;
    }
  }
  stream->reset();
  out_lines.finish();
  err_lines.finish();

  if (timed_out && on_timeout == OnTimeout::kStopSandbox) {
    return status(ExitKind::kTimedOut, no_answer_after(request.timeout));
  }
  // The exit code, once the engine has it (it may lag the stream's end a little).
  std::optional<int> code;
  for (int i = 0; i < 200 && !code && !killed_ && !forced; ++i) {
    auto inspected = client_.call_json("GET", "/exec/" + *exec_id + "/json", nullptr, "inspecting an exec",
                                       kControlTimeout);
    if (!inspected) break;
    if (!inspected->value("Running", false) && (*inspected)["ExitCode"].is_number_integer()) {
      code = (*inspected)["ExitCode"].get<int>();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (io.capture_count > 0 && io.captured && code && !killed_ && !dead_) collect_captures(tag, io);
  if (killed_) return status(ExitKind::kKilled, "the job was cancelled");
  if (timed_out) {
    return status(ExitKind::kTimedOut,
                  "timed out after " + std::to_string(request.timeout.count()) + " ms and was killed");
  }
  if (forced) return status(ExitKind::kFailed, "the sandbox is gone: " + dead_reason());
  if (!code || *code != 0) {
    if (auto death = sandbox_death(pids_before, oom_before, pids_seen, oom_seen)) return *death;
  }
  if (!code) return status(ExitKind::kFailed, "the Docker engine reported no exit code for the step");
  if (wrapped && *code == 127 && err_tail.ends_with(missing_program_line(request.argv[0]))) {
    return status(ExitKind::kFailed, "cannot run " + request.argv[0] + ": no such program", *code);
  }
  if (!wrapped && (*code == 126 || *code == 127) && err_tail.empty()) {
    return status(ExitKind::kFailed, "cannot run " + request.argv[0] + " (exit code " + std::to_string(*code) + ")",
                  *code);
  }
  if (*code > 128 && *code < 128 + NSIG) {
    return status(ExitKind::kSignaled, "killed by signal " + std::to_string(*code - 128), *code, *code - 128);
  }
  return status(ExitKind::kExited, "exit code " + std::to_string(*code), *code);
}

std::optional<ExitStatus> DockerSandbox::sandbox_death(std::uint64_t pids_before, std::uint64_t oom_before,
                                                       std::uint64_t pids_seen, std::uint64_t oom_seen) {
  const std::string pids_detail = "process limit reached (" + std::to_string(spec_.limits.pids) +
                                  " host processes); the sandbox was stopped";
  const std::string oom_detail = "out of memory: the limit of " + std::to_string(spec_.limits.memory_bytes >> 20) +
                                 " MiB was reached and the kernel killed the job";
  pids_seen = std::max(pids_seen, cgroup_.pids_limit_hits());
  oom_seen = std::max(oom_seen, cgroup_.oom_kills());
  if (pids_seen > pids_before) {
    mark_dead(pids_detail);
    return status(ExitKind::kPidsLimit, pids_detail);
  }
  // The sandbox itself may have died (gVisor's sentry killed or crashed): the
  // engine notices a moment after the exec's stream ends.
  nlohmann::json state;
  for (int i = 0; i < 20; ++i) {
    auto inspected = client_.call_json("GET", "/containers/" + id_ + "/json", nullptr, "inspecting the container",
                                       kControlTimeout);
    if (!inspected) return oom_seen > oom_before ? std::optional(status(ExitKind::kOutOfMemory, oom_detail))
                                                 : std::nullopt;
    state = (*inspected)["State"];
    if (!state.value("Running", false)) break;
    if (oom_seen <= oom_before && i >= 4) break;  // an ordinary failure: do not wait long
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    oom_seen = std::max(oom_seen, cgroup_.oom_kills());
  }
  const bool running = state.value("Running", false);
  const int exit_code = state.value("ExitCode", 0);
  if (oom_seen > oom_before || (!running && (state.value("OOMKilled", false) || exit_code == 137))) {
    if (!running) mark_dead(oom_detail);
    return status(ExitKind::kOutOfMemory, oom_detail);
  }
  if (running) return std::nullopt;
  if (exit_code == 2) {
    // gVisor's sentry exits 2 when it cannot create a host process (pids limit).
    mark_dead(pids_detail);
    return status(ExitKind::kPidsLimit, pids_detail + " (the sandbox exited 2)");
  }
  std::string detail = "the sandbox stopped unexpectedly (exit code " + std::to_string(exit_code) + ")";
  mark_dead(detail);
  return status(ExitKind::kFailed, detail);
}

void DockerSandbox::kill_step(const std::string& tag) {
  LogBudget quiet(4096);
  // Bounded: a container that no longer answers is stopped instead.
  ExecRequest request{{"/bin/sh", "-c", "p=$(cat \"$1\" 2>/dev/null) && [ -n \"$p\" ] && kill -9 -\"$p\"", "sh",
                       tag + ".pid"},
                      {}, "/", kControlTimeout};
  (void)run(request, Io{}, quiet, [](const OutputLine&) {}, OnTimeout::kStopSandbox);
}

ExitStatus DockerSandbox::exec(const ExecRequest& request, const LineCallback& on_line) {
  return run(request, Io{}, budget_, on_line);
}

ExitStatus DockerSandbox::exec(const ExecRequest& request, const LineCallback& on_line, ExecIo& io) {
  io.captured.assign(io.capture_count, std::string());
  Io plan;
  if (io.stdin_data) plan.stdin_data = &*io.stdin_data;
  plan.capture_count = io.capture_count;
  plan.capture_max_bytes = io.capture_max_bytes;
  plan.captured = &io.captured;
  ExitStatus st = run(request, plan, budget_, on_line);
  return st;
}

void DockerSandbox::collect_captures(const std::string& tag, const Io& io) {
  // One exec for all: per file, its size on a line, then at most max + 1 bytes.
  std::string script = "m=$1; t=$2; shift 2; for f; do if [ -f \"$f\" ]; then wc -c < \"$f\"; "
                       "head -c \"$m\" -- \"$f\"; else echo 0; fi; done; rm -f \"$t\".*";
  std::vector<std::string> argv{"/bin/sh", "-c", script, "sh", std::to_string(io.capture_max_bytes + 1), tag};
  for (std::size_t i = 0; i < io.capture_count; ++i) argv.push_back(tag + "." + std::to_string(i));
  std::string raw;
  Io collect;
  collect.raw_stdout = [&raw](std::string_view s) { raw.append(s); };
  if (!run_helper(argv, collect, "collecting captured output", bounds_.file)) return;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < io.capture_count && pos < raw.size(); ++i) {
    auto nl = raw.find('\n', pos);
    if (nl == std::string::npos) return;
    std::uint64_t size = std::strtoull(raw.c_str() + pos, nullptr, 10);
    pos = nl + 1;
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(size, io.capture_max_bytes + 1));
    take = std::min(take, raw.size() - pos);
    (*io.captured)[i] = raw.substr(pos, take);
    pos += take;
  }
}

std::expected<void, SandboxError> DockerSandbox::run_helper(const std::vector<std::string>& argv, const Io& io,
                                                            const std::string& what, std::chrono::milliseconds bound) {
  LogBudget budget(kHelperStderrBytes);
  std::string messages;
  LineCallback keep = collect_messages(messages);
  ExecRequest request{argv, {}, "/", bound};
  return helper_outcome(what, run(request, io, budget, keep, OnTimeout::kStopSandbox), messages);
}

std::expected<void, SandboxError> DockerSandbox::write_file(const std::string& container_path,
                                                            const std::string& content, int mode) {
  char mode_text[16];
  std::snprintf(mode_text, sizeof mode_text, "%o", mode & 07777);
  Io io;
  io.stdin_data = &content;
  return run_helper({"/bin/sh", "-c", "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\" && chmod \"$2\" \"$1\"", "sh",
                     container_path, mode_text},
                    io, "write_file " + container_path, bounds_.file);
}

std::expected<std::string, SandboxError> DockerSandbox::read_file(const std::string& container_path,
                                                                  std::uint64_t max_bytes) {
  std::string content;
  bool too_big = false;
  Io io;
  io.raw_stdout = [&](std::string_view s) {
    std::size_t room = max_bytes >= content.size() ? static_cast<std::size_t>(max_bytes - content.size()) : 0;
    if (s.size() > room) too_big = true;
    content.append(s.substr(0, room));
  };
  // head stops one byte past the limit: enough to tell "too big".
  auto done = run_helper({"/bin/sh", "-c", "test -f \"$1\" && head -c \"$2\" -- \"$1\"", "sh", container_path,
                          std::to_string(max_bytes + 1)},
                         io, "read_file " + container_path, bounds_.file);
  if (!done) return std::unexpected(done.error());
  if (too_big) {
    return std::unexpected(SandboxError{container_path + " is larger than " + std::to_string(max_bytes) + " bytes"});
  }
  return content;
}

std::expected<void, SandboxError> DockerSandbox::copy_out(const std::vector<std::string>& container_paths,
                                                          const std::string& host_dir) {
  if (container_paths.empty()) return {};
  std::vector<std::string> argv{"tar", "-C", "/", "-cf", "-", "--"};
  for (const auto& p : container_paths) {
    if (p.empty() || p[0] != '/') return std::unexpected(SandboxError{"copy_out: not an absolute path: " + p});
    argv.push_back(p == "/" ? "." : p.substr(1));
  }
  std::error_code ec;
  fs::create_directories(host_dir, ec);
  if (ec) return std::unexpected(SandboxError{"copy_out: cannot create " + host_dir + ": " + ec.message()});
  auto pipe = make_pipe();
  auto host_err = make_memfd("sandci-tar-stderr");
  if (!pipe || !host_err) return std::unexpected(SandboxError{"copy_out: cannot create a pipe"});
  // GNU tar refuses members that climb out with "..", strips leading "/", and
  // does not trust owners or modes from inside.
  SpawnRequest request{{"tar", "-C", host_dir, "-xf", "-", "--no-same-owner", "--no-same-permissions"},
                       pipe->read.get(), -1, host_err->get(), {}};
  auto host = spawn(request);
  pipe->read.reset();
  if (!host) return std::unexpected(SandboxError{"copy_out: " + host.error()});
  bool broken = false;
  Io io;
  io.raw_stdout = [&](std::string_view s) {
    while (!s.empty() && !broken) {
      ssize_t n = ::write(pipe->write.get(), s.data(), s.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) broken = true;
      else s.remove_prefix(static_cast<std::size_t>(n));
    }
  };
  auto guest = run_helper(argv, io, "copy_out to " + host_dir, bounds_.copy);
  pipe->write.reset();
  const int host_status = wait_child(*host);
  if (!guest) return guest;
  if (broken || !WIFEXITED(host_status) || WEXITSTATUS(host_status) != 0) {
    std::string message(4096, '\0');
    ssize_t n = ::pread(host_err->get(), message.data(), message.size(), 0);
    message.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return std::unexpected(SandboxError{"copy_out to " + host_dir + ": host tar failed: " + first_lines(message)});
  }
  return {};
}

std::expected<void, SandboxError> DockerSandbox::copy_in(const std::string& host_dir,
                                                         const std::string& container_dir) {
  if (container_dir.empty() || container_dir[0] != '/') {
    return std::unexpected(SandboxError{"copy_in: not an absolute path: " + container_dir});
  }
  if (!fs::is_directory(host_dir)) return std::unexpected(SandboxError{"copy_in: not a folder: " + host_dir});
  auto pipe = make_pipe();
  auto host_err = make_memfd("sandci-tar-stderr");
  if (!pipe || !host_err) return std::unexpected(SandboxError{"copy_in: cannot create a pipe"});
  SpawnRequest request{{"tar", "-C", host_dir, "-cf", "-", "."}, -1, pipe->write.get(), host_err->get(), {}};
  auto host = spawn(request);
  pipe->write.reset();
  if (!host) return std::unexpected(SandboxError{"copy_in: " + host.error()});
  Io io;
  io.stdin_fd = pipe->read.get();
  auto guest = run_helper({"/bin/sh", "-c", "mkdir -p \"$1\" && exec tar -xf - --no-same-owner -C \"$1\"", "sh",
                           container_dir},
                          io, "copy_in to " + container_dir, bounds_.copy);
  pipe->read.reset();
  const int host_status = wait_child(*host);
  if (!guest) return guest;
  if (!WIFEXITED(host_status) || WEXITSTATUS(host_status) != 0) {
    std::string message(4096, '\0');
    ssize_t n = ::pread(host_err->get(), message.data(), message.size(), 0);
    message.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return std::unexpected(SandboxError{"copy_in to " + container_dir + ": host tar failed: " + first_lines(message)});
  }
  return {};
}

}  // namespace sandci::sandbox
