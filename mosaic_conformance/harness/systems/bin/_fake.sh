# shellcheck shell=sh disable=SC2154 # _mc_line and friends come from _prelude.sh
# The fake backend's model of the user's system, in one place: sourced by the stand-ins
# (after _prelude.sh) and by _system.sh, through which the harness reads and reboots it.
# POSIX sh, builtins only on the common path.
#
# The facts live under $MOSAIC_CONFORMANCE_STATE/state, one file per fact, so every change is
# one atomic create or remove and twenty concurrent callers cannot corrupt them:
#   enabled/UNIT  the unit starts at boot; its lines are the links enabling made
#                 (default.target.wants, ...), for disable to name them
#   active/UNIT   the unit runs now
#   linger        the user lingers (the fake knows one user: $USER)
# Unit files are read from the user unit folder, where the fleet writes them.

_facts=${MOSAIC_CONFORMANCE_STATE:?the fake needs MOSAIC_CONFORMANCE_STATE (set by the backend)}/state
_enabled=$_facts/enabled
_active=$_facts/active
[ -d "$_active" ] || mkdir -p "$_enabled" "$_active"
case ${XDG_CONFIG_HOME:-} in
/*) _unit_dir=$XDG_CONFIG_HOME/systemd/user ;;
*) _unit_dir=$HOME/.config/systemd/user ;;
esac

# --- the model ------------------------------------------------------------------------------

# _fragment UNIT: the unit file that defines UNIT (an instance falls back to its template),
# in $_frag; false when there is none.
_fragment() {
    _frag=$_unit_dir/$1
    [ -f "$_frag" ] && return 0
    case $1 in
    *@?*.*)
        _frag=$_unit_dir/${1%%@*}@.${1##*.}
        [ -f "$_frag" ] && return 0
        ;;
    esac
    _frag=
    return 1
}

_is_enabled() { [ -f "$_enabled/$1" ]; }
_is_active() { [ -f "$_active/$1" ]; }
_lingers() { [ -f "$_facts/linger" ]; }

# _loaded: the units the manager has loaded (the active and the enabled ones), one a line.
_loaded() {
    for _f in "$_active"/* "$_enabled"/*; do
        [ -e "$_f" ] && printf '%s\n' "${_f##*/}"
    done | LC_ALL=C sort -u
}

# _boot: the machine restarts and nobody logs in: the user manager starts only if the user
# lingers, and then every enabled unit that still has a unit file.
_boot() {
    rm -f -- "$_active"/*
    _lingers || return 0
    for _f in "$_enabled"/*; do
        [ -e "$_f" ] || continue
        if _fragment "${_f##*/}"; then
            true >"$_active/${_f##*/}"
        fi
    done
}

# _print_facts: what holds, for the harness: "enabled UNIT", "active UNIT", "linger".
_print_facts() {
    for _f in "$_enabled"/* "$_active"/*; do
        [ -e "$_f" ] || continue
        _d=${_f%/*}
        printf '%s %s\n' "${_d##*/}" "${_f##*/}"
    done
    if _lingers; then printf '%s\n' linger; fi
}

# --- finishing a stand-in's call (needs _prelude.sh) ----------------------------------------

# _mc_exit CODE: record the call (its line built by _mc_call_line) with CODE and exit.
_mc_exit() {
    _mc_write_call "$1"
    exit "$1"
}

# _mc_die CODE MESSAGE: MESSAGE on stderr, then _mc_exit CODE.
_mc_die() {
    printf '%s\n' "$2" >&2
    _mc_exit "$1"
}

# _mc_inject VERB TARGET...: fail the call now if a failure is injected for it.
_mc_inject() {
    if _mc_injected "$@"; then
        _mc_fail_injected_call
    fi
}

# _mc_unsimulated WHAT: the fleet asked for something the fake does not model; refuse it
# loudly rather than pretend, so that the fleet's reliance on it shows up.
_mc_unsimulated() {
    _mc_die 1 "fake $_mc_argv0: $1 is not simulated (docs/backends.md lists what is)"
}

# _mc_quote VALUE: VALUE quoted for eval, in $_mc_q.
_mc_quote() {
    case $1 in
    *\'*) ;;
    *)
        _mc_q="'$1'"
        return
        ;;
    esac
    _mc_rest=$1
    _mc_q=
    while :; do
        case $_mc_rest in
        *\'*) ;;
        *) break ;;
        esac
        _mc_q="$_mc_q${_mc_rest%%\'*}'\\''"
        _mc_rest=${_mc_rest#*\'}
    done
    _mc_q="'$_mc_q$_mc_rest'"
}
