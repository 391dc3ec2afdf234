"""Print what the wheels in DIR require on the image's Python and DIR does not hold.

`pip download --python-version` picks wheels for another interpreter but judges environment
markers by the one running it: a requirement only Python 3.11.2 has (redis needs async-timeout
below 3.11.3) is skipped on a newer host. This reads each wheel's Requires-Dist and judges the
markers as the image's interpreter would (and the extras asked for, such as uvicorn[standard]);
context.sh downloads what it prints until it prints nothing.

Usage: python3 missing.py DIR REQUIREMENTS_FILE PYTHON_FULL_VERSION MACHINE
"""

from __future__ import annotations

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pip's own copy, always there where pip is
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]


def main(wheels: Path, requirements: Path, full_version: str, machine: str) -> None:
    environment = {
        "python_version": ".".join(full_version.split(".")[:2]),
        "python_full_version": full_version,
        "implementation_name": "cpython",
        "implementation_version": full_version,
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
        "os_name": "posix",
    }
    held: dict[str, list[Requirement]] = {}
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
        held[canonicalize_name(metadata["Name"])] = [
            Requirement(text) for text in metadata.get_all("Requires-Dist") or []
        ]
    wanted = [Requirement(line) for line in requirements.read_text().split("\n") if line.strip()]
    extras: dict[str, set[str]] = {}
    seen: set[str] = set()
    missing: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        asked = extras.setdefault(name, set())
        new_extras = set(requirement.extras) - asked
        if name in seen and not new_extras:
            continue
        seen.add(name)
        asked |= new_extras
        if name not in held:
            missing.add(str(requirement.name) + (f"[{','.join(sorted(asked))}]" if asked else ""))
            continue
        for dependency in held[name]:
            marker = dependency.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in ("", *asked)
            ):
                wanted.append(dependency)
    if missing:
        print("\n".join(sorted(missing)))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
