"""Real smart-home recordings as a development set: adapters, mapping onto the wire contract, incident injection.

Nothing here downloads anything or ships data: the recordings are read from a cache directory outside the
repository (``$ELDERCARE_DATASETS``, default ``~/.cache/eldercare/datasets``), checked against the sha256 sums in
:mod:`detection.realdata.sources`, and docs/detection.md says how to populate it. Licences of the sources differ
(CASAS, for one, asks not to redistribute), so no dataset file is ever committed.
"""
