# shellcheck shell=sh disable=SC2154 # _mc_state and _mc_argv0 come from _prelude.sh
# Sourced by the fake stand-ins after _prelude.sh: the original argv, finishing a call (record
# it once, with its exit code), failure injection and option errors. POSIX sh, builtins only.
#
# The fake's state lives under $MOSAIC_CONFORMANCE_STATE/state, one file per fact, so every
# change is one atomic create or remove and twenty concurrent callers cannot corrupt it.

_mc_facts=$_mc_state/state

# _mc_quote VALUE: VALUE quoted for eval, in $_mc_q.
_mc_quote() {
    case $1 in
    *\'*) ;;
    *) _mc_q="'$1'"; return ;;
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

# The call as made, its log line built before the arguments are parsed away.
_mc_call_line "$@"

# _mc_exit CODE: record the call with CODE and exit with it. Every path ends here.
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

# _mc_unsimulated OPTION: the fleet asked for something the fake does not model; refuse it
# loudly rather than pretend, so that the fleet's reliance on it shows up.
_mc_unsimulated() {
    _mc_die 1 "fake $_mc_argv0: unknown or unsimulated option '$1'"
}

# _mc_create FILE: create FILE (empty) unless it exists. True if this call created it.
_mc_create() {
    set -C
    if { true >"$1"; } 2>/dev/null; then
        set +C
        return 0
    fi
    set +C
    return 1
}
