// Jobs granted network (issue 14), end to end: the real `sandci run` inside an
// "agent" namespace the test makes, an "outside" HTTP/TLS server in another
// (tests/support/egress_world.h), real gVisor sandboxes in namespaces the
// runner makes. The job image has bash but no curl, so the jobs speak HTTP to
// the proxy with bash's /dev/tcp, as a tool honouring http_proxy would.
#include <gtest/gtest.h>

#include "e2e/agent/cli/e2e_backends.h"
#include "e2e/agent/cli/e2e_support.h"
#include "support/egress_world.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

// Helper scripts committed in the test repository.
// fetch URL: GET through $http_proxy, prints the status line and the body.
constexpr const char* kFetch = R"SH(#!/bin/bash
# Plain HTTP through the proxy, absolute-form, as any proxy-aware client does.
url=$1
hostport=${url#http://}; hostport=${hostport%%/*}
proxy=${http_proxy#http://}; proxy=${proxy%/}
exec 3<>"/dev/tcp/${proxy%:*}/${proxy##*:}" || exit 2
printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$url" "$hostport" >&3
IFS= read -r status <&3
echo "status: ${status%$'\r'}"
while IFS= read -r line <&3; do [ "${line%$'\r'}" = "" ] && break; done
cat <&3
)SH";
// tunnel HOST PORT: CONNECT through $https_proxy, prints the status line.
constexpr const char* kTunnel = R"SH(#!/bin/bash
proxy=${https_proxy#http://}; proxy=${proxy%/}
exec 3<>"/dev/tcp/${proxy%:*}/${proxy##*:}" || exit 2
printf 'CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n' "$1" "$2" "$1" "$2" >&3
IFS= read -r status <&3
echo "tunnel: ${status%$'\r'}"
)SH";

class EgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(state_.has_images()) << "test images missing: run scripts/test-setup.sh (make test does)";
  }
  void TearDown() override {
    EXPECT_EQ(state_.runsc_list(), "");
    EXPECT_EQ(world_.agent_port_connections(), 0) << "a job reached the agent's own port";
    // The runner removed the job's namespaces.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/run/netns", ec))
      EXPECT_FALSE(entry.path().filename().string().starts_with("sandci-net-" + std::to_string(child_pid_) + "-"))
          << entry.path();
  }

  void workflow(const std::string& yaml, std::map<std::string, std::string> files = {}) {
    files[".sandci/workflows/ci.yml"] = yaml;
    files["ci/fetch"] = kFetch;
    files["ci/tunnel"] = kTunnel;
    make_repo(repo_.path(), files);
  }

  // `sandci run` inside the agent namespace; nsenter (not `ip netns exec`,
  // which remounts /sys and hides the cgroup runsc needs).
  Result run(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {"nsenter", "--net=" + world_.agent_netns(), SANDCI_BINARY, "run",
                                     repo_.path().string(), "--plain", "--state-dir", state_.path().string(),
                                     "--logs", logs_.path().string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = run_command(argv, 300s, {}, [this](pid_t pid, const std::string&) { child_pid_ = pid; });
    EXPECT_FALSE(r.timed_out) << r.output;
    return r;
  }

  std::string logs() const { return read_tree(logs_.path()); }

  sandci::testing::EgressWorld world_;
  TempDir repo_, logs_;
  StateDir state_;
  pid_t child_pid_ = 0;
};

TEST_F(EgressTest, GrantedJobReachesTheGrantedHostByNameThroughTheProxyAndNothingElse) {
  world_.serve("/data.txt", "payload-1234\n");
  workflow(R"Y(
on: push
jobs:
  net:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: proxy environment
        run: echo "env $HTTP_PROXY $HTTPS_PROXY $http_proxy $https_proxy $NO_PROXY"
      - name: granted host by name
        run: bash ci/fetch http://files.outside.test/hello
      - name: TLS tunnel to the granted host
        run: bash ci/tunnel files.outside.test 443
      - name: refused destinations
        run: |
          bash ci/fetch http://files.elsewhere.test/hello
          bash ci/fetch http://loopback.outside.test/hello
          bash ci/fetch http://private.outside.test/hello
          bash ci/fetch http://metadata.outside.test/latest/meta-data/
          bash ci/fetch http://agent.outside.test:8080/
          bash ci/fetch http://198.51.100.2/hello
          bash ci/fetch http://files.outside.test:8081/hello
      - name: no way around the proxy
        run: |
          if timeout 10 bash -c 'exec 3<>/dev/tcp/198.51.100.2/80'; then echo "raw tcp: connected"; else echo "raw tcp: failed"; fi
          if timeout 10 bash -c 'exec 3<>/dev/tcp/198.51.100.1/8080'; then echo "agent port: connected"; else echo "agent port: failed"; fi
          if getent hosts files.outside.test; then echo "dns: resolved"; else echo "dns: nothing, getent exit $?"; fi
      - name: DNS is refused at once, not left to time out
        run: |
          echo "resolv: $(grep -v '^#' /etc/resolv.conf | tr '\n' ' ')"
          exec 4<>/dev/udp/127.0.0.1/53
          printf 'query' >&4
          if read -t 30 -r reply <&4; then echo "nameserver: answered"; else echo "nameserver: read exit $?"; fi
)Y");
  auto r = run({"--allow-host", "*.outside.test", "--allow-port", "80", "--allow-port", "443", "--allow-port",
                "8080", "--egress-hosts-file", world_.hosts_file().string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string log = logs();
  EXPECT_NE(log.find("env http://169.254.77.1:3128 http://169.254.77.1:3128 http://169.254.77.1:3128 "
                     "http://169.254.77.1:3128 localhost,127.0.0.1"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("status: HTTP/1.1 200 OK"), std::string::npos) << log;
  EXPECT_NE(log.find(sandci::testing::EgressWorld::kHelloBody), std::string::npos) << log;
  EXPECT_NE(log.find("tunnel: HTTP/1.1 200"), std::string::npos) << log;
  // Each refusal: a 403 (or 502 after resolving) to the job, one line in its log.
  for (const char* refused : {"files.elsewhere.test:80", "loopback.outside.test:80", "private.outside.test:80",
                              "metadata.outside.test:80", "agent.outside.test:8080", "198.51.100.2:80",
                              "files.outside.test:8081"}) {
    EXPECT_NE(log.find(std::string("egress refused: ") + refused + ": "), std::string::npos) << refused << "\n"
                                                                                              << log;
  }
  EXPECT_NE(log.find("raw tcp: failed"), std::string::npos) << log;
  EXPECT_NE(log.find("agent port: failed"), std::string::npos) << log;
  // getent's "not found": the job's only nameserver (its own loopback) refuses
  // the query with port unreachable, so the resolver gives up at once; a read
  // timeout would end `read -t` with 142, not 1.
  EXPECT_NE(log.find("dns: nothing, getent exit 2"), std::string::npos) << log;
  EXPECT_NE(log.find("resolv: nameserver 127.0.0.1 "), std::string::npos) << log;
  EXPECT_NE(log.find("read error: 0: Connection refused"), std::string::npos) << log;
  EXPECT_NE(log.find("nameserver: read exit 1"), std::string::npos) << log;
  EXPECT_NE(log.find("network through the egress proxy only"), std::string::npos) << log;
  EXPECT_NE(log.find("egress: "), std::string::npos) << log;
  EXPECT_NE(log.find(" refused), "), std::string::npos) << log;
  // Only the granted requests reached the outside server.
  EXPECT_EQ(world_.http_requests(), std::vector<std::string>{"GET /hello"});
}

TEST_F(EgressTest, JobWithoutAGrantHasNoNetworkAtAll) {
  workflow(R"Y(
on: push
jobs:
  offline:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "proxy=[${HTTP_PROXY:-}${http_proxy:-}]"
          echo "links: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
          if timeout 10 bash -c 'exec 3<>/dev/tcp/169.254.77.1/3128'; then echo "proxy: connected"; else echo "proxy: failed"; fi
          if timeout 10 bash -c 'exec 3<>/dev/tcp/198.51.100.2/80'; then echo "outside: connected"; else echo "outside: failed"; fi
)Y");
  auto r = run({});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string log = logs();
  EXPECT_NE(log.find("proxy=[]"), std::string::npos) << log;
  EXPECT_NE(log.find("links: lo "), std::string::npos) << log;
  EXPECT_NE(log.find("proxy: failed"), std::string::npos) << log;
  EXPECT_NE(log.find("outside: failed"), std::string::npos) << log;
  EXPECT_NE(log.find("network none"), std::string::npos) << log;
  EXPECT_EQ(world_.outside_connections(), 0);
}

// A setup action in the style of setup-node and friends: downloads a tool from
// a granted host into the tool cache, puts it on the PATH; a later step uses it.
TEST_F(EgressTest, SetupActionDownloadsItsToolThroughTheProxy) {
  world_.serve("/tools/greet-1.2.0.sh", "#!/bin/sh\necho \"greet 1.2.0 says hi to $1\"\n");
  workflow(R"Y(
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/setup-greet
        id: greet
        with:
          version: 1.2.0
      - run: greet "${{ steps.greet.outputs.version }}-user"
)Y",
           {{".github/actions/setup-greet/action.yml", R"Y(
name: Setup greet
description: Downloads the greet tool into the tool cache and adds it to the PATH
inputs:
  version:
    description: The version to install
    required: true
  mirror:
    description: Where releases are downloaded from
    default: http://files.outside.test/tools
outputs:
  version:
    description: The version installed
    value: ${{ inputs.version }}
runs:
  using: composite
  steps:
    - shell: bash
      run: |
        dir="$RUNNER_TOOL_CACHE/greet/${{ inputs.version }}/bin"
        mkdir -p "$dir"
        bash "$GITHUB_WORKSPACE/ci/fetch" "${{ inputs.mirror }}/greet-${{ inputs.version }}.sh" > "$dir/download"
        head -n 1 "$dir/download" | grep -q ' 200 ' || { cat "$dir/download"; exit 1; }
        tail -n +2 "$dir/download" > "$dir/greet"
        chmod +x "$dir/greet"
        echo "$dir" >> "$GITHUB_PATH"
)Y"}});
  auto r = run({"--allow-host", "files.outside.test", "--egress-hosts-file", world_.hosts_file().string()});
  EXPECT_EQ(r.exit_code, 0) << r.output << logs();
  EXPECT_NE(logs().find("greet 1.2.0 says hi to 1.2.0-user"), std::string::npos) << logs();
  EXPECT_EQ(world_.http_requests(), std::vector<std::string>{"GET /tools/greet-1.2.0.sh"});
}

// On the Docker backend a granted job gets the proxy through the engine's egress
// runtime (runsc with --network=sandbox), named by --docker-egress-runtime; the
// private dockerd of the test binary registers it (tests/support/private_dockerd.h).
TEST_F(EgressTest, DockerBackendGrantsThroughTheEngineEgressRuntime) {
  const auto& dockerd = e2e_dockerd();
  ASSERT_NE(dockerd.daemon, nullptr) << dockerd.error;
  workflow(R"Y(
on: push
jobs:
  net:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: bash ci/fetch http://files.outside.test/hello
      - run: bash ci/fetch http://files.elsewhere.test/hello
)Y");
  auto docker = backend_args(Backend::docker);
  auto without = docker;
  without.insert(without.end(), {"--allow-host", "files.outside.test"});
  auto refused = run(without);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("--allow-host on --backend docker needs --docker-egress-runtime"), std::string::npos)
      << refused.output;

  auto granted = docker;
  granted.insert(granted.end(), {"--allow-host", "files.outside.test", "--egress-hosts-file",
                                 world_.hosts_file().string(), "--docker-egress-runtime",
                                 sandci::testing::PrivateDockerd::kEgressRuntime});
  auto r = run(granted);
  EXPECT_EQ(r.exit_code, 0) << r.output << logs();
  const std::string log = logs();
  EXPECT_NE(log.find("status: HTTP/1.1 200 OK"), std::string::npos) << log;
  EXPECT_NE(log.find(sandci::testing::EgressWorld::kHelloBody), std::string::npos) << log;
  EXPECT_NE(log.find("egress refused: files.elsewhere.test:80: "), std::string::npos) << log;
  EXPECT_EQ(world_.http_requests(), std::vector<std::string>{"GET /hello"});
  EXPECT_EQ(docker_containers(), "[]\n") << "containers left behind";
}

TEST_F(EgressTest, BadGrantOnTheCommandLineIsAUsageError) {
  workflow("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: true\n");
  auto r = run({"--allow-host", "198.51.100.7"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--allow-host: egress grant:"), std::string::npos) << r.output;
  auto port_alone = run({"--allow-port", "8080"});
  EXPECT_EQ(port_alone.exit_code, 2) << port_alone.output;
  EXPECT_NE(port_alone.output.find("need --allow-host"), std::string::npos) << port_alone.output;
  auto runtime_alone = run({"--docker-egress-runtime", "runsc-egress"});
  EXPECT_EQ(runtime_alone.exit_code, 2) << runtime_alone.output;
  EXPECT_NE(runtime_alone.output.find("--docker-egress-runtime applies to --backend docker only"), std::string::npos)
      << runtime_alone.output;
}

}  // namespace
}  // namespace sandci::e2e
