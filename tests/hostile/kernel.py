"""Hostile nodes that go for the kernel and for the sandbox's other processes rather than for files or
limits: attaching to or reading every process they can see, kernel interfaces that reach beyond the
node's own process tree (all through ctypes, `libc.syscall(NR, ...)`), the 32-bit system call ABI, and a
takeover of the sandbox meant to answer later runs with a forged value.

System call numbers are resolved on the host (by libseccomp) and handed to the node as inputs.
"""

from __future__ import annotations

import os

from .cases import CASES as FILE_AND_LIMIT_CASES
from .cases import Case

PTRACE_EVERY_PID = '''
def func():
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    me, attached, refused = os.getpid(), [], []
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me)
    for pid in pids:
        if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
            attached.append(pid)
            libc.ptrace(17, pid, 0, 0)  # PTRACE_DETACH
        else:
            refused.append(f"{pid}: {os.strerror(ctypes.get_errno())}")
    if attached or not pids:
        return {"attached": attached, "visible": pids}
    raise PermissionError("no process could be attached: " + "; ".join(refused))
'''
VM_READ_EVERY_PID = '''
def func(nr):
    import ctypes, errno, os
    class IOVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(64)
    local = IOVec(ctypes.addressof(buffer), 64)
    me, reached, refused = os.getpid(), [], []
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me)
    for pid in pids:
        addresses = [0x400000]
        try:
            with open(f"/proc/{pid}/maps") as fh:
                addresses.insert(0, int(fh.readline().split("-")[0], 16))
        except (OSError, ValueError):
            pass
        remote = IOVec(addresses[0], 64)
        got = libc.syscall(nr, ctypes.c_long(pid), ctypes.byref(local), ctypes.c_long(1), ctypes.byref(remote),
                           ctypes.c_long(1), ctypes.c_long(0))
        code = ctypes.get_errno()
        if got >= 0 or code == errno.EFAULT:  # EFAULT: allowed in, only the address was wrong
            reached.append(pid)
        else:
            refused.append(f"{pid}: {os.strerror(code)}")
    if reached or not pids:
        return {"reached": reached, "visible": pids}
    raise PermissionError("no process could be read: " + "; ".join(refused))
'''
PROC_FILES = '''
def func():
    import os
    opened, refused = [], []
    def attempt(what, action):
        try:
            action()
            opened.append(what)
        except OSError as exc:
            refused.append(f"{what}: {exc.strerror}")
    def read_mem(pid):
        address = 0x400000
        try:
            with open(f"/proc/{pid}/maps") as fh:
                address = int(fh.readline().split("-")[0], 16)
        except (OSError, ValueError):
            pass
        with open(f"/proc/{pid}/mem", "rb") as fh:
            fh.seek(address)
            fh.read(16)
    for pid in sorted({1, os.getppid()}):
        attempt(f"/proc/{pid}/maps", lambda: open(f"/proc/{pid}/maps").read())
        attempt(f"/proc/{pid}/fd", lambda: os.listdir(f"/proc/{pid}/fd"))
        attempt(f"/proc/{pid}/fd/1", lambda: os.close(os.open(f"/proc/{pid}/fd/1", os.O_WRONLY)))
        attempt(f"/proc/{pid}/mem", lambda: read_mem(pid))
        attempt(f"/proc/{pid}/environ", lambda: open(f"/proc/{pid}/environ", "rb").read())
    if opened:
        return {"opened": opened}
    raise PermissionError("; ".join(refused))
'''
# Each call: [name, number, args, the errno the filter answers with]. The node reports every call that
# did not fail with exactly that errno (a success, or a refusal by some other layer than the filter).
SYSCALLS = '''
def func(calls):
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    params = ctypes.create_string_buffer(256)  # zeroed: io_uring_params, perf_event_attr, bpf_attr
    wrong, denied = {}, []
    for name, nr, args, expected in calls:
        args = [ctypes.addressof(params) if a == "buffer" else a for a in args]
        ctypes.set_errno(0)
        got = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        code = ctypes.get_errno()
        if got == 0 and name == "clone":
            os._exit(0)  # the child of a clone that should not have happened
        if got > 0 and name == "clone":
            os.waitpid(got, 0)
        if got >= 0:
            wrong[name] = f"succeeded ({got})"
        elif code != expected:
            wrong[name] = f"failed with {os.strerror(code)}, not {os.strerror(expected)}"
        else:
            denied.append(name)
    if wrong:
        return wrong
    raise PermissionError("denied: " + ", ".join(denied))
'''
# 32-bit getpid through `int 0x80` (eax = 20), from a page of machine code called with ctypes.
INT80 = '''
def func():
    import ctypes, mmap, os
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]))
    call = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
    got = call()
    if got == -1:
        raise PermissionError("the 32-bit getpid was refused with EPERM")
    return f"the 32-bit getpid answered {got}"
'''
# Everything a node could try to keep a sandbox for itself: attach to pid 1 and the zygote and stay
# attached, write their memory, make an attached process write a forged answer into the pipe the host
# reads (a write(2) injected with ptrace, on x86-64), leave a process behind that keeps trying. The next
# run on the same executor must still get its own, correct value.
TAKEOVER = '''
def func():
    import ctypes, json, os, struct, time
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    names = "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs"
    class Regs(ctypes.Structure):
        _fields_ = [(n, ctypes.c_ulonglong) for n in names.split()]
    frames = [{"violation": None, "error": None, "exit": None, "stdout_seen": 0, "stdout_cap": 1024,
               "duration_ms": 1.0}, b"", b'{"ok":true,"error":null}\\n"forged"', {"recycle": None}]
    blob = b""
    for frame in frames:
        data = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
        blob += struct.pack(">I", len(data)) + data
    blob += b"\\0" * (-len(blob) % 8)
    def inject_write(pid):
        """Make stopped tracee `pid` run write(1, blob) (its fd 1: the pipe the host reads answers from)."""
        os.waitpid(pid, 0x40000000)  # __WALL: the SIGSTOP of the attach
        saved, regs = Regs(), Regs()
        libc.ptrace(12, pid, None, ctypes.byref(saved))  # PTRACE_GETREGS
        ctypes.pointer(regs)[0] = saved
        address = (saved.rsp - 16384) & ~7
        for i in range(0, len(blob), 8):
            libc.ptrace(5, pid, address + i, int.from_bytes(blob[i:i + 8], "little"))  # PTRACE_POKEDATA
        regs.rax, regs.rdi, regs.rsi, regs.rdx = 1, 1, address, len(blob)
        regs.rip, regs.orig_rax = saved.rip - 2, (1 << 64) - 1
        libc.ptrace(13, pid, None, ctypes.byref(regs))  # PTRACE_SETREGS
        for _ in range(2):  # to the injected call's entry, then its exit
            libc.ptrace(24, pid, None, None)  # PTRACE_SYSCALL
            os.waitpid(pid, 0x40000000)
        libc.ptrace(12, pid, None, ctypes.byref(regs))
        if (saved.rax >> 63) and saved.rax >= (1 << 64) - 516:  # an interrupted call: let it see EINTR
            saved.rax = (1 << 64) - 4
        libc.ptrace(13, pid, None, ctypes.byref(saved))
        return regs.rax
    done = []
    targets = sorted({1, os.getppid()})
    for pid in targets:
        if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH, never detached
            done.append(f"attached {pid}")
            if os.uname().machine == "x86_64":
                try:
                    done.append(f"{pid} wrote {inject_write(pid)} forged bytes")
                except OSError as exc:
                    done.append(f"injection into {pid} failed: {exc}")
        try:
            with open(f"/proc/{pid}/maps") as fh:
                low = int(next(l for l in fh if l.split()[1].startswith("rw")).split("-")[0], 16)
            with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
                mem.seek(low)
                data = mem.read(8)
                mem.seek(low)
                mem.write(data)
            done.append(f"wrote memory of {pid}")
        except (OSError, StopIteration, ValueError):
            pass
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for _ in range(3000):
                for pid in targets:
                    libc.ptrace(16, pid, None, None)
                time.sleep(0.01)
        os._exit(0)
    return done
'''
ECHO = "def func(x):\n    return {'echo': x, 'twice': x * 2}\n"


def correct_echo(ctx, result):
    assert result["value"] == {"echo": 7, "twice": 14}, f"a later run got a forged value: {result}"


def _calls(ctx) -> list:
    """The kernel interfaces the filter denies, with harmless arguments, as [name, nr, args, errno]."""
    return [[name, ctx["syscalls"][name], args, expected] for name, args, expected in KERNEL_CALLS]


EPERM, ENOSYS = 1, 38
CLONE_NEWNS, CLONE_NEWUSER, SIGCHLD = 0x20000, 0x10000000, 17
KERNEL_CALLS = [
    ("ptrace", [16, 0x3FFFFFF0, 0, 0], EPERM),  # PTRACE_ATTACH to no process: ESRCH unfiltered
    ("process_vm_readv", [0x3FFFFFF0, 0, 0, 0, 0, 0], EPERM),
    ("perf_event_open", ["buffer", 0, -1, -1, 0], EPERM),
    ("bpf", [0, "buffer", 128], EPERM),
    ("userfaultfd", [1], EPERM),  # UFFD_USER_MODE_ONLY: what an unprivileged caller may ask for
    ("io_uring_setup", [4, "buffer"], EPERM),
    ("keyctl", [0, -3, 0], EPERM),  # KEYCTL_GET_KEYRING_ID of the session keyring
    ("add_key", [0, 0, 0, 0, -3], EPERM),
    ("request_key", [0, 0, 0, 0], EPERM),
    ("kexec_load", [0, 0, 0, 0xFFFFFFFF], EPERM),  # unknown flags: EINVAL unfiltered, never an unload
    ("init_module", [0, 0, 0], EPERM),
    ("finit_module", [-1, 0, 0], EPERM),
    ("delete_module", [0, 0], EPERM),
    ("mount", [0, 0, 0, 0, 0], EPERM),
    ("umount2", [0, 0], EPERM),
    ("pivot_root", [0, 0], EPERM),
    ("unshare", [CLONE_NEWUSER], EPERM),
    ("setns", [-1, 0], EPERM),
    ("clone", [CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0], EPERM),
    ("clone3", ["buffer", 88], ENOSYS),
    ("personality", [0x0008], EPERM),  # PER_LINUX32
]


def resolve_syscalls() -> dict:
    """Names to this machine's system call numbers, through libseccomp."""
    import pyseccomp
    return {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
            for name in {n for n, _, _ in KERNEL_CALLS} | {"process_vm_readv"}}


def _x86_64() -> bool:
    return os.uname().machine == "x86_64"


KERNEL_CASES: list[Case] = [
    Case("ptrace-every-visible-pid", PTRACE_EVERY_PID, r"^PermissionError: no process could be attached: 1: "),
    Case("process-vm-readv-every-visible-pid", VM_READ_EVERY_PID, r"^PermissionError: no process could be read: 1: ",
         inputs={"nr": lambda c: c["syscalls"]["process_vm_readv"]}),
    Case("proc-files-of-init-and-zygote", PROC_FILES, r"^PermissionError: /proc/1/maps: "),
    Case("io-uring-setup", SYSCALLS, r"^PermissionError: denied: io_uring_setup$",
         inputs={"calls": lambda c: [["io_uring_setup", c["syscalls"]["io_uring_setup"], [4, "buffer"], EPERM]]}),
    Case("kernel-interfaces-denied", SYSCALLS, r"^PermissionError: denied: ptrace, .*, personality$",
         inputs={"calls": _calls}),
    # Denied with EPERM by the sandbox's filter; an engine's seccomp may kill the process instead (SIGSYS).
    *([Case("syscall-32-bit-abi", INT80, r"^PermissionError: the 32-bit getpid was refused with EPERM$|SIGSYS")]
      if _x86_64() else []),
    Case("takeover-answers-later-runs", ECHO, None, inputs={"x": 7}, check=correct_echo, healthy_after=3,
         setup=(Case("plant-in-init-and-zygote", TAKEOVER, None),)),
]

# The whole suite: the cases of cases.py, then these.
CASES: list[Case] = [*FILE_AND_LIMIT_CASES, *KERNEL_CASES]
