#!/bin/busybox sh
# /init of the emulated board (cross/board/vivid-test.sh). It loads the vivid
# camera, runs throatseg against it three times, writes everything to the
# virtio disk as a tar archive and powers off. Each step's exit status lands in
# /out/*.rc; the host judges the results.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /out /tmp

echo "board: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs"

finish() {
    echo "board: writing results"
    tar cf /dev/vda -C /out . && sync
    echo "board: done"
    poweroff -f
}

for module in $(cat /modules.order); do
    insmod "/modules/$module" || { echo "board: insmod $module failed"; finish; }
done
# One video capture node only, so the camera is /dev/video0 after every rebind.
insmod /modules/vivid.ko n_devs=1 node_types=0x1 || { echo "board: insmod vivid failed"; finish; }
for _ in $(seq 50); do [ -e /dev/video0 ] && break; sleep 0.1; done
[ -e /dev/video0 ] || { echo "board: vivid created no /dev/video0"; finish; }
if [ -e /dev/vda ]; then :; else echo "board: no result disk /dev/vda"; poweroff -f; fi

export RUST_LOG=info
config=/board/vivid.toml
captures=$(cat /board/captures)

# 0. Real images through the whole pipeline, to compare with the host's masks.
echo "board: segment"
throatseg segment /board/images --out /out/segment --mode full >/dev/null 2>/out/segment.log
echo $? >/out/segment.rc

# 1. A live run on the camera, recorded.
echo "board: live run"
throatseg run --config $config --out /out/live --max-captures "$captures" \
    --record /out/live.tsrec --json >/out/live.json 2>/out/live.log
echo $? >/out/live.rc

# 2. The recording replayed through the same pipeline.
echo "board: replay"
throatseg run --config $config --out /out/replay --source replay:/out/live.tsrec \
    --json >/out/replay.json 2>/out/replay.log
echo $? >/out/replay.rc

# 3. The camera disappears mid-stream and comes back: the driver is unbound
# from its platform device after the first segmented capture, and bound again.
echo "board: unplug run"
throatseg run --config $config --out /out/unplug --max-captures "$captures" \
    --json >/out/unplug.json 2>/out/unplug.log &
pid=$!
for _ in $(seq 600); do
    [ -s /out/unplug/results.jsonl ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.5
done
echo "board: unbinding vivid.0"
echo vivid.0 >/sys/bus/platform/drivers/vivid/unbind
echo $? >/out/unbind.rc
sleep 3
[ -e /dev/video0 ] && echo "board: /dev/video0 still exists while unbound" || echo "board: /dev/video0 is gone"
echo "board: binding vivid.0"
echo vivid.0 >/sys/bus/platform/drivers/vivid/bind
echo $? >/out/bind.rc
wait $pid
echo $? >/out/unplug.rc
finish
