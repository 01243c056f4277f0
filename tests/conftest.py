import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))   # the tests' own helpers (reference.py)

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=150)
settings.register_profile("large", deadline=None, max_examples=3000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    """Derived rules go to a fresh cache directory for the run (never the user's): every rule
    the tests use is derived here, and the cache's own tests read it back."""
    import tempfile

    from matcalc import rules
    directory = tempfile.mkdtemp(prefix="matcalc-rules-")
    os.chmod(directory, 0o700)
    rules.use_disk_cache(directory)
    config._matcalc_rule_cache = directory


def pytest_unconfigure(config):
    import shutil
    directory = getattr(config, "_matcalc_rule_cache", None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
