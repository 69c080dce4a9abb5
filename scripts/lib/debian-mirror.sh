# shellcheck shell=bash
# Sourced, not run. debian_mirror: sets MIRROR_URI and MIRROR_SUITE from this
# machine's own apt sources (deb822 *.sources first, then sources.list), so
# that nothing in the repository names a host, and MIRROR_SECURITY_URI: the
# machine's own entry for the security archive, else the one beside the
# mirror. Returns 1 when no mirror is found.
debian_mirror() {
  MIRROR_URI="" MIRROR_SUITE="" MIRROR_SECURITY_URI=""
  local f u s
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # the first deb stanza of the main archive (not -security, which has no full suites)
    u=$(awk '/^URIs:/{print $2; exit}' "$f")
    s=$(awk '/^Suites:/{print $2; exit}' "$f")
    if [[ -n $u && $u != *-security* && -z $MIRROR_URI ]]; then MIRROR_URI=$u MIRROR_SUITE=$s; fi
  done
  if [[ -z $MIRROR_URI && -f /etc/apt/sources.list ]]; then
    read -r MIRROR_URI MIRROR_SUITE < <(awk '$1=="deb" && $2 !~ /^\[/ && $2 !~ /-security/ {print $2, $3; exit}
      $1=="deb" && $2 ~ /^\[/ && $3 !~ /-security/ {print $3, $4; exit}' /etc/apt/sources.list) || true
  fi
  MIRROR_SECURITY_URI=$( (cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true) |
    awk '/^URIs:/ && $2 ~ /security/ {print $2; exit} $1=="deb" && $2 ~ /security/ {print $2; exit}')
  [[ -n $MIRROR_URI && -n $MIRROR_SUITE ]] || return 1
  MIRROR_SECURITY_URI=${MIRROR_SECURITY_URI:-${MIRROR_URI%/}-security}
}
