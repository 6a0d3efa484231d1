#!/bin/sh
# nexus-entrypoint — the container image's entry point: runs its arguments (a nexus-*
# daemon's command line) after replacing @POD_IP@ in them with this pod's IP address.
# A backend advertises its data address to the frontends (--advertise @POD_IP@:7001);
# the pod's IP is $POD_IP when the manifest sets it (Kubernetes' downward API,
# status.podIP), else what /etc/hosts maps the pod's hostname to (Kubernetes and
# podman both write that line).
set -eu
if [ $# = 0 ]; then
    echo "nexus-entrypoint: give a command, e.g. nexus-scheduler /etc/nexus/experiment/experiment.yml" >&2
    exit 2
fi
ip=${POD_IP:-}
if [ -z "$ip" ]; then
    ip=$(hostname -i 2>/dev/null | awk '{print $1}')
fi
n=$#
while [ $n -gt 0 ]; do
    a=$1; shift; n=$((n - 1))
    case "$a" in
        *@POD_IP@*)
            if [ -z "$ip" ]; then
                echo "nexus-entrypoint: '$a' needs the pod's IP: set POD_IP (no hostname -i answer)" >&2
                exit 2
            fi
            a=$(printf '%s' "$a" | sed "s/@POD_IP@/$ip/g") ;;
    esac
    set -- "$@" "$a"
done
exec "$@"
