#!/bin/bash
# serving_profiles.sh RUN_OUT BASE_DIR DEST_DIR — profiles through the backend's own path: for
# every profile in BASE_DIR (a device call's host-I/O profiles), nexus-profile --from-logs with
# every batch log of RUN_OUT's exclusive sweeps (device_fidelity.sh's OUT/fid.tar.gz, unpacked:
# fig14, fig14-tfs, mix, game; not fig14-tfc, whose batches slow each other down). A model no
# log has enough batches of keeps BASE_DIR's profile. Runs here (a plain build's nexus-profile).
set -euo pipefail
cd "$(dirname "$0")/../../.."
run=$1 base=$2 dest=$3
B=${NX_BUILD:-build}/bin
mkdir -p "$dest"
mapfile -t logs < <(find "$run"/{fig14,fig14-tfs,mix,game} -name 'backend*.batches.csv' 2>/dev/null | sort)
[ ${#logs[@]} -gt 0 ] || { echo "serving_profiles: no batch logs under $run" >&2; exit 1; }
for f in "$base"/*-fp32.yml; do
    n=$(basename "$f")
    if $B/nexus-profile --from-logs "$f" --out "$dest/$n" --quiet "${logs[@]}" 2>"$dest/.err"; then
        echo "serving_profiles: $n from the batch logs"
    else
        cp "$f" "$dest/$n"
        echo "serving_profiles: $n kept ($(head -1 "$dest/.err"))"
    fi
done
rm -f "$dest/.err"
[ -f "$base/modeldb.yml" ] && cp "$base/modeldb.yml" "$dest/"
echo "serving_profiles: ${#logs[@]} logs"
