"""Lengths the API's checks and the database's columns share, so that the two cannot drift apart.

An id the API accepts must fit every column it lands in: a longer one would be taken by the
request and refused later by the database (an exposure the flusher cannot write).
"""

# Customer and item ids: URL paths, query strings, JSON bodies, events and exposures.
MAX_ID_LENGTH = 200
# A served answer's request_id (the server issues 32 hex digits); events may send it back.
MAX_REQUEST_ID_LENGTH = 64
