import os
import sys
import tempfile

# Tests import their helpers (dumpwriter, samples) by plain name.
sys.path.insert(0, os.path.dirname(__file__))

# vmcrash's caches (stream indexes, inflated save files) go to a private
# folder per test run, never the user's ~/.cache.  Set before analyzer loads.
os.environ["VMCRASH_CACHE"] = tempfile.mkdtemp(prefix="vmcrash-test-cache-")
