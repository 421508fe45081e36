"""The pure core (protocol.py, ending.py, state.py) and the SDK fences, in this process: no
server, no subprocess."""
