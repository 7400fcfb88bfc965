#!/usr/bin/env python3
"""The Twisted peer: twisted.web serving GET /healthz with "ok\\n" on the epoll reactor. Usage: twisted_server.py PORT"""
import sys

from twisted.internet import epollreactor

epollreactor.install()
from twisted.internet import reactor  # noqa: E402
from twisted.web import resource, server  # noqa: E402


class Health(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"


site = server.Site(Health())
site.log = lambda request: None  # no access log, as for the other peers
reactor.listenTCP(int(sys.argv[1]), site, backlog=4096, interface="127.0.0.1")
reactor.run()
