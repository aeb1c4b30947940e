# Sourced by every stand-in (fake) and forwarding shim (systemd): records the call and
# applies injected failures. POSIX sh, no external programs on the common path, because a
# suite makes hundreds of calls and each must cost about a millisecond.
#
# Needs MOSAIC_CONFORMANCE_STATE: the per-test root holding calls.jsonl and inject/.

: "${MOSAIC_CONFORMANCE_STATE:?the stand-ins need MOSAIC_CONFORMANCE_STATE (set by the backend)}"
_mc_state=$MOSAIC_CONFORMANCE_STATE
_mc_argv0=${0##*/}

# _mc_json_string VALUE: VALUE as a JSON string in $_mc_json. Printable ASCII is copied
# (escaping " and \); every other byte becomes \u00XX, so any argv, even non-UTF-8, gives valid
# JSON. Readers undo it with s.encode("latin-1").decode("utf-8", "surrogateescape").
# Byte-wise work needs the C locale (bash as sh would otherwise match whole UTF-8 characters).
LC_ALL=C
_mc_json_string() {
    case $1 in
    *[!A-Za-z0-9@._:=/+,%-]*) ;;
    *) _mc_json="\"$1\""; return ;;
    esac
    case $1 in
    *[!\ -~]*) _mc_json_bytes "$1" ;;
    *) _mc_json_printable "$1" ;;
    esac
}

# Printable ASCII only: escape " and \ with parameter expansions, no programs.
_mc_json_printable() {
    _mc_rest=$1
    _mc_out=
    while :; do
        case $_mc_rest in
        *[\"\\]*) ;;
        *) break ;;
        esac
        _mc_head=${_mc_rest%%[\"\\]*}
        _mc_rest=${_mc_rest#"$_mc_head"}
        _mc_out="$_mc_out$_mc_head\\${_mc_rest%"${_mc_rest#?}"}"
        _mc_rest=${_mc_rest#?}
    done
    _mc_json="\"$_mc_out$_mc_rest\""
}

# Any bytes: one od for the byte values, then walk the string and that list side by side.
_mc_json_bytes() {
    _mc_rest=$1
    _mc_out=
    for _mc_byte in $(printf '%s' "$1" | od -An -v -tx1); do
        _mc_char=${_mc_rest%"${_mc_rest#?}"}
        _mc_rest=${_mc_rest#?}
        case $_mc_byte in
        22 | 5c) _mc_out="$_mc_out\\$_mc_char" ;;
        2[0-9a-f] | [3-6][0-9a-f] | 7[0-9a-e]) _mc_out=$_mc_out$_mc_char ;;
        *) _mc_out="$_mc_out\\u00$_mc_byte" ;;
        esac
    done
    _mc_json="\"$_mc_out\""
}

# _mc_record EXIT ARG...: append one line to calls.jsonl (one write: atomic with O_APPEND).
_mc_record() {
    _mc_exit=$1
    shift
    _mc_call_line "$@"
    _mc_write_call "$_mc_exit"
}

# _mc_call_line ARG...: the call's argv as the start of its JSON line, in $_mc_line. A
# stand-in that parses its arguments away builds this first and writes it when it exits.
_mc_call_line() {
    _mc_line="{\"argv\": [\"$_mc_argv0\""
    for _mc_arg in "$@"; do
        _mc_json_string "$_mc_arg"
        _mc_line="$_mc_line, $_mc_json"
    done
}

# _mc_write_call EXIT: append the call in $_mc_line, with EXIT, to calls.jsonl.
_mc_write_call() {
    printf '%s], "exit": %s}\n' "$_mc_line" "$1" >>"$_mc_state/calls.jsonl"
}

# _mc_injected VERB UNIT...: if a failure is injected for VERB on any UNIT (or on "*"),
# set _mc_inject_exit and _mc_inject_file and return 0.
_mc_injected() {
    _mc_verb=$1
    shift
    for _mc_unit in "*" "$@"; do
        _mc_file="$_mc_state/inject/$_mc_verb@$_mc_unit"
        if [ -f "$_mc_file" ]; then
            read -r _mc_inject_exit <"$_mc_file"
            _mc_inject_file=$_mc_file
            return 0
        fi
    done
    return 1
}

# _mc_fail_injected ARG...: print the injected stderr, record the call, exit with its code.
_mc_fail_injected() {
    _mc_call_line "$@"
    _mc_fail_injected_call
}

# _mc_fail_injected_call: the same, for the call already in $_mc_line.
_mc_fail_injected_call() {
    tail -n +2 "$_mc_inject_file" >&2
    _mc_write_call "$_mc_inject_exit"
    exit "$_mc_inject_exit"
}
