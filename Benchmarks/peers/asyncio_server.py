#!/usr/bin/env python3
"""The asyncio peer: a Protocol with hand-written parsing answering GET /healthz with "ok\\n", keep-alive.
Usage: asyncio_server.py PORT"""
import asyncio
import sys

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
OK_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


class Health(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            if b"\r\nconnection: close" in head.lower():
                self.transport.write(OK_CLOSE)
                self.transport.close()
                return
            self.transport.write(OK)


async def main(port):
    server = await asyncio.get_running_loop().create_server(Health, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
