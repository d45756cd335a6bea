"""Runs *inside* a sandbox (python3 of the base template, stdlib only): name-based probes.

`python3 n2_probe.py '<json list of actions>'` prints a JSON list with one result per
action. Actions:
  ["resolve", name]               -> sorted IPv4 addresses, or "error: ..."
  ["https", address, sni]         -> the HTTPS answer's body (CA /tmp/n2-ca.pem), or "error: ..."
  ["http", address, host]         -> the whole HTTP answer (status line included), or "error: ..."
  ["dns", hex_query]              -> the RCODE the sandbox's resolver answers (UDP), or "error"
  ["bulk", address, port, size]   -> how many body bytes a GET /bytes/<size> returned
"""

import json
import socket
import ssl
import sys

TIMEOUT = 3.0


def resolve(name):
    infos = socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def read_all(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def https(address, sni):
    context = ssl.create_default_context(cafile="/tmp/n2-ca.pem")
    raw = socket.create_connection((address, 443), timeout=TIMEOUT)
    with context.wrap_socket(raw, server_hostname=sni) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\n\r\n".encode())
        return read_all(tls).split(b"\r\n\r\n", 1)[1].decode()


def http(address, host):
    with socket.create_connection((address, 80), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        return read_all(sock).decode(errors="replace")


def dns(hex_query):
    with open("/etc/resolv.conf") as conf:
        server = next(line.split()[1] for line in conf if line.startswith("nameserver"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(bytes.fromhex(hex_query), (server, 53))
        return sock.recv(4096)[3] & 0x0F


def bulk(address, port, size):
    with socket.create_connection((address, port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET /bytes/{size} HTTP/1.1\r\n\r\n".encode())
        return len(read_all(sock).split(b"\r\n\r\n", 1)[1])


def main():
    results = []
    for action, *args in json.loads(sys.argv[1]):
        try:
            results.append(globals()[action](*args))
        except Exception as exc:
            results.append(f"error: {type(exc).__name__}: {exc}")
    print(json.dumps(results))


main()
