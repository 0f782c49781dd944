#!/usr/bin/env bash
# Bring up (and take down) the container engines the test suite runs against.
#
#   bash scripts/engines.sh start   install Debian's docker.io if missing, start dockerd if no
#                                   daemon answers, create the local test image bb:latest
#   bash scripts/engines.sh stop    undo what `start` did (only what it did)
#   bash scripts/engines.sh status  say what runs
#
# Both verbs are idempotent. Nothing is pulled from a registry: bb:latest is a rootfs made of
# Debian's busybox-static, imported with `docker import`.
set -euo pipefail

STATE_DIR="${COMPOSER_ENGINES_STATE:-${TMPDIR:-/tmp}/composer-engines}"
SOCKET="/var/run/docker.sock"
TEST_IMAGE="bb:latest"
PACKAGES=(docker.io busybox-static tini docker-registry iproute2 nftables iptables libseccomp2 runc procps)

log() { printf 'engines: %s\n' "$*" >&2; }

need_packages() {
    local missing=()
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "missing packages ${missing[*]} and not root: install them with apt-get"
        return 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$STATE_DIR/apt.log" 2>&1; then
        apt-get update >>"$STATE_DIR/apt.log" 2>&1
        apt-get install -y --no-install-recommends "${missing[@]}" >>"$STATE_DIR/apt.log" 2>&1 || {
            cat "$STATE_DIR/apt.log" >&2
            return 1
        }
    fi
}

daemon_answers() {
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start_dockerd() {
    if daemon_answers; then
        log "a Docker daemon already answers; leaving it alone"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "no Docker daemon answers and not root: cannot start dockerd"
        return 1
    fi
    local logfile
    logfile="$(mktemp "${TMPDIR:-/tmp}/dockerd.XXXXXX.log")"
    echo "$logfile" >"$STATE_DIR/dockerd.logpath"
    log "starting dockerd (log: $logfile)"
    # setsid: the daemon must outlive this script and not get its terminal's signals.
    setsid dockerd --host "unix://$SOCKET" >"$logfile" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/dockerd.pid"
    local i
    for i in $(seq 1 120); do
        if [ -S "$SOCKET" ] && daemon_answers; then
            log "dockerd is up ($(docker version --format '{{.Server.Version}}'))"
            return 0
        fi
        if ! kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null; then
            log "dockerd exited during start-up; its log:"
            tail -n 40 "$logfile" >&2
            rm -f "$STATE_DIR/dockerd.pid"
            return 1
        fi
        sleep 0.5
    done
    log "dockerd did not answer within 60 s; its log:"
    tail -n 40 "$logfile" >&2
    return 1
}

make_test_image() {
    if docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    local root
    root="$(mktemp -d "${TMPDIR:-/tmp}/bb-rootfs.XXXXXX")"
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home/app" "$root/var/www" \
        "$root/proc" "$root/sys" "$root/dev"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
    chown 1000:1000 "$root/home/app"
    tar --numeric-owner -C "$root" -cf "$root.tar" .
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["sh"]' \
        "$root.tar" "$TEST_IMAGE" >/dev/null
    rm -rf "$root" "$root.tar"
    touch "$STATE_DIR/image.created"
    log "created $TEST_IMAGE"
}

cmd_start() {
    mkdir -p "$STATE_DIR"
    need_packages
    start_dockerd
    make_test_image
}

cmd_stop() {
    if [ ! -d "$STATE_DIR" ]; then
        log "nothing to stop"
        return 0
    fi
    if [ -f "$STATE_DIR/image.created" ] && daemon_answers; then
        docker image rm -f "$TEST_IMAGE" >/dev/null 2>&1 || true
        log "removed $TEST_IMAGE"
    fi
    if [ -f "$STATE_DIR/dockerd.pid" ]; then
        local pid
        pid="$(cat "$STATE_DIR/dockerd.pid")"
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping dockerd ($pid)"
            kill -TERM "$pid"
            local i
            for i in $(seq 1 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            if kill -0 "$pid" 2>/dev/null; then
                log "dockerd did not stop in 30 s; killing it"
                kill -KILL "$pid" || true
            fi
        fi
    fi
    if [ -f "$STATE_DIR/dockerd.logpath" ]; then
        rm -f "$(cat "$STATE_DIR/dockerd.logpath")"
    fi
    rm -rf "$STATE_DIR"
}

cmd_status() {
    if daemon_answers; then
        echo "docker: $(docker version --format '{{.Server.Version}}')"
    else
        echo "docker: not answering"
    fi
    if daemon_answers && docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
        echo "$TEST_IMAGE: present"
    else
        echo "$TEST_IMAGE: absent"
    fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
