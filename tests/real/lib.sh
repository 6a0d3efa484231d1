# lib.sh — shell helpers for tests/real/*.sh (sourced).
#
# start NAME CMD... : run CMD in the background with --ready-fd 3 on a FIFO
# and wait (30 s at most) for its "ready ADDR" line; sets READY=ADDR and
# LASTPID, appends the pid to PIDS; logs go to $T/NAME.log. A daemon that
# dies first closes the FIFO: the read fails at once, no sleeping.
PIDS=()
start() {
    local name=$1; shift
    mkfifo $T/$name.ready
    "$@" --ready-fd 3 3>$T/$name.ready 2>$T/$name.log &
    LASTPID=$!
    PIDS+=($LASTPID)
    local line=""
    if ! read -t 30 line < $T/$name.ready || [ "${line%% *}" != ready ]; then
        echo "$name did not become ready"; cat $T/$name.log; exit 1
    fi
    READY=${line#ready }
}
# stop_all: SIGTERM every daemon started, each must exit 0
stop_all() {
    local p rc=0
    for p in "${PIDS[@]}"; do kill -TERM $p 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait $p || rc=1; done
    PIDS=()
    return $rc
}
