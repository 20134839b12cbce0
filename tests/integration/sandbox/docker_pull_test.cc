// Pulling job images into the engine: only when the configuration allows it
// (sandbox.docker_pull), from a tiny Registry v2 server this test runs on
// 127.0.0.1 (dockerd treats 127.0.0.0/8 as an insecure registry, so plain HTTP
// works). The server holds one small image made here: a manifest, its config
// and one gzip layer. No address outside 127.0.0.0/8 is ever contacted.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "integration/sandbox/sandbox_fixture.h"
#include "sandbox/docker_api.h"
#include "sandbox/process.h"

namespace sandci::sandbox::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string sha256_of(const std::string& path) {
  auto out = run_capture({"sha256sum", path});
  if (!out || !out->ok()) throw std::runtime_error("sha256sum failed");
  return "sha256:" + out->out.substr(0, 64);
}

// A one-layer image: /hello.txt, an Env and a WorkingDir in its config.
struct TinyImage {
  std::string manifest, config, layer;
  std::string manifest_digest, config_digest, layer_digest, diff_id;

  static TinyImage make(const TempDir& dir) {
    TinyImage image;
    const std::string root = dir.path().string() + "/root";
    std::filesystem::create_directories(root);
    std::ofstream(root + "/hello.txt") << "pulled from the test registry\n";
    auto tar = run_capture({"tar", "-C", root, "--numeric-owner", "--owner=0", "--group=0", "-cf",
                            dir.path().string() + "/layer.tar", "hello.txt"});
    auto gz = run_capture({"gzip", "-n", "-k", dir.path().string() + "/layer.tar"});
    if (!tar || !tar->ok() || !gz || !gz->ok()) throw std::runtime_error("cannot make the layer");
    image.layer = slurp(dir.path().string() + "/layer.tar.gz");
    image.diff_id = sha256_of(dir.path().string() + "/layer.tar");
    image.layer_digest = sha256_of(dir.path().string() + "/layer.tar.gz");
    image.config = nlohmann::json{
        {"architecture", "amd64"},
        {"os", "linux"},
        {"created", "2026-01-01T00:00:00Z"},
        {"config", {{"Env", {"PATH=/usr/bin:/bin", "PULLED_MARK=from-the-registry"}}, {"WorkingDir", "/data"}}},
        {"rootfs", {{"type", "layers"}, {"diff_ids", {image.diff_id}}}},
        {"history", {{{"created", "2026-01-01T00:00:00Z"}, {"created_by", "sandci pull test"}}}},
    }.dump();
    std::ofstream(dir.path().string() + "/config.json", std::ios::binary) << image.config;
    image.config_digest = sha256_of(dir.path().string() + "/config.json");
    image.manifest = nlohmann::json{
        {"schemaVersion", 2},
        {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
        {"config",
         {{"mediaType", "application/vnd.docker.container.image.v1+json"},
          {"size", image.config.size()},
          {"digest", image.config_digest}}},
        {"layers",
         {{{"mediaType", "application/vnd.docker.image.rootfs.diff.tar.gzip"},
           {"size", image.layer.size()},
           {"digest", image.layer_digest}}}},
    }.dump();
    std::ofstream(dir.path().string() + "/manifest.json", std::ios::binary) << image.manifest;
    image.manifest_digest = sha256_of(dir.path().string() + "/manifest.json");
    return image;
  }
};

// A Registry v2 server for one repository, sandci/tiny, with tags 1 and 2 (the
// same image); one request per connection; every request line is recorded.
class TinyRegistry {
 public:
  explicit TinyRegistry(TinyImage image) : image_(std::move(image)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("registry: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyRegistry() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval timeout{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      answer(c, request.substr(0, request.find("\r\n")));
      ::close(c);
    }
  }

  void answer(int c, const std::string& line) {
    std::istringstream words(line);
    std::string method, path;
    words >> method >> path;
    if (method != "GET" && method != "HEAD") {
      send(c, "400 Bad Request", "text/plain", "", "bad request\n", false);  // e.g. a TLS hello first
      return;
    }
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(method + " " + path);
    }
    const bool head = method == "HEAD";
    const std::string repo = "/v2/sandci/tiny/";
    if (path == "/v2/" || path == "/v2") {
      send(c, "200 OK", "application/json", "", "{}", head);
    } else if (path == repo + "manifests/1" || path == repo + "manifests/2" ||
               path == repo + "manifests/" + image_.manifest_digest) {
      send(c, "200 OK", "application/vnd.docker.distribution.manifest.v2+json", image_.manifest_digest,
           image_.manifest, head);
    } else if (path == repo + "blobs/" + image_.config_digest) {
      send(c, "200 OK", "application/octet-stream", image_.config_digest, image_.config, head);
    } else if (path == repo + "blobs/" + image_.layer_digest) {
      send(c, "200 OK", "application/octet-stream", image_.layer_digest, image_.layer, head);
    } else {
      send(c, "404 Not Found", "application/json", "",
           R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})", head);
    }
  }

  static void send(int c, const std::string& status, const std::string& type, const std::string& digest,
                   const std::string& body, bool head) {
    std::string out = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nDocker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n";
    if (!digest.empty()) out += "Docker-Content-Digest: " + digest + "\r\n";
    out += "\r\n";
    if (!head) out += body;
    for (std::size_t off = 0; off < out.size();) {
      ssize_t n = ::write(c, out.data() + off, out.size() - off);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }

  TinyImage image_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
};

class DockerPullTest : public SandboxTest {
 protected:
  BackendKind kind() const override { return BackendKind::kDocker; }
  void SetUp() override {
    SandboxTest::SetUp();
    image_ = TinyImage::make(files_);
    registry_ = std::make_unique<TinyRegistry>(image_);
  }
  void TearDown() override {
    // The pulled images go, so that every test pulls afresh.
    for (const char* tag : {"1", "2"}) {
      (void)docker_backend().client().call("DELETE", "/images/" + registry_->host() + "%2Fsandci%2Ftiny:" + tag +
                                                         "?force=1");
    }
  }
  std::unique_ptr<DockerBackend> open(bool allow_pull) {
    DockerOptions o;
    o.socket = docker_socket();
    o.image = kTestImage;
    o.allow_pull = allow_pull;
    auto opened = DockerBackend::open(o);
    if (!opened) ADD_FAILURE() << opened.error().message;
    return opened ? std::move(*opened) : nullptr;
  }
  std::string image(const std::string& tag) const { return registry_->host() + "/sandci/tiny:" + tag; }

  TempDir files_;
  TinyImage image_;
  std::unique_ptr<TinyRegistry> registry_;
};

TEST_F(DockerPullTest, AMissingImageIsPulledWhenAllowed) {
  auto backend = open(true);
  ASSERT_NE(backend, nullptr);
  auto info = backend->image_info(image("1"));
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->name, image("1"));
  EXPECT_THAT(info->config.env, Contains("PULLED_MARK=from-the-registry"));
  EXPECT_EQ(info->config.working_dir, "/data");
  // The engine really fetched it from the test registry, and has its layer.
  const auto asked = registry_->requests();
  EXPECT_THAT(asked, Contains(HasSubstr("/v2/sandci/tiny/manifests/1")));
  EXPECT_THAT(asked, Contains("GET /v2/sandci/tiny/blobs/" + image_.layer_digest));
  auto inspected = backend->client().call_json("GET", "/images/" + registry_->host() + "%2Fsandci%2Ftiny:1/json",
                                               nullptr, "inspect");
  ASSERT_TRUE(inspected) << inspected.error().message;
  EXPECT_THAT((*inspected)["RootFS"]["Layers"].get<std::vector<std::string>>(),
              Contains(image_.diff_id));
}

TEST_F(DockerPullTest, WithoutPullingTheSameImageIsAClearErrorNamingIt) {
  auto backend = open(false);
  ASSERT_NE(backend, nullptr);
  auto info = backend->image_info(image("2"));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().kind, ImageErrorKind::kNotFound);
  EXPECT_THAT(info.error().message, HasSubstr("image '" + image("2") + "' is not in the Docker engine"));
  EXPECT_THAT(info.error().message, HasSubstr("sandbox.docker_pull: true"));
  EXPECT_TRUE(registry_->requests().empty()) << "nothing may be pulled";
  // Creating a sandbox from it says the same.
  auto spec = default_spec();
  spec.image = image("2");
  auto created = backend->create(spec);
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("image '" + image("2") + "' is not in the Docker engine"));
}

TEST_F(DockerPullTest, AnImageTheRegistryDoesNotHaveIsAClearErrorNamingIt) {
  auto backend = open(true);
  ASSERT_NE(backend, nullptr);
  auto info = backend->image_info(image("9"));
  ASSERT_FALSE(info);
  EXPECT_THAT(info.error().message, HasSubstr("pulling image '" + image("9") + "' into the Docker engine failed"));
  EXPECT_THAT(registry_->requests(), Contains(HasSubstr("/v2/sandci/tiny/manifests/9")));
}

}  // namespace
}  // namespace sandci::sandbox::testing
