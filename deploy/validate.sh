#!/usr/bin/env bash
# Offline checks of the deployment files in deploy/ (docs/deployment.md), run by
# .ci/test; needs no cluster and no Docker:
#   1. every manifest in deploy/k8s is valid Kubernetes (kubernetes-validate --strict,
#      schemas bundled with the package; installed into .venv on first use), and so is
#      the kustomize output when kubectl is on PATH;
#   2. the binaries deploy/Dockerfile builds are [[bin]] targets of the workspace, and
#      the Cargo profile it builds with exists;
#   3. every `sluice serve` flag master.yaml (and the Dockerfile's CMD) passes is one of
#      master/src/server.rs's, and the probes' path is a route of the master;
#   4. the agent's flags (agent.yaml) are `sluice agent`'s (master/src/agent.rs).
# Exits non-zero on the first kind of failure it finds (after reporting all of it).
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.30.0
VALIDATOR_VERSION=1.37.0
failures=0
fail() { echo "deploy/validate.sh: FAIL: $*" >&2; failures=$((failures + 1)); }
warn() { echo "deploy/validate.sh: warning: $*" >&2; }

# --- 1. Kubernetes schemas -----------------------------------------------------------------
# The same .venv as .ci/test (DuckDB, schemathesis, moto); only this package is added.
if [[ ! -x .venv/bin/kubernetes-validate ]]; then
  echo "installing kubernetes-validate $VALIDATOR_VERSION into .venv (manifest schemas, offline)"
  [[ -x .venv/bin/python3 ]] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "kubernetes-validate==$VALIDATOR_VERSION"
fi
validate=(.venv/bin/kubernetes-validate --strict --quiet --kubernetes-version "$K8S_VERSION")

manifests=()
for f in deploy/k8s/*.yaml; do
  # kustomization.yaml is kustomize's own file, not a Kubernetes resource.
  [[ "$(basename "$f")" == kustomization.yaml ]] && continue
  manifests+=("$f")
done
[[ ${#manifests[@]} -gt 0 ]] || fail "no manifests in deploy/k8s"
"${validate[@]}" "${manifests[@]}" || fail "a manifest in deploy/k8s does not validate (above)"

# Every file kustomization.yaml lists exists, and what it renders validates too.
while read -r listed; do
  [[ -f "deploy/k8s/$listed" ]] || fail "kustomization.yaml lists $listed, which is missing"
done < <(sed -n '/^resources:/,/^[a-z]/s/^  - \(.*\)$/\1/p' deploy/k8s/kustomization.yaml)
if command -v kubectl >/dev/null 2>&1; then
  rendered=$(kubectl kustomize deploy/k8s) || fail "kubectl kustomize deploy/k8s failed"
  [[ -z "${rendered:-}" ]] || "${validate[@]}" - <<<"$rendered" ||
    fail "the output of kubectl kustomize deploy/k8s does not validate (above)"
else
  echo "deploy/validate.sh: kubectl not found: the kustomize output is not rendered"
fi

# --- 2. The Dockerfile's binaries and profile --------------------------------------------
bins=$(grep -oE -- '--bin [a-z0-9_-]+' deploy/Dockerfile | awk '{print $2}' | sort -u)
[[ -n "$bins" ]] || fail "deploy/Dockerfile builds no --bin"
for bin in $bins; do
  # A [[bin]] section whose name is $bin, in a workspace crate.
  if ! grep -A2 -h '^\[\[bin\]\]' -- */Cargo.toml */*/Cargo.toml 2>/dev/null |
    grep -qx "name = \"$bin\""; then
    fail "deploy/Dockerfile builds --bin $bin, which no workspace Cargo.toml declares"
  fi
  grep -q "target/dist/$bin" deploy/Dockerfile || fail "deploy/Dockerfile does not install $bin"
done
profile=$(grep -oE -- '--profile [a-z0-9_-]+' deploy/Dockerfile | awk '{print $2}' | head -1)
if [[ -n "$profile" && "$profile" != release && "$profile" != dev ]]; then
  grep -q "^\[profile\.$profile\]" Cargo.toml ||
    fail "deploy/Dockerfile builds with --profile $profile, which Cargo.toml lacks"
fi

# --- 3. `sluice serve`'s flags -------------------------------------------------------------
# The long flags clap derives from a file's `#[arg(long…)]` fields: the field's name in
# kebab case (`pub data_dir:` → data-dir) unless the attribute names it
# (`long = "allow-path"`). Attributes are one line each in this code base.
long_flags() { # file...
  awk '
    /#\[arg\(/ { attr = $0; next }
    /^[[:space:]]*pub [a-z0-9_]+:/ {
      if (attr ~ /long/) {
        if (match(attr, /long = "[^"]+"/)) {
          print substr(attr, RSTART + 8, RLENGTH - 9)
        } else {
          name = $0
          sub(/^[[:space:]]*pub /, "", name); sub(/:.*/, "", name); gsub(/_/, "-", name)
          print name
        }
      }
      attr = ""
    }' "$@" | sort -u
}
serve_known=$(long_flags master/src/server.rs)
agent_known=$(long_flags master/src/agent.rs)
known() { grep -qxF -- "${1#--}" <<<"$2"; }
serve_flags=$(
  {
    grep -oE -- '^\s*- --[a-z0-9-]+' deploy/k8s/master.yaml | grep -oE -- '--[a-z0-9-]+'
    grep -E '^CMD \["serve"' deploy/Dockerfile | grep -oE -- '"--[a-z0-9-]+"' | tr -d '"'
  } | sort -u
)
grep -qE -- '^\s*- serve$' deploy/k8s/master.yaml || fail "master.yaml does not run \`sluice serve\`"
for flag in $serve_flags; do
  if known "$flag" "$serve_known"; then
    continue
  else
    fail "master.yaml or the Dockerfile passes sluice serve $flag, which master/src/server.rs lacks"
  fi
done
for path in $(grep -oE '^\s*path: /[a-z]+' deploy/k8s/master.yaml | awk '{print $2}' | sort -u); do
  grep -rqE "path = \"$path\"" master/src/api ||
    fail "master.yaml probes $path, which is not a route in master/src/api"
done

# --- 4. `sluice agent`'s flags --------------------------------------------------------------
grep -qE -- '^\s*- agent$' deploy/k8s/agent.yaml || fail "agent.yaml does not run \`sluice agent\`"
for flag in $(grep -oE -- '^\s*- --[a-z0-9-]+' deploy/k8s/agent.yaml | grep -oE -- '--[a-z0-9-]+' | sort -u); do
  known "$flag" "$agent_known" || fail "agent.yaml passes sluice agent $flag, which master/src/agent.rs lacks"
done

if [[ $failures -gt 0 ]]; then
  echo "deploy/validate.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "deploy/validate.sh: ${#manifests[@]} manifests valid for Kubernetes $K8S_VERSION; Dockerfile binaries and master flags match the code"
