"""labctl's host agent (stdlib only), shipped to each GPU host as one zipapp (`ship.py`)."""
