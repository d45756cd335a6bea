"""A test service that runs INSIDE a sandbox (uploaded as a file; stdlib only).

`python3 preview_service.py PORT [BIND]` serves, with HTTP/1.1 keep-alive:

    GET  /peer          the client's address as `host:port` (tells whether a tunnel was reused)
    GET  /bytes?n=N     N bytes (chunked transfer encoding), pattern `i % 251`
    POST /echo          the request body back
    GET  /close         a body delimited by the end of the connection (no length, no chunks)
    GET  /headers       the request headers as JSON
    GET  /ws            a WebSocket echo (text and binary; answers close with close)
"""

import base64
import hashlib
import json
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_PATTERN = bytes(i % 251 for i in range(251 * 1024))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are separate writes

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/peer":
            self._send(200, f"{self.client_address[0]}:{self.client_address[1]}".encode())
        elif path == "/bytes":
            self._bytes(int(query.partition("=")[2]))
        elif path == "/close":
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n")
            self.wfile.write(b"until the end")
        elif path == "/headers":
            self._send(200, json.dumps(dict(self.headers.items())).encode(), "application/json")
        elif path == "/ws":
            self._websocket()
        else:
            self._send(404, b"no such path")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(length)
        self._send(200, body, "application/octet-stream")

    def _bytes(self, n: int) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        while n > 0:
            chunk = _PATTERN[: min(n, len(_PATTERN))]
            self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            n -= len(chunk)
        self.wfile.write(b"0\r\n\r\n")

    def _websocket(self) -> None:
        key = self.headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("upgrade", "websocket")
        self.send_header("connection", "Upgrade")
        self.send_header("sec-websocket-accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self.rfile.read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self.rfile.read(8))
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            self._ws_frame(opcode, data)
            if opcode == 8:
                return

    def _ws_frame(self, opcode: int, data: bytes) -> None:
        if opcode == 9:  # ping -> pong
            opcode = 10
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(head + data)
        self.wfile.flush()


if __name__ == "__main__":
    port = int(sys.argv[1])
    bind = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    ThreadingHTTPServer.address_family = 10 if ":" in bind else 2
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer((bind, port), Handler).serve_forever()
