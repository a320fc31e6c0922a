"""Hostile programs: each one *passes only if its attack worked*.

A sandbox that contains an attack therefore never reports ``passed``. Every program is run
after a prelude that defines, from the test:

    SECRET          a random string
    SECRET_FILE     a host file (mode 0600) holding SECRET
    PUBLIC_FILE     a host file (mode 0644, world-readable directory) holding SECRET
    SECRET_ENV      the name of a host environment variable set to SECRET
    OUTSIDE_DIR     a host directory outside the sandbox's scratch (mode 0755)
    MARKER          a host path that a surviving daemon would create

``PROCESS_WEAKNESSES`` lists what the process backend cannot contain (documented in
docs/sandbox.md); the Docker backend must contain every program.
"""

HOSTILE: dict[str, str] = {
    # --- resources ---------------------------------------------------------------------
    "fork_bomb": """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
""",
    "memory_bomb_single": "x = bytearray(16 * 1024 ** 3)\n",
    "memory_bomb_growing": """
chunks = []
while True:
    chunks.append(bytearray(50 * 1024 ** 2))
""",
    "mmap_bomb": """
import mmap
m = mmap.mmap(-1, 16 * 1024 ** 3)
m[::4096] = b"x" * (len(m) // 4096)
""",
    "cpu_spin": "while True:\n    pass\n",
    "cpu_spin_threads": """
import threading
def spin():
    while True:
        pass
for _ in range(8):
    threading.Thread(target=spin, daemon=True).start()
spin()
""",
    "sleep_forever": "import time\ntime.sleep(10 ** 6)\n",
    "read_stdin": "data = input()\nassert data == SECRET\n",
    "fd_exhaustion": """
import os
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(100000)]
""",
    "output_flood_1gb": """
import sys
chunk = "x" * (1 << 20)
for _ in range(1024):
    sys.stdout.write(chunk)
""",
    "output_flood_swallowed": """
import sys
try:
    for _ in range(1024):
        sys.stderr.write("y" * (1 << 20))
except BaseException:
    pass
""",
    "deep_recursion": """
import sys
sys.setrecursionlimit(10 ** 8)
def down(n):
    return down(n + 1) + 1
down(0)
""",
    "segfault_ctypes": "import ctypes\nctypes.string_at(0)\n",
    "disk_fill_scratch": """
import os
written = 0
i = 0
while written < 1024 ** 3:
    with open(f"fill-{i}.bin", "wb") as f:
        for _ in range(8):
            f.write(b"\\0" * (1 << 20))
            written += 1 << 20
    i += 1
""",
    "big_single_file": """
with open("big.bin", "wb") as f:
    for _ in range(200):
        f.write(b"\\0" * (1 << 20))
""",
    # --- network ----------------------------------------------------------------------
    "network_tcp": """
import socket
socket.create_connection(("1.1.1.1", 53), timeout=2).close()
""",
    "network_dns": """
import socket
assert socket.getaddrinfo("pypi.org", 443)
""",
    "network_docker_host": """
import socket
for host in ("172.17.0.1", "10.0.2.2", "192.168.0.1"):
    try:
        socket.create_connection((host, 2375), timeout=0.5).close()
        break
    except OSError:
        continue
else:
    raise SystemExit("no route")
""",
    # --- host data --------------------------------------------------------------------
    "read_host_secret_file": "assert open(SECRET_FILE).read() == SECRET\n",
    "read_host_public_file": "assert open(PUBLIC_FILE).read() == SECRET\n",
    "read_host_env": """
import os
assert os.environ.get(SECRET_ENV) == SECRET
""",
    "read_ancestor_environ": """
import os
found = False
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            found |= SECRET.encode() in open(f"/proc/{pid}/environ", "rb").read()
        except OSError:
            pass
assert found
""",
    "write_outside_scratch": """
import os
with open(os.path.join(OUTSIDE_DIR, "pwned"), "w") as f:
    f.write(SECRET)
""",
    "write_system_dirs": """
ok = 0
for path in ("/etc/pwned", "/usr/lib/pwned", "/opt/pwned", "/pwned"):
    try:
        open(path, "w").write("x")
        ok += 1
    except OSError:
        pass
assert ok
""",
    "write_tmp": """
open(MARKER + ".tmp", "w").write(SECRET)
""",
    "escalate_setuid": "import os\nos.setuid(0)\nos.setgid(0)\nassert os.getuid() == 0\n",
    # --- faking a pass ----------------------------------------------------------------
    "early_exit_os_exit0": "import os\nos._exit(0)\nassert False\n",
    "early_exit_sys_exit0": "import sys\nsys.exit(0)\nassert False\n",
    "raise_systemexit": "raise SystemExit(0)\n",
    "print_success_marker": """
import json, os, sys
print("passed")
print(json.dumps({"status": "passed", "passed": True, "result": "passed"}))
sys.stdout.flush()
os._exit(0)
""",
    "forge_result_fds": """
import json, os
# the worker's result formats, old (JSON) and new, without the nonce a program cannot know
for msg in (json.dumps({"n": "", "s": "passed", "d": "", "m": ""}).encode(), b" passed 0\n"):
    for fd in range(3, 1024):
        try:
            os.write(fd, msg)
        except OSError:
            pass
os._exit(0)
""",
    "close_all_fds": "import os\nos.closerange(0, 65536)\n",
    "kill_parent": """
import os, signal, time
parent = os.getppid()
os.kill(parent, signal.SIGKILL)
time.sleep(0.5)
os.kill(parent, 0)  # still alive: the attack failed
raise AssertionError("parent survived")
""",
    "kill_everything": """
import os, signal, time
os.kill(-1, signal.SIGKILL)
time.sleep(0.5)
raise AssertionError("still judged")
""",
    "ignore_sigterm_sigalrm": """
import signal
for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
    signal.signal(s, signal.SIG_IGN)
signal.alarm(0)
while True:
    pass
""",
    "daemonized_child": """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3)
        open(MARKER, "w").write("daemon survived")
        os._exit(0)
    os._exit(0)
time.sleep(0.2)
""",
    "stop_everything": """
import os, signal
me = os.getpid()
stopped = 0
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != me:
        try:
            os.kill(int(pid), signal.SIGSTOP)  # siblings, children waiting for programs, the fork server
            stopped += 1
        except OSError:
            pass
raise AssertionError(f"stopped {stopped} processes")
""",
    "ptrace_neighbours": """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH = 16
me = os.getpid()
got = []
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != me:
        try:
            open(f"/proc/{pid}/mem", "rb").close()  # read (or, with a write, rewrite) its memory
            got.append(pid)
        except OSError:
            pass
        if libc.ptrace(PTRACE_ATTACH, int(pid), 0, 0) == 0:
            got.append(pid)
assert got, "no other process could be traced"
""",
    "break_scratch_dirs": """
import os
here = os.getcwd()
root = os.path.dirname(here)
broken = 0
for name in os.listdir(root):
    path = os.path.join(root, name)
    if path == here:
        continue
    for attack in (lambda: os.chmod(path, 0), lambda: os.rmdir(path), lambda: os.symlink("/", path)):
        try:
            attack()
            broken += 1
        except OSError:
            pass
raise AssertionError(f"broke {broken} scratch directories")  # the attack is on the neighbours
""",
    "escaped_group_then_spin": """
import os, time
if os.fork() == 0:
    os.setsid()
    time.sleep(3)
    open(MARKER + ".escaped", "w").write("escaped child survived")
    os._exit(0)
while True:
    pass
""",
}

# What the process backend cannot contain, and why (the Docker backend contains everything).
PROCESS_WEAKNESSES: dict[str, str] = {
    "read_host_public_file": "the host filesystem is visible: world-readable files can be read",
    "write_tmp": "world-writable host directories (/tmp) can be written",
    "disk_fill_scratch": "no cap on total disk use in scratch (only RLIMIT_FSIZE per file)",
}
# Extra weaknesses when the harness does not run as root (children then keep the user's uid).
PROCESS_WEAKNESSES_NON_ROOT: dict[str, str] = {
    "read_host_secret_file": "children run as the harness user and can read its files",
    "read_ancestor_environ": "children can read /proc/<pid>/environ of the harness user's processes",
    "write_outside_scratch": "children can write wherever the harness user can",
}
# Too dangerous to run against the process backend without root (it would kill the user's session).
PROCESS_SKIP_NON_ROOT: dict[str, str] = {
    "kill_everything": "kill(-1) as the harness user would kill every process of that user",
    "stop_everything": "SIGSTOP to every process of the harness user would stop the user's session",
    "ptrace_neighbours": "children can trace the harness user's other (dumpable) processes",
}
