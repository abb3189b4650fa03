# lib.sh: shared by the benchmarks (sourced). Timing, medians, peak RSS and the benchmark inputs.

# csv_1m [--sorted]: the path of the 1,000,000-row benchmark CSV, generated on first use.
csv_1m() {
  local f=$BENCH_DIR/rows-1m${1:+-sorted}.csv
  [[ -s $f ]] || "$(dirname "${BASH_SOURCE[0]}")"/gen-csv 1000000 "$f" ${1:-}
  echo "$f"
}

# timed CMD...: run CMD, append its wall time (s) to TIMES and its peak RSS (KB) to RSS.
TIMES=()
RSS=()
timed() {
  local out
  out=$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -n 1)
  TIMES+=("${out% *}")
  RSS+=("${out#* }")
}

# median X...: the median of the numbers given.
median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}

max() {
  printf '%s\n' "$@" | sort -g | tail -n 1
}

# ratio A B: A/B to two decimals.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'
}
