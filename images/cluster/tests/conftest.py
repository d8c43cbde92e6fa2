"""The entrypoint's modules import each other by name, as `bin/start` runs them."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'entrypoint'))
