#!/usr/bin/env bash
# Run test modules N times in a row beside two busy processes, and count the failures:
# the check that tests whose outcome could depend on timings hold on a loaded machine.
#
#   scripts/repeat_under_load.sh [N] [test files...]
#   (default: 20 runs of the planner, companion, recall and cost-model modules)
#
# Each run's output goes to $OUT/run<i>.log (OUT defaults to a new temp directory); a line
# per run and the failure count are printed.
set -u
cd "$(dirname "$0")/.."
n=${1:-20}
shift || true
files=("$@")
[ ${#files[@]} -eq 0 ] && files=(tests/test_planner.py tests/test_companion.py tests/test_recall.py
                                  tests/test_cost_model.py)
out=${OUT:-$(mktemp -d)}
python3 -c "while True: pass" & b1=$!
python3 -c "while True: pass" & b2=$!
trap 'kill $b1 $b2 2>/dev/null' EXIT
fails=0
for i in $(seq 1 "$n"); do
  start=$(date +%s)
  python -m pytest -q -p no:cacheprovider "${files[@]}" > "$out/run$i.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && fails=$((fails + 1))
  echo "run $i rc=$rc $(( $(date +%s) - start ))s $(tail -1 "$out/run$i.log")"
done
echo "failures: $fails of $n (logs in $out)"
[ $fails -eq 0 ]
