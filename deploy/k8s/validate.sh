#!/usr/bin/env bash
# Checks the Kubernetes manifests: renders deploy/k8s/base and every overlay with kustomize, then
# validates every object against the Kubernetes API's JSON schemas with kubeconform -strict
# (unknown fields are errors), for the oldest and the newest Kubernetes version we support.
#
#   bash deploy/k8s/validate.sh [K8S_DIR]     # default: the directory of this script
#
# Installs its own pinned tools on a fresh machine, from package registries only (no GitHub):
# kustomize and kubeconform with `go install` from the Go module proxy, and the schemas from the
# PyPI wheel of kubernetes-validate (hash-pinned; deploy/k8s/schemas.py rewrites its references to
# local files). They are kept in $SIP_FHIR_K8S_TOOLS (default ~/.cache/sip-fhir/k8s-tools).
# SIP_FHIR_K8S_OUT=DIR also writes the rendered manifests there (DIR/<name>.yaml), for the tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
k8s_dir="$(cd "${1:-$here}" && pwd)"

KUSTOMIZE_VERSION=v5.8.1
KUBECONFORM_VERSION=v0.8.0
# Oldest: the first release with every field used here (lifecycle sleep, CronJob timeZone) on by
# default and still in support at some vendors; newest: the newest the schema package has.
K8S_VERSIONS=(1.31.0 1.37.0)

tools="${SIP_FHIR_K8S_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sip-fhir/k8s-tools}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
	if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi
mkdir -p "$tools/bin"
exec 9>"$tools/.lock"
flock 9 # one installer at a time

go_tool() { # name module version
	local name=$1 module=$2 version=$3
	if [ "$(cat "$tools/bin/.$name.version" 2>/dev/null)" != "$version" ] || [ ! -x "$tools/bin/$name" ]; then
		command -v go >/dev/null || { echo "validate.sh: go is needed to install $name" >&2; exit 1; }
		echo "==> go install $module@$version"
		GOBIN="$tools/bin" GOFLAGS=-mod=mod go install "$module@$version"
		echo "$version" >"$tools/bin/.$name.version"
	fi
}
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

schemas="$tools/schemas"
want="$(grep -v '^#' "$here/schemas-requirements.txt") ${K8S_VERSIONS[*]}"
if [ "$(cat "$schemas/.version" 2>/dev/null)" != "$want" ]; then
	echo "==> Kubernetes schemas from PyPI (kubernetes-validate) for ${K8S_VERSIONS[*]}"
	download="$(mktemp -d)"
	trap 'rm -rf "$download"' EXIT
	"$python" -m pip download -q --no-deps --require-hashes -r "$here/schemas-requirements.txt" -d "$download"
	rm -rf "$schemas"
	"$python" "$here/schemas.py" "$download"/kubernetes_validate-*.whl "$schemas" "${K8S_VERSIONS[@]}"
	echo "$want" >"$schemas/.version"
fi
exec 9>&-

out="${SIP_FHIR_K8S_OUT:-}"
rendered="$(mktemp -d)"
trap 'rm -rf "$rendered" ${download:+"$download"}' EXIT
for dir in "$k8s_dir/base" "$k8s_dir"/overlays/*/; do
	dir="${dir%/}"
	name="$(basename "$dir")"
	[ "$dir" = "$k8s_dir/base" ] || name="overlay-$name"
	echo "==> kustomize build ${dir#"$k8s_dir"/}"
	"$tools/bin/kustomize" build "$dir" >"$rendered/$name.yaml"
done
status=0
for version in "${K8S_VERSIONS[@]}"; do
	# One run per version for all renderings: kubeconform compiles each schema once per run.
	echo "==> kubeconform -strict, Kubernetes $version: $(cd "$rendered" && echo *.yaml)"
	"$tools/bin/kubeconform" -strict -summary -kubernetes-version "$version" \
		-schema-location "$schemas/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
		"$rendered"/*.yaml || status=1
done
if [ -n "$out" ]; then mkdir -p "$out" && cp "$rendered"/*.yaml "$out/"; fi
exit "$status"
