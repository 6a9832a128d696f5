"""The worklist read model: the units' worklist rows in the adapter's state database, kept
current by the journal of the adapter's own writes (worklists.py says how fresh)."""
