// A static helper the hostile tests run inside the sandbox: it tries one
// privileged operation with the raw system call (no tool in the image needed)
// and prints "allowed" or "refused: <errno name>". Exit code 0 either way; 2 on
// bad usage.
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(long rc) {
  if (rc < 0) {
    printf("refused: %s\n", strerrorname_np(errno));
  } else {
    printf("allowed\n");
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* what = argv[1];
  if (strcmp(what, "ptrace") == 0 && argc == 3) {
    pid_t target = atoi(argv[2]);
    long rc = ptrace(PTRACE_ATTACH, target, nullptr, nullptr);
    if (rc == 0) {
      waitpid(target, nullptr, __WALL);
      ptrace(PTRACE_DETACH, target, nullptr, nullptr);
    }
    return report(rc);
  }
  if (strcmp(what, "raw-socket") == 0) {
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    return report(fd);
  }
  if (strcmp(what, "packet-socket") == 0) {
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    return report(fd);
  }
  if (strcmp(what, "mount") == 0) {
    return report(mount("none", "/mnt", "tmpfs", 0, nullptr));
  }
  if (strcmp(what, "init-module") == 0) {
    static char image[64] = "\177ELF";
    return report(syscall(SYS_init_module, image, sizeof image, ""));
  }
  if (strcmp(what, "finit-module") == 0) {
    return report(syscall(SYS_finit_module, 0, "", 0));
  }
  return 2;
}
