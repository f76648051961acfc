# Shared by the benchmark scripts (sourced, not run): building berth, starting a throwaway `berth server` on
# free loopback ports with its own bridge, subnet, cgroup parent and data dir, pushing apps, measuring with wrk.
# The sourcing script sets `bench` (its short name, used in messages and resource names) and `set -euo pipefail`.

die() { echo "${bench:-bench}: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
git_c() { git -C "$1" -c user.name=bench -c user.email=bench@berth.invalid "${@:2}"; }

# Sets `berth`: BERTH_BIN if given, else a release build of target/release/berth.
bench_berth() {
    [ "$(id -u)" -eq 0 ] || die "needs root: sudo $0"
    if [ -n "${BERTH_BIN:-}" ]; then
        berth=$BERTH_BIN
    else
        echo "-----> Building berth (release)" >&2
        cargo build --release --locked --bin berth >/dev/null
        berth=$PWD/target/release/berth
    fi
}

# bench_server NAME SUBNET_SECOND_OCTET: starts `berth server` in a new temp dir (`work`) with the tests' stack
# cache when there is one (STACK_CACHE=DIR to use another), exports BERTH_API, sets `api`, `router`, `admin`,
# `server_pid`, and stops it and removes `work` when the script exits.
bench_server() {
    local name=$1 octet=$2 tag stack_cache
    work=$(mktemp -d "/tmp/berth-bench-$name.XXXXXX")
    api=127.0.0.1:$(free_port); router=127.0.0.1:$(free_port)
    tag=$(printf '%04x' $((RANDOM % 65536)))
    server_pid=
    trap bench_cleanup EXIT
    # debootstrap and apt take minutes: `berth stack build` reuses the cache if its package list is current.
    stack_cache=${STACK_CACHE:-$PWD/target/tmp/berth-stack-cache}
    mkdir -p "$work/data"
    if [ -f "$stack_cache/stacks/bookworm.json" ]; then
        cp -a "$stack_cache/images" "$stack_cache/stacks" "$work/data/"
    fi
    echo "-----> Preparing the stack (not timed)" >&2
    "$berth" stack build --data-dir "$work/data" | tail -n 1 >&2
    "$berth" server --data-dir "$work/data" --api-addr "$api" --router-addr "$router" --domain bench.test \
        --bridge "bt$name$tag" --subnet "10.$octet.$((100 + RANDOM % 150)).0/24" \
        --cgroup-parent "berth-$name-$tag" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 300); do curl -fs "http://$api/healthz" >/dev/null && break; sleep 0.1; done
    curl -fs "http://$api/healthz" >/dev/null || { tail -n 20 "$work/server.log" >&2; die "the server did not start"; }
    export BERTH_API=http://$api
    admin=$(cat "$work/data/admin.token")
}

bench_cleanup() {
    if [ -n "${server_pid:-}" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}

# bench_push TOKEN APP DIR: creates APP, makes a git repo of DIR at $work/APP and pushes it.
bench_push() {
    local token=$1 app=$2 dir=$3 repo=$work/$2
    BERTH_TOKEN=$token "$berth" apps create "$app" >/dev/null
    cp -r "$dir" "$repo"
    rm -rf "$repo/node_modules"
    git -C "$repo" init -q -b main
    git_c "$repo" add -A
    git_c "$repo" commit -qm v1
    echo "-----> Pushing $app" >&2
    git -C "$repo" push -q "http://user:$token@$api/git/$app.git" main 2>"$work/push-$app.log" ||
        { tail -n 20 "$work/push-$app.log" >&2; die "push of $app failed"; }
}

# wrk_summary FILE: wrk --latency output → "p50_ms p99_ms requests failed" (failed: non-2xx/3xx and socket errors).
wrk_summary() {
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        /requests in/ { requests = $1 }
        /Non-2xx/ { errors += $NF } /Socket errors/ { gsub(",", ""); errors += $4 + $6 + $8 + $10 }
        END { printf "%.2f %.2f %d %d\n", p50, p99, requests, errors }' "$1"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
