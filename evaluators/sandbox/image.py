"""The sandbox image: what it contains, its content-hash tag, and how to build it.

Two recipes give the same layout (python3 + /opt/sandbox/{worker,forkserver}.py, user 65534,
workdir /scratch, the worker as entrypoint):

- ``dockerfile``: ``Dockerfile`` next to this file, ``FROM python:3.11-slim`` (needs a registry);
- ``offline``: Debian bookworm's ``python3-minimal`` + stdlib via ``mmdebstrap`` into a tarball,
  the worker copied in by a hook, then ``docker import`` with the same config (needs only
  a Debian mirror; about 30 s here).

The tag is ``evaluators-sandbox:<12 hex>``, a hash of the worker, the fork server, the
Dockerfile and the offline recipe, so a changed worker never runs in a stale image.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from evaluators.sandbox._base import SandboxError

__all__ = ["IMAGE_REPO", "build_image", "image_exists", "image_tag"]

HERE = Path(__file__).parent
WORKER = HERE / "worker.py"
FORKSERVER = HERE / "forkserver.py"
SCRIPTS = (WORKER, FORKSERVER)  # copied into /opt/sandbox
DOCKERFILE = HERE / "Dockerfile"
IMAGE_REPO = "evaluators-sandbox"
BASE_IMAGE = "python:3.11-slim"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = ("python3-minimal", "libpython3.11-stdlib")
ENTRYPOINT = '["python3", "-I", "-S", "/opt/sandbox/worker.py"]'
IMPORT_CHANGES = (
    "USER 65534:65534",
    "WORKDIR /scratch",
    "ENV LANG=C.UTF-8",
    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    f"ENTRYPOINT {ENTRYPOINT}",
)


def _offline_recipe() -> str:
    return "\n".join([DEBIAN_SUITE, *DEBIAN_PACKAGES, *IMPORT_CHANGES])


def image_tag() -> str:
    """``evaluators-sandbox:<hash of worker + fork server + Dockerfile + offline recipe>``."""
    h = hashlib.sha256()
    for part in (*(p.read_bytes() for p in SCRIPTS), DOCKERFILE.read_bytes(), _offline_recipe().encode()):
        h.update(hashlib.sha256(part).digest())
    return f"{IMAGE_REPO}:{h.hexdigest()[:12]}"


def _client():
    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as e:  # noqa: BLE001 - docker raises several unrelated types here
        raise SandboxError(f"no Docker daemon answers ({e}); run scripts/setup_docker.sh") from None
    return client


def image_exists(tag: str | None = None, client=None) -> bool:
    import docker

    client = client or _client()
    try:
        client.images.get(tag or image_tag())
        return True
    except docker.errors.ImageNotFound:
        return False


def build_image(*, method: str = "auto", force: bool = False, log=print) -> str:
    """Build the sandbox image if missing; returns its tag. ``method``: auto | dockerfile | offline."""
    if method not in ("auto", "dockerfile", "offline"):
        raise ValueError(f"unknown build method {method!r}; choose auto, dockerfile or offline")
    client = _client()
    tag = image_tag()
    if not force and image_exists(tag, client):
        log(f"sandbox image {tag} already present")
        return tag
    if method in ("auto", "dockerfile"):
        if _base_available(client, log):
            return _build_dockerfile(client, tag, log)
        if method == "dockerfile":
            raise SandboxError(f"cannot pull {BASE_IMAGE}: no registry answers; use --method offline")
        log(f"no registry answers for {BASE_IMAGE}: building offline with mmdebstrap")
    return _build_offline(client, tag, log)


def _base_available(client, log) -> bool:
    import docker

    try:
        client.images.get(BASE_IMAGE)
        return True
    except docker.errors.ImageNotFound:
        pass
    try:
        log(f"pulling {BASE_IMAGE} ...")
        client.images.pull(BASE_IMAGE)
        return True
    except Exception as e:  # noqa: BLE001 - any pull failure means: no registry
        log(f"pull failed: {str(e).splitlines()[0][:200]}")
        return False


def _build_dockerfile(client, tag: str, log) -> str:
    with tempfile.TemporaryDirectory(prefix="sandbox-build-") as ctx:
        for script in SCRIPTS:
            shutil.copy(script, Path(ctx) / script.name)
        shutil.copy(DOCKERFILE, Path(ctx) / "Dockerfile")
        log(f"building {tag} from {DOCKERFILE.name} ...")
        client.images.build(path=ctx, tag=tag, rm=True, pull=False, labels={"evaluators.sandbox": "image"})
    log(f"built {tag}")
    return tag


def _build_offline(client, tag: str, log) -> str:
    if shutil.which("mmdebstrap") is None:
        raise SandboxError("offline build needs mmdebstrap (apt-get install -y mmdebstrap)")
    with tempfile.TemporaryDirectory(prefix="sandbox-build-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        for script in SCRIPTS:
            shutil.copy(script, Path(tmp) / script.name)
        cmd = [
            "mmdebstrap", "--variant=essential", f"--include={','.join(DEBIAN_PACKAGES)}",
            "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            '--customize-hook=mkdir -p "$1/opt/sandbox" "$1/scratch" && chmod 1777 "$1/scratch"',
            f"--customize-hook=copy-in {' '.join(str(Path(tmp) / p.name) for p in SCRIPTS)} /opt/sandbox",
            '--customize-hook=chmod 0644 "$1"/opt/sandbox/*.py',
            DEBIAN_SUITE, str(tarball), DEBIAN_MIRROR,
        ]
        log(f"mmdebstrap {DEBIAN_SUITE} ({', '.join(DEBIAN_PACKAGES)}) ...")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SandboxError(f"mmdebstrap failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        repo, version = tag.split(":")
        log(f"docker import -> {tag}")
        client.api.import_image_from_file(str(tarball), repository=repo, tag=version, changes=list(IMPORT_CHANGES))
    if not image_exists(tag, client):
        raise SandboxError(f"docker import did not produce {tag}")
    log(f"built {tag}")
    return tag
