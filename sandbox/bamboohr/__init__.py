"""BambooHR as a webhook sender: sample payloads (:mod:`sandbox.bamboohr.samples`) and a sender that signs
them as BambooHR does (:mod:`sandbox.bamboohr.sender`, ``python -m sandbox.bamboohr.sender``, what
``./run.sh webhook`` runs)."""
