#!/usr/bin/env bash
# Find each v9 finding again from a fixed seed, one core, and check in its
# shrunk replay file: for every finding in v9-known.json, swarm runs with
# every *other* finding known, so the first failure is this one.
#   findings/regenerate.sh            # writes findings/v9/*.json, prints a table
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin stress
SEED=${SEED:-2026}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p findings/v9
python3 - "$SEED" "$work" <<'PY'
import json, shutil, subprocess, sys
seed, work = sys.argv[1], sys.argv[2]
known = json.load(open('findings/v9-known.json'))
print(f"{'finding':30} {'kind':22} {'mode':8} {'schedules':>9} {'seconds':>8}  replay file")
for f in known['findings']:
    others = dict(known, findings=[g for g in known['findings'] if g['id'] != f['id']])
    kf = f'{work}/{f["id"]}.json'
    json.dump(others, open(kf, 'w'))
    mode = 'timeout' if f['kind'] == 'cmd-sync-timeout' else 'error'
    out = f'{work}/{f["id"]}'
    p = subprocess.run(['target/release/stress', '--engine', 'v9', '--atc-inv-disabled', mode, '--scenario', 'swarm',
                        '--seed', seed, '--jobs', '1', '--time-budget', '60', '--known', kf, '--out', out, '--json'],
                       capture_output=True, text=True)
    run = json.loads(p.stdout)['runs'][0]
    fail = run['failure']
    if not fail or fail['kind'] != f['kind']:
        sys.exit(f"{f['id']}: not found in {run['schedules']} schedules ({run['seconds']:.1f} s): {fail}")
    src = fail['shrunk_file'] or fail['replay_file']
    dst = f'findings/v9/{f["id"]}.json'
    shutil.copy(src, dst)
    print(f"{f['id']:30} {fail['kind']:22} {mode:8} {fail['schedule_index'] + 1:>9} {run['seconds']:>8.2f}  {dst}")
PY
