#!/usr/bin/env bash
# The exodus-2022 worked study on your own exports (docs/exodus-2022.md explains each step).
#
#   study.sh prepare PROJECT EXPORT...   ingest, code with builtin:exodus-2022, draw audit samples
#   study.sh results PROJECT             after labelling: estimates, claims, agreement, report
#
# Environment: STUDY_TZ (time zone of WhatsApp exports, default Europe/Moscow), STUDY_N (audit
# sample size per measure, default 300), STUDY_MEASURES (default: the measures of the claims).
set -euo pipefail

measures=${STUDY_MEASURES:-"border_crossing z_symbol war_stance host_hostility"}
step=${1:?usage: study.sh prepare PROJECT EXPORT... | study.sh results PROJECT}
project=${2:?give the project directory}
shift 2

case "$step" in
  prepare)
    [ "$#" -gt 0 ] || { echo "give at least one export to ingest" >&2; exit 2; }
    [ -e "$project/chatlens.duckdb" ] || chatlens init --project "$project" --languages ru,uk,en
    chatlens ingest "$@" --tz "${STUDY_TZ:-Europe/Moscow}" --project "$project"
    chatlens code --codebook builtin:exodus-2022 --project "$project"
    existing=$(chatlens samples --json --project "$project")
    for m in $measures; do
      # one audit sample per measure: drawing again would mix designs and waste labels
      if ! grep -q "\"audit-$m-" <<<"$existing"; then
        chatlens sample --measure "$m" --kind audit --n "${STUDY_N:-300}" --seed 2022 \
          --project "$project"
      fi
    done
    chatlens samples --project "$project"
    echo "Now label the samples: chatlens serve --project $project (Annotate), or see docs/howto/labelling.md"
    ;;
  results)
    for m in $measures; do
      chatlens estimate --measure "$m" --project "$project"
    done
    chatlens agreement --project "$project"
    chatlens claims check builtin:exodus-2022 --project "$project"
    chatlens report -o "$project/exodus-report.html" --claims builtin:exodus-2022 \
      --project "$project"
    ;;
  *)
    echo "unknown step $step: use prepare or results" >&2
    exit 2
    ;;
esac
