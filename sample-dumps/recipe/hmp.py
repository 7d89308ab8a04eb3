#!/usr/bin/env python3
"""Send HMP (human monitor) commands to a QEMU `-monitor unix:SOCK,server,nowait`
socket one at a time, waiting for the "(qemu) " prompt after each, and print the
replies.  Usage: hmp.py SOCK 'cmd1' 'cmd2' ..."""
import socket
import sys
import time

PROMPT = b"(qemu) "


def read_until_prompt(s, timeout=900):
    buf = b""
    end = time.time() + timeout
    while not buf.endswith(PROMPT):
        if time.time() > end:
            raise TimeoutError(buf.decode(errors="replace"))
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def main():
    sock, cmds = sys.argv[1], sys.argv[2:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.settimeout(900)
    read_until_prompt(s)  # banner
    for cmd in cmds:
        t0 = time.time()
        s.sendall(cmd.encode() + b"\n")
        out = read_until_prompt(s).decode(errors="replace")
        # drop terminal escape sequences and the echoed command
        lines = [l for l in out.replace("\r", "").split("\n")]
        body = "\n".join(l for l in lines[1:] if l != "(qemu) ")
        print(f"### {cmd}  ({time.time() - t0:.1f} s)")
        print(body.strip("\n"))
        sys.stdout.flush()
        if cmd in ("quit", "q"):
            break


if __name__ == "__main__":
    main()
