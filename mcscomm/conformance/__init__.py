"""Conformance testing of ISO 15118-20 SECCs and EVCCs (issue 6).

* :mod:`.catalogue` -- the test cases (:mod:`.cases_secc`, :mod:`.cases_evcc`) and selection;
* :mod:`.pics` -- PICS/PIXIT TOML; :mod:`.runner` -- verdicts; :mod:`.reports` -- JUnit/JSON/HTML;
* :mod:`.tester_evcc` / :mod:`.tester_secc` -- the scripted peers that speak V2GTP + XML;
* :mod:`.sut` -- how the SUT is reached (in-process, ``--connect``, ``--listen``);
* :mod:`.faults` -- deliberately broken variants of our endpoints (every case must catch one);
* :mod:`.pytest_plugin` -- fixtures for user scripts.

This package imports nothing heavy on its own, so the pytest plugin stays cheap to load.
"""
