# shellcheck shell=sh
# The fake system as the harness sees it (harness/systems/fake.py runs this with the
# backend's environment); never recorded, since no fleet made these calls.
#   sh _system.sh facts   what holds: "enabled UNIT", "active UNIT" and "linger" lines
#   sh _system.sh boot    restart the machine
. "${0%/*}/_fake.sh"
case ${1:-} in
facts) _print_facts ;;
boot) _boot ;;
*)
    printf '%s\n' "usage: sh _system.sh facts|boot" >&2
    exit 2
    ;;
esac
