#!/usr/bin/env bash
# The README's pictures, drawn by `ipcscope render` from the recording the
# frame tests use (tests/fixtures/stalled.rec: all seven mechanisms, every
# consumer stalled). Needs no Linux IPC. Run after changing a panel:
#
#   bash assets/frames/make.sh            # builds if needed, rewrites assets/frames/*.svg
#   IPCSCOPE=target/release/ipcscope bash assets/frames/make.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
exe=${IPCSCOPE:-target/debug/ipcscope}
if [ ! -x "$exe" ]; then
  cargo build --quiet
  exe=target/debug/ipcscope
fi
rec=tests/fixtures/stalled.rec
out=assets/frames

"$exe" render "$rec" --size 160x45 --format svg --lang en --theme default >"$out/grid.svg"
"$exe" render "$rec" --size 160x45 --format svg --lang ko --theme projector >"$out/grid-ko.svg"
# Each panel zoomed in (Enter), in the recording's order of panels.
n=1
for name in pipe fifo shm mq mach alpc socket; do
  "$exe" render "$rec" --size 120x35 --format svg --lang en --theme default --focus "$n" >"$out/$name.svg"
  n=$((n + 1))
done
ls -l "$out"/*.svg
