"""The diagnosis: call a leaking body a few more times, traced, and name its leaks.

Runs only when a test is judged leaking (or with ``diagnose=always``), so clean tests never pay
for tracing. The runner calls it after the measured rounds through a hook (set by
``analysis.make_loop``) and it drives the loop through the small ``runner.Calls`` protocol.

* :mod:`.passes` -- the untraced pass, then tracemalloc and the C-call profile: a
  :class:`Diagnosis` on the measurement;
* :mod:`.classify` -- the leak type of growing memory, an ordered rule table;
* :mod:`.leaks` -- :func:`leaks_for`: typed ``model.Leak`` entries with a source, a stack, a
  retainer path, a fingerprint and a recommendation;
* :mod:`.suppress` -- the user's ``memleak_suppress`` patterns and the known caches.
"""

from .classify import RULES, Evidence, classify
from .leaks import RECOMMENDATIONS, Leak, fingerprint, leaks_for
from .passes import Diagnosis, known_cause, run
from .suppress import KNOWN_CACHES, suppress

__all__ = [
    "KNOWN_CACHES",
    "RECOMMENDATIONS",
    "RULES",
    "Diagnosis",
    "Evidence",
    "Leak",
    "classify",
    "fingerprint",
    "known_cause",
    "leaks_for",
    "run",
    "suppress",
]
