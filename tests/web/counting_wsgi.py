"""The project's WSGI application, telling in a response header how many body bytes it read.

Tests serve this with gunicorn to see how much of a request body the application consumed
before it answered (``X-Body-Bytes-Read``).
"""

from hybridrec.wsgi import application as project_application


class CountingInput:
    """Wrap ``wsgi.input`` and count the bytes read through it."""

    def __init__(self, stream):
        self.stream = stream
        self.read_bytes = 0

    def _counted(self, data):
        self.read_bytes += len(data)
        return data

    def read(self, *args):
        return self._counted(self.stream.read(*args))

    def readline(self, *args):
        return self._counted(self.stream.readline(*args))

    def readlines(self, *args):
        return [self._counted(line) for line in self.stream.readlines(*args)]

    def __iter__(self):
        return (self._counted(line) for line in self.stream)


def application(environ, start_response):
    counted = CountingInput(environ["wsgi.input"])
    environ["wsgi.input"] = counted

    def start(status, headers, exc_info=None):
        return start_response(status, [*headers, ("X-Body-Bytes-Read", str(counted.read_bytes))], exc_info)

    return project_application(environ, start)
