#!/usr/bin/env bash
# The README's first command on a fresh clone: clones this checkout into a temp dir, runs
# the first command of the README's first code block there (e.g. `npm install && npm run
# demo`) in its own process group, waits until GET /health answers, then stops the group.
# npm's cache makes the install quick; nothing else is borrowed from this checkout.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
pgid=""
stop_group() {
  [ -n "$pgid" ] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pgid" 2>/dev/null
  pgid=""
}
trap 'stop_group; rm -rf "$work"' EXIT

git clone -q "$repo" "$work/repo" || { echo "fresh clone: git clone failed"; exit 1; }
cd "$work/repo"
# the first line of the README's first ``` block, without its trailing comment
cmd="$(awk '/^```/{n++; next} n==1{print; exit}' README.md | sed 's/[[:space:]]*#.*$//')"
[ -n "$cmd" ] || { echo "fresh clone: no command found at the top of README.md"; exit 1; }
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
echo "fresh clone: running \`$cmd\` in $work/repo (PORT=$port)"
PORT="$port" npm_config_prefer_offline=true npm_config_audit=false npm_config_fund=false \
  setsid bash -c "$cmd" > "$work/out.log" 2>&1 < /dev/null &
pgid=$!

ok=0
for _ in $(seq 1 1800); do
  if node -e 'fetch(process.argv[1]).then(r=>r.json()).then(b=>process.exit(b.ok===true?0:1),()=>process.exit(1))' "http://127.0.0.1:$port/health" 2>/dev/null; then ok=1; break; fi
  kill -0 "$pgid" 2>/dev/null || break
  sleep 0.2
done
stop_group
if [ "$ok" -ne 1 ]; then
  echo "fresh clone: \`$cmd\` never answered GET /health; its output:"
  tail -40 "$work/out.log"
  exit 1
fi
echo "fresh clone: \`$cmd\` answered GET /health {\"ok\":true}"
