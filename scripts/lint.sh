#!/usr/bin/env bash
# npm run lint: every checker on its own files; all of them run, then the exit
# status is 1 if any failed. Each prints its time (CI's budget).
#   eslint: TypeScript with type information (eslint.config.mjs)
#   prettier --check: TypeScript, JavaScript, JSON (.prettierrc.json, .prettierignore)
#   clang-format --dry-run -Werror: C and C++ (.clang-format, native/.clang-format)
#   the shell scripts: shellcheck (.shellcheckrc)
#   wireshark/: luacheck (.luacheckrc), once with each Lua the dissector runs on (5.2 to 5.4)
# npm run format (scripts/lint.sh --fix) rewrites what prettier and
# clang-format would change; the other checkers only report.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# tracked files and new ones not ignored
files() { git ls-files --cached --others --exclude-standard -- "$@"; }
mapfile -t cfiles < <(files '*.c' '*.h' '*.cc')
mapfile -t shfiles < <(files '*.sh' .ci/run)
need() {
  command -v "$1" >/dev/null || { echo "lint: $1 is not installed (bash scripts/deps.sh installs it)" >&2; return 1; }
}
eslint() { npx --no-install eslint --max-warnings 0 .; }
prettier() { npx --no-install prettier --log-level warn "$@" .; }
clang_format() { need clang-format && clang-format "$@" "${cfiles[@]}"; }
shellcheck_all() { need shellcheck && shellcheck "${shfiles[@]}"; }
luacheck_all() {
  need luacheck || return 1
  local lua
  for lua in lua52 lua53 lua54; do
    luacheck --formatter plain --std "$lua" wireshark || { echo "lint: luacheck with $lua's globals found the above" >&2; return 1; }
  done
}
failed=()
step() {
  local name=$1 t0
  shift
  t0=$(date +%s%N)
  "$@" || failed+=("$name")
  printf 'lint: %s %d ms\n' "$name" $((($(date +%s%N) - t0) / 1000000))
}
if [[ ${1:-} == --fix ]]; then
  step prettier prettier --write
  step clang-format clang_format -i
else
  step eslint eslint
  step prettier prettier --check
  step clang-format clang_format --dry-run -Werror
  step shellcheck shellcheck_all
  step luacheck luacheck_all
fi
if ((${#failed[@]})); then
  echo "lint: failed: ${failed[*]}" >&2
  exit 1
fi
