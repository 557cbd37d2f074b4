"""``pytest-memleak monitor``: watch any running process live, with memcheck.watch's detectors.

Modules, one job each:

- :mod:`.target`: the watched process (attach to a pid, start a command, read it, end it);
- :mod:`.state`: the samples (soak's Sampler), their analysis (soak's verdict step), alerts,
  the event log, the subscribers of the live stream;
- :mod:`.view`: the terminal line (redrawn on a TTY, plain lines in a CI log);
- :mod:`.server`: the HTTP server (standard library): the API, the token, the SSE stream;
- :mod:`.dashboard`: the live page (the HTML report's charts and sections, CSP-locked);
- :mod:`.command`: the subcommand's options, the run loop, the reports, the exit status;
- :mod:`.live_run`: ``pytest --memleak-serve``: the same server showing a pytest run.
"""
