// seccomp-exec: runs a command under a seccomp filter built the way systemd builds
// the filters of a unit's sandboxing directives, so scripts/try-unit-hardening.sh
// can try each directive on a real `sandci run` on a machine whose PID 1 is not
// systemd. The filter is inherited by every child (runsc and its sandbox).
//
//   seccomp-exec [OPTION]... -- COMMAND [ARG]...
//   --deny NAME,...        these system calls fail with EPERM (SystemCallFilter=~...)
//   --allow NAME,...       only these succeed, the rest fail with EPERM (SystemCallFilter=...)
//   --deny-ns HEX          clone/unshare/setns with any of these CLONE_NEW* flags fail
//                          with EPERM, clone3 with ENOSYS (RestrictNamespaces=)
//   --allow-af N,...       socket() of any other address family fails with
//                          EAFNOSUPPORT (RestrictAddressFamilies=)
//   --mdwe                 no writable+executable mappings, no mprotect to executable
//                          (MemoryDenyWriteExecute=)
//   --lock-personality     personality() may only query (LockPersonality=; systemd also
//                          lets PER_LINUX be set)
//   --no-realtime          sched_setscheduler to SCHED_FIFO/SCHED_RR fails (RestrictRealtime=)
//   --no-suid              chmod/fchmod/fchmodat setting S_ISUID/S_ISGID fails (RestrictSUIDSGID=)
// Names unknown to this architecture are skipped. Other architectures' system calls
// kill the process (libseccomp's default: SystemCallArchitectures=native).
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char* what) {
  fprintf(stderr, "seccomp-exec: %s\n", what);
  exit(125);
}

static void add(scmp_filter_ctx ctx, uint32_t action, const char* name, unsigned count,
                const struct scmp_arg_cmp* args) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return;
  if (seccomp_rule_add_array(ctx, action, nr, count, args) < 0) {
    fprintf(stderr, "seccomp-exec: cannot add a rule for %s\n", name);
    exit(125);
  }
}

static void each_name(char* list, scmp_filter_ctx ctx, uint32_t action) {
  for (char* name = strtok(list, ","); name; name = strtok(NULL, ",")) add(ctx, action, name, 0, NULL);
}

int main(int argc, char** argv) {
  char *deny = NULL, *allow = NULL, *allow_af = NULL;
  unsigned long deny_ns = 0;
  int mdwe = 0, lock_personality = 0, no_realtime = 0, no_suid = 0, i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; ++i) {
    if (!strcmp(argv[i], "--deny") && i + 1 < argc) deny = argv[++i];
    else if (!strcmp(argv[i], "--allow") && i + 1 < argc) allow = argv[++i];
    else if (!strcmp(argv[i], "--deny-ns") && i + 1 < argc) deny_ns = strtoul(argv[++i], NULL, 16);
    else if (!strcmp(argv[i], "--allow-af") && i + 1 < argc) allow_af = argv[++i];
    else if (!strcmp(argv[i], "--mdwe")) mdwe = 1;
    else if (!strcmp(argv[i], "--lock-personality")) lock_personality = 1;
    else if (!strcmp(argv[i], "--no-realtime")) no_realtime = 1;
    else if (!strcmp(argv[i], "--no-suid")) no_suid = 1;
    else die("unknown option (see the comment at the top of seccomp-exec.c)");
  }
  if (i + 1 >= argc) die("no command after --");

  scmp_filter_ctx ctx = seccomp_init(allow ? SCMP_ACT_ERRNO(EPERM) : SCMP_ACT_ALLOW);
  if (!ctx) die("seccomp_init failed");
  if (allow) each_name(allow, ctx, SCMP_ACT_ALLOW);
  if (deny) each_name(deny, ctx, SCMP_ACT_ERRNO(EPERM));
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (unsigned bit = 0; bit < 64 && deny_ns; ++bit) {
    const unsigned long flag = 1UL << bit;
    if (!(deny_ns & flag)) continue;
    struct scmp_arg_cmp a0 = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
    add(ctx, eperm, "clone", 1, &a0);
    add(ctx, eperm, "unshare", 1, &a0);
    struct scmp_arg_cmp a1 = SCMP_A1(SCMP_CMP_MASKED_EQ, flag, flag);
    add(ctx, eperm, "setns", 1, &a1);
  }
  if (deny_ns) {
    struct scmp_arg_cmp zero = SCMP_A1(SCMP_CMP_EQ, 0);  // setns(fd, 0) may join any namespace
    add(ctx, eperm, "setns", 1, &zero);
    add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
  }
  if (allow_af) {
    int allowed[64] = {0};
    for (char* n = strtok(allow_af, ","); n; n = strtok(NULL, ","))
      if (atoi(n) >= 0 && atoi(n) < 64) allowed[atoi(n)] = 1;
    for (int family = 0; family < 64; ++family) {
      if (allowed[family]) continue;
      struct scmp_arg_cmp a0 = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)family);
      add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &a0);
    }
  }
  if (mdwe) {
    struct scmp_arg_cmp wx = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC);
    add(ctx, eperm, "mmap", 1, &wx);
    struct scmp_arg_cmp x = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC);
    add(ctx, eperm, "mprotect", 1, &x);
    add(ctx, eperm, "pkey_mprotect", 1, &x);
  }
  if (lock_personality) {
    // Stricter than systemd, which also lets PER_LINUX be set: libseccomp takes one
    // comparison per argument and rule.
    struct scmp_arg_cmp change = SCMP_A0(SCMP_CMP_NE, 0xffffffffUL);
    add(ctx, eperm, "personality", 1, &change);
  }
  if (no_realtime) {
    struct scmp_arg_cmp fifo = SCMP_A1(SCMP_CMP_EQ, SCHED_FIFO), rr = SCMP_A1(SCMP_CMP_EQ, SCHED_RR);
    add(ctx, eperm, "sched_setscheduler", 1, &fifo);
    add(ctx, eperm, "sched_setscheduler", 1, &rr);
  }
  if (no_suid) {
    struct scmp_arg_cmp s1 = SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID), g1 = SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID);
    struct scmp_arg_cmp s2 = SCMP_A2(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID), g2 = SCMP_A2(SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID);
    add(ctx, eperm, "chmod", 1, &s1);
    add(ctx, eperm, "chmod", 1, &g1);
    add(ctx, eperm, "fchmod", 1, &s1);
    add(ctx, eperm, "fchmod", 1, &g1);
    add(ctx, eperm, "fchmodat", 1, &s2);
    add(ctx, eperm, "fchmodat", 1, &g2);
  }
  if (seccomp_load(ctx) < 0) die("seccomp_load failed (root or no_new_privs is needed)");
  seccomp_release(ctx);
  execvp(argv[i + 1], argv + i + 1);
  perror("seccomp-exec: exec");
  return 127;
}
