#!/usr/bin/env bash
# Build the Kubernetes parts of `make test-k8s` from their Go modules: each folder here is a Go module of ours
# whose `tool` lines name the programs to build (control-plane: kube-apiserver, kube-controller-manager and
# kube-scheduler; etcd; helm; kwok; spark-operator). Binaries go to .deps/k8s/<folder>-<version>/, keyed by the
# version of the module that provides them, so a second run builds nothing; the Go module and build caches go
# to .deps/go/. A folder that cannot be built leaves .deps/k8s/<folder>.error with the reason (the tests print
# it when they skip) and the script goes on with the others. It always exits 0: what is missing is reported by
# the tests that need it.
#
#   tools/k8s/build.sh                 build what is missing, print one line per folder
#   tools/k8s/build.sh --print-dir X   the binary folder of X (built or not)
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="$REPO/.deps/k8s"
COMPONENTS=(etcd control-plane helm kwok spark-operator)

export GOMODCACHE="$REPO/.deps/go/mod" GOCACHE="$REPO/.deps/go/build" GOFLAGS="-modcacherw -trimpath"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
GO="$(command -v go || true)"
[[ -z "$GO" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
mkdir -p "$OUT"

# What the programs report as their own version, which the official builds set with -X: kube-apiserver's
# /version (Helm checks a chart's kubeVersion against it) and `helm version`.
version_ldflags() {
    local component=$1 version=$2 minor
    case "$component" in
        control-plane)
            minor="$(echo "$version" | cut -d. -f2)"
            local v=k8s.io/component-base/version
            echo "-X $v.gitVersion=$version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" ;;
        helm) echo "-X helm.sh/helm/v4/internal/version.version=$version" ;;
    esac
}

# The packages a folder's go.mod names on `tool` lines, one per line (a `tool ( ... )` block or single lines).
tools_of() {
    awk '$1 == "tool" && $2 == "(" {block = 1; next} block && $1 == ")" {block = 0; next}
         block && $1 !~ /^\/\// {print $1} $1 == "tool" && $2 != "(" {print $2}' "$HERE/$1/go.mod"
}

# The name the tests call a program by.
program_name() {
    case "$1" in
        go.etcd.io/etcd/server/v3) echo etcd ;;
        *) basename "$1" ;;
    esac
}

# The version of the module that provides the folder's first tool, as its go.mod requires it (the longest module
# path that is a prefix of the tool's package): the cache key of its binaries. Read from go.mod, so it needs no Go.
version_of() {
    local pkg
    pkg="$(tools_of "$1" | head -1)"
    awk -v pkg="$pkg" '
        $1 == "require" && $2 == "(" {block = 1; next}
        block && $1 == ")" {block = 0; next}
        { m = ""; v = "" }
        block {m = $1; v = $2}
        $1 == "require" && $2 != "(" {m = $2; v = $3}
        m != "" && (pkg == m || index(pkg, m "/") == 1) && length(m) > best {best = length(m); version = v}
        END {if (version == "") exit 1; print version}' "$HERE/$1/go.mod"
}

if [[ "${1:-}" == "--print-dir" ]]; then
    echo "$OUT/$2-$(version_of "$2")"
    exit 0
fi

if [[ -z "$GO" ]]; then
    for c in "${COMPONENTS[@]}"; do echo "no Go toolchain on PATH or in /usr/local/go" > "$OUT/$c.error"; done
    echo "k8s: no Go toolchain: nothing built (the tests skip, printing this)" >&2
    exit 0
fi
need="$(awk '$1 == "go" {print $2; exit}' "$HERE/control-plane/go.mod")"
have="$("$GO" env GOVERSION | sed 's/^go//')"
if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]]; then
    for c in "${COMPONENTS[@]}"; do echo "Go $have is older than the $need these modules need" > "$OUT/$c.error"; done
    echo "k8s: Go $have is older than $need: nothing built (the tests skip, printing this)" >&2
    exit 0
fi

for c in "${COMPONENTS[@]}"; do
    dir="$HERE/$c"
    rm -f "$OUT/$c.error"
    if ! version="$(version_of "$c")"; then
        echo "$c's go.mod does not require the module of its tool" > "$OUT/$c.error"
        echo "k8s: $c: NOT BUILT (see $OUT/$c.error)" >&2
        continue
    fi
    bin="$OUT/$c-$version"
    tools=$(tools_of "$c")
    missing=0
    for t in $tools; do [[ -x "$bin/$(program_name "$t")" ]] || missing=1; done
    if [[ $missing == 0 ]]; then
        echo "k8s: $c $version: cached in $bin"
        continue
    fi
    start=$SECONDS
    mkdir -p "$bin.partial"
    # shellcheck disable=SC2086
    if (cd "$dir" && "$GO" build -ldflags="-s -w $(version_ldflags "$c" "$version")" -o "$bin.partial/" $tools) > "$OUT/$c.log" 2>&1; then
        # go build names a program after its package's folder, less a major-version suffix (etcd's is "server").
        for t in $tools; do
            built="$(basename "$(echo "$t" | sed -E 's#/v[0-9]+$##')")"
            [[ "$built" == "$(program_name "$t")" ]] || mv "$bin.partial/$built" "$bin.partial/$(program_name "$t")"
        done
        rm -rf "$bin" && mv "$bin.partial" "$bin"
        echo "k8s: $c $version: built in $((SECONDS - start)) s into $bin"
    else
        rm -rf "$bin.partial"
        { echo "go build of $c $version failed:"; tail -20 "$OUT/$c.log"; } > "$OUT/$c.error"
        echo "k8s: $c $version: NOT BUILT after $((SECONDS - start)) s (see $OUT/$c.error)" >&2
    fi
done
# Once every part is built, Go's build cache (some 6 GB) serves nothing: the binaries are kept by version. The
# module cache stays (a new version builds from it; the tests read the operator's CRDs there).
if ! compgen -G "$OUT/*.error" > /dev/null && [[ -n "$(find "$GOCACHE" -mindepth 1 -type d -print -quit 2> /dev/null)" ]]; then
    "$GO" clean -cache && echo "k8s: every part built; Go's build cache emptied"
fi
exit 0
