# Sourced, not run. debian_mirror: sets MIRROR_URI and MIRROR_SUITE from this
# machine's own apt sources (deb822 *.sources first, then sources.list), so
# that nothing in the repository names a host. Returns 1 when none is found.
debian_mirror() {
  MIRROR_URI="" MIRROR_SUITE=""
  local f u s
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # the first deb stanza of the main archive (not -security, which has no full suites)
    u=$(awk '/^URIs:/{print $2; exit}' "$f")
    s=$(awk '/^Suites:/{print $2; exit}' "$f")
    if [[ -n $u && $u != *-security* ]]; then MIRROR_URI=$u MIRROR_SUITE=$s; return 0; fi
  done
  if [[ -f /etc/apt/sources.list ]]; then
    read -r MIRROR_URI MIRROR_SUITE < <(awk '$1=="deb" && $2 !~ /^\[/ && $2 !~ /-security/ {print $2, $3; exit}
      $1=="deb" && $2 ~ /^\[/ && $3 !~ /-security/ {print $3, $4; exit}' /etc/apt/sources.list) || true
  fi
  [[ -n $MIRROR_URI && -n $MIRROR_SUITE ]]
}
