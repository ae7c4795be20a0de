#!/usr/bin/env bash
# Find each finding of an engine again from a fixed seed, one core, and
# check in its shrunk replay file and a regression test that replays it:
# for every finding in ENGINE-known.json (v9: seed 001 as written; legacy:
# the kernel before it; c: the series' own C, whose findings are v9's), its
# scenario (swarm unless the entry names one) runs with every *other*
# finding known, so the first failure is this one.
#   findings/regenerate.sh   # (ENGINES="v9 legacy c") writes findings/{v9,legacy,c}/*.json, their
#                            # --report texts (*.report.txt) and
#                            # harness/tests/regressions/{v9,legacy,c}_*.rs,
#                            # prints a table; c reads the series from
#                            # SMMU_SERIES (default: seed 001 beside the clone)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin stress
SEED=${SEED:-2026}
SMMU_SERIES=${SMMU_SERIES:-../shared/seeds/001_160d3a3c42ecf529.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for engine in ${ENGINES:-v9 legacy c}; do
mkdir -p findings/$engine harness/tests/regressions
python3 - "$SEED" "$work" "$engine" "$SMMU_SERIES" <<'PY'
import json, shutil, subprocess, sys
seed, work, engine, series = sys.argv[1:5]
# The C is the series v9 translates: its findings are v9's.
known = json.load(open(f'findings/{"v9" if engine == "c" else engine}-known.json'))
extra = ['--series', series] if engine == 'c' else []
print(f"{'finding':30} {'kind':22} {'scenario':15} {'mode':8} {'schedules':>9} {'seconds':>8}  replay file")
for f in known['findings']:
    others = dict(known, findings=[g for g in known['findings'] if g['signature'] != f['signature']])
    kf = f'{work}/{f["id"]}.json'
    json.dump(others, open(kf, 'w'))
    mode = f.get('atc_inv_disabled', 'timeout' if f['kind'] == 'cmd-sync-timeout' else 'error')
    scenario = f.get('scenario', 'swarm')
    out = f'{work}/{f["id"]}'
    p = subprocess.run(['target/release/stress', '--engine', engine, '--atc-inv-disabled', mode, '--scenario', scenario,
                        '--seed', seed, '--jobs', '1', '--time-budget', '120', '--iterations', '100000000', '--known', kf, '--stop-at-new', '--out', out, '--json'] + extra,
                       capture_output=True, text=True)
    run = json.loads(p.stdout)['runs'][0]
    fail = run['failure']
    if not fail or fail['signature'] != f['signature']:
        sys.exit(f"{f['id']}: not found in {run['schedules']} schedules ({run['seconds']:.1f} s): {fail}")
    src = fail['shrunk_file'] or fail['replay_file']
    dst = f'findings/{engine}/{f["id"]}.json'
    shutil.copy(src, dst)
    report = subprocess.run(['target/release/stress', '--report', dst], capture_output=True, text=True, check=True)
    open(f'findings/{engine}/{f["id"]}.report.txt', 'w').write(report.stdout)
    test = subprocess.run(['target/release/stress', '--emit-test', dst], capture_output=True, text=True, check=True)
    open(f'harness/tests/regressions/{engine}_{f["id"].replace("-", "_")}.rs', 'w').write(test.stdout)
    print(f"{f['id']:30} {fail['kind']:22} {scenario:15} {mode:8} {fail['schedule_index'] + 1:>9} {run['seconds']:>8.2f}  {dst}")
PY
done

# The proposal's answer to ats-join-stale-iotlb, kept honest: its mutant's
# failure as a regression test.
rm -rf "$work/fenced"
target/release/stress --mutant no-tlb-flush-before-ats --seed 1 --jobs 1 --out "$work/fenced" >/dev/null 2>&1 || true
shrunk=$(ls "$work"/fenced/*-shrunk.json)
cp "$shrunk" "$work/swarm-no-tlb-flush-before-ats.json"
(cd "$work" && "$OLDPWD/target/release/stress" --emit-test swarm-no-tlb-flush-before-ats.json) \
    > harness/tests/regressions/fenced_no_tlb_flush_before_ats.rs
echo "no-tlb-flush-before-ats (fenced mutant): harness/tests/regressions/fenced_no_tlb_flush_before_ats.rs"
