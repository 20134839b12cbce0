// The pure parts of the Docker Engine client: the attach stream's frames, API
// version comparison, DOCKER_HOST, error messages from the engine's answers.
#include <gmock/gmock.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "sandbox/docker_api.h"

namespace sandci::sandbox {
namespace {

std::string frame(int stream, const std::string& payload) {
  std::string header(8, '\0');
  header[0] = static_cast<char>(stream);
  const auto n = static_cast<std::uint32_t>(payload.size());
  header[4] = static_cast<char>(n >> 24);
  header[5] = static_cast<char>(n >> 16);
  header[6] = static_cast<char>(n >> 8);
  header[7] = static_cast<char>(n);
  return header + payload;
}

using Frames = std::vector<std::pair<int, std::string>>;

// Feeds `bytes` cut into pieces of `step` bytes; adjacent payloads of the same
// stream are merged (a frame cut in two arrives as two pieces).
Frames demux(const std::string& bytes, std::size_t step) {
  Frames got;
  FrameDemuxer demuxer([&](int stream, std::string_view payload) {
    if (!got.empty() && got.back().first == stream) {
      got.back().second.append(payload);
    } else {
      got.emplace_back(stream, std::string(payload));
    }
  });
  for (std::size_t off = 0; off < bytes.size(); off += step) demuxer.feed(std::string_view(bytes).substr(off, step));
  EXPECT_FALSE(demuxer.partial());
  return got;
}

TEST(FrameDemuxerTest, SplitsStdoutAndStderrFramesCutAnywhere) {
  const std::string bytes = frame(1, "hello\n") + frame(2, "oops\n") + frame(1, "world\n");
  const Frames want{{1, "hello\n"}, {2, "oops\n"}, {1, "world\n"}};
  for (std::size_t step : {1u, 3u, 8u, 9u, 1000u}) EXPECT_EQ(demux(bytes, step), want) << "step " << step;
}

TEST(FrameDemuxerTest, ReadsTheLengthAsBigEndianAndAllowsEmptyFrames) {
  const std::string big(70000, 'x');  // needs the third length byte
  const Frames got = demux(frame(1, "") + frame(2, big) + frame(1, "a"), 4096);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(2, big));
  EXPECT_EQ(got[1], std::make_pair(1, std::string("a")));
}

TEST(FrameDemuxerTest, TellsACutStream) {
  FrameDemuxer demuxer([](int, std::string_view) {});
  demuxer.feed(frame(1, "abcdef").substr(0, 10));
  EXPECT_TRUE(demuxer.partial());
}

TEST(DockerApiTest, ComparesApiVersionsNumerically) {
  EXPECT_TRUE(api_version_at_least("1.41", "1.41"));
  EXPECT_TRUE(api_version_at_least("1.43", "1.41"));
  EXPECT_TRUE(api_version_at_least("2.0", "1.41"));
  EXPECT_FALSE(api_version_at_least("1.40", "1.41"));
  EXPECT_FALSE(api_version_at_least("1.9", "1.41"));
}

TEST(DockerApiTest, SocketComesFromDockerHostElseTheDefault) {
  ::unsetenv("DOCKER_HOST");
  EXPECT_EQ(*docker_socket_from_env(), "/var/run/docker.sock");
  ::setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock", 1);
  EXPECT_EQ(*docker_socket_from_env(), "/run/user/1000/docker.sock");
  ::setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
  auto refused = docker_socket_from_env();
  ::unsetenv("DOCKER_HOST");
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, ::testing::HasSubstr("tcp://127.0.0.1:2375"));
}

TEST(DockerApiTest, ErrorMessageIsTheEnginesMessage) {
  EXPECT_EQ((EngineResponse{404, R"({"message":"No such image: x:1"})"}.message()), "No such image: x:1");
  EXPECT_EQ((EngineResponse{500, "plain text\n"}.message()), "plain text");
  EXPECT_EQ((EngineResponse{502, ""}.message()), "HTTP 502");
}

}  // namespace
}  // namespace sandci::sandbox
