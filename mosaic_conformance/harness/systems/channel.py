"""The systemd backend's channel into its container: a call costs a round trip on a Unix
socket, not a ``docker exec`` (a process start and an API round trip, 70-150 ms).

One file, one protocol, three roles:

- ``python3 channel.py serve SOCKET OWNER`` runs in the container, as root, as the system
  service ``mosaic-conformance-channel.service``, which starts at every boot. It listens on a
  Unix socket in the folder shared with the host (the same path on both sides) and runs each
  request's command as the uid it names, one thread per connection.
- ``call SOCKET UID [--give FOLDER]... NAME=VALUE... -- ARGV...`` is the client of the
  forwarding shim (``bin/forward.sh``) on the host, which imports this file (its .pyc) into
  ``python -S -I``. It imports nothing but ``_socket``, so it starts in about 10 ms.
- :func:`run` and :func:`ping` are the harness's own client, in its process.

The client sends its stdin, stdout and stderr along with the request (``SCM_RIGHTS``): the
command in the container reads and writes the caller's very streams, so its output stays
exact and apart, with nothing copied. The answer is one line, the exit status as
``docker exec`` gives it (128+N for a signal). A client that goes away takes its command
with it. A broken channel (nothing listens, the answer never comes) is :class:`ChannelBroken`
in the harness; the shim's client says so on stderr, exits 255 and leaves the reason in
``$MOSAIC_CONFORMANCE_STATE/channel-broken`` for the harness to raise.

Request: ``LENGTH\\n``, then LENGTH bytes of NUL-terminated fields: the protocol version,
the uid, the number of environment entries, those ``NAME=VALUE`` entries, the number of
folders to hand over to the uid first (``chown -R``: the fleet on a root host writes them as
root, the user's manager must read and write them), those folders, then the argv. No argv
is a ping, answered ``0``.

The server half runs on the container's ``python3`` (3.9 or later), with the standard
library only; nothing here may import the toolkit.
"""

from __future__ import annotations

import _socket
import os
import sys

VERSION = b"1"
BROKEN_FILE = "channel-broken"  # in the per-test root, left by a shim whose call broke
BROKEN_EXIT = 255
CONNECT_TIMEOUT = 10.0  # seconds; a listening Unix socket answers at once
CALL_TIMEOUT = 600.0  # seconds for one call's answer: longer than any fleet command waits
DRAIN_TIMEOUT = 2.0  # seconds to read what a command wrote after its exit status came
MAX_REQUEST = 64 << 20
USAGE = (
    "usage: channel.py call SOCKET UID [--give FOLDER]... [NAME=VALUE]... -- ARGV...\n"
    "       channel.py serve SOCKET OWNER_UID\n"
)


class ChannelBroken(Exception):
    """The channel did not carry a call: nothing listens, or the answer never came."""


def encode(uid: int, env: list[bytes], argv: list[bytes], give: list[bytes] | None = None) -> bytes:
    give = give or []
    fields = [VERSION, b"%d" % uid, b"%d" % len(env), *env, b"%d" % len(give), *give, *argv]
    body = b"".join(f + b"\0" for f in fields)
    return b"%d\n" % len(body) + body


def decode(body: bytes) -> tuple[int, list[bytes], list[bytes], list[bytes]]:
    """The uid, environment, folders to hand over and argv of a request."""
    fields = body.split(b"\0")[:-1]
    if len(fields) < 4 or fields[0] != VERSION:
        raise ValueError(f"not a version {VERSION.decode()} request")
    env_end = 3 + int(fields[2])
    give_end = env_end + 1 + int(fields[env_end])
    return int(fields[1]), fields[3:env_end], fields[env_end + 1 : give_end], fields[give_end:]


def _connect(path: str) -> _socket.socket:
    """A connection to the server at ``path``. A socket's path holds at most 107 bytes; a
    longer one is reached through its folder's descriptor (never by a chdir: the harness
    has threads)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    folder = -1
    try:
        if len(os.fsencode(path)) < 100:
            sock.connect(path)
        else:
            head, name = os.path.split(path)
            folder = os.open(head, os.O_PATH)
            sock.connect(f"/proc/self/fd/{folder}/{name}")
    except OSError as exc:
        sock.close()
        raise ChannelBroken(f"nothing answers at {path} ({exc.strerror or exc})") from None
    finally:
        if folder >= 0:
            os.close(folder)
    return sock


def _send(sock: _socket.socket, request: bytes, fds: tuple[int, int, int]) -> None:
    """The request, with the three streams attached to its first byte."""
    rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)
    sent = sock.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    if sent < len(request):
        sock.sendall(request[sent:])


def _answer(sock: _socket.socket, timeout: float) -> int:
    """The exit status the server sends back, waiting at most ``timeout`` seconds."""
    sock.settimeout(timeout)
    line = b""
    while not line.endswith(b"\n"):
        try:
            chunk = sock.recv(64)
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                raise ChannelBroken(f"no answer within {timeout:.0f} s") from None
            raise ChannelBroken(f"the connection broke ({exc})") from None
        if not chunk:
            raise ChannelBroken("the server went away before the command's exit status came")
        line += chunk
    if not line[:-1].isdigit():
        raise ChannelBroken(f"the server said {line[:200]!r}")
    return int(line)


# --- the shim's client (on the host, as python -S -I: only _socket, os and sys) -----------


def call(path: str, uid: int, env: list[bytes], argv: list[bytes], give: list[bytes]) -> int:
    """Run ``argv`` in the container on this process's own streams, after handing the
    folders ``give`` over to ``uid``; its exit status."""
    streams = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            # A terminal is the developer's, not the fleet's (and polkit would prompt on it).
            usable = fd != 0 or not os.isatty(0)
        except OSError:
            usable = False
        streams.append(fd if usable else os.open(os.devnull, os.O_RDWR))
    sock = _connect(path)
    try:
        _send(sock, encode(uid, env, argv, give), (streams[0], streams[1], streams[2]))
        return _answer(sock, CALL_TIMEOUT)
    finally:
        sock.close()


def _call_main(args: list[str]) -> int:
    """``call SOCKET UID [--give FOLDER]... [NAME=VALUE]... -- ARGV...``"""
    try:
        split = args.index("--")
        path, uid, options, argv = args[0], int(args[1]), args[2:split], args[split + 1 :]
    except (ValueError, IndexError):
        sys.stderr.write(USAGE)
        return 2
    give, env = [], []
    while options:
        if options[0] == "--give" and len(options) > 1:
            give.append(os.fsencode(options[1]))
            options = options[2:]
        else:
            env.append(os.fsencode(options.pop(0)))
    try:
        return call(path, uid, env, [os.fsencode(a) for a in argv], give)
    except ChannelBroken as exc:
        reason = f"the systemd backend's channel into its container is broken: {exc}"
        sys.stderr.write(f"mosaic-conformance: {reason}\n")
        state = os.environ.get("MOSAIC_CONFORMANCE_STATE")
        if state:
            with open(os.path.join(state, BROKEN_FILE), "a", encoding="utf-8") as note:
                note.write(f"{' '.join(argv)}: {reason}\n")
        return BROKEN_EXIT


# --- the harness's client (on the host, in its own process) -------------------------------


def ping(path: str) -> bool:
    """Whether the server at ``path`` answers (a readiness probe: never waits long)."""
    try:
        sock = _connect(path)
    except ChannelBroken:
        return False
    try:
        with open(os.devnull, "rb") as null:
            fd = null.fileno()
            _send(sock, encode(0, [], []), (fd, fd, fd))
        return _answer(sock, CONNECT_TIMEOUT) == 0
    except (ChannelBroken, OSError):
        return False
    finally:
        sock.close()


def run(
    path: str, argv: list[str], uid: int, env: dict[str, str], timeout: float = CALL_TIMEOUT
) -> tuple[int, bytes, bytes]:
    """Run ``argv`` in the container as ``uid``: its exit status, stdout and stderr."""
    import selectors
    import time

    sock = _connect(path)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    request = encode(
        uid, [os.fsencode(f"{k}={v}") for k, v in env.items()], [os.fsencode(a) for a in argv]
    )
    try:
        _send(sock, request, (null, out_w, err_w))
    except OSError as exc:
        for fd in (out_r, out_w, err_r, err_w, null):
            os.close(fd)
        sock.close()
        raise ChannelBroken(f"the request could not be sent ({exc})") from None
    for fd in (out_w, err_w, null):
        os.close(fd)
    output = {out_r: bytearray(), err_r: bytearray()}
    still_open = {out_r, err_r}
    answer = bytearray()
    status: int | None = None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for fd in (out_r, err_r, sock.fileno()):
            selector.register(fd, selectors.EVENT_READ)
        try:
            while still_open or status is None:
                left = deadline - time.monotonic()
                if left <= 0 and status is None:
                    raise ChannelBroken(f"no answer within {timeout:.0f} s to {argv}")
                if left <= 0:
                    break  # something the command started holds its output open
                for key, _ in selector.select(left):
                    if key.fd in still_open:
                        data = os.read(key.fd, 65536)
                        output[key.fd] += data
                        if not data:
                            selector.unregister(key.fd)
                            still_open.discard(key.fd)
                        continue
                    chunk = sock.recv(64)
                    answer += chunk
                    if chunk and not answer.endswith(b"\n"):
                        continue
                    selector.unregister(key.fd)
                    if not (answer.endswith(b"\n") and answer[:-1].isdigit()):
                        raise ChannelBroken(
                            f"the server went away during {argv} (it said {bytes(answer)!r})"
                        )
                    status = int(answer)
                    deadline = min(deadline, time.monotonic() + DRAIN_TIMEOUT)
        finally:
            sock.close()
            os.close(out_r)
            os.close(err_r)
    assert status is not None  # the loop ends only with a status, or raises
    return status, bytes(output[out_r]), bytes(output[err_r])


# --- the server (in the container, as root) ----------------------------------------------


def serve(path: str, owner: int) -> None:
    import contextlib
    import socket
    import threading

    folder, name = os.path.split(path)
    os.chdir(folder)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)  # the last boot's
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    os.chown(name, owner, owner)
    os.chmod(name, 0o600)
    server.listen(64)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_serve_one, args=(conn,), daemon=True).start()


def _serve_one(conn: _socket.socket) -> None:
    import socket

    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(conn, 65536, 3)  # type: ignore[arg-type]
        while b"\n" not in data:
            more = conn.recv(65536)
            if not more:
                return
            data += more
        header, _, body = data.partition(b"\n")
        length = int(header)
        if length > MAX_REQUEST or len(fds) != 3:
            return
        while len(body) < length:
            more = conn.recv(min(1 << 20, length - len(body)))
            if not more:
                return
            body += more
        uid, env, give, argv = decode(body)
        status = _run_command(conn, uid, env, give, argv, fds) if argv else 0
        conn.sendall(b"%d\n" % status)
    except (OSError, ValueError):
        pass  # the client went away or spoke nonsense: nobody to answer
    finally:
        for fd in fds:
            os.close(fd)
        conn.close()


def _run_command(
    conn: _socket.socket,
    uid: int,
    env: list[bytes],
    give: list[bytes],
    argv: list[bytes],
    fds: list[int],
) -> int:
    """Run ``argv`` as ``uid`` on the client's streams, after handing ``give`` over to it;
    kill it if the client goes away."""
    import contextlib
    import select
    import signal
    import subprocess

    try:
        home, as_user = _account(uid)
    except KeyError:
        os.write(fds[2], b"mosaic-conformance channel: no user with uid %d here\n" % uid)
        return 126
    environment = {
        b"PATH": b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        b"HOME": home,
    }
    for entry in env:
        key, _, value = entry.partition(b"=")
        environment[key] = value
    if give and as_user:
        _hand_over(give, uid, int(str(as_user["group"])))
    try:
        proc = subprocess.Popen(
            argv,
            stdin=fds[0],
            stdout=fds[1],
            stderr=fds[2],
            env=environment,
            cwd="/",
            start_new_session=True,  # its own process group, to end it whole
            **as_user,  # type: ignore[call-overload]
        )
    except OSError as exc:
        os.write(fds[2], b"%s: %s\n" % (argv[0], os.fsencode(exc.strerror or str(exc))))
        return 127 if isinstance(exc, FileNotFoundError) else 126
    try:
        exited = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        exited = -1  # no pidfds (Python < 3.9, an old kernel): wait without watching
    if exited >= 0:
        poller = select.poll()
        poller.register(exited, select.POLLIN)
        poller.register(conn.fileno(), select.POLLIN)
        ready = {fd for fd, _ in poller.poll()}
        os.close(exited)
        if exited not in ready:  # the client hung up first
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    code: int = proc.wait()
    return 128 - code if code < 0 else code


def _hand_over(folders: list[bytes], uid: int, gid: int) -> None:
    """``chown -R uid:gid`` each folder that exists, without following links."""
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        os.lchown(folder, uid, gid)
        for parent, dirs, files in os.walk(folder):
            for name in (*dirs, *files):
                try:
                    os.lchown(os.path.join(parent, name), uid, gid)
                except FileNotFoundError:  # a fleet's file may go away meanwhile
                    continue


_accounts: dict[int, tuple[bytes, dict[str, object]]] = {}


def _account(uid: int) -> tuple[bytes, dict[str, object]]:
    """The home of ``uid`` and the Popen arguments that become it. Looked up once: the
    group lookup goes through every NSS source (systemd's too), several ms a call."""
    if uid not in _accounts:
        import pwd

        user = pwd.getpwuid(uid)
        become: dict[str, object] = {}
        if uid != os.getuid():
            groups = os.getgrouplist(user.pw_name, user.pw_gid)
            become = {"user": uid, "group": user.pw_gid, "extra_groups": groups}
        _accounts[uid] = (os.fsencode(user.pw_dir), become)
    return _accounts[uid]


def main(args: list[str]) -> int:
    if args[:1] == ["call"]:
        return _call_main(args[1:])
    if args[:1] == ["serve"] and len(args) == 3:
        serve(args[1], int(args[2]))
        return 0
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
