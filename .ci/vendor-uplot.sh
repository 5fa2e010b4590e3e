#!/usr/bin/env bash
# Replace the vendored chart library with uPlot VERSION from the npm registry (npm checks the
# tarball against the registry's integrity hash), and rewrite the manifest the tests check.
# Usage: bash .ci/vendor-uplot.sh 1.6.32
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: bash .ci/vendor-uplot.sh VERSION}
target=mlreg/server/ui/static/vendor/uplot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent --json "uplot@$version" > pack.json && tar xzf "uplot-$version.tgz")
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$target/"
python3 - "$work/pack.json" "$target" "$version" <<'PY'
import hashlib, json, pathlib, sys
pack = json.loads(pathlib.Path(sys.argv[1]).read_text())[0]
target = pathlib.Path(sys.argv[2])
files = {
    name: hashlib.sha256((target / name).read_bytes()).hexdigest()
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE")
}
manifest = {
    "package": "uplot",
    "version": sys.argv[3],
    "licence": "MIT",
    "tarball": pack["filename"],
    "integrity": pack["integrity"],
    "files": files,
}
(target / "VENDOR.json").write_text(json.dumps(manifest, indent=2) + "\n")
PY
echo "vendored uplot $version into $target"
