#!/bin/sh
# The systemd backend's forwarding shim, installed in front of PATH as systemctl, loginctl
# and tmux. It records the call and applies injected failures (the shared prelude, as on the
# fake backend), then runs the same command with the same arguments in the backend's
# container, as its user, and passes on the output and the exit code: through the session's
# channel (a server in the container, _channel.py beside this file is its client) when there
# is one, else with a plain exec of the engine.
#
# Set by the backend (Backend.environ): MOSAIC_CONFORMANCE_STATE, XDG_CONFIG_HOME and
#   MOSAIC_CONFORMANCE_SYSTEMD_CHANNEL    the channel's Unix socket (unset: no channel)
#   MOSAIC_CONFORMANCE_SYSTEMD_PYTHON     the Python that runs the channel's client
#   MOSAIC_CONFORMANCE_SYSTEMD_ENGINE     the engine's client (docker or podman) to exec with
#   MOSAIC_CONFORMANCE_SYSTEMD_ENGINE_HOST  the socket a docker client talks to, or empty
#   MOSAIC_CONFORMANCE_SYSTEMD_CONTAINER  the container's id
#   MOSAIC_CONFORMANCE_SYSTEMD_UID        the container user's uid
#   MOSAIC_CONFORMANCE_SYSTEMD_SHARED     the folder shared with the container (same path)
#   MOSAIC_CONFORMANCE_SYSTEMD_CHOWN      set when the host runs as root: files the fleet
#                                         wrote are handed to the container user first

# shellcheck source=_prelude.sh
. "${0%/*}/_prelude.sh"

_fw_uid=${MOSAIC_CONFORMANCE_SYSTEMD_UID:?the shim needs MOSAIC_CONFORMANCE_SYSTEMD_UID}
_fw_shared=${MOSAIC_CONFORMANCE_SYSTEMD_SHARED:?the shim needs MOSAIC_CONFORMANCE_SYSTEMD_SHARED}

# _fw_check_injected ARG...: the verb is the first argument that is not an option; the words
# after it that are not options are its units (or, for loginctl, its users).
_fw_check_injected() {
    while [ $# -gt 0 ]; do
        case $1 in
        -*) shift ;;
        *) break ;;
        esac
    done
    [ $# -gt 0 ] || return 1
    _fw_verb=$1
    shift
    _mc_injected "$_fw_verb" "$@"
}

if _fw_check_injected "$@"; then
    _mc_fail_injected "$@"
fi

# The container user reads the units and env files the fleet wrote, and writes its
# enablement links and heartbeats beside them: hand it the fleet's folders, but only those
# inside the shared folder (the channel's server does it, else chown here).
_fw_give_config=
_fw_give_home=
if [ -n "${MOSAIC_CONFORMANCE_SYSTEMD_CHOWN:-}" ]; then
    case ${XDG_CONFIG_HOME:-} in
    "$_fw_shared"/?*) _fw_give_config=$XDG_CONFIG_HOME ;;
    esac
    case ${MOSAIC_HOME:-} in
    "$_fw_shared"/?*) _fw_give_home=$MOSAIC_HOME ;;
    esac
fi

_fw_client='import sys; sys.path[:0] = sys.argv[1:2]; import _channel; sys.exit(_channel.main(sys.argv[2:]))'
if [ -n "${MOSAIC_CONFORMANCE_SYSTEMD_CHANNEL:-}" ]; then
    # Imported, not run as a script: a script is compiled at every start (10 ms), a module
    # once (its .pyc).
    "${MOSAIC_CONFORMANCE_SYSTEMD_PYTHON:?the shim needs MOSAIC_CONFORMANCE_SYSTEMD_PYTHON}" \
        -S -I -c "$_fw_client" "${0%/*}" call "$MOSAIC_CONFORMANCE_SYSTEMD_CHANNEL" "$_fw_uid" \
        ${_fw_give_config:+--give "$_fw_give_config"} ${_fw_give_home:+--give "$_fw_give_home"} \
        "XDG_RUNTIME_DIR=/run/user/$_fw_uid" "XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-}" \
        -- "$_mc_argv0" "$@"
    _fw_exit=$?
else
    _fw_engine=${MOSAIC_CONFORMANCE_SYSTEMD_ENGINE:?the shim needs MOSAIC_CONFORMANCE_SYSTEMD_ENGINE}
    _fw_container=${MOSAIC_CONFORMANCE_SYSTEMD_CONTAINER:?the shim needs MOSAIC_CONFORMANCE_SYSTEMD_CONTAINER}
    for _fw_dir in "$_fw_give_config" "$_fw_give_home"; do
        [ -z "$_fw_dir" ] || [ ! -e "$_fw_dir" ] || chown -R "$_fw_uid:$_fw_uid" "$_fw_dir"
    done
    if [ -n "${MOSAIC_CONFORMANCE_SYSTEMD_ENGINE_HOST:-}" ]; then
        DOCKER_HOST=$MOSAIC_CONFORMANCE_SYSTEMD_ENGINE_HOST
        export DOCKER_HOST
    fi
    # -i only when stdin is not a terminal: a terminal is the developer's, not the fleet's.
    _fw_stdin=-i
    [ ! -t 0 ] || _fw_stdin=
    # shellcheck disable=SC2086 # _fw_stdin is one word or none
    "$_fw_engine" exec $_fw_stdin -u "$_fw_uid" \
        -e "XDG_RUNTIME_DIR=/run/user/$_fw_uid" -e "XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-}" \
        "$_fw_container" "$_mc_argv0" "$@"
    _fw_exit=$?
fi
_mc_record "$_fw_exit" "$@"
exit "$_fw_exit"
