"""The system calls node code may not make: one policy, kept as data, compiled by libseccomp.

Node code runs as an unprivileged user without capabilities, in namespaces, behind limits. What is left
to it is the kernel's own interface, and a few parts of that interface reach beyond the caller's process
tree or are large, rarely needed and often exploited. `POLICY` denies them, group by group, each with the
reason. Everything else is allowed: the sandbox's other layers (namespaces, read-only binds, no network,
cgroups, rlimits) do the rest.

The policy has two renderings:

- `compile_bpf()`: the BPF program (built once at executor start with libseccomp, through the
  `pyseccomp` ctypes binding) that bubblewrap installs with `--seccomp FD` before it starts the worker,
  so the zygote and every node process run under it;
- `docker_profile()`: the same rules in Docker's JSON profile format, for `security_opt=["seccomp=..."]`.

Only the machine's native system call ABI is allowed. A call made through another ABI (on x86-64: the
32-bit `int 0x80` entry and x32) is denied as a whole: filters are written per ABI and a second ABI is a
second, unreviewed way into the same kernel code.

Denied calls fail with EPERM, as a call that lacks a privilege does, so node code sees an ordinary
PermissionError. clone3 fails with ENOSYS instead: its flags live in memory that seccomp cannot inspect,
and ENOSYS makes glibc fall back to clone, whose flags the filter can check.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

# Flags of clone() that create namespaces (linux/sched.h). CLONE_NEWTIME is only accepted by clone3 and
# unshare, both denied whole; it is listed so that the rule says every namespace, not just most.
CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWTIME": 0x00000080,
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
PERSONALITY_QUERY = 0xFFFFFFFF  # personality(0xffffffff) reads the persona without changing it


@dataclass(frozen=True)
class Deny:
    """System calls denied for one reason. `masked_any` denies a call only when its argument `arg`
    has any of these bits set; `unless_equal` denies it unless argument `arg` equals that value."""

    name: str
    why: str
    syscalls: tuple[str, ...]
    code: int = errno.EPERM  # the errno the denied call fails with
    arg: int = 0
    masked_any: tuple[int, ...] = ()
    unless_equal: int | None = None


POLICY: tuple[Deny, ...] = (
    Deny("other processes", "reach into another process: attach to it, read or write its memory, compare or "
         "take its open files. In a sandbox nothing but the node's own process tree is the node's business",
         ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd")),
    Deny("kernel attack surface", "large kernel interfaces that a node never needs and that are a frequent "
         "way to kernel exploits: performance counters, eBPF, userfaultfd (used to win kernel races) and "
         "io_uring (a second system call interface that seccomp cannot see into)",
         ("perf_event_open", "bpf", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register")),
    Deny("kernel keyrings", "keyrings are shared by the user id across sandboxes and with the host",
         ("keyctl", "add_key", "request_key")),
    Deny("kernel code", "loading a new kernel or kernel modules",
         ("kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module")),
    Deny("mounts", "changing the sandbox's file system view, which is fixed when the sandbox starts",
         ("mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
          "open_tree", "mount_setattr")),
    Deny("new namespaces", "entering or making namespaces: a new user namespace gives back capabilities "
         "inside it and exposes kernel code that needs them", ("unshare", "setns")),
    Deny("namespaces by clone", "clone() with a flag that makes a namespace (any of CLONE_NEW*); a plain "
         "fork or thread is allowed", ("clone",), masked_any=tuple(sorted(CLONE_NAMESPACE_FLAGS.values()))),
    Deny("clone3", "its flags are out of seccomp's sight; ENOSYS makes glibc fall back to clone",
         ("clone3",), code=errno.ENOSYS),
    Deny("personality", "changing the execution domain (PER_LINUX32, ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, "
         "...) weakens address space randomisation and selects legacy kernel paths; reading it is allowed",
         ("personality",), unless_equal=PERSONALITY_QUERY),
    Deny("host administration", "clock, swap, accounting, quota, reboot, kernel log and file handle calls: "
         "privileged on the host, never a node's business",
         ("settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "swapon", "swapoff", "acct",
          "quotactl", "reboot", "syslog", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
          "uselib", "ioperm", "iopl", "vhangup")),
)


class SeccompUnavailable(RuntimeError):
    """libseccomp (or its Python binding) is missing, or could not build the filter."""


def _library():
    """The pyseccomp module, which loads libseccomp2 with ctypes when imported."""
    try:
        import pyseccomp
    except (ImportError, OSError, RuntimeError) as exc:
        raise SeccompUnavailable(f"libseccomp cannot be loaded ({exc}): pip install pyseccomp and "
                                 f"apt-get install libseccomp2") from None
    return pyseccomp


def denied_syscalls() -> list[str]:
    """Every system call name the policy mentions, in policy order."""
    return [name for rule in POLICY for name in rule.syscalls]


def build_filter():
    """The policy as a libseccomp filter (allow by default, deny per rule, other ABIs denied)."""
    sc = _library()
    try:
        filt = sc.SyscallFilter(sc.ALLOW)
        filt.set_attr(sc.Attr.ACT_BADARCH, sc.ERRNO(errno.EPERM))
        for rule in POLICY:
            action = sc.ERRNO(rule.code)
            for name in rule.syscalls:
                if sc.resolve_syscall(sc.Arch.NATIVE, name) == -1:
                    continue  # unknown to this libseccomp: not a call this machine's ABI has
                for args in _conditions(sc, rule):
                    filt.add_rule(action, name, *args)
    except OSError as exc:
        raise SeccompUnavailable(f"libseccomp could not build the system call filter: {exc}") from None
    return filt


def _conditions(sc, rule: Deny) -> list[tuple]:
    """The argument tests of one rule, one tuple per libseccomp rule (several rules are OR-ed)."""
    if rule.masked_any:
        return [(sc.Arg(rule.arg, sc.MASKED_EQ, bit, bit),) for bit in rule.masked_any]
    if rule.unless_equal is not None:
        return [(sc.Arg(rule.arg, sc.NE, rule.unless_equal),)]
    return [()]


def compile_bpf() -> bytes:
    """The filter as the BPF program bubblewrap's --seccomp reads (built once, handed to every sandbox)."""
    return _export(build_filter(), "export_bpf")


def pseudo_code() -> str:
    """libseccomp's readable listing of the compiled filter (tests read its architectures from it)."""
    return _export(build_filter(), "export_pfc").decode("utf-8", "replace")


def _export(filt, method: str) -> bytes:
    fd = os.memfd_create("pyflow-seccomp", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "rb", closefd=True) as reader:
            getattr(filt, method)(_Descriptor(fd))
            reader.seek(0)
            return reader.read()
    except OSError as exc:
        raise SeccompUnavailable(f"libseccomp could not export the system call filter: {exc}") from None
    finally:
        os.close(fd)


class _Descriptor:
    """What pyseccomp's export functions want: an object with fileno()."""

    def __init__(self, fd: int):
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def program_fd(program: bytes, name: str = "pyflow-seccomp") -> int:
    """A fresh memfd holding `program`, positioned at its start: bwrap reads --seccomp FD (and
    --ro-bind-data FD) to its end, so each sandbox gets its own descriptor (a shared file offset would
    be read once)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(program)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


DOCKER_ARCHITECTURES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


def docker_profile() -> dict:
    """The policy in Docker's seccomp profile format: allow by default, the same denials, and only the
    native architecture listed (Docker then denies calls made through any other ABI)."""
    machine = os.uname().machine
    rules = []
    for rule in POLICY:
        entry = {"names": list(rule.syscalls), "action": "SCMP_ACT_ERRNO", "errnoRet": rule.code,
                 "comment": rule.why}
        if rule.masked_any:
            rules += [{**entry, "args": [{"index": rule.arg, "value": bit, "valueTwo": bit,
                                          "op": "SCMP_CMP_MASKED_EQ"}]} for bit in rule.masked_any]
        elif rule.unless_equal is not None:
            rules.append({**entry, "args": [{"index": rule.arg, "value": rule.unless_equal, "valueTwo": 0,
                                             "op": "SCMP_CMP_NE"}]})
        else:
            rules.append(entry)
    return {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": errno.EPERM,
            "architectures": [DOCKER_ARCHITECTURES.get(machine, "SCMP_ARCH_NATIVE")], "syscalls": rules}
