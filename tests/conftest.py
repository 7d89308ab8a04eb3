import os
import sys

# Tests import their helpers (dumpwriter, samples) by plain name.
sys.path.insert(0, os.path.dirname(__file__))
