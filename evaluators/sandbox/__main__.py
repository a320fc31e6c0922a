"""``python -m evaluators.sandbox build|tag|check``: build the sandbox image; print its tag; self-test a backend."""

from __future__ import annotations

import argparse
import sys

from evaluators.sandbox import BACKENDS, SandboxError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluators.sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the sandbox image (Dockerfile if a registry answers, else mmdebstrap)")
    b.add_argument("--method", choices=("auto", "dockerfile", "offline"), default="auto")
    b.add_argument("--force", action="store_true", help="rebuild even if the tagged image exists")
    sub.add_parser("tag", help="print the image tag the current sources expect")
    c = sub.add_parser("check", help="self-test: canonical solutions pass, a wrong one fails, no network")
    c.add_argument("--sandbox", choices=("auto", *sorted(BACKENDS)), default="auto")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "build":
            from evaluators.sandbox.image import build_image

            print(build_image(method=args.method, force=args.force))
            return 0
        if args.cmd == "tag":
            from evaluators.sandbox.image import image_tag

            print(image_tag())
            return 0
        from evaluators.sandbox.selfcheck import self_check

        ok = self_check(args.sandbox)
        return 0 if ok else 1
    except SandboxError as e:
        print(f"sandbox error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
