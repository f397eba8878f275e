#!/bin/sh
# Start or stop a Docker engine for the tests, by pid, never by name.
#   docker/dockerd.sh start PIDFILE   start dockerd unless an engine already answers; record its pid
#   docker/dockerd.sh stop PIDFILE    stop the dockerd recorded in PIDFILE (if any), then forget it
# Exit status of start: 0 when an engine answers (ours or one already running), 3 when none could start
# (the reason is printed). dockerd runs with --iptables=false --storage-driver=vfs: that works on hosts
# without a usable overlayfs or iptables, such as CI virtual machines.
set -u
cmd=${1:?usage: dockerd.sh start|stop PIDFILE}
pidfile=${2:?usage: dockerd.sh start|stop PIDFILE}
log=${pidfile%.pid}.log
engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
    if engine_answers; then
        echo "docker engine already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null)); using it"
        return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        echo "cannot start a docker engine: dockerd is not installed"; return 3
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "cannot start a docker engine: dockerd needs root and no engine is running"; return 3
    fi
    mkdir -p "$(dirname "$pidfile")"
    setsid dockerd --iptables=false --storage-driver=vfs >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    i=0
    while [ $i -lt 60 ]; do
        if engine_answers; then echo "started dockerd (pid $(cat "$pidfile"), log $log)"; return 0; fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then break; fi
        sleep 0.5; i=$((i + 1))
    done
    echo "cannot start a docker engine: dockerd did not answer within 30 s; its log says:"
    tail -n 15 "$log" | sed 's/^/    /'
    stop
    return 3
}

stop() {
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
        echo "stopped dockerd (pid $pid)"
    fi
    rm -f "$pidfile"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: dockerd.sh start|stop PIDFILE" >&2; exit 2 ;;
esac
