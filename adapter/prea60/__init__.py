"""Prea60 runs a person must confirm: the guard on a new run (`guard.py`, pure), the runs on the
server (`runs.py`: check before import, list, confirm, reject) and the import's use of them
(`importing.py`)."""
