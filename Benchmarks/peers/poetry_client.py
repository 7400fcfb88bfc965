#!/usr/bin/env python3
"""Fan-out peers: fetch COUNT poems at once from PORT with asyncio, uvloop or Twisted (each a Protocol that
collects bytes until the server closes), then print "Got COUNT poems". Usage: poetry_client.py IMPL PORT COUNT"""
import sys


def run_asyncio(port, count, use_uvloop):
    import asyncio
    if use_uvloop:
        import uvloop
        uvloop.install()

    class Poem(asyncio.Protocol):
        def __init__(self, done):
            self.parts = []
            self.done = done

        def data_received(self, data):
            self.parts.append(data)

        def connection_lost(self, exc):
            self.done.set_result(b"".join(self.parts))

    async def main():
        loop = asyncio.get_running_loop()
        futures = []
        for _ in range(count):
            done = loop.create_future()
            await loop.create_connection(lambda done=done: Poem(done), "127.0.0.1", port)
            futures.append(done)
        poems = await asyncio.gather(*futures)
        return sum(1 for p in poems if p)

    return asyncio.run(main())


def run_twisted(port, count):
    from twisted.internet import epollreactor
    epollreactor.install()
    from twisted.internet import protocol, reactor

    got = []

    class Poem(protocol.Protocol):
        def connectionMade(self):
            self.parts = []

        def dataReceived(self, data):
            self.parts.append(data)

        def connectionLost(self, reason):
            got.append(b"".join(self.parts))
            if len(got) == count:
                reactor.stop()

    class Factory(protocol.ClientFactory):
        protocol = Poem

        def clientConnectionFailed(self, connector, reason):
            got.append(b"")
            if len(got) == count:
                reactor.stop()

    factory = Factory()
    for _ in range(count):
        reactor.connectTCP("127.0.0.1", port, factory)
    reactor.run()
    return sum(1 for p in got if p)


if __name__ == "__main__":
    impl, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    got = run_twisted(port, count) if impl == "twisted" else run_asyncio(port, count, impl == "uvloop")
    print(f"Got {got} poems")
