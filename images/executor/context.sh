#!/usr/bin/env bash
# The build context of the executor's own image: wheels of every dependency (deps/) and of the
# executor built from the repository (app/), so the image installs them with no index to reach
# (a build container trusts no proxy's CA and may reach no index at all).
# Used by `executor images build executor` (`make deploy-images`): context.sh CONTEXT REPOSITORY.
set -euo pipefail
out="$1"
repo="$2"
python="${PYTHON:-python3}"
mkdir -p "$out/deps" "$out/app"
# Wheels for the image's interpreter (Debian bookworm's CPython 3.11, glibc 2.36, this machine's
# architecture), whatever Python runs this script; 3.11.2 is bookworm's, for markers such as
# redis's `python_full_version < "3.11.3"`.
"$python" - "$repo/pyproject.toml" >"$out/requirements.txt" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
arch="$(uname -m)"
platforms=(--platform "manylinux2014_$arch")
for glibc in $(seq 17 36); do platforms+=(--platform "manylinux_2_${glibc}_$arch"); done
download() {
  "$python" -m pip download --quiet --disable-pip-version-check --dest "$out/deps" \
    --only-binary=:all: --implementation cp --python-version 3.11.2 --abi cp311 --abi abi3 \
    --abi none "${platforms[@]}" -r "$1"
}
download "$out/requirements.txt"
# what only the image's interpreter needs (markers judged for 3.11.2): see missing.py
for _ in 1 2 3 4 5; do
  "$python" "$(dirname "$0")/missing.py" "$out/deps" "$out/requirements.txt" 3.11.2 "$arch" \
    >"$out/missing.txt"
  [ -s "$out/missing.txt" ] || break
  download "$out/missing.txt"
done
[ ! -s "$out/missing.txt" ] || { echo "context.sh: still missing: $(cat "$out/missing.txt")" >&2; exit 1; }
rm -f "$out/missing.txt" "$out/missing.py"
# the executor's wheel, built from a copy of its sources (the build leaves nothing in the repository)
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
cp -r "$repo/pyproject.toml" "$repo/README.md" "$repo/executor" "$src/"
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$out/app" "$src"
rm -f "$out/requirements.txt"
ls "$out/app"/executor-*.whl >/dev/null
