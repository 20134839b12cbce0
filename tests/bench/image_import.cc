// How fast the image store unpacks archives: a synthetic root filesystem of many
// small files (the shape of a Debian rootfs: ~10k files, most under 16 kB), as a
// plain rootfs tarball, gzipped, and as a two-layer docker save archive with
// whiteouts. Prints the median of 3 runs; wall time is noisy on a shared machine,
// so CPU time (user + system of this process) is printed too.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "../support/image_fixtures.h"
#include "sandbox/image_store.h"

namespace {

using sandci::testing::TarBuilder;
using sandci::testing::TempDir;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

TarBuilder synthetic_rootfs(int files, std::size_t file_size) {
  TarBuilder t;
  const std::string content(file_size, 'x');
  t.dir("usr").dir("usr/share");
  for (int d = 0; d < files / 100; ++d) {
    std::string dir = "usr/share/d" + std::to_string(d);
    t.dir(dir);
    for (int f = 0; f < 100; ++f) t.file(dir + "/f" + std::to_string(f), content);
  }
  return t;
}

void measure(const char* label, int files, std::size_t bytes, const std::function<void()>& run) {
  std::vector<double> wall, cpu;
  for (int i = 0; i < 3; ++i) {
    double c0 = cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    run();
    wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(cpu_seconds() - c0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  std::printf("%-32s files=%-6d MB=%-6.1f wall=%.3f s  cpu=%.3f s\n", label, files,
              static_cast<double>(bytes) / 1e6, wall[1], cpu[1]);
}

}  // namespace

int main() {
  TempDir tmp;
  const int files = 10000;
  const std::size_t size = 8192;
  synthetic_rootfs(files, size).write(tmp / "rootfs.tar");
  synthetic_rootfs(files, size).write(tmp / "rootfs.tar.gz", true);
  TarBuilder top;
  top.file("usr/share/d0/.wh.f0", "").file("usr/share/d1/.wh..wh..opq", "").dir("etc").file("etc/new", "n");
  sandci::testing::make_docker_save(tmp / "saved.tar", {synthetic_rootfs(files, size), top},
                                    sandci::testing::image_config_json({"A=1"}, "/", ""), "bench:1", tmp.path());
  sandci::sandbox::ImageStore store(tmp / "state");
  auto import = [&](const char* name, const char* file) {
    auto r = store.import(name, tmp / file);
    if (!r) {
      std::fprintf(stderr, "import failed: %s\n", r.error().message.c_str());
      std::exit(1);
    }
  };
  measure("import rootfs tarball", files, files * size, [&] { import("plain", "rootfs.tar"); });
  measure("import gzip rootfs tarball", files, files * size, [&] { import("gz", "rootfs.tar.gz"); });
  measure("import docker save, 2 layers", files, files * size, [&] { import("saved", "saved.tar"); });
  measure("1000 lookups", 0, 0, [&] {
    for (int i = 0; i < 1000; ++i) (void)store.lookup("plain");
  });
  return 0;
}
