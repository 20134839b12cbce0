// Network egress in the daemon (issue 14): `sandci serve` as a real process,
// signed webhooks, a test forge and a git daemon on 127.0.0.1, as in the other
// e2e tests; the job's traffic only in namespaces the test makes
// (tests/support/egress_world.h): the agent's config names the world's "agent"
// namespace as the one the egress proxy connects out from (egress_netns) and
// its hosts file (egress_hosts_file). Two repositories push the same workflow:
// the one whose entry grants egress fetches from the outside server by name;
// the one without a grant cannot connect at all. The job logs the daemon
// serves carry the egress lines.
#include <cctype>

#include "e2e/agent/server/e2e_server_support.h"
#include "support/egress_world.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

// fetch URL: through $http_proxy when it is set, as proxy-aware tools do;
// straight to the host otherwise. Prints the status line and the body; exits
// 1 unless the answer is 200. The job image has bash but no curl.
constexpr const char* kFetch = R"SH(#!/bin/bash
url=$1
hostport=${url#http://}; hostport=${hostport%%/*}
host=${hostport%:*}; port=80
[ "$hostport" != "$host" ] && port=${hostport##*:}
if [ -n "${http_proxy:-}" ]; then
  proxy=${http_proxy#http://}; proxy=${proxy%/}
  exec 3<>"/dev/tcp/${proxy%:*}/${proxy##*:}" || { echo "fetch: cannot reach the proxy"; exit 1; }
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$url" "$hostport" >&3
else
  exec 3<>"/dev/tcp/$host/$port" || { echo "fetch: cannot connect to $hostport"; exit 1; }
  printf 'GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "${url#http://$hostport/}" "$hostport" >&3
fi
IFS= read -r status <&3
echo "status: ${status%$'\r'}"
while IFS= read -r line <&3; do [ "${line%$'\r'}" = "" ] && break; done
cat <&3
case "$status" in *" 200 "*) exit 0 ;; *) exit 1 ;; esac
)SH";

constexpr const char* kWorkflow = R"(name: ci
on: push
jobs:
  fetch:
    runs-on: linux
    steps:
      - uses: actions/checkout@v4
      - name: a host the grant does not list
        run: |
          bash ci/fetch http://files.elsewhere.test/data.txt || echo "elsewhere: not fetched"
      - name: the granted host, by name
        run: bash ci/fetch http://files.outside.test/data.txt
)";

constexpr const char* kPayload = "payload-for-the-build-4711\n";

class EgressServeTest : public E2eServerTest {
 protected:
  // The job's raw log as the daemon serves it.
  std::string served_log(std::int64_t run, const std::string& job_key) {
    auto log = get("/runs/" + std::to_string(run) + "/jobs/" + url_encode(job_key) + "/log?raw=1");
    EXPECT_EQ(log.status, 200) << job_key;
    return log.body;
  }

  // The job namespaces of agent `pid` still in /run/netns.
  static std::vector<std::string> job_namespaces_of(pid_t pid) {
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("sandci-net-" + std::to_string(pid) + "-")) found.push_back(name);
    }
    return found;
  }

  sandci::testing::EgressWorld world_;
};

TEST_F(EgressServeTest, GrantedRepositoryFetchesByNameTheOtherCannotConnect) {
  world_.serve("/data.txt", kPayload);
  const std::vector<std::pair<std::string, std::string>> files = {{".github/workflows/ci.yml", kWorkflow},
                                                                   {"ci/fetch", kFetch}};
  add_repo("alice/granted", ForgeKind::github, files);
  add_repo("bob/offline", ForgeKind::github, files);
  repo_extra_["alice/granted"] = "    egress: {allow: [\"*.outside.test\"], ports: [80]}\n";
  TestForge forge;
  write_e2e_config(forge, 2,
                   "egress_hosts_file: " + world_.hosts_file().string() + "\negress_netns: " + world_.agent_netns() +
                       "\n");
  start_e2e_agent();
  const pid_t agent_pid = agent_.pid();

  const Push granted{"alice/granted", "main", first_sha_["alice/granted"], std::string(40, '0')};
  const Push offline{"bob/offline", "main", first_sha_["bob/offline"], std::string(40, '0')};
  std::map<std::string, std::int64_t> runs;
  for (const Push& push : {granted, offline}) {
    auto accepted = send_push(push);
    ASSERT_EQ(accepted.status, 202) << push.repo << ": " << accepted.body;
    runs[push.repo] = run_id_of(accepted);
    ASSERT_GT(runs[push.repo], 0);
  }
  for (const auto& [repo, run] : runs)
    ASSERT_TRUE(eventually([&] { return run_finished(run); }, 300s)) << repo << "\n" << slurp(log_file());

  const std::vector<std::string> contexts = {"sandci/ci", "sandci/ci/fetch"};
  ASSERT_TRUE(eventually([&] { return all_final(forge, granted, contexts) && all_final(forge, offline, contexts); },
                         120s));

  // The granted repository: the file came through the proxy, by name.
  EXPECT_EQ(run_state(runs["alice/granted"]), "success");
  expect_push_statuses(forge, granted, contexts, "success", agent_url() + "/runs/" + std::to_string(runs["alice/granted"]));
  const std::string granted_log = served_log(runs["alice/granted"], ".github/workflows/ci.yml/fetch");
  EXPECT_NE(granted_log.find("network through the egress proxy only"), std::string::npos) << granted_log;
  EXPECT_NE(granted_log.find("status: HTTP/1.1 200 OK"), std::string::npos) << granted_log;
  EXPECT_NE(granted_log.find(kPayload), std::string::npos) << granted_log;
  // The refusal, as one line in the job's log, and the job's summary.
  EXPECT_NE(granted_log.find("status: HTTP/1.1 403"), std::string::npos) << granted_log;
  EXPECT_NE(granted_log.find("egress refused: files.elsewhere.test:80: "), std::string::npos) << granted_log;
  // (The allowed connection is counted when the proxy has closed it, which may
  // come just after the job's end: only the refused one is certain here.)
  EXPECT_NE(granted_log.find(" (1 refused), "), std::string::npos) << granted_log;

  // The repository without a grant: same job, no network at all.
  EXPECT_EQ(run_state(runs["bob/offline"]), "failure");
  EXPECT_EQ(final_states(forge, offline)["sandci/ci/fetch"], "failure");
  const std::string offline_log = served_log(runs["bob/offline"], ".github/workflows/ci.yml/fetch");
  EXPECT_NE(offline_log.find("network none"), std::string::npos) << offline_log;
  EXPECT_NE(offline_log.find("fetch: cannot connect to files.outside.test"), std::string::npos) << offline_log;
  EXPECT_EQ(offline_log.find("egress"), std::string::npos) << offline_log;
  EXPECT_EQ(offline_log.find(kPayload), std::string::npos) << offline_log;

  // Only the granted job's one request reached the outside; nothing reached
  // the agent namespace's own port.
  EXPECT_EQ(world_.http_requests(), std::vector<std::string>{"GET /data.txt"});
  EXPECT_EQ(world_.outside_connections(), 1);
  EXPECT_EQ(world_.agent_port_connections(), 0);

  EXPECT_EQ(agent_.terminate(), 0);
  EXPECT_EQ(job_namespaces_of(agent_pid), std::vector<std::string>{}) << "job namespaces left behind";
  expect_nothing_left_behind();
}

}  // namespace
}  // namespace sandci::agent::testing
