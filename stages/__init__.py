"""The DVC stages: each module is run as ``python -m stages.<name>`` from the project root."""
