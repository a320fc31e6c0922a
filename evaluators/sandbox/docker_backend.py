"""The ``docker`` backend: one locked-down, long-lived container per sandbox, the worker as PID 1.

Container settings (all of them, always):

    --network none  --read-only  --tmpfs /scratch (size-capped)  --user 65534:65534
    --cap-drop ALL  --security-opt no-new-privileges  --pids-limit  --memory (= --memory-swap)
    --cpus  no mounts, no host environment, no init (the worker is PID 1)

Being PID 1 matters: the kernel drops signals sent from inside the container to PID 1 unless
it installed a handler, so a program cannot kill its worker. The worker is driven over the
container's attached stdin/stdout (docker's multiplexed stream). A worker death here is an
infrastructure failure: it raises :class:`SandboxError` with the container's state.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Sequence

from evaluators.sandbox._base import Program, SandboxError, Verdict
from evaluators.sandbox._client import WorkerDriver

__all__ = ["DockerSandbox", "reap_containers", "unavailable"]

LABEL = "evaluators.sandbox"


class _AttachChannel:
    """stdin/stdout of a container over the attach socket (8-byte frame headers, tty off)."""

    def __init__(self, client, image: str, command: list[str], host_config: dict, labels: dict[str, str]) -> None:
        import docker

        self._client = client
        try:
            self.container = client.containers.create(image, command=command, stdin_open=True, tty=False,
                                                      labels=labels, **host_config)
        except docker.errors.ImageNotFound:
            raise SandboxError(f"sandbox image {image} is missing: run `python -m evaluators.sandbox build`") from None
        except docker.errors.APIError as e:
            raise SandboxError(f"cannot create the sandbox container: {e}") from None
        try:
            sock = client.api.attach_socket(self.container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._sock: socket.socket = getattr(sock, "_sock", sock)
            self._sock.setblocking(True)
            self.container.start()
        except Exception as e:  # noqa: BLE001
            self.close()
            raise SandboxError(f"cannot start the sandbox container: {e}") from None
        self._raw = b""
        self._stderr = b""

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def recv(self, timeout: float) -> bytes | None:
        while True:
            out = self._frames()
            if out:
                return out
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                return None
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                return b""
            self._raw += chunk

    def _frames(self) -> bytes:
        out = b""
        while len(self._raw) >= 8:
            stream, size = self._raw[0], struct.unpack(">I", self._raw[4:8])[0]
            if len(self._raw) < 8 + size:
                break
            payload, self._raw = self._raw[8:8 + size], self._raw[8 + size:]
            if stream == 2:
                self._stderr = (self._stderr + payload)[-4000:]
            else:
                out += payload
        return out

    def diagnostics(self) -> str:
        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
            desc = f"container {self.container.short_id} {state.get('Status')} exit={state.get('ExitCode')} " \
                   f"oom_killed={state.get('OOMKilled')}"
        except Exception as e:  # noqa: BLE001
            desc = f"container state unknown ({e})"
        tail = self._stderr.decode("utf-8", "replace").strip()[-1500:]
        return desc + (f"; stderr: {tail}" if tail else "")

    def close(self) -> None:
        try:
            self._sock.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


class DockerSandbox:
    """Run programs in a locked-down container (strong isolation)."""

    name = "docker"

    def __init__(
        self,
        workers: int = 2,
        memory_mb: int = 1024,
        *,
        image: str | None = None,
        file_limit_mb: int = 16,
        output_limit_mb: int = 4,
        scratch_mb: int = 256,
        pids_limit: int = 512,
        cpus: float | None = None,
        labels: dict[str, str] | None = None,
        **_: object,
    ) -> None:
        import docker

        from evaluators.sandbox.image import image_tag

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.image = image or image_tag()
        try:
            self._client = docker.from_env(timeout=120)
            self._client.ping()
        except Exception as e:  # noqa: BLE001
            raise SandboxError(f"no Docker daemon answers ({e}); run scripts/setup_docker.sh") from None
        cpus = cpus or float(workers)
        total_mb = workers * memory_mb + scratch_mb + 256
        host_config = dict(
            network_mode="none",
            read_only=True,
            tmpfs={"/scratch": f"rw,nosuid,nodev,size={scratch_mb}m,mode=1777"},
            user="65534:65534",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=pids_limit,
            mem_limit=f"{total_mb}m",
            memswap_limit=f"{total_mb}m",
            nano_cpus=int(cpus * 1e9),
            environment={"LANG": "C.UTF-8"},
            working_dir="/scratch",
            hostname="sandbox",
            ipc_mode="private",
            init=False,
        )
        command = ["--workers", str(workers), "--memory-mb", str(memory_mb), "--file-limit-mb", str(file_limit_mb),
                   "--output-limit-mb", str(output_limit_mb), "--scratch", "/scratch", "--nproc", "0"]
        self.isolation = (
            f"docker: network none, read-only root, tmpfs /scratch {scratch_mb} MiB, uid 65534, cap-drop ALL, "
            f"no-new-privileges, pids<={pids_limit}, memory<={total_mb} MiB, cpus={cpus:g}, worker is PID 1, "
            f"per-program rlimits and process-group kill"
        )
        self._driver = WorkerDriver(
            lambda: _AttachChannel(self._client, self.image, command, host_config, {**(labels or {}), LABEL: "worker"}),
            workers=workers, recover=False, label="docker",
        )
        self._driver._open()  # fail now (no image, no daemon), not on the first batch

    @classmethod
    def available(cls) -> bool:
        """True when a Docker daemon answers (the image may still need building)."""
        try:
            import docker

            docker.from_env(timeout=3).ping()
            return True
        except Exception:  # noqa: BLE001
            return False

    @property
    def container_id(self) -> str | None:
        ch = self._driver.channel
        return ch.container.id if isinstance(ch, _AttachChannel) else None

    def run(self, programs: Sequence[Program], *, progress: bool = False) -> list[Verdict]:
        if not programs:
            return []
        return self._driver.run(programs, progress=progress)

    def close(self) -> None:
        self._driver.close()
        self._client.close()

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unavailable() -> str | None:
    """Why this backend cannot run here (no daemon, or the image of the current sources not built); None: it can."""
    if not DockerSandbox.available():
        return "no Docker daemon answers (scripts/setup_docker.sh installs and starts one)"
    from evaluators.sandbox.image import image_exists, image_tag

    if not image_exists():
        return f"Docker answers but the sandbox image {image_tag()} is not built (`python -m evaluators.sandbox build`)"
    return None


def reap_containers(match: dict[str, str], *, keep=lambda labels: False) -> int:
    """Remove sandbox containers whose labels include ``match`` and that ``keep(labels)`` does not
    claim (e.g. those of a worker process that is gone). Returns how many were removed.

    The caller labels its sandboxes (``labels=`` above) with whatever identifies their owner;
    this module only matches labels, it knows nothing of studies or trials.
    """
    try:
        import docker

        client = docker.from_env(timeout=10)
        found = client.containers.list(all=True, filters={"label": [LABEL, *(f"{k}={v}" for k, v in match.items())]})
    except Exception:  # noqa: BLE001 - no daemon, nothing to reap
        return 0
    removed = 0
    for c in found:
        if keep(c.labels):
            continue
        try:
            c.remove(force=True)
            removed += 1
        except Exception:  # noqa: BLE001 - already gone
            pass
    client.close()
    return removed
