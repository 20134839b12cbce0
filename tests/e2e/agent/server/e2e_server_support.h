#pragma once
// The whole product from nothing, for the end-to-end tests of `sandci serve`: on
// top of the integration fixture (tests/integration/agent/server/agent_fixture.h:
// TestForge, AgentProcess, signed deliveries), a git daemon that takes `git push`
// and can be stopped and started again on the same port, repositories whose
// commits are pushed to it over git://, the webhook each forge sends for a push
// (GitHub, Gitea, Forgejo, GitLab), an agent config written for several forges,
// checks of the statuses a push got, and a check that nothing (sandbox, mount,
// cgroup, temp folder, workspace) is left behind once the agent has stopped.
// Everything listens on 127.0.0.1 and goes away with the fixture, even on failure.
#include <sys/mount.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {

// `git daemon` with receive-pack on 127.0.0.1, serving every repository under
// `base`; stop() and start() keep its port, so clone URLs stay valid.
class PushableGitServer {
 public:
  explicit PushableGitServer(fs::path base) : base_(std::move(base)), port_(git::testing::free_port()) { start(); }
  void start() {
    process_ = git::testing::Process({"git", "daemon", "--base-path=" + base_.string(), "--export-all",
                                      "--enable=receive-pack", "--reuseaddr", "--listen=127.0.0.1",
                                      "--port=" + std::to_string(port_), base_.string()});
    EXPECT_TRUE(git::testing::wait_for_port(port_)) << "git daemon did not start";
  }
  void stop() { process_.stop(); }
  std::string url(const std::string& name) const { return "git://127.0.0.1:" + std::to_string(port_) + "/" + name; }

 private:
  fs::path base_;
  int port_;
  git::testing::Process process_;
};

// One repository of the test: where it lives on the git server, which forge the
// agent thinks it is on, and the work clone that commits and pushes over git://.
struct E2eRepo {
  std::string name;              // "alice/hello": the path on the git server too
  forge::ForgeKind forge = forge::ForgeKind::github;
  int project_id = 0;            // GitLab's numeric id, 0 elsewhere
  std::unique_ptr<git::testing::RepoOnServer> git;
};

// What one push was: its commit and branch, the commit before it on the branch.
struct Push {
  std::string repo, branch, sha, before;
};

class E2eServerTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    fs::create_directories(agent_tmp());
    git_server_ = std::make_unique<PushableGitServer>(dir_.path() / "git");
  }
  void TearDown() override {
    // A test that failed half-way leaves the agent running: stop it as systemd
    // would, so that it removes its own sandboxes; SIGKILL only if it hangs.
    if (agent_.pid() > 0) agent_.terminate(60s);
    AgentTest::TearDown();  // reports any sandbox left (a failure already)
    remove_leftovers();
    git_server_.reset();
    if (!mounted_.empty()) {
      ::umount2(mounted_.c_str(), MNT_DETACH);
      mounted_.clear();
    }
  }

  static std::string forge_name(forge::ForgeKind kind) { return std::string(forge::to_string(kind)); }
  // The temp folder the agent is given as $TMPDIR: it must be empty when it stops.
  fs::path agent_tmp() const { return dir_.path() / "agent-tmp"; }

  // A repository on the git server with `files` committed on main and pushed over git://.
  E2eRepo& add_repo(const std::string& name, forge::ForgeKind kind,
                    const std::vector<std::pair<std::string, std::string>>& files) {
    E2eRepo repo{name, kind, kind == forge::ForgeKind::gitlab ? 100 + static_cast<int>(repos_e2e_.size()) : 0,
                 std::make_unique<git::testing::RepoOnServer>(dir_.path() / "git", name)};
    git::testing::git(repo.git->work(), {"remote", "set-url", "origin", git_server_->url(name)});
    repos_e2e_.push_back(std::move(repo));
    first_sha_[name] = push_commit(name, files, "first commit", "main").sha;
    return repos_e2e_.back();
  }
  E2eRepo& repo_named(const std::string& name) {
    for (auto& r : repos_e2e_)
      if (r.name == name) return r;
    throw std::logic_error("no test repository " + name);
  }
  const E2eRepo& repo_named(const std::string& name) const {
    return const_cast<E2eServerTest*>(this)->repo_named(name);
  }

  // Commits `files` in `name`'s work clone on `branch` and `git push`es it to the
  // git server (a new branch starts from the work clone's current commit).
  Push push_commit(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files,
                   const std::string& message, const std::string& branch = "main") {
    auto& repo = *repo_named(name).git;
    const std::string before = branch_heads_.count(name + " " + branch) ? branch_heads_[name + " " + branch]
                                                                        : std::string(40, '0');
    const bool exists =
        git::testing::run({"git", "-C", repo.work().string(), "rev-parse", "-q", "--verify", "refs/heads/" + branch})
            .status == 0;
    git::testing::git(repo.work(), exists ? std::vector<std::string>{"checkout", "-q", branch}
                                          : std::vector<std::string>{"checkout", "-q", "-b", branch});
    const std::string sha = repo.commit(files, message);
    git::testing::git(repo.work(), {"push", "-q", "origin", "HEAD:refs/heads/" + branch});
    branch_heads_[name + " " + branch] = sha;
    return Push{name, branch, sha, before};
  }

  // The body of the push webhook `repo`'s forge sends for `push`, and its event name.
  std::pair<std::string, std::string> push_webhook(const Push& push) {
    const E2eRepo& repo = repo_named(push.repo);
    const std::string owner = push.repo.substr(0, push.repo.find('/'));
    const std::string short_name = push.repo.substr(push.repo.find('/') + 1);
    const bool created = push.before == std::string(40, '0');
    if (repo.forge == forge::ForgeKind::gitlab) {
      return {"Push Hook",
              json{{"object_kind", "push"}, {"event_name", "push"}, {"before", push.before}, {"after", push.sha},
                   {"ref", "refs/heads/" + push.branch}, {"checkout_sha", push.sha}, {"user_username", owner},
                   {"project_id", repo.project_id},
                   {"project",
                    {{"id", repo.project_id}, {"path_with_namespace", push.repo},
                     {"git_http_url", git_server_->url(push.repo)}, {"default_branch", "main"}}},
                   {"commits", json::array({{{"id", push.sha}, {"message", "a commit"}}})},
                   {"total_commits_count", 1}}
                  .dump()};
    }
    // GitHub, Gitea and Forgejo send the same shape (Gitea adds its own fields).
    json body{{"ref", "refs/heads/" + push.branch},
              {"before", push.before},
              {"after", push.sha},
              {"created", created},
              {"deleted", false},
              {"repository",
               {{"full_name", push.repo}, {"name", short_name}, {"clone_url", git_server_->url(push.repo)},
                {"owner", {{"login", owner}}}}},
              {"head_commit", {{"id", push.sha}, {"message", "a commit"}}},
              {"commits", json::array({{{"id", push.sha}, {"message", "a commit"}}})},
              {"pusher", {{"name", owner}}},
              {"sender", {{"login", owner}}}};
    if (repo.forge != forge::ForgeKind::github) body["compare_url"] = "";
    return {"push", body.dump()};
  }

  // Sends `push`'s webhook, signed as its forge signs it; a fresh delivery id
  // unless one is given (a redelivery reuses it).
  http::ClientResponse send_push(const Push& push, std::string delivery = "") {
    if (delivery.empty()) delivery = "delivery-" + std::to_string(++deliveries_) + "-" + push.sha.substr(0, 8);
    const auto [event, body] = push_webhook(push);
    return deliver(repo_named(push.repo).forge, event, delivery, body);
  }

  // The agent's config for every repository added, statuses to `forge`.
  void write_e2e_config(const TestForge& forge, int capacity = 2, const std::string& extra = "") {
    std::string yaml = "listen: 127.0.0.1:" + std::to_string(port_) + "\npublic_url: " + agent_url() +
                       "\nstate_dir: " + state().string() + "\ncapacity: " + std::to_string(capacity) +
                       "\nlog_level: debug\nadmin_token: {file: " + (dir_.path() / "secrets/admin").string() + "}\n" +
                       extra + "repositories:\n";
    for (const auto& r : repos_e2e_) {
      const std::string api = r.forge == forge::ForgeKind::gitlab   ? "/api/v4"
                              : r.forge == forge::ForgeKind::github ? "/api/v3"
                                                                    : "/api/v1";
      yaml += "  - name: " + r.name + "\n    forge: " + forge_name(r.forge) + "\n    api_url: " + forge.base_url() +
              api + "\n    webhook_secret: {file: " + (dir_.path() / "secrets/webhook").string() + "}" +
              "\n    api_token: {file: " + (dir_.path() / "secrets/token").string() + "}" +
              "\n    clone_url: " + git_server_->url(r.name) + "\n    pages: public\n" +
              (r.project_id ? "    project_id: " + std::to_string(r.project_id) + "\n" : "") +
              (repo_extra_.count(r.name) ? repo_extra_.at(r.name) : "");
    }
    std::ofstream(dir_.path() / "agent.yml") << yaml;
  }

  // Starts `sandci serve` with its own $TMPDIR; remembers its pid (its sandboxes' names carry it).
  void start_e2e_agent() {
    start_agent({"TMPDIR=" + agent_tmp().string()});
    agent_pids_.push_back(agent_.pid());
  }

  // SIGKILL as a systemd service dies: the agent, then every process it started
  // that is still in its cgroup (the runsc commands under way); sandboxes, which
  // runsc moved into cgroups of their own, stay for the next start to reap.
  // (Killed alone, an orphaned `runsc run` can finish creating a sandbox after
  // the restarted agent has reaped: systemd never lets that happen.)
  void kill_agent_as_systemd_would() {
    const pid_t agent = agent_.pid();
    ASSERT_GT(agent, 0);
    ::kill(agent, SIGSTOP);  // no new child while its tree is read
    const std::vector<pid_t> left = descendants_in_our_cgroup(agent);
    agent_.kill_now();
    for (pid_t pid : left) ::kill(pid, SIGKILL);
    // They were the agent's children, now init's: wait until they are gone.
    EXPECT_TRUE(eventually([&] {
      for (pid_t pid : left)
        if (::kill(pid, 0) == 0 && slurp("/proc/" + std::to_string(pid) + "/stat").find(") Z") == std::string::npos)
          return false;
      return true;
    }, 30s));
  }

  // Every descendant of `root` whose cgroups are the test's own (not a sandbox's).
  static std::vector<pid_t> descendants_in_our_cgroup(pid_t root) {
    std::map<pid_t, pid_t> parent;
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      const std::string stat = slurp(it->path() / "stat");
      const auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 2));
      char state = 0;
      pid_t ppid = 0;
      rest >> state >> ppid;
      parent[std::stoi(name)] = ppid;
    }
    const std::string ours = slurp("/proc/self/cgroup");
    std::vector<pid_t> out;
    for (const auto& [pid, ppid] : parent) {
      pid_t up = ppid;
      while (up > 1 && up != root && parent.count(up)) up = parent[up];
      if (up == root && slurp("/proc/" + std::to_string(pid) + "/cgroup") == ours) out.push_back(pid);
    }
    return out;
  }

  // The statuses the forge shows for `push`'s commit in its repository, in the
  // order it took them (two repositories may well hold the same commit).
  std::vector<SeenStatus> statuses_of(const TestForge& forge, const Push& push) const {
    const E2eRepo& repo = repo_named(push.repo);
    const std::string path = repo.forge == forge::ForgeKind::gitlab
                                 ? "/projects/" + std::to_string(repo.project_id) + "/statuses/" + push.sha
                                 : "/repos/" + push.repo + "/statuses/" + push.sha;
    std::vector<TestForge::Request> mine;
    for (const auto& r : forge.delivered())
      if (r.target.ends_with(path)) mine.push_back(r);
    return seen_statuses(mine);
  }
  // The newest state of each context of `push`'s commit.
  std::map<std::string, std::string> final_states(const TestForge& forge, const Push& push) const {
    std::map<std::string, std::string> last;
    for (const auto& s : statuses_of(forge, push)) last[s.context] = s.state;
    return last;
  }
  // Whether every one of `contexts` shows a final state (not pending/running) on `push`'s commit.
  bool all_final(const TestForge& forge, const Push& push, const std::vector<std::string>& contexts) const {
    const auto last = final_states(forge, push);
    for (const auto& c : contexts) {
      auto it = last.find(c);
      if (it == last.end() || it->second == "pending" || it->second == "running") return false;
    }
    return true;
  }

  // `contexts` went pending (GitLab: pending and/or running) then `final_state` on
  // `sha`, nothing after it, each linking to `run_url`; and no other context
  // was posted for the commit.
  void expect_push_statuses(const TestForge& forge, const Push& push, const std::vector<std::string>& contexts,
                            const std::string& final_state, const std::string& run_url) {
    const bool gitlab = repo_named(push.repo).forge == forge::ForgeKind::gitlab;
    const auto seen = statuses_of(forge, push);
    std::set<std::string> posted;
    for (const auto& s : seen) {
      posted.insert(s.context);
      EXPECT_EQ(s.target_url, run_url) << s.context;
    }
    EXPECT_EQ(posted, std::set<std::string>(contexts.begin(), contexts.end())) << push.repo << " " << push.sha;
    for (const auto& context : contexts) {
      const auto states = states_of(seen, context);
      SCOPED_TRACE(push.repo + " " + context + ": " + ::testing::PrintToString(states));
      ASSERT_GE(states.size(), 2u);
      EXPECT_EQ(states.back(), final_state);
      // The outbox keeps the newest state per context, so GitLab's `running` may
      // replace a `pending` not yet sent; the order never goes back.
      const std::vector<std::string> order =
          gitlab ? std::vector<std::string>{"pending", "running", final_state}
                 : std::vector<std::string>{"pending", final_state};
      if (!gitlab) {
        EXPECT_EQ(states, order);
      }
      auto at = order.begin();
      for (const auto& state : states) {
        at = std::find(at, order.end(), state);
        ASSERT_NE(at, order.end()) << "out of order";
        ++at;
      }
    }
  }

  // The run's JSON from the agent's API (a discarded value if it does not answer).
  json run_json(std::int64_t id) { return json::parse(get("/api/runs/" + std::to_string(id)).body, nullptr, false); }

  // Once the agent has stopped: no sandbox in runsc's root, no bundle, no mount
  // under the test's folder (but the state tmpfs a test mounted itself), no
  // cgroup named after a sandbox of any agent this test started, nothing in the
  // agent's $TMPDIR, no run workspace.
  void expect_nothing_left_behind() {
    const fs::path runsc_root = state() / "sandbox" / "runsc";
    if (fs::exists(runsc_root)) {
      auto listed = git::testing::run({"runsc", "--root=" + runsc_root.string(), "list", "-quiet"});
      EXPECT_EQ(listed.output, "") << "sandboxes left behind";
    }
    std::error_code ec;
    for (fs::directory_iterator it(state() / "sandbox" / "bundles", ec), end; !ec && it != end; it.increment(ec))
      ADD_FAILURE() << "sandbox bundle left behind: " << it->path();
    std::istringstream mounts(slurp("/proc/self/mountinfo"));
    for (std::string line; std::getline(mounts, line);) {
      std::istringstream fields(line);
      std::string id, parent, dev, root, mount_point;
      fields >> id >> parent >> dev >> root >> mount_point;
      if (mount_point.rfind(dir_.path().string(), 0) == 0 && mount_point != mounted_)
        ADD_FAILURE() << "mount left behind: " << line;
    }
    for (const auto& cgroup : agent_cgroups()) ADD_FAILURE() << "cgroup left behind: " << cgroup;
    for (fs::directory_iterator it(agent_tmp(), ec), end; !ec && it != end; it.increment(ec))
      ADD_FAILURE() << "temp file left behind: " << it->path();
    for (fs::directory_iterator it(state() / "runs", ec), end; !ec && it != end; it.increment(ec))
      EXPECT_FALSE(fs::exists(it->path() / "workspace")) << "workspace left behind: " << it->path();
  }

  // The cgroup folders named after a sandbox of an agent this test started.
  std::vector<fs::path> agent_cgroups() const {
    std::vector<fs::path> found;
    std::error_code ec;
    for (pid_t pid : agent_pids_) {
      const std::string mark = "-" + std::to_string(pid) + "-";
      for (fs::recursive_directory_iterator it("/sys/fs/cgroup", fs::directory_options::skip_permission_denied, ec), end;
           !ec && it != end; it.increment(ec)) {
        if (!it->is_directory(ec)) continue;
        const std::string name = it->path().filename().string();
        if (name.rfind("sandci", 0) == 0 && name.find(mark) != std::string::npos) found.push_back(it->path());
        if (it.depth() >= 2) it.disable_recursion_pending();
      }
    }
    return found;
  }

  // Whatever a failed test left: sandboxes (runsc delete --force) and their cgroups.
  void remove_leftovers() {
    const fs::path runsc_root = state() / "sandbox" / "runsc";
    if (fs::exists(runsc_root)) {
      std::istringstream ids(git::testing::run({"runsc", "--root=" + runsc_root.string(), "list", "-quiet"}).output);
      for (std::string id; std::getline(ids, id);)
        if (!id.empty()) git::testing::run({"runsc", "--root=" + runsc_root.string(), "delete", "--force", id});
    }
    for (const auto& cgroup : agent_cgroups()) ::rmdir(cgroup.c_str());
  }

  // Mounts a tmpfs of `mib` MiB as the agent's state folder (before it starts),
  // with the shared images linked in as AgentTest does; unmounted in TearDown.
  void mount_state_tmpfs(int mib) {
    fs::remove_all(state());
    fs::create_directories(state());
    ASSERT_EQ(::mount("tmpfs", state().c_str(), "tmpfs", 0, ("size=" + std::to_string(mib) + "m").c_str()), 0)
        << "cannot mount a tmpfs: " << std::strerror(errno);
    mounted_ = state().string();
    fs::create_directory_symlink(shared_images_dir(), state() / "images");
  }

  std::unique_ptr<PushableGitServer> git_server_;
  std::vector<E2eRepo> repos_e2e_;
  std::map<std::string, std::string> first_sha_;     // repository -> its first commit
  std::map<std::string, std::string> branch_heads_;  // "repo branch" -> last pushed SHA
  std::map<std::string, std::string> repo_extra_;    // repository -> more YAML under its entry
  std::vector<pid_t> agent_pids_;
  std::string mounted_;
  int deliveries_ = 0;
};

// The diamond of the e2e tests, with a matrix in its middle: setup -> test (a, b)
// and lint -> report. Trivial steps: the point is the flow, not the work.
// A path segment as the pages' URLs carry it (a job key holds slashes).
inline std::string url_encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

inline const char* kMatrixDiamond = R"(name: ci
on: push
jobs:
  setup:
    runs-on: linux
    steps:
      - run: echo "setup for $GITHUB_SHA"
  test:
    needs: setup
    runs-on: linux
    strategy:
      matrix:
        part: [a, b]
    steps:
      - run: echo "test part ${{ matrix.part }}"
  lint:
    needs: setup
    runs-on: linux
    steps:
      - run: echo lint-clean
  report:
    needs: [test, lint]
    runs-on: linux
    steps:
      - run: echo "report for ${{ github.ref }}"
)";

inline std::vector<std::string> matrix_diamond_contexts() {
  return {"sandci/ci", "sandci/ci/setup", "sandci/ci/test (a)", "sandci/ci/test (b)", "sandci/ci/lint",
          "sandci/ci/report"};
}

}  // namespace sandci::agent::testing
